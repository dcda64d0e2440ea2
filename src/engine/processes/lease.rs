//! A lease trial on real processes: the lock service in the runner, and
//! one `clocklab lease-worker` process per worker, each writing the
//! protected values to its replica of the cluster.
//!
//! The workers are the runner's children as the replicas are: killed on
//! drop and by `PR_SET_PDEATHSIG` if the runner dies, so a failed trial or
//! Ctrl-C leaves none behind. A pause is SIGSTOP and SIGCONT; a clock
//! fault is `PUT /admin/clock` on the worker.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use super::cluster::Cluster;
use super::lock_service::LockServer;
use crate::clock::millis_to_nanos;
use crate::clock::update::ClockUpdate;
use crate::engine::EngineError;
use crate::experiment::lease::LeaseSpec;
use crate::history::{LeaseRecord, TrialPlan};
use crate::lease::{Token, WorkerId};
use crate::leaseholder::api::{RecordsReply, StartBody, WorkerReady};
use crate::replica::replication::TOKEN_HEADER;

/// How long a worker may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the runner asks whether the workers have finished.
const FINISH_POLL: Duration = Duration::from_millis(20);
/// An admin request to a worker that takes longer has failed.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

struct WorkerProcess {
    id: WorkerId,
    child: Child,
    addr: SocketAddr,
}

/// The lease side of a trial on real processes.
pub struct LeaseProcesses {
    server: LockServer,
    workers: Vec<WorkerProcess>,
    http: reqwest::Client,
    token: String,
    plan: TrialPlan,
    stagger_ms: f64,
}

fn failed(what: String) -> EngineError {
    EngineError::Workload(what)
}

impl LeaseProcesses {
    /// Starts the service and the workers of `spec`, writing to `cluster`'s
    /// replicas; their loops wait for [`Self::begin`].
    pub async fn start(
        spec: &LeaseSpec,
        plan: TrialPlan,
        cluster: &Cluster,
        executable: &Path,
        http: reqwest::Client,
    ) -> Result<Self, EngineError> {
        let token = cluster.token().to_string();
        let ttl_ns = millis_to_nanos(spec.ttl_ms);
        let server = LockServer::start(&spec.guards, ttl_ns, Token(spec.first_token), plan, &token)
            .await
            .map_err(|error| failed(format!("the lock service could not listen: {error}")))?;
        let mut workers = Vec::new();
        for id in spec.worker_ids() {
            let storage = spec.storage_of(id);
            workers.push(
                spawn(spec, id, storage, cluster.addr(storage), server.addr(), executable, &token).await?,
            );
        }
        Ok(Self { server, workers, http, token, plan, stagger_ms: spec.stagger_ms })
    }

