//! The replica core: a pure state machine, with its clock injected.
//!
//! Everything a replica decides is decided here, with no I/O: how a client's
//! read and write are answered, how a write received from a peer is merged,
//! and what a peer is missing. Around it (as in toyDB and mini-redis) sit
//! the edges: [`super::store`] makes its log durable, [`super::server`]
//! speaks HTTP and [`super::replication`] talks to peers. Because the core
//! reads time only from the [`PhysicalClock`] it was given, tests replay
//! DDIA Figure 8-3 on it with a hand-wound clock.
//!
//! The core keeps a *replication log*: every write it has accepted or
//! received, named by `(origin, seq)`, and each key's state, which is what
//! folding the key's writes through its strategy gives, in any order (the
//! strategies guarantee that). On restart the real replica's core is
//! rebuilt by replaying the log from SQLite. A replica that checkpoints
//! instead ([`checkpoint`]; the simulator's do) forgets the writes every
//! peer holds: their effect lives on in their keys' states.
//!
//! Keys live in ordered maps (`BTreeMap`), one per bucket. A hash map would
//! find a key a little faster, but it grows by copying its whole table into
//! one twice the size, which stalls every write queued behind that copy; a
//! B-tree grows a node at a time.

use crate::write_id::{WriteId, WriteIds};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::links::LinkSettings;
use super::offsets::Estimate;

use crate::clock::Nanos;
use crate::clock::dots::{Dot, DotSet, ReplicaId};
use crate::clock::hlc::{Hlc, HlcTimestamp};
use crate::clock::physical::{ModelDescription, PhysicalClock};
use crate::clock::update::{ClockError, ClockUpdate};
use crate::lease::Token;
use crate::strategy::plugin::PluginFailure;
use crate::strategy::{self, Clocks, KeyState, RawJson, Strategy, StrategyError, Write};

/// The longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// Why the core refused a request. Nothing has changed when it does.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    #[error("unknown bucket {0:?}; the buckets are {1}")]
    UnknownBucket(String, String),
    #[error("keys must be 1 to {MAX_KEY_BYTES} bytes long, got {0} bytes")]
    BadKey(usize),
    #[error(transparent)]
    Strategy(#[from] StrategyError),
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// The bucket's plugin failed; the bucket serves nothing more.
    #[error("bucket {bucket} is out of service: {failure}")]
    BucketFailed { bucket: String, failure: PluginFailure },
    /// A fenced write whose token is below one already seen for its key.
    #[error("fenced: {key} has seen {seen}, and this write carries {carried}")]
    Fenced { key: String, seen: Token, carried: Token },
}

/// One surviving write, as a read returns it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Sibling {
    pub value: RawJson,
    pub stamp: RawJson,
    pub write_id: WriteIds,
}

/// The answer to `GET /kv/{bucket}/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ReadReply {
    pub siblings: Vec<Sibling>,
    pub context: Value,
}

/// The answer to `PUT /kv/{bucket}/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct WriteReply {
    pub write_id: WriteId,
    pub stamp: RawJson,
    /// The context stored with the write: with the stamp, the metadata
    /// the strategy keeps per write.
    #[serde(default = "RawJson::null")]
    pub context: RawJson,
    /// The replica's physical clock reading before which it must not send
    /// this answer (`truetime`'s commit wait). Not sent.
    #[serde(skip)]
    pub acknowledge_at: Option<Nanos>,
}

/// The replica's clocks, log and links: the answer to `GET /admin/status`
/// (and `PUT /admin/clock`). The core fills in what it knows; the server
/// adds `links` and `peer_offsets`, which live outside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub id: ReplicaId,
    /// True time now, ns since the epoch.
    pub true_ns: Nanos,
    /// The physical clock's reading now.
    pub physical_ns: Nanos,
    /// `physical_ns - true_ns`.
    pub offset_ns: Nanos,
    /// The hybrid logical clock's latest `[l, c]`.
    pub hlc: HlcTimestamp,
    pub clock: ClockSource,
    /// The clock model's settings (absent for the system clock).
    pub model: Option<ModelDescription>,
    /// Per origin, the `n` such that writes `1..=n` are all in the log.
    pub high_water: BTreeMap<ReplicaId, u64>,
    /// How many writes the log holds.
    pub log_len: usize,
    /// The faults on the link to each peer.
    #[serde(default)]
    pub links: BTreeMap<ReplicaId, LinkSettings>,
    /// Each peer's clock offset as estimated from replication round trips.
    #[serde(default)]
    pub peer_offsets: BTreeMap<ReplicaId, Estimate>,
    /// Buckets out of service because their plugin failed, with why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_buckets: BTreeMap<String, String>,
}

