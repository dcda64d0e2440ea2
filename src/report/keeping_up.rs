//! Whether the workload kept to its schedule.
//!
//! A spec asks each client for `rate_per_client` operations a second. If
//! the replicas (or, on real processes, the machine under them) cannot
//! answer that fast, a client does not catch up with a burst: it goes on
//! from where it is, and does fewer operations (`experiment::workload`).
//! One slow strategy (`truetime`'s commit wait) falls behind on its own
//! bucket by design; when even the *fastest* bucket attempted far fewer
//! operations than were scheduled, or the workload ran well past its
//! length, the run did not measure what its spec asked for, and the report
//! and the terminal say so, with the numbers, instead of a run that
//! silently stretched. Only the sweep points without faults are judged: a
//! paused replica or a partition holds clients up by design.

use std::collections::BTreeMap;

use crate::analysis::SummaryRow;
use crate::experiment::limits::readable;
use crate::experiment::spec::Spec;
use crate::history::Record;

/// Below this share of its schedule, the fastest bucket fell behind.
pub const KEPT_SHARE: f64 = 0.9;
/// A workload that ran longer than its length by more than this share (and
/// at least [`MIN_OVERRUN_MS`]) ran late.
pub const OVERRUN_SHARE: f64 = 0.1;
pub const MIN_OVERRUN_MS: f64 = 1_000.0;

/// How far a run fell short of its schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct FellBehind {
    /// Operations the schedule asked of each bucket, over every trial.
    pub scheduled: f64,
    /// Operations attempted by the bucket that attempted most.
    pub attempted: usize,
    /// The longest a trial's workload ran past its length, ms, if that
    /// was late enough to say (else 0).
    pub overrun_ms: f64,
    /// How long each trial's workload was meant to last, ms.
    pub duration_ms: f64,
}

impl FellBehind {
    /// What to tell the user.
    pub fn sentence(&self) -> String {
        let share = 100.0 * self.attempted as f64 / self.scheduled.max(1.0);
        let mut text = format!(
            "The workload did not keep to its schedule: it asked for {} operations in each strategy's \
             bucket, and the fastest bucket attempted {} ({share:.1}%)",
            readable(self.scheduled),
            readable(self.attempted as f64),
        );
        if self.overrun_ms > 0.0 {
            text.push_str(&format!(
                "; a trial's workload, meant to last {} ms, ran {} ms longer",
                readable(self.duration_ms),
                readable(self.overrun_ms)
            ));
        }
        text.push_str(
            ". The replicas (on real processes, the machine under them) could not go that fast, so these \
             numbers are of a lighter load than the spec describes: lower the clients or the rate.",
        );
        text
    }
}

/// The sweep points at which no fault is scheduled: a paused replica or a
/// partition holds clients up by design, so only these points say whether
/// the replicas kept up with the load.
fn fault_free_points(spec: &Spec) -> BTreeMap<usize, bool> {
    let mut free = BTreeMap::new();
    for slice in spec.slices() {
        for (index, &value) in slice.spec.sweep.values.iter().enumerate() {
            let faulty = slice.spec.chaos.is_some()
                || slice
                    .spec
                    .faults
                    .iter()
                    .any(|fault| slice.spec.sweep.parameter.apply(fault, value).is_some());
            free.insert(slice.offset + index, !faulty);
        }
    }
    free
}

