//! `vv`: dotted version vectors, which keep concurrent writes as siblings.
//!
//! Last write wins has to throw a write away whenever two meet. Version
//! vectors (DDIA chapter 5, "Detecting Concurrent Writes") instead ask: did
//! the later writer *know* about the earlier write? If it did, the earlier
//! write is superseded; if not, the two are concurrent, and both are kept as
//! *siblings* for the next reader to merge. No clock is read at all, so no
//! clock can make this strategy lose a write.
//!
//! This is the dotted version vector scheme of Preguiça, Baquero et al.
//! ("Dotted Version Vectors: Logical Clocks for Optimistic Replication",
//! 2010/2012), as Riak uses it:
//!
//! - Each write gets a *dot* `[replica_id, n]`: the n-th write to this key
//!   that this replica coordinated. The dot is its stamp.
//! - A read returns the siblings and a *context*: the dot set of every write
//!   the key has seen (see [`crate::clock::dots`]).
//! - A write sends that context back. It supersedes exactly the writes in
//!   its context; any sibling outside it was written concurrently and stays.
//!
//! Merging a write into a key, at any replica, in any order:
//!
//! 1. If its dot is already in the key's seen set, it is a duplicate or was
//!    superseded before it arrived: ignore it.
//! 2. Otherwise drop the siblings its context covers, add it, and add its
//!    dot and its context to the seen set (so a superseded write that turns
//!    up late is recognised and ignored by rule 1).
//!
//! The surviving siblings are the writes whose dot is in no other write's
//! context, whatever the delivery order: replicas converge.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::{Clocks, KeyState, Kind, RawJson, Stamped, Strategy, StrategyError, Write, parse_stamp};
use crate::clock::dots::{Dot, DotSet};

pub struct VersionVectors;

fn malformed_context(error: serde_json::Error) -> StrategyError {
    StrategyError::MalformedContext(format!(
        r#"expected null or {{"vv": {{"REPLICA": N}}, "dots": [[REPLICA, N]]}}: {error}"#
    ))
}

/// The context a client sent with its write.
fn parse_context(context: &Value) -> Result<DotSet, StrategyError> {
    if context.is_null() {
        return Ok(DotSet::new());
    }
    DotSet::deserialize(context).map_err(malformed_context)
}

/// The context a logged write carries.
fn write_context(write: &Write) -> Result<DotSet, StrategyError> {
    let context: Option<DotSet> = serde_json::from_str(write.context.text()).map_err(malformed_context)?;
    Ok(context.unwrap_or_default())
}

impl Strategy for VersionVectors {
    fn name(&self) -> &str {
        "vv"
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
        // A context may only supersede writes this replica holds: otherwise
        // a write it has not yet received would be discarded on arrival.
        if !state.seen.includes(&context) {
            return Err(StrategyError::ContextAhead);
        }
        let dot = Dot(clocks.replica, state.seen.max_counter(clocks.replica) + 1);
        Ok(Stamped::now(RawJson::of(&dot), RawJson::of(&context)))
    }

    fn check(&self, write: &Write) -> Result<(), StrategyError> {
        let dot = parse_stamp::<Dot>(&write.stamp)?;
        if dot.counter() == 0 {
            return Err(StrategyError::MalformedStamp {
                stamp: write.stamp.clone(),
                reason: "counters start at 1".into(),
            });
        }
        write_context(write).map(drop)
    }

    fn apply(&self, state: &mut KeyState, write: &Arc<Write>) -> Result<(), StrategyError> {
        let (Ok(dot), Ok(context)) = (parse_stamp::<Dot>(&write.stamp), write_context(write)) else {
            return Ok(());
        };
        if state.seen.contains(dot) {
            return Ok(());
        }
        state.siblings.retain(|sibling| match parse_stamp::<Dot>(&sibling.stamp) {
            Ok(sibling_dot) => !context.contains(sibling_dot),
            Err(_) => false,
        });
        state.siblings.push(Arc::clone(write));
        state.siblings.sort_by_key(|sibling| (sibling.origin, sibling.seq));
        state.seen.insert(dot);
        state.seen.merge(&context);
        Ok(())
    }

