//! The lease oracle: who believed they held the lock, who truly did, and
//! what it cost (DDIA Figures 8-4 and 8-5).
//!
//! From one trial's `lease` and `final` records alone, per guard (the way
//! a worker checks its lease, `crate::lease::Guard`):
//!
//! - **The service's view.** A lease is in force from the service's grant
//!   until its TTL after the last grant or renewal, judged in true time.
//!   (The service's clock is assumed to run at true rate during one lease:
//!   an offset does not matter, only a step or a strong drift of the
//!   *service's* clock would, and the lab bends workers' clocks.)
//! - **A worker's belief.** From hearing of its grant until it learns
//!   otherwise: a check that fails, or a renewal refused; a worker that
//!   never learns believes to the end of the trial. A pause does not end a
//!   belief: that is the point.
//! - **Overlaps**: two workers believing at once (Figure 8-4's two clients
//!   both "holding" the lease), counted per pair of leases, with how long.
//! - **Stale writes**: writes acknowledged though sent after their lease
//!   had ended at the service. (A write in flight as the lease ended is
//!   given the benefit of the doubt.)
//! - **Fenced writes**: writes the storage refused for carrying an old token.
//! - **Lost updates**: every acknowledged write stored the value it read
//!   plus one, starting from 0, so with one writer at a time the final value
//!   equals the acknowledged writes; each one short is an increment lost to
//!   a writer that read before another wrote (the harm). A **harmful**
//!   write is an acknowledged one whose value was no larger than one already
//!   acknowledged when it was sent: it wrote over an increment.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::Nanos;
use crate::history::{FinalRecord, LeaseEvent, LeaseRecord, Record};
use crate::lease::worker::WriteOutcome;
use crate::lease::{Guard, Token, WorkerId, key_of};

/// One lease, as the oracle reconstructs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseSpan {
    pub worker: WorkerId,
    pub token: Token,
    /// When the service granted it and when it ended there, true ns.
    pub granted_ns: Nanos,
    pub service_end_ns: Nanos,
    /// When its worker heard of it and stopped believing in it, true ns
    /// (`None`: it never heard).
    pub believed: Option<(Nanos, Nanos)>,
}

/// Two workers believing they held the lease at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overlap {
    pub earlier: Token,
    pub later: Token,
    /// How long both believed, ms.
    pub ms: f64,
}

/// How the oracle judges one write of the protected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteVerdict {
    /// Acknowledged, sent while its lease was in force, over no increment.
    Fine,
    /// Acknowledged though sent after its lease had ended at the service,
    /// yet over no increment: unsafe, and harmless this time.
    Stale,
    /// Acknowledged, and no larger than a value already acknowledged when
    /// it was sent: it wrote over an increment (the harm).
    Harmful,
    /// Refused by the storage for its old token.
    Fenced,
    /// Not acknowledged: refused for another reason, or no answer.
    Failed,
}

impl WriteVerdict {
    /// The verdict in a few words, for a legend.
    pub fn label(self) -> &'static str {
        match self {
            WriteVerdict::Fine => "write accepted",
            WriteVerdict::Stale => "accepted from an expired lease",
            WriteVerdict::Harmful => "accepted, over an increment: harm",
            WriteVerdict::Fenced => "refused by fencing",
            WriteVerdict::Failed => "not acknowledged",
        }
    }
}

/// One write of the protected value, judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgedWrite {
    pub worker: WorkerId,
    pub token: Token,
    /// When it was sent and answered, true ns.
    pub sent_ns: Nanos,
    pub answered_ns: Nanos,
    pub verdict: WriteVerdict,
}

/// What one guard's workers did in one trial.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GuardVerdict {
    pub leases: Vec<LeaseSpan>,
    pub overlaps: Vec<Overlap>,
    /// Every write of the protected value, in the order they were answered.
    pub writes: Vec<JudgedWrite>,
    /// Writes acknowledged, in all.
    pub acked: u64,
    /// Writes acknowledged though sent after their lease had ended.
    pub stale_acked: u64,
    /// Writes the storage refused for an old token.
    pub fenced: u64,
    /// Acknowledged writes that wrote over an increment.
    pub harmful: u64,
    /// The protected value at the end (the largest any replica holds).
    pub final_value: u64,
    /// Acknowledged increments the final value lacks.
    pub lost_updates: u64,
}

