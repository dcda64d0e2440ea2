//! The engine of real processes: `clocklab replica` processes on loopback
//! ports, each with its own SQLite file, driven over their admin API.
//!
//! Every operation is what an operator would do: a clock or a link set
//! with `PUT /admin/clock` or `PUT /admin/links`, a pause with SIGSTOP and
//! SIGCONT, a crash with SIGKILL and a restart of the same binary on the
//! same data. True time is the harness's own clock (never faked), and it
//! passes at its own pace: [`Engine::run_until`] sleeps. The workload's
//! clients run as tasks beside the faults, over HTTP, as in `workload`.
//!
//! The engine owns its [`Cluster`]: dropping it (a failed trial, Ctrl-C)
//! kills every replica and aborts the clients.

pub mod cluster;
pub mod lease;
pub mod lock_service;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use self::cluster::{Cluster, ClusterOptions, Signal};
use self::lease::LeaseProcesses;
use super::trial::SAMPLE_INTERVAL;
use super::{AbortOnDrop, ClockSample, Engine, EngineError, RealTime, Workload, WorkloadRecords, Writes};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::system_now;
use crate::experiment::faults::timeline::Operation;
use crate::experiment::spec::Spec;
use crate::experiment::workload::{self, Target};
use crate::history::{EngineKind, TrialPlan, WriteRecord};
use crate::replica::core::Snapshot;

/// A cluster of real replica processes, as an engine.
pub struct Processes {
    cluster: Cluster,
    /// A moment in both of the harness's clocks, true time (ns) and the
    /// monotonic one, to turn a true time to sleep until into an instant.
    anchor: RealTime,
    /// The workload's clients, while they run; aborted if dropped.
    clients: Option<AbortOnDrop<Vec<WriteRecord>>>,
    /// Lease workers and their lock service, in a lease trial; stopped if dropped.
    lease: Option<LeaseProcesses>,
    /// When the workload's time is up.
    workload_ends: tokio::time::Instant,
}

impl Processes {
    /// Starts `spec`'s replicas for trial `plan`, with their data under
    /// `data_dir` (which must be empty). `executable` is the `clocklab`
    /// binary the replicas run (`None`: this process's own).
    pub async fn start(
        spec: &Spec,
        plan: TrialPlan,
        data_dir: &Path,
        token: &str,
        http: reqwest::Client,
        executable: Option<&Path>,
    ) -> Result<Self, EngineError> {
        let mut replica_args = vec!["--clock".to_string(), "model".to_string()];
        if let Some(ms) = spec.sweep.parameter.offset_bound(spec.max_peer_offset_ms, plan.value) {
            replica_args.extend(["--max-peer-offset-ms".to_string(), ms.to_string()]);
        }
        let parameters = spec.sweep.parameter.parameters_for(&spec.parameters, plan.value);
        if !parameters.is_empty() {
            let json = serde_json::to_string(&parameters).unwrap_or_else(|_| "{}".into());
            replica_args.extend(["--strategy-parameters".to_string(), json]);
        }
        for plugin in &spec.plugins {
            let json = serde_json::to_string(plugin).unwrap_or_else(|_| "{}".into());
            replica_args.extend(["--plugin".to_string(), json]);
        }
        let options = ClusterOptions {
            replicas: spec.replicas,
            token: token.to_string(),
            executable: executable.map(Path::to_path_buf),
            replica_args,
            ..Default::default()
        };
        let cluster = Cluster::start(options, data_dir, http.clone()).await?;
        // Lease workers start with the cluster, so that the workload begins
        // as soon as it is asked to, not after their processes' start-up.
        let lease = match spec.sweep.parameter.lease_for(spec.lease.as_ref(), plan.value) {
            Some(lease) => {
                let executable =
                    cluster.executable().map_err(|error| EngineError::Workload(error.to_string()))?;
                Some(LeaseProcesses::start(&lease, plan, &cluster, &executable, http).await?)
            }
            None => None,
        };
        Ok(Self { lease, ..Self::of(cluster) })
    }

    /// The engine of a cluster already running (the live lab's).
    pub fn of(cluster: Cluster) -> Self {
        let now = tokio::time::Instant::now();
        Self { cluster, anchor: RealTime::anchored(now), clients: None, lease: None, workload_ends: now }
    }

    /// The lease workers, in a lease trial.
    fn lease(&self) -> Result<&LeaseProcesses, EngineError> {
        self.lease.as_ref().ok_or_else(|| EngineError::Workload("this trial has no lease workers".into()))
    }

    /// The cluster, for what is not an operation: its clients, addresses, status.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Stops every replica and waits for each to exit.
    pub async fn stop(mut self) {
        self.clients = None;
        self.cluster.stop().await;
    }
}

/// How long lease workers may take, after the workload, to finish their
/// round and hand over their records.
const LEASE_FINISH_TIMEOUT: Duration = Duration::from_secs(10);

impl Engine for Processes {
    const KIND: EngineKind = EngineKind::Processes;

