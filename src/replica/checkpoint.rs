//! A checkpoint: what a crash keeps when the store does not keep every write.
//!
//! The real store ([`crate::replica::store`]) keeps every write in SQLite
//! and a restart replays them all. That is simple and exact, but a replica
//! that runs for long holds every write it ever saw, in memory (the core's
//! replication log) and on disk. Real stores bound themselves the same
//! way: a write's only lasting effect is on its key's state, so once every
//! peer holds a write durably it is needed only there. Cassandra compacts
//! and drops what every replica has repaired; a PostgreSQL checkpoint lets
//! the write-ahead log behind it be recycled.
//!
//! A [`Checkpoint`] is such a store's durable content:
//!
//! - each key's state as of the last commit (the fold of every durable
//!   write into it: the strategies' fold is order-free, so a state stands
//!   for the writes folded into it);
//! - the log's *tail*: the durable writes some peer may still lack, which
//!   replication still has to send;
//! - the dots of every write ever logged, so a write sent again is known;
//! - the fencing tokens seen, which writes still wait out a commit wait
//!   (logged, but not applied), and which plugin buckets failed (a replay
//!   would fail them again).
//!
//! [`Checkpoint::commit`] records a commit; [`ReplicaCore::forget`] and
//! [`Checkpoint::forget`] drop the writes every peer has said it holds;
//! [`ReplicaCore::recover`] starts a replica from a checkpoint. The
//! simulator's replicas keep one (`sim::node`), so a simulated trial's
//! memory follows the keys and the writes in flight, not the trial's length.
//!
//! What a restart from a checkpoint does differently from a replay: the
//! clocks observe each key's surviving writes, not every write ever
//! logged. The largest stamp a last-write-wins key has seen survives in it,
//! so a restarted replica's clocks still start at or past every stamp it
//! had made durable; only the hybrid clock's counter, which a replay bumps
//! once per write observed, can start lower.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::ReplicaCore;
use crate::clock::Nanos;
use crate::clock::dots::{Dot, DotSet, ReplicaId};
use crate::clock::physical::PhysicalClock;
use crate::lease::Token;
use crate::strategy::plugin::PluginFailure;
use crate::strategy::{Clocks, KeyState, Strategy, Write};

/// A replica's durable content, bounded by its keys and its tail. See the
/// module docs.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// Each key's state as of the last commit, by bucket, then key.
    keys: BTreeMap<String, BTreeMap<String, KeyState>>,
    /// Durable writes some peer may still lack, by `(origin, seq)`.
    tail: BTreeMap<(ReplicaId, u64), Arc<Write>>,
    /// Durable writes still in their commit wait: in `tail`, not in `keys`.
    waiting: BTreeSet<(ReplicaId, u64)>,
    /// The dots of every durable write.
    have: DotSet,
    /// The largest fencing token durable per bucket and key.
    fences: BTreeMap<(String, String), Token>,
    /// Buckets whose plugin failed, with how: their states stopped there,
    /// and a restart must not serve them again.
    failed: BTreeMap<String, PluginFailure>,
    /// Per origin, the writes forgotten so far (`1..=n`): one committed
    /// after its peers said they hold it does not join the tail.
    forgotten: Floor,
}

/// Per origin, the largest `n` such that every peer holds writes `1..=n`
/// durably: the writes a replica may forget.
pub type Floor = BTreeMap<ReplicaId, u64>;

