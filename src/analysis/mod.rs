//! The oracle: which acknowledged writes were silently dropped, and why.
//!
//! A write is *silently dropped* when a replica acknowledged it and yet,
//! once the replicas have converged, its item is in no replica's final
//! state. The oracle counts this from the history alone (docs/design.md,
//! "The oracle"): items acknowledged minus items kept. It trusts nothing the
//! system under test says about itself; stamps are used only to explain a
//! drop, never to decide whether one happened.
//!
//! For a last-write-wins bucket the **killers** of a dropped write `W` are
//! the writes `K` on the same key with a greater stamp whose value lacks
//! `W`'s item: the ones that won over it. (Two stamps alike, which only a
//! coarse clock makes, are ordered by write id, as the strategies order
//! them: see [`compare_writes`].) Whether clocks are to blame depends
//! on what truly happened, judged by the runner's true times:
//!
//! Some killers only carry another killer's win forward: a write `K2` that
//! read a killer `K` (its value holds `K`'s item) lacks `W`'s item because it
//! built on `K`, not because it raced `W`. The **root killers** are those
//! that read no other killer, and the causes below are judged on them.
//! (The starting design judged on every killer; docs/design.md says why
//! this one does not. Taken literally, a clock-caused drop
//! becomes "concurrent" as soon as the fast replica writes the key again
//! without having seen `W`, which it cannot, since its own clock-ahead value
//! hides `W`. In the `skew` experiment that rule called 1368 of 1423
//! `lww-wall` drops at 1 s of skew concurrent, against 155 at no skew.)
//!
//! - `K` *truly happened before* `W` if `W` had read it (`K`'s item is in
//!   `W`'s value) or `K` completed before `W` was invoked.
//! - If every root killer truly happened before `W`, the drop is **clock-caused**:
//!   with perfect clocks `W` would have had the greater stamp and won.
//!   - A **causality violation** if `W` had read one of them: DDIA Figure 8-3,
//!     where an increment loses to the very value it incremented.
//!   - A **real-time violation** otherwise: `W` came later but had not seen `K`.
//! - Otherwise the drop is a **concurrent overwrite**: some root killer overlapped
//!   `W` in time, and last-write-wins would drop one of the two even with
//!   perfect clocks ("Last write wins (discarding concurrent writes)", DDIA
//!   chapter 5).
//!
//! A drop with no killer at all cannot be explained by the rule; it is
//! counted as real-time (every killer, of none, came before) and also in
//! `dropped_without_killer`, a sign of a bug worth a look.
//!
//! A sibling-keeping bucket (`vv`) has no stamp order, and should drop
//! nothing: every drop there is a bug. Its killers are taken to be the final
//! siblings that lack the dropped item, the writes that replaced it.
//!
//! The oracle also reports: keys on which replicas disagree at the end
//! (`diverged_keys`, must be 0), conflicts surfaced as siblings to readers,
//! writes the client never heard back about that were applied anyway, and,
//! for last-write-wins, keys whose final value is not their highest-stamped
//! write.

pub mod compare;
mod key;
pub mod lease;
pub mod spilled;
mod summary;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::history::{FinalRecord, Outcome, Record, Stamp, WriteRecord, compare_stamps};
use crate::strategy::{self, Kind, StampKind};
use crate::write_id::{WriteId, WriteIds};

pub use self::key::{stamp_words, time_of_day};
pub use self::summary::{PointSummary, student_t_975, summarize};

/// At most this many killers are kept per dropped write for display; all of
/// them are used to classify it.
pub const KILLERS_SHOWN: usize = 8;

/// Everything the oracle found in one history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// One row per sweep point, trial and strategy, in that order.
    pub rows: Vec<SummaryRow>,
    /// Each bucket's kind: as the history declares it, else (histories
    /// from before kinds were recorded) as the strategy of that name has it.
    pub kinds: BTreeMap<String, Kind>,
    /// Every dropped write, with what dropped it.
    pub drops: Vec<DroppedWrite>,
    /// Last-write-wins keys whose final value is not the highest-stamped write.
    pub lww_final_mismatches: Vec<FinalMismatch>,
    /// Buckets whose plugin failed in a trial: not judged there (see
    /// [`crate::history::TrialRecord::failed_buckets`]).
    pub failed_buckets: Vec<FailedBucket>,
}

