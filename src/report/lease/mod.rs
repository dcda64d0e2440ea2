//! The report of a lease run (`crate::lease`): per sweep point and guard,
//! whether two workers believed they held the lease at once, whether the
//! expired holder's writes landed, what fencing refused, and what was lost
//! (`analysis::lease`); its two plots; and a trial told line by line.
//!
//! A lease run has no clients and no key-value workload, so its report is
//! its own: none of the dropped-writes plots, only what the workers did.

pub mod harm;
pub mod timeline;
mod transcript;

use std::fmt::Write as _;

pub use self::harm::{LEASE_HARM, LeaseHarm};
pub use self::timeline::{LEASE_TIMELINE, LeaseTimeline};
pub use self::transcript::{LeaseStory, StoryLine, story, transcript};
use crate::analysis::lease::LeaseRow;
use crate::experiment::spec::{Parameter, Spec, shown_number};
use crate::history::Record;
use crate::lease::Guard;

/// A lease run's plots.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseFigures {
    pub harm: LeaseHarm,
    /// One trial: the first at the sweep's largest value.
    pub timeline: Option<LeaseTimeline>,
}

impl LeaseFigures {
    /// From the run's verdicts and its history (only its trial, lease and
    /// fault records are looked at).
    pub fn build(experiment: &str, spec: &Spec, rows: &[LeaseRow], records: &[Record]) -> LeaseFigures {
        // The sweep's largest value; in a two-parameter sweep, at the
        // second parameter's middle value, as the harm plot shows.
        let offset =
            spec.sweep.across.as_ref().map_or(0, |across| across.values.len() / 2 * spec.sweep.values.len());
        let timeline = super::sweep::largest_point(spec).and_then(|(first, _)| {
            let point = offset + first;
            let title = format!("{experiment}: one trial {}", point_phrase(spec, point));
            timeline::build(&title, records, point)
        });
        LeaseFigures { harm: LeaseHarm::build(experiment, spec, rows), timeline }
    }
}