impl GuardVerdict {
    /// Nothing unsafe happened: no two holders at once, no write from an
    /// expired lease landed, no update lost.
    pub fn is_safe(&self) -> bool {
        self.overlaps.is_empty() && self.stale_acked == 0 && self.lost_updates == 0
    }
}

/// Judges one trial's records, per guard. `end_ns` is when the trial's
/// workload ended: a belief never given up lasts until then.
pub fn judge<'a>(
    leases: impl IntoIterator<Item = &'a LeaseRecord>,
    finals: impl IntoIterator<Item = &'a FinalRecord>,
    end_ns: Nanos,
) -> BTreeMap<Guard, GuardVerdict> {
    let mut by_guard: BTreeMap<Guard, Vec<&LeaseRecord>> = BTreeMap::new();
    for record in leases {
        by_guard.entry(record.guard).or_default().push(record);
    }
    let finals: Vec<&FinalRecord> = finals.into_iter().collect();
    by_guard
        .into_iter()
        .map(|(guard, records)| {
            let key = key_of(guard);
            let final_value = finals
                .iter()
                .filter(|last| last.key == key.as_str())
                .flat_map(|last| last.siblings.iter().flat_map(|sibling| sibling.value.iter().copied()))
                .max()
                .unwrap_or(0);
            (guard, judge_guard(&records, final_value, end_ns))
        })
        .collect()
}

/// One guard at one sweep point, over its trials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LeaseRow {
    pub point: usize,
    pub guard: Option<Guard>,
    pub trials: usize,
    /// Trials with an overlap, a stale write or a lost update.
    pub unsafe_trials: usize,
    pub overlaps: usize,
    /// Trials with at least one overlap.
    #[serde(default)]
    pub overlap_trials: usize,
    /// How long two workers believed at once, ms, in all.
    pub overlap_ms: f64,
    pub acked: u64,
    pub stale_acked: u64,
    pub fenced: u64,
    pub harmful: u64,
    pub lost_updates: u64,
}

/// One trial's records, as [`judge`] takes them.
#[derive(Default)]
struct TrialRecords<'a> {
    leases: Vec<&'a LeaseRecord>,
    finals: Vec<&'a FinalRecord>,
    end_ns: Nanos,
}

/// Judges every trial of a run's history, one row per sweep point and
/// guard (in that order).
pub fn judge_run(records: &[Record]) -> Vec<LeaseRow> {
    let mut trials: BTreeMap<(usize, usize), TrialRecords> = BTreeMap::new();
    for record in records {
        match record {
            Record::Lease(lease) => trials.entry((lease.point, lease.trial)).or_default().leases.push(lease),
            Record::Final(last) => trials.entry((last.point, last.trial)).or_default().finals.push(last),
            Record::Trial(trial) => {
                trials.entry((trial.point, trial.trial)).or_default().end_ns = trial.workload_end_ns
            }
            _ => {}
        }
    }
    let mut rows: BTreeMap<(usize, Guard), LeaseRow> = BTreeMap::new();
    for ((point, _), trial) in trials {
        if trial.leases.is_empty() {
            continue;
        }
        for (guard, verdict) in judge(trial.leases, trial.finals, trial.end_ns) {
            let row = rows.entry((point, guard)).or_insert_with(|| LeaseRow {
                point,
                guard: Some(guard),
                ..LeaseRow::default()
            });
            row.trials += 1;
            row.unsafe_trials += usize::from(!verdict.is_safe());
            row.overlaps += verdict.overlaps.len();
            row.overlap_trials += usize::from(!verdict.overlaps.is_empty());
            row.overlap_ms += verdict.overlaps.iter().map(|overlap| overlap.ms).sum::<f64>();
            row.acked += verdict.acked;
            row.stale_acked += verdict.stale_acked;
            row.fenced += verdict.fenced;
            row.harmful += verdict.harmful;
            row.lost_updates += verdict.lost_updates;
        }
    }
    rows.into_values().collect()
}

