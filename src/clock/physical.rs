//! Physical clocks and the ways they go wrong.
//!
//! A replica's *physical clock* is what `clock_gettime(CLOCK_REALTIME)` would
//! tell it. In the lab it is *true time* (the host's clock, shared by every
//! process on the machine) passed through a [`ClockModel`] of the faults DDIA
//! chapter 8 lists:
//!
//! - a fixed **offset**: the clock is simply ahead or behind;
//! - **drift**, in parts per million: quartz runs fast or slow. Google assumes
//!   200 ppm, which is 6 ms of error after 30 s or 17 s after a day;
//! - periodic **resync**: NTP pulls the drifted clock back to true time every
//!   so often, so the error grows and snaps back, a sawtooth;
//! - a **step**: NTP finds the clock too far off and resets it, so readings
//!   jump forward or, worse, back to a time already seen;
//! - coarse **resolution**: a clock that ticks every 10 ms returns the same
//!   reading to every event in a tick;
//! - a **strobe**: the clock flips between its offset and that offset plus
//!   a delta every period for a while, as Jepsen's `strobe-time` makes it
//!   do, so it jumps forward and back again and again;
//! - a **wobble**: the offset swings as a sine of some amplitude and period
//!   (TigerBeetle's simulator gives clocks such a periodic error);
//! - **jitter**: every reading is off by a different amount within a bound,
//!   so two readings in a row can go backwards;
//! - a **leap second**, either *stepped* (the clock repeats a second: it
//!   reads one second back from the leap on) or *smeared* (it runs slow by
//!   that second over a window, as large providers do, and never goes back).
//!
//! The model is a pure function of true time, so a replica's clock reading
//! at any true time can be recomputed by anyone (the oracle and the plots do).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::update::{ClockError, ClockUpdate, LeapTaken};
use super::{Nanos, millis_to_nanos, nanos_to_millis};

/// The real time of the machine: what the runner and the oracle order
/// events by, and what replicas never see directly.
pub trait TrueTime: Send + Sync {
    fn now(&self) -> Nanos;
}

/// True time read from the operating system.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemTrueTime;

impl TrueTime for SystemTrueTime {
    fn now(&self) -> Nanos {
        system_now()
    }
}

/// Reads the operating system's real-time clock in nanoseconds.
pub fn system_now() -> Nanos {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_nanos() as Nanos,
        Err(before) => -(before.duration().as_nanos() as Nanos),
    }
}

/// True time that only moves when told to: for tests of the pure core.
#[derive(Debug, Default)]
pub struct ManualTrueTime(AtomicI64);

impl ManualTrueTime {
    pub fn new(start: Nanos) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(start)))
    }
    pub fn set(&self, now: Nanos) {
        self.0.store(now, Ordering::SeqCst);
    }
    pub fn advance_ms(&self, ms: f64) {
        self.0.fetch_add(millis_to_nanos(ms), Ordering::SeqCst);
    }
}

impl TrueTime for ManualTrueTime {
    fn now(&self) -> Nanos {
        self.0.load(Ordering::SeqCst)
    }
}

/// A leap second inserts one second.
pub const LEAP_NS: Nanos = 1_000_000_000;

/// A strobe: from `from_ns` until `until_ns` of true time, the clock reads
/// `by_ns` more in every second period of `period_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Strobe {
    pub from_ns: Nanos,
    pub until_ns: Nanos,
    pub period_ns: Nanos,
    pub by_ns: Nanos,
}

impl Strobe {
    fn error_ns(&self, t: Nanos) -> Nanos {
        let flipped =
            t >= self.from_ns && t < self.until_ns && ((t - self.from_ns) / self.period_ns) % 2 == 1;
        if flipped { self.by_ns } else { 0 }
    }
}

