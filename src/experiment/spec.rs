//! Experiment specs: one TOML file per experiment, under `experiments/`.
//!
//! A spec says what cluster to start, what workload to drive at it, what
//! clocks and network to give it, and which one parameter to sweep. Every
//! sweep point runs `trials` times on a fresh cluster. An example, with every
//! field (the defaults are in [`Spec`] and its parts):
//!
//! ```toml
//! description = "What this experiment asks, in a sentence or two."
//! replicas = 3                                   # 2 to 9 replica processes
//! strategies = ["lww-wall", "lww-hlc", "vv"]     # buckets the workload writes (default: all)
//! seed = 1                                       # workload randomness (--seed overrides)
//! engine = "processes"                           # or "sim": the simulator (--sim overrides)
//! trials = 2                                     # runs per sweep point
//! duration_ms = 2000                             # workload time per trial
//! max_peer_offset_ms = 100  # optional: replicas refuse writes while their clock is this far off
//!
//! [parameters.truetime]    # a strategy's parameters (see each strategy)
//! epsilon_ms = 20
//!
//! [[plugins]]               # any number: plugin strategies (strategy::plugin)
//! path = "examples/strategies/lww_wall.py"  # relative to where clocklab runs
//! parameters = {}           # sent to the plugin in its `init`
//!
//! [workload]
//! clients = 8               # concurrent read-modify-write clients
//! keys = 40                 # keys they pick from, uniformly
//! rate_per_client = 100     # operations per second per client; 0 = flat out
//! replica_choice = "random" # "random" per operation, or "sticky" per client
//! contexts = "fresh"        # "fresh": read, then write; "stale": write with the last read, then read
//!
//! [network]
//! delay_ms = [1, 3]         # replication delay on every link: MS or [MIN, MAX]
//! loss = 0.0                # probability a replication message is lost
//!
//! [clocks]                  # every replica's clock model, before the sweep
//! drift_ppm = 0.0
//! resolution_ms = 0.0
//!
//! skew_ms = 0.0             # replica 1 this much ahead of the last, the others between
//! drift_spread_ppm = 0.0    # replica 1 this much faster, the last this much slower
//!
//! [[fault]]                 # any number: faults on a schedule (see experiment::faults)
//! kind = "step"
//! at_ms = 1000
//! replica = 1
//!
//! [sweep]
//! parameter = "skew_ms"     # see Parameter
//! values = [0, 10, 100, 1000]
//!
//! [sweep.across]            # optional: a second parameter; every pair is run
//! parameter = "rate_per_client"
//! values = [10, 60, 240]
//!
//! [quick]                   # what --quick changes, for a fast smoke run
//! trials = 1
//! duration_ms = 1000
//! values = [0, 1000]
//! across_values = [10, 240] # the second parameter's, if there is one
//!
//! [quiz]                    # optional: the dashboard's question (see experiment::quiz)
//! question = "Which strategy will silently drop the largest share of its writes?"
//! answer = "most_dropped"   # or "drops_none", "most_siblings", "no_clock_drops" (with `from`)
//! ```
//!
//! Unknown fields are errors, so a typo never silently falls back to a
//! default; every error names the file and the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;
use std::sync::Arc;

use super::chaos::ChaosSpec;
use super::faults::FaultSpec;
use crate::clock::dots::ReplicaId;
use crate::history::{EngineKind, TrialPlan};
use crate::strategy;
use crate::strategy::plugin::{Lineup, PluginFailure, PluginSpec};
use crate::strategy::{Kind, Strategy};

/// The most replicas an experiment may start.
pub const MAX_REPLICAS: usize = 9;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    /// Numbers too long to read (`1e300` written out) are shortened.
    #[error("{}: field `{field}`: {}", path.display(), short_numbers(problem))]
    Invalid { path: PathBuf, field: &'static str, problem: String },
    /// A value of the wrong type, a name nobody knows, a number out of
    /// range: found while reading, at the field `field` names (`workload.clients`,
    /// `fault[1].kind`).
    #[error("{}: field `{field}`: {}", path.display(), short_numbers(problem))]
    Field { path: PathBuf, field: String, problem: String },
}

