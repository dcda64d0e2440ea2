//! The live oracle: which of the lab's writes are dropped *for good*.
//!
//! An experiment runs the oracle once, after it has stopped every fault and
//! waited for the replicas to converge. A live lab never stops, so it asks
//! per key: is this key *settled*, so that its state can no longer change
//! without a new write?
//!
//! A key is settled when
//!
//! - no operation on it is in flight, and none started while the replicas
//!   were being read;
//! - every acknowledged write on it has reached every replica (each
//!   replica's high-water mark for the write's origin covers its sequence
//!   number; the marks are read *before* the states, and only grow);
//! - every replica holds the same writes for it.
//!
//! Then a missing item can never come back: any later write reads a state
//! without it. The settled keys' writes and states go through the same
//! oracle as an experiment's history (`analysis::analyze`), so a drop the lab
//! shows is a drop the experiment runner would count, with the same cause.

use crate::write_id::{WriteId, WriteIds};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::clock::dots::ReplicaId;
use crate::engine::trial::final_sibling;
use crate::history::{FinalRecord, Outcome, Record, WriteRecord};
use crate::replica::core::{Sibling, Snapshot};

/// Per key, how many operations are in flight and how many ever started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyActivity {
    pub in_flight: HashMap<String, usize>,
    pub started: HashMap<String, u64>,
}

/// What the replicas reported, in the order it was read.
pub struct Observed<'a> {
    /// Per replica, `GET /admin/status`'s `high_water`, read first.
    pub high_water: &'a BTreeMap<ReplicaId, BTreeMap<ReplicaId, u64>>,
    /// Per replica, `GET /admin/state`, read second.
    pub states: &'a BTreeMap<ReplicaId, Snapshot>,
}

/// The records of the settled keys, ready for `analysis::analyze`, and how
/// many (bucket, key) pairs are not settled yet.
pub fn settled_history(
    writes: &[WriteRecord],
    before: &KeyActivity,
    after: &KeyActivity,
    observed: &Observed<'_>,
) -> (Vec<Record>, usize) {
    let mut groups: BTreeMap<(&str, &str), Vec<&WriteRecord>> = BTreeMap::new();
    for write in writes {
        groups.entry((&write.bucket, &write.key)).or_default().push(write);
    }
    let mut records = Vec::new();
    let mut unsettled = 0;
    for ((bucket, key), group) in groups {
        let quiet = before.in_flight.get(key).copied().unwrap_or(0) == 0
            && before.started.get(key) == after.started.get(key);
        let siblings = |state: &'_ Snapshot| -> Vec<Sibling> {
            state
                .get(bucket)
                .and_then(|keys| keys.get(key))
                .map(|read| read.siblings.clone())
                .unwrap_or_default()
        };
        let held = |state: &Snapshot| -> BTreeSet<WriteIds> {
            siblings(state).into_iter().map(|sibling| sibling.write_id).collect()
        };
        let mut holdings = observed.states.values().map(held);
        let first = holdings.next();
        let agree = first.is_some() && holdings.all(|other| Some(&other) == first.as_ref());
        let delivered = group.iter().all(|write| delivered_everywhere(write, observed));
        if !(quiet && agree && delivered && observed.states.len() == observed.high_water.len()) {
            unsettled += 1;
            continue;
        }
        records.extend(group.into_iter().cloned().map(Record::Write));
        for (&replica, state) in observed.states {
            records.push(Record::Final(FinalRecord {
                point: 0,
                trial: 0,
                bucket: bucket.into(),
                key: key.into(),
                replica,
                siblings: siblings(state).iter().map(final_sibling).collect(),
            }));
        }
    }
    (records, unsettled)
}

