//! Per sweep point: the oracle's rows added up over trials.
//!
//! Plots and reports speak of a sweep point, not of single trials: the mean
//! dropped percentage across trials, its spread (the sample standard
//! deviation), the 95% confidence interval of the mean as the error bar,
//! and the counts summed.
//!
//! **The interval.** Trials are independent runs of the same point, so
//! their mean estimates the point's true drop rate. Its standard error is
//! `s / sqrt(n)` (`s` the sample standard deviation of the `n` per-trial
//! percentages), and the 95% interval is the mean plus or minus
//! `t * s / sqrt(n)`, with `t` Student's 0.975 quantile at `n - 1` degrees
//! of freedom ([`student_t_975`]): 12.71 for two trials, 2.26 for ten, 2.05
//! for thirty, tending to 1.96. With one trial there is no interval (0).
//! Two trials give an honest but wide interval; the simulator can afford
//! the thirty that make it tight.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SummaryRow;

/// One strategy at one sweep point, over all its trials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    pub point: usize,
    pub parameter: String,
    pub value: f64,
    /// A two-parameter sweep's second parameter and its value here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub across: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub across_value: Option<f64>,
    pub strategy: String,
    pub trials: usize,
    /// Write records, acknowledged or not.
    pub writes: usize,
    /// Mean over trials of 100 × dropped / acked.
    pub dropped_percent_mean: f64,
    /// Sample standard deviation of that percentage (0 for one trial).
    pub dropped_percent_deviation: f64,
    /// Half the width of the 95% confidence interval of the mean, in
    /// percentage points (0 for one trial); see the module docs.
    #[serde(default)]
    pub dropped_percent_interval: f64,
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

/// Student's t distribution's 0.975 quantile with `freedom` degrees of
/// freedom: the multiple of the standard error that a 95% interval spans
/// on each side. From the standard table up to 30; beyond, the normal
/// distribution's 1.96 is within 2% of it.
pub fn student_t_975(freedom: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042,
    ];
    match freedom {
        0 => f64::INFINITY,
        1..=30 => TABLE[freedom - 1],
        _ => 1.96,
    }
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
        across: first.across.clone(),
        across_value: first.across_value,
        strategy: first.strategy.clone(),
        trials: rows.len(),
        writes: sum(|row| row.writes),
        dropped_percent_mean: mean,
        dropped_percent_deviation: deviation,
        dropped_percent_interval: if percents.len() < 2 {
            0.0
        } else {
            student_t_975(percents.len() - 1) * deviation / count.sqrt()
        },
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