/// A wobble: from `from_ns` until `until_ns`, the offset is
/// `amplitude_ns * sin(2 pi (t - from_ns) / period_ns)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Wobble {
    pub from_ns: Nanos,
    pub until_ns: Nanos,
    pub period_ns: Nanos,
    pub amplitude_ns: Nanos,
}

impl Wobble {
    fn error_ns(&self, t: Nanos) -> Nanos {
        if t < self.from_ns || t >= self.until_ns {
            return 0;
        }
        let phase = (t - self.from_ns) as f64 / self.period_ns as f64 * std::f64::consts::TAU;
        (self.amplitude_ns as f64 * phase.sin()).round() as Nanos
    }
}

/// Jitter: from `from_ns` until `until_ns`, each reading is off by a
/// pseudo-random amount within `bound_ns` either way, a function of the
/// true time of the reading (so replaying the clock gives the same readings).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Jitter {
    pub from_ns: Nanos,
    pub until_ns: Nanos,
    pub bound_ns: Nanos,
}

impl Jitter {
    fn error_ns(&self, t: Nanos) -> Nanos {
        if t < self.from_ns || t >= self.until_ns || self.bound_ns == 0 {
            return 0;
        }
        // SplitMix64 of the reading's true time: well spread, and pure.
        let mut z = (t as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let span = 2 * self.bound_ns as u64 + 1;
        (z % span) as Nanos - self.bound_ns
    }
}

/// A leap second at `at_ns`: stepped (`smear_ns` 0), or smeared over
/// `smear_ns` centred on it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Leap {
    pub at_ns: Nanos,
    pub smear_ns: Nanos,
}

impl Leap {
    fn error_ns(&self, t: Nanos) -> Nanos {
        if self.smear_ns == 0 {
            return if t >= self.at_ns { -LEAP_NS } else { 0 };
        }
        let start = self.at_ns - self.smear_ns / 2;
        let done = ((t - start) as f64 / self.smear_ns as f64).clamp(0.0, 1.0);
        -(done * LEAP_NS as f64).round() as Nanos
    }
}

/// A step scheduled at a true time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// True time at which the clock jumps.
    pub at_ns: Nanos,
    /// How far it jumps, in ns (negative: back).
    pub by_ns: Nanos,
}

/// The faults of one physical clock, as a function of true time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClockModel {
    offset_ns: Nanos,
    drift_ppm: f64,
    /// True time from which the current drift rate accumulates.
    drift_anchor: Nanos,
    /// Drift error built up before the anchor (under an earlier rate).
    drift_carry_ns: f64,
    resync_interval_ns: Nanos,
    resolution_ns: Nanos,
    steps: Vec<Step>,
    strobes: Vec<Strobe>,
    wobbles: Vec<Wobble>,
    jitters: Vec<Jitter>,
    leaps: Vec<Leap>,
}

impl ClockModel {
    /// The error drift has built up by true time `t`.
    fn drift_error_ns(&self, t: Nanos) -> f64 {
        let elapsed = t.saturating_sub(self.drift_anchor).max(0);
        let rate = self.drift_ppm / 1e6;
        if self.resync_interval_ns > 0 && elapsed >= self.resync_interval_ns {
            // At least one resync since the anchor: only the error since the
            // last one remains.
            (elapsed % self.resync_interval_ns) as f64 * rate
        } else {
            self.drift_carry_ns + elapsed as f64 * rate
        }
    }

    /// How far the clock is from true time at `t`, before rounding to ticks.
    pub fn error_ns(&self, t: Nanos) -> Nanos {
        let stepped: Nanos = self.steps.iter().filter(|step| step.at_ns <= t).map(|step| step.by_ns).sum();
        let strobed: Nanos = self.strobes.iter().map(|strobe| strobe.error_ns(t)).sum();
        let wobbled: Nanos = self.wobbles.iter().map(|wobble| wobble.error_ns(t)).sum();
        let jittered: Nanos = self.jitters.iter().map(|jitter| jitter.error_ns(t)).sum();
        let leapt: Nanos = self.leaps.iter().map(|leap| leap.error_ns(t)).sum();
        self.offset_ns
            + stepped
            + strobed
            + wobbled
            + jittered
            + leapt
            + self.drift_error_ns(t).round() as Nanos
    }