/// Which physical clock a replica reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockSource {
    /// True time through a clock model, settable over the admin API.
    Model,
    /// The operating system's clock, as it is.
    System,
}

/// Every key of every bucket, as reads return them: `GET /admin/state`.
pub type Snapshot = BTreeMap<String, BTreeMap<String, ReadReply>>;

/// A client's write, accepted and logged.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub write: Arc<Write>,
    /// Acknowledge it only once the physical clock reads this (see
    /// `Stamped::acknowledge_at`).
    pub acknowledge_at: Option<Nanos>,
}

impl Accepted {
    /// The answer the client gets once the write is durable.
    pub fn reply(&self) -> WriteReply {
        WriteReply {
            write_id: self.write.write_id(),
            stamp: self.write.stamp.clone(),
            context: self.write.context.clone(),
            acknowledge_at: self.acknowledge_at,
        }
    }
}

/// One bucket: a strategy, and the state of every key written in it.
#[derive(Clone)]
struct Bucket {
    strategy: Arc<dyn Strategy>,
    keys: BTreeMap<String, KeyState>,
    /// Set once, when a plugin strategy fails: from then on the bucket
    /// refuses reads and writes, and logs (but does not apply) the writes
    /// peers send, so that every other bucket's replication goes on.
    failure: OnceLock<PluginFailure>,
}

impl Bucket {
    /// Merges a write into its key's state, creating the key on first use.
    fn apply(&mut self, write: &Arc<Write>) -> Result<(), CoreError> {
        self.in_service()?;
        // Look up by reference first, so that only a new key costs a copy.
        let applied = if let Some(state) = self.keys.get_mut(&write.key) {
            self.strategy.apply(state, write)
        } else {
            let state = self.keys.entry(write.key.clone()).or_default();
            self.strategy.apply(state, write)
        };
        applied.map_err(|error| self.failed(error))
    }

    /// The error for the caller; a plugin's failure also takes the bucket
    /// out of service.
    fn failed(&self, error: StrategyError) -> CoreError {
        match error {
            StrategyError::Plugin(failure) => {
                let failure = self.failure.get_or_init(|| failure);
                CoreError::BucketFailed { bucket: self.strategy.name().to_string(), failure: failure.clone() }
            }
            refused => CoreError::Strategy(refused),
        }
    }

    fn in_service(&self) -> Result<(), CoreError> {
        match self.failure.get() {
            Some(failure) => Err(CoreError::BucketFailed {
                bucket: self.strategy.name().to_string(),
                failure: failure.clone(),
            }),
            None => Ok(()),
        }
    }

    /// A key's reply to a read.
    fn reply(&self, key: &str) -> Result<ReadReply, CoreError> {
        self.in_service()?;
        let empty = KeyState::default();
        let state = self.keys.get(key).unwrap_or(&empty);
        reply_for(self.strategy.as_ref(), state).map_err(|error| self.failed(error))
    }
}

/// The replica state machine. See the module docs. A clone is a second
/// replica in the same state, sharing its strategies (and its clock's
/// source of true time): what a search over histories branches from.
#[derive(Clone)]
pub struct ReplicaCore {
    id: ReplicaId,
    clock: PhysicalClock,
    hlc: Hlc,
    /// The Lamport clock (`lww-lamport`): the greatest counter made or seen.
    lamport: u64,
    buckets: BTreeMap<String, Bucket>,
    log: BTreeMap<(ReplicaId, u64), Arc<Write>>,
    /// The `(origin, seq)` of every logged write, as dots.
    have: DotSet,
    /// Logged writes still in their commit wait (`truetime`): durable, but
    /// not yet applied to their key, read or replicated; with the physical
    /// clock reading at which each becomes visible.
    pending: BTreeMap<(ReplicaId, u64), (Nanos, Arc<Write>)>,
    /// The largest fencing token seen per bucket and key: from fenced
    /// writes accepted here and from those replicated to it.
    fences: BTreeMap<(String, String), Token>,
}

