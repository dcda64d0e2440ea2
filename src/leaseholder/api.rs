//! What a lease worker process and the lock service say to each other and
//! to the runner: paths and bodies, one definition for both ends.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::history::LeaseRecord;
use crate::lease::{Token, WorkerId};

/// The lock service's path to acquire guard `GUARD`'s lock: `/lock/GUARD/acquire`.
pub fn acquire_path(guard: crate::lease::Guard) -> String {
    format!("/lock/{guard}/acquire")
}

/// The lock service's path to renew a lease: `/lock/GUARD/renew`.
pub fn renew_path(guard: crate::lease::Guard) -> String {
    format!("/lock/{guard}/renew")
}

/// `POST /lock/GUARD/acquire` and `/renew`: who asks, and for a renewal the
/// lease's token. The answer is a [`crate::lease::service::Answer`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    pub worker: WorkerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
}

/// `POST /admin/start` on a worker: begin the loops `after_ms` from now,
/// work until `for_ms` from now, and
/// name the records point `point`, trial `trial`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    pub point: usize,
    pub trial: usize,
    /// Start this many ms from now (a worker's place in the stagger).
    pub after_ms: f64,
    /// Then work this long, ms, counted from the workload's start.
    pub for_ms: u64,
}

/// `GET /admin/records` on a worker: what it has recorded, and whether its
/// loops have all stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordsReply {
    pub done: bool,
    pub records: Vec<LeaseRecord>,
}

/// The line a worker prints on stdout once it listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerReady {
    pub worker: WorkerId,
    pub addr: SocketAddr,
}