    /// The clock's reading at true time `t`.
    pub fn read(&self, t: Nanos) -> Nanos {
        let raw = t + self.error_ns(t);
        if self.resolution_ns > 0 { raw - raw.rem_euclid(self.resolution_ns) } else { raw }
    }

    /// Applies a validated update at true time `now`. A new drift rate starts
    /// from the error already built up, so the clock does not jump.
    fn apply(&mut self, update: &ClockUpdate, now: Nanos) {
        if let Some(offset) = update.offset_ms {
            self.offset_ns = millis_to_nanos(offset);
        }
        if update.drift_ppm.is_some() || update.resync_interval_ms.is_some() {
            self.drift_carry_ns = self.drift_error_ns(now);
            self.drift_anchor = now;
        }
        if let Some(drift) = update.drift_ppm {
            self.drift_ppm = drift;
        }
        if let Some(interval) = update.resync_interval_ms {
            self.resync_interval_ns = millis_to_nanos(interval);
        }
        if let Some(resolution) = update.resolution_ms {
            self.resolution_ns = millis_to_nanos(resolution);
        }
        if let Some(step) = update.step {
            self.steps.push(Step {
                at_ns: now + millis_to_nanos(step.after_ms),
                by_ns: millis_to_nanos(step.by_ms),
            });
        }
        if let Some(strobe) = update.strobe {
            self.strobes.push(Strobe {
                from_ns: now,
                until_ns: now + millis_to_nanos(strobe.for_ms),
                period_ns: millis_to_nanos(strobe.period_ms).max(1),
                by_ns: millis_to_nanos(strobe.size_ms),
            });
        }
        if let Some(wobble) = update.wobble {
            self.wobbles.push(Wobble {
                from_ns: now,
                until_ns: now + millis_to_nanos(wobble.for_ms),
                period_ns: millis_to_nanos(wobble.period_ms).max(1),
                amplitude_ns: millis_to_nanos(wobble.size_ms),
            });
        }
        if let Some(jitter) = update.jitter {
            self.jitters.push(Jitter {
                from_ns: now,
                until_ns: now + millis_to_nanos(jitter.for_ms),
                bound_ns: millis_to_nanos(jitter.bound_ms),
            });
        }
        if let Some(leap) = update.leap {
            let smear_ns = match leap.taken {
                LeapTaken::Stepped => 0,
                LeapTaken::Smeared { window_ms } => millis_to_nanos(window_ms).max(1),
            };
            self.leaps.push(Leap { at_ns: now + millis_to_nanos(leap.after_ms), smear_ns });
        }
    }

    /// The model's settings, for `GET /admin/status`.
    pub fn describe(&self, now: Nanos) -> ModelDescription {
        ModelDescription {
            offset_ms: nanos_to_millis(self.offset_ns),
            drift_ppm: self.drift_ppm,
            resolution_ms: nanos_to_millis(self.resolution_ns),
            resync_interval_ms: nanos_to_millis(self.resync_interval_ns),
            drift_error_ms: self.drift_error_ns(now) / 1e6,
            steps: self.steps.clone(),
            strobes: self.strobes.clone(),
            wobbles: self.wobbles.clone(),
            jitters: self.jitters.clone(),
            leaps: self.leaps.clone(),
        }
    }
}

/// A clock model as reported over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDescription {
    pub offset_ms: f64,
    pub drift_ppm: f64,
    pub resolution_ms: f64,
    pub resync_interval_ms: f64,
    /// The error drift has built up now, in ms.
    pub drift_error_ms: f64,
    /// Every step set so far; those with `at_ns` in the past have happened.
    pub steps: Vec<Step>,
    /// Every strobe set so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strobes: Vec<Strobe>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wobbles: Vec<Wobble>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jitters: Vec<Jitter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaps: Vec<Leap>,
}

