//! `report.md`: a run's result in plain words, for a student.
//!
//! Every number in the report comes from the oracle's summary of this run;
//! the sentences around them say what the numbers mean. Where the report
//! states an expectation ("drops grow with skew", "no causality
//! violations"), it checks it against the numbers and says plainly when the
//! run disagrees.

use std::fmt::Write as _;

use super::offsets::OffsetsPlot;
use super::timeline::Timeline;
use crate::analysis::{Analysis, PointSummary, kind_in};
use crate::experiment::spec::Spec;
use crate::strategy::Kind;

/// The whole report.
/// The figures of a run beyond the sweep plots, where it has them.
pub struct Figures<'a> {
    pub timeline: Option<&'a Timeline>,
    pub offsets: Option<&'a OffsetsPlot>,
    /// A two-parameter sweep: the heatmap's section, in Markdown.
    pub heatmap: Option<&'a str>,
}

/// A workload figure for the setup line: its value, or, when a sweep
/// varies it, the swept parameter's name.
fn swept_or(spec: &Spec, parameter: crate::experiment::spec::Parameter, value: f64) -> String {
    let swept = spec.sweep.parameter == parameter
        || spec.sweep.across.as_ref().is_some_and(|across| across.parameter == parameter);
    if swept { format!("`{}`", parameter.name()) } else { value.to_string() }
}

pub fn report(
    experiment: &str,
    spec: &Spec,
    analysis: &Analysis,
    summaries: &[PointSummary],
    figures: &Figures<'_>,
) -> String {
    let mut text = String::new();
    let parameter = spec.sweep.parameter.name();
    let _ = writeln!(text, "# Experiment `{experiment}`\n");
    if !spec.description.trim().is_empty() {
        let _ = writeln!(text, "{}\n", spec.description.trim());
    }
    let workload = &spec.workload;
    let _ = writeln!(
        text,
        "**Setup.** {} replicas; strategies {}; {} clients doing {} on {} keys \
         ({} operations per second each, replica chosen {}); replication delay {:?} ms; \
         {parameter} swept over {:?}{}; {} trial(s) of {} ms per value; seed {}.\n",
        spec.replicas,
        spec.strategies.join(", "),
        workload.clients,
        match workload.contexts {
            crate::experiment::spec::Contexts::Fresh => "read-modify-write",
            crate::experiment::spec::Contexts::Stale => "writes with the context of their previous read",
        },
        swept_or(spec, crate::experiment::spec::Parameter::Keys, workload.keys as f64),
        swept_or(spec, crate::experiment::spec::Parameter::RatePerClient, workload.rate_per_client),
        match workload.replica_choice {
            crate::experiment::spec::ReplicaChoice::Random => "at random per operation",
            crate::experiment::spec::ReplicaChoice::Sticky => "once per client",
        },
        spec.network.delay_ms,
        spec.sweep.values,
        spec.sweep.across.as_ref().map_or_else(String::new, |across| format!(
            ", at each {} of {:?}",
            across.parameter.name(),
            across.values
        )),
        spec.trials,
        spec.duration_ms,
        spec.seed,
    );
    let _ = writeln!(text, "## What happened\n");
    if let Some(paragraph) = failed_paragraph(analysis) {
        let _ = writeln!(text, "{paragraph}\n");
    }
    let _ = writeln!(text, "![Dropped writes against {parameter}](dropped.svg)\n");
    for strategy in &spec.strategies {
        let points: Vec<&PointSummary> =
            summaries.iter().filter(|summary| &summary.strategy == strategy).collect();
        let _ = writeln!(
            text,
            "- {}\n",
            strategy_paragraph(strategy, kind_in(&analysis.kinds, strategy), parameter, &points)
        );
    }
    let _ = writeln!(text, "![What each strategy lost against what it cost](costs.svg)\n");
    let _ = writeln!(text, "{}\n", costs_paragraph(spec, parameter, summaries));
    let _ = writeln!(text, "{}\n", health_paragraph(spec, analysis, summaries));
    if let Some(paragraph) = regressions_paragraph(spec, analysis, summaries) {
        let _ = writeln!(text, "{paragraph}\n");
    }
    if spec.has_faults() {
        let _ = writeln!(text, "{}\n", convergence_paragraph(parameter, summaries));
    }
    if let Some(paragraph) = refused_paragraph(spec, summaries) {
        let _ = writeln!(text, "{paragraph}\n");
    }
    if let Some(timeline) = figures.timeline {
        let _ = writeln!(text, "![{}](timeline.svg)\n", timeline.title);
        let _ = writeln!(
            text,
            "The timeline follows one trial ({}). Above: dropped writes per {:.0} ms, placed at the time each \
             dropped write was invoked; shaded bands are fault windows (a strobe, a cut or a partition until its heal, a pause until \
             its resume, a crash until its restart) and vertical lines are clock steps. Below: every \
             replica's clock offset from true time, replayed from the settings the runner applied.\n",
            timeline.title, timeline.bin_ms
        );
    }
    if let Some(offsets) = figures.offsets {
        let (worst, held, all) = offsets.accuracy();
        let _ = writeln!(text, "![{}](offsets.svg)\n", offsets.title);
        let _ = writeln!(
            text,
            "Every replica estimates its peers' clock offsets from replication round trips, as NTP does \
             (`src/replica/offsets.rs`). The plot shows replica {}'s estimates (points, with their error \
             bounds) against the true difference between the clocks (lines). Over this trial the estimates \
             were at most {worst:.1} ms from the truth, and {held} of {all} error bounds held it.\n",
            offsets.observer
        );
    }
    if let Some(heatmap) = figures.heatmap {
        let _ = writeln!(text, "{heatmap}");
    }
    let _ = writeln!(text, "![Why last-write-wins dropped writes](causes.svg)\n");
    let _ = writeln!(text, "![Siblings kept instead of dropped](siblings.svg)\n");
    let _ = writeln!(text, "## How to read it\n\n{}\n", EXPLANATION.trim());
    let _ = writeln!(text, "## Numbers\n\n{}", table(parameter, summaries));
    text
}

