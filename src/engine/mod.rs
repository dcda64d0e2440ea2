//! Engines: what carries out a trial, behind one protocol.
//!
//! A trial is the same story whatever runs it (docs/design.md, "Experiments
//! and runs"): set every replica's clock and the network's faults; start
//! the workload; meanwhile, at their times, carry out the faults and sample
//! the clocks; when the workload is over, mend the network, wait for the
//! replicas to converge and read their final states. That story is written
//! once, in [`trial::run_trial`], together with every record it leaves in
//! the history. Stateright makes the same cut between a model and the
//! network it runs on: one actor API, several ways to run it.
//!
//! An [`Engine`] is what the story is told to. It knows how to do a handful
//! of things, and nothing about experiments:
//!
//! - carry out an [`Operation`] on a replica (set its clock or a link,
//!   pause, resume, crash, restart);
//! - tell true time and let it pass until a given moment;
//! - run the workload's clients, and hand back their write records;
//! - read the replicas' clocks, whether they have converged, and their
//!   final states.
//!
//! Three engines implement it: [`processes`], real `clocklab replica`
//! processes over loopback HTTP, signalled and killed for real, in real
//! time; [`sim`], the deterministic simulator, where time is a number
//! the engine moves on; and [`pglogical`], real PostgreSQL servers under
//! libfaketime clocks, one database per conflict resolution mode, with a
//! [`processes::Processes`] engine beside it for the lab's own strategies,
//! given the same operations. The live lab (`dashboard::lab`) drives a
//! [`processes::Processes`] engine through the same operations. An engine
//! that cannot carry out some operation says so in [`Engine::refusal`], and
//! [`check`] asks it about every operation a spec's trials would need
//! before any trial starts, so a run is refused with the fault and the
//! engine named instead of failing halfway.

pub mod pglogical;
pub mod processes;
pub mod sim;
#[cfg(test)]
mod tests;
pub mod trial;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::experiment::faults::timeline::{Operation, Step, timeline};
use crate::experiment::lease::LeaseSpec;
use crate::experiment::spec::{Spec, WorkloadSpec};
use crate::experiment::stop::Stopped;
use crate::experiment::workload::Counters;
use crate::history::spill::SpilledWrites;
use crate::history::{EngineKind, FaultName, LeaseRecord, TrialPlan, WriteRecord};
use crate::replica::core::Snapshot;

/// Time for an engine that runs in real time (real processes, real
/// servers): true time is the host's clock, and a wait runs on tokio's
/// monotonic clock from an anchor taken once, so a step of the host's clock
/// cannot stretch or cut it.
#[derive(Debug, Clone, Copy)]
pub struct RealTime {
    anchor_ns: Nanos,
    anchor: tokio::time::Instant,
}

impl RealTime {
    /// Anchored at `now` (and the host's clock now).
    pub fn anchored(now: tokio::time::Instant) -> Self {
        Self { anchor_ns: crate::clock::physical::system_now(), anchor: now }
    }

    /// Waits until true time `at`, ns (at once if it has passed).
    pub async fn sleep_until(&self, at: Nanos) {
        let after = std::time::Duration::from_nanos((at - self.anchor_ns).max(0) as u64);
        tokio::time::sleep_until(self.anchor + after).await;
    }
}

pub use self::processes::cluster::ClusterError;
pub use self::trial::{SpilledTrial, TrialOutcome, run_trial};

/// Why an engine could not carry out a trial.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// The real database (`pg`).
    #[error(transparent)]
    Pg(#[from] crate::pg::PgError),
    /// The workload's clients could not be run to their end.
    #[error("the workload failed: {0}")]
    Workload(String),
}

/// A spec asks for what an engine cannot do.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// An operation of the trial protocol.
    #[error(
        "the {engine} engine cannot {what} (the spec's {name} at {at_ms} ms, sweep point {point}): {reason}"
    )]
    Operation {
        engine: &'static str,
        /// The operation, in words.
        what: String,
        /// The record it would have left: the fault (or setting) it belongs to.
        name: FaultName,
        at_ms: f64,
        point: usize,
        reason: String,
    },
    /// The kind of workload.
    #[error("the {engine} engine cannot {what}: {reason}")]
    Workload { engine: &'static str, what: String, reason: String },
}

/// One reading of a replica's clocks during the workload.
#[derive(Debug, Clone)]
pub struct ClockSample {
    pub replica: ReplicaId,
    /// True time of the reading, ns.
    pub true_ns: Nanos,
    /// The replica's physical clock minus true time, ns.
    pub offset_ns: Nanos,
    /// Its estimates of its peers' offsets, as `GET /admin/status` gives them.
    pub peer_offsets: Value,
}

/// One trial's workload, as every engine runs it: `spec`'s clients, each
/// writing every bucket, from now for `duration_ms`.
#[derive(Debug, Clone)]
pub struct Workload {
    pub spec: WorkloadSpec,
    pub buckets: Vec<String>,
    pub duration_ms: u64,
    /// Lease-holding workers instead of `spec`'s clients, if set.
    pub lease: Option<LeaseSpec>,
    /// The run's seed, mixed with point, trial and client by each client.
    pub seed: u64,
    pub plan: TrialPlan,
    /// What the progress display reads while the clients run.
    pub counters: Arc<Counters>,
}

