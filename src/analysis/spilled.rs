//! Judging a trial whose writes are on disk (`history::spill`), a range of
//! keys at a time.
//!
//! Each key is judged from its own writes and final states alone, so a
//! trial can be judged in pieces: its keys in order, cut into ranges of at
//! most [`RANGE_WRITES`] writes. One pass over the spilled lines counts
//! what spans keys (each bucket's latencies and stamp regressions, the
//! [`CostTally`]) and sends each line to its range's temporary file; then
//! each range is read back with its keys' final states, judged, and its
//! drops handed on before the next range is read. The keys come out in the
//! order [`super::analyze`] judges them, so the rows, drops and mismatches
//! are the ones it would find (a test holds the two to that). What the
//! oracle holds is one range's records, the trial's final states (one per
//! key and replica), and the costs' few numbers per write.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write as _};

use super::{Analysis, Context, CostTally, DroppedWrite, Judge, RowKey, SummaryRow};
use crate::history::spill::{BucketKey, Counts, SpilledWrites};
use crate::history::{Lines, Record, Stamp};

/// Most writes judged at once: a range of keys holds at most this many,
/// but a key is never cut. A write record read back holds its value and
/// stamp, some 1.4 KB on the heap (measured with heaptrack on the skew
/// workload), so a range takes about 14 MB.
pub const RANGE_WRITES: usize = 10_000;

/// About the most ranges a trial is cut into, each a temporary file open at
/// once: a trial of more than half this many times [`RANGE_WRITES`] writes
/// (1.28 million) is judged in larger ranges. (No key is cut, so two
/// neighbouring ranges hold more than a range's writes: there are at most
/// this many ranges, and one.)
pub const MAX_RANGES: usize = 256;

/// Why a spilled trial could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum SpilledError {
    #[error("reading a trial's spilled writes: {0}")]
    Io(#[from] std::io::Error),
    #[error("a spilled write does not read back: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("a trial's spilled lines hold a record that is not a write")]
    NotAWrite,
    /// Handing a range's drops on failed.
    #[error("writing a trial's drops: {0}")]
    Drops(std::io::Error),
}

impl Judge {
    /// Judges one trial from its records but its writes (every other
    /// record, the final states among them) and its spilled `writes`,
    /// `range_writes` at a time (see the module docs); hands each range's
    /// drops, in order, to `drops`.
    pub fn trial_spilled(
        &mut self,
        records: &[Record],
        writes: &mut SpilledWrites,
        range_writes: usize,
        mut drops: impl FnMut(Vec<DroppedWrite>) -> std::io::Result<()>,
    ) -> Result<(), SpilledError> {
        let mut context = Context::gather(self.points.iter().chain(records));
        // A very long trial takes larger ranges, so as not to open too many files.
        let range_writes = range_writes.max(writes.lines.div_ceil(MAX_RANGES / 2));
        let starts = range_starts(&writes.counts, range_writes);
        let range_of = |bucket: &str, key: &str| {
            starts
                .partition_point(|(first_bucket, first_key)| {
                    (first_bucket.as_str(), first_key.as_str()) <= (bucket, key)
                })
                .saturating_sub(1)
        };

        // Costs, and each line to its range.
        let mut files = Vec::with_capacity(starts.len());
        for _ in 0..starts.len().max(1) {
            files.push(BufWriter::new(tempfile::tempfile()?));
        }
        let mut tally: CostTally<Stamp> = CostTally::default();
        writes.for_each_line(|line| -> Result<(), SpilledError> {
            let (Record::Write(write), _) = Record::parse(line)? else { return Err(SpilledError::NotAWrite) };
            tally.add(&write, write.stamp.clone(), &context.kinds);
            let file = &mut files[range_of(&write.bucket, &write.key)];
            file.write_all(line)?;
            Ok(file.write_all(b"\n")?)
        })?;

        // The final states of each range's keys (the context holds what
        // the trial's other records tell).
        let mut finals: Vec<Vec<Record>> = vec![Vec::new(); files.len()];
        for record in records {
            if let Record::Final(last) = record {
                finals[range_of(&last.bucket, &last.key)].push(record.clone());
            }
        }

        let mut rows: BTreeMap<RowKey, SummaryRow> = BTreeMap::new();
        let mut mismatches = Vec::new();
        for (file, finals) in files.into_iter().zip(finals) {
            let mut file: File = file.into_inner().map_err(|error| error.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            let mut range: Vec<Record> = Vec::new();
            let mut lines = Lines::default();
            for line in BufReader::new(file).lines() {
                lines.push(&line?, &mut range)?;
            }
            range.extend(finals);
            let groups = context.groups(&range);
            let verdicts = context.judge(&groups);
            let mut judged = Analysis::default();
            for (place, row) in context.rows(&groups, verdicts, &mut judged) {
                match rows.entry(place) {
                    Entry::Vacant(slot) => drop(slot.insert(row)),
                    Entry::Occupied(mut slot) => slot.get_mut().absorb(row),
                }
            }
            mismatches.extend(judged.lww_final_mismatches);
            drops(judged.drops).map_err(SpilledError::Drops)?;
        }
        let costs = tally.finish();
        self.analysis.rows.extend(rows.into_iter().map(|(place, row)| row.with_costs(costs.get(&place))));
        self.analysis.kinds.extend(context.kinds);
        self.analysis.lww_final_mismatches.extend(mismatches);
        self.analysis.failed_buckets.extend(context.failed_buckets);
        Ok(())
    }
}

/// The first key of each range: keys in order, a new range begun whenever
/// the next key would take the current one past `range_writes` writes.
fn range_starts(counts: &Counts, range_writes: usize) -> Vec<BucketKey> {
    let mut starts = Vec::new();
    let mut filled = 0;
    for (bucket, keys) in counts {
        for (key, &count) in keys {
            if starts.is_empty() || (filled > 0 && filled + count > range_writes) {
                starts.push((bucket.clone(), key.clone()));
                filled = 0;
            }
            filled += count;
        }
    }
    starts
}
