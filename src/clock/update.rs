//! A change to a clock model, as the lab sends it.
//!
//! A [`ClockUpdate`] is what `PUT /admin/clock` takes, what `--clock model`
//! flags build and what a clock fault's record stores. On the wire it is one
//! flat JSON object (`{"strobe_ms": 200, "strobe_period_ms": 50,
//! "strobe_for_ms": 10000}`), because that is what people type into `curl`
//! and what the history has always held. In Rust the fields that only make
//! sense together are one value each ([`Periodic`], [`Lasting`],
//! [`LeapSecond`]), so a half-given strobe or a stepped leap with a smear
//! window cannot be built; the flat form is checked once, when it is read
//! ([`UpdateFields`] into [`ClockUpdate`]), with an error naming the field.

use serde::{Deserialize, Serialize};

/// The largest offset or step a model accepts: one year, in milliseconds.
/// Far beyond any real clock fault, and far from overflowing [`super::Nanos`].
pub const MAX_OFFSET_MS: f64 = 365.0 * 24.0 * 3600.0 * 1000.0;
/// The largest drift a model accepts, in parts per million (10 %).
pub const MAX_DRIFT_PPM: f64 = 100_000.0;
/// The coarsest resolution or longest resync interval accepted: one hour, in ms.
pub const MAX_INTERVAL_MS: f64 = 3600.0 * 1000.0;

/// A change to a clock model. Fields left out keep their value; each fault
/// (step, strobe, wobble, jitter, leap) is added to those already playing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "UpdateFields", into = "UpdateFields")]
pub struct ClockUpdate {
    /// Fixed offset from true time, in ms (positive: the clock is ahead).
    pub offset_ms: Option<f64>,
    /// Rate error in parts per million (positive: the clock runs fast).
    pub drift_ppm: Option<f64>,
    /// Tick of the clock, in ms; 0 reads with full nanosecond resolution.
    pub resolution_ms: Option<f64>,
    /// Every this many ms, resync discards the error drift has built up; 0 never.
    pub resync_interval_ms: Option<f64>,
    /// A step (an NTP reset).
    pub step: Option<ClockStep>,
    /// From now, every period the clock flips between its reading and that
    /// reading plus `size_ms` (Jepsen's strobe).
    pub strobe: Option<Periodic>,
    /// From now, the offset swings by up to `size_ms` either way, a sine.
    pub wobble: Option<Periodic>,
    /// From now, each reading is off by up to `bound_ms` either way.
    pub jitter: Option<Lasting>,
    /// A leap second.
    pub leap: Option<LeapSecond>,
}

/// A step of the clock by `by_ms` (negative: back), `after_ms` of true time
/// from now (0: now).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockStep {
    pub by_ms: f64,
    pub after_ms: f64,
}

/// A fault that repeats every `period_ms` (above 0) for `for_ms`, of size
/// `size_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Periodic {
    pub size_ms: f64,
    pub period_ms: f64,
    pub for_ms: f64,
}

/// A fault bounded by `bound_ms` that lasts `for_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lasting {
    pub bound_ms: f64,
    pub for_ms: f64,
}

/// A leap second `after_ms` of true time from now, and how the clock takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeapSecond {
    pub after_ms: f64,
    pub taken: LeapTaken,
}

/// How a clock takes a leap second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LeapTaken {
    /// The second is repeated: the reading jumps one second back.
    Stepped,
    /// The second is spread over `window_ms` (above 0) centred on the leap:
    /// the clock runs slow and never jumps.
    Smeared { window_ms: f64 },
}

/// How a clock takes a leap second, as specs and the admin API name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeapMode {
    /// The second is repeated: the reading jumps one second back.
    Step,
    /// The second is spread over a window: the clock runs slow and never jumps.
    Smear,
}

/// Why a clock update was refused. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClockError {
    #[error("{field} must be a finite number between {min} and {max}, got {value}")]
    OutOfRange { field: &'static str, value: f64, min: f64, max: f64 },
    #[error("step_after_ms needs step_ms")]
    StepAfterWithoutStep,
    #[error("a strobe needs strobe_ms, strobe_period_ms above 0 and strobe_for_ms, all three")]
    IncompleteStrobe,
    #[error("a wobble needs wobble_ms, wobble_period_ms above 0 and wobble_for_ms, all three")]
    IncompleteWobble,
    #[error("jitter needs jitter_ms and jitter_for_ms, both")]
    IncompleteJitter,
    #[error("a smeared leap needs leap_smear_ms above 0, a stepped one none, and leap_after_ms needs a leap")]
    BadLeap,
    #[error(
        "this replica reads the system clock (--clock system); start it with --clock model to change its clock"
    )]
    SystemClock,
}