/// A replica's physical clock: true time, seen through a model or not at all.
#[derive(Clone)]
pub struct PhysicalClock {
    source: Arc<dyn TrueTime>,
    /// `None` for `--clock system`: the OS clock as it is, so tools such as
    /// libfaketime act on it.
    model: Option<ClockModel>,
}

impl PhysicalClock {
    /// The operating system's clock, unmodelled.
    pub fn system() -> Self {
        Self { source: Arc::new(SystemTrueTime), model: None }
    }

    /// A modelled clock over the given true time, starting with no faults.
    pub fn modelled(source: Arc<dyn TrueTime>) -> Self {
        let now = source.now();
        let model = ClockModel { drift_anchor: now, ..ClockModel::default() };
        Self { source, model: Some(model) }
    }

    /// The same clock (its model kept) over another source of true time.
    pub fn set_source(&mut self, source: Arc<dyn TrueTime>) {
        self.source = source;
    }

    /// True time now.
    pub fn true_now(&self) -> Nanos {
        self.source.now()
    }

    /// The clock's reading now.
    pub fn now(&self) -> Nanos {
        let t = self.source.now();
        self.model.as_ref().map_or(t, |model| model.read(t))
    }

    /// Changes the model; refused, with no change, if invalid or unmodelled.
    pub fn update(&mut self, update: &ClockUpdate) -> Result<(), ClockError> {
        update.validate()?;
        let now = self.source.now();
        let model = self.model.as_mut().ok_or(ClockError::SystemClock)?;
        model.apply(update, now);
        Ok(())
    }

    /// The model's settings now, or `None` for the system clock.
    pub fn describe(&self) -> Option<ModelDescription> {
        let now = self.source.now();
        self.model.as_ref().map(|model| model.describe(now))
    }
}

/// One event in the life of a modelled clock, for replaying it later.
#[derive(Debug, Clone, PartialEq)]
pub enum ClockEvent {
    /// A model update applied at that true time.
    Update(Box<ClockUpdate>),
    /// The process restarted: a new clock, with no faults yet.
    Restart,
}