/// A bucket the oracle did not judge in one trial, because its plugin failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedBucket {
    pub point: usize,
    pub trial: usize,
    pub bucket: String,
    /// The replica's error: the plugin, the request, the line it sent.
    pub error: String,
}

/// The oracle's counts for one strategy in one trial (docs/design.md, "Results").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub point: usize,
    pub trial: usize,
    /// The swept parameter's name, and its value at this point.
    pub parameter: String,
    pub value: f64,
    /// A two-parameter sweep's second parameter and its value at this point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub across: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub across_value: Option<f64>,
    pub strategy: String,
    /// Write records, acknowledged or not.
    pub writes: usize,
    pub acked: usize,
    pub dropped: usize,
    pub dropped_causality: usize,
    pub dropped_realtime: usize,
    pub dropped_concurrent: usize,
    /// Drops no killer explains (counted within `dropped_realtime` too).
    pub dropped_without_killer: usize,
    /// Writes whose read returned more than one sibling.
    pub siblings: usize,
    /// The most siblings a read or a final state held.
    pub max_siblings: usize,
    pub keys: usize,
    pub diverged_keys: usize,
    /// Writes without an acknowledgement whose item survived anyway.
    pub unacked_applied: usize,
    /// Last-write-wins keys not ending on their highest-stamped write.
    pub final_not_max: usize,
    /// Acknowledged writes whose stamp is smaller than the stamp of an
    /// earlier write (lower `seq`) of the same replica in the same bucket:
    /// the replica's clock went backwards, as after an NTP step back. A
    /// hybrid logical clock must never do this.
    #[serde(default)]
    pub stamp_regressions: usize,
    /// How long the replicas took to converge once the faults stopped, ms.
    #[serde(default)]
    pub converge_ms: f64,
    /// What the strategy's guarantee cost: the median and 99th-percentile
    /// latency of acknowledged writes, from invocation to acknowledgement
    /// (the runner's true times), ms.
    #[serde(default)]
    pub latency_p50_ms: f64,
    #[serde(default)]
    pub latency_p99_ms: f64,
    /// Writes not acknowledged: refused, failed, or of unknown outcome.
    #[serde(default)]
    pub failed: usize,
    /// Mean bytes of stamp plus context stored per acknowledged write.
    #[serde(default)]
    pub metadata_bytes: f64,
}

/// Why a write was dropped. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Causality,
    Realtime,
    Concurrent,
}

impl Cause {
    /// Every cause, in the order plots stack them.
    pub const ALL: [Cause; 3] = [Cause::Causality, Cause::Realtime, Cause::Concurrent];

    /// The cause's one name for people, the same on every page, plot and
    /// document.
    pub fn label(self) -> &'static str {
        match self {
            Cause::Causality => "causality violation",
            Cause::Realtime => "real-time violation",
            Cause::Concurrent => "concurrent overwrite",
        }
    }
}

/// A write as a drop's explanation shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteSummary {
    pub write_id: Option<WriteIds>,
    pub replica: Option<ReplicaId>,
    pub item: Option<u64>,
    pub stamp: Stamp,
    /// True times, when the history has them.
    pub invoke_ns: Option<Nanos>,
    pub complete_ns: Option<Nanos>,
}

/// One write that beat a dropped write.
///
/// A write that beats many shows up in each of their explanations; they all
/// share one summary of it (`Arc`: a long run has hundreds of thousands of
/// drops, and copies of the same few writes would be most of its memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Killer {
    #[serde(flatten)]
    pub write: Arc<WriteSummary>,
    /// The dropped write had read it.
    pub read_by_victim: bool,
    /// It completed before the dropped write was invoked.
    pub finished_before_victim: bool,
}

