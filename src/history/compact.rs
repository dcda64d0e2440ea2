//! Compact write lines: a write's value as the earlier write it extends,
//! plus the items it adds.
//!
//! In this lab's workload a client reads a key and writes back what it read
//! plus one new item, so a key's value grows by one item per write, and a
//! history that spelled out every value would hold each item once per later
//! write of its key: a run's size would grow with the square of its length
//! (issue 28; Jepsen's Elle meets the same with its list-append workload).
//! Almost every write's value is an earlier write's value plus the write's
//! own item, so a line can say just that:
//!
//! ```text
//! {"type":"write",...,"item":42,"value":[3,17,42],...}     the whole value
//! {"type":"write",...,"item":42,"extends":17,...}           write 17's value, and 42
//! {"type":"write",...,"item":42,"extends":17,"adds":[9],...} and 9 too (two siblings read)
//! ```
//!
//! `extends` names, by item, an earlier write line of the same trial,
//! bucket and key; the value is the sorted union of that write's value, the
//! `adds` and the write's own item. Values shorter than
//! [`COMPACT_FROM_ITEMS`] are always written whole: they cost as little to
//! read as a reference does to follow. This is only a way of writing the value
//! down, decided by the history's writer from the values themselves, never
//! from anything the system under test said: read back, every record is
//! exactly the one written (the tests hold the two to that). A value that is
//! not sorted, or that extends no recent write of its key, is written whole,
//! as every history before this form was; every reader takes both.
//!
//! The writer remembers the last [`RECENT_VALUES`] values of each key it
//! saw written lately, and forgets a key not written for
//! [`FORGET_AFTER_WRITES`] writes (a retired key, say), so what it holds
//! stays small however long the run. The reader ([`Resolver`]) finds the
//! extended write among the trial's earlier records.

use std::collections::HashMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::{Outcome, Record, Stamp, WriteRecord};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::write_id::WriteId;

/// How many of a key's latest values the writer compares a new value with.
/// A client almost always read the latest; a few more cover writes that
/// raced it.
pub const RECENT_VALUES: usize = 4;

/// Writes (of any key, counted within the trial) after which the writer
/// forgets a key not written in the meantime: a retired key, or one the
/// workload has stopped using.
pub const FORGET_AFTER_WRITES: u64 = 1 << 16;

/// Values shorter than this, in items, are written whole. Finding the write
/// a value extends costs the reader up to about 100 ns (measured: 86 ms for
/// 880,000 compact writes of 60,000 keys, the extended write long out of
/// the cache), about what reading a score of items costs; a short value
/// is as cheap to read whole and only a few bytes longer.
pub const COMPACT_FROM_ITEMS: usize = 24;

/// A hash map with a fast, fixed hash (keys here are the lab's own).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// One key's latest writes, the newest first (item, and value if sorted),
/// and when it was last written.
#[derive(Default)]
struct Recent {
    touched: u64,
    values: Vec<(u64, Option<Vec<u64>>)>,
}

/// Decides, write by write, how each value is written down (see the module
/// docs). It forgets everything when a record of another trial comes.
#[derive(Default)]
pub struct Encoder {
    place: Option<(usize, usize)>,
    keys: FastMap<(CompactString, CompactString), Recent>,
    writes: u64,
    swept_at: u64,
}

/// A value as a line gives it.
#[derive(Debug, PartialEq)]
pub enum ValueForm<'a> {
    Whole(&'a [u64]),
    Extends { extends: u64, adds: Vec<u64> },
}

