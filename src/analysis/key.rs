//! The oracle's verdict on one key: its drops, their killers and causes.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::{
    Cause, DroppedWrite, FinalMismatch, KILLERS_SHOWN, KeyHistory, Killer, WriteSummary, compare_writes,
};
use crate::clock::Nanos;
use crate::history::{Outcome, WriteRecord};
use crate::strategy::Kind;

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
    write_id: &'a str,
    record: Option<&'a WriteRecord>,
    /// Its item, when a write record tells it.
    item: Option<u64>,
    stamp: &'a Value,
    value: &'a [u64],
    /// Its true times, only if it was acknowledged (times of an unanswered
    /// write say nothing about when it was applied).
    acknowledged: bool,
}

impl Candidate<'_> {
    fn summary(&self) -> WriteSummary {
        WriteSummary {
            write_id: Some(self.write_id.to_string()),
            replica: self.record.map(|write| write.replica),
            item: self.item,
            stamp: self.stamp.clone(),
            invoke_ns: self.record.map(|write| write.invoke_ns),
            complete_ns: self.record.filter(|_| self.acknowledged).map(|write| write.complete_ns),
        }
    }

    fn completed_before(&self, moment: Nanos) -> bool {
        self.acknowledged && self.record.is_some_and(|write| write.complete_ns < moment)
    }
}

fn victim_summary(write: &WriteRecord) -> WriteSummary {
    WriteSummary {
        write_id: write.write_id.clone(),
        replica: Some(write.replica),
        item: Some(write.item),
        stamp: write.stamp.clone().unwrap_or(Value::Null),
        invoke_ns: Some(write.invoke_ns),
        complete_ns: Some(write.complete_ns),
    }
}

pub(super) fn judge(bucket: &str, kind: Kind, history: &KeyHistory<'_>) -> KeyVerdict {
    let mut verdict = KeyVerdict::default();
    let kept: HashSet<u64> = history
        .finals
        .iter()
        .flat_map(|last| last.siblings.iter())
        .flat_map(|sibling| sibling.value.iter().copied())
        .collect();

    // Divergence: replicas must agree on which writes survive.
    let survivors = |siblings: &[crate::history::FinalSibling]| -> BTreeSet<String> {
        siblings.iter().map(|sibling| sibling.write_id.clone()).collect()
    };
    if let Some((first, rest)) = history.finals.split_first() {
        let expected = survivors(&first.siblings);
        verdict.diverged = rest.iter().any(|last| survivors(&last.siblings) != expected);
    }
    verdict.max_siblings = history.finals.iter().map(|last| last.siblings.len()).max().unwrap_or(0);

    let candidates = candidates(history);
    let survivor_ids: HashSet<&str> = history
        .finals
        .iter()
        .flat_map(|last| last.siblings.iter().map(|sibling| sibling.write_id.as_str()))
        .collect();
    let lww = kind == Kind::LastWriteWins;
    for write in &history.writes {
        verdict.max_siblings = verdict.max_siblings.max(write.read_siblings);
        verdict.siblings += usize::from(write.read_siblings > 1);
        if write.outcome != Outcome::Ok {
            verdict.unacked_applied += usize::from(kept.contains(&write.item));
            continue;
        }
        verdict.acked += 1;
        if kept.contains(&write.item) {
            continue;
        }
        let killers: Vec<&Candidate<'_>> = if lww {
            let victim =
                (write.stamp.as_ref().unwrap_or(&Value::Null), write.write_id.as_deref().unwrap_or(""));
            let first_greater = candidates.partition_point(|candidate| {
                compare_writes((candidate.stamp, candidate.write_id), victim) != Ordering::Greater
            });
            candidates[first_greater..]
                .iter()
                .rev()
                .filter(|killer| !killer.value.contains(&write.item))
                .collect()
        } else {
            candidates
                .iter()
                .filter(|killer| {
                    survivor_ids.contains(killer.write_id) && !killer.value.contains(&write.item)
                })
                .collect()
        };
        verdict.drops.push(classify(bucket, kind, write, &killers));
    }
    if lww {
        verdict.final_mismatches = final_mismatches(history, &candidates);
    }
    verdict
}

