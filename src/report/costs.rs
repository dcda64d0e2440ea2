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

use super::plots::{DrawResult, FONT, PlotInput, draw_strategy_line};

/// The latency axis starts here, in ms, so that a 0 ms point still shows.
const LATENCY_FLOOR_MS: f64 = 0.1;

pub(super) fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, input: &PlotInput) -> DrawResult<DB> {
    let points = || input.series.iter().flat_map(|series| series.points.iter());
    let highest_drop = points().map(|point| point.dropped_percent).fold(1.0_f64, f64::max);
    let slowest = points().map(|point| point.latency_p99_ms).fold(1.0_f64, f64::max);
    let fastest = points().map(|point| point.latency_p99_ms).fold(slowest, f64::min).max(LATENCY_FLOOR_MS);
    let x_range = (fastest / 2.0)..(slowest * 2.0);
    let title = format!("{}: what each strategy lost against what it cost", input.experiment);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 26))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range.log_scale(), 0.0..(highest_drop * 1.15))?;
    chart
        .configure_mesh()
        .x_desc("write latency, 99th percentile (ms, log scale)")
        .y_desc("dropped, % of acknowledged writes")
        .x_label_formatter(&|ms| format!("{ms}"))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()?;
    for (index, series) in input.series.iter().enumerate() {
        let line: Vec<(f64, f64)> = series
            .points
            .iter()
            .map(|point| (point.latency_p99_ms.max(LATENCY_FLOOR_MS), point.dropped_percent))
            .collect();
        let siblings = series.points.iter().map(|point| point.max_siblings).max().unwrap_or(0);
        let metadata = series.points.iter().map(|point| point.metadata_bytes).fold(0.0, f64::max);
        let reads = if siblings > 1 {
            format!("reads of up to {siblings} siblings")
        } else {
            "one value per read".into()
        };
        let label = format!("{}: {reads}, {metadata:.0} bytes/write", series.strategy);
        draw_strategy_line(&mut chart, &line, label, index)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