/// The table, as the terminal shows it.
pub fn text_table(rows: &[LeaseRow], spec: &Spec) -> String {
    let header = parameters_header(spec);
    let width =
        rows.iter().map(|row| point_label(spec, row.point).len()).chain([header.len()]).max().unwrap_or(10);
    let mut text = format!(
        "{:>width$}  {:<11} {:>7} {:>9} {:>10} {:>8} {:>7} {:>6}\n",
        header, "guard", "unsafe", "overlaps", "stale ok'd", "fenced", "acked", "lost"
    );
    for row in rows {
        let value = point_label(spec, row.point);
        let guard = row.guard.map(|guard| guard.as_str()).unwrap_or("?");
        let _ = writeln!(
            text,
            "{value:>width$}  {guard:<11} {:>3} / {:<1} {:>9} {:>10} {:>8} {:>7} {:>6}",
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

/// The swept values at `point`: the first parameter's, then the second's
/// if there is one.
fn values_at(spec: &Spec, point: usize) -> (f64, Option<(crate::experiment::spec::Parameter, f64)>) {
    let count = spec.sweep.values.len().max(1);
    let first = spec.sweep.values.get(point % count).copied().unwrap_or_default();
    let second = spec
        .sweep
        .across
        .as_ref()
        .and_then(|across| across.values.get(point / count).map(|&value| (across.parameter, value)));
    (first, second)
}

/// The swept values at `point`, as a table shows them: `1`, or `1, cut_ms 4,000`.
pub fn point_label(spec: &Spec, point: usize) -> String {
    match values_at(spec, point) {
        (first, None) => shown_number(first),
        (first, Some((across, value))) => {
            format!("{}, {} {}", shown_number(first), across.name(), shown_number(value))
        }
    }
}

/// The swept values at `point`, in words.
pub fn point_phrase(spec: &Spec, point: usize) -> String {
    match values_at(spec, point) {
        (first, None) => spec.phrase_at(first),
        (first, Some((across, value))) => {
            format!("{}, {}", spec.phrase_at(first), across.lease_phrase(value))
        }
    }
}

/// Every point of the run's sweep.
pub fn points(spec: &Spec) -> std::ops::Range<usize> {
    let across = spec.sweep.across.as_ref().map_or(1, |across| across.values.len());
    0..spec.sweep.values.len() * across
}

/// Whether `spec` sweeps `parameter`, first or second.
fn sweeps(spec: &Spec, parameter: Parameter) -> bool {
    spec.sweep.parameter == parameter
        || spec.sweep.across.as_ref().is_some_and(|across| across.parameter == parameter)
}

/// The swept parameters' names, for a table's header.
fn parameters_header(spec: &Spec) -> String {
    match &spec.sweep.across {
        Some(across) => format!("{}, {}", spec.sweep.parameter.name(), across.parameter.name()),
        None => spec.sweep.parameter.name().to_string(),
    }
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
        parameters_header(spec)
    );
    text.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let guard = row.guard.map(|guard| guard.as_str()).unwrap_or("?");
        let _ = writeln!(
            text,
            "| {} | {guard} | {} of {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            point_label(spec, row.point),
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

/// One guard's rows, added up over the sweep.
fn totals(rows: &[LeaseRow], guard: Guard) -> LeaseRow {
    let mut total = LeaseRow { guard: Some(guard), ..LeaseRow::default() };
    for row in rows.iter().filter(|row| row.guard == Some(guard)) {
        total.trials += row.trials;
        total.unsafe_trials += row.unsafe_trials;
        total.overlaps += row.overlaps;
        total.overlap_trials += row.overlap_trials;
        total.overlap_ms += row.overlap_ms;
        total.acked += row.acked;
        total.stale_acked += row.stale_acked;
        total.fenced += row.fenced;
        total.harmful += row.harmful;
        total.lost_updates += row.lost_updates;
    }
    total
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// What one guard did over the whole sweep, in a few sentences: where it
/// lost increments, whether writes from an expired lease got through,
/// whether two workers believed at once, and what fencing refused.
pub fn guard_sentence(rows: &[LeaseRow], guard: Guard, spec: &Spec) -> String {
    let total = totals(rows, guard);
    let ours: Vec<&LeaseRow> = rows.iter().filter(|row| row.guard == Some(guard)).collect();
    let lossy: Vec<String> = ours
        .iter()
        .filter(|row| row.lost_updates > 0)
        .map(|row| format!("{} {}", row.lost_updates, point_phrase(spec, row.point)))
        .collect();
    let mut text = match lossy.as_slice() {
        [] => format!("**{guard}** lost no increment"),
        [only] if ours.iter().filter(|row| row.lost_updates > 0).count() == 1 => {
            format!("**{guard}** lost {}, {}", plural(total.lost_updates, "increment", "increments"), {
                only.split_once(' ').map_or("", |(_, phrase)| phrase)
            })
        }
        _ => format!(
            "**{guard}** lost {} in all: {}",
            plural(total.lost_updates, "increment", "increments"),
            lossy.join("; ")
        ),
    };
    text.push_str(&match total.stale_acked {
        0 => ", and no write from an expired lease got through".to_string(),
        stale if lossy.len() > 1 => {
            format!("; it let {} from an expired lease through", plural(stale, "write", "writes"))
        }
        stale => format!(", and let {} from an expired lease through", plural(stale, "write", "writes")),
    });
    text.push_str(&match total.fenced {
        0 => ".".to_string(),
        fenced => format!("; fencing refused {}.", plural(fenced, "stale write", "stale writes")),
    });
    let overlapping = total.overlap_trials;
    if overlapping == 0 {
        text.push_str(" Never did two workers believe they held the lease at once.");
    } else {
        let _ = write!(
            text,
            " Two workers believed they held the lease at once in {overlapping} of {} trials ({:.0} ms in all).",
            total.trials, total.overlap_ms
        );
    }
    text
}

/// A run's verdict at a glance, one clause per guard, for the dashboard.
pub fn headline(rows: &[LeaseRow]) -> String {
    let mut guards: Vec<Guard> = rows.iter().filter_map(|row| row.guard).collect();
    guards.sort();
    guards.dedup();
    let clauses: Vec<String> = guards
        .into_iter()
        .map(|guard| {
            let total = totals(rows, guard);
            if total.unsafe_trials == 0 {
                format!("{guard} safe in all {} trials", total.trials)
            } else {
                format!(
                    "{guard} unsafe in {} of {} trials, {} lost",
                    total.unsafe_trials,
                    total.trials,
                    plural(total.lost_updates, "increment", "increments")
                )
            }
        })
        .collect();
    format!("{}.", clauses.join("; "))
}

/// The whole `report.md` of a lease run.
pub fn report(experiment: &str, spec: &Spec, rows: &[LeaseRow], figures: &LeaseFigures) -> String {
    let mut text = format!("# Experiment `{experiment}`\n\n");
    if !spec.description.trim().is_empty() {
        let _ = writeln!(text, "{}\n", spec.description.trim());
    }
    if let Some(lease) = &spec.lease {
        let guards: Vec<&str> = lease.guards.iter().map(|guard| guard.as_str()).collect();
        let _ = writeln!(
            text,
            "**Setup.** {} lease workers, each running one loop per guard ({}) through the same pauses and \
             clock faults; a lease lasts {} ms by the lock service's clock, and a worker acts on it only with \
             more than {} ms left, renews it below {} ms, and works {} ms between reading the protected value \
             and writing it plus one; {} replicas store the values in bucket `{}` ({}); {}; \
             {} trial(s) of {} ms per value; seed {}.\n",
            lease.workers,
            guards.join(", "),
            shown_number(lease.ttl_ms),
            shown_number(lease.margin_ms),
            shown_number(lease.renew_ms),
            shown_number(lease.work_ms),
            spec.replicas,
            lease.bucket,
            if sweeps(spec, Parameter::StorageReplicas) {
                "the number of replicas the workers write to is swept, as storage_replicas".to_string()
            } else {
                lease.storage_words()
            },
            match &spec.sweep.across {
                Some(across) => format!(
                    "{} swept over {:?}, each at {} of {:?}",
                    spec.sweep.parameter.name(),
                    spec.sweep.values,
                    across.parameter.name(),
                    across.values
                ),
                None => format!("{} swept over {:?}", spec.sweep.parameter.name(), spec.sweep.values),
            },
            spec.trials,
            spec.duration_ms,
            spec.seed,
        );
        text.push_str("## What happened\n\n");
        let _ = writeln!(text, "![What each guard let through]({LEASE_HARM}.svg)\n");
        for guard in &lease.guards {
            let _ = writeln!(text, "- {}", guard_sentence(rows, *guard, spec));
        }
        text.push('\n');
    }
    if let Some(timeline) = &figures.timeline {
        let _ = writeln!(text, "![{}]({LEASE_TIMELINE}.svg)\n", timeline.title);
        text.push_str(
            "The timeline follows one trial, one panel per guard and one row per worker. The dark upper bar \
             is when the lock service considered the worker's lease in force, labelled with its fencing \
             token; the lighter bar below is when the worker believed it held the lease. Where a lighter bar \
             runs on past its dark bar, the worker went on acting on a lease that had already passed to \
             another. Shaded stretches are pauses, vertical lines clock steps; each mark is a write of the \
             protected value: accepted, accepted from an expired lease, accepted over an increment another \
             worker had made (the harm), or refused by fencing.\n\n",
        );
    }
    text.push_str(&section(rows, spec));
    text.push_str(HOW_TO_READ);
    text
}

/// The explanation at the end of every lease report.
const HOW_TO_READ: &str = "## How to read it

A lock service hands out a lease: the right to act alone for a while (its
time to live), with a fencing token that grows with every grant. A worker
holding it reads the protected value, works, and writes the value plus one.
If only one worker acts at a time, the final value equals the number of
acknowledged writes. The trouble (DDIA chapter 8, \"Process Pauses\") is
that a worker decides *by itself* whether its lease is still valid:

- **wall-clock** compares the expiry time the service set with its own
  time-of-day clock. A clock that is behind, or stepped back, tells it the
  lease has time left when it has none.
- **monotonic** measures the lease's time on its monotonic clock from just
  before it asked, and keeps a safety margin. No clock step fools it, but a
  pause between its check and its write does: the process does not know it
  was stopped.
- **fenced** checks as monotonic does, and sends its token with every write;
  the storage refuses a token lower than one it has already seen (DDIA
  Figure 8-5). The storage, not the worker, has the last word.

The oracle judges from the history alone, in true time: an **overlap** is
two workers believing they held the lease at once; a **stale write** is
one the storage accepted though it was sent after its lease had ended at
the service; **fenced** writes were refused for their old token; a **lost
update** is an acknowledged increment missing from the final value,
because a writer wrote over a value it had read before another worker's
write. A trial is **unsafe** if any of the three happened.
";
