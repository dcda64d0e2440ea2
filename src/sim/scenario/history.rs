//! A played scenario as a history, judged by the same oracle as an
//! experiment.
//!
//! After every step, the story so far is written down the way the runner
//! writes an experiment (`crate::history`): one write record per
//! acknowledged write, with its true time and stamp, and one final record
//! per replica and key, as the replicas hold it now. The oracle
//! (`crate::analysis`) judges it from those records alone: the step-through
//! shows the writes it finds lost, and the golden transcript ends on its
//! verdict on the whole story (DDIA Figure 8-3: a *causality* drop, the
//! increment that lost to the value it had read).
//!
//! The lab's values are sets of item ids, and the oracle asks whether a
//! write's item survived. A scenario writes anything (`x = 1`, a shopping
//! list), so each write is given an item, and its value, as the history
//! holds it, is its own item plus the items of every write it read: what it
//! carried forward. A replica's final sibling holds the items of the writes
//! it stands for (several, for a merged `set-union` value), and a merged
//! value also holds every write whose elements it holds all of, since a
//! merge may fold a write into a larger set and keep no trace of its id.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::history::{FinalRecord, FinalSibling, Outcome, PointRecord, Record, Stamp, WriteRecord};
use crate::replica::core::ReplicaCore;
use crate::strategy::Kind;
use crate::write_id::{WriteId, WriteIds};

/// One acknowledged write a step made, as the history needs it.
#[derive(Debug, Clone)]
pub(super) struct PlayedWrite {
    pub bucket: String,
    pub key: String,
    pub replica: ReplicaId,
    pub write_id: WriteId,
    pub stamp: Value,
    /// The value as the scenario wrote it.
    pub value: Value,
    /// The writes its read returned (or, for a client's write, its last read).
    pub read: Vec<WriteIds>,
    /// True time it was sent at, and acknowledged at (later only after a
    /// commit wait), ns.
    pub invoked_ns: Nanos,
    pub acknowledged_ns: Nanos,
}

/// The history of a played scenario: a point record declaring each
/// bucket's kind, the write records in the order they were made, and each
/// replica's final state.
pub(super) fn of_play<'a>(
    kinds: &BTreeMap<String, Kind>,
    writes: &[PlayedWrite],
    cores: impl Iterator<Item = &'a ReplicaCore>,
) -> Vec<Record> {
    let mut params = serde_json::Map::new();
    params.insert("parameter".into(), Value::from("scenario"));
    params.insert("scenario".into(), Value::from(0));
    let mut records = vec![Record::Point(PointRecord {
        point: 0,
        params,
        kinds: kinds.clone(),
        stamps: Default::default(),
    })];

    // Each write's item, and the items its value carries.
    let mut items: HashMap<WriteId, Vec<u64>> = HashMap::new();
    let mut next_item: HashMap<&str, u64> = HashMap::new();
    for write in writes {
        let counter = next_item.entry(&write.bucket).or_insert(0);
        *counter += 1;
        let item = *counter;
        let mut carried = vec![item];
        for read in write.read.iter().flat_map(WriteIds::as_slice) {
            carried.extend(items.get(read).into_iter().flatten().copied());
        }
        carried.sort_unstable();
        carried.dedup();
        records.push(Record::Write(WriteRecord {
            point: 0,
            trial: 0,
            bucket: write.bucket.as_str().into(),
            key: write.key.as_str().into(),
            replica: write.replica,
            item,
            value: carried.clone(),
            read_siblings: write.read.len(),
            stamp: Some(Stamp::from_value(write.stamp.clone())),
            write_id: Some(write.write_id),
            metadata_bytes: None,
            invoke_ns: write.invoked_ns,
            complete_ns: write.acknowledged_ns,
            outcome: Outcome::Ok,
        }));
        items.insert(write.write_id, carried);
    }

    for core in cores {
        for (bucket, keys) in core.snapshot() {
            if !kinds.contains_key(&bucket) {
                continue;
            }
            let merges = kinds.get(&bucket) == Some(&Kind::Merge);
            for (key, reply) in keys {
                let siblings = reply
                    .siblings
                    .iter()
                    .map(|sibling| {
                        let held = sibling.value.parse();
                        let mut value: Vec<u64> = sibling
                            .write_id
                            .as_slice()
                            .iter()
                            .flat_map(|id| items.get(id).into_iter().flatten().copied())
                            .collect();
                        if merges {
                            let folded = writes.iter().filter(|write| {
                                write.bucket == bucket
                                    && write.key == key
                                    && holds_every_element(&held, &write.value)
                            });
                            value.extend(folded.flat_map(|write| items[&write.write_id].iter().copied()));
                        }
                        value.sort_unstable();
                        value.dedup();
                        FinalSibling {
                            value,
                            stamp: Stamp::parse(sibling.stamp.text()),
                            write_id: sibling.write_id.clone(),
                        }
                    })
                    .collect();
                records.push(Record::Final(FinalRecord {
                    point: 0,
                    trial: 0,
                    bucket: bucket.as_str().into(),
                    key: key.into(),
                    replica: core.id(),
                    siblings,
                }));
            }
        }
    }
    records
}

/// Whether the set `held` holds every element of the set `written`.
fn holds_every_element(held: &Value, written: &Value) -> bool {
    match (held.as_array(), written.as_array()) {
        (Some(held), Some(written)) => written.iter().all(|element| held.contains(element)),
        _ => false,
    }
}