/// What one strategy did across the sweep, in a few sentences.
/// The buckets whose plugin failed, with the first error of each: loud,
/// at the top, since their numbers are missing below.
fn failed_paragraph(analysis: &Analysis) -> Option<String> {
    let mut buckets: Vec<&str> =
        analysis.failed_buckets.iter().map(|failed| failed.bucket.as_str()).collect();
    buckets.dedup();
    if buckets.is_empty() {
        return None;
    }
    let mut text = String::from("**Failed.** ");
    for bucket in buckets {
        let trials: Vec<_> =
            analysis.failed_buckets.iter().filter(|failed| failed.bucket == bucket).collect();
        let _ = write!(
            text,
            "Bucket **{bucket}**'s plugin failed in {} trial(s), so the oracle did not judge it there \
             (the other buckets are judged as usual). The first error:\n\n```text\n{}\n```\n",
            trials.len(),
            trials[0].error
        );
    }
    Some(text)
}

fn strategy_paragraph(strategy: &str, kind: Kind, parameter: &str, points: &[&PointSummary]) -> String {
    let Some(first) = points.first() else {
        return format!("**{strategy}**: no writes were recorded.");
    };
    let acked: usize = points.iter().map(|point| point.acked).sum();
    let dropped: usize = points.iter().map(|point| point.dropped).sum();
    let causality: usize = points.iter().map(|point| point.dropped_causality).sum();
    let realtime: usize = points.iter().map(|point| point.dropped_realtime).sum();
    let concurrent: usize = points.iter().map(|point| point.dropped_concurrent).sum();
    let each: Vec<String> = points
        .iter()
        .map(|point| {
            format!(
                "{:.1}% at {} ({} of {})",
                point.dropped_percent_mean, point.value, point.dropped, point.acked
            )
        })
        .collect();
    let mut text =
        format!("**{strategy}** dropped, of its acknowledged writes, by {parameter}: {}.", each.join(", "));
    if kind == Kind::LastWriteWins {
        // Against the sweep's no-fault point (value 0) if it has one, else
        // its first; a change counts only if it is larger than the trials'
        // own spread and than one percentage point.
        let baseline = points.iter().find(|point| point.value == 0.0).unwrap_or(first);
        let spread = points.iter().map(|point| point.dropped_percent_deviation).fold(0.0, f64::max);
        let noise = (2.0 * spread).max(1.0);
        let values = |keep: &dyn Fn(f64) -> bool| -> Vec<String> {
            points
                .iter()
                .filter(|point| point.point != baseline.point)
                .filter(|point| keep(point.dropped_percent_mean - baseline.dropped_percent_mean))
                .map(|point| point.value.to_string())
                .collect()
        };
        let mut parts = Vec::new();
        for (words, found) in [
            ("rose at", values(&|change| change > noise)),
            ("fell at", values(&|change| change < -noise)),
            ("stayed within noise at", values(&|change| change.abs() <= noise)),
        ] {
            if !found.is_empty() {
                parts.push(format!("{words} {}", found.join(", ")));
            }
        }
        let trend = if parts.is_empty() {
            String::new()
        } else {
            format!("Against {parameter} = {}, drops {}.", baseline.value, parts.join("; "))
        };
        let _ = write!(
            text,
            " {trend} Over the whole sweep, of {dropped} drops in {acked} acknowledged writes, {causality} were \
             causality violations (the writer had read the write that beat it, as in DDIA Figure 8-3), \
             {realtime} were real-time violations (lost to a write that finished before they began), and {concurrent} were concurrent \
             overwrites that last-write-wins would make even with perfect clocks."
        );
        if causality == 0 {
            let _ = write!(text, " It never dropped a write whose writer had read the winner.");
        }
    } else if dropped == 0 {
        let siblings: usize = points.iter().map(|point| point.siblings).sum();
        let most = points.iter().map(|point| point.max_siblings).max().unwrap_or(0);
        let _ = write!(
            text,
            " It dropped nothing at any {parameter}: instead, {siblings} reads returned siblings \
             (at most {most} at once), and the client merged them in its next write."
        );
    } else {
        let _ = write!(
            text,
            " A strategy that keeps siblings should drop nothing: these {dropped} drops are a bug \
             (see drops.json)."
        );
    }
    text
}

