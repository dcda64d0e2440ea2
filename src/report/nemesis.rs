//! The random nemesis's part of `report.md`: what it did, and whether the
//! invariants held.
//!
//! A run with `[chaos]` is judged like any other, and then against the
//! promises that must hold whatever the faults were: strategies that keep
//! siblings or merge lose no acknowledged write; every replica converges
//! once the faults stop; every write last-write-wins drops has a killer,
//! a write with a greater stamp that lacks its item (none is unexplained).
//! The faults are counted from the history's `fault` records, so the report
//! says what was done, not what was planned.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::analysis::Analysis;
use crate::history::{FaultKind, Record};
use crate::strategy::Kind;

/// How many faults of each kind the history records. A cut or a partition
/// writes one record per link, all together: those count once.
pub fn faults_applied(records: &[Record]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    let mut last: Option<(usize, usize, Option<FaultKind>)> = None;
    for record in records {
        let Record::Fault(fault) = record else { continue };
        let here = (fault.point, fault.trial, fault.fault.kind());
        let Some(kind) = here.2 else {
            last = Some(here);
            continue;
        };
        let per_link = matches!(kind, FaultKind::Cut | FaultKind::Partition | FaultKind::Link);
        if !(per_link && last == Some(here)) {
            *counts.entry(kind.as_str()).or_insert(0) += 1;
        }
        last = Some(here);
    }
    counts
}

/// One promise and whether the run kept it.
pub struct Invariant {
    pub promise: &'static str,
    /// `None` if it held; else what broke it.
    pub broken: Option<String>,
}

/// The invariants every run must keep, judged from the oracle's rows.
pub fn invariants(analysis: &Analysis) -> Vec<Invariant> {
    let mut lost: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut diverged, mut unexplained) = (0, 0);
    for row in &analysis.rows {
        let kind = analysis.kinds.get(&row.strategy).copied().unwrap_or(Kind::LastWriteWins);
        if kind != Kind::LastWriteWins {
            *lost.entry(row.strategy.as_str()).or_insert(0) += row.dropped as u64;
        }
        diverged += row.diverged_keys;
        unexplained += row.dropped_without_killer;
    }
    let losers: Vec<String> = lost
        .iter()
        .filter(|&(_, &dropped)| dropped > 0)
        .map(|(name, dropped)| format!("{name} dropped {dropped}"))
        .collect();
    vec![
        Invariant {
            promise: "strategies that keep siblings or merge lose no acknowledged write",
            broken: (!losers.is_empty()).then(|| losers.join(", ")),
        },
        Invariant {
            promise: "every replica converges once the faults stop",
            broken: (diverged > 0).then(|| format!("{diverged} keys still differ between replicas")),
        },
        Invariant {
            promise: "every write last-write-wins drops has a killer",
            broken: (unexplained > 0).then(|| format!("{unexplained} drops have none")),
        },
    ]
}

/// The report's section on the nemesis.
pub fn section(experiment: &str, seed: u64, records: &[Record], analysis: &Analysis) -> String {
    let mut text = String::new();
    let applied = faults_applied(records);
    let listed: Vec<String> = applied.iter().map(|(kind, count)| format!("{count} {kind}")).collect();
    let _ = writeln!(text, "## The nemesis\n");
    let _ = writeln!(
        text,
        "Faults drawn at random from seed {seed}, one after another, as recorded in the history: {} \
         ({} kinds). The same seed draws the same schedule in either engine: \
         `clocklab experiment {experiment} --seed {seed}` replays it.\n",
        if listed.is_empty() { "none".to_string() } else { listed.join(", ") },
        applied.len()
    );
    let _ = writeln!(text, "| invariant | held |\n|---|---|");
    for invariant in invariants(analysis) {
        let held = match &invariant.broken {
            None => "yes".to_string(),
            Some(what) => format!("**no**: {what}"),
        };
        let _ = writeln!(text, "| {} | {held} |", invariant.promise);
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{FaultName, FaultRecord, TrialPlan};
    use serde_json::json;

    fn fault(name: &str, replica: u32) -> Record {
        let name = FaultName::parse(name).expect("a record's name");
        FaultRecord::at(0, TrialPlan { point: 0, trial: 0, value: 0.0 }, replica, name, &json!({}))
    }

    #[test]
    fn a_cut_or_partition_counts_once_for_all_its_links() {
        let records = [
            fault("partition", 1),
            fault("partition", 2),
            fault("heal", 1),
            fault("step", 3),
            fault("step", 1),
            fault("cut", 2),
            fault("cut", 2),
            fault("heal", 2),
            fault("crash", 1),
            fault("restart", 1),
            fault("clock", 1),
        ];
        let counts = faults_applied(&records);
        assert_eq!(counts, BTreeMap::from([("crash", 1), ("cut", 1), ("partition", 1), ("step", 2)]));
    }
}