/// What a trial's workload leaves in the history: the clients' writes, or
/// the lease workers' (and their lock service's) records.
#[derive(Debug, Default)]
pub struct WorkloadRecords {
    /// In the order they were invoked.
    pub writes: Writes,
    /// In true-time order.
    pub leases: Vec<LeaseRecord>,
}

/// A trial's writes, in the order they were invoked: held, or on disk
/// once there are many (`history::spill`; the simulator spills past
/// [`SimOptions::spill_after_writes`](crate::sim::SimOptions::spill_after_writes),
/// the real engines hold theirs, since a real trial lasts minutes at most).
#[derive(Debug)]
pub enum Writes {
    Held(Vec<WriteRecord>),
    Spilled(SpilledWrites),
}

impl Default for Writes {
    fn default() -> Self {
        Writes::Held(Vec::new())
    }
}

/// A spawned task that ends when its handle is dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What carries out a trial: real processes, the simulator, or anything
/// else that can do these few things to a set of replicas `1..=N`.
///
/// Methods that may wait are `async`; in the simulator they never do (the
/// world runs forward inside them), so its trials are driven by a plain
/// `block_on`.
pub trait Engine {
    /// Which engine it is, as trial records name it.
    const KIND: EngineKind;

    /// Why this engine cannot carry out `operation`, if it cannot; asked of
    /// every operation a spec would need before any trial starts ([`check`]).
    fn refusal(operation: &Operation) -> Option<String> {
        let _ = operation;
        None
    }

    /// Why this engine cannot run lease workers, if it cannot.
    fn lease_refusal() -> Option<String> {
        None
    }

    /// True time now, ns since the epoch.
    fn now(&self) -> Nanos;

    /// Lets true time pass until `at` (ns since the epoch).
    fn run_until(&mut self, at: Nanos) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Carries out one operation on one replica.
    fn apply(&mut self, operation: &Operation) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Starts `workload`'s clients now; they stop issuing operations after
    /// its duration.
    fn start_workload(&mut self, workload: Workload) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Waits until every client (or worker) has finished; returns their records.
    fn finish_workload(&mut self) -> impl Future<Output = Result<WorkloadRecords, EngineError>> + Send;

    /// Reads every running replica's clocks. The readings may come later
    /// than the call (real replicas answer over the network, and a paused
    /// one not at all): the protocol collects them once the workload is over.
    fn sample_clocks(&mut self) -> BoxFuture<'static, Vec<ClockSample>>;

    /// Whether every replica holds every write any replica holds.
    fn converged(&mut self) -> impl Future<Output = Result<bool, EngineError>> + Send;

    /// The buckets out of service on `replica` because their plugin
    /// failed, each with the failure.
    fn failed_buckets(
        &mut self,
        replica: ReplicaId,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, EngineError>> + Send;

    /// What the system under test said about the trial in its own words
    /// (a real database's log lines on the conflicts it resolved); asked
    /// once, after the final states.
    fn notes(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// Everything `replica` holds: every bucket, key and sibling.
    fn state(&mut self, replica: ReplicaId) -> impl Future<Output = Result<Snapshot, EngineError>> + Send;
}

/// Checks that engine `kind` can carry out every operation `spec`'s trials
/// would need: the clocks and links it sets, every scheduled fault (at
/// every sweep value, and every nemesis's draw) and its end.
pub fn check(spec: &Spec, kind: EngineKind) -> Result<(), Refused> {
    if kind != EngineKind::Pglogical
        && let Some(bucket) = spec.pg_buckets().next()
    {
        return Err(Refused::Workload {
            engine: kind.name(),
            what: format!("run {bucket}"),
            reason: "PostgreSQL's buckets run on the pglogical engine (engine = \"pglogical\", or --system pglogical)"
                .into(),
        });
    }
    match kind {
        EngineKind::Processes => check_with::<processes::Processes>(spec),
        EngineKind::Sim => check_with::<sim::SimEngine>(spec),
        EngineKind::Pglogical => pglogical::check(spec),
    }
}

/// [`check`] for one engine type.
pub fn check_with<E: Engine>(spec: &Spec) -> Result<(), Refused> {
    if spec.lease.is_some()
        && let Some(reason) = E::lease_refusal()
    {
        return Err(Refused::Workload { engine: E::KIND.name(), what: "run lease workers".into(), reason });
    }
    for (plan, spec) in spec.plans() {
        let baseline = spec.baseline(plan);
        let at_start = baseline.start().into_iter().map(|step| (0.0, step));
        let faults = spec.faults_of(plan);
        let scheduled = timeline(&faults, &baseline, spec.duration_ms as f64)
            .into_iter()
            .flat_map(|(at, steps)| steps.into_iter().map(move |step| (at, step)));
        let after = baseline.heal().into_iter().map(|step| (spec.duration_ms as f64, step));
        for (at_ms, step) in at_start.chain(scheduled).chain(after) {
            if let Some(reason) = E::refusal(&step.operation) {
                return Err(refused::<E>(&step, at_ms, plan.point, reason));
            }
        }
    }
    Ok(())
}

fn refused<E: Engine>(step: &Step, at_ms: f64, point: usize, reason: String) -> Refused {
    let what = step.operation.in_words();
    Refused::Operation { engine: E::KIND.name(), what, name: step.name, at_ms, point, reason }
}
