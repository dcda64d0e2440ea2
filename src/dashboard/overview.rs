//! The dashboard's first page: every experiment as a card that teaches at a
//! glance.
//!
//! A card holds what a student needs before clicking anything: the
//! experiment's question (the first sentence of its spec's description),
//! its newest finished run's main plot, and one sentence with that run's
//! headline numbers, written here from the run's summary, never by hand
//! ("lww-wall drops 6.5% with every clock in step and 52.4% with clocks
//! 1,000 ms apart; vv and set-union drop none"). Under it, every run, newest first: when it
//! started, its seed, whether it was the quick or the full sweep, its
//! engine, and whether it finished.

use serde::Serialize;

use crate::analysis::PointSummary;
use crate::experiment::run_id::{RunId, TIME_FORMAT};
use crate::experiment::spec::Spec;

/// Which sweep a run made, told by comparing its saved spec with the
/// shipped one (sweep values, trial length and trials): the `[quick]`
/// variant, the full sweep, or neither (another spec, a sweep changed by
/// hand, or `--trials`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunSize {
    Quick,
    Full,
    Custom,
}

impl RunSize {
    /// The size of a run whose saved spec is `ran`, of an experiment whose
    /// shipped spec is `shipped`.
    pub fn of(ran: &Spec, shipped: Option<&Spec>) -> RunSize {
        let Some(shipped) = shipped else { return RunSize::Custom };
        let same = |other: &Spec| {
            other.sweep.values == ran.sweep.values
                && other.duration_ms == ran.duration_ms
                && other.trials == ran.trials
                && other.sweep.across.as_ref().map(|across| &across.values)
                    == ran.sweep.across.as_ref().map(|across| &across.values)
        };
        if same(&shipped.clone().quick()) {
            RunSize::Quick
        } else if same(shipped) {
            RunSize::Full
        } else {
            RunSize::Custom
        }
    }
}

/// A run id's start time as a person reads it: `2026-12-02 03:16:35 UTC`.
pub fn started_at(run_id: &RunId) -> Option<String> {
    let time = chrono::NaiveDateTime::parse_from_str(&run_id.started, TIME_FORMAT).ok()?;
    Some(time.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// A per-point summary's point in words.
fn summary_words(summary: &PointSummary) -> String {
    let across = summary.across.as_deref().zip(summary.across_value);
    super::words::point_words(&summary.parameter, summary.value, across)
}

/// One sentence with a run's headline numbers, from its summaries (one per
/// sweep point and strategy): each strategy that dropped anything, the one
/// that dropped most first, with its
/// drop rate at the sweep's first and last values (or, on a two-parameter
/// sweep, its least and most), then the strategies that dropped nothing,
/// then those whose replicas ended disagreeing about some key.
pub fn headline(summaries: &[PointSummary]) -> String {
    let mut strategies: Vec<&str> = Vec::new();
    for summary in summaries {
        if !strategies.contains(&summary.strategy.as_str()) {
            strategies.push(&summary.strategy);
        }
    }
    let mut dropping = Vec::new();
    let mut none = Vec::new();
    for strategy in strategies {
        let mut points: Vec<&PointSummary> =
            summaries.iter().filter(|summary| summary.strategy == strategy).collect();
        points.sort_by_key(|summary| summary.point);
        let percent = |summary: &PointSummary| summary.dropped_percent_mean;
        if points.iter().all(|summary| summary.dropped == 0) {
            none.push(strategy);
            continue;
        }
        let (Some(first), Some(last)) = (points.first(), points.last()) else { continue };
        let two_parameters = points.iter().any(|summary| summary.across.is_some());
        let most_dropped = points.iter().map(|summary| percent(summary)).fold(0.0, f64::max);
        dropping.push((
            most_dropped,
            if two_parameters {
                let least = points.iter().map(|summary| percent(summary)).fold(f64::INFINITY, f64::min);
                let most = points.iter().map(|summary| percent(summary)).fold(0.0, f64::max);
                format!("{strategy} drops {least:.1}% to {most:.1}% across the grid")
            } else if points.len() == 1 {
                format!("{strategy} drops {:.1}%", percent(first))
            } else {
                format!(
                    "{strategy} drops {:.1}% {} and {:.1}% {}",
                    percent(first),
                    summary_words(first),
                    percent(last),
                    summary_words(last)
                )
            },
        ));
    }
    // The strategy that lost most leads.
    dropping.sort_by(|left, right| right.0.total_cmp(&left.0));
    let mut parts: Vec<String> = dropping.into_iter().map(|(_, part)| part).collect();
    match none.as_slice() {
        [] => {}
        [one] => parts.push(format!("{one} drops none")),
        [rest @ .., last] => parts.push(format!("{} and {last} drop none", rest.join(", "))),
    }
    if parts.is_empty() {
        return "No writes were acknowledged.".to_string();
    }
    let mut sentence = parts.join("; ");
    sentence.push('.');
    // A write kept by some replicas only is no drop, but the replicas
    // disagree for good (a real database's nodes can): said, not hidden.
    let mut diverged: Vec<&str> = Vec::new();
    for summary in summaries.iter().filter(|summary| summary.diverged_keys > 0) {
        if !diverged.contains(&summary.strategy.as_str()) {
            diverged.push(&summary.strategy);
        }
    }
    match diverged.as_slice() {
        [] => {}
        [one] => sentence.push_str(&format!(" {one} ends with replicas that disagree about some keys.")),
        [rest @ .., last] => sentence.push_str(&format!(
            " {} and {last} end with replicas that disagree about some keys.",
            rest.join(", ")
        )),
    }
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(point: usize, value: f64, strategy: &str, acked: usize, dropped: usize) -> PointSummary {
        PointSummary {
            point,
            parameter: "skew_ms".into(),
            value,
            strategy: strategy.into(),
            acked,
            dropped,
            dropped_percent_mean: 100.0 * dropped as f64 / acked as f64,
            ..Default::default()
        }
    }

    #[test]
    fn a_headline_names_what_each_strategy_dropped_at_the_ends_of_the_sweep() {
        let summaries = [
            point(0, 0.0, "lww-wall", 1000, 65),
            point(0, 0.0, "vv", 1000, 0),
            point(0, 0.0, "set-union", 1000, 0),
            point(1, 1000.0, "lww-wall", 1000, 524),
            point(1, 1000.0, "vv", 1000, 0),
            point(1, 1000.0, "set-union", 1000, 0),
        ];
        assert_eq!(
            headline(&summaries),
            "lww-wall drops 6.5% with every clock in step and 52.4% with clocks 1,000 ms apart; vv and set-union drop none."
        );
        assert_eq!(headline(&summaries[..2]), "lww-wall drops 6.5%; vv drops none.");
        // Replicas that end disagreeing are said, though nothing was dropped.
        let mut disagreeing = point(0, 0.0, "pg-keep-local", 100, 0);
        disagreeing.diverged_keys = 6;
        assert_eq!(
            headline(&[disagreeing, point(0, 0.0, "vv", 100, 0)]),
            "pg-keep-local and vv drop none. pg-keep-local ends with replicas that disagree about some keys."
        );
        // The strategy that lost most leads, whatever its name.
        let two = [point(0, 0.0, "a-few", 100, 1), point(0, 0.0, "many", 100, 40)];
        assert_eq!(headline(&two), "many drops 40.0%; a-few drops 1.0%.");
        assert_eq!(headline(&[]), "No writes were acknowledged.");
    }
}
