//! `lww-lamport`: last write wins, by a Lamport clock.
//!
//! The stamp is `[counter, replica_id]`. Each replica keeps one counter:
//! it takes the maximum of every stamp it receives, from replicated writes
//! and from the stamp a client read (its context), and a new write gets that
//! maximum plus one (Lamport, "Time, Clocks, and the Ordering of Events in a
//! Distributed System", 1978). So a write is always stamped above every
//! write it could have seen: like `lww-hlc`, it never violates causality,
//! and DDIA Figure 8-3's increment survives. Maelstrom's `lww-kv` orders
//! writes this way.
//!
//! What it gives up: real time. The counter knows nothing of the clock, so
//! of two writes that never saw each other, the one on the replica that has
//! counted further wins, however much earlier it was made. A write made a
//! second after another, on a replica that has not yet heard of it, can
//! lose to it: a "real-time violation" that a physical clock would
//! have ordered right. `lww-hlc` keeps the clock's order when clocks agree
//! and Lamport's when they do not.

use serde::{Deserialize, Serialize};

use super::lww::LwwStamps;
use super::{Clocks, StampKind};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;

/// `[counter, replica_id]`, compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LamportStamp(pub u64, pub ReplicaId);

pub struct LwwLamport;

impl LwwStamps for LwwLamport {
    type Stamp = LamportStamp;
    const NAME: &'static str = "lww-lamport";
    const STAMP_KIND: StampKind = StampKind::Lamport;

    fn make(&self, read: Option<LamportStamp>, clocks: &mut Clocks) -> (LamportStamp, Option<Nanos>) {
        // The client carries causality from its read: receive it like a message.
        if let Some(read) = read {
            *clocks.lamport = (*clocks.lamport).max(read.0);
        }
        *clocks.lamport += 1;
        (LamportStamp(*clocks.lamport, clocks.replica), None)
    }

    fn learn_from(&self, stamp: &LamportStamp, clocks: &mut Clocks) {
        *clocks.lamport = (*clocks.lamport).max(stamp.0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::clock::hlc::Hlc;
    use crate::strategy::{KeyState, RawJson, Strategy, Write, parse_stamp};
    use proptest::prelude::{prop, prop_assert, prop_assert_eq, proptest};

    fn write(origin: ReplicaId, seq: u64, stamp: LamportStamp) -> Arc<Write> {
        Arc::new(Write {
            origin,
            seq,
            bucket: "lww-lamport".into(),
            key: "x".into(),
            value: RawJson::of(&seq),
            stamp: RawJson::of(&stamp),
            context: RawJson::null(),
            fence: None,
        })
    }

    fn stamp_at(replica: ReplicaId, lamport: &mut u64, context: &Value) -> LamportStamp {
        let mut hlc = Hlc::default();
        let mut clocks = Clocks { replica, physical_now: 0, hlc: &mut hlc, lamport };
        let stamped = LwwLamport.stamp(&KeyState::default(), context, &mut clocks).unwrap();
        parse_stamp(&stamped.stamp).unwrap()
    }

    #[test]
    fn figure_8_3_keeps_the_increment_whatever_the_clocks() {
        // Node 1 writes x = 1; node 3 receives it, its client reads it and
        // increments: the increment is stamped above what it read.
        let (mut node_1, mut node_3) = (0, 0);
        let first = stamp_at(1, &mut node_1, &Value::Null);
        let mut hlc = Hlc::default();
        let mut clocks = Clocks { replica: 3, physical_now: 0, hlc: &mut hlc, lamport: &mut node_3 };
        LwwLamport.observe(&write(1, 1, first), &mut clocks).unwrap();
        let second = stamp_at(3, &mut node_3, &serde_json::json!(first));
        assert!(second > first, "{second:?} > {first:?}");
    }

    #[test]
    fn a_later_write_on_a_replica_that_has_counted_less_loses() {
        // Replica 1 has made three writes; replica 2, which has heard of
        // none, writes later in real time and still gets the smaller stamp.
        let mut busy = 0;
        for _ in 0..3 {
            stamp_at(1, &mut busy, &Value::Null);
        }
        let earlier = stamp_at(1, &mut busy, &Value::Null);
        let later = stamp_at(2, &mut 0, &Value::Null);
        assert!(later < earlier, "the Lamport order is not real time");
    }

    proptest! {
        /// Stamps never go below any stamp the replica has seen, from peers
        /// or from a client's context.
        #[test]
        fn stamps_never_go_below_what_was_seen(events in prop::collection::vec((0u64..50, prop::bool::ANY), 1..40)) {
            let mut lamport = 0;
            let mut seen = 0;
            for (counter, from_client) in events {
                let other = LamportStamp(counter, 9);
                let stamp = if from_client {
                    stamp_at(1, &mut lamport, &serde_json::json!(other))
                } else {
                    let mut hlc = Hlc::default();
                    let mut clocks = Clocks { replica: 1, physical_now: 0, hlc: &mut hlc, lamport: &mut lamport };
                    LwwLamport.observe(&write(9, 1, other), &mut clocks).unwrap();
                    stamp_at(1, &mut lamport, &Value::Null)
                };
                seen = seen.max(counter);
                prop_assert!(stamp.0 > seen, "{stamp:?} after seeing {seen}");
                seen = stamp.0;
            }
        }

        /// Any delivery order, with repeats, keeps the same write.
        #[test]
        fn the_greatest_stamp_wins_in_any_order(
            stamps in prop::collection::vec((1u64..20, 1u32..4), 1..12),
            order in prop::collection::vec(0usize..100, 1..30),
        ) {
            let writes: Vec<Arc<Write>> =
                stamps.iter().enumerate().map(|(seq, &(c, r))| write(r, seq as u64 + 1, LamportStamp(c, r))).collect();
            let mut forward = KeyState::default();
            for write in &writes {
                LwwLamport.apply(&mut forward, write).unwrap();
            }
            let mut shuffled = KeyState::default();
            for &index in &order {
                LwwLamport.apply(&mut shuffled, &writes[index % writes.len()]).unwrap();
            }
            for write in &writes {
                LwwLamport.apply(&mut shuffled, write).unwrap();
            }
            prop_assert_eq!(forward, shuffled);
        }
    }
}
