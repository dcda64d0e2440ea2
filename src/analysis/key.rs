//! The oracle's verdict on one key: its drops, their killers and causes.

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::sync::{Arc, LazyLock};

use super::{
    Cause, DroppedWrite, FastMap, FastSet, FinalMismatch, KILLERS_SHOWN, KeyHistory, Killer, WriteSummary,
};
use crate::clock::Nanos;
use crate::history::{Outcome, Stamp, WriteRecord};
use crate::strategy::{Kind, StampKind};
use crate::write_id::{WriteId, WriteIds};

/// The stamp of an acknowledged write that came without one (none does, from
/// the lab's own runners): ordered as JSON null.
static NO_STAMP: LazyLock<Stamp> = LazyLock::new(Stamp::null);

/// What one key contributes to its strategy's row.
#[derive(Default)]
pub(super) struct KeyVerdict {
    pub acked: usize,
    pub siblings: usize,
    pub max_siblings: usize,
    pub diverged: bool,
    pub unacked_applied: usize,
    pub drops: Vec<DroppedWrite>,
    pub final_mismatches: Vec<FinalMismatch>,
}

/// A write that may have beaten another: an acknowledged write, or a
/// surviving write known only from the final state.
struct Candidate<'a> {
    write_id: WriteIds,
    /// The write id that orders two equal stamps (a merged value's first).
    dot: WriteId,
    record: Option<&'a WriteRecord>,
    /// Its item, when a write record tells it.
    item: Option<u64>,
    stamp: &'a Stamp,
    value: &'a [u64],
    /// Its true times, only if it was acknowledged (times of an unanswered
    /// write say nothing about when it was applied).
    acknowledged: bool,
    /// Its summary, made the first time a drop's explanation needs it and
    /// shared by every later one.
    summary: OnceCell<Arc<WriteSummary>>,
}

impl Candidate<'_> {
    /// Its last-write-wins order against a write with `stamp` and `dot`:
    /// [`super::compare_writes`], with the write ids parsed once.
    fn order(&self, stamp: &Stamp, dot: WriteId) -> Ordering {
        self.stamp.order(stamp).then_with(|| self.dot.cmp(&dot))
    }

    fn summary(&self) -> Arc<WriteSummary> {
        let made = || {
            Arc::new(WriteSummary {
                write_id: Some(self.write_id.clone()),
                replica: self.record.map(|write| write.replica),
                item: self.item,
                stamp: self.stamp.clone(),
                invoke_ns: self.record.map(|write| write.invoke_ns),
                complete_ns: self.record.filter(|_| self.acknowledged).map(|write| write.complete_ns),
            })
        };
        Arc::clone(self.summary.get_or_init(made))
    }

    /// Whether this candidate is `write`'s own record.
    fn is(&self, write: &WriteRecord) -> bool {
        self.record.is_some_and(|record| std::ptr::eq(record, write))
    }

    fn completed_before(&self, moment: Nanos) -> bool {
        self.acknowledged && self.record.is_some_and(|write| write.complete_ns < moment)
    }
}

fn victim_summary(write: &WriteRecord) -> Arc<WriteSummary> {
    Arc::new(WriteSummary {
        write_id: write.write_id.map(WriteIds::One),
        replica: Some(write.replica),
        item: Some(write.item),
        stamp: write.stamp.clone().unwrap_or_else(Stamp::null),
        invoke_ns: Some(write.invoke_ns),
        complete_ns: Some(write.complete_ns),
    })
}