/// One silently dropped write and what dropped it.
///
/// Its JSON also carries [`DroppedWrite::rule`], the sentence that explains
/// it, written out when the drop is serialized rather than held by every one
/// of a long run's drops.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DroppedWrite {
    pub point: usize,
    pub trial: usize,
    /// Bucket and key, shared by every drop of the key.
    pub bucket: Arc<str>,
    pub key: Arc<str>,
    pub victim: Arc<WriteSummary>,
    pub cause: Cause,
    /// Up to [`KILLERS_SHOWN`] root killers, the highest stamp first.
    pub killers: Vec<Killer>,
    /// Every write that beat it: its killers.
    pub killer_count: usize,
    /// Those that beat it on their own, not by building on another killer.
    pub root_killer_count: usize,
    /// The kind of its bucket's strategy. (Saved drops from before this was
    /// recorded are all last-write-wins drops: no other kind dropped any.)
    #[serde(default = "last_write_wins")]
    pub kind: Kind,
    /// What its bucket's stamps are made of, for the words of its rule.
    /// (Saved drops from before this was recorded: the built-in's of that
    /// name, if any.)
    #[serde(default = "unknown_stamps")]
    pub stamp_kind: StampKind,
}

fn unknown_stamps() -> StampKind {
    StampKind::Opaque
}

fn last_write_wins() -> Kind {
    Kind::LastWriteWins
}

impl Serialize for DroppedWrite {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The drop's fields as they are, and its rule.
        #[derive(Serialize)]
        struct Shown<'a> {
            point: usize,
            trial: usize,
            bucket: &'a str,
            key: &'a str,
            victim: &'a WriteSummary,
            cause: Cause,
            killers: &'a [Killer],
            killer_count: usize,
            root_killer_count: usize,
            kind: Kind,
            stamp_kind: StampKind,
            rule: String,
        }
        Shown {
            point: self.point,
            trial: self.trial,
            bucket: &self.bucket,
            key: &self.key,
            victim: &self.victim,
            cause: self.cause,
            killers: &self.killers,
            killer_count: self.killer_count,
            root_killer_count: self.root_killer_count,
            kind: self.kind,
            stamp_kind: self.stamp_kind,
            rule: self.rule(),
        }
        .serialize(serializer)
    }
}

/// A last-write-wins key that did not end on its highest-stamped write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalMismatch {
    pub point: usize,
    pub trial: usize,
    pub bucket: String,
    pub key: String,
    pub replica: ReplicaId,
    pub final_write_ids: Vec<WriteIds>,
    pub max_write_id: WriteIds,
}

/// The kind of `bucket` in `kinds`; a bucket nobody declared is held to
/// the strictest promise, that nothing is dropped.
pub fn kind_in(kinds: &BTreeMap<String, Kind>, bucket: &str) -> Kind {
    kinds.get(bucket).copied().or_else(|| strategy::kind_of(bucket)).unwrap_or(Kind::Siblings)
}

/// What `bucket`'s stamps are made of: as declared in `stamps`, else (a
/// history from before they were recorded) as the built-in strategy of
/// that name has them, else unknown.
pub fn stamp_kind_in(stamps: &BTreeMap<String, StampKind>, bucket: &str) -> StampKind {
    stamps.get(bucket).copied().or_else(|| strategy::stamp_kind_of(bucket)).unwrap_or(StampKind::Opaque)
}

/// The value at fraction `q` (0 to 1) of `values`, by nearest rank: the
/// one a sort would put there, found without sorting them all (`values`
/// are left partly reordered).
fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    *values.select_nth_unstable_by(rank.clamp(1, values.len()) - 1, f64::total_cmp).1
}

/// The last-write-wins order of two writes: by stamp, then, for two stamps
/// alike, by write id `origin:seq` as numbers. Stamps end in the replica id,
/// so only one replica's own writes can tie, when its clock ticks coarsely
/// (the `resolution` experiment); the strategies then keep the write later
/// in that replica's log, the greater `seq`, and so does the oracle.
pub fn compare_writes(left: (&Value, WriteId), right: (&Value, WriteId)) -> Ordering {
    compare_stamps(left.0, right.0).then_with(|| left.1.cmp(&right.1))
}

/// One key of one bucket in one trial: what the oracle looks at together.
#[derive(Default)]
struct KeyHistory<'a> {
    writes: Vec<&'a WriteRecord>,
    finals: Vec<&'a FinalRecord>,
}

type GroupKey<'a> = (usize, usize, &'a str, &'a str);

/// A hash map with a fast, fixed hash: the oracle hashes every record's
/// key, and needs no protection from keys chosen to collide.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
type FastSet<K> = std::collections::HashSet<K, foldhash::fast::FixedState>;

/// Every key's history, in key order, gathered in one pass.
#[derive(Default)]
struct Groups<'a> {
    slots: FastMap<GroupKey<'a>, usize>,
    histories: Vec<(GroupKey<'a>, KeyHistory<'a>)>,
}

