//! Per sweep point: the oracle's rows added up over trials.
//!
//! Plots and reports speak of a sweep point, not of single trials: the mean
//! dropped percentage across trials, with its spread (the sample standard
//! deviation) as the error bar, and the counts summed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SummaryRow;

/// One strategy at one sweep point, over all its trials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    pub point: usize,
    pub parameter: String,
    pub value: f64,
    pub strategy: String,
    pub trials: usize,
    /// Write records, acknowledged or not.
    pub writes: usize,
    /// Mean over trials of 100 × dropped / acked.
    pub dropped_percent_mean: f64,
    /// Sample standard deviation of that percentage (0 for one trial).
    pub dropped_percent_deviation: f64,
    pub acked: usize,
    pub dropped: usize,
    pub dropped_causality: usize,
    pub dropped_realtime: usize,
    pub dropped_concurrent: usize,
    pub dropped_without_killer: usize,
    pub siblings: usize,
    pub max_siblings: usize,
    pub diverged_keys: usize,
    pub unacked_applied: usize,
    pub final_not_max: usize,
    /// Acknowledged writes stamped below an earlier write of their replica.
    pub stamp_regressions: usize,
    /// The longest convergence after the faults stopped, over the trials, ms.
    pub converge_ms_max: f64,
    /// The trials' median and 99th-percentile write latencies, averaged, ms.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// Writes not acknowledged, summed.
    pub failed: usize,
    /// Mean bytes of stamp and context per acknowledged write, averaged.
    pub metadata_bytes: f64,
}

/// Adds up rows per (point, strategy), in point order and first-seen
/// strategy order.
pub fn summarize(rows: &[SummaryRow]) -> Vec<PointSummary> {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: BTreeMap<(usize, usize), Vec<&SummaryRow>> = BTreeMap::new();
    for row in rows {
        let position = match order.iter().position(|strategy| *strategy == row.strategy) {
            Some(position) => position,
            None => {
                order.push(&row.strategy);
                order.len() - 1
            }
        };
        groups.entry((row.point, position)).or_default().push(row);
    }
    groups.into_values().map(|rows| summarize_point(&rows)).collect()
}

fn summarize_point(rows: &[&SummaryRow]) -> PointSummary {
    let first = rows[0];
    let percents: Vec<f64> = rows
        .iter()
        .map(|row| if row.acked == 0 { 0.0 } else { 100.0 * row.dropped as f64 / row.acked as f64 })
        .collect();
    let count = percents.len() as f64;
    let mean = percents.iter().sum::<f64>() / count;
    let deviation = if percents.len() < 2 {
        0.0
    } else {
        (percents.iter().map(|percent| (percent - mean).powi(2)).sum::<f64>() / (count - 1.0)).sqrt()
    };
    let sum = |field: fn(&SummaryRow) -> usize| rows.iter().map(|row| field(row)).sum();
    PointSummary {
        point: first.point,
        parameter: first.parameter.clone(),
        value: first.value,
        strategy: first.strategy.clone(),
        trials: rows.len(),
        writes: sum(|row| row.writes),
        dropped_percent_mean: mean,
        dropped_percent_deviation: deviation,
        acked: sum(|row| row.acked),
        dropped: sum(|row| row.dropped),
        dropped_causality: sum(|row| row.dropped_causality),
        dropped_realtime: sum(|row| row.dropped_realtime),
        dropped_concurrent: sum(|row| row.dropped_concurrent),
        dropped_without_killer: sum(|row| row.dropped_without_killer),
        siblings: sum(|row| row.siblings),
        max_siblings: rows.iter().map(|row| row.max_siblings).max().unwrap_or(0),
        diverged_keys: sum(|row| row.diverged_keys),
        unacked_applied: sum(|row| row.unacked_applied),
        final_not_max: sum(|row| row.final_not_max),
        stamp_regressions: sum(|row| row.stamp_regressions),
        converge_ms_max: rows.iter().map(|row| row.converge_ms).fold(0.0, f64::max),
        latency_p50_ms: rows.iter().map(|row| row.latency_p50_ms).sum::<f64>() / count,
        latency_p99_ms: rows.iter().map(|row| row.latency_p99_ms).sum::<f64>() / count,
        failed: sum(|row| row.failed),
        metadata_bytes: rows.iter().map(|row| row.metadata_bytes).sum::<f64>() / count,
    }
}