impl Encoder {
    /// Notes that `record` is written next; for a write, returns how its
    /// value is written down.
    pub fn next<'a>(&mut self, record: &'a Record) -> Option<(&'a WriteRecord, ValueForm<'a>)> {
        let place = place_of(record);
        if place != self.place {
            // A trial's lines depend on that trial's writes alone, however
            // they come to be written (see `spill`).
            self.keys.clear();
            self.writes = 0;
            self.swept_at = 0;
            self.place = place;
        }
        let Record::Write(write) = record else { return None };
        Some((write, self.encode(write)))
    }

    fn encode<'a>(&mut self, write: &'a WriteRecord) -> ValueForm<'a> {
        self.writes += 1;
        if self.writes - self.swept_at >= FORGET_AFTER_WRITES {
            let since = self.swept_at;
            self.keys.retain(|_, recent| recent.touched > since);
            self.swept_at = self.writes;
        }
        let value = write.value.as_slice();
        let sorted = value.windows(2).all(|pair| pair[0] < pair[1]);
        // Only a sorted value that holds its own item is written compact;
        // short ones are not worth it (see [`COMPACT_FROM_ITEMS`]).
        let compact = sorted && value.len() >= COMPACT_FROM_ITEMS && value.binary_search(&write.item).is_ok();
        let recent = self.keys.entry((write.bucket.clone(), write.key.clone())).or_default();
        recent.touched = self.writes;
        // The largest recent value this one holds whole.
        let base = recent
            .values
            .iter()
            .enumerate()
            .filter(|(_, (item, held))| compact && *item != write.item && is_subset(held.as_deref(), value))
            .max_by_key(|(_, (_, held))| held.as_ref().map_or(0, Vec::len))
            .map(|(at, _)| at);
        let form = match base.map(|at| &recent.values[at]) {
            Some((extends, Some(base_value))) => {
                let adds = value
                    .iter()
                    .copied()
                    .filter(|item| *item != write.item && base_value.binary_search(item).is_err())
                    .collect();
                ValueForm::Extends { extends: *extends, adds }
            }
            _ => ValueForm::Whole(value),
        };
        // Every write is one of its key's latest, as the reader counts them;
        // an unsorted value cannot be extended.
        if recent.values.len() == RECENT_VALUES {
            recent.values.pop();
        }
        recent.values.insert(0, (write.item, sorted.then(|| value.to_vec())));
        form
    }
}

/// Whether every item of sorted `part` is in sorted `whole` (an unsorted
/// part, `None`, is not known to be).
fn is_subset(part: Option<&[u64]>, whole: &[u64]) -> bool {
    let Some(part) = part else { return false };
    if part.len() > whole.len() {
        return false;
    }
    let mut rest = whole.iter();
    part.iter().all(|item| rest.by_ref().any(|candidate| candidate == item))
}

/// The (point, trial) of a record; `None` for a point's own record.
pub fn place_of(record: &Record) -> Option<(usize, usize)> {
    match record {
        Record::Point(_) => None,
        Record::Fault(fault) => Some((fault.point, fault.trial)),
        Record::Write(write) => Some((write.point, write.trial)),
        Record::Final(last) => Some((last.point, last.trial)),
        Record::Trial(trial) => Some((trial.point, trial.trial)),
        Record::Sample(sample) => Some((sample.point, sample.trial)),
        Record::Lease(lease) => Some((lease.point, lease.trial)),
    }
}

/// A write line as the lab writes it: the record's fields in their order,
/// the value in either form.
#[derive(Serialize)]
pub struct WriteLine<'a> {
    #[serde(rename = "type")]
    tag: &'static str,
    point: usize,
    trial: usize,
    bucket: &'a str,
    key: &'a str,
    replica: ReplicaId,
    item: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a [u64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extends: Option<u64>,
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    adds: &'a [u64],
    read_siblings: usize,
    stamp: &'a Option<Stamp>,
    write_id: &'a Option<WriteId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata_bytes: Option<usize>,
    invoke_ns: Nanos,
    complete_ns: Nanos,
    outcome: Outcome,
}

