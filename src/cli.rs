//! The `clocklab` command line.
//!
//! - `clocklab replica` starts one replica process. Once it is ready it
//!   prints one JSON line, `{"id":ID,"addr":"HOST:PORT"}`, on stdout, so a
//!   parent process can spawn it with `--listen 127.0.0.1:0` and learn its
//!   port. Ready means its store is open, its log replayed and its listener
//!   bound; a replica that cannot start prints no such line, and exits
//!   non-zero with one `error: ...` line on stderr.
//! - `clocklab experiment NAME` runs the spec `NAME.toml` and writes
//!   `results/NAME/RUN-ID/`; `clocklab experiment --list` lists the
//!   experiments. Specs come from `--experiments DIR`, else `./experiments`
//!   if there is one, else the copies built into the binary (see
//!   [`crate::builtin`]).
//! - `clocklab experiment NAME --sim` runs it in the simulator instead.
//! - `clocklab validate NAME` runs it both ways and compares them.
//! - `clocklab analyze RUN_DIR` runs the oracle again on a saved history.
//! - `clocklab explore STRATEGY` searches every story within bounds for
//!   the smallest one in which the strategy loses a write, and writes it
//!   as a scenario (`--out`, default `results/stories/`).
//! - `clocklab dashboard [--port P]` serves the dashboard on 127.0.0.1 and
//!   prints its URL once it can serve; its page comes from `--web DIR`,
//!   else `./web`, else the binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::builtin::Folder;
use crate::clock::dots::ReplicaId;
use crate::clock::update::{ClockStep, ClockUpdate};
use crate::replica::peer_policy::ReplicationOptions;
use crate::replica::replication::Peer;
use crate::replica::{ClockChoice, ReplicaOptions};

#[derive(Debug, Parser)]
#[command(name = "clocklab", version, about = "A lab for the trouble with clocks in replicated databases")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start one replica process.
    Replica(ReplicaArgs),
    /// Start one lease worker process (the runner starts these for a
    /// spec with [lease]; see docs/design.md section 12).
    LeaseWorker(LeaseWorkerArgs),
    /// Run an experiment: a cluster, a workload, a sweep, the oracle, plots.
    Experiment(ExperimentArgs),
    /// Run the oracle again on a saved run and rewrite its summary and plots.
    Analyze(AnalyzeArgs),
    /// Join the parts of a run made with `experiment --shard K/N` into one
    /// run, judged and reported as if it had run whole.
    Merge(MergeArgs),
    /// Serve the dashboard: results, dropped writes explained, a live lab, Figure 8-3.
    Dashboard(DashboardArgs),
    /// Run an experiment on real processes and in the simulator, and compare
    /// their drop rates point by point.
    Validate(ValidateArgs),
    /// Work with strategies: `clocklab strategy check ./my_rule.py`.
    #[command(subcommand)]
    Strategy(StrategyCommand),
    /// Find the smallest story in which a strategy loses a write: every
    /// story within the bounds, shortest first (see docs/design.md).
    Explore(ExploreArgs),
}

/// How far a search over stories looks (`explore`, `strategy check --exhaustive`).
#[derive(Debug, Args)]
pub struct BoundsArgs {
    /// Replicas in every story (2 to 4).
    #[arg(long, default_value_t = crate::explore::Bounds::default().replicas)]
    pub replicas: usize,
    /// Client writes per story, at most (1 to 6).
    #[arg(long, default_value_t = crate::explore::Bounds::default().writes)]
    pub writes: usize,
    /// Keys the writes may go to (1 to 3: x, y, z).
    #[arg(long, default_value_t = crate::explore::Bounds::default().keys)]
    pub keys: usize,
    /// The offsets, in ms, each replica's clock may start at, comma-separated.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, default_value = "0,5")]
    pub offsets: Vec<f64>,
    /// Clock changes (to another of the offsets) a story may make.
    #[arg(long, default_value_t = 0)]
    pub clock_steps: usize,
    /// Give up after exploring this many distinct states.
    #[arg(long, default_value_t = crate::explore::DEFAULT_MAX_STATES)]
    pub max_states: usize,
}

impl BoundsArgs {
    pub fn bounds(&self) -> crate::explore::Bounds {
        crate::explore::Bounds {
            replicas: self.replicas,
            writes: self.writes,
            keys: self.keys,
            offsets_ms: self.offsets.clone(),
            clock_steps: self.clock_steps,
            max_states: self.max_states,
        }
    }
}