impl ClockUpdate {
    /// Checks every number is in range, so a bad update changes nothing.
    /// (Combinations are already whole: the types allow no other.)
    pub fn validate(&self) -> Result<(), ClockError> {
        UpdateFields::from(self.clone()).check().map(drop)
    }
}

/// The flat form of a [`ClockUpdate`]: the wire's and the history's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drift_ppm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolution_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resync_interval_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step_after_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strobe_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strobe_period_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strobe_for_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wobble_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wobble_period_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wobble_for_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter_for_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leap: Option<LeapMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leap_after_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leap_smear_ms: Option<f64>,
}

fn in_range(field: &'static str, value: Option<f64>, min: f64, max: f64) -> Result<(), ClockError> {
    match value {
        Some(value) if !(value.is_finite() && value >= min && value <= max) => {
            Err(ClockError::OutOfRange { field, value, min, max })
        }
        _ => Ok(()),
    }
}

/// A periodic fault's `[size, period, lasting]`: all three with a period
/// above 0, none, or (`None`) half given.
fn periodic([size, period, lasting]: [Option<f64>; 3]) -> Option<Option<Periodic>> {
    match (size, period, lasting) {
        (None, None, None) => Some(None),
        (Some(size_ms), Some(period_ms), Some(for_ms)) if period_ms > 0.0 => {
            Some(Some(Periodic { size_ms, period_ms, for_ms }))
        }
        _ => None,
    }
}

impl UpdateFields {
    /// Every number in range and every group whole, or the first problem.
    fn check(self) -> Result<ClockUpdate, ClockError> {
        in_range("offset_ms", self.offset_ms, -MAX_OFFSET_MS, MAX_OFFSET_MS)?;
        in_range("drift_ppm", self.drift_ppm, -MAX_DRIFT_PPM, MAX_DRIFT_PPM)?;
        in_range("resolution_ms", self.resolution_ms, 0.0, MAX_INTERVAL_MS)?;
        in_range("resync_interval_ms", self.resync_interval_ms, 0.0, MAX_INTERVAL_MS)?;
        in_range("step_ms", self.step_ms, -MAX_OFFSET_MS, MAX_OFFSET_MS)?;
        in_range("step_after_ms", self.step_after_ms, 0.0, MAX_OFFSET_MS)?;
        let step = match (self.step_ms, self.step_after_ms) {
            (None, Some(_)) => return Err(ClockError::StepAfterWithoutStep),
            (None, None) => None,
            (Some(by_ms), after) => Some(ClockStep { by_ms, after_ms: after.unwrap_or(0.0) }),
        };
        in_range("strobe_ms", self.strobe_ms, -MAX_OFFSET_MS, MAX_OFFSET_MS)?;
        in_range("strobe_period_ms", self.strobe_period_ms, 0.0, MAX_INTERVAL_MS)?;
        in_range("strobe_for_ms", self.strobe_for_ms, 0.0, MAX_OFFSET_MS)?;
        let strobe = periodic([self.strobe_ms, self.strobe_period_ms, self.strobe_for_ms])
            .ok_or(ClockError::IncompleteStrobe)?;
        in_range("wobble_ms", self.wobble_ms, 0.0, MAX_OFFSET_MS)?;
        in_range("wobble_period_ms", self.wobble_period_ms, 0.0, MAX_INTERVAL_MS)?;
        in_range("wobble_for_ms", self.wobble_for_ms, 0.0, MAX_OFFSET_MS)?;
        let wobble = periodic([self.wobble_ms, self.wobble_period_ms, self.wobble_for_ms])
            .ok_or(ClockError::IncompleteWobble)?;
        in_range("jitter_ms", self.jitter_ms, 0.0, MAX_INTERVAL_MS)?;
        in_range("jitter_for_ms", self.jitter_for_ms, 0.0, MAX_OFFSET_MS)?;
        let jitter = match (self.jitter_ms, self.jitter_for_ms) {
            (None, None) => None,
            (Some(bound_ms), Some(for_ms)) => Some(Lasting { bound_ms, for_ms }),
            _ => return Err(ClockError::IncompleteJitter),
        };
        in_range("leap_after_ms", self.leap_after_ms, 0.0, MAX_OFFSET_MS)?;
        in_range("leap_smear_ms", self.leap_smear_ms, 0.0, MAX_OFFSET_MS)?;
        let taken = match (self.leap, self.leap_smear_ms) {
            (None, None) if self.leap_after_ms.is_none() => None,
            (Some(LeapMode::Step), None) => Some(LeapTaken::Stepped),
            (Some(LeapMode::Smear), Some(window_ms)) if window_ms > 0.0 => {
                Some(LeapTaken::Smeared { window_ms })
            }
            _ => return Err(ClockError::BadLeap),
        };
        let leap = taken.map(|taken| LeapSecond { after_ms: self.leap_after_ms.unwrap_or(0.0), taken });
        Ok(ClockUpdate {
            offset_ms: self.offset_ms,
            drift_ppm: self.drift_ppm,
            resolution_ms: self.resolution_ms,
            resync_interval_ms: self.resync_interval_ms,
            step,
            strobe,
            wobble,
            jitter,
            leap,
        })
    }
}