/// Whether an acknowledged write is in every replica's log. A write with
/// no acknowledgement cannot be tracked; only agreement settles its key.
fn delivered_everywhere(write: &WriteRecord, observed: &Observed<'_>) -> bool {
    if write.outcome != Outcome::Ok {
        return true;
    }
    let Some(WriteId { origin, seq }) = write.write_id else { return false };
    observed.high_water.values().all(|marks| marks.get(&origin).copied().unwrap_or(0) >= seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Cause, analyze};
    use serde_json::json;

    fn write(
        item: u64,
        value: &[u64],
        replica: ReplicaId,
        write_id: &str,
        stamp: u64,
        times: (i64, i64),
    ) -> WriteRecord {
        WriteRecord {
            point: 0,
            trial: 0,
            bucket: "lww-wall".into(),
            key: "x".into(),
            replica,
            item,
            value: value.to_vec(),
            read_siblings: 1,
            stamp: Some(json!([stamp, replica]).into()),
            write_id: Some(write_id.parse().expect("a write id")),
            metadata_bytes: None,
            invoke_ns: times.0,
            complete_ns: times.1,
            outcome: Outcome::Ok,
        }
    }

    fn state_holding(write_id: &str, value: &[u64], stamp: u64, replica: ReplicaId) -> Snapshot {
        let state = json!({"lww-wall": {"x": {
            "siblings": [{"value": value, "stamp": [stamp, replica], "write_id": write_id}],
            "context": [stamp, replica],
        }}});
        serde_json::from_str(&state.to_string()).expect("a snapshot")
    }

    /// Figure 8-3 in the lab: replica 1 (fast clock) writes item 1, replica 2
    /// reads it and adds item 2 with a smaller stamp; replica 1's write wins.
    fn figure_8_3() -> Vec<WriteRecord> {
        vec![write(1, &[1], 1, "1:1", 5_000, (0, 10)), write(2, &[1, 2], 2, "2:1", 3_000, (20, 30))]
    }

    fn marks(pairs: &[(ReplicaId, u64)]) -> BTreeMap<ReplicaId, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_settled_key_shows_its_drop_with_its_cause() {
        let high_water = (1..=2).map(|id| (id, marks(&[(1, 1), (2, 1)]))).collect();
        let states = (1..=2).map(|id| (id, state_holding("1:1", &[1], 5_000, 1))).collect();
        let observed = Observed { high_water: &high_water, states: &states };
        let quiet = KeyActivity::default();
        let (records, unsettled) = settled_history(&figure_8_3(), &quiet, &quiet, &observed);
        assert_eq!(unsettled, 0);
        let analysis = analyze(&records);
        assert_eq!(analysis.drops.len(), 1);
        assert_eq!(analysis.drops[0].victim.write_id, Some(WriteId::new(2, 1).into()));
        assert_eq!(analysis.drops[0].cause, Cause::Causality);
    }

    #[test]
    fn a_key_is_not_judged_until_every_replica_has_every_write() {
        // Replica 1 has not heard of 2:1 yet, though both show 1:1 (replica
        // 2 already discarded its own write): the key is not settled.
        let high_water = BTreeMap::from([(1, marks(&[(1, 1)])), (2, marks(&[(1, 1), (2, 1)]))]);
        let states = (1..=2).map(|id| (id, state_holding("1:1", &[1], 5_000, 1))).collect();
        let observed = Observed { high_water: &high_water, states: &states };
        let quiet = KeyActivity::default();
        let (records, unsettled) = settled_history(&figure_8_3(), &quiet, &quiet, &observed);
        assert_eq!((records.len(), unsettled), (0, 1));
    }

    #[test]
    fn a_key_is_not_judged_while_replicas_disagree_or_writes_are_in_flight() {
        let high_water = (1..=2).map(|id| (id, marks(&[(1, 1), (2, 1)]))).collect();
        let disagreeing = BTreeMap::from([
            (1, state_holding("1:1", &[1], 5_000, 1)),
            (2, state_holding("2:1", &[1, 2], 3_000, 2)),
        ]);
        let quiet = KeyActivity::default();
        let observed = Observed { high_water: &high_water, states: &disagreeing };
        assert_eq!(settled_history(&figure_8_3(), &quiet, &quiet, &observed).1, 1);

        let agreeing = (1..=2).map(|id| (id, state_holding("1:1", &[1], 5_000, 1))).collect();
        let observed = Observed { high_water: &high_water, states: &agreeing };
        let busy = KeyActivity { in_flight: HashMap::from([("x".into(), 1)]), ..Default::default() };
        assert_eq!(settled_history(&figure_8_3(), &busy, &busy, &observed).1, 1);
        // An operation that started while the replicas were read unsettles it too.
        let later = KeyActivity { started: HashMap::from([("x".into(), 1)]), ..Default::default() };
        assert_eq!(settled_history(&figure_8_3(), &quiet, &later, &observed).1, 1);
    }
}