/// Clocks that went backwards, per strategy, if any did.
fn regressions_paragraph(spec: &Spec, analysis: &Analysis, summaries: &[PointSummary]) -> Option<String> {
    let total = |strategy: &str| -> usize {
        summaries
            .iter()
            .filter(|summary| summary.strategy == strategy)
            .map(|summary| summary.stamp_regressions)
            .sum()
    };
    let lww: Vec<&String> = spec
        .strategies
        .iter()
        .filter(|strategy| kind_in(&analysis.kinds, strategy) == Kind::LastWriteWins)
        .collect();
    if lww.iter().all(|strategy| total(strategy) == 0) {
        return None;
    }
    let counts: Vec<String> = lww.iter().map(|strategy| format!("{strategy} {}", total(strategy))).collect();
    Some(format!(
        "**Stamps that went backwards.** Acknowledged writes stamped *below* an earlier write of their own \
         replica: {}. A wall clock that is stepped back hands out old timestamps again, so a replica's new \
         write can lose to its own older one; a hybrid logical clock never goes back, whatever the \
         physical clock does.",
        counts.join(", ")
    ))
}

/// Writes refused by replicas that found their own clock out of bounds.
fn refused_paragraph(spec: &Spec, summaries: &[PointSummary]) -> Option<String> {
    let bounded = spec.max_peer_offset_ms.is_some()
        || spec.sweep.parameter == crate::experiment::spec::Parameter::MaxPeerOffsetMs;
    let strategy = spec.strategies.first()?;
    if !bounded {
        return None;
    }
    let points: Vec<String> = summaries
        .iter()
        .filter(|summary| &summary.strategy == strategy)
        .map(|summary| {
            let refused = summary.writes - summary.acked;
            format!("{refused} of {} at {} = {}", summary.writes, summary.parameter, summary.value)
        })
        .collect();
    Some(format!(
        "**Availability.** Writes not acknowledged (refused by a replica whose clock was out of bounds, or \
         unanswered), per bucket: {}. A bound trades refused writes, which the client knows about, for \
         silently dropped ones, which it does not.",
        points.join("; ")
    ))
}