pub(super) fn judge<'a>(
    bucket: &str,
    kind: Kind,
    stamp_kind: StampKind,
    history: &KeyHistory<'a>,
) -> KeyVerdict {
    let mut verdict = KeyVerdict::default();
    // Every item some replica kept, sorted for lookups (a key holds tens of
    // items, where a sorted vector beats a hash set).
    let mut kept: Vec<u64> = history
        .finals
        .iter()
        .flat_map(|last| last.siblings.iter())
        .flat_map(|sibling| sibling.value.iter().copied())
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let kept = |item: &u64| kept.binary_search(item).is_ok();

    // Divergence: replicas must agree on which writes survive.
    let survivors = |siblings: &'a [crate::history::FinalSibling]| -> Vec<&'a WriteIds> {
        let mut ids: Vec<&WriteIds> = siblings.iter().map(|sibling| &sibling.write_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    if let Some((first, rest)) = history.finals.split_first() {
        verdict.diverged = match first.siblings.as_slice() {
            // The usual end: one write everywhere.
            [only] => rest.iter().any(|last| {
                last.siblings.is_empty()
                    || last.siblings.iter().any(|sibling| sibling.write_id != only.write_id)
            }),
            siblings => {
                let expected = survivors(siblings);
                rest.iter().any(|last| survivors(&last.siblings) != expected)
            }
        };
    }
    verdict.max_siblings = history.finals.iter().map(|last| last.siblings.len()).max().unwrap_or(0);

    let candidates = candidates(history);
    let lww = kind == Kind::LastWriteWins;
    // Writes some replica kept (a sibling-keeping bucket's drops are
    // explained by them).
    let survivor_ids: FastSet<&WriteIds> = if lww {
        FastSet::default()
    } else {
        history.finals.iter().flat_map(|last| last.siblings.iter().map(|sibling| &sibling.write_id)).collect()
    };
    // Made at the first drop, shared by the key's every drop.
    let mut names: Option<(Arc<str>, Arc<str>)> = None;
    // Reused from drop to drop: most of a long run's drops are on keys
    // with many, and each needs these lists only while it is classified.
    let mut killers: Vec<&Candidate<'_>> = Vec::new();
    let mut scratch = Scratch::default();
    // A long run has half a million drops: each key's list is made at its
    // length rather than grown (and copied) as it fills.
    verdict.drops.reserve_exact(
        history.writes.iter().filter(|write| write.outcome == Outcome::Ok && !kept(&write.item)).count(),
    );
    for write in &history.writes {
        verdict.max_siblings = verdict.max_siblings.max(write.read_siblings);
        verdict.siblings += usize::from(write.read_siblings > 1);
        if write.outcome != Outcome::Ok {
            verdict.unacked_applied += usize::from(kept(&write.item));
            continue;
        }
        verdict.acked += 1;
        if kept(&write.item) {
            continue;
        }
        // The victim is a candidate itself (it was acknowledged): sorted
        // just below the first write with a greater stamp.
        killers.clear();
        let own: Option<&Candidate<'_>> = if lww {
            let victim_stamp = write.stamp.as_ref().unwrap_or(&NO_STAMP);
            let victim_dot = write.write_id.unwrap_or(WriteId::new(0, 0));
            let first_greater = candidates
                .partition_point(|candidate| candidate.order(victim_stamp, victim_dot) != Ordering::Greater);
            killers.extend(
                candidates[first_greater..].iter().rev().filter(|killer| !killer.value.contains(&write.item)),
            );
            first_greater.checked_sub(1).map(|below| &candidates[below])
        } else {
            killers.extend(candidates.iter().filter(|killer| {
                survivor_ids.contains(&killer.write_id) && !killer.value.contains(&write.item)
            }));
            candidates.iter().find(|candidate| candidate.is(write))
        };
        let victim = match own.filter(|candidate| candidate.is(write)) {
            Some(candidate) => candidate.summary(),
            None => victim_summary(write),
        };
        let (bucket_name, key) =
            names.get_or_insert_with(|| (Arc::from(bucket), Arc::from(write.key.as_str()))).clone();
        let place = Place { bucket: bucket_name, key, kind, stamp_kind };
        verdict.drops.push(classify(place, write, victim, &killers, &mut scratch));
    }
    if lww {
        verdict.final_mismatches = final_mismatches(history, &candidates);
    }
    verdict
}

/// Every write that could have won: acknowledged writes with a stamp, and
/// final siblings no acknowledged write accounts for; sorted by stamp.
fn candidates<'a>(history: &KeyHistory<'a>) -> Vec<Candidate<'a>> {
    let mut by_id: FastMap<WriteIds, Candidate<'a>> =
        FastMap::with_capacity_and_hasher(history.writes.len(), Default::default());
    for write in &history.writes {
        if let (Outcome::Ok, Some(stamp), Some(write_id)) = (write.outcome, &write.stamp, write.write_id) {
            by_id.insert(
                WriteIds::One(write_id),
                Candidate {
                    write_id: WriteIds::One(write_id),
                    dot: write_id,
                    record: Some(write),
                    item: Some(write.item),
                    stamp,
                    value: &write.value,
                    acknowledged: true,
                    summary: OnceCell::new(),
                },
            );
        }
    }
    // An unanswered write that was applied shows up only in the final
    // state; its value tells which write record it was.
    let unanswered: FastMap<&[u64], &WriteRecord> = history
        .writes
        .iter()
        .filter(|write| write.outcome != Outcome::Ok)
        .map(|write| (write.value.as_slice(), *write))
        .collect();
    for last in &history.finals {
        for sibling in &last.siblings {
            by_id.entry(sibling.write_id.clone()).or_insert_with(|| {
                let record = unanswered.get(sibling.value.as_slice()).copied();
                Candidate {
                    write_id: sibling.write_id.clone(),
                    dot: sibling.write_id.first(),
                    record,
                    item: record.map(|write| write.item),
                    stamp: &sibling.stamp,
                    value: &sibling.value,
                    acknowledged: false,
                    summary: OnceCell::new(),
                }
            });
        }
    }
    let mut candidates: Vec<Candidate<'a>> = by_id.into_values().collect();
    candidates.sort_by(|a, b| a.order(b.stamp, b.dot));
    candidates
}

