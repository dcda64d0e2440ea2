//! Leases in the live lab: two lease workers on the running cluster, for a
//! class to pause (DDIA Figures 8-4 and 8-5, live).
//!
//! The lab starts the same lock service and `clocklab lease-worker`
//! processes an experiment does (`engine::processes::lease`), with two
//! guards side by side, `monotonic` and `fenced`, at a pace a class can
//! follow: a lease lasts [`TTL_MS`], and a round's work between the check
//! and the write lasts [`WORK_MS`], so a pause by hand lands between them
//! more often than not. Every [`super::STATUS_INTERVAL`] the watcher asks
//! each running worker for its records (a paused one cannot answer, and
//! keeps what it said last), adds the service's, and judges them as the
//! experiment's oracle does (`analysis::lease::judge`): who holds each
//! lease at the service, who believes it holds it, and what the writes
//! did. The protected value is read from the replica the workers write to,
//! so a lost update is what the storage holds, not what anyone believes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::LabView;
use crate::dashboard::DashboardError;

use crate::analysis::lease::{WriteVerdict, judge};
use crate::clock::physical::system_now;
use crate::engine::processes::cluster::{Cluster, ClusterClient};
use crate::engine::processes::lease::LeaseProcesses;
use crate::experiment::lease::LeaseSpec;
use crate::history::{LeaseEvent, LeaseRecord, TrialPlan};
use crate::lease::{Guard, Token, WorkerId, key_of};

/// The lease's time to live, ms: long enough to see a lease held.
pub const TTL_MS: f64 = 4000.0;
/// The work between reading the protected value and writing it, ms: most
/// of a round, so a pause by hand lands between check and write.
pub const WORK_MS: f64 = 1500.0;
/// How long the workers run at most, ms: a lesson's length.
pub const RUN_FOR_MS: u64 = 60 * 60 * 1000;
/// How long a pause between check and write may wait for its moment.
const MID_ROUND_TIMEOUT: Duration = Duration::from_secs(15);
/// How often it looks.
const MID_ROUND_POLL: Duration = Duration::from_millis(20);
/// How long the watcher waits for a worker's records.
const RECORDS_TIMEOUT: Duration = Duration::from_millis(500);

/// The lab's lease: two workers, `monotonic` and `fenced`, writing to replica 1.
pub fn lab_spec(bucket: &str) -> LeaseSpec {
    LeaseSpec {
        workers: 2,
        guards: vec![Guard::Monotonic, Guard::Fenced],
        ttl_ms: TTL_MS,
        margin_ms: 200.0,
        renew_ms: 2000.0,
        work_ms: WORK_MS,
        idle_ms: 300.0,
        retry_ms: 300.0,
        bucket: bucket.to_string(),
        stagger_ms: 500.0,
        ..LeaseSpec::default()
    }
}

/// A lease at the page: its token and its worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holder {
    pub worker: WorkerId,
    pub token: Token,
}

/// One guard's lease and writes, as the page shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardView {
    pub guard: Guard,
    /// Who holds the lease now, by the service's view (TTL from its grant
    /// or last renewal, in true time).
    pub service: Option<Holder>,
    /// Who believes it holds it now: two at once is Figure 8-4.
    pub believers: Vec<Holder>,
    pub acked: u64,
    /// Accepted though sent after their lease had ended at the service.
    pub stale_acked: u64,
    /// Refused by the storage for an old token.
    pub fenced: u64,
    /// The protected value the storage holds (`None`: not read).
    pub value: Option<u64>,
    /// Acknowledged increments the value lacks.
    pub lost_updates: u64,
    /// The last write, in words.
    pub last_write: Option<String>,
}

/// One worker, as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerView {
    pub id: WorkerId,
    pub paused: bool,
}

/// The lab's leases, as the page shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseView {
    pub ttl_ms: f64,
    pub work_ms: f64,
    pub workers: Vec<WorkerView>,
    pub guards: Vec<GuardView>,
}

/// The lab's lease workers and their service.
pub struct LabLease {
    spec: LeaseSpec,
    processes: LeaseProcesses,
    paused: BTreeSet<WorkerId>,
    /// Each worker's records, as it last gave them.
    known: BTreeMap<WorkerId, Vec<LeaseRecord>>,
}

