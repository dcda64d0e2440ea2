//! `vv-server`: version vectors with one entry per replica and no dots, as
//! Riak kept them before 2.0.
//!
//! A client's context is a plain version vector `{"REPLICA": n}`: "I have
//! seen this replica's first n writes to this key". Each write is one more
//! event of the replica that takes it, and its stamp is its version vector:
//! the client's context with that event added. It is what `vv` does, less
//! the dots, and the dots are what tell *which* siblings a context covered.
//!
//! Without them a replica can only be sure of one case: the context covers
//! every write the replica holds for the key (it *descends* the replica's
//! version vector). Then the client saw all of them, and the new write
//! replaces everything its context covers. Otherwise the replica cannot
//! tell which siblings the client saw, and since it must never lose an
//! acknowledged write it keeps them all, and adds the new one beside them.
//! Siblings pile up: Preguiça, Baquero, Almeida et al. ("Dotted Version
//! Vectors: Logical Clocks for Optimistic Replication", 2010) show two
//! clients alternating write-then-read on one key through one server; each
//! write carries a context one write stale, so none descends, and after 101
//! writes there are 101 siblings, where dotted version vectors (`vv`) keep
//! 2. That is the *sibling explosion* that moved Riak to dotted version
//! vectors. Nothing is lost; the application is handed ever more to merge.
//!
//! A write's stored context is what it replaced: its client's context if it
//! descended, the empty vector if not. Every replica folds the stored
//! contexts of the writes it receives into `superseded`, and a write
//! survives while `superseded` does not name it, so the outcome does not
//! depend on delivery order. A context from another replica may name writes
//! this one has not yet received; they were in the reader's replica, so its
//! client saw them (or what replaced them), and they are superseded when
//! they arrive.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::{Clocks, KeyState, Kind, RawJson, Stamped, Strategy, StrategyError, Write, parse_stamp};
use crate::clock::dots::{Dot, DotSet, ReplicaId};

/// `{"REPLICA": n}`: the first n writes of each replica to one key.
pub type VersionVector = BTreeMap<ReplicaId, u64>;

pub struct ServerVersionVectors;