/// Every write that could have won: acknowledged writes with a stamp, and
/// final siblings no acknowledged write accounts for; sorted by stamp.
fn candidates<'a>(history: &KeyHistory<'a>) -> Vec<Candidate<'a>> {
    let mut by_id: HashMap<&'a str, Candidate<'a>> = HashMap::new();
    for write in &history.writes {
        if let (Outcome::Ok, Some(stamp), Some(write_id)) = (write.outcome, &write.stamp, &write.write_id) {
            by_id.insert(
                write_id,
                Candidate {
                    write_id,
                    record: Some(write),
                    item: Some(write.item),
                    stamp,
                    value: &write.value,
                    acknowledged: true,
                },
            );
        }
    }
    // An unanswered write that was applied shows up only in the final
    // state; its value tells which write record it was.
    let unanswered: HashMap<&[u64], &WriteRecord> = history
        .writes
        .iter()
        .filter(|write| write.outcome != Outcome::Ok)
        .map(|write| (write.value.as_slice(), *write))
        .collect();
    for last in &history.finals {
        for sibling in &last.siblings {
            by_id.entry(&sibling.write_id).or_insert_with(|| {
                let record = unanswered.get(sibling.value.as_slice()).copied();
                Candidate {
                    write_id: &sibling.write_id,
                    record,
                    item: record.map(|write| write.item),
                    stamp: &sibling.stamp,
                    value: &sibling.value,
                    acknowledged: false,
                }
            });
        }
    }
    let mut candidates: Vec<Candidate<'a>> = by_id.into_values().collect();
    candidates.sort_by(|a, b| compare_writes((a.stamp, a.write_id), (b.stamp, b.write_id)));
    candidates
}

/// Puts a dropped write in its group; see the module docs of `analysis`.
fn classify(bucket: &str, kind: Kind, victim: &WriteRecord, killers: &[&Candidate<'_>]) -> DroppedWrite {
    let roots = root_killers(killers);
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
        bucket: bucket.to_string(),
        key: victim.key.clone(),
        victim: victim_summary(victim),
        cause,
        killers: shown,
        killer_count: killers.len(),
        root_killer_count: roots.len(),
        rule: rule(bucket, kind, victim, roots.first().copied(), cause, roots.len()),
    }
}

/// The killers that did not build on another killer. A killer whose value
/// holds another killer's item read that write and carried its win forward;
/// it did not beat the victim on its own. Reads only go back in time, so
/// some killer is always a root.
fn root_killers<'k, 'a>(killers: &[&'k Candidate<'a>]) -> Vec<&'k Candidate<'a>> {
    let items: HashSet<u64> = killers.iter().filter_map(|killer| killer.item).collect();
    killers
        .iter()
        .filter(|killer| !killer.value.iter().any(|item| Some(*item) != killer.item && items.contains(item)))
        .copied()
        .collect()
}

/// One sentence a student can read: which rule dropped the write.
fn rule(
    bucket: &str,
    kind: Kind,
    victim: &WriteRecord,
    winner: Option<&Candidate<'_>>,
    cause: Cause,
    count: usize,
) -> String {
    let name = victim.write_id.as_deref().unwrap_or("?");
    let Some(winner) = winner else {
        return format!(
            "Write {name} was acknowledged but is in no final state, and no write explains it: a bug."
        );
    };
    if kind != Kind::LastWriteWins {
        return format!(
            "Write {name} was acknowledged but {bucket} kept only writes that had not read it, such as {}: \
             a strategy that keeps {} should never do this, so this is a bug.",
            winner.write_id,
            if kind == Kind::Merge { "every write's items" } else { "siblings" },
        );
    }
    let victim_stamp = victim.stamp.as_ref().map(Value::to_string).unwrap_or_default();
    let others = if count > 1 { format!(" (and {} more)", count - 1) } else { String::new() };
    let beaten = format!(
        "Last write wins kept write {} with stamp {}{others} over write {name} with the smaller stamp {victim_stamp}",
        winner.write_id, winner.stamp
    );
    match cause {
        Cause::Causality => format!(
            "{beaten}, although write {name} had read it and so truly came later: its replica's clock was \
             behind, and the update was lost (DDIA Figure 8-3)."
        ),
        Cause::Realtime => format!(
            "{beaten}, although it had finished before write {name} began: a clock that lagged gave the later \
             write the smaller stamp."
        ),
        Cause::Concurrent => format!(
            "{beaten}; the two overlapped in time and neither had seen the other, so last write wins drops one \
             of them whatever the clocks say."
        ),
    }
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
            bucket: last.bucket.clone(),
            key: last.key.clone(),
            replica: last.replica,
            final_write_ids: last.siblings.iter().map(|sibling| sibling.write_id.clone()).collect(),
            max_write_id: max.write_id.to_string(),
        })
        .collect()
}