impl LabLease {
    /// Starts the service and the workers on `cluster`, and their loops.
    pub async fn start(cluster: &Cluster, bucket: &str, http: reqwest::Client) -> Result<Self, String> {
        let spec = lab_spec(bucket);
        let executable = cluster.executable().map_err(|error| error.to_string())?;
        let plan = TrialPlan { point: 0, trial: 0, value: 0.0 };
        let processes = LeaseProcesses::start(&spec, plan, cluster, &executable, http)
            .await
            .map_err(|error| error.to_string())?;
        processes.begin(RUN_FOR_MS).await.map_err(|error| error.to_string())?;
        Ok(Self { spec, processes, paused: BTreeSet::new(), known: BTreeMap::new() })
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) to worker `id`.
    pub fn set_paused(&mut self, id: WorkerId, pause: bool) -> Result<(), String> {
        if !self.spec.worker_ids().any(|known| known == id) {
            return Err(format!("no {id}; workers are 1 to {}", self.spec.workers));
        }
        self.processes.signal(id, pause).map_err(|error| error.to_string())?;
        if pause {
            self.paused.insert(id);
        } else {
            self.paused.remove(&id);
        }
        Ok(())
    }

    /// Stops worker `id` once every guard's loop of it has checked its
    /// lease (valid) and not yet written: between check and write, where a
    /// pause does its harm. Gives up after [`MID_ROUND_TIMEOUT`].
    pub async fn pause_mid_round(&mut self, id: WorkerId) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + MID_ROUND_TIMEOUT;
        loop {
            let records =
                self.processes.records_of(id, RECORDS_TIMEOUT).await.map_err(|error| error.to_string())?;
            let mid_round = self.spec.guards.iter().all(|&guard| {
                let last = records.iter().rev().find(|record| {
                    record.guard == guard
                        && matches!(record.event, LeaseEvent::Checked { .. } | LeaseEvent::Write { .. })
                });
                last.is_some_and(|record| record.event == LeaseEvent::Checked { valid: true })
                    && last.is_some_and(|record| {
                        system_now() - record.true_ns < crate::clock::millis_to_nanos(self.spec.work_ms / 2.0)
                    })
            });
            if mid_round {
                self.known.insert(id, records);
                return self.set_paused(id, true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{id} was not between its check and its write within {MID_ROUND_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(MID_ROUND_POLL).await;
        }
    }

    /// Reads what the workers and the service recorded, and the protected
    /// values, and judges them.
    pub async fn refresh(&mut self, storage: &ClusterClient) -> LeaseView {
        for id in self.spec.worker_ids().filter(|id| !self.paused.contains(id)) {
            if let Ok(records) = self.processes.records_of(id, RECORDS_TIMEOUT).await {
                self.known.insert(id, records);
            }
        }
        let mut records = self.processes.service_records();
        records.extend(self.known.values().flatten().cloned());
        records.sort_by_key(|record| record.true_ns);
        let now = system_now();
        let mut guards = Vec::new();
        for (guard, verdict) in judge(&records, [], now) {
            let value = read_value(storage, &self.spec, guard).await;
            let holder = |worker, token| Holder { worker, token };
            let last_write = verdict.writes.last().map(|write| {
                let what = match write.verdict {
                    WriteVerdict::Fine => "accepted",
                    WriteVerdict::Stale => "accepted, though its lease had run out",
                    WriteVerdict::Harmful => "accepted over another worker's increment",
                    WriteVerdict::Fenced => "refused: the replica has seen a newer token",
                    WriteVerdict::Failed => "not acknowledged",
                };
                format!("{} with {}: {what}", write.worker, write.token)
            });
            guards.push(GuardView {
                guard,
                service: verdict
                    .leases
                    .iter()
                    .find(|span| span.granted_ns <= now && now < span.service_end_ns)
                    .map(|span| holder(span.worker, span.token)),
                believers: verdict
                    .leases
                    .iter()
                    .filter(|span| span.believed.is_some_and(|(from, to)| from <= now && to >= now))
                    .map(|span| holder(span.worker, span.token))
                    .collect(),
                acked: verdict.acked,
                stale_acked: verdict.stale_acked,
                fenced: verdict.fenced,
                lost_updates: value.map_or(0, |value| verdict.acked.saturating_sub(value)),
                value,
                last_write,
            });
        }
        LeaseView {
            ttl_ms: self.spec.ttl_ms,
            work_ms: self.spec.work_ms,
            workers: self
                .spec
                .worker_ids()
                .map(|id| WorkerView { id, paused: self.paused.contains(&id) })
                .collect(),
            guards,
        }
    }
}

/// The protected value of `guard` on the replica the workers write to: the
/// largest item of any sibling (`None` if it could not be read).
async fn read_value(storage: &ClusterClient, spec: &LeaseSpec, guard: Guard) -> Option<u64> {
    let replica = spec.storage_of(WorkerId(1));
    let key = key_of(guard);
    let read = storage.replica(replica).read(&spec.bucket, &key, RECORDS_TIMEOUT).await.ok()?;
    let values = read
        .siblings
        .iter()
        .filter_map(|sibling| serde_json::from_str::<Vec<u64>>(sibling.value.text()).ok());
    Some(values.flatten().max().unwrap_or(0))
}

impl super::Lab {
    /// Starts two lease workers (`monotonic` and `fenced`) on the running
    /// cluster (`lease`); refused if they run already.
    pub async fn start_lease(&self) -> Result<LabView, DashboardError> {
        self.with_running(async |running| {
            let mut lease = running.shared.lease.lock().await;
            if lease.is_some() {
                return Err(DashboardError::Conflict("the lease workers are already running".into()));
            }
            let bucket = if running.shared.buckets.iter().any(|bucket| bucket == "lww-hlc") {
                "lww-hlc".to_string()
            } else {
                running.shared.buckets.first().cloned().unwrap_or_default()
            };
            let started = LabLease::start(running.engine.cluster(), &bucket, self.http.clone())
                .await
                .map_err(DashboardError::Internal)?;
            *lease = Some(started);
            let view = lease.as_mut().map(|lease| lease.refresh(&running.shared.admin));
            if let Some(view) = view {
                super::lock(&self.view).lease = Some(view.await);
            }
            Ok(())
        })
        .await?;
        self.snapshot();
        Ok(self.view())
    }

    /// Reads and judges the lease workers now.
    pub async fn refresh_lease(&self) -> Result<LeaseView, DashboardError> {
        self.with_lease(async |_| Ok(())).await
    }

    /// Pauses lease worker `id` once it is between its check and its write
    /// in every guard's loop (Figure 8-4's pause, told on purpose).
    pub async fn pause_worker_mid_round(&self, id: u32) -> Result<LabView, DashboardError> {
        self.with_lease(async |lease| {
            lease.pause_mid_round(crate::lease::WorkerId(id)).await.map_err(DashboardError::Conflict)
        })
        .await?;
        self.snapshot();
        Ok(self.view())
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) lease worker `id`.
    pub async fn set_worker_paused(&self, id: u32, pause: bool) -> Result<LabView, DashboardError> {
        self.with_lease(async |lease| {
            lease.set_paused(crate::lease::WorkerId(id), pause).map_err(DashboardError::BadRequest)
        })
        .await?;
        self.snapshot();
        Ok(self.view())
    }

    /// Does `act` to the running lease workers, then reads and judges them
    /// into the lab's view; refused if none run.
    async fn with_lease(
        &self,
        act: impl AsyncFnOnce(&mut LabLease) -> Result<(), DashboardError>,
    ) -> Result<LeaseView, DashboardError> {
        let view = self
            .with_running(async |running| {
                let mut lease = running.shared.lease.lock().await;
                let lease = lease.as_mut().ok_or_else(|| {
                    DashboardError::Conflict("no lease workers are running; start them first".into())
                })?;
                act(lease).await?;
                Ok(lease.refresh(&running.shared.admin).await)
            })
            .await?;
        super::lock(&self.view).lease = Some(view.clone());
        Ok(view)
    }
}
