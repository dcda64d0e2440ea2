//! The records of a lease trial (`crate::lease`): what the lock service
//! granted and when, and what each worker believed and did, in true time.
//!
//! The oracle (`analysis::lease`) judges from these alone: when each worker
//! believed it held the lease against when the service considered it held,
//! which writes landed from a worker whose lease had ended, which writes
//! fencing refused, and how many acknowledged increments the protected
//! value lost.

use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::lease::worker::WriteOutcome;
use crate::lease::{Guard, Token, WorkerId};

/// One event of a lease trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub point: usize,
    pub trial: usize,
    /// True time it happened, ns: when the service decided, or when the
    /// worker heard or acted.
    pub true_ns: Nanos,
    pub worker: WorkerId,
    /// How that worker checks its lease.
    pub guard: Guard,
    /// The lease it is about.
    pub token: Token,
    #[serde(flatten)]
    pub event: LeaseEvent,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LeaseEvent {
    /// The service granted the lease: by its clock, for `ttl_ms` from now.
    Granted { ttl_ms: f64 },
    /// The service extended the lease by `ttl_ms` from now.
    Renewed { ttl_ms: f64 },
    /// The worker heard of its grant: from here it believes it holds the lease.
    Acquired,
    /// The worker checked its lease (and acts only if it was valid).
    Checked { valid: bool },
    /// The worker's renewal was refused: it stops believing here.
    Lost,
    /// A write of the protected value, sent at `invoke_ns` to `replica`,
    /// answered at `true_ns`: the value read, plus one.
    Write {
        invoke_ns: Nanos,
        replica: ReplicaId,
        read: u64,
        wrote: u64,
        /// Whether the write carried the lease's token.
        fenced: bool,
        outcome: WriteOutcome,
    },
}