impl TryFrom<UpdateFields> for ClockUpdate {
    type Error = ClockError;

    fn try_from(fields: UpdateFields) -> Result<Self, ClockError> {
        fields.check()
    }
}

/// A time from now as the flat form writes it: left out when it is now.
fn from_now(after_ms: f64) -> Option<f64> {
    (after_ms != 0.0).then_some(after_ms)
}

impl From<ClockUpdate> for UpdateFields {
    fn from(update: ClockUpdate) -> Self {
        let (leap, leap_smear_ms) = match update.leap.map(|leap| leap.taken) {
            None => (None, None),
            Some(LeapTaken::Stepped) => (Some(LeapMode::Step), None),
            Some(LeapTaken::Smeared { window_ms }) => (Some(LeapMode::Smear), Some(window_ms)),
        };
        Self {
            offset_ms: update.offset_ms,
            drift_ppm: update.drift_ppm,
            resolution_ms: update.resolution_ms,
            resync_interval_ms: update.resync_interval_ms,
            step_ms: update.step.map(|step| step.by_ms),
            step_after_ms: update.step.and_then(|step| from_now(step.after_ms)),
            strobe_ms: update.strobe.map(|strobe| strobe.size_ms),
            strobe_period_ms: update.strobe.map(|strobe| strobe.period_ms),
            strobe_for_ms: update.strobe.map(|strobe| strobe.for_ms),
            wobble_ms: update.wobble.map(|wobble| wobble.size_ms),
            wobble_period_ms: update.wobble.map(|wobble| wobble.period_ms),
            wobble_for_ms: update.wobble.map(|wobble| wobble.for_ms),
            jitter_ms: update.jitter.map(|jitter| jitter.bound_ms),
            jitter_for_ms: update.jitter.map(|jitter| jitter.for_ms),
            leap,
            leap_after_ms: update.leap.and_then(|leap| from_now(leap.after_ms)),
            leap_smear_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: serde_json::Value) -> Result<ClockUpdate, String> {
        serde_json::from_value(value).map_err(|error| error.to_string())
    }

    #[test]
    fn the_flat_form_reads_into_whole_groups_and_back() {
        let flat = json!({"offset_ms": -5.0, "strobe_ms": 200.0, "strobe_period_ms": 50.0, "strobe_for_ms": 1000.0,
            "leap": "smear", "leap_after_ms": 2000.0, "leap_smear_ms": 4000.0});
        let update = read(flat.clone()).unwrap();
        assert_eq!(update.strobe, Some(Periodic { size_ms: 200.0, period_ms: 50.0, for_ms: 1000.0 }));
        assert_eq!(
            update.leap,
            Some(LeapSecond { after_ms: 2000.0, taken: LeapTaken::Smeared { window_ms: 4000.0 } })
        );
        assert_eq!(serde_json::to_value(&update).unwrap(), flat);
    }

    #[test]
    fn a_half_given_group_is_refused_by_name() {
        let half = read(json!({"strobe_ms": 200.0})).unwrap_err();
        assert!(half.contains("a strobe needs"), "{half}");
        let still =
            read(json!({"wobble_ms": 1.0, "wobble_period_ms": 0.0, "wobble_for_ms": 1.0})).unwrap_err();
        assert!(still.contains("wobble_period_ms above 0"), "{still}");
        assert!(read(json!({"jitter_for_ms": 1.0})).unwrap_err().contains("jitter needs"));
        assert!(read(json!({"step_after_ms": 1.0})).unwrap_err().contains("needs step_ms"));
        for leap in [
            json!({"leap": "smear"}),
            json!({"leap": "step", "leap_smear_ms": 5.0}),
            json!({"leap_after_ms": 1.0}),
        ] {
            assert!(read(leap.clone()).unwrap_err().contains("smeared leap"), "{leap}");
        }
        let unknown = read(json!({"offset": 1.0})).unwrap_err();
        assert!(unknown.contains("unknown field `offset`"), "{unknown}");
    }

    #[test]
    fn numbers_out_of_range_are_refused_even_when_built_in_code() {
        let update = ClockUpdate { offset_ms: Some(5.0), drift_ppm: Some(f64::NAN), ..Default::default() };
        assert!(matches!(update.validate(), Err(ClockError::OutOfRange { field: "drift_ppm", .. })));
        let jitter =
            ClockUpdate { jitter: Some(Lasting { bound_ms: -1.0, for_ms: 5.0 }), ..Default::default() };
        assert!(matches!(jitter.validate(), Err(ClockError::OutOfRange { field: "jitter_ms", .. })));
    }
}
