//! `lww-wall`: last write wins, by the writer's time-of-day clock.
//!
//! The stamp is `[physical_ns, replica_id]`: the physical clock reading of
//! the replica that accepted the write, with its id to break ties. This is
//! what Cassandra and many multi-leader setups do, and it is the strategy of
//! DDIA Figure 8-3: node 1's clock is a few milliseconds ahead of node 3's,
//! so node 3's increment `x = 2` gets a *smaller* stamp than the `x = 1` it
//! read. Every replica keeps `x = 1`, and the increment, acknowledged to
//! its client, silently disappears.
//!
//! Nothing here is wrong as code: the stamps are simply not in causal order
//! whenever a clock lies by more than the time between two dependent writes.
//! The client's read context is accepted and ignored: a wall clock has no way
//! to use it, which is the point.

use serde::{Deserialize, Serialize};

use super::lww::LwwStamps;
use super::{Clocks, StampKind};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;

/// `[physical_ns, replica_id]`, compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WallStamp(pub Nanos, pub ReplicaId);

pub struct LwwWall;

impl LwwStamps for LwwWall {
    type Stamp = WallStamp;
    const NAME: &'static str = "lww-wall";
    const STAMP_KIND: StampKind = StampKind::WallClock;

    /// The clock's reading; what the client read is not looked at.
    fn make(&self, _read: Option<WallStamp>, clocks: &mut Clocks) -> (WallStamp, Option<Nanos>) {
        (WallStamp(clocks.physical_now, clocks.replica), None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::clock::hlc::Hlc;
    use crate::strategy::{KeyState, RawJson, Strategy, Write, parse_stamp};
    use proptest::prelude::{any, prop, prop_assert_eq, proptest};

    fn write(origin: ReplicaId, seq: u64, physical: Nanos) -> Arc<Write> {
        Arc::new(Write {
            origin,
            seq,
            bucket: "lww-wall".into(),
            key: "x".into(),
            value: (&serde_json::json!(seq)).into(),
            stamp: RawJson::of(&WallStamp(physical, origin)),
            context: RawJson::null(),
            fence: None,
        })
    }

    #[test]
    fn the_stamp_is_the_physical_clock_and_the_replica() {
        let mut hlc = Hlc::default();
        let mut clocks = Clocks { replica: 3, physical_now: 42_003, hlc: &mut hlc, lamport: &mut 0 };
        let stamped = LwwWall.stamp(&KeyState::default(), &Value::Null, &mut clocks).unwrap();
        assert_eq!(stamped.stamp.parse(), serde_json::json!([42_003, 3]));
    }

    #[test]
    fn equal_times_are_broken_by_replica_id() {
        let mut state = KeyState::default();
        LwwWall.apply(&mut state, &write(2, 1, 100)).unwrap();
        LwwWall.apply(&mut state, &write(1, 1, 100)).unwrap();
        assert_eq!(state.siblings[0].origin, 2);
    }

    #[test]
    fn a_malformed_context_or_stamp_is_refused() {
        let mut hlc = Hlc::default();
        let mut clocks = Clocks { replica: 1, physical_now: 0, hlc: &mut hlc, lamport: &mut 0 };
        let bad = serde_json::json!({"vv": {}});
        assert!(LwwWall.stamp(&KeyState::default(), &bad, &mut clocks).is_err());
        let mut broken = (*write(1, 1, 5)).clone();
        broken.stamp = (&serde_json::json!(["soon", 1])).into();
        assert!(LwwWall.check(&broken).is_err());
    }

    proptest! {
        /// Whatever the order and however many duplicates, every replica
        /// ends with the write of the greatest stamp.
        #[test]
        fn the_greatest_stamp_wins_in_any_order(
            stamps in prop::collection::vec((1..4u32, 0..20i64), 1..12),
            order in prop::collection::vec(any::<prop::sample::Index>(), 1..40),
        ) {
            let writes: Vec<_> = stamps.iter().enumerate()
                .map(|(i, &(origin, time))| write(origin, i as u64 + 1, time))
                .collect();
            let mut state = KeyState::default();
            // Deliver in a random order with repeats, then everything once more.
            for index in &order {
                LwwWall.apply(&mut state, index.get(&writes)).unwrap();
            }
            for write in &writes {
                LwwWall.apply(&mut state, write).unwrap();
            }
            let best = writes.iter()
                .max_by_key(|w| (parse_stamp::<WallStamp>(&w.stamp).unwrap(), w.seq))
                .unwrap();
            prop_assert_eq!(state.siblings.len(), 1);
            prop_assert_eq!(&state.siblings[0], best);
        }
    }
}
