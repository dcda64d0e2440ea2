//! The swept parameter: what it is called, and what each of its values
//! does to a trial's clocks, faults, workload and strategies.

use serde::{Deserialize, Serialize};

use super::{ClockSpec, Spec, WorkloadSpec, shown_number};
use crate::clock::dots::ReplicaId;
use crate::experiment::faults::FaultSpec;
use crate::experiment::lease::LeaseSpec;
use crate::strategy;

/// Where replica `id` of `replicas` sits between the first (1.0) and the
/// last (0.0), evenly spaced.
fn position(id: ReplicaId, replicas: usize) -> f64 {
    let steps = replicas.saturating_sub(1).max(1) as f64;
    (steps - f64::from(id - 1)) / steps
}

/// The parameter an experiment varies, and optionally a second one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub parameter: Parameter,
    pub values: Vec<f64>,
    /// A second parameter (`[sweep.across]`): every value of the first is
    /// run at every value of this one, and the report draws the grid as a
    /// heatmap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub across: Option<AcrossSpec>,
}

/// The second parameter of a two-parameter sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcrossSpec {
    pub parameter: Parameter,
    pub values: Vec<f64>,
}

/// One value of the second parameter: the spec with that value set, and
/// where its points start in the run's point numbering.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// The index of its first point: points go through the first
    /// parameter's values once per value of the second.
    pub offset: usize,
    /// The second parameter and its value here (`None`: a one-parameter sweep).
    pub across: Option<(Parameter, f64)>,
    /// The spec with that value folded in, and no second parameter.
    pub spec: Spec,
}

/// What a sweep value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// The spread of clock offsets, ms: replica 1 runs `skew` ahead of the
    /// last replica, and the ones between are spaced evenly (DDIA Figure 8-3:
    /// node 1's clock is ahead of node 3's).
    SkewMs,
    /// The spread of drift rates, ppm: replica 1 runs fast by the value, the
    /// last replica slow by it, the ones between evenly spaced.
    DriftPpm,
    /// How often every clock is resynchronised (the sawtooth), ms.
    ResyncIntervalMs,
    /// How coarsely every clock ticks, ms.
    ResolutionMs,
    /// The size of every `step` fault, ms (negative: back); 0 is no step.
    StepMs,
    /// The length of every `cut` fault, ms; 0 is no cut.
    CutMs,
    /// The length of every `pause` fault, ms; 0 is no pause.
    PauseMs,
    /// How often `crash` faults repeat, ms; 0 is no crash at all.
    CrashEveryMs,
    /// The replicas' `max_peer_offset_ms` bound; 0 is no bound.
    MaxPeerOffsetMs,
    /// `truetime`'s clock uncertainty, ms: how long every write waits.
    EpsilonMs,
    /// How many keys the clients share: fewer keys, more writes to each.
    Keys,
    /// Operations per second per client: more writes, more of them at once.
    RatePerClient,
    /// How many replicas a `[lease]` table's workers write to (1: one
    /// store that sees every token; more: a multi-leader store).
    StorageReplicas,
}