/// A whole experiment, as read from its TOML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    #[serde(default = "default_strategies")]
    pub strategies: Vec<String>,
    /// Strategies' parameters, by strategy: `[parameters.truetime]`.
    #[serde(default, skip_serializing_if = "strategy::Parameters::is_empty")]
    pub parameters: strategy::Parameters,
    /// Plugin strategies, each a bucket beside the built-ins (see
    /// [`Spec::start_plugins`]). A run's saved spec names each plugin's
    /// bucket and kind, and lists the bucket in `strategies`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginSpec>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// What runs the trials: real processes (the default) or the simulator.
    #[serde(default, skip_serializing_if = "is_processes")]
    pub engine: EngineKind,
    #[serde(default = "default_trials")]
    pub trials: usize,
    /// Workload time per trial, ms.
    #[serde(default = "default_duration_ms")]
    pub duration_ms: u64,
    #[serde(default)]
    pub workload: WorkloadSpec,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub clocks: ClockSpec,
    /// Replicas refuse client writes while most peers' clocks read more than
    /// this many ms from theirs (`clocklab replica --max-peer-offset-ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_peer_offset_ms: Option<f64>,
    /// Faults on a schedule during each trial (see `experiment::faults`).
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpec>,
    /// A random nemesis: more faults, drawn per trial from the seed (see
    /// `experiment::chaos`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<ChaosSpec>,
    /// What others measured, for the report to set beside the lab's figures
    /// (see `report::published`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<PublishedFigure>,
    pub sweep: SweepSpec,
    #[serde(default)]
    pub quick: Option<QuickSpec>,
    /// The question the dashboard asks a class about this experiment, and
    /// which fact of a run answers it (see `experiment::quiz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiz: Option<super::quiz::QuizSpec>,
}

/// A result someone else published, which the experiment reproduces: the
/// report sets the lab's figure beside it (`report::published`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedFigure {
    /// What was measured, in a few words ("Riak, last-write-wins, healthy cluster").
    pub what: String,
    /// Where it was published.
    pub source: String,
    pub lost: u64,
    pub acknowledged: u64,
    /// The lab's strategy that stands for it, and the sweep value.
    pub strategy: String,
    pub value: f64,
}

fn is_processes(engine: &EngineKind) -> bool {
    *engine == EngineKind::Processes
}

fn default_replicas() -> usize {
    3
}
fn default_strategies() -> Vec<String> {
    strategy::registry().iter().map(|strategy| strategy.name().to_string()).collect()
}
fn default_seed() -> u64 {
    1
}
fn default_trials() -> usize {
    2
}
fn default_duration_ms() -> u64 {
    2000
}

/// The clients and what they do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSpec {
    /// Concurrent clients, each doing one read-modify-write at a time.
    pub clients: usize,
    /// How many keys the clients pick from, uniformly at random.
    pub keys: usize,
    /// Operations per second per client; 0 means as fast as replies come.
    pub rate_per_client: f64,
    pub replica_choice: ReplicaChoice,
    /// Which context a write carries (see `experiment::workload`).
    #[serde(skip_serializing_if = "Contexts::is_fresh")]
    pub contexts: Contexts,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        Self {
            clients: 8,
            keys: 40,
            rate_per_client: 100.0,
            replica_choice: ReplicaChoice::Random,
            contexts: Contexts::Fresh,
        }
    }
}

/// Which context a client's write carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contexts {
    /// The context of a read made just before: read, modify, write.
    #[default]
    Fresh,
    /// The context of the client's previous read of the key: write, then
    /// read for next time, so every write is at least one write behind.
    Stale,
}

impl Contexts {
    fn is_fresh(&self) -> bool {
        *self == Contexts::Fresh
    }
}