/// Replays a clock's events (in true-time order) through the model and
/// returns its offset from true time, in ns, at each of `times` (sorted).
/// This is how the runner's logged settings become "the clock at the time".
pub fn replay_offsets(events: &[(Nanos, ClockEvent)], times: &[Nanos]) -> Vec<Nanos> {
    let start = events.first().map_or(0, |(at, _)| *at);
    let time = ManualTrueTime::new(start);
    let mut clock = PhysicalClock::modelled(time.clone());
    let mut pending = events.iter().peekable();
    times
        .iter()
        .map(|&at| {
            while let Some((event_at, event)) = pending.next_if(|(event_at, _)| *event_at <= at) {
                time.set(*event_at);
                match event {
                    ClockEvent::Update(update) => {
                        // Updates were checked when first applied; one that
                        // fails now changes nothing, as it did then.
                        let _ = clock.update(update);
                    }
                    ClockEvent::Restart => clock = PhysicalClock::modelled(time.clone()),
                }
            }
            time.set(at);
            clock.now() - at
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::update::{ClockStep, Lasting, LeapSecond, Periodic};

    const SECOND: Nanos = 1_000_000_000;

    fn clock_at(start: Nanos) -> (Arc<ManualTrueTime>, PhysicalClock) {
        let time = ManualTrueTime::new(start);
        let clock = PhysicalClock::modelled(time.clone());
        (time, clock)
    }

    #[test]
    fn an_unfaulted_model_reads_true_time() {
        let (time, clock) = clock_at(100 * SECOND);
        time.advance_ms(1234.5);
        assert_eq!(clock.now(), clock.true_now());
    }

    #[test]
    fn offset_puts_the_clock_ahead_or_behind() {
        let (_, mut clock) = clock_at(100 * SECOND);
        clock.update(&ClockUpdate { offset_ms: Some(-250.0), ..Default::default() }).unwrap();
        assert_eq!(clock.now(), 100 * SECOND - 250_000_000);
    }

    #[test]
    fn drift_of_200_ppm_is_6_ms_after_30_seconds() {
        let (time, mut clock) = clock_at(100 * SECOND);
        clock.update(&ClockUpdate { drift_ppm: Some(200.0), ..Default::default() }).unwrap();
        time.advance_ms(30_000.0);
        assert_eq!(clock.now() - clock.true_now(), 6_000_000);
    }

    #[test]
    fn resync_makes_a_sawtooth() {
        let (time, mut clock) = clock_at(0);
        let update =
            ClockUpdate { drift_ppm: Some(1000.0), resync_interval_ms: Some(1000.0), ..Default::default() };
        clock.update(&update).unwrap();
        time.set(SECOND / 2);
        assert_eq!(clock.now() - clock.true_now(), 500_000);
        time.set(SECOND + SECOND / 4);
        assert_eq!(clock.now() - clock.true_now(), 250_000, "error reset at the resync");
    }

    #[test]
    fn a_scheduled_step_back_makes_the_clock_repeat_itself() {
        let (time, mut clock) = clock_at(10 * SECOND);
        let update =
            ClockUpdate { step: Some(ClockStep { by_ms: -500.0, after_ms: 1000.0 }), ..Default::default() };
        clock.update(&update).unwrap();
        time.advance_ms(999.0);
        let before = clock.now();
        time.advance_ms(1.0);
        let after = clock.now();
        assert_eq!(after - before, 1_000_000 - 500_000_000);
        assert!(after < before, "the clock went back in time");
    }

    #[test]
    fn a_strobe_flips_the_clock_forward_and_back_every_period_until_it_ends() {
        let (time, mut clock) = clock_at(10 * SECOND);
        let strobe = Periodic { size_ms: 200.0, period_ms: 50.0, for_ms: 300.0 };
        let strobe = ClockUpdate { strobe: Some(strobe), ..Default::default() };
        clock.update(&strobe).unwrap();
        let error_at = |ms: f64| {
            time.set(10 * SECOND + millis_to_nanos(ms));
            (clock.now() - clock.true_now()) / 1_000_000
        };
        let errors: Vec<Nanos> = [10.0, 60.0, 110.0, 160.0, 260.0, 310.0].into_iter().map(error_at).collect();
        assert_eq!(errors, [0, 200, 0, 200, 200, 0], "flips every 50 ms for 300 ms, then stays right");
        // Going from a flipped period to the next, the clock runs back.
        let (before, after) = (error_at(99.0), error_at(100.0));
        assert!(after < before);
    }

    #[test]
    fn a_wobble_swings_as_a_sine_and_jitter_stays_in_its_bound_but_runs_backwards() {
        let (time, mut clock) = clock_at(10 * SECOND);
        let wobble = Periodic { size_ms: 100.0, period_ms: 400.0, for_ms: 1000.0 };
        let wobble = ClockUpdate { wobble: Some(wobble), ..Default::default() };
        clock.update(&wobble).unwrap();
        let error_at = |time: &ManualTrueTime, clock: &PhysicalClock, ms: f64| {
            time.set(10 * SECOND + millis_to_nanos(ms));
            clock.now() - clock.true_now()
        };
        assert_eq!(error_at(&time, &clock, 100.0), 100_000_000, "a quarter period: the top");
        assert_eq!(error_at(&time, &clock, 300.0), -100_000_000, "three quarters: the bottom");
        assert_eq!(error_at(&time, &clock, 1100.0), 0, "and then it stops");

        let (time, mut clock) = clock_at(10 * SECOND);
        let jitter = Lasting { bound_ms: 5.0, for_ms: 1000.0 };
        clock.update(&ClockUpdate { jitter: Some(jitter), ..Default::default() }).unwrap();
        let readings: Vec<Nanos> = (0..1000)
            .map(|us| {
                time.set(10 * SECOND + us * 1000);
                clock.now()
            })
            .collect();
        assert!(
            readings
                .iter()
                .enumerate()
                .all(|(us, &reading)| (reading - (10 * SECOND + us as Nanos * 1000)).abs() <= 5_000_000)
        );
        assert!(readings.windows(2).any(|pair| pair[1] < pair[0]), "jitter makes the clock run backwards");
        time.set(10 * SECOND + 500_000);
        assert_eq!(clock.now(), readings[500], "a reading is a function of true time: replays agree");
    }

    #[test]
    fn a_stepped_leap_second_repeats_a_second_and_a_smeared_one_never_goes_back() {
        let (time, mut clock) = clock_at(10 * SECOND);
        let leap = LeapSecond { after_ms: 100.0, taken: LeapTaken::Stepped };
        clock.update(&ClockUpdate { leap: Some(leap), ..Default::default() }).unwrap();
        time.set(10 * SECOND + 99 * 1_000_000);
        let before = clock.now();
        time.set(10 * SECOND + 100 * 1_000_000);
        assert_eq!(clock.now() - before, 1_000_000 - LEAP_NS, "one second back");

        let (time, mut clock) = clock_at(10 * SECOND);
        let smear = LeapSecond { after_ms: 2000.0, taken: LeapTaken::Smeared { window_ms: 4000.0 } };
        let smear = ClockUpdate { leap: Some(smear), ..Default::default() };
        clock.update(&smear).unwrap();
        let readings: Vec<Nanos> = (0..=50)
            .map(|tenth| {
                time.set(10 * SECOND + tenth * 100_000_000);
                clock.now()
            })
            .collect();
        assert!(readings.windows(2).all(|pair| pair[1] > pair[0]), "a smear never goes back");
        assert_eq!(readings[50] - (15 * SECOND), -LEAP_NS, "and has taken the whole second by its end");
    }

    #[test]
    fn coarse_resolution_gives_equal_readings_within_a_tick() {
        let (time, mut clock) = clock_at(10 * SECOND);
        clock.update(&ClockUpdate { resolution_ms: Some(10.0), ..Default::default() }).unwrap();
        time.advance_ms(1.0);
        let first = clock.now();
        time.advance_ms(5.0);
        assert_eq!(clock.now(), first);
        time.advance_ms(5.0);
        assert_eq!(clock.now(), first + 10_000_000);
    }

    #[test]
    fn changing_the_drift_rate_does_not_jump_the_clock() {
        let (time, mut clock) = clock_at(0);
        clock.update(&ClockUpdate { drift_ppm: Some(1000.0), ..Default::default() }).unwrap();
        time.set(SECOND);
        let before = clock.now();
        clock.update(&ClockUpdate { drift_ppm: Some(-1000.0), ..Default::default() }).unwrap();
        assert_eq!(clock.now(), before);
    }

    #[test]
    fn a_bad_update_is_refused_whole() {
        let (_, mut clock) = clock_at(0);
        let update = ClockUpdate { offset_ms: Some(5.0), drift_ppm: Some(f64::NAN), ..Default::default() };
        let error = clock.update(&update).unwrap_err();
        assert!(error.to_string().contains("drift_ppm"), "{error}");
        assert_eq!(clock.now(), clock.true_now(), "the offset was not applied either");
    }

    #[test]
    fn the_system_clock_cannot_be_modelled() {
        let mut clock = PhysicalClock::system();
        let update = ClockUpdate { offset_ms: Some(1.0), ..Default::default() };
        assert_eq!(clock.update(&update), Err(ClockError::SystemClock));
    }
}