    /// Sets every worker's loops going, for `for_ms`.
    pub async fn begin(&self, for_ms: u64) -> Result<(), EngineError> {
        for worker in &self.workers {
            let after_ms = self.stagger_ms * f64::from(worker.id.0 - 1);
            let body = StartBody { point: self.plan.point, trial: self.plan.trial, after_ms, for_ms };
            self.admin(worker, reqwest::Method::POST, "/admin/start")
                .json(&body)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|error| failed(format!("{} would not start: {error}", worker.id)))?;
        }
        Ok(())
    }

    fn admin(&self, worker: &WorkerProcess, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("http://{}{path}", worker.addr))
            .header(TOKEN_HEADER, &self.token)
            .timeout(ADMIN_TIMEOUT)
    }

    fn worker(&self, id: WorkerId) -> Result<&WorkerProcess, EngineError> {
        self.workers
            .iter()
            .find(|worker| worker.id == id)
            .ok_or_else(|| failed(format!("{id} does not exist")))
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) to a worker's process.
    pub fn signal(&self, id: WorkerId, stop: bool) -> Result<(), EngineError> {
        let worker = self.worker(id)?;
        let pid = worker.child.id().ok_or_else(|| failed(format!("{id} is not running")))?;
        let number = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) on a child we own and have not reaped.
        if unsafe { libc::kill(pid as libc::pid_t, number) } != 0 {
            return Err(failed(format!("cannot signal {id}: {}", std::io::Error::last_os_error())));
        }
        Ok(())
    }

    /// Changes a worker's time-of-day clock.
    pub async fn set_clock(&self, id: WorkerId, update: &ClockUpdate) -> Result<(), EngineError> {
        let worker = self.worker(id)?;
        let answer = self.admin(worker, reqwest::Method::PUT, "/admin/clock").json(update).send().await;
        match answer {
            Ok(reply) if reply.status().is_success() => Ok(()),
            Ok(reply) => Err(failed(format!("{id} refused a clock change: {}", reply.status()))),
            Err(error) => Err(failed(format!("{id} did not take a clock change: {error}"))),
        }
    }

    /// Every grant and renewal the service has made so far.
    pub fn service_records(&self) -> Vec<LeaseRecord> {
        self.server.records()
    }

    /// What worker `id` has recorded so far (a paused worker cannot
    /// answer: ask only a running one), within `timeout`.
    pub async fn records_of(&self, id: WorkerId, timeout: Duration) -> Result<Vec<LeaseRecord>, EngineError> {
        let worker = self.worker(id)?;
        let reply: RecordsReply = self
            .admin(worker, reqwest::Method::GET, "/admin/records")
            .timeout(timeout)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| failed(format!("{id} did not give its records: {error}")))?
            .json()
            .await
            .map_err(|error| failed(format!("{id}'s records are unreadable: {error}")))?;
        Ok(reply.records)
    }

    /// Waits (at most `give_up`) until every worker's loops have stopped;
    /// returns every record, the service's and the workers', in true-time
    /// order, and stops the workers.
    pub async fn finish(mut self, give_up: Duration) -> Result<Vec<LeaseRecord>, EngineError> {
        for worker in &self.workers {
            // A worker paused past the end of the workload goes on now.
            let _ = self.signal(worker.id, false);
        }
        let deadline = tokio::time::Instant::now() + give_up;
        let mut records = self.server.records();
        for worker in &self.workers {
            loop {
                let reply: RecordsReply = self
                    .admin(worker, reqwest::Method::GET, "/admin/records")
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|error| failed(format!("{} did not give its records: {error}", worker.id)))?
                    .json()
                    .await
                    .map_err(|error| failed(format!("{}'s records are unreadable: {error}", worker.id)))?;
                if reply.done || tokio::time::Instant::now() >= deadline {
                    records.extend(reply.records);
                    break;
                }
                tokio::time::sleep(FINISH_POLL).await;
            }
        }
        records.sort_by_key(|record| record.true_ns);
        for worker in &mut self.workers {
            let _ = worker.child.kill().await;
        }
        Ok(records)
    }
}

async fn spawn(
    spec: &LeaseSpec,
    id: WorkerId,
    storage: crate::clock::dots::ReplicaId,
    storage_addr: SocketAddr,
    service: SocketAddr,
    executable: &Path,
    token: &str,
) -> Result<WorkerProcess, EngineError> {
    let guards: Vec<&str> = spec.guards.iter().map(|guard| guard.as_str()).collect();
    let mut command = super::cluster::supervised(executable, token);
    command
        .args(["lease-worker", "--id", &id.0.to_string()])
        .args(["--service", &service.to_string()])
        .args(["--storage", &format!("{storage}={storage_addr}")])
        .args(["--bucket", &spec.bucket, "--guards", &guards.join(",")])
        .args(["--margin-ms", &spec.margin_ms.to_string(), "--renew-ms", &spec.renew_ms.to_string()])
        .args(["--work-ms", &spec.work_ms.to_string(), "--idle-ms", &spec.idle_ms.to_string()])
        .args(["--retry-ms", &spec.retry_ms.to_string()]);
    let mut child = command.spawn().map_err(|error| failed(format!("cannot start {id}: {error}")))?;
    let stdout = child.stdout.take().ok_or_else(|| failed(format!("{id} has no stdout")))?;
    let mut line = String::new();
    let read = tokio::time::timeout(START_TIMEOUT, BufReader::new(stdout).read_line(&mut line)).await;
    if !matches!(read, Ok(Ok(count)) if count > 0) {
        return Err(failed(format!(
            "{id} did not say it was ready within {START_TIMEOUT:?} (see its error above)"
        )));
    }
    let ready: WorkerReady =
        serde_json::from_str(&line).map_err(|error| failed(format!("{id} said {line:?}: {error}")))?;
    if ready.worker != id {
        return Err(failed(format!("{id} announced itself as {}", ready.worker)));
    }
    Ok(WorkerProcess { id, child, addr: ready.addr })
}