/// Which replica a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaChoice {
    /// A random replica for every operation: a client's read may land on a
    /// replica that has not seen its previous write.
    Random,
    /// Client `c` always uses replica `c mod replicas + 1`.
    Sticky,
}

/// Faults on every replication link for the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    /// Replication delay, ms: `[min, max]`, uniform.
    #[serde(deserialize_with = "delay_range")]
    pub delay_ms: [f64; 2],
    /// Probability that a replication message is lost.
    pub loss: f64,
    /// Probability that a replication message is delivered twice.
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicate: f64,
    /// Probability that a replication message's writes arrive in reverse order.
    #[serde(skip_serializing_if = "is_zero")]
    pub reorder: f64,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self { delay_ms: [0.0, 0.0], loss: 0.0, duplicate: 0.0, reorder: 0.0 }
    }
}

impl NetworkSpec {
    /// Whether the links need any fault set at all.
    pub fn is_faulty(&self) -> bool {
        self.delay_ms != [0.0, 0.0] || self.loss > 0.0 || self.duplicate > 0.0 || self.reorder > 0.0
    }
}

/// Accepts `5` or `[1, 5]`.
fn delay_range<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<[f64; 2], D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Delay {
        Fixed(f64),
        Range([f64; 2]),
    }
    Ok(match Delay::deserialize(deserializer)? {
        Delay::Fixed(ms) => [ms, ms],
        Delay::Range(range) => range,
    })
}

/// The clock model every replica starts from (see `clock::physical`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSpec {
    pub offset_ms: f64,
    pub drift_ppm: f64,
    pub resolution_ms: f64,
    pub resync_interval_ms: f64,
    /// Spreads offsets over the replicas: replica 1 runs this much ahead of
    /// the last, the others evenly between (what `skew_ms` sweeps).
    #[serde(skip_serializing_if = "is_zero")]
    pub skew_ms: f64,
    /// Spreads drift over the replicas: replica 1 gets `drift_ppm` plus
    /// this, the last replica `drift_ppm` minus this, the others evenly
    /// between. Only in specs; a replica is sent its own `drift_ppm`.
    #[serde(skip_serializing_if = "is_zero")]
    pub drift_spread_ppm: f64,
}

impl ClockSpec {
    /// The clock model as the admin API takes it (a replica gets its own
    /// offset and drift; the spreads stay in the spec).
    pub fn update(&self) -> crate::clock::physical::ClockUpdate {
        crate::clock::physical::ClockUpdate {
            offset_ms: Some(self.offset_ms),
            drift_ppm: Some(self.drift_ppm),
            resolution_ms: Some(self.resolution_ms),
            resync_interval_ms: Some(self.resync_interval_ms),
            ..Default::default()
        }
    }
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// A reader's complaint in a spec writer's words: Rust's type names
/// (`u64`) said as what they take.
fn plain_problem(message: &str) -> String {
    message
        .replace("expected u64", "expected a whole number, 0 or more")
        .replace("expected usize", "expected a whole number, 0 or more")
        .replace("expected u32", "expected a whole number, 0 or more")
        .replace("expected i64", "expected a whole number")
        .replace("expected f64", "expected a number")
        .trim()
        .to_string()
}

/// `text` with every run of more than 20 digits (a 300-digit `1e300`
/// written out) in its short scientific form.
pub fn short_numbers(text: &str) -> String {
    let mut shortened = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        shortened.push_str(&rest[..start]);
        let run = &rest[start..];
        let end = run.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(run.len());
        let digits = &run[..end];
        match digits.parse::<f64>() {
            Ok(number) if digits.len() > 20 => shortened.push_str(&format!("{number:.1e}")),
            _ => shortened.push_str(digits),
        }
        rest = &run[end..];
    }
    shortened.push_str(rest);
    shortened
}