#[derive(Debug, Args)]
pub struct ExploreArgs {
    /// A built-in strategy's name or a plugin (a path to an executable).
    pub strategy: String,
    /// Parameters for the plugin's `init`, as a JSON object.
    #[arg(long, default_value = "{}", value_parser = parse_object)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Which losses count: any, clock (a causality or real-time violation),
    /// causality, realtime, concurrent, or broken (only a broken promise).
    #[arg(long, default_value = "any", value_parser = parse_target)]
    pub cause: crate::explore::Target,
    #[command(flatten)]
    pub bounds: BoundsArgs,
    /// Where the story found is written, as NAME.toml and NAME.golden.
    #[arg(long, default_value = "results/stories")]
    pub out: PathBuf,
}

impl ExploreArgs {
    pub fn lineup(&self) -> crate::strategy::plugin::Lineup {
        lineup_of(&self.strategy, &self.parameters)
    }
}

fn parse_target(text: &str) -> Result<crate::explore::Target, String> {
    crate::explore::Target::parse(text).map_err(|error| error.to_string())
}

/// One strategy: a built-in by name, else a plugin at that path.
pub fn lineup_of(
    strategy: &str,
    parameters: &serde_json::Map<String, serde_json::Value>,
) -> crate::strategy::plugin::Lineup {
    let builtin = crate::strategy::registry().into_iter().find(|builtin| builtin.name() == strategy);
    match builtin {
        Some(strategy) => crate::strategy::plugin::Lineup { builtins: vec![strategy], plugins: Vec::new() },
        None => {
            let mut plugin = crate::strategy::plugin::PluginSpec::at(strategy);
            plugin.parameters = parameters.clone();
            crate::strategy::plugin::Lineup { builtins: Vec::new(), plugins: vec![plugin] }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum StrategyCommand {
    /// Check that a strategy keeps the promises replicas need to converge,
    /// over random histories; print a shrunk counterexample if it does not.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A plugin (a path to an executable) or a built-in strategy's name.
    pub strategy: String,
    /// Parameters for the plugin's `init`, as a JSON object.
    #[arg(long, default_value = "{}", value_parser = parse_object)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Random histories to try.
    #[arg(long, default_value_t = crate::conformance::DEFAULT_CASES)]
    pub cases: usize,
    /// Seeds the histories (printed, to replay a failure).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Instead of random histories, try every story within the bounds,
    /// shortest first: a broken rule is shown with a shortest story.
    #[arg(long)]
    pub exhaustive: bool,
    #[command(flatten)]
    pub bounds: BoundsArgs,
}

fn parse_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    serde_json::from_str(text).map_err(|error| format!("expected a JSON object: {error}"))
}

impl CheckArgs {
    /// The strategy to check: a built-in by name, else a plugin.
    pub fn lineup(&self) -> crate::strategy::plugin::Lineup {
        lineup_of(&self.strategy, &self.parameters)
    }

    pub fn options(&self) -> crate::conformance::CheckOptions {
        crate::conformance::CheckOptions { cases: self.cases, seed: self.seed, ..Default::default() }
    }
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The experiment, as for `clocklab experiment`.
    pub name: String,
    /// The spec's [quick] variant.
    #[arg(long)]
    pub quick: bool,
    /// Trials per point on real processes (default: the spec's).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000))]
    pub trials: Option<usize>,
    /// Trials per point in the simulator [default: 10 times the real ones].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub sim_trials: Option<usize>,
    /// Seed for the workload's choices (default: the spec's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where experiment specs live (as for `clocklab experiment`).
    #[arg(long)]
    pub experiments: Option<PathBuf>,
    /// Where both runs are written.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

impl ValidateArgs {
    pub fn options(&self) -> crate::validate::ValidateOptions {
        crate::validate::ValidateOptions {
            wanted: crate::experiment::Wanted {
                experiment: self.name.clone(),
                experiments: Folder::experiments(self.experiments.as_deref()),
                quick: self.quick,
                seed: self.seed,
                engine: None,
                trials: self.trials,
                plugins: Vec::new(),
            },
            sim_trials: self.sim_trials,
            results_dir: self.results.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// The port on 127.0.0.1 (0 picks a free one; the URL is printed).
    #[arg(long, default_value_t = crate::dashboard::DEFAULT_PORT)]
    pub port: u16,
    /// Where the runs are.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Where experiment specs and scenarios/ are [default: ./experiments if
    /// present, else the built-in ones].
    #[arg(long)]
    pub experiments: Option<PathBuf>,
    /// The page's files [default: ./web if present, else the built-in page].
    #[arg(long)]
    pub web: Option<PathBuf>,
    /// A plugin strategy for the live lab, the step-through and the
    /// experiments run from the page, beside the built-ins; repeat for more.
    #[arg(long = "strategy", value_name = "PATH")]
    pub strategies: Vec<PathBuf>,
}

impl DashboardArgs {
    pub fn options(&self) -> crate::dashboard::DashboardOptions {
        crate::dashboard::DashboardOptions {
            web: Folder::web(self.web.as_deref()),
            results_dir: self.results.clone(),
            scenarios: Folder::scenarios(self.experiments.as_deref()),
            lease_stories: Folder::lease_stories(self.experiments.as_deref()),
            presets: Folder::presets(self.experiments.as_deref()),
            experiments: Folder::experiments(self.experiments.as_deref()),
            plugins: self.strategies.iter().map(crate::strategy::plugin::PluginSpec::at).collect(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The experiment: a name (e.g. `skew`; `--list` shows them) or a path to a .toml spec.
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// List the experiments with what each asks, and exit.
    #[arg(long, conflicts_with = "name")]
    pub list: bool,
    /// A small, fast variant (the spec's [quick] section), for smoke tests.
    #[arg(long)]
    pub quick: bool,
    /// Seed for the workload's choices (default: the spec's); printed with the run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Trials per sweep point (default: the spec's, or its [quick] one).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub trials: Option<usize>,
    /// Run in the deterministic simulator instead of real processes (as a
    /// spec's `engine = "sim"` does): the same replica cores under simulated
    /// time, network and disks; the same seed gives the same history.
    #[arg(long)]
    pub sim: bool,
    /// Run against a real database too (as a spec's `engine = "pglogical"`
    /// does): PostgreSQL servers replicating with pglogical, one bucket per
    /// conflict resolution mode, beside the lab's replicas for the spec's
    /// strategies. Needs postgresql-15, postgresql-15-pglogical, libfaketime.
    #[arg(long, value_enum, conflicts_with = "sim")]
    pub system: Option<System>,
    /// Run only part K of N of the run's trials (every N-th, from the K-th),
    /// into a directory of its own that `clocklab merge` joins with the
    /// other parts' (see docs/design.md, "Shards").
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::experiment::shard::Shard>,
    /// Write the history gzip-compressed as it goes (`history.jsonl.gz`,
    /// and the drops as `drops.json.gz`): about a tenth of the disk, for
    /// long runs and soaks. Every reader takes either form.
    #[arg(long)]
    pub gzip: bool,
    /// Writes a simulated trial holds in memory before it spills them to a
    /// temporary file, to be judged a range of keys at a time: fewer save
    /// memory on long trials.
    #[arg(long, value_name = "WRITES", default_value_t = crate::history::spill::SPILL_AFTER_WRITES)]
    pub spill_after: usize,
    /// A plugin strategy (an executable speaking the plugin protocol) to
    /// run as one more bucket beside the spec's; repeat for more.
    #[arg(long = "strategy", value_name = "PATH")]
    pub strategies: Vec<PathBuf>,
    /// Where experiment specs live [default: ./experiments if present, else
    /// the built-in ones].
    #[arg(long)]
    pub experiments: Option<PathBuf>,
    /// Where runs are written, as RESULTS/NAME/RUN-ID/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

impl ExperimentArgs {
    /// Where specs are looked up.
    pub fn folder(&self) -> Folder {
        Folder::experiments(self.experiments.as_deref())
    }

    pub fn options(&self) -> crate::runner::RunOptions {
        crate::runner::RunOptions {
            wanted: crate::experiment::Wanted {
                experiment: self.name.clone().unwrap_or_default(),
                experiments: self.folder(),
                quick: self.quick,
                seed: self.seed,
                engine: match (self.sim, self.system) {
                    (true, _) => Some(crate::history::EngineKind::Sim),
                    (false, Some(System::Pglogical)) => Some(crate::history::EngineKind::Pglogical),
                    (false, None) => None,
                },
                trials: self.trials,
                plugins: self.strategies.clone(),
            },
            results_dir: self.results.clone(),
            progress: None,
            shard: self.shard,
            gzip: self.gzip,
            spill_after_writes: self.spill_after,
        }
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Every part's directory (`RESULTS/NAME/RUN-ID`), one per part.
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// Where the merged run is written, as RESULTS/NAME/RUN-ID/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A run directory holding history.jsonl and spec.toml.
    pub run_dir: PathBuf,
}

/// A real system to put under the lab's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum System {
    /// PostgreSQL with pglogical, multi-master.
    Pglogical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockKind {
    /// The operating system's clock as it is (libfaketime and friends act on it).
    System,
    /// True time through a clock model, changeable live with PUT /admin/clock.
    Model,
}

#[derive(Debug, Args)]
pub struct LeaseWorkerArgs {
    /// This worker's id: a small positive integer.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub id: u32,
    /// Address to listen on for the runner; port 0 picks a free port
    /// (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The lock service, HOST:PORT.
    #[arg(long)]
    pub service: SocketAddr,
    /// The replica the protected values live on, as ID=HOST:PORT.
    #[arg(long, value_parser = parse_peer)]
    pub storage: Peer,
    /// The bucket holding the protected values.
    #[arg(long, default_value = "lww-hlc")]
    pub bucket: String,
    /// The guards to run a loop for, comma-separated: wall-clock, monotonic, fenced.
    #[arg(long, value_delimiter = ',', default_value = "wall-clock,monotonic,fenced")]
    pub guards: Vec<crate::lease::Guard>,
    /// The least a lease must have left to be acted on, ms.
    #[arg(long, default_value_t = 100.0)]
    pub margin_ms: f64,
    /// Renew when less than this is left, ms.
    #[arg(long, default_value_t = 500.0)]
    pub renew_ms: f64,
    /// Work between reading and writing the protected value, ms.
    #[arg(long, default_value_t = 50.0)]
    pub work_ms: f64,
    /// Between rounds, ms.
    #[arg(long, default_value_t = 100.0)]
    pub idle_ms: f64,
    /// Before asking again for a lock held by another, ms.
    #[arg(long, default_value_t = 50.0)]
    pub retry_ms: f64,
    /// Shared secret for admin requests, the service and the replica (header x-cluster-token).
    #[arg(long, env = "CLOCKLAB_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: String,
}

impl LeaseWorkerArgs {
    /// The worker's options, or why these flags do not make sense.
    pub fn options(&self) -> Result<crate::leaseholder::WorkerOptions, String> {
        let timing = crate::lease::worker::TimingMs {
            margin: self.margin_ms,
            renew: self.renew_ms,
            work: self.work_ms,
            idle: self.idle_ms,
            retry: self.retry_ms,
        }
        .checked(|name| format!("--{name}-ms"))?;
        if self.guards.is_empty() {
            return Err("--guards names at least one guard".into());
        }
        Ok(crate::leaseholder::WorkerOptions {
            id: crate::lease::WorkerId(self.id),
            service: self.service,
            storage_id: self.storage.id,
            storage: self.storage.addr,
            bucket: self.bucket.clone(),
            guards: self.guards.clone(),
            timing,
            token: self.cluster_token.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct ReplicaArgs {
    /// This replica's id: a small positive integer, unique in the cluster.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub id: ReplicaId,
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Bind with SO_REUSEPORT, to take over a port a supervisor reserved
    /// (the experiment runner holds its replicas' ports for the cluster's
    /// whole life this way, so no other program can take one between its
    /// choice and the replica's start, or while the replica is down).
    #[arg(long)]
    pub reuse_port: bool,
    /// Directory for this replica's SQLite file (created if missing).
    #[arg(long)]
    pub data: PathBuf,
    /// The other replicas, as ID=HOST:PORT, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<Peer>,
    /// Shared secret for admin and replication requests (header x-cluster-token).
    #[arg(long, env = "CLOCKLAB_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: String,
    /// Which physical clock to read.
    #[arg(long, value_enum, default_value_t = ClockKind::System)]
    pub clock: ClockKind,
    #[command(flatten)]
    pub model: ClockModelArgs,
    /// Seed for the randomness of link faults; random if not given (logged).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Refuse client writes while most peers' clocks read more than this
    /// many ms from ours (estimated from replication round trips).
    #[arg(long)]
    pub max_peer_offset_ms: Option<f64>,
    /// Strategies' parameters as JSON, by strategy, e.g.
    /// '{"truetime": {"epsilon_ms": 20}}'.
    #[arg(long, value_parser = parse_parameters, default_value = "{}")]
    pub strategy_parameters: crate::strategy::Parameters,
    /// A plugin strategy to run as a child process: its path, or its
    /// `[[plugins]]` entry as JSON ('{"path": "...", "parameters": {...}}').
    /// Repeat for more.
    #[arg(long = "plugin", value_parser = parse_plugin)]
    pub plugins: Vec<crate::strategy::plugin::PluginSpec>,
}

fn parse_plugin(text: &str) -> Result<crate::strategy::plugin::PluginSpec, String> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|error| format!("expected {{\"path\": ..}}: {error}"));
    }
    Ok(crate::strategy::plugin::PluginSpec::at(text))
}

fn parse_parameters(text: &str) -> Result<crate::strategy::Parameters, String> {
    let parameters: crate::strategy::Parameters = serde_json::from_str(text)
        .map_err(|error| format!(r#"expected {{"STRATEGY": {{"NAME": VALUE}}}}: {error}"#))?;
    crate::strategy::registry_with(&parameters).map_err(|error| error.to_string())?;
    Ok(parameters)
}

/// Clock-model settings at start (need `--clock model`).
#[derive(Debug, Args, Default)]
pub struct ClockModelArgs {
    /// Fixed offset from true time, in ms (positive: ahead).
    #[arg(long, allow_hyphen_values = true)]
    pub offset_ms: Option<f64>,
    /// Drift in parts per million (positive: runs fast).
    #[arg(long, allow_hyphen_values = true)]
    pub drift_ppm: Option<f64>,
    /// Clock tick in ms (0: full resolution).
    #[arg(long)]
    pub resolution_ms: Option<f64>,
    /// Resync (discard drift error) every this many ms (0: never).
    #[arg(long)]
    pub resync_interval_ms: Option<f64>,
    /// Step the clock by this many ms (negative: back), as an NTP reset.
    #[arg(long, allow_hyphen_values = true)]
    pub step_ms: Option<f64>,
    /// ...this many ms after start (default: at once).
    #[arg(long)]
    pub step_after_ms: Option<f64>,
}

impl ClockModelArgs {
    fn update(&self) -> ClockUpdate {
        ClockUpdate {
            offset_ms: self.offset_ms,
            drift_ppm: self.drift_ppm,
            resolution_ms: self.resolution_ms,
            resync_interval_ms: self.resync_interval_ms,
            step: self.step_ms.map(|by_ms| ClockStep { by_ms, after_ms: self.step_after_ms.unwrap_or(0.0) }),
            ..Default::default()
        }
    }
}

fn parse_peer(text: &str) -> Result<Peer, String> {
    let (id, addr) = text.split_once('=').ok_or_else(|| format!("{text:?}: expected ID=HOST:PORT"))?;
    let id = id.trim().parse().map_err(|_| format!("{text:?}: {id:?} is not a replica id"))?;
    let addr = addr.trim().parse().map_err(|_| format!("{text:?}: {addr:?} is not HOST:PORT"))?;
    Ok(Peer { id, addr })
}

impl ReplicaArgs {
    /// The replica's options, or why these flags do not make sense together.
    pub fn options(&self, seed: u64) -> Result<ReplicaOptions, String> {
        let update = self.model.update();
        update.validate().map_err(|error| error.to_string())?;
        let clock = match self.clock {
            ClockKind::Model => ClockChoice::Model(Box::new(update)),
            ClockKind::System if update == ClockUpdate::default() => ClockChoice::System,
            ClockKind::System => return Err("clock-model flags (--offset-ms, ...) need --clock model".into()),
        };
        if let Some(bound) = self.max_peer_offset_ms
            && !(bound.is_finite() && bound >= 0.0)
        {
            return Err(format!("--max-peer-offset-ms must be 0 or more, got {bound}"));
        }
        Ok(ReplicaOptions {
            id: self.id,
            data_dir: self.data.clone(),
            peers: self.peers.clone(),
            cluster_token: self.cluster_token.clone(),
            clock,
            seed,
            replication: ReplicationOptions::default(),
            max_peer_offset_ms: self.max_peer_offset_ms,
            strategy_parameters: self.strategy_parameters.clone(),
            plugins: self.plugins.clone(),
        })
    }
}