impl<'a> Groups<'a> {
    fn of(&mut self, key: GroupKey<'a>) -> &mut KeyHistory<'a> {
        let histories = &mut self.histories;
        let slot = *self.slots.entry(key).or_insert_with(|| {
            histories.push((key, KeyHistory::default()));
            histories.len() - 1
        });
        &mut self.histories[slot].1
    }

    /// Adds `record` to its key's history, if it is a write or a final state.
    fn add(&mut self, record: &'a Record) {
        match record {
            Record::Write(write) => {
                self.of((write.point, write.trial, &write.bucket, &write.key)).writes.push(write)
            }
            Record::Final(last) => {
                self.of((last.point, last.trial, &last.bucket, &last.key)).finals.push(last)
            }
            _ => {}
        }
    }

    /// Every key's history in `records`, gathered in parallel: each thread
    /// groups a contiguous run of the records, and the runs' groups are
    /// then joined in the records' order, so each key's writes stay in the
    /// order the history holds them.
    fn gather(records: &'a [Record]) -> Self {
        use rayon::prelude::*;
        let run = records.len().div_ceil(rayon::current_num_threads()).max(1);
        records
            .par_chunks(run)
            .map(|chunk| {
                let mut groups = Groups::default();
                chunk.iter().for_each(|record| groups.add(record));
                groups
            })
            .reduce(Groups::default, Groups::join)
    }

    /// These groups, then `later`'s.
    fn join(mut self, later: Self) -> Self {
        if self.histories.is_empty() {
            return later;
        }
        for (key, history) in later.histories {
            match self.slots.entry(key) {
                Entry::Occupied(slot) => {
                    let joined = &mut self.histories[*slot.get()].1;
                    joined.writes.extend(history.writes);
                    joined.finals.extend(history.finals);
                }
                Entry::Vacant(slot) => {
                    slot.insert(self.histories.len());
                    self.histories.push((key, history));
                }
            }
        }
        self
    }

    fn sorted(mut self) -> Vec<(GroupKey<'a>, KeyHistory<'a>)> {
        use rayon::prelude::*;
        self.histories.par_sort_unstable_by(|left, right| left.0.cmp(&right.0));
        self.histories
    }
}

/// Runs the oracle over a whole history.
pub fn analyze(records: &[Record]) -> Analysis {
    analyze_after(&[], records)
}

/// The oracle a trial at a time, as a run makes its trials: what it holds
/// is the verdicts so far and the sweep's points, never the histories of
/// trials already judged. Keys are judged on their own, each within its
/// trial, so judging the trials one by one, in the order of the history,
/// comes to what [`analyze`] makes of the whole (the tests hold the two to
/// that).
#[derive(Default)]
pub struct Judge {
    points: Vec<Record>,
    analysis: Analysis,
}

impl Judge {
    /// Takes a point's record (its parameters, and its buckets' kinds),
    /// for the trials that follow it.
    pub fn point(&mut self, record: &Record) {
        self.points.push(record.clone());
    }

    /// Judges one trial's records (all of them: writes, final states, its
    /// trial record), and hands back its drops: the caller writes them out
    /// or keeps them, so a long run need not hold them all.
    pub fn trial(&mut self, records: &[Record]) -> Vec<DroppedWrite> {
        let Analysis { rows, kinds, drops, lww_final_mismatches, failed_buckets } =
            analyze_after(&self.points, records);
        self.analysis.rows.extend(rows);
        self.analysis.kinds.extend(kinds);
        self.analysis.lww_final_mismatches.extend(lww_final_mismatches);
        self.analysis.failed_buckets.extend(failed_buckets);
        drops
    }