impl Parameter {
    pub fn name(self) -> &'static str {
        match self {
            Parameter::SkewMs => "skew_ms",
            Parameter::DriftPpm => "drift_ppm",
            Parameter::ResyncIntervalMs => "resync_interval_ms",
            Parameter::ResolutionMs => "resolution_ms",
            Parameter::StepMs => "step_ms",
            Parameter::CutMs => "cut_ms",
            Parameter::PauseMs => "pause_ms",
            Parameter::CrashEveryMs => "crash_every_ms",
            Parameter::MaxPeerOffsetMs => "max_peer_offset_ms",
            Parameter::EpsilonMs => "epsilon_ms",
            Parameter::Keys => "keys",
            Parameter::RatePerClient => "rate_per_client",
            Parameter::StorageReplicas => "storage_replicas",
        }
    }

    /// What the parameter is, with its unit, for a plot's axis.
    pub fn axis_label(self) -> &'static str {
        match self {
            Parameter::SkewMs => "clock skew: replica 1 ahead of the last replica (ms)",
            Parameter::DriftPpm => "clock drift: replica 1 fast, the last replica slow (ppm)",
            Parameter::ResyncIntervalMs => "time between clock resyncs (ms)",
            Parameter::ResolutionMs => "clock resolution: how coarsely every clock ticks (ms)",
            Parameter::StepMs => "clock step mid-run (ms; negative is back)",
            Parameter::CutMs => "partition: how long the replica is cut off (ms)",
            Parameter::PauseMs => "process pause: how long the replica is stopped (ms)",
            Parameter::CrashEveryMs => "a replica killed and restarted every (ms)",
            Parameter::MaxPeerOffsetMs => "offset bound: refuse writes beyond it (ms)",
            Parameter::EpsilonMs => "truetime's assumed clock error, epsilon (ms)",
            Parameter::Keys => "keys the clients share (fewer: more writes each)",
            Parameter::RatePerClient => "operations per second per client",
            Parameter::StorageReplicas => "replicas the lease workers write to (1: one store)",
        }
    }

    /// A short description with the unit, for a narrow panel's axis.
    pub fn short_label(self) -> &'static str {
        match self {
            Parameter::SkewMs => "clock skew (ms)",
            Parameter::DriftPpm => "clock drift (ppm)",
            Parameter::ResyncIntervalMs => "resync every (ms)",
            Parameter::ResolutionMs => "clock tick (ms)",
            Parameter::StepMs => "clock step (ms)",
            Parameter::CutMs => "cut length (ms)",
            Parameter::PauseMs => "pause length (ms)",
            Parameter::CrashEveryMs => "a crash every (ms)",
            Parameter::MaxPeerOffsetMs => "offset bound (ms)",
            Parameter::EpsilonMs => "epsilon (ms)",
            Parameter::Keys => "keys",
            Parameter::RatePerClient => "operations/s per client",
            Parameter::StorageReplicas => "replicas written to",
        }
    }

    /// Every parameter, for lookups by name.
    pub const ALL: [Parameter; 13] = [
        Parameter::SkewMs,
        Parameter::DriftPpm,
        Parameter::ResyncIntervalMs,
        Parameter::ResolutionMs,
        Parameter::StepMs,
        Parameter::CutMs,
        Parameter::PauseMs,
        Parameter::CrashEveryMs,
        Parameter::MaxPeerOffsetMs,
        Parameter::EpsilonMs,
        Parameter::Keys,
        Parameter::RatePerClient,
        Parameter::StorageReplicas,
    ];

    /// The parameter named `name` (`skew_ms`), as a summary row names it.
    pub fn from_name(name: &str) -> Option<Parameter> {
        Parameter::ALL.into_iter().find(|parameter| parameter.name() == name)
    }

    /// For a parameter whose 0 means "not at all" at the far end of its
    /// scale (a period or a bound of 0 is never, not instantly), the word
    /// for it: a plot places it beyond the largest value, not at zero.
    pub fn zero_means(self) -> Option<&'static str> {
        match self {
            Parameter::ResyncIntervalMs | Parameter::CrashEveryMs => Some("never"),
            Parameter::MaxPeerOffsetMs => Some("no bound"),
            _ => None,
        }
    }

    /// A sweep point in words, for a headline: "when a clock is stepped
    /// back 500 ms", "with no offset bound".
    pub fn phrase(self, value: f64) -> String {
        let shown = shown_number(value.abs());
        let zero = value == 0.0;
        match self {
            Parameter::SkewMs if zero => "with every clock in step".into(),
            Parameter::SkewMs => format!("with clocks {shown} ms apart"),
            Parameter::DriftPpm if zero => "with no drift".into(),
            Parameter::DriftPpm => format!("with clocks drifting {shown} ppm fast and slow"),
            Parameter::ResyncIntervalMs if zero => "with no resync".into(),
            Parameter::ResyncIntervalMs => format!("with a resync every {shown} ms"),
            Parameter::ResolutionMs if zero => "with fine-grained clocks".into(),
            Parameter::ResolutionMs => format!("with clocks ticking every {shown} ms"),
            Parameter::StepMs if zero => "with no clock step".into(),
            Parameter::StepMs if value < 0.0 => format!("when a clock is stepped back {shown} ms"),
            Parameter::StepMs => format!("when a clock is stepped forward {shown} ms"),
            Parameter::CutMs if zero => "with no cut".into(),
            Parameter::CutMs => format!("with {shown} ms cuts"),
            Parameter::PauseMs if zero => "with no pause".into(),
            Parameter::PauseMs => format!("when a replica is paused for {shown} ms"),
            Parameter::CrashEveryMs if zero => "with no crash".into(),
            Parameter::CrashEveryMs => format!("with a crash every {shown} ms"),
            Parameter::MaxPeerOffsetMs if zero => "with no offset bound".into(),
            Parameter::MaxPeerOffsetMs => format!("refusing writes beyond {shown} ms of offset"),
            Parameter::EpsilonMs => format!("with epsilon {shown} ms"),
            Parameter::Keys if value == 1.0 => "with one key".into(),
            Parameter::Keys => format!("with {shown} keys"),
            Parameter::RatePerClient => format!("at {shown} operations/s per client"),
            Parameter::StorageReplicas if value == 1.0 => "with every worker writing to replica 1".into(),
            Parameter::StorageReplicas => format!("with the workers writing to {shown} replicas"),
        }
    }

    /// As [`phrase`](Self::phrase), in a lease run, whose pauses and clock
    /// steps are its workers'.
    pub fn lease_phrase(self, value: f64) -> String {
        let shown = shown_number(value.abs());
        match self {
            Parameter::PauseMs if value != 0.0 => format!("when a worker is paused for {shown} ms"),
            Parameter::StepMs if value < 0.0 => format!("when a worker's clock is stepped back {shown} ms"),
            Parameter::StepMs if value > 0.0 => {
                format!("when a worker's clock is stepped forward {shown} ms")
            }
            Parameter::CutMs if value != 0.0 => format!("with a replica cut off for {shown} ms"),
            _ => self.phrase(value),
        }
    }

    /// As [`axis_label`](Self::axis_label), in a lease run.
    pub fn lease_axis_label(self) -> &'static str {
        match self {
            Parameter::PauseMs => "process pause: how long the worker is stopped (ms)",
            Parameter::StepMs => "the worker's clock stepped mid-run (ms; negative is back)",
            _ => self.axis_label(),
        }
    }

    /// Replica `id`'s clock (of `replicas`) at sweep value `value`.
    pub fn clock_for(self, base: &ClockSpec, value: f64, id: ReplicaId, replicas: usize) -> ClockSpec {
        let place = position(id, replicas);
        let mut clock = ClockSpec {
            offset_ms: base.offset_ms + base.skew_ms * place,
            drift_ppm: base.drift_ppm + base.drift_spread_ppm * (2.0 * place - 1.0),
            skew_ms: 0.0,
            drift_spread_ppm: 0.0,
            ..base.clone()
        };
        match self {
            Parameter::SkewMs => clock.offset_ms = base.offset_ms + value * place,
            Parameter::DriftPpm => clock.drift_ppm = base.drift_ppm + value * (2.0 * place - 1.0),
            Parameter::ResyncIntervalMs => clock.resync_interval_ms = value,
            Parameter::ResolutionMs => clock.resolution_ms = value,
            Parameter::StepMs
            | Parameter::CutMs
            | Parameter::PauseMs
            | Parameter::CrashEveryMs
            | Parameter::MaxPeerOffsetMs
            | Parameter::EpsilonMs
            | Parameter::Keys
            | Parameter::RatePerClient
            | Parameter::StorageReplicas => {}
        }
        clock
    }

    /// The workload at sweep value `value`.
    pub fn workload_for(self, base: &WorkloadSpec, value: f64) -> WorkloadSpec {
        let mut workload = base.clone();
        match self {
            Parameter::Keys => workload.keys = value as usize,
            Parameter::RatePerClient => workload.rate_per_client = value,
            _ => {}
        }
        workload
    }

    /// The strategies' parameters at sweep value `value`.
    pub fn parameters_for(self, base: &strategy::Parameters, value: f64) -> strategy::Parameters {
        let mut parameters = base.clone();
        if self == Parameter::EpsilonMs {
            parameters.entry("truetime".into()).or_default().insert("epsilon_ms".into(), value.into());
        }
        parameters
    }

    /// The lease table at sweep value `value`, if the spec has one.
    pub fn lease_for(self, base: Option<&LeaseSpec>, value: f64) -> Option<LeaseSpec> {
        let mut lease = base?.clone();
        if self == Parameter::StorageReplicas {
            lease.storage_replicas = value as u32;
        }
        Some(lease)
    }

    /// The replicas' offset bound at sweep value `value`, if any.
    pub fn offset_bound(self, base: Option<f64>, value: f64) -> Option<f64> {
        match self {
            Parameter::MaxPeerOffsetMs => (value > 0.0).then_some(value),
            _ => base,
        }
    }

    /// Folds value `value` of this parameter into `spec`'s own settings, so
    /// that the spec runs at it whatever it sweeps (the second parameter of
    /// a two-parameter sweep).
    pub fn fix(self, spec: &mut Spec, value: f64) {
        match self {
            Parameter::SkewMs => spec.clocks.skew_ms = value,
            Parameter::DriftPpm => spec.clocks.drift_spread_ppm = value,
            Parameter::ResyncIntervalMs => spec.clocks.resync_interval_ms = value,
            Parameter::ResolutionMs => spec.clocks.resolution_ms = value,
            Parameter::StepMs | Parameter::CutMs | Parameter::PauseMs | Parameter::CrashEveryMs => {
                spec.faults = spec.faults.iter().filter_map(|fault| self.apply(fault, value)).collect();
            }
            Parameter::MaxPeerOffsetMs => {
                spec.max_peer_offset_ms = self.offset_bound(spec.max_peer_offset_ms, value)
            }
            Parameter::EpsilonMs => spec.parameters = self.parameters_for(&spec.parameters, value),
            Parameter::Keys | Parameter::RatePerClient => {
                spec.workload = self.workload_for(&spec.workload, value)
            }
            Parameter::StorageReplicas => spec.lease = self.lease_for(spec.lease.as_ref(), value),
        }
    }

    /// A scheduled fault at sweep value `value`, or `None` if the value
    /// turns it off (0: no step, cut, pause or crash).
    pub fn apply(self, fault: &FaultSpec, value: f64) -> Option<FaultSpec> {
        let mut fault = fault.clone();
        match (self, &mut fault) {
            (Parameter::StepMs, FaultSpec::Step { step_ms, .. } | FaultSpec::StepWorker { step_ms, .. }) => {
                *step_ms = value
            }
            (Parameter::CutMs, FaultSpec::Cut { duration_ms, .. })
            | (
                Parameter::PauseMs,
                FaultSpec::Pause { duration_ms, .. } | FaultSpec::PauseWorker { duration_ms, .. },
            ) => *duration_ms = value,
            (Parameter::CutMs, FaultSpec::Partition(partition)) => partition.duration_ms = value,
            (Parameter::CrashEveryMs, FaultSpec::Crash { .. }) if value <= 0.0 => return None,
            (Parameter::CrashEveryMs, FaultSpec::Crash { every_ms, .. }) => *every_ms = value,
            _ => {}
        }
        fault.is_active().then_some(fault)
    }
}