/// Where a drop happened: its bucket, its key, and the bucket's kind.
struct Place {
    bucket: Arc<str>,
    key: Arc<str>,
    kind: Kind,
    stamp_kind: StampKind,
}

/// Puts a dropped write in its group; see the module docs of `analysis`.
/// Lists [`classify`] fills and empties for every drop.
#[derive(Default)]
struct Scratch<'k, 'a> {
    items: Vec<u64>,
    roots: Vec<&'k Candidate<'a>>,
}

fn classify<'k, 'a>(
    place: Place,
    victim: &WriteRecord,
    summary: Arc<WriteSummary>,
    killers: &[&'k Candidate<'a>],
    scratch: &mut Scratch<'k, 'a>,
) -> DroppedWrite {
    root_killers(killers, scratch);
    let roots = &scratch.roots;
    let read = |killer: &&Candidate<'_>| killer.item.is_some_and(|item| victim.value.contains(&item));
    let before = |killer: &&Candidate<'_>| read(killer) || killer.completed_before(victim.invoke_ns);
    let cause = match (roots.iter().all(before), roots.iter().any(read)) {
        (true, true) => Cause::Causality,
        (true, false) => Cause::Realtime,
        (false, _) => Cause::Concurrent,
    };
    let shown = roots
        .iter()
        .take(KILLERS_SHOWN)
        .map(|killer| Killer {
            write: killer.summary(),
            read_by_victim: read(killer),
            finished_before_victim: killer.completed_before(victim.invoke_ns),
        })
        .collect();
    DroppedWrite {
        point: victim.point,
        trial: victim.trial,
        bucket: place.bucket,
        key: place.key,
        victim: summary,
        cause,
        killers: shown,
        killer_count: killers.len(),
        root_killer_count: roots.len(),
        kind: place.kind,
        stamp_kind: place.stamp_kind,
    }
}

/// The killers that did not build on another killer. A killer whose value
/// holds another killer's item read that write and carried its win forward;
/// it did not beat the victim on its own. Reads only go back in time, so
/// some killer is always a root.
/// (Into `scratch.roots`.)
fn root_killers<'k, 'a>(killers: &[&'k Candidate<'a>], scratch: &mut Scratch<'k, 'a>) {
    let Scratch { items, roots } = scratch;
    items.clear();
    items.extend(killers.iter().filter_map(|killer| killer.item));
    items.sort_unstable();
    let is_killer = |item: &u64| items.binary_search(item).is_ok();
    roots.clear();
    roots.extend(
        killers
            .iter()
            .filter(|killer| !killer.value.iter().any(|item| Some(*item) != killer.item && is_killer(item)))
            .copied(),
    );
}