/// A number as a sentence or a label shows it: no decimals for a whole
/// one, thousands grouped (`20,000`).
pub fn shown_number(number: f64) -> String {
    if number.fract() != 0.0 || number.abs() >= 1e15 {
        return format!("{number}");
    }
    let digits = format!("{:.0}", number.abs());
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if number < 0.0 { format!("-{grouped}") } else { grouped }
}

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
        }
    }

    /// Every parameter, for lookups by name.
    pub const ALL: [Parameter; 12] = [
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
            | Parameter::RatePerClient => {}
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
        }
    }

    /// A scheduled fault at sweep value `value`, or `None` if the value
    /// turns it off (0: no step, cut, pause or crash).
    pub fn apply(self, fault: &FaultSpec, value: f64) -> Option<FaultSpec> {
        let mut fault = fault.clone();
        match (self, &mut fault) {
            (Parameter::StepMs, FaultSpec::Step { step_ms, .. }) => *step_ms = value,
            (Parameter::CutMs, FaultSpec::Cut { duration_ms, .. })
            | (Parameter::PauseMs, FaultSpec::Pause { duration_ms, .. }) => *duration_ms = value,
            (Parameter::CutMs, FaultSpec::Partition(partition)) => partition.duration_ms = value,
            (Parameter::CrashEveryMs, FaultSpec::Crash { .. }) if value <= 0.0 => return None,
            (Parameter::CrashEveryMs, FaultSpec::Crash { every_ms, .. }) => *every_ms = value,
            _ => {}
        }
        fault.is_active().then_some(fault)
    }
}

/// Overrides for `--quick`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSpec {
    pub trials: Option<usize>,
    pub duration_ms: Option<u64>,
    pub values: Option<Vec<f64>>,
    /// The second parameter's values, for a two-parameter sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub across_values: Option<Vec<f64>>,
}

impl Spec {
    /// Whether trials have faults: scheduled ones, or a nemesis.
    pub fn has_faults(&self) -> bool {
        !self.faults.is_empty() || self.chaos.is_some()
    }

    /// The faults of one trial: the scheduled ones at the trial's swept
    /// value (leaving out those the value turns off), then the nemesis's.
    pub fn faults_of(&self, plan: crate::history::TrialPlan) -> Vec<FaultSpec> {
        let mut faults: Vec<FaultSpec> =
            self.faults.iter().filter_map(|fault| self.sweep.parameter.apply(fault, plan.value)).collect();
        if let Some(chaos) = &self.chaos {
            faults.extend(chaos.schedule(self.seed, plan, self.replicas, self.duration_ms as f64));
        }
        faults
    }
}