impl<'a> WriteLine<'a> {
    pub fn new(write: &'a WriteRecord, form: &'a ValueForm<'a>) -> Self {
        let (value, extends, adds): (_, _, &[u64]) = match form {
            ValueForm::Whole(value) => (Some(*value), None, &[]),
            ValueForm::Extends { extends, adds } => (None, Some(*extends), adds),
        };
        WriteLine {
            tag: "write",
            point: write.point,
            trial: write.trial,
            bucket: &write.bucket,
            key: &write.key,
            replica: write.replica,
            item: write.item,
            value,
            extends,
            adds,
            read_siblings: write.read_siblings,
            stamp: &write.stamp,
            write_id: &write.write_id,
            metadata_bytes: write.metadata_bytes,
            invoke_ns: write.invoke_ns,
            complete_ns: write.complete_ns,
            outcome: write.outcome,
        }
    }
}

/// A write line read by serde, in either form, in any layout.
#[derive(Deserialize)]
pub struct OwnedWriteLine {
    point: usize,
    trial: usize,
    bucket: CompactString,
    key: CompactString,
    replica: ReplicaId,
    item: u64,
    #[serde(default, deserialize_with = "super::exact::optional_items")]
    value: Option<Vec<u64>>,
    #[serde(default)]
    extends: Option<u64>,
    #[serde(default, deserialize_with = "super::exact::items")]
    adds: Vec<u64>,
    #[serde(default)]
    read_siblings: usize,
    #[serde(default)]
    stamp: Option<Stamp>,
    #[serde(default)]
    write_id: Option<WriteId>,
    #[serde(default)]
    metadata_bytes: Option<usize>,
    invoke_ns: Nanos,
    complete_ns: Nanos,
    outcome: Outcome,
}

impl OwnedWriteLine {
    /// The record, and the item of the write it extends, if it does: its
    /// value is then its adds and its own item, until [`Resolver`] joins
    /// the extended write's value to it.
    pub fn into_parts(self) -> Result<(WriteRecord, Option<u64>), &'static str> {
        let (value, extends) = match (self.value, self.extends) {
            (Some(value), None) if self.adds.is_empty() => (value, None),
            (None, Some(extends)) => (with_item(self.adds, self.item), Some(extends)),
            (None, None) => return Err("a write line needs a \"value\", or an \"extends\""),
            _ => return Err("a write line gives its value whole or as \"extends\" and \"adds\", not both"),
        };
        let record = WriteRecord {
            point: self.point,
            trial: self.trial,
            bucket: self.bucket,
            key: self.key,
            replica: self.replica,
            item: self.item,
            value,
            read_siblings: self.read_siblings,
            stamp: self.stamp,
            write_id: self.write_id,
            metadata_bytes: self.metadata_bytes,
            invoke_ns: self.invoke_ns,
            complete_ns: self.complete_ns,
            outcome: self.outcome,
        };
        Ok((record, extends))
    }
}

/// `adds` with `item` in its sorted place (a compact line's own items).
pub fn with_item(mut adds: Vec<u64>, item: u64) -> Vec<u64> {
    adds.sort_unstable();
    if let Err(at) = adds.binary_search(&item) {
        adds.insert(at, item);
    }
    adds
}

/// Joins each compact write's value to the value of the write it extends,
/// found among the records of its trial read before it.
#[derive(Default)]
pub struct Resolver {
    trial: Option<TrialWrites>,
}

/// Where a trial's write records are.
struct TrialWrites {
    place: (usize, usize),
    /// The trial's first record.
    start: usize,
    /// Records before this one are indexed.
    indexed_to: usize,
    /// Per bucket and key, its latest writes: where the writer looks for
    /// the write a value extends, so almost always where it is found.
    latest: FastMap<(CompactString, CompactString), Latest>,
}

/// A key's latest [`RECENT_VALUES`] writes: item and record index.
#[derive(Default)]
struct Latest {
    writes: [(u64, usize); RECENT_VALUES],
    count: usize,
}

impl Latest {
    fn push(&mut self, item: u64, index: usize) {
        self.writes[self.count % RECENT_VALUES] = (item, index);
        self.count += 1;
    }

