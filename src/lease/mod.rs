//! Leases, process pauses and fencing tokens: chapter 8's second clock story.
//!
//! The lab's first story is clocks *ordering writes* (DDIA Figure 8-3). This
//! is the other one: clocks *deciding who may act*. A lock service grants a
//! lease, a lock that ends by itself after a time to live (TTL), so that a
//! holder that dies does not hold the lock for ever. The holder checks
//! that its lease is still valid, then acts, then renews. Two things break
//! that check (DDIA, "Process Pauses" and "The leader and the lock"):
//!
//! - **Clocks.** The expiry is a time on the *service's* clock; a holder
//!   that compares it with its own time-of-day clock (DDIA's
//!   `lease.expiryTimeMillis - System.currentTimeMillis()`) is wrong by
//!   however far the two clocks disagree, and by any step NTP gives it.
//!   Measuring the TTL on the holder's monotonic clock from before it asked
//!   is immune to both.
//! - **Pauses.** Nothing is immune to a pause between the check and the
//!   write: a stop-the-world GC, a VM migrated, a SIGSTOP. HBase met this
//!   as the "Juliet pause" (GC pauses near 10 s per GB of heap against a
//!   10 s ZooKeeper session); Kleppmann's 2016 critique of Redlock tells it
//!   with tokens 33 and 34; Jepsen's 2020 analysis of etcd found its locks
//!   cannot guarantee mutual exclusion. The paused holder wakes, writes, and
//!   only then learns, on renewing, that another holder has had the lease
//!   for a while (Figure 8-4).
//!
//! The fix is not a better check but a storage that checks: every grant
//! carries a **fencing token** that grows with every grant, every write
//! carries its holder's token, and the storage refuses a write whose token
//! is lower than one it has already seen (Figure 8-5; Chubby calls them
//! sequencers). This module is the pure logic of both sides, driven by
//! injected clocks, so the simulator and real processes run the same code:
//!
//! - [`service`]: the lock service, judging expiry on its own clock;
//! - [`worker`]: a lease holder's loop, one [`Guard`] per way of checking.
//!
//! The storage's side of fencing is in the replica core
//! (`ReplicaCore::write` with a token), since the storage is the lab's own
//! replicas.

pub mod service;
pub mod worker;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A lease holder's name: worker 1, 2, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(pub u32);

impl fmt::Display for WorkerId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "worker {}", self.0)
    }
}

/// A fencing token: a number the lock service makes larger with every
/// grant, so a later holder always has a larger one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(pub u64);

impl fmt::Display for Token {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "token {}", self.0)
    }
}

/// The prefix of the protected values' keys in storage.
pub const KEY_PREFIX: &str = "lease-";

/// The key guard `guard`'s workers protect: each guard has its own lock and
/// its own value, so the guards under test never meet.
pub fn key_of(guard: Guard) -> String {
    format!("{KEY_PREFIX}{guard}")
}

/// How a worker decides that its lease still holds: the variants under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guard {
    /// The lease's expiry, a time on the service's clock, against the
    /// worker's own time-of-day clock (DDIA's code). Broken by skew and steps.
    WallClock,
    /// The TTL, less a safety margin, measured on the worker's monotonic
    /// clock from before it asked. Immune to steps; not to pauses.
    Monotonic,
    /// As `Monotonic`, and every write carries the lease's token, which the
    /// storage checks (Figure 8-5).
    Fenced,
}

impl Guard {
    pub const ALL: [Guard; 3] = [Guard::WallClock, Guard::Monotonic, Guard::Fenced];

    /// Its name in specs and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::WallClock => "wall-clock",
            Guard::Monotonic => "monotonic",
            Guard::Fenced => "fenced",
        }
    }

    /// What it does, in a line, for a page's key.
    pub fn about(self) -> &'static str {
        match self {
            Guard::WallClock => "compares the lease's expiry time with its own time-of-day clock",
            Guard::Monotonic => "times the lease on its monotonic clock, keeping a safety margin",
            Guard::Fenced => "times it so too, and sends its token: the storage refuses an old one",
        }
    }

    /// Whether its writes carry a fencing token.
    pub fn fences(self) -> bool {
        self == Guard::Fenced
    }
}

impl std::str::FromStr for Guard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Guard::ALL.into_iter().find(|guard| guard.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = Guard::ALL.iter().map(|guard| guard.as_str()).collect();
            format!("unknown guard {text:?}; the guards are {}", names.join(", "))
        })
    }
}

impl fmt::Display for Guard {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