/// How long the replicas took to agree once the faults stopped.
fn convergence_paragraph(parameter: &str, summaries: &[PointSummary]) -> String {
    let mut seen = Vec::new();
    for summary in summaries {
        if !seen.iter().any(|(point, _, _)| *point == summary.point) {
            seen.push((summary.point, summary.value, summary.converge_ms_max));
        }
    }
    let times: Vec<String> =
        seen.iter().map(|(_, value, ms)| format!("{ms:.0} ms at {parameter} = {value}")).collect();
    format!(
        "**Convergence.** Once the faults stopped, every replica held every write within (longest trial): {}.",
        times.join("; ")
    )
}

/// Convergence and the oracle's consistency checks, in one paragraph.
///
/// A real database's buckets are left out: their nodes' disagreement is
/// what they are measured for, in their own section (`report::database`).
fn health_paragraph(spec: &Spec, analysis: &Analysis, summaries: &[PointSummary]) -> String {
    let databases: Vec<&str> = spec.pg_buckets().collect();
    let lab = |bucket: &str| !databases.contains(&bucket);
    let summaries: Vec<&PointSummary> = summaries.iter().filter(|summary| lab(&summary.strategy)).collect();
    let diverged: usize = summaries.iter().map(|summary| summary.diverged_keys).sum();
    let unacked: usize = summaries.iter().map(|summary| summary.unacked_applied).sum();
    let mismatches = analysis.lww_final_mismatches.iter().filter(|mismatch| lab(&mismatch.bucket)).count();
    let mut text = if diverged == 0 {
        "Every replica ended with the same state for every key (the replicas converged).".to_string()
    } else {
        format!("**{diverged} key(s) did not converge**: replicas disagree about them at the end.")
    };
    if !databases.is_empty() {
        text = format!("Of the lab's own strategies: {text}");
    }
    if mismatches == 0 {
        text.push_str(
            " Every last-write-wins key ended holding its highest-stamped write, as the rule says.",
        );
    } else {
        let _ = write!(
            text,
            " **{mismatches} last-write-wins key(s) ended without their highest-stamped write.**"
        );
    }
    if unacked > 0 {
        let _ = write!(
            text,
            " {unacked} write(s) whose answer never reached the client were applied anyway \
             (the client cannot know; they are not counted as acknowledged)."
        );
    }
    text
}

const EXPLANATION: &str = "
A write is **silently dropped** when the replica acknowledged it, the client
moved on, and yet its item is in no replica's final state. The oracle counts
this from the history alone: items acknowledged minus items kept.

Last-write-wins keeps, for each key, the write with the greatest timestamp
and throws the others away. Each drop is put in one of three groups by what
truly happened, judged with the runner's real clock:

- **causality violation**: the dropped write had *read* the write that beat
  it, so it was really later, yet it got a smaller timestamp because its
  replica's clock was behind. This is DDIA Figure 8-3: the increment is lost.
- **real-time violation**: the winner finished before the dropped write even
  began, but the dropped write's replica had not seen it yet, and a clock
  that lagged (or, for a Lamport counter, a replica that had counted less)
  gave the later write the smaller timestamp.
- **concurrent overwrite**: the two writes overlapped in time; neither could
  know of the other, and last-write-wins drops one of them whatever the
  clocks say. Only keeping both (siblings) avoids this.