    /// The verdicts on every trial judged, with `drops`: those of the drops
    /// handed back that the caller kept.
    pub fn finish(self, drops: Vec<DroppedWrite>) -> Analysis {
        Analysis { drops, ..self.analysis }
    }
}

/// Runs the oracle over `records`, which follow the point records `points`.
fn analyze_after(points_before: &[Record], records: &[Record]) -> Analysis {
    let mut context = Context::gather(points_before.iter().chain(records));
    let groups = context.groups(records);
    // Keys are judged independently of each other, so in parallel, beside
    // the costs; the verdicts are then added up in key order.
    let (costs, verdicts) = rayon::join(
        || {
            let mut tally = CostTally::default();
            for record in records {
                if let Record::Write(write) = record {
                    tally.add(write, write.stamp.as_ref(), &context.kinds);
                }
            }
            tally.finish()
        },
        || context.judge(&groups),
    );
    let mut analysis = Analysis {
        kinds: context.kinds.clone(),
        failed_buckets: context.failed_buckets.clone(),
        ..Default::default()
    };
    analysis.drops.reserve_exact(verdicts.iter().map(|verdict| verdict.drops.len()).sum());
    let rows = context.rows(&groups, verdicts, &mut analysis);
    analysis.rows = rows.into_iter().map(|(group, row)| row.with_costs(costs.get(&group))).collect();
    analysis
}

/// What a trial's records other than its writes and final states tell the
/// oracle: each point's parameters and buckets' kinds, how fast each trial
/// converged, and which buckets failed.
#[derive(Default)]
struct Context {
    points: HashMap<usize, (String, f64)>,
    acrosses: HashMap<usize, (String, f64)>,
    converge_ms: HashMap<(usize, usize), f64>,
    kinds: BTreeMap<String, Kind>,
    stamps: BTreeMap<String, StampKind>,
    failed_buckets: Vec<FailedBucket>,
}

/// A summary row's place: point, trial and bucket.
type RowKey = (usize, usize, String);

impl Context {
    fn gather<'r>(records: impl Iterator<Item = &'r Record>) -> Self {
        let mut context = Context::default();
        for record in records {
            match record {
                Record::Point(point) => {
                    context.points.insert(point.point, swept_parameter(&point.params));
                    if let Some(across) = across_parameter(&point.params) {
                        context.acrosses.insert(point.point, across);
                    }
                    context.kinds.extend(point.kinds.iter().map(|(bucket, kind)| (bucket.clone(), *kind)));
                    context
                        .stamps
                        .extend(point.stamps.iter().map(|(bucket, stamp)| (bucket.clone(), *stamp)));
                }
                Record::Trial(trial) => {
                    context.converge_ms.insert((trial.point, trial.trial), trial.converge_ms);
                    context.failed_buckets.extend(trial.failed_buckets.iter().map(|(bucket, error)| {
                        FailedBucket {
                            point: trial.point,
                            trial: trial.trial,
                            bucket: bucket.clone(),
                            error: error.clone(),
                        }
                    }));
                }
                Record::Write(_)
                | Record::Final(_)
                | Record::Fault(_)
                | Record::Sample(_)
                | Record::Lease(_) => {}
            }
        }
        context
    }