fn parse_context(context: &Value) -> Result<VersionVector, StrategyError> {
    if context.is_null() {
        return Ok(VersionVector::new());
    }
    VersionVector::deserialize(context).map_err(|error| {
        StrategyError::MalformedContext(format!(r#"expected null or {{"REPLICA": N}}: {error}"#))
    })
}

/// The write's own event: its origin's entry in its stamp.
fn dot_of(write: &Write) -> Result<Dot, StrategyError> {
    let stamp = parse_stamp::<VersionVector>(&write.stamp)?;
    match stamp.get(&write.origin) {
        Some(&n) if n > 0 => Ok(Dot(write.origin, n)),
        _ => Err(StrategyError::MalformedStamp {
            stamp: write.stamp.clone(),
            reason: format!("it has no entry for its origin, replica {}", write.origin),
        }),
    }
}

fn stored_context(write: &Write) -> Result<VersionVector, StrategyError> {
    serde_json::from_str(write.context.text())
        .map_err(|error| StrategyError::MalformedContext(format!("a stored vv-server context: {error}")))
}

/// Whether `context` covers every write of the key that `seen` holds.
fn descends(context: &VersionVector, seen: &DotSet) -> bool {
    seen.replicas()
        .into_iter()
        .all(|replica| seen.max_counter(replica) <= context.get(&replica).copied().unwrap_or(0))
}

impl Strategy for ServerVersionVectors {
    fn name(&self) -> &str {
        "vv-server"
    }

    fn kind(&self) -> Kind {
        Kind::Siblings
    }

    fn stamp_kind(&self) -> super::StampKind {
        super::StampKind::Version
    }

    fn stamp(
        &self,
        state: &KeyState,
        client_context: &Value,
        clocks: &mut Clocks,
    ) -> Result<Stamped, StrategyError> {
        let context = parse_context(client_context)?;
        let event = state.seen.max_counter(clocks.replica) + 1;
        let mut stamp = context.clone();
        stamp.insert(clocks.replica, event);
        let replaced = if descends(&context, &state.seen) { context } else { VersionVector::new() };
        Ok(Stamped::now(RawJson::of(&stamp), RawJson::of(&replaced)))
    }

    fn check(&self, write: &Write) -> Result<(), StrategyError> {
        dot_of(write)?;
        stored_context(write).map(drop)
    }

    fn apply(&self, state: &mut KeyState, write: &Arc<Write>) -> Result<(), StrategyError> {
        let (Ok(dot), Ok(replaced)) = (dot_of(write), stored_context(write)) else { return Ok(()) };
        if !state.seen.insert(dot) {
            return Ok(()); // seen before: delivery is at least once
        }
        state.superseded.merge(&DotSet::from_vector(&replaced));
        state.siblings.push(Arc::clone(write));
        let superseded = &state.superseded;
        state.siblings.retain(|sibling| dot_of(sibling).is_ok_and(|dot| !superseded.contains(dot)));
        state.siblings.sort_by_key(|sibling| (sibling.origin, sibling.seq));
        Ok(())
    }

    fn read_context(&self, state: &KeyState) -> Result<Value, StrategyError> {
        // Only the unbroken prefix of each replica's writes: a vector that
        // claimed a write beyond a gap would claim the gap too.
        Ok(serde_json::json!(state.seen.vector()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::hlc::Hlc;
    use crate::strategy::vv::VersionVectors;
    use proptest::prelude::{prop, prop_assert, prop_assert_eq, proptest};
    use std::collections::BTreeSet;

    /// One replica's view of one key under a strategy.
    struct Replica<'a> {
        id: ReplicaId,
        strategy: &'a dyn Strategy,
        state: KeyState,
        seq: u64,
    }

    impl<'a> Replica<'a> {
        fn new(id: ReplicaId, strategy: &'a dyn Strategy) -> Self {
            Self { id, strategy, state: KeyState::default(), seq: 0 }
        }

        fn put(&mut self, value: u64, context: &Value) -> Arc<Write> {
            let mut hlc = Hlc::default();
            let mut clocks = Clocks { replica: self.id, physical_now: 0, hlc: &mut hlc, lamport: &mut 0 };
            let stamped = self.strategy.stamp(&self.state, context, &mut clocks).unwrap();
            self.seq += 1;
            let write = Arc::new(Write {
                origin: self.id,
                seq: self.seq,
                bucket: self.strategy.name().into(),
                key: "x".into(),
                value: RawJson::of(&value),
                stamp: stamped.stamp,
                context: stamped.context,
                fence: None,
            });
            self.strategy.apply(&mut self.state, &write).unwrap();
            write
        }

        fn context(&self) -> Value {
            self.strategy.read_context(&self.state).unwrap()
        }
    }

    /// The dotted version vectors paper's example: two clients alternate
    /// write-then-read on one key through one replica, each writing with
    /// the context of its own last read, one write stale.
    fn alternate(strategy: &dyn Strategy, writes: u64) -> usize {
        let mut replica = Replica::new(1, strategy);
        let mut contexts = [Value::Null, Value::Null];
        for n in 0..writes {
            let client = (n % 2) as usize;
            replica.put(n, &contexts[client]);
            contexts[client] = replica.context();
        }
        replica.state.siblings.len()
    }

    #[test]
    fn after_101_alternating_writes_vv_server_holds_101_siblings_and_vv_2() {
        assert_eq!(alternate(&ServerVersionVectors, 101), 101);
        assert_eq!(alternate(&VersionVectors, 101), 2);
    }

    #[test]
    fn a_write_that_read_everything_replaces_it() {
        let mut replica = Replica::new(1, &ServerVersionVectors);
        replica.put(1, &Value::Null);
        replica.put(2, &Value::Null);
        assert_eq!(replica.state.siblings.len(), 2, "a blind write keeps what it did not read");
        let context = replica.context();
        replica.put(3, &context);
        let values: Vec<Value> = replica.state.siblings.iter().map(|write| write.value.parse()).collect();
        assert_eq!(values, vec![serde_json::json!(3)]);
    }

    #[test]
    fn a_context_read_elsewhere_cannot_replace_a_write_its_reader_lacked() {
        // Replica 2 has write 1:2 but not 1:1 (delivered out of order); a
        // client reads there and writes on replica 3, which has both.
        let (mut one, mut two, mut three) = (
            Replica::new(1, &ServerVersionVectors),
            Replica::new(2, &ServerVersionVectors),
            Replica::new(3, &ServerVersionVectors),
        );
        let first = one.put(1, &Value::Null);
        let second = one.put(2, &Value::Null);
        ServerVersionVectors.apply(&mut two.state, &second).unwrap();
        for write in [&first, &second] {
            ServerVersionVectors.apply(&mut three.state, write).unwrap();
        }
        let context = two.context();
        assert_eq!(context, serde_json::json!({}), "a vector never claims what lies beyond a gap");
        three.put(3, &context);
        assert_eq!(three.state.siblings.len(), 3, "nothing its client had not seen was replaced");
    }

    proptest! {
        /// Random writes, reads and deliveries on three replicas: every
        /// replica converges to the same siblings whatever the order, and no
        /// write is lost unless a client that read it wrote over it.
        #[test]
        fn converges_and_never_drops_a_write_no_one_read(
            steps in prop::collection::vec((0u32..3, 0u32..3, prop::bool::ANY), 1..40),
            seed in 0u64..1000,
        ) {
            let mut replicas: Vec<Replica> = (1..=3).map(|id| Replica::new(id, &ServerVersionVectors)).collect();
            let mut all: Vec<Arc<Write>> = Vec::new();
            // What each write's client had received where it read.
            let mut read_from: Vec<BTreeSet<(ReplicaId, u64)>> = Vec::new();
            for (n, &(writer, reader, deliver)) in steps.iter().enumerate() {
                let reading = &replicas[reader as usize];
                let context = reading.context();
                let received: BTreeSet<(ReplicaId, u64)> = all
                    .iter()
                    .filter(|write| dot_of(write).is_ok_and(|dot| reading.state.seen.contains(dot)))
                    .map(|write| (write.origin, write.seq))
                    .collect();
                let write = replicas[writer as usize].put(n as u64, &context);
                all.push(write);
                read_from.push(received);
                if deliver {
                    for write in &all {
                        for replica in &mut replicas {
                            ServerVersionVectors.apply(&mut replica.state, write).unwrap();
                        }
                    }
                }
            }
            // Deliver everything, each replica in its own order.
            for (index, replica) in replicas.iter_mut().enumerate() {
                let mut order: Vec<&Arc<Write>> = all.iter().collect();
                let shift = (seed as usize + index * 7) % order.len().max(1);
                order.rotate_left(shift);
                if index == 1 {
                    order.reverse();
                }
                for write in order {
                    ServerVersionVectors.apply(&mut replica.state, write).unwrap();
                }
            }
            prop_assert_eq!(&replicas[0].state.siblings, &replicas[1].state.siblings);
            prop_assert_eq!(&replicas[1].state.siblings, &replicas[2].state.siblings);
            let kept: BTreeSet<(ReplicaId, u64)> =
                replicas[0].state.siblings.iter().map(|write| (write.origin, write.seq)).collect();
            for write in &all {
                let id = (write.origin, write.seq);
                if !kept.contains(&id) {
                    prop_assert!(read_from.iter().any(|received| received.contains(&id)), "{:?} lost unread", id);
                }
            }
        }
    }
}
