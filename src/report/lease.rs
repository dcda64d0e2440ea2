//! The lease part of a run's report: per sweep point and guard, whether two
//! workers believed they held the lease at once, whether the expired
//! holder's writes landed, what fencing refused, and what was lost
//! (`analysis::lease`).

use std::fmt::Write as _;

use crate::analysis::lease::LeaseRow;
use crate::experiment::spec::Spec;

/// The table, as the terminal shows it.
pub fn text_table(rows: &[LeaseRow], spec: &Spec) -> String {
    let mut text = format!(
        "{:>10}  {:<11} {:>7} {:>9} {:>10} {:>8} {:>7} {:>6}\n",
        spec.sweep.parameter.name(),
        "guard",
        "unsafe",
        "overlaps",
        "stale ok'd",
        "fenced",
        "acked",
        "lost"
    );
    for row in rows {
        let value = value_at(spec, row.point);
        let guard = row.guard.map(|guard| guard.as_str()).unwrap_or("?");
        let _ = writeln!(
            text,
            "{value:>10}  {guard:<11} {:>3} / {:<1} {:>9} {:>10} {:>8} {:>7} {:>6}",
            row.unsafe_trials,
            row.trials,
            row.overlaps,
            row.stale_acked,
            row.fenced,
            row.acked,
            row.lost_updates
        );
    }
    text
}

/// The value of the swept parameter at `point`, as written in the spec.
fn value_at(spec: &Spec, point: usize) -> String {
    spec.sweep
        .values
        .get(point % spec.sweep.values.len().max(1))
        .map_or_else(String::new, |value| value.to_string())
}

/// The report's section.
pub fn section(rows: &[LeaseRow], spec: &Spec) -> String {
    let mut text = String::from("## Leases\n\n");
    text.push_str(
        "Each guard is one way for a worker to decide that it still holds the lease. \
         *Unsafe* trials had two workers believing they held the lease at once, a write \
         from a worker whose lease had already ended at the lock service, or a lost \
         update. *Stale ok'd* counts those late writes the storage accepted; *fenced*, \
         those it refused for their old token; *lost*, increments acknowledged but \
         missing from the final value.\n\n",
    );
    let _ = writeln!(
        text,
        "| {} | guard | unsafe trials | overlaps | overlap, ms | stale writes accepted | fenced | acknowledged | harmful | lost updates |",
        spec.sweep.parameter.name()
    );
    text.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let guard = row.guard.map(|guard| guard.as_str()).unwrap_or("?");
        let _ = writeln!(
            text,
            "| {} | {guard} | {} of {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            value_at(spec, row.point),
            row.unsafe_trials,
            row.trials,
            row.overlaps,
            row.overlap_ms,
            row.stale_acked,
            row.fenced,
            row.acked,
            row.harmful,
            row.lost_updates
        );
    }
    text.push('\n');
    text
}
