//! The `costs` plot: what each strategy lost against what it cost.
//!
//! No strategy is free. Last-write-wins on wall clocks costs nothing per
//! write and loses writes to skew; `truetime` loses none while its bound
//! holds and pays `2 * epsilon` on every write; `vv` and `vv-server` lose
//! none and hand the application siblings to merge, and metadata to keep;
//! `set-union` loses none and accepts only sets. The plot puts the first two
//! axes of that trade side by side: dropped writes (y) against the 99th
//! percentile write latency (x, logarithmic, since commit wait costs orders
//! of magnitude more than a local commit). Each strategy is one line through
//! its sweep points, in sweep order, with its own colour and marker; its
//! legend entry names the other two costs, the most siblings a read handed
//! back and the mean metadata bytes per write.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plots::{
    AXIS_PX, DrawResult, LegendEntry, PlotInput, TEXT_PX, draw_legend, draw_strategy_lines, font,
    legend_height, titled, with_legend,
};

/// The latency axis starts here, in ms, so that a 0 ms point still shows.
const LATENCY_FLOOR_MS: f64 = 0.1;

/// Each strategy, with the other two costs in its words.
fn entries(input: &PlotInput) -> Vec<LegendEntry> {
    input
        .series
        .iter()
        .map(|series| {
            let siblings = series.points.iter().map(|point| point.max_siblings).max().unwrap_or(0);
            let metadata = series.points.iter().map(|point| point.metadata_bytes).fold(0.0, f64::max);
            let reads = if siblings > 1 {
                format!("up to {siblings} siblings a read")
            } else {
                "one value a read".into()
            };
            LegendEntry::strategy(
                &series.strategy,
                format!("{}: {reads}, {metadata:.0} bytes/write", series.strategy),
            )
        })
        .collect()
}

/// How tall the plot is at `width`.
pub fn height(input: &PlotInput, width: u32) -> u32 {
    40 + super::sweep::chart_height(width) + legend_height(&entries(input), width)
}

pub(super) fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, input: &PlotInput) -> DrawResult<DB> {
    let points = || input.series.iter().flat_map(|series| series.points.iter());
    let highest_drop = points().map(|point| point.dropped_percent).fold(1.0_f64, f64::max);
    let slowest = points().map(|point| point.latency_p99_ms).fold(1.0_f64, f64::max);
    let fastest = points().map(|point| point.latency_p99_ms).fold(slowest, f64::min).max(LATENCY_FLOOR_MS);
    let x_range = (fastest / 2.0)..(slowest * 2.0);
    let body = titled(area, &format!("{}: what each strategy lost against what it cost", input.experiment))?;
    let entries = entries(input);
    let (chart_area, legend_area) = with_legend(&body, &entries);
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(12)
        .margin_right(24)
        .x_label_area_size(62)
        .y_label_area_size(74)
        .build_cartesian_2d(x_range.log_scale(), 0.0..(highest_drop * 1.15))?;
    chart
        .configure_mesh()
        .x_desc("write latency, 99th percentile (ms, log scale)")
        .y_desc("% dropped")
        .x_label_formatter(&|ms| crate::experiment::spec::shown_number(*ms))
        .x_labels(6)
        .y_labels(6)
        .max_light_lines(2)
        .label_style(font(TEXT_PX))
        .axis_desc_style(font(AXIS_PX))
        .draw()?;
    let lines: Vec<(String, Vec<(f64, f64)>)> = input
        .series
        .iter()
        .map(|series| {
            let line = series
                .points
                .iter()
                .map(|point| (point.latency_p99_ms.max(LATENCY_FLOOR_MS), point.dropped_percent));
            (series.strategy.clone(), line.collect())
        })
        .collect();
    draw_strategy_lines(&mut chart, &lines, 0.0)?;
    draw_legend(&legend_area, &entries)
}
