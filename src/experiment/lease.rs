//! A spec's `[lease]` table: lease-holding workers instead of the
//! workload's clients (the story of `crate::lease`).
//!
//! Each of `workers` worker processes runs one loop per guard under test,
//! as each replica hosts one bucket per strategy: so every guard meets the
//! same pauses and the same clock faults, and a pause of worker 1 pauses
//! its every loop. Each guard has its own lock at the service and its own
//! protected value in storage (key `lease-GUARD` in `bucket`).

use serde::{Deserialize, Serialize};

use crate::clock::dots::ReplicaId;
use crate::lease::worker::{Timing, TimingMs, check_ms};
use crate::lease::{Guard, WorkerId};

/// The most workers a spec may start.
pub const MAX_WORKERS: u32 = 16;

/// The `[lease]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseSpec {
    /// Worker processes, each running one loop per guard.
    pub workers: u32,
    /// The ways of checking a lease under test.
    pub guards: Vec<Guard>,
    /// The lease's time to live, ms, by the service's clock.
    pub ttl_ms: f64,
    /// The least a lease must have left for a worker to act on it, ms.
    pub margin_ms: f64,
    /// A worker renews when less than this is left, ms.
    pub renew_ms: f64,
    /// The work between reading the protected value and writing it, ms.
    pub work_ms: f64,
    /// Between a renewal and the next round, ms.
    pub idle_ms: f64,
    /// Before asking again for a lock held by another, ms.
    pub retry_ms: f64,
    /// How many replicas the workers write to: worker `i` writes to
    /// replica `i` counted round the first `storage_replicas`. With 1,
    /// every write meets one replica, which sees every token; with more, a
    /// multi-leader store, where a stale writer may reach a replica that
    /// has not yet seen the newer token (it learns tokens by replication).
    pub storage_replicas: u32,
    /// The bucket the protected values live in (one of the spec's strategies).
    pub bucket: String,
    /// The service's first token (DDIA's Figure 8-5 starts at 33).
    pub first_token: u64,
    /// Worker `i` starts `(i - 1) * stagger_ms` after the workload, so
    /// worker 1 asks first and holds the lease from the start (on real
    /// processes, workers started together race for it).
    pub stagger_ms: f64,
}

impl Default for LeaseSpec {
    fn default() -> Self {
        Self {
            workers: 2,
            guards: Guard::ALL.to_vec(),
            ttl_ms: 1000.0,
            margin_ms: 100.0,
            renew_ms: 500.0,
            work_ms: 50.0,
            idle_ms: 100.0,
            retry_ms: 50.0,
            storage_replicas: 1,
            bucket: "lww-hlc".into(),
            first_token: 33,
            stagger_ms: 100.0,
        }
    }
}

impl LeaseSpec {
    /// The workers' ids, 1 to N.
    pub fn worker_ids(&self) -> impl Iterator<Item = WorkerId> + use<> {
        (1..=self.workers).map(WorkerId)
    }

    /// The replica worker `worker` writes to.
    pub fn storage_of(&self, worker: WorkerId) -> ReplicaId {
        ((worker.0.saturating_sub(1)) % self.storage_replicas.max(1) + 1) as ReplicaId
    }

    /// Where the workers write, in words.
    pub fn storage_words(&self) -> String {
        match self.storage_replicas {
            1 => "every worker writes to replica 1".into(),
            n => format!("worker i writes to replica i, round the first {n} (a multi-leader store)"),
        }
    }

    /// Every worker loop's timings, as written.
    pub fn timing_ms(&self) -> TimingMs {
        TimingMs {
            margin: self.margin_ms,
            renew: self.renew_ms,
            work: self.work_ms,
            idle: self.idle_ms,
            retry: self.retry_ms,
        }
    }

    /// Every worker loop's timings (checked when the spec was read).
    pub fn timing(&self) -> Timing {
        self.timing_ms().in_ns()
    }

    /// What is wrong with it, if anything, given the spec's strategies and
    /// replicas.
    pub fn problem(&self, strategies: &[String], replicas: usize) -> Option<String> {
        if !(1..=replicas).contains(&(self.storage_replicas as usize)) {
            return Some(format!(
                "storage_replicas must be 1 to the spec's {replicas} replicas, got {}",
                self.storage_replicas
            ));
        }
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Some(format!("workers must be 1 to {MAX_WORKERS}, got {}", self.workers));
        }
        if self.guards.is_empty() {
            return Some("guards must name at least one of wall-clock, monotonic, fenced".into());
        }
        let timings = check_ms("ttl_ms", self.ttl_ms)
            .and_then(|()| self.timing_ms().checked(|name| format!("{name}_ms")).map(|_| ()))
            .and_then(|()| check_ms("stagger_ms", self.stagger_ms));
        if let Err(problem) = timings {
            return Some(problem);
        }
        if self.ttl_ms <= self.margin_ms {
            return Some(format!(
                "ttl_ms ({}) must be more than margin_ms ({})",
                self.ttl_ms, self.margin_ms
            ));
        }
        if self.renew_ms < self.margin_ms || self.renew_ms >= self.ttl_ms {
            return Some(format!(
                "renew_ms ({}) must be at least margin_ms ({}) and less than ttl_ms ({})",
                self.renew_ms, self.margin_ms, self.ttl_ms
            ));
        }
        if self.retry_ms <= 0.0 {
            return Some("retry_ms must be above 0, or a refused worker asks again and again at once".into());
        }
        if !strategies.contains(&self.bucket) {
            return Some(format!(
                "bucket {:?} is not one of the spec's strategies ({})",
                self.bucket,
                strategies.join(", ")
            ));
        }
        None
    }
}