impl DroppedWrite {
    /// One sentence a student can read: which rule dropped the write, in
    /// words that fit what its bucket's stamps are made of.
    pub fn rule(&self) -> String {
        use std::fmt::Write as _;
        let name = self.victim.write_id.as_ref().map_or("?".to_string(), WriteIds::to_string);
        let bucket = &self.bucket;
        let mut sentence = String::with_capacity(240);
        let Some(winner) = self.killers.first() else {
            let _ = write!(
                sentence,
                "Write {name} was acknowledged but is in no final state, and no write explains it: a bug."
            );
            return sentence;
        };
        let winner_name = winner.write.write_id.as_ref().map_or("?".to_string(), WriteIds::to_string);
        if self.kind != Kind::LastWriteWins {
            let _ = write!(
                sentence,
                "Write {name} was acknowledged but {bucket} kept only writes that had not read it, such as \
                 {winner_name}: a strategy that keeps {} should never do this, so this is a bug.",
                if self.kind == Kind::Merge { "every write's items" } else { "siblings" },
            );
            return sentence;
        }
        let stamps = match self.stamp_kind {
            StampKind::Opaque => crate::strategy::stamp_kind_of(bucket).unwrap_or(StampKind::Opaque),
            declared => declared,
        };
        // Writing to a String cannot fail.
        let _ = write!(
            sentence,
            "Last write wins kept write {winner_name} ({}) over write {name} ({})",
            stamp_words(stamps, &winner.write.stamp),
            stamp_words(stamps, &self.victim.stamp)
        );
        if self.root_killer_count > 1 {
            let _ = write!(sentence, " and {} more like it", self.root_killer_count - 1);
        }
        let clock = matches!(stamps, StampKind::WallClock | StampKind::ClockInterval);
        let replica =
            self.victim.replica.map_or_else(|| "its replica".to_string(), |id| format!("replica {id}"));
        let _ = match (self.cause, stamps) {
            (Cause::Causality, _) if clock => write!(
                sentence,
                ", although write {name} had read it and so truly came later: {replica}'s clock was behind, \
                 so the update got the smaller stamp and was lost (DDIA Figure 8-3)."
            ),
            (Cause::Causality, _) => write!(
                sentence,
                ", although write {name} had read it and so truly came later: its stamp still ranked lower, \
                 and the update was lost (DDIA Figure 8-3)."
            ),
            (Cause::Realtime, StampKind::WallClock) => write!(
                sentence,
                ", although it had finished before write {name} began: a clock that lagged gave the later \
                 write the smaller stamp."
            ),
            (Cause::Realtime, StampKind::ClockInterval) => write!(
                sentence,
                ", although it had finished before write {name} began: the clocks were further apart than \
                 the error bound allowed, and the later write got the smaller stamp."
            ),
            (Cause::Realtime, StampKind::Hybrid) => write!(
                sentence,
                ", although it had finished before write {name} began: {replica} had not heard of it yet, \
                 and the other replica's hybrid clock, which follows the fastest clock it has heard from, \
                 was ahead."
            ),
            (Cause::Realtime, StampKind::Lamport) => write!(
                sentence,
                ", although it had finished before write {name} began: a Lamport counter knows nothing of \
                 time, and the replica that made it had counted further than {replica} had."
            ),
            (Cause::Realtime, _) => write!(
                sentence,
                ", although it had finished before write {name} began: its stamp ranked the later write lower."
            ),
            (Cause::Concurrent, _) if began_after(&winner.write, &self.victim) => write!(
                sentence,
                "; write {winner_name} began after write {name} had finished, but its replica had not heard \
                 of it: neither had seen the other, so last write wins drops one of them whatever the stamps say."
            ),
            (Cause::Concurrent, _) => sentence.write_str(
                "; the two overlapped in time and neither had seen the other, so last write wins drops one \
                 of them whatever the stamps say.",
            ),
        };
        sentence
    }
}

/// Whether `later` began after `earlier` had finished, by true time.
fn began_after(later: &WriteSummary, earlier: &WriteSummary) -> bool {
    matches!((later.invoke_ns, earlier.complete_ns), (Some(began), Some(finished)) if began > finished)
}

/// A stamp in words: "stamped 21:26:33.004 by replica 1's clock",
/// "counted 17 by replica 2"; any other stamp as its JSON.
pub fn stamp_words(kind: StampKind, stamp: &Stamp) -> String {
    match (kind, stamp.as_integers()) {
        (StampKind::WallClock, Some(&[ns, replica])) => {
            format!("stamped {} by replica {replica}'s clock", time_of_day(ns))
        }
        (StampKind::ClockInterval, Some(&[ns, replica])) => {
            format!("stamped {} by replica {replica}'s clock plus its error bound", time_of_day(ns))
        }
        (StampKind::Hybrid, Some(&[ns, counter, replica])) => {
            let counter = if counter > 0 { format!(" and {counter}") } else { String::new() };
            format!("stamped {}{counter} by replica {replica}'s hybrid clock", time_of_day(ns))
        }
        (StampKind::Lamport, Some(&[count, replica])) => format!("counted {count} by replica {replica}"),
        _ if stamp.is_null() => "with no stamp".into(),
        _ => format!("stamped {stamp}"),
    }
}

/// A time in ns since the epoch as the time of day in UTC, to the
/// millisecond: `21:26:33.004`.
pub fn time_of_day(ns: Nanos) -> String {
    let ms = ns.div_euclid(1_000_000);
    let day_ms = ms.rem_euclid(86_400_000);
    let (hours, minutes) = (day_ms / 3_600_000, day_ms / 60_000 % 60);
    let (seconds, millis) = (day_ms / 1000 % 60, day_ms % 1000);
    format!("{hours:02}:{minutes:02}:{seconds:02}.{millis:03}")
}

/// Each replica's final state must be exactly the highest-stamped write.
fn final_mismatches(history: &KeyHistory<'_>, candidates: &[Candidate<'_>]) -> Vec<FinalMismatch> {
    let Some(max) = candidates.last() else { return Vec::new() };
    history
        .finals
        .iter()
        .filter(|last| !(last.siblings.len() == 1 && last.siblings[0].write_id == max.write_id))
        .map(|last| FinalMismatch {
            point: last.point,
            trial: last.trial,
            bucket: last.bucket.as_str().into(),
            key: last.key.as_str().into(),
            replica: last.replica,
            final_write_ids: last.siblings.iter().map(|sibling| sibling.write_id.clone()).collect(),
            max_write_id: max.write_id.clone(),
        })
        .collect()
}