    fn read_context(&self, state: &KeyState) -> Result<Value, StrategyError> {
        Ok(serde_json::json!(state.seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::hlc::Hlc;
    use proptest::prelude::{any, prop, prop_assert_eq, proptest};

    /// A replica's view of one key, for playing out scenarios by hand.
    struct Replica {
        id: u32,
        state: KeyState,
        log_seq: u64,
    }

    impl Replica {
        fn new(id: u32) -> Self {
            Self { id, state: KeyState::default(), log_seq: 0 }
        }

        fn put(&mut self, value: i64, context: &Value) -> Arc<Write> {
            let mut hlc = Hlc::default();
            let mut clocks = Clocks { replica: self.id, physical_now: 0, hlc: &mut hlc, lamport: &mut 0 };
            let stamped = VersionVectors.stamp(&self.state, context, &mut clocks).unwrap();
            self.log_seq += 1;
            let write = Arc::new(Write {
                origin: self.id,
                seq: self.log_seq,
                bucket: "vv".into(),
                key: "x".into(),
                value: (&serde_json::json!(value)).into(),
                stamp: stamped.stamp,
                context: stamped.context,
                fence: None,
            });
            VersionVectors.apply(&mut self.state, &write).unwrap();
            write
        }

        fn context(&self) -> Value {
            VersionVectors.read_context(&self.state).unwrap()
        }

        fn values(&self) -> Vec<i64> {
            let mut values: Vec<i64> =
                self.state.siblings.iter().map(|w| w.value.parse().as_i64().unwrap()).collect();
            values.sort();
            values
        }
    }

    #[test]
    fn concurrent_writes_become_siblings_and_a_read_write_merges_them() {
        let (mut a, mut b) = (Replica::new(1), Replica::new(2));
        let from_a = a.put(1, &Value::Null);
        let from_b = b.put(2, &Value::Null);
        VersionVectors.apply(&mut a.state, &from_b).unwrap();
        VersionVectors.apply(&mut b.state, &from_a).unwrap();
        assert_eq!(a.values(), vec![1, 2]);
        assert_eq!(b.values(), vec![1, 2]);
        let merged = a.put(3, &a.context());
        VersionVectors.apply(&mut b.state, &merged).unwrap();
        assert_eq!(a.values(), vec![3]);
        assert_eq!(b.values(), vec![3]);
    }

    #[test]
    fn a_superseded_write_arriving_late_is_ignored() {
        let (mut a, mut c) = (Replica::new(1), Replica::new(3));
        let first = a.put(1, &Value::Null);
        let second = a.put(2, &a.context());
        VersionVectors.apply(&mut c.state, &second).unwrap();
        VersionVectors.apply(&mut c.state, &first).unwrap();
        assert_eq!(c.values(), vec![2]);
    }

    #[test]
    fn a_context_from_the_future_is_refused() {
        let a = Replica::new(1);
        let mut hlc = Hlc::default();
        let mut clocks = Clocks { replica: 1, physical_now: 0, hlc: &mut hlc, lamport: &mut 0 };
        let ahead = serde_json::json!({"vv": {"2": 1}});
        let error = VersionVectors.stamp(&a.state, &ahead, &mut clocks).unwrap_err();
        assert_eq!(error, StrategyError::ContextAhead);
        let malformed = serde_json::json!([1, 2]);
        let error = VersionVectors.stamp(&a.state, &malformed, &mut clocks).unwrap_err();
        assert!(matches!(error, StrategyError::MalformedContext(_)));
    }

    /// A random history of writes on three replicas, each either blind or
    /// reading first, with random replication in between.
    fn history() -> impl proptest::strategy::Strategy<Value = Vec<(usize, bool, Vec<usize>)>> {
        prop::collection::vec((0..3usize, any::<bool>(), prop::collection::vec(0..3usize, 0..3)), 1..15)
    }

    /// Plays a history: returns every write made.
    fn play(steps: &[(usize, bool, Vec<usize>)]) -> Vec<Arc<Write>> {
        let mut replicas: Vec<Replica> = (1..=3).map(Replica::new).collect();
        let mut writes = Vec::new();
        for (i, (at, reads_first, ship_to)) in steps.iter().enumerate() {
            let context = if *reads_first { replicas[*at].context() } else { Value::Null };
            let write = replicas[*at].put(i as i64, &context);
            for &to in ship_to {
                VersionVectors.apply(&mut replicas[to].state, &write).unwrap();
            }
            writes.push(write);
        }
        writes
    }

    fn merged(writes: &[Arc<Write>], order: &[usize]) -> KeyState {
        let mut state = KeyState::default();
        for &i in order {
            VersionVectors.apply(&mut state, &writes[i % writes.len()]).unwrap();
        }
        state
    }

    proptest! {
        /// Merge is commutative, associative and idempotent: delivering the
        /// same writes in any order, with any repeats, gives the same state.
        #[test]
        fn any_delivery_order_gives_the_same_state(
            steps in history(),
            shuffle in prop::collection::vec(any::<usize>(), 0..40),
        ) {
            let writes = play(&steps);
            let in_order: Vec<usize> = (0..writes.len()).collect();
            let mut scrambled: Vec<usize> = shuffle.clone();
            scrambled.extend(in_order.iter().rev());
            scrambled.extend(&shuffle);
            prop_assert_eq!(merged(&writes, &in_order), merged(&writes, &scrambled));
        }

        /// No sibling is lost and covered siblings are removed: the survivors
        /// are exactly the writes that no other write's context covers.
        #[test]
        fn survivors_are_exactly_the_uncovered_writes(steps in history()) {
            let writes = play(&steps);
            let state = merged(&writes, &(0..writes.len()).collect::<Vec<_>>());
            let contexts: Vec<DotSet> =
                writes.iter().map(|w| write_context(w).unwrap()).collect();
            for write in &writes {
                let dot: Dot = parse_stamp(&write.stamp).unwrap();
                let covered = contexts.iter().any(|context| context.contains(dot));
                let kept = state.siblings.contains(write);
                prop_assert_eq!(kept, !covered, "write {} kept={} covered={}", write.write_id(), kept, covered);
            }
        }
    }
}