impl Checkpoint {
    /// Records a commit of `written` (new writes, from clients and peers)
    /// and `released` (writes whose commit wait ended since the last
    /// commit). `core` must hold nothing uncommitted: every write it has
    /// applied is among these or an earlier commit's.
    pub fn commit(&mut self, core: &ReplicaCore, written: &[Arc<Write>], released: &[Arc<Write>]) {
        let mut touched: Vec<(&str, &str)> = Vec::with_capacity(written.len() + released.len());
        for write in written {
            let dot = (write.origin, write.seq);
            self.have.insert(Dot(write.origin, write.seq));
            if core.pending.contains_key(&dot) {
                self.waiting.insert(dot);
                self.tail.insert(dot, Arc::clone(write));
            } else if self.forgotten.get(&write.origin).is_none_or(|&through| write.seq > through) {
                self.tail.insert(dot, Arc::clone(write));
            }
            if let Some(token) = write.fence {
                let seen = self.fences.entry((write.bucket.clone(), write.key.clone())).or_insert(token);
                *seen = (*seen).max(token);
            }
            touched.push((&write.bucket, &write.key));
        }
        for write in released {
            self.waiting.remove(&(write.origin, write.seq));
            touched.push((&write.bucket, &write.key));
        }
        if self.failed.len() < core.buckets.len() {
            for (name, bucket) in &core.buckets {
                if let Some(failure) = bucket.failure.get() {
                    self.failed.entry(name.clone()).or_insert_with(|| failure.clone());
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for (bucket, key) in touched {
            let Some(state) = core.buckets.get(bucket).and_then(|bucket| bucket.keys.get(key)) else {
                continue; // not applied: its plugin failed
            };
            let keys = match self.keys.get_mut(bucket) {
                Some(keys) => keys,
                None => self.keys.entry(bucket.to_string()).or_default(),
            };
            match keys.get_mut(key) {
                Some(kept) => kept.clone_from(state),
                None => drop(keys.insert(key.to_string(), state.clone())),
            }
        }
    }

    /// Drops from the tail the writes at or below `floor`.
    pub fn forget(&mut self, floor: &Floor) {
        let waiting = &self.waiting;
        forget_below(&mut self.tail, floor, |dot| waiting.contains(dot));
        for (&origin, &through) in floor {
            let forgotten = self.forgotten.entry(origin).or_default();
            *forgotten = (*forgotten).max(through);
        }
    }

    /// How many writes the tail holds.
    pub fn tail_len(&self) -> usize {
        self.tail.len()
    }
}

/// Removes the entries of `log` at or below `floor`, but those `kept`.
/// Costs a lookup per entry removed, however long the log.
fn forget_below<V>(
    log: &mut BTreeMap<(ReplicaId, u64), V>,
    floor: &Floor,
    kept: impl Fn(&(ReplicaId, u64)) -> bool,
) {
    for (&origin, &through) in floor {
        let mut from = 0;
        while from <= through {
            let Some((&dot, _)) = log.range((origin, from)..=(origin, through)).next() else { break };
            if !kept(&dot) {
                log.remove(&dot);
            }
            from = dot.1 + 1;
        }
    }
}

impl ReplicaCore {
    /// Drops from the log the writes at or below `floor`, which every peer
    /// has said it holds durably: no peer will ask for them again. Their
    /// effect stays in their keys' states; their dots stay known. Writes
    /// still in their commit wait are never dropped (no peer has them).
    pub fn forget(&mut self, floor: &Floor) {
        let pending = &self.pending;
        forget_below(&mut self.log, floor, |dot| pending.contains_key(dot));
    }

    /// A replica restarted on `checkpoint`, with a fresh `clock`: each key's
    /// state as checkpointed, the tail as its log, and writes that were in
    /// their commit wait applied at once (as a replay of the log would;
    /// the checkpoint records that). Its clocks observe every surviving
    /// write.
    pub fn recover(
        id: ReplicaId,
        clock: PhysicalClock,
        strategies: Vec<Arc<dyn Strategy>>,
        checkpoint: &mut Checkpoint,
    ) -> Self {
        let mut core = Self::with_strategies(id, clock, strategies);
        core.log = checkpoint.tail.clone();
        core.have = checkpoint.have.clone();
        core.fences = checkpoint.fences.clone();
        let physical_now: Nanos = core.clock.now();
        for (name, bucket) in &mut core.buckets {
            if let Some(failure) = checkpoint.failed.get(name) {
                // Out of service, as before the crash.
                let _ = bucket.failure.set(failure.clone());
            }
            let Some(keys) = checkpoint.keys.get(name) else { continue };
            bucket.keys = keys.clone();
            if bucket.failure.get().is_some() {
                continue;
            }
            let mut clocks =
                Clocks { replica: id, physical_now, hlc: &mut core.hlc, lamport: &mut core.lamport };
            for write in bucket.keys.values().flat_map(|state| &state.siblings) {
                // Observed when it first came in; a plugin failing now takes its bucket out.
                if let Err(error) = bucket.strategy.observe(write, &mut clocks) {
                    drop(bucket.failed(error));
                    break;
                }
            }
        }
        let waiting: Vec<Arc<Write>> =
            checkpoint.waiting.iter().filter_map(|dot| checkpoint.tail.get(dot)).cloned().collect();
        for write in &waiting {
            let Some(bucket) = core.buckets.get_mut(write.bucket.as_str()) else { continue };
            let mut clocks =
                Clocks { replica: id, physical_now, hlc: &mut core.hlc, lamport: &mut core.lamport };
            if bucket.failure.get().is_none() {
                match bucket.strategy.observe(write, &mut clocks) {
                    Ok(()) => drop(bucket.apply(write)),
                    Err(error) => drop(bucket.failed(error)),
                }
            }
        }
        // They are applied now: the checkpoint says so, as after a release.
        checkpoint.commit(&core, &[], &waiting);
        core
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::physical::{ManualTrueTime, TrueTime};
    use crate::replica::core::Snapshot;
    use crate::strategy::{self, RawJson};

    const T0: Nanos = 1_700_000_000_000_000_000;

    /// One replica under test, with what its store keeps and every write
    /// it ever logged (what a replay would read).
    struct Replica {
        core: ReplicaCore,
        checkpoint: Checkpoint,
        logged: Vec<Arc<Write>>,
    }

    impl Replica {
        /// Commits what `new` brought, with whatever commit waits ended.
        fn commit(&mut self, new: Vec<Arc<Write>>) {
            let released = self.core.release();
            self.checkpoint.commit(&self.core, &new, &released);
            self.logged.extend(new);
        }
    }

    fn clock(time: &Arc<ManualTrueTime>, offset_ms: f64) -> PhysicalClock {
        let mut clock = PhysicalClock::modelled(Arc::clone(time) as Arc<dyn TrueTime>);
        let update = crate::clock::update::ClockUpdate { offset_ms: Some(offset_ms), ..Default::default() };
        clock.update(&update).expect("a valid offset");
        clock
    }

    fn snapshot_of(core: &ReplicaCore) -> Snapshot {
        core.snapshot()
    }

    /// A bucket whose plugin failed before a crash is still out of service
    /// after the restart (a replay of the log would fail it again), and the
    /// others serve on.
    #[test]
    fn a_bucket_whose_plugin_failed_stays_out_of_service_after_a_restart() {
        use crate::replica::core::CoreError;
        use crate::replica::core::tests::BreaksOnSecondApply;
        use serde_json::Value;
        let time = ManualTrueTime::new(T0);
        let strategies = || -> Vec<Arc<dyn Strategy>> {
            let breaks = BreaksOnSecondApply(std::sync::atomic::AtomicUsize::new(0));
            vec![Arc::new(crate::strategy::lww_wall::LwwWall), Arc::new(breaks)]
        };
        let mut core = ReplicaCore::with_strategies(1, clock(&time, 0.0), strategies());
        let mut checkpoint = Checkpoint::default();
        let first =
            core.write("breaks", "x", RawJson::of(&json!([1])), &Value::Null).expect("the first apply");
        checkpoint.commit(&core, &[first.write], &[]);
        assert!(core.write("breaks", "x", RawJson::of(&json!([2])), &Value::Null).is_err());
        let other = core.write("lww-wall", "y", RawJson::of(&json!([3])), &Value::Null).expect("served");
        checkpoint.commit(&core, &[other.write], &[]);
        let recovered = ReplicaCore::recover(1, clock(&time, 0.0), strategies(), &mut checkpoint);
        assert!(matches!(recovered.read("breaks", "x"), Err(CoreError::BucketFailed { .. })));
        assert_eq!(recovered.read("lww-wall", "y").expect("served").siblings.len(), 1);
    }

    /// Every built-in strategy, three skewed replicas, read-modify-writes
    /// and replication in a fixed tangle, a commit after each step and
    /// forgetting whenever replicas compare notes: the log shrinks, and a
    /// replica recovered from its checkpoint reads as a replay of every
    /// write it logged would, knows the same writes, and offers each peer
    /// the same writes.
    #[test]
    fn a_recovered_replica_reads_as_a_replay_of_its_whole_log_would() {
        let time = ManualTrueTime::new(T0);
        let mut replicas: Vec<Replica> = (1..=3)
            .zip([0.0, 7.0, -4.0])
            .map(|(id, offset)| Replica {
                core: ReplicaCore::new(id, clock(&time, offset)),
                checkpoint: Checkpoint::default(),
                logged: Vec::new(),
            })
            .collect();
        let buckets: Vec<String> = strategy::registry().iter().map(|s| s.name().to_string()).collect();
        for step in 0..240u64 {
            time.set(T0 + step as Nanos * 3_000_000);
            let writer = (step % 3) as usize;
            let bucket = &buckets[(step / 3) as usize % buckets.len()];
            let key = format!("k{}", step % 5);
            let read = replicas[writer].core.read(bucket, &key).expect("a read");
            let written = replicas[writer]
                .core
                .write(bucket, &key, RawJson::of(&json!([step])), &read.context)
                .expect("a write");
            replicas[writer].commit(vec![written.write]);
            // Replication in a fixed tangle: each pair now and then.
            if step % 4 == 0 {
                let (from, to) = ((step / 4 % 3) as usize, ((step / 4 + 1) % 3) as usize);
                let missing = replicas[from].core.missing(replicas[to].core.have(), |_| true, usize::MAX);
                let new = replicas[to].core.receive(missing).expect("a valid batch");
                replicas[to].commit(new);
            }
            // Every so often the replicas learn what the others hold.
            if step % 10 == 9 {
                for me in 0..3 {
                    let others: Vec<&DotSet> =
                        (0..3).filter(|&peer| peer != me).map(|peer| replicas[peer].core.have()).collect();
                    let floor: Floor = replicas[me]
                        .core
                        .have()
                        .replicas()
                        .into_iter()
                        .map(|origin| {
                            (origin, others.iter().map(|have| have.contiguous(origin)).min().unwrap_or(0))
                        })
                        .collect();
                    let replica = &mut replicas[me];
                    replica.core.forget(&floor);
                    replica.checkpoint.forget(&floor);
                }
            }
        }
        let peers: Vec<DotSet> = replicas.iter().map(|replica| replica.core.have().clone()).collect();
        for (index, replica) in replicas.iter_mut().enumerate() {
            let id = replica.core.id();
            let mut replayed = ReplicaCore::new(id, clock(&time, 0.0));
            for write in &replica.logged {
                replayed.restore(Write::clone(write)).expect("a logged write");
            }
            let recovered = ReplicaCore::recover(
                id,
                clock(&time, 0.0),
                strategy::registry(),
                &mut replica.checkpoint.clone(),
            );
            assert!(replica.core.log_len() < replica.logged.len() / 2, "replica {id} forgot too little");
            assert_eq!(replica.checkpoint.tail_len(), replica.core.log_len(), "replica {id}");
            assert_eq!(snapshot_of(&recovered), snapshot_of(&replayed), "replica {id}");
            assert_eq!(recovered.have(), replica.core.have(), "replica {id}");
            for (peer, have) in peers.iter().enumerate().filter(|(peer, _)| *peer != index) {
                let dots = |core: &ReplicaCore| -> Vec<(ReplicaId, u64)> {
                    core.missing(have, |_| true, usize::MAX)
                        .iter()
                        .map(|write| (write.origin, write.seq))
                        .collect()
                };
                assert_eq!(dots(&recovered), dots(&replayed), "replica {id} to peer {}", peer + 1);
            }
        }
    }
}