    /// The keys of `records` to judge, in key order: every key written or
    /// with a final state, but in a bucket whose plugin failed.
    fn groups<'a>(&mut self, records: &'a [Record]) -> Vec<(GroupKey<'a>, KeyHistory<'a>)> {
        let mut groups = Groups::gather(records).sorted();
        // A bucket whose plugin failed has no final state to judge it by.
        groups.retain(|((point, trial, bucket, _), _)| {
            !self.failed_buckets.iter().any(|failed| {
                (failed.point, failed.trial, failed.bucket.as_str()) == (*point, *trial, *bucket)
            })
        });
        // A bucket written to that no point declared is held to its name's kind.
        for ((_, _, bucket, _), history) in &groups {
            if !history.writes.is_empty() && !self.kinds.contains_key(*bucket) {
                self.kinds.insert(bucket.to_string(), kind_in(&self.kinds, bucket));
            }
        }
        groups
    }

    /// Each key's verdict, in the order of `groups`.
    fn judge(&self, groups: &[(GroupKey<'_>, KeyHistory<'_>)]) -> Vec<key::KeyVerdict> {
        use rayon::prelude::*;
        groups
            .par_iter()
            .map(|((_, _, bucket, _), history)| {
                key::judge(bucket, kind_in(&self.kinds, bucket), stamp_kind_in(&self.stamps, bucket), history)
            })
            .collect()
    }

    /// The verdicts added up into rows (without their costs), in key
    /// order; their drops and final mismatches go to `analysis`.
    fn rows(
        &self,
        groups: &[(GroupKey<'_>, KeyHistory<'_>)],
        verdicts: Vec<key::KeyVerdict>,
        analysis: &mut Analysis,
    ) -> BTreeMap<RowKey, SummaryRow> {
        let mut rows: BTreeMap<RowKey, SummaryRow> = BTreeMap::new();
        for (((point, trial, bucket, _key), history), verdict) in groups.iter().zip(verdicts) {
            let place = (*point, *trial, bucket.to_string());
            let row = match rows.get_mut(&place) {
                Some(row) => row,
                None => rows.entry(place).or_insert_with(|| {
                    let (parameter, value) = self.points.get(point).cloned().unwrap_or_default();
                    let (across, across_value) = self.acrosses.get(point).cloned().unzip();
                    SummaryRow {
                        point: *point,
                        trial: *trial,
                        parameter,
                        value,
                        across,
                        across_value,
                        strategy: bucket.to_string(),
                        converge_ms: self.converge_ms.get(&(*point, *trial)).copied().unwrap_or(0.0),
                        ..Default::default()
                    }
                }),
            };
            row.keys += 1;
            row.writes += history.writes.len();
            row.acked += verdict.acked;
            row.siblings += verdict.siblings;
            row.max_siblings = row.max_siblings.max(verdict.max_siblings);
            row.diverged_keys += usize::from(verdict.diverged);
            row.unacked_applied += verdict.unacked_applied;
            for drop in verdict.drops {
                row.dropped += 1;
                match drop.cause {
                    Cause::Causality => row.dropped_causality += 1,
                    Cause::Realtime => row.dropped_realtime += 1,
                    Cause::Concurrent => row.dropped_concurrent += 1,
                }
                row.dropped_without_killer += usize::from(drop.killer_count == 0);
                analysis.drops.push(drop);
            }
            if !verdict.final_mismatches.is_empty() {
                row.final_not_max += 1;
            }
            analysis.lww_final_mismatches.extend(verdict.final_mismatches);
        }
        rows
    }
}

impl SummaryRow {
    /// This row with the cost fields of `costs` (a [`CostTally`] row).
    fn with_costs(self, costs: Option<&SummaryRow>) -> SummaryRow {
        let Some(costs) = costs else { return self };
        SummaryRow {
            failed: costs.failed,
            latency_p50_ms: costs.latency_p50_ms,
            latency_p99_ms: costs.latency_p99_ms,
            metadata_bytes: costs.metadata_bytes,
            stamp_regressions: costs.stamp_regressions,
            ..self
        }
    }

    /// Adds the counts of `other`, the same bucket's row for other keys of
    /// the same trial.
    fn absorb(&mut self, other: SummaryRow) {
        self.keys += other.keys;
        self.writes += other.writes;
        self.acked += other.acked;
        self.siblings += other.siblings;
        self.max_siblings = self.max_siblings.max(other.max_siblings);
        self.diverged_keys += other.diverged_keys;
        self.unacked_applied += other.unacked_applied;
        self.dropped += other.dropped;
        self.dropped_causality += other.dropped_causality;
        self.dropped_realtime += other.dropped_realtime;
        self.dropped_concurrent += other.dropped_concurrent;
        self.dropped_without_killer += other.dropped_without_killer;
        self.final_not_max += other.final_not_max;
    }
}

/// What one bucket's writes in one trial add up to, gathered in one pass;
/// `S` holds a stamp (borrowed from records in memory, or owned when the
/// records pass by, see `spilled`).
struct BucketTally<S> {
    /// Whether its stamps are ordered (last-write-wins): only then can one
    /// go backwards.
    ordered: bool,
    failed: usize,
    latencies_ms: Vec<f64>,
    metadata_bytes: usize,
    with_metadata: usize,
    /// Per origin replica, its acknowledged writes' `seq` and stamp.
    by_origin: Vec<(ReplicaId, Vec<(u64, S)>)>,
}

/// Per (point, trial, bucket), what the strategy cost and how often its
/// stamps went backwards, written by write: rows with only the latency,
/// `failed`, `metadata_bytes` and `stamp_regressions` fields filled in.
///
/// A stamp regression is an acknowledged write stamped below one its own
/// replica had given before (by `seq`). Only last-write-wins stamps are
/// ordered; other buckets count none.
struct CostTally<S> {
    /// Per (point, trial), each bucket's tally: a trial has a handful of
    /// buckets, found by name without making a key for each write.
    tallies: FastMap<(usize, usize), Vec<NamedTally<S>>>,
}