    fn find(&self, item: u64) -> Option<usize> {
        let held = &self.writes[..self.count.min(RECENT_VALUES)];
        held.iter().find(|(known, _)| *known == item).map(|(_, index)| *index)
    }
}

impl Resolver {
    /// Completes the compact write at `records[at]`, which extends the
    /// write with item `extends`; the records before it are complete.
    pub fn resolve(&mut self, records: &mut [Record], at: usize, extends: u64) -> Result<(), String> {
        let Some(Record::Write(write)) = records.get(at) else {
            return Err("only a write line can extend another".into());
        };
        let place = (write.point, write.trial);
        if !matches!(&self.trial, Some(trial) if trial.place == place && trial.indexed_to <= at) {
            self.trial = None;
        }
        let trial = self.trial.get_or_insert_with(|| {
            // The trial's records run back to the first of another place.
            let start = records[..at].iter().rposition(|record| place_of(record) != Some(place));
            let start = start.map_or(0, |before| before + 1);
            TrialWrites { place, start, indexed_to: start, latest: FastMap::default() }
        });
        for (index, record) in records.iter().enumerate().take(at).skip(trial.indexed_to) {
            if let Record::Write(earlier) = record
                && (earlier.point, earlier.trial) == place
            {
                let key = (earlier.bucket.clone(), earlier.key.clone());
                trial.latest.entry(key).or_default().push(earlier.item, index);
            }
        }
        let (before, rest) = records.split_at_mut(at);
        let Record::Write(write) = &mut rest[0] else { unreachable!("checked above") };
        let latest = trial.latest.entry((write.bucket.clone(), write.key.clone())).or_default();
        // Else (a history written some other way) anywhere before it in its trial.
        let base = latest.find(extends).or_else(|| {
            let earlier = before[trial.start..].iter().rposition(|record| {
                matches!(record, Record::Write(base)
                    if base.item == extends && base.key == write.key && base.bucket == write.bucket)
            });
            earlier.map(|offset| trial.start + offset)
        });
        let Some(Record::Write(base)) = base.map(|index| &before[index]) else {
            return Err(format!(
                "write {} extends write {extends}, which is no earlier write of key {} in bucket {} in its trial",
                write.item, write.key, write.bucket
            ));
        };
        write.value = sorted_union(&base.value, &write.value);
        latest.push(write.item, at);
        trial.indexed_to = at + 1;
        Ok(())
    }
}

/// The sorted union of two sorted lists.
fn sorted_union(left: &[u64], right: &[u64]) -> Vec<u64> {
    let mut union = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.iter().peekable(), right.iter().peekable());
    loop {
        let next = match (left.peek(), right.peek()) {
            (Some(a), Some(b)) if a < b => left.next(),
            (Some(a), Some(b)) if a > b => right.next(),
            (Some(_), Some(_)) => {
                right.next();
                left.next()
            }
            (Some(_), None) => left.next(),
            (None, Some(_)) => right.next(),
            (None, None) => break,
        };
        union.extend(next.copied());
    }
    if union.len() < union.capacity() {
        union.shrink_to_fit();
    }
    union
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_and_unions() {
        assert!(is_subset(Some(&[]), &[1]));
        assert!(is_subset(Some(&[1, 3]), &[1, 2, 3]));
        assert!(!is_subset(Some(&[1, 4]), &[1, 2, 3]));
        assert!(!is_subset(Some(&[1, 2, 3, 4]), &[1, 2, 3]));
        assert!(!is_subset(None, &[1, 2, 3]));
        assert_eq!(sorted_union(&[1, 3, 5], &[2, 3, 6]), [1, 2, 3, 5, 6]);
        assert_eq!(sorted_union(&[], &[2]), [2]);
        assert_eq!(with_item(vec![9, 3], 5), [3, 5, 9]);
        assert_eq!(with_item(vec![5], 5), [5]);
    }
}