fn judge_guard(records: &[&LeaseRecord], final_value: u64, end_ns: Nanos) -> GuardVerdict {
    let leases = spans(records, end_ns);
    let service_end: BTreeMap<Token, Nanos> =
        leases.iter().map(|span| (span.token, span.service_end_ns)).collect();
    let mut verdict = GuardVerdict { final_value, ..GuardVerdict::default() };
    for (index, first) in leases.iter().enumerate() {
        for second in &leases[index + 1..] {
            if first.worker == second.worker {
                continue;
            }
            if let (Some((a_from, a_to)), Some((b_from, b_to))) = (first.believed, second.believed) {
                let both = a_to.min(b_to) - a_from.max(b_from);
                if both > 0 {
                    let (earlier, later) = (first.token.min(second.token), first.token.max(second.token));
                    verdict.overlaps.push(Overlap { earlier, later, ms: both as f64 / 1e6 });
                }
            }
        }
    }
    // Writes in the order they were answered, to know what was already
    // acknowledged when each was sent.
    let mut writes: Vec<(Nanos, Nanos, &LeaseRecord, u64, WriteOutcome)> = records
        .iter()
        .filter_map(|record| match record.event {
            LeaseEvent::Write { invoke_ns, wrote, outcome, .. } => {
                Some((record.true_ns, invoke_ns, *record, wrote, outcome))
            }
            _ => None,
        })
        .collect();
    writes.sort_by_key(|&(answered, ..)| answered);
    for &(answered_ns, sent_ns, record, wrote, outcome) in &writes {
        let judged = match outcome {
            WriteOutcome::Ok => {
                verdict.acked += 1;
                let stale = service_end.get(&record.token).is_some_and(|&end| sent_ns >= end);
                verdict.stale_acked += u64::from(stale);
                let before = writes
                    .iter()
                    .filter(|&&(answered, _, _, _, outcome)| {
                        answered < sent_ns && outcome == WriteOutcome::Ok
                    })
                    .map(|&(.., wrote, _)| wrote)
                    .max();
                if before.is_some_and(|largest| wrote <= largest) {
                    verdict.harmful += 1;
                    WriteVerdict::Harmful
                } else if stale {
                    WriteVerdict::Stale
                } else {
                    WriteVerdict::Fine
                }
            }
            WriteOutcome::Fenced => {
                verdict.fenced += 1;
                WriteVerdict::Fenced
            }
            WriteOutcome::Failed => WriteVerdict::Failed,
        };
        verdict.writes.push(JudgedWrite {
            worker: record.worker,
            token: record.token,
            sent_ns,
            answered_ns,
            verdict: judged,
        });
    }
    verdict.lost_updates = verdict.acked.saturating_sub(final_value);
    verdict.leases = leases;
    verdict
}