/// A bucket's name and tally.
type NamedTally<S> = (String, BucketTally<S>);

impl<S> Default for CostTally<S> {
    fn default() -> Self {
        Self { tallies: FastMap::default() }
    }
}

impl<S: std::borrow::Borrow<Stamp>> CostTally<S> {
    /// Counts `write`, whose stamp is `stamp`.
    fn add(&mut self, write: &WriteRecord, stamp: Option<S>, kinds: &BTreeMap<String, Kind>) {
        let buckets = self.tallies.entry((write.point, write.trial)).or_default();
        let tally = match buckets.iter().position(|(bucket, _)| *bucket == *write.bucket) {
            Some(index) => &mut buckets[index].1,
            None => {
                let tally = BucketTally {
                    ordered: kind_in(kinds, &write.bucket) == Kind::LastWriteWins,
                    failed: 0,
                    latencies_ms: Vec::new(),
                    metadata_bytes: 0,
                    with_metadata: 0,
                    by_origin: Vec::new(),
                };
                buckets.push((write.bucket.to_string(), tally));
                &mut buckets.last_mut().expect("just pushed").1
            }
        };
        if write.outcome != Outcome::Ok {
            tally.failed += 1;
            return;
        }
        tally.latencies_ms.push((write.complete_ns - write.invoke_ns) as f64 / 1e6);
        if let Some(bytes) = write.metadata_bytes {
            tally.metadata_bytes += bytes;
            tally.with_metadata += 1;
        }
        let (true, Some(stamp), Some(write_id)) = (tally.ordered, stamp, &write.write_id) else {
            return;
        };
        let WriteId { origin, seq } = *write_id;
        // A bucket's writes come from a handful of replicas.
        let writes = match tally.by_origin.iter().position(|(known, _)| *known == origin) {
            Some(index) => &mut tally.by_origin[index].1,
            None => {
                tally.by_origin.push((origin, Vec::new()));
                &mut tally.by_origin.last_mut().expect("just pushed").1
            }
        };
        writes.push((seq, stamp));
    }

    /// The cost rows.
    fn finish(self) -> HashMap<RowKey, SummaryRow> {
        self.tallies
            .into_iter()
            .flat_map(|((point, trial), buckets)| {
                buckets.into_iter().map(move |(bucket, tally)| ((point, trial, bucket), tally))
            })
            .map(|(group, mut tally)| {
                let mut regressions = 0;
                for (_, writes) in &mut tally.by_origin {
                    writes.sort_by_key(|(seq, _)| *seq);
                    let mut highest: Option<&Stamp> = None;
                    for (_, stamp) in writes.iter() {
                        let stamp = stamp.borrow();
                        match highest {
                            Some(high) if stamp.order(high) == Ordering::Less => regressions += 1,
                            _ => highest = Some(stamp),
                        }
                    }
                }
                let row = SummaryRow {
                    failed: tally.failed,
                    latency_p50_ms: quantile(&mut tally.latencies_ms, 0.50),
                    latency_p99_ms: quantile(&mut tally.latencies_ms, 0.99),
                    metadata_bytes: if tally.with_metadata == 0 {
                        0.0
                    } else {
                        tally.metadata_bytes as f64 / tally.with_metadata as f64
                    },
                    stamp_regressions: regressions,
                    ..Default::default()
                };
                (group, row)
            })
            .collect()
    }
}

/// The second parameter of a two-parameter sweep at a point: named by
/// `params.across`.
fn across_parameter(params: &serde_json::Map<String, Value>) -> Option<(String, f64)> {
    let name = params.get("across").and_then(Value::as_str)?;
    Some((name.to_string(), params.get(name).and_then(Value::as_f64)?))
}

/// The swept parameter of a point: named by `params.parameter`, else the
/// first parameter.
fn swept_parameter(params: &serde_json::Map<String, Value>) -> (String, f64) {
    let name = match params.get("parameter").and_then(Value::as_str) {
        Some(name) => name.to_string(),
        None => params.keys().next().cloned().unwrap_or_default(),
    };
    let value = params.get(&name).and_then(Value::as_f64).unwrap_or(0.0);
    (name, value)
}
