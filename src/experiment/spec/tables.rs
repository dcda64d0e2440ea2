//! The spec's tables: the workload and the clocks (the network's is
//! [`crate::experiment::faults::NetworkSpec`]).

use serde::{Deserialize, Serialize};

/// The clients and what they do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSpec {
    /// Concurrent clients, each doing one read-modify-write at a time.
    pub clients: usize,
    /// How many keys the clients pick from, uniformly at random.
    pub keys: usize,
    /// Operations per second per client; 0 means as fast as replies come.
    pub rate_per_client: f64,
    pub replica_choice: ReplicaChoice,
    /// Which context a write carries (see `experiment::workload`).
    #[serde(skip_serializing_if = "Contexts::is_fresh")]
    pub contexts: Contexts,
    /// A story told step by step instead of the clients' random
    /// operations (the real database's engine only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<Script>,
    /// Writes a key takes before the workload retires it and moves on to
    /// a fresh one (`experiment::keys`); 0: never.
    #[serde(skip_serializing_if = "is_default_writes_per_key")]
    pub writes_per_key: u64,
}

fn is_default_writes_per_key(writes: &u64) -> bool {
    *writes == crate::experiment::keys::DEFAULT_WRITES_PER_KEY
}

/// A scripted workload: the same few operations, in the same order, every trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Script {
    /// DDIA Figure 8-3: client A adds item 1 to key `x` on node 1; once
    /// node 3 holds A's write, client B reads `x` there and adds item 2.
    #[serde(rename = "figure-8-3")]
    Figure83,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        Self {
            clients: 8,
            keys: 40,
            rate_per_client: 100.0,
            replica_choice: ReplicaChoice::Random,
            contexts: Contexts::Fresh,
            script: None,
            writes_per_key: crate::experiment::keys::DEFAULT_WRITES_PER_KEY,
        }
    }
}

/// Which context a client's write carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contexts {
    /// The context of a read made just before: read, modify, write.
    #[default]
    Fresh,
    /// The context of the client's previous read of the key: write, then
    /// read for next time, so every write is at least one write behind.
    Stale,
}

impl Contexts {
    fn is_fresh(&self) -> bool {
        *self == Contexts::Fresh
    }
}

/// Which replica a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaChoice {
    /// A random replica for every operation: a client's read may land on a
    /// replica that has not seen its previous write.
    Random,
    /// Client `c` always uses replica `c mod replicas + 1`.
    Sticky,
}

/// The clock model every replica starts from (see `clock::physical`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSpec {
    pub offset_ms: f64,
    pub drift_ppm: f64,
    pub resolution_ms: f64,
    pub resync_interval_ms: f64,
    /// Spreads offsets over the replicas: replica 1 runs this much ahead of
    /// the last, the others evenly between (what `skew_ms` sweeps).
    #[serde(skip_serializing_if = "is_zero")]
    pub skew_ms: f64,
    /// Spreads drift over the replicas: replica 1 gets `drift_ppm` plus
    /// this, the last replica `drift_ppm` minus this, the others evenly
    /// between. Only in specs; a replica is sent its own `drift_ppm`.
    #[serde(skip_serializing_if = "is_zero")]
    pub drift_spread_ppm: f64,
}

impl ClockSpec {
    /// The clock model as the admin API takes it (a replica gets its own
    /// offset and drift; the spreads stay in the spec).
    pub fn update(&self) -> crate::clock::update::ClockUpdate {
        crate::clock::update::ClockUpdate {
            offset_ms: Some(self.offset_ms),
            drift_ppm: Some(self.drift_ppm),
            resolution_ms: Some(self.resolution_ms),
            resync_interval_ms: Some(self.resync_interval_ms),
            ..Default::default()
        }
    }
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}