Hybrid logical clocks never go backwards and always exceed any timestamp a
replica has seen, so a write that read another always gets a greater stamp:
causality violations disappear, but writes that never met are still ordered
by skewed clocks; a Lamport clock does the same with no physical time at all.
TrueTime's commit wait (Spanner) instead holds every write back until its
stamp is certainly in the past: no clock-caused drop while the assumed
uncertainty covers the real offsets, at the price of waiting twice that
uncertainty on every write. Version vectors do not order concurrent writes at
all: they keep them as siblings and let the next read-modify-write merge them;
without dots (per-server version vectors) a replica cannot tell which
siblings a stale context covered, so it keeps them all. A set-union bucket
merges concurrent writes itself and hands out one value, but only for values
that are sets.

Each strategy is judged by the kind it declares (last write wins, siblings,
or merge) and recorded in the history, never by its name. Costs come from
the same history: write latency is the runner's own time from a client's
request to its acknowledgement, and every strategy follows the same schedule
of operations on its own, so a slow strategy delays only itself.
";

/// What each strategy's guarantees cost, in words: latency, writes not
/// acknowledged, siblings handed out, metadata kept.
fn costs_paragraph(spec: &Spec, parameter: &str, summaries: &[PointSummary]) -> String {
    let mut parts = Vec::new();
    for strategy in &spec.strategies {
        let points: Vec<&PointSummary> =
            summaries.iter().filter(|summary| &summary.strategy == strategy).collect();
        let (Some(first), Some(last)) = (points.first(), points.last()) else { continue };
        let p50: Vec<f64> = points.iter().map(|point| point.latency_p50_ms).collect();
        let (low, high) =
            p50.iter().fold((f64::MAX, 0.0_f64), |(low, high), &ms| (low.min(ms), high.max(ms)));
        let latency = if high > 2.0 * low.max(1.0) {
            format!(
                "its median write took {:.1} ms at {parameter} = {} and {:.1} ms at {}",
                first.latency_p50_ms, first.value, last.latency_p50_ms, last.value
            )
        } else {
            let p99 = points.iter().map(|point| point.latency_p99_ms).fold(0.0, f64::max);
            format!("its median write took {low:.1} to {high:.1} ms (99th percentile at most {p99:.1} ms)")
        };
        let failed: usize = points.iter().map(|point| point.failed).sum();
        let most = points.iter().map(|point| point.max_siblings).max().unwrap_or(0);
        let metadata = points.iter().map(|point| point.metadata_bytes).fold(0.0, f64::max);
        let siblings =
            if most > 1 { format!("reads of up to {most} siblings") } else { "one value per read".into() };
        parts.push(format!(
            "**{strategy}**: {latency}; {failed} write(s) not acknowledged; {siblings}; about {metadata:.0} bytes \
             of stamp and context kept per write"
        ));
    }
    format!(
        "**What it cost.** Every guarantee is paid for somewhere: in latency, in writes refused, in \
         siblings the application must merge, or in metadata kept with every write. {}.",
        parts.join(". ")
    )
}

fn table(parameter: &str, summaries: &[PointSummary]) -> String {
    let mut text = format!(
        "| {parameter} | strategy | acked | dropped % (± 95% CI) | causality | other clock | concurrent | \
         siblings | max siblings | p50 ms | p99 ms | failed | metadata bytes | diverged keys | unacked applied |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for summary in summaries {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {:.2} (± {:.2}) | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {:.0} | {} | {} |",
            summary.value,
            summary.strategy,
            summary.acked,
            summary.dropped_percent_mean,
            summary.dropped_percent_interval,
            summary.dropped_causality,
            summary.dropped_realtime,
            summary.dropped_concurrent,
            summary.siblings,
            summary.max_siblings,
            summary.latency_p50_ms,
            summary.latency_p99_ms,
            summary.failed,
            summary.metadata_bytes,
            summary.diverged_keys,
            summary.unacked_applied,
        );
    }
    text
}