impl Spec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| SpecError::Read(path.to_path_buf(), error))?;
        Self::parse(&text, path)
    }

    /// Parses and checks spec text; `path` is only for messages. Every
    /// refusal names the file and the field.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SpecError> {
        let deserializer = toml::de::Deserializer::parse(text)
            .map_err(|error| SpecError::Parse(path.to_path_buf(), error))?;
        let spec: Spec = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let field = error.path().to_string();
            SpecError::Field {
                path: path.to_path_buf(),
                field: if field == "." { "(the whole file)".into() } else { field },
                problem: plain_problem(error.inner().message()),
            }
        })?;
        spec.check(path)?;
        Ok(spec)
    }

    /// The spec once per value of the second parameter, or itself alone.
    pub fn slices(&self) -> Vec<Slice> {
        let Some(across) = &self.sweep.across else {
            return vec![Slice { offset: 0, across: None, spec: self.clone() }];
        };
        let points = self.sweep.values.len();
        across
            .values
            .iter()
            .enumerate()
            .map(|(index, &value)| {
                let mut spec = self.clone();
                spec.sweep.across = None;
                across.parameter.fix(&mut spec, value);
                Slice { offset: index * points, across: Some((across.parameter, value)), spec }
            })
            .collect()
    }

    /// Every trial to run, point by point, trial by trial, each with the
    /// spec it runs on (its slice's).
    pub fn plans(&self) -> Vec<(TrialPlan, Spec)> {
        let mut plans = Vec::new();
        for slice in self.slices() {
            for (index, &value) in slice.spec.sweep.values.iter().enumerate() {
                for trial in 0..self.trials {
                    plans.push((TrialPlan { point: slice.offset + index, trial, value }, slice.spec.clone()));
                }
            }
        }
        plans
    }

    /// The spec with its `[quick]` overrides applied.
    pub fn quick(mut self) -> Self {
        if let Some(quick) = self.quick.take() {
            self.trials = quick.trials.unwrap_or(self.trials);
            self.duration_ms = quick.duration_ms.unwrap_or(self.duration_ms);
            self.sweep.values = quick.values.unwrap_or(self.sweep.values);
            if let (Some(across), Some(values)) = (&mut self.sweep.across, quick.across_values) {
                across.values = values;
            }
        }
        self
    }

    /// Starts each plugin once to learn its bucket's name and kind (see
    /// [`PluginSpec::describe`]), and adds the bucket to `strategies`.
    /// Paths are made absolute, so every replica finds the same file.
    pub fn start_plugins(&mut self) -> Result<(), PluginFailure> {
        crate::strategy::plugin::describe_all(&mut self.plugins)?;
        for name in self.plugins.iter().filter_map(|plugin| plugin.name.as_deref()) {
            if !self.strategies.iter().any(|bucket| bucket == name) {
                self.strategies.push(name.to_string());
            }
        }
        Ok(())
    }

    /// The strategies this spec's replicas run at sweep value `value`: the
    /// built-ins it names, with their parameters there, and its plugins.
    pub fn lineup_at(&self, value: f64) -> Lineup {
        let parameters = self.sweep.parameter.parameters_for(&self.parameters, value);
        // The spec was checked when it was loaded, parameters included.
        let builtins = strategy::registry_with(&parameters)
            .unwrap_or_default()
            .into_iter()
            .filter(|strategy| self.strategies.iter().any(|name| name == strategy.name()))
            .collect::<Vec<Arc<dyn Strategy>>>();
        Lineup { builtins, plugins: self.plugins.clone() }
    }

    /// Each bucket's kind at sweep value `value`, as its strategy declares it.
    pub fn kinds_at(&self, value: f64) -> BTreeMap<String, Kind> {
        let lineup = self.lineup_at(value);
        let builtins = lineup.builtins.iter().map(|strategy| (strategy.name().to_string(), strategy.kind()));
        let plugins = self.plugins.iter().filter_map(|plugin| Some((plugin.name.clone()?, plugin.kind?)));
        builtins.chain(plugins).collect()
    }

    /// What each built-in bucket's stamps are made of (plugins' are their own).
    pub fn stamps_at(&self, value: f64) -> BTreeMap<String, strategy::StampKind> {
        let lineup = self.lineup_at(value);
        lineup.builtins.iter().map(|strategy| (strategy.name().to_string(), strategy.stamp_kind())).collect()
    }

    fn check(&self, path: &Path) -> Result<(), SpecError> {
        let invalid = |field: &'static str, problem: String| SpecError::Invalid {
            path: path.to_path_buf(),
            field,
            problem,
        };
        if !(2..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(invalid("replicas", format!("must be 2 to {MAX_REPLICAS}, got {}", self.replicas)));
        }
        if self.strategies.is_empty() {
            return Err(invalid("strategies", "name at least one strategy".into()));
        }
        let mut known = default_strategies();
        known.extend(self.plugins.iter().filter_map(|plugin| plugin.name.clone()));
        if let Some(unknown) = self.strategies.iter().find(|name| !known.contains(name)) {
            return Err(invalid(
                "strategies",
                format!("unknown strategy {unknown:?}; known: {}", known.join(", ")),
            ));
        }
        let quick_values = self.quick.as_ref().and_then(|quick| quick.values.as_deref()).unwrap_or_default();
        for &value in self.sweep.values.iter().chain(quick_values) {
            let parameters = self.sweep.parameter.parameters_for(&self.parameters, value);
            strategy::registry_with(&parameters).map_err(|error| {
                let at = if parameters == self.parameters {
                    String::new()
                } else {
                    format!("at {} = {value}: ", self.sweep.parameter.name())
                };
                invalid("parameters", format!("{at}{error}"))
            })?;
        }
        if self.sweep.parameter == Parameter::Keys
            && let Some(bad) = self
                .sweep
                .values
                .iter()
                .chain(quick_values)
                .find(|keys| !(**keys >= 1.0 && keys.fract() == 0.0))
        {
            return Err(invalid(
                "sweep.values",
                format!("a number of keys is a whole number, 1 or more, not {bad}"),
            ));
        }
        if self.trials == 0 {
            return Err(invalid("trials", "must be at least 1".into()));
        }
        if self.duration_ms == 0 {
            return Err(invalid("duration_ms", "must be more than 0".into()));
        }
        if self.workload.clients == 0 {
            return Err(invalid("workload.clients", "must be at least 1".into()));
        }
        if self.workload.keys == 0 {
            return Err(invalid("workload.keys", "must be at least 1".into()));
        }
        if !(self.workload.rate_per_client.is_finite() && self.workload.rate_per_client >= 0.0) {
            return Err(invalid("workload.rate_per_client", "must be 0 or more".into()));
        }
        let [min, max] = self.network.delay_ms;
        if !(min.is_finite() && max.is_finite() && 0.0 <= min && min <= max) {
            return Err(invalid("network.delay_ms", "must be MS or [MIN, MAX] with 0 <= MIN <= MAX".into()));
        }
        if !(0.0..=1.0).contains(&self.network.loss) {
            return Err(invalid("network.loss", "must be a probability between 0 and 1".into()));
        }
        if self.sweep.values.is_empty() {
            return Err(invalid("sweep.values", "name at least one value".into()));
        }
        if let Some(bad) = self.sweep.values.iter().find(|value| !value.is_finite()) {
            return Err(invalid("sweep.values", format!("{bad} is not a number")));
        }
        if let Some(bound) = self.max_peer_offset_ms
            && !(bound.is_finite() && bound >= 0.0)
        {
            return Err(invalid("max_peer_offset_ms", format!("must be 0 or more, got {bound}")));
        }
        for figure in &self.published {
            if !self.strategies.contains(&figure.strategy) {
                return Err(invalid(
                    "published",
                    format!("strategy {:?} is not one this spec runs", figure.strategy),
                ));
            }
            if !self.sweep.values.contains(&figure.value) {
                return Err(invalid(
                    "published",
                    format!("value {} is not one the sweep runs", figure.value),
                ));
            }
            if figure.lost > figure.acknowledged {
                return Err(invalid(
                    "published",
                    format!("{} lost of {} acknowledged", figure.lost, figure.acknowledged),
                ));
            }
        }
        if let Some(chaos) = &self.chaos {
            chaos.check(self.replicas).map_err(|problem| invalid("chaos", problem))?;
        }
        for fault in &self.faults {
            fault.check(self.replicas).map_err(|problem| invalid("fault", problem))?;
            // The swept values set the faults' sizes: each must make sense.
            for &value in self.sweep.values.iter().chain(quick_values) {
                if let Some(swept) = self.sweep.parameter.apply(fault, value) {
                    swept.check(self.replicas).map_err(|problem| {
                        invalid("fault", format!("at {} = {value}: {problem}", self.sweep.parameter.name()))
                    })?;
                }
            }
        }
        if let Some(across) = &self.sweep.across {
            if across.parameter == self.sweep.parameter {
                return Err(invalid("sweep.across.parameter", "must differ from sweep.parameter".into()));
            }
            if across.values.is_empty() {
                return Err(invalid("sweep.across.values", "name at least one value".into()));
            }
            if let Some(bad) = across.values.iter().find(|value| !value.is_finite()) {
                return Err(invalid("sweep.across.values", format!("{bad} is not a number")));
            }
            // Each value of the second parameter makes a spec of its own,
            // which must hold up as any spec does.
            for slice in self.slices() {
                slice.spec.check(path)?;
            }
        }
        if let Some(quick) = &self.quick {
            if quick.trials == Some(0) {
                return Err(invalid("quick.trials", "must be at least 1".into()));
            }
            if quick.values.as_ref().is_some_and(Vec::is_empty) {
                return Err(invalid("quick.values", "name at least one value".into()));
            }
        }
        self.check_clocks(path)?;
        self.check_work(path)?;
        if self.quick.is_some() {
            self.clone().quick().check_work(path)?;
        }
        Ok(())
    }

    /// Every replica's clock at every sweep value must be one a replica
    /// takes (offsets within a year, and so on): a sweep value of `1e300`
    /// is refused here, not by an overflow mid-run.
    fn check_clocks(&self, path: &Path) -> Result<(), SpecError> {
        let quick_values = self.quick.as_ref().and_then(|quick| quick.values.as_deref()).unwrap_or_default();
        for &value in self.sweep.values.iter().chain(quick_values) {
            for id in 1..=self.replicas as ReplicaId {
                let clock = self.sweep.parameter.clock_for(&self.clocks, value, id, self.replicas).update();
                if let Err(error) = clock.validate() {
                    let field = if self
                        .sweep
                        .parameter
                        .clock_for(&self.clocks, 0.0, id, self.replicas)
                        .update()
                        .validate()
                        .is_ok()
                    {
                        "sweep.values"
                    } else {
                        "clocks"
                    };
                    return Err(SpecError::Invalid {
                        path: path.to_path_buf(),
                        field,
                        problem: format!(
                            "at {} = {value}, replica {id}'s clock: {error}",
                            self.sweep.parameter.name()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[sweep]\nparameter = \"skew_ms\"\nvalues = [0, 100]\n";

    fn parse(text: &str) -> Result<Spec, String> {
        Spec::parse(text, Path::new("experiments/test.toml")).map_err(|error| error.to_string())
    }

    #[test]
    fn a_second_parameter_makes_a_slice_per_value_each_checked() {
        let text = format!("{MINIMAL}[sweep.across]\nparameter = \"rate_per_client\"\nvalues = [10, 40]\n");
        let spec = parse(&text).unwrap();
        let slices = spec.slices();
        assert_eq!(slices.len(), 2);
        assert_eq!((slices[1].offset, slices[1].across), (2, Some((Parameter::RatePerClient, 40.0))));
        assert_eq!(slices[1].spec.workload.rate_per_client, 40.0);
        assert_eq!(slices[1].spec.sweep.across, None);
        let points: Vec<usize> = spec.plans().iter().map(|(plan, _)| plan.point).collect();
        assert_eq!(points, vec![0, 0, 1, 1, 2, 2, 3, 3], "two trials at each of four points");
        // The same parameter twice, or a value a spec cannot take, is refused.
        let twice = format!("{MINIMAL}[sweep.across]\nparameter = \"skew_ms\"\nvalues = [1]\n");
        assert!(parse(&twice).unwrap_err().contains("sweep.across.parameter"));
        let negative = format!("{MINIMAL}[sweep.across]\nparameter = \"rate_per_client\"\nvalues = [-5]\n");
        assert!(parse(&negative).unwrap_err().contains("workload.rate_per_client"));
        let zero_keys = format!("{MINIMAL}[sweep.across]\nparameter = \"keys\"\nvalues = [0]\n");
        assert!(parse(&zero_keys).unwrap_err().contains("workload.keys"));
    }

    #[test]
    fn a_minimal_spec_takes_the_defaults() {
        let spec = parse(MINIMAL).unwrap();
        assert_eq!(spec.replicas, 3);
        assert_eq!(spec.strategies, strategy::NAMES);
        assert_eq!(spec.sweep.parameter, Parameter::SkewMs);
    }

    #[test]
    fn an_unknown_field_is_named_with_the_file() {
        let error = parse(&format!("replicaz = 3\n{MINIMAL}")).unwrap_err();
        assert!(error.contains("experiments/test.toml") && error.contains("replicaz"), "{error}");
        let error = parse(&format!("{MINIMAL}[workload]\nclient = 3\n")).unwrap_err();
        assert!(error.contains("client"), "{error}");
    }

    #[test]
    fn invalid_values_name_their_field() {
        for (text, field) in [
            ("replicas = 1\n", "replicas"),
            ("strategies = [\"lww-sundial\"]\n", "strategies"),
            ("trials = 0\n", "trials"),
            ("[network]\ndelay_ms = [5, 1]\n", "network.delay_ms"),
            ("[network]\nloss = 2.0\n", "network.loss"),
            ("[workload]\nkeys = 0\n", "workload.keys"),
            ("[parameters.truetime]\nepsilon_ms = -5\n", "parameters"),
            ("[parameters.truetime]\nepsilon = 5\n", "parameters"),
            ("[parameters.lww-wall]\nepsilon_ms = 5\n", "parameters"),
            ("[parameters.lww-sundial]\nx = 5\n", "parameters"),
        ] {
            // Top-level fields must come before the [sweep] table in TOML.
            let text =
                if text.starts_with('[') { format!("{MINIMAL}{text}") } else { format!("{text}{MINIMAL}") };
            let error = parse(&text).unwrap_err();
            assert!(error.contains(&format!("`{field}`")), "{text}: {error}");
        }
        let error = parse("[sweep]\nparameter = \"moon_phase\"\nvalues = [1]\n").unwrap_err();
        assert!(error.contains("moon_phase"), "{error}");
    }

    #[test]
    fn skew_puts_replica_one_ahead_and_the_last_at_zero() {
        let base = ClockSpec::default();
        let offsets: Vec<f64> =
            (1..=3).map(|id| Parameter::SkewMs.clock_for(&base, 100.0, id, 3).offset_ms).collect();
        assert_eq!(offsets, [100.0, 50.0, 0.0]);
    }

    #[test]
    fn quick_overrides_trials_duration_and_values() {
        let spec =
            parse(&format!("trials = 3\n{MINIMAL}[quick]\ntrials = 1\nvalues = [0]\n")).unwrap().quick();
        assert_eq!((spec.trials, spec.sweep.values.clone()), (1, vec![0.0]));
    }

    #[test]
    fn drift_spreads_from_fast_to_slow_and_the_sweep_sizes_faults() {
        let base = ClockSpec { drift_spread_ppm: 100.0, ..ClockSpec::default() };
        let drifts: Vec<f64> =
            (1..=3).map(|id| Parameter::ResolutionMs.clock_for(&base, 10.0, id, 3).drift_ppm).collect();
        assert_eq!(drifts, [100.0, 0.0, -100.0]);
        let step = FaultSpec::Step { at_ms: 100.0, replica: 1, step_ms: 0.0 };
        let stepped = FaultSpec::Step { at_ms: 100.0, replica: 1, step_ms: -500.0 };
        assert_eq!(Parameter::StepMs.apply(&step, -500.0), Some(stepped));
        assert_eq!(Parameter::StepMs.apply(&step, 0.0), None, "a zero step is no fault");
    }

    #[test]
    fn a_fault_the_sweep_makes_senseless_is_refused() {
        let text = "[[fault]]\nkind = \"crash\"\nat_ms = 100\nreplica = 1\n\n[sweep]\nparameter = \"crash_every_ms\"\nvalues = [0, 50]\n";
        let error = parse(text).unwrap_err();
        assert!(error.contains("crash_every_ms = 50") && error.contains("every_ms"), "{error}");
        let far = "[[fault]]\nkind = \"pause\"\nat_ms = 100\nreplica = 7\nduration_ms = 10\n\n[sweep]\nparameter = \"pause_ms\"\nvalues = [0]\n";
        assert!(parse(far).unwrap_err().contains("replica 7"));
    }
}
