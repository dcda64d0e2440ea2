//! `lww-hlc`: last write wins, by a hybrid logical clock.
//!
//! The stamp is `[l_ns, counter, replica_id]`, an HLC timestamp
//! (Kulkarni et al. 2014, see [`crate::clock::hlc`]) with the replica id to
//! break ties. The replica's HLC observes every replicated `lww-hlc` write it
//! receives, and the stamp a client read (its context), so a write is always
//! stamped after every write it could have seen. In DDIA Figure 8-3 node 3
//! has received `x = 1` before its client reads it, so the increment is
//! stamped above `x = 1` even though node 3's physical clock is behind: the
//! increment survives.
//!
//! What HLC does not fix: two writes made without knowledge of each other
//! are still ordered by (roughly) physical time, and one of them is dropped.
//! That is a *concurrent* overwrite, which LWW loses by design; telling it
//! apart from a causal one needs version vectors.

use serde::{Deserialize, Serialize};

use super::lww::LwwStamps;
use super::{Clocks, StampKind};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::hlc::HlcTimestamp;

/// `[l_ns, counter, replica_id]`, compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HlcStamp(pub Nanos, pub u64, pub ReplicaId);

impl HlcStamp {
    pub fn timestamp(&self) -> HlcTimestamp {
        HlcTimestamp { l: self.0, c: self.1 }
    }
}

pub struct LwwHlc;

impl LwwStamps for LwwHlc {
    type Stamp = HlcStamp;
    const NAME: &'static str = "lww-hlc";
    const STAMP_KIND: StampKind = StampKind::Hybrid;

    fn make(&self, read: Option<HlcStamp>, clocks: &mut Clocks) -> (HlcStamp, Option<Nanos>) {
        // The client carries causality from its read: receive it like a message.
        if let Some(read) = read {
            clocks.hlc.receive(read.timestamp(), clocks.physical_now);
        }
        let now = clocks.hlc.tick(clocks.physical_now);
        (HlcStamp(now.l, now.c, clocks.replica), None)
    }

    fn learn_from(&self, stamp: &HlcStamp, clocks: &mut Clocks) {
        clocks.hlc.receive(stamp.timestamp(), clocks.physical_now);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::clock::hlc::Hlc;
    use crate::strategy::{KeyState, RawJson, Strategy, Write, parse_stamp};

    fn write_with(stamp: HlcStamp) -> Write {
        Write {
            origin: stamp.2,
            seq: 1,
            bucket: "lww-hlc".into(),
            key: "x".into(),
            value: (&serde_json::json!(1)).into(),
            stamp: RawJson::of(&stamp),
            context: RawJson::null(),
            fence: None,
        }
    }

    #[test]
    fn a_write_after_receiving_is_stamped_above_what_was_received() {
        // Node 1's clock is at 42.004 s; node 3's at 42.003 s.
        let from_node_1 = write_with(HlcStamp(42_004, 0, 1));
        let mut hlc = Hlc::default();
        let mut node_3 = Clocks { replica: 3, physical_now: 42_003, hlc: &mut hlc, lamport: &mut 0 };
        LwwHlc.observe(&from_node_1, &mut node_3).unwrap();
        let stamped = LwwHlc.stamp(&KeyState::default(), &Value::Null, &mut node_3).unwrap();
        let stamp: HlcStamp = parse_stamp(&stamped.stamp).unwrap();
        assert!(stamp > HlcStamp(42_004, 0, 1), "{stamp:?}");
    }

    #[test]
    fn the_read_context_carries_causality_between_replicas() {
        // A client reads on node 1 and writes on node 3, which has not yet
        // received node 1's write: the context alone orders the two.
        let read = serde_json::json!(HlcStamp(42_004, 0, 1));
        let mut hlc = Hlc::default();
        let mut node_3 = Clocks { replica: 3, physical_now: 42_003, hlc: &mut hlc, lamport: &mut 0 };
        let stamped = LwwHlc.stamp(&KeyState::default(), &read, &mut node_3).unwrap();
        assert!(parse_stamp::<HlcStamp>(&stamped.stamp).unwrap() > HlcStamp(42_004, 0, 1));
    }
}