impl ReplicaCore {
    /// A replica with every strategy at its defaults.
    pub fn new(id: ReplicaId, clock: PhysicalClock) -> Self {
        Self::with_strategies(id, clock, strategy::registry())
    }

    /// A replica with one bucket per strategy given.
    pub fn with_strategies(id: ReplicaId, clock: PhysicalClock, strategies: Vec<Arc<dyn Strategy>>) -> Self {
        let buckets = strategies
            .into_iter()
            .map(|strategy| {
                let bucket = Bucket { strategy, keys: BTreeMap::new(), failure: OnceLock::new() };
                (bucket.strategy.name().to_string(), bucket)
            })
            .collect();
        Self {
            id,
            clock,
            hlc: Hlc::default(),
            lamport: 0,
            buckets,
            log: BTreeMap::new(),
            have: DotSet::new(),
            pending: BTreeMap::new(),
            fences: BTreeMap::new(),
        }
    }

    pub fn id(&self) -> ReplicaId {
        self.id
    }

    fn unknown_bucket(&self, bucket: &str) -> CoreError {
        let names: Vec<&str> = self.buckets.keys().map(String::as_str).collect();
        CoreError::UnknownBucket(bucket.to_string(), names.join(", "))
    }

    fn bucket(&self, bucket: &str) -> Result<&Bucket, CoreError> {
        self.buckets.get(bucket).ok_or_else(|| self.unknown_bucket(bucket))
    }