/// Every lease granted, with the service's view and its worker's belief.
fn spans(records: &[&LeaseRecord], end_ns: Nanos) -> Vec<LeaseSpan> {
    let mut spans: BTreeMap<Token, LeaseSpan> = BTreeMap::new();
    for record in records {
        let at = record.true_ns;
        let ttl_ns = |ttl_ms: f64| (ttl_ms * 1e6).round() as Nanos;
        match record.event {
            LeaseEvent::Granted { ttl_ms } => {
                spans.insert(
                    record.token,
                    LeaseSpan {
                        worker: record.worker,
                        token: record.token,
                        granted_ns: at,
                        service_end_ns: at + ttl_ns(ttl_ms),
                        believed: None,
                    },
                );
            }
            LeaseEvent::Renewed { ttl_ms } => {
                if let Some(span) = spans.get_mut(&record.token) {
                    span.service_end_ns = span.service_end_ns.max(at + ttl_ns(ttl_ms));
                }
            }
            LeaseEvent::Acquired => {
                if let Some(span) = spans.get_mut(&record.token) {
                    span.believed = Some((at, end_ns.max(at)));
                }
            }
            LeaseEvent::Checked { valid: false } | LeaseEvent::Lost => {
                if let Some(span) = spans.get_mut(&record.token)
                    && let Some((from, to)) = &mut span.believed
                    && *to == end_ns.max(*from)
                {
                    *to = at;
                }
            }
            LeaseEvent::Checked { valid: true } | LeaseEvent::Write { .. } => {}
        }
    }
    spans.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::FinalSibling;
    use crate::history::Stamp;
    use crate::write_id::{WriteId, WriteIds};

    const MS: Nanos = 1_000_000;

    fn record(at_ms: i64, worker: u32, token: u64, event: LeaseEvent) -> LeaseRecord {
        LeaseRecord {
            point: 0,
            trial: 0,
            true_ns: at_ms * MS,
            worker: WorkerId(worker),
            guard: Guard::Monotonic,
            token: Token(token),
            event,
        }
    }

    fn write(
        at_ms: i64,
        sent_ms: i64,
        worker: u32,
        token: u64,
        wrote: u64,
        outcome: WriteOutcome,
    ) -> LeaseRecord {
        let event = LeaseEvent::Write {
            invoke_ns: sent_ms * MS,
            replica: 1,
            read: wrote - 1,
            wrote,
            fenced: false,
            outcome,
        };
        record(at_ms, worker, token, event)
    }

    fn final_value(value: u64) -> FinalRecord {
        FinalRecord {
            point: 0,
            trial: 0,
            bucket: "lww-hlc".into(),
            key: key_of(Guard::Monotonic).as_str().into(),
            replica: 1,
            siblings: vec![FinalSibling {
                value: vec![value],
                stamp: Stamp::null(),
                write_id: WriteIds::One(WriteId::new(1, 1)),
            }],
        }
    }

    /// Figure 8-4: worker 1 (token 33) is paused past its lease; worker 2
    /// gets 34 and writes; worker 1 wakes and writes what it read before.
    fn figure_8_4(second_write: WriteOutcome) -> Vec<LeaseRecord> {
        vec![
            record(0, 1, 33, LeaseEvent::Granted { ttl_ms: 1000.0 }),
            record(0, 1, 33, LeaseEvent::Acquired),
            record(1100, 2, 34, LeaseEvent::Granted { ttl_ms: 1000.0 }),
            record(1100, 2, 34, LeaseEvent::Acquired),
            write(1200, 1150, 2, 34, 1, WriteOutcome::Ok),
            // Worker 1 read 0 before its pause, sends 1 at 3000.
            write(3001, 3000, 1, 33, 1, second_write),
            record(3002, 1, 33, LeaseEvent::Lost),
        ]
    }

    #[test]
    fn a_paused_holder_overlaps_the_next_writes_stale_and_loses_an_update() {
        let records = figure_8_4(WriteOutcome::Ok);
        let verdicts = judge(&records, &[final_value(1)], 5000 * MS);
        let verdict = &verdicts[&Guard::Monotonic];
        assert_eq!(verdict.overlaps, [Overlap { earlier: Token(33), later: Token(34), ms: 1902.0 }]);
        assert_eq!((verdict.acked, verdict.stale_acked, verdict.harmful), (2, 1, 1));
        let judged: Vec<WriteVerdict> = verdict.writes.iter().map(|write| write.verdict).collect();
        assert_eq!(judged, [WriteVerdict::Fine, WriteVerdict::Harmful]);
        assert_eq!((verdict.final_value, verdict.lost_updates), (1, 1));
        assert!(!verdict.is_safe());
    }

    #[test]
    fn fencing_refuses_the_stale_write_and_nothing_is_lost_though_beliefs_overlap() {
        let records = figure_8_4(WriteOutcome::Fenced);
        let verdict = &judge(&records, &[final_value(1)], 5000 * MS)[&Guard::Monotonic];
        assert_eq!(verdict.overlaps.len(), 1, "belief still overlaps");
        assert_eq!((verdict.acked, verdict.stale_acked, verdict.fenced, verdict.lost_updates), (1, 0, 1, 0));
        assert!(!verdict.is_safe(), "two holders at once is itself unsafe");
        assert_eq!(verdict.writes[1].verdict, WriteVerdict::Fenced);
    }

    #[test]
    fn one_holder_after_another_is_safe() {
        let records = vec![
            record(0, 1, 1, LeaseEvent::Granted { ttl_ms: 1000.0 }),
            record(0, 1, 1, LeaseEvent::Acquired),
            write(100, 50, 1, 1, 1, WriteOutcome::Ok),
            record(900, 1, 1, LeaseEvent::Checked { valid: false }),
            record(1000, 2, 2, LeaseEvent::Granted { ttl_ms: 1000.0 }),
            record(1000, 2, 2, LeaseEvent::Acquired),
            record(1500, 2, 2, LeaseEvent::Renewed { ttl_ms: 1000.0 }),
            write(1600, 1550, 2, 2, 2, WriteOutcome::Ok),
        ];
        let verdict = &judge(&records, &[final_value(2)], 3000 * MS)[&Guard::Monotonic];
        assert!(verdict.is_safe(), "{verdict:?}");
        assert_eq!(verdict.leases[1].service_end_ns, 2500 * MS, "renewed at 1.5 s for 1 s");
        assert_eq!(verdict.leases[1].believed, Some((1000 * MS, 3000 * MS)), "believed to the end");
    }
}