    fn now(&self) -> Nanos {
        system_now()
    }

    async fn run_until(&mut self, at: Nanos) -> Result<(), EngineError> {
        self.anchor.sleep_until(at).await;
        Ok(())
    }

    async fn apply(&mut self, operation: &Operation) -> Result<(), EngineError> {
        let cluster = &mut self.cluster;
        match operation {
            Operation::SetClock { replica, update } => {
                cluster.set_clock(*replica, update).await?;
            }
            Operation::SetLink { replica, update } => {
                cluster.set_link(*replica, update).await?;
            }
            Operation::Pause { replica } => cluster.signal(*replica, Signal::Pause)?,
            Operation::Resume { replica } => cluster.signal(*replica, Signal::Resume)?,
            Operation::Crash { replica } => cluster.crash(*replica).await?,
            Operation::Restart { replica } => cluster.restart(*replica).await?,
            Operation::PauseWorker { worker } => self.lease()?.signal(*worker, true)?,
            Operation::ResumeWorker { worker } => self.lease()?.signal(*worker, false)?,
            Operation::SetWorkerClock { worker, update } => self.lease()?.set_clock(*worker, update).await?,
        }
        Ok(())
    }

    async fn start_workload(&mut self, workload: Workload) -> Result<(), EngineError> {
        self.workload_ends = tokio::time::Instant::now() + Duration::from_millis(workload.duration_ms);
        if workload.lease.is_some() {
            return self.lease()?.begin(workload.duration_ms).await;
        }
        let target = Arc::new(Target {
            point: workload.plan.point,
            trial: workload.plan.trial,
            replicas: self.cluster.ids().map(|id| self.cluster.replica(id).clone()).collect(),
            buckets: workload.buckets,
            duration: Duration::from_millis(workload.duration_ms),
            seed: workload.seed,
        });
        let (spec, counters) = (workload.spec, workload.counters);
        let clients = tokio::spawn(async move { workload::run(&spec, target, counters).await });
        self.clients = Some(AbortOnDrop(clients));
        Ok(())
    }

    async fn finish_workload(&mut self) -> Result<WorkloadRecords, EngineError> {
        if let Some(lease) = self.lease.take() {
            tokio::time::sleep_until(self.workload_ends).await;
            let leases = lease.finish(LEASE_FINISH_TIMEOUT).await?;
            return Ok(WorkloadRecords { writes: Writes::default(), leases });
        }
        let Some(mut clients) = self.clients.take() else { return Ok(WorkloadRecords::default()) };
        let writes = (&mut clients.0).await.map_err(|error| EngineError::Workload(error.to_string()))?;
        Ok(WorkloadRecords { writes: Writes::Held(writes), leases: Vec::new() })
    }

    fn sample_clocks(&mut self) -> BoxFuture<'static, Vec<ClockSample>> {
        let admin = self.cluster.client();
        let readings = tokio::spawn(async move {
            let requests = admin.ids().map(|id| {
                let admin = admin.clone();
                async move { (id, admin.status_within(id, SAMPLE_INTERVAL).await) }
            });
            // A replica that does not answer in time (paused, crashed) is skipped this once.
            futures::future::join_all(requests)
                .await
                .into_iter()
                .filter_map(|(replica, answer)| {
                    let status = answer.ok()?;
                    Some(ClockSample {
                        replica,
                        true_ns: status.true_ns,
                        offset_ns: status.offset_ns,
                        peer_offsets: serde_json::to_value(&status.peer_offsets).unwrap_or_default(),
                    })
                })
                .collect()
        });
        Box::pin(async move { readings.await.unwrap_or_default() })
    }

    async fn converged(&mut self) -> Result<bool, EngineError> {
        let mut marks = Vec::new();
        for id in self.cluster.ids() {
            marks.push(self.cluster.status(id).await?.high_water);
        }
        Ok(marks.windows(2).all(|pair| pair[0] == pair[1]))
    }

    async fn failed_buckets(&mut self, replica: ReplicaId) -> Result<BTreeMap<String, String>, EngineError> {
        Ok(self.cluster.status(replica).await?.failed_buckets)
    }

    async fn state(&mut self, replica: ReplicaId) -> Result<Snapshot, EngineError> {
        Ok(self.cluster.state(replica).await?)
    }
}

/// Runs one trial of `spec` on a fresh cluster of real processes, with
/// replica data under `data_dir` (which must be empty), and stops it.
pub async fn run_trial(
    spec: &Spec,
    plan: TrialPlan,
    data_dir: &Path,
    token: &str,
    http: reqwest::Client,
    counters: Arc<crate::experiment::workload::Counters>,
    executable: Option<&Path>,
) -> Result<super::TrialOutcome, EngineError> {
    let mut engine = Processes::start(spec, plan, data_dir, token, http, executable).await?;
    let outcome = super::run_trial(&mut engine, spec, plan, counters).await;
    engine.stop().await;
    outcome
}