    fn check_key(key: &str) -> Result<(), CoreError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(CoreError::BadKey(key.len()));
        }
        Ok(())
    }

    /// Answers a client's read.
    pub fn read(&self, bucket: &str, key: &str) -> Result<ReadReply, CoreError> {
        let bucket = self.bucket(bucket)?;
        Self::check_key(key)?;
        bucket.reply(key)
    }

    /// Accepts a client's write: stamps it, logs it, applies it. The caller
    /// must make the returned write durable before acknowledging it, and
    /// must not acknowledge it before its physical clock reads
    /// `acknowledge_at`, if the strategy asks for a wait.
    pub fn write(
        &mut self,
        bucket: &str,
        key: &str,
        value: RawJson,
        context: &Value,
    ) -> Result<Accepted, CoreError> {
        self.write_fenced(bucket, key, value, context, None)
    }

    /// [`write`](Self::write), from a writer holding fencing token `fence`
    /// (DDIA Figure 8-5): refused if a larger token was seen for the key,
    /// here or in a write replicated here. A write without a token is not
    /// checked.
    pub fn write_fenced(
        &mut self,
        bucket: &str,
        key: &str,
        value: RawJson,
        context: &Value,
        fence: Option<Token>,
    ) -> Result<Accepted, CoreError> {
        Self::check_key(key)?;
        if let Some(carried) = fence
            && let Some(&seen) = self.fences.get(&(bucket.to_string(), key.to_string()))
            && seen > carried
        {
            return Err(CoreError::Fenced { key: key.to_string(), seen, carried });
        }
        let seq = self.have.max_counter(self.id) + 1;
        let physical_now = self.clock.now();
        let Some(bucket) = self.buckets.get_mut(bucket) else {
            return Err(self.unknown_bucket(bucket));
        };
        bucket.in_service()?;
        bucket.strategy.accepts(&value)?;
        let empty = KeyState::default();
        let state = bucket.keys.get(key).unwrap_or(&empty);
        let mut clocks =
            Clocks { replica: self.id, physical_now, hlc: &mut self.hlc, lamport: &mut self.lamport };
        let stamped =
            bucket.strategy.stamp(state, context, &mut clocks).map_err(|error| bucket.failed(error))?;
        let write = Arc::new(Write {
            origin: self.id,
            seq,
            bucket: bucket.strategy.name().to_string(),
            key: key.to_string(),
            value,
            stamp: stamped.stamp,
            context: stamped.context,
            fence,
        });
        match stamped.acknowledge_at {
            // Like a lock held through Spanner's commit wait: nobody sees
            // the write until it may be acknowledged.
            Some(at) if at > physical_now => {
                self.pending.insert((write.origin, write.seq), (at, Arc::clone(&write)));
            }
            // A plugin that fails here leaves the write unlogged and unacknowledged.
            _ => bucket.apply(&write)?,
        }
        self.log_write(&write);
        Ok(Accepted { write, acknowledge_at: stamped.acknowledge_at })
    }

    /// Makes visible every write whose commit wait is over by the physical
    /// clock; returns them. Call before serving anything.
    pub fn release(&mut self) -> Vec<Arc<Write>> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let now = self.clock.now();
        let due: Vec<(ReplicaId, u64)> =
            self.pending.iter().filter(|(_, (at, _))| *at <= now).map(|(&id, _)| id).collect();
        let mut released = Vec::with_capacity(due.len());
        for id in &due {
            let Some((_, write)) = self.pending.remove(id) else { continue };
            if let Some(bucket) = self.buckets.get_mut(write.bucket.as_str()) {
                // A plugin that fails here takes its bucket out of service.
                let _ = bucket.apply(&write);
            }
            released.push(write);
        }
        released
    }

    /// Merges writes received from a peer. All are checked before any is
    /// applied; returns the ones that were new, which the caller must persist.
    pub fn receive(&mut self, writes: Vec<Arc<Write>>) -> Result<Vec<Arc<Write>>, CoreError> {
        for write in &writes {
            let bucket = self.bucket(&write.bucket)?;
            if bucket.failure.get().is_none() {
                bucket.strategy.check(write)?;
            }
            Self::check_key(&write.key)?;
        }
        let physical_now = self.clock.now();
        let mut new = Vec::new();
        for write in writes {
            if self.have.contains(Dot(write.origin, write.seq)) {
                continue; // a duplicate: delivery is at least once
            }
            let Some(bucket) = self.buckets.get_mut(write.bucket.as_str()) else {
                unreachable!("checked above");
            };
            let mut clocks =
                Clocks { replica: self.id, physical_now, hlc: &mut self.hlc, lamport: &mut self.lamport };
            // A failing plugin takes only its own bucket out of service: the
            // write is still logged, so replication of the others goes on.
            if bucket.failure.get().is_none() {
                match bucket.strategy.observe(&write, &mut clocks) {
                    Ok(()) => drop(bucket.apply(&write)),
                    Err(error) => drop(bucket.failed(error)),
                }
            }
            self.log_write(&write);
            new.push(write);
        }
        Ok(new)
    }

    /// Rebuilds the state from one logged write, at startup.
    pub fn restore(&mut self, write: Write) -> Result<(), CoreError> {
        self.receive(vec![Arc::new(write)]).map(drop)
    }

    fn log_write(&mut self, write: &Arc<Write>) {
        if let Some(token) = write.fence {
            let seen = self.fences.entry((write.bucket.clone(), write.key.clone())).or_insert(token);
            *seen = (*seen).max(token);
        }
        self.have.insert(Dot(write.origin, write.seq));
        self.log.insert((write.origin, write.seq), Arc::clone(write));
    }

    /// The writes a peer that has `peer_has` lacks, from the origins `relay`
    /// allows, at most `limit` of them, in log order.
    pub fn missing(
        &self,
        peer_has: &DotSet,
        relay: impl Fn(ReplicaId) -> bool,
        limit: usize,
    ) -> Vec<Arc<Write>> {
        let mut found = Vec::new();
        for origin in self.have.replicas() {
            if !relay(origin) {
                continue;
            }
            let from = (origin, peer_has.contiguous(origin) + 1);
            let entries = self.log.range(from..=(origin, u64::MAX));
            let unsent = |((o, seq), _): &(&(ReplicaId, u64), _)| {
                !peer_has.contains(Dot(*o, *seq)) && !self.pending.contains_key(&(*o, *seq))
            };
            for (_, write) in entries.filter(unsent) {
                if found.len() == limit {
                    return found;
                }
                found.push(Arc::clone(write));
            }
        }
        found
    }

    /// How many writes the log holds.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    /// Every `(origin, seq)` in the log.
    pub fn have(&self) -> &DotSet {
        &self.have
    }

    /// The physical clock the core reads.
    pub fn clock(&self) -> &PhysicalClock {
        &self.clock
    }

    /// Moves the physical clock, its model kept, onto another source of
    /// true time (a clone that must keep time on its own).
    pub fn set_true_time(&mut self, source: Arc<dyn crate::clock::physical::TrueTime>) {
        self.clock.set_source(source);
    }

    /// Changes the physical clock's model.
    pub fn update_clock(&mut self, update: &ClockUpdate) -> Result<(), CoreError> {
        Ok(self.clock.update(update)?)
    }

    /// The replica's status, without links and peer offsets (see [`Status`]).
    pub fn status(&self) -> Status {
        let true_ns = self.clock.true_now();
        let physical_ns = self.clock.now();
        let model = self.clock.describe();
        Status {
            id: self.id,
            true_ns,
            physical_ns,
            offset_ns: physical_ns - true_ns,
            hlc: self.hlc.latest(),
            clock: if model.is_some() { ClockSource::Model } else { ClockSource::System },
            model,
            high_water: self.have.vector().clone(),
            log_len: self.log_len(),
            links: BTreeMap::new(),
            peer_offsets: BTreeMap::new(),
            failed_buckets: self
                .failures()
                .into_iter()
                .map(|(bucket, failure)| (bucket, failure.to_string()))
                .collect(),
        }
    }

    /// Feeds `hasher` everything that decides what this replica does next:
    /// its clocks (the physical one as it reads now), what it has logged,
    /// the writes each key holds and those still in a commit wait. Two
    /// replicas that hash alike behave alike from here on, as long as the
    /// same writes are behind the same write ids (a search over histories
    /// hashes those beside it).
    pub fn fingerprint(&self, hasher: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        (self.id, self.clock.now(), self.hlc.latest(), self.lamport).hash(hasher);
        let dots = |set: &DotSet, hasher: &mut _| {
            set.vector().hash(hasher);
            set.extra_dots().for_each(|Dot(origin, seq)| (origin, seq).hash(hasher));
        };
        dots(&self.have, hasher);
        for (name, bucket) in &self.buckets {
            (name, bucket.failure.get().is_some()).hash(hasher);
            for (key, state) in &bucket.keys {
                key.hash(hasher);
                for write in &state.siblings {
                    (write.origin, write.seq, write.stamp.text(), write.context.text()).hash(hasher);
                }
                state.siblings.len().hash(hasher);
                dots(&state.seen, hasher);
                dots(&state.superseded, hasher);
            }
        }
        self.pending.iter().for_each(|(id, (at, _))| (id, at).hash(hasher));
        self.fences.hash(hasher);
    }

    /// The buckets whose plugin failed, with the failure.
    pub fn failures(&self) -> BTreeMap<String, PluginFailure> {
        let failed = self.buckets.iter().filter_map(|(name, bucket)| Some((name, bucket.failure.get()?)));
        failed.map(|(name, failure)| (name.clone(), failure.clone())).collect()
    }

    /// Every key of every bucket in service, as reads would return them.
    /// A bucket whose plugin fails on the way is left out (see
    /// [`ReplicaCore::failures`]).
    pub fn snapshot(&self) -> Snapshot {
        let snapshot = |bucket: &Bucket| -> Result<BTreeMap<String, ReadReply>, CoreError> {
            let written = bucket.keys.iter().filter(|(_, state)| !state.siblings.is_empty());
            written.map(|(key, _)| Ok((key.clone(), bucket.reply(key)?))).collect()
        };
        let served =
            self.buckets.iter().filter_map(|(name, bucket)| Some((name.clone(), snapshot(bucket).ok()?)));
        served.collect()
    }
}

fn reply_for(strategy: &dyn Strategy, state: &KeyState) -> Result<ReadReply, StrategyError> {
    let (merged, context) = strategy.read(state)?;
    if let Some(merged) = merged {
        let sibling = Sibling { value: merged.value, stamp: RawJson::null(), write_id: merged.write_id };
        return Ok(ReadReply { siblings: vec![sibling], context });
    }
    let siblings = state
        .siblings
        .iter()
        .map(|write| Sibling {
            value: write.value.clone(),
            stamp: write.stamp.clone(),
            write_id: write.write_id().into(),
        })
        .collect();
    Ok(ReadReply { siblings, context })
}

#[path = "checkpoint.rs"]
pub mod checkpoint;

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