/// Whether `spec`'s run in `records` fell behind its schedule, judged on
/// the trials no fault held up; `None` if it kept to it, if its clients go
/// flat out (which has no schedule), or if every point has faults.
/// The operations attempted are counted from the oracle's `rows` (its
/// `writes`), the rest from the history's point and trial records.
pub fn fell_behind(spec: &Spec, records: &[Record], rows: &[SummaryRow]) -> Option<FellBehind> {
    // A lease run's workers keep their own pace; it has no schedule of operations.
    if spec.lease.is_some() {
        return None;
    }
    let free = fault_free_points(spec);
    let counted = |point: usize| free.get(&point).copied().unwrap_or(false);
    let mut attempted: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows.iter().filter(|row| counted(row.point)) {
        *attempted.entry(row.strategy.as_str()).or_default() += row.writes;
    }
    let mut scheduled = 0.0;
    let mut overrun_ms = 0.0_f64;
    let duration_ms = spec.duration_ms as f64;
    for record in records {
        match record {
            Record::Point(point) if counted(point.point) => {
                // A swept rate is this point's rate, else the spec's.
                let rate = point.params.get("rate_per_client").and_then(serde_json::Value::as_f64);
                let rate = rate.unwrap_or(spec.workload.rate_per_client);
                if rate <= 0.0 {
                    return None;
                }
                scheduled += spec.trials as f64 * spec.workload.clients as f64 * rate * duration_ms / 1e3;
            }
            Record::Trial(trial) if counted(trial.point) => {
                let ran_ms = (trial.workload_end_ns - trial.workload_start_ns) as f64 / 1e6;
                overrun_ms = overrun_ms.max(ran_ms - duration_ms);
            }
            _ => {}
        }
    }
    if scheduled == 0.0 {
        return None;
    }
    let most = attempted.values().copied().max().unwrap_or(0);
    let short = (most as f64) < KEPT_SHARE * scheduled;
    let late = overrun_ms > MIN_OVERRUN_MS.max(OVERRUN_SHARE * duration_ms);
    (short || late).then_some(FellBehind {
        scheduled,
        attempted: most,
        overrun_ms: if late { overrun_ms } else { 0.0 },
        duration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;
    use crate::history::{PointRecord, TrialRecord, WriteRecord};

    fn records(writes: usize, ran_ms: i64) -> Vec<Record> {
        let mut params = serde_json::Map::new();
        params.insert("parameter".into(), "skew_ms".into());
        params.insert("skew_ms".into(), 0.0.into());
        let mut records = vec![Record::Point(PointRecord {
            point: 0,
            params,
            kinds: Default::default(),
            stamps: Default::default(),
        })];
        for item in 0..writes {
            let write = WriteRecord::started(0, 0, "lww-wall", "k1", 1, item as u64, 0);
            records.push(Record::Write(write));
        }
        records.push(Record::Trial(TrialRecord {
            point: 0,
            trial: 0,
            workload_start_ns: 0,
            workload_end_ns: ran_ms * 1_000_000,
            converged: true,
            converge_ms: 0.0,
            engine: Default::default(),
            failed_buckets: Default::default(),
            notes: Vec::new(),
        }));
        records
    }

    #[test]
    fn a_run_that_kept_to_its_schedule_says_nothing_and_one_that_fell_behind_gives_the_numbers() {
        // 2 clients at 100 a second for 1 s: 200 operations a bucket.
        let spec: Spec = Spec::parse(
            "trials = 1\nduration_ms = 1000\n[workload]\nclients = 2\nrate_per_client = 100\n[sweep]\nparameter = \"skew_ms\"\nvalues = [0]\n",
            std::path::Path::new("s.toml"),
        )
        .unwrap();
        let fell_behind = |records: &[Record]| super::fell_behind(&spec, records, &analyze(records).rows);
        assert_eq!(fell_behind(&records(195, 1010)), None);
        // Short, and only a little late: the lateness is not worth a word.
        let short = fell_behind(&records(40, 1010)).expect("it fell behind");
        assert_eq!(short.overrun_ms, 0.0);
        assert!(!short.sentence().contains("longer"), "{}", short.sentence());
        let behind = fell_behind(&records(40, 30_000)).expect("it fell behind");
        assert_eq!((behind.scheduled, behind.attempted), (200.0, 40));
        assert!((behind.overrun_ms - 29_000.0).abs() < 1e-6);
        let sentence = behind.sentence();
        assert!(
            sentence.contains("asked for 200 operations") && sentence.contains("attempted 40 (20.0%)"),
            "{sentence}"
        );
        assert!(sentence.contains("ran 29,000 ms longer"), "{sentence}");
    }
}
