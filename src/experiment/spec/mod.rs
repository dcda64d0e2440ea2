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
//! engine = "processes"  # or "sim": the simulator (--sim); or "pglogical": PostgreSQL (--system pglogical)
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
//! writes_per_key = 128      # a key is retired after this many writes, for a fresh one (0: never)
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

mod check;
mod sweep;
mod tables;
mod words;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use self::sweep::{AcrossSpec, Parameter, Slice, SweepSpec};
pub use self::tables::{ClockSpec, Contexts, ReplicaChoice, Script, WorkloadSpec};
use self::words::plain_problem;
pub use self::words::{short_numbers, shown_number};
pub use super::faults::NetworkSpec;

use super::chaos::ChaosSpec;
use super::faults::FaultSpec;
use super::faults::timeline::Baseline;
use crate::clock::dots::ReplicaId;
use crate::history::{EngineKind, TrialPlan};
use crate::pg::cluster::Resolution;
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
    /// What runs the trials: real processes (the default), the simulator,
    /// or PostgreSQL servers with pglogical for the `pg-*` buckets (beside
    /// real processes for the others).
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
    /// Lease-holding workers instead of the workload's clients (see
    /// `experiment::lease`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<super::lease::LeaseSpec>,
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
    /// What trial `plan` sets on its replicas before anything else: each
    /// replica's clock at the trial's sweep value, and the network's faults.
    pub fn baseline(&self, plan: TrialPlan) -> Baseline {
        let clocks = (1..=self.replicas as ReplicaId)
            .map(|id| self.sweep.parameter.clock_for(&self.clocks, plan.value, id, self.replicas).update())
            .collect();
        let network = self.network.is_faulty().then(|| self.network.clone());
        Baseline { replicas: self.replicas, clocks, network }
    }

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
            let workers = self.lease.as_ref().map_or(0, |lease| lease.workers);
            faults.extend(chaos.schedule(self.seed, plan, self.replicas, workers, self.duration_ms as f64));
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

    /// Sweep value `value` in words ("when a replica is paused for 500 ms";
    /// in a lease run, "when a worker is paused ...").
    pub fn phrase_at(&self, value: f64) -> String {
        match self.lease {
            Some(_) => self.sweep.parameter.lease_phrase(value),
            None => self.sweep.parameter.phrase(value),
        }
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
        // pglogical keeps one row per key, whichever mode chose it.
        let databases = self.pg_buckets().map(|bucket| (bucket.to_string(), Kind::LastWriteWins));
        builtins.chain(plugins).chain(databases).collect()
    }

    /// The spec's buckets that are pglogical's resolution modes.
    pub fn pg_buckets(&self) -> impl Iterator<Item = &str> {
        self.strategies.iter().map(String::as_str).filter(|bucket| Resolution::of_bucket(bucket).is_some())
    }

    /// What each built-in bucket's stamps are made of (plugins' are their own).
    pub fn stamps_at(&self, value: f64) -> BTreeMap<String, strategy::StampKind> {
        let lineup = self.lineup_at(value);
        let builtins =
            lineup.builtins.iter().map(|strategy| (strategy.name().to_string(), strategy.stamp_kind()));
        // A commit timestamp from the server's wall clock, then the node.
        let databases = self.pg_buckets().map(|bucket| (bucket.to_string(), strategy::StampKind::WallClock));
        builtins.chain(databases).collect()
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
