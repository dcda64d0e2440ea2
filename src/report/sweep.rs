//! The plots against the swept parameter:
//!
//! - `dropped`: silently dropped writes as a percentage of acknowledged
//!   ones, one line per strategy, with error bars spanning the 95%
//!   confidence interval of the mean over trials (none for one trial; see
//!   `analysis::summary`); lines that coincide (three strategies that all
//!   drop nothing) show as nested markers and a note naming them;
//! - `causes`: for each last-write-wins strategy, its drops split by cause
//!   (causality violation, real-time violation, concurrent overwrite), as
//!   stacked bars, one panel each, as many side by side as the width holds;
//! - `siblings`: for sibling-keeping strategies, how many reads surfaced
//!   siblings (conflicts handed to the client instead of dropped) and the
//!   most siblings at once.
//!
//! Each lays itself out for the area it is given; [`height`] says how tall
//! an area of a given width it needs.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plots::{
    DrawResult, Frame, LegendEntry, PlotInput, StrategySeries, Swatch, draw_legend, draw_strategy_lines,
    legend_height, line_entries, sweep_chart, titled, with_legend,
};
use crate::analysis::Cause;
use crate::experiment::spec::Spec;

/// The sweep plots' names, main plot first.
pub const DROPPED: &str = "dropped";
pub const CAUSES: &str = "causes";
pub const SIBLINGS: &str = "siblings";

/// Heights, in pixels: the title strip; a chart over the whole width (a
/// share of it, within bounds); one panel of several.
const TITLE_STRIP: u32 = 40;
const PANEL_HEIGHT: u32 = 330;
/// The narrowest a panel may be before panels wrap into rows.
const PANEL_WIDTH: u32 = 340;

/// A chart's height for a plot `width` wide.
pub fn chart_height(width: u32) -> u32 {
    ((f64::from(width) * 0.55) as u32).clamp(320, 560)
}

/// Lines agreeing within a twentieth of a percentage point look as one.
const SAME_PERCENT: f64 = 0.05;

/// Each strategy's dropped percentages, at their places on the axis.
fn dropped_lines(input: &PlotInput) -> Vec<(String, Vec<(f64, f64)>)> {
    let axis = input.axis();
    input
        .series
        .iter()
        .map(|series| {
            let line =
                series.points.iter().enumerate().map(|(x, point)| (axis.place(x), point.dropped_percent));
            (series.strategy.clone(), line.collect())
        })
        .collect()
}

/// Each sibling-keeping strategy's most siblings, at their places on the axis.
fn siblings_lines(input: &PlotInput) -> Vec<(String, Vec<(f64, f64)>)> {
    let axis = input.axis();
    keeping(input)
        .iter()
        .map(|series| {
            let line =
                series.points.iter().enumerate().map(|(x, point)| (axis.place(x), point.max_siblings as f64));
            (series.strategy.clone(), line.collect())
        })
        .collect()
}

fn cause_entries() -> Vec<LegendEntry> {
    Cause::ALL
        .iter()
        .map(|&cause| LegendEntry { swatch: Swatch::Fill(cause_colour(cause)), label: cause.label().into() })
        .collect()
}

/// The dark one for causality violations, the lesson of Figure 8-3.
fn cause_colour(cause: Cause) -> RGBColor {
    match cause {
        Cause::Causality => RGBColor(120, 28, 28),
        Cause::Realtime => RGBColor(230, 159, 0),
        Cause::Concurrent => RGBColor(150, 150, 150),
    }
}

/// Rows and columns of `panels` panels across `width`.
pub(super) fn grid(panels: usize, width: u32) -> (usize, usize) {
    grid_of(panels, width, PANEL_WIDTH)
}

/// Rows and columns of `panels` panels, each at least `panel_width` wide, across `width`.
pub(super) fn grid_of(panels: usize, width: u32, panel_width: u32) -> (usize, usize) {
    let columns = ((width / panel_width.max(1)) as usize).clamp(1, panels.max(1));
    (panels.max(1).div_ceil(columns), columns)
}

fn keeping(input: &PlotInput) -> Vec<&StrategySeries> {
    input.series.iter().filter(|series| !series.last_write_wins).collect()
}

fn last_write_wins(input: &PlotInput) -> Vec<&StrategySeries> {
    input.series.iter().filter(|series| series.last_write_wins).collect()
}

/// Whether the siblings plot puts its two panels side by side.
fn siblings_side_by_side(width: u32) -> bool {
    width >= 2 * PANEL_WIDTH + 80
}

/// How tall plot `name` is at `width`.
pub fn height(name: &str, input: &PlotInput, width: u32) -> u32 {
    match name {
        CAUSES => {
            let (rows, _) = grid(last_write_wins(input).len(), width);
            TITLE_STRIP + rows as u32 * PANEL_HEIGHT + legend_height(&cause_entries(), width)
        }
        SIBLINGS => {
            let panels = if siblings_side_by_side(width) { 1 } else { 2 };
            TITLE_STRIP
                + panels * PANEL_HEIGHT
                + legend_height(&line_entries(&siblings_lines(input), 0.0), width)
        }
        _ => {
            TITLE_STRIP
                + chart_height(width)
                + legend_height(&line_entries(&dropped_lines(input), SAME_PERCENT), width)
        }
    }
}

pub(super) fn draw_dropped<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &PlotInput,
) -> DrawResult<DB> {
    let body = titled(area, &format!("{}: acknowledged writes silently dropped", input.experiment))?;
    let lines = dropped_lines(input);
    let entries = line_entries(&lines, SAME_PERCENT);
    let (chart_area, legend_area) = with_legend(&body, &entries);
    let highest = input
        .series
        .iter()
        .flat_map(|series| series.points.iter())
        .map(|point| point.dropped_percent + point.dropped_percent_interval)
        .fold(1.0_f64, f64::max);
    let frame = Frame { title: None, x_desc: input.axis_label(), y_desc: "% dropped" };
    let mut chart = sweep_chart(&chart_area, &frame, input, highest)?;
    let axis = input.axis();
    for series in &input.series {
        let colour = super::palette::style_of(&series.strategy).colour;
        chart.draw_series(
            series.points.iter().enumerate().filter(|(_, point)| point.dropped_percent_interval > 0.0).map(
                |(x, point)| {
                    let low = (point.dropped_percent - point.dropped_percent_interval).max(0.0);
                    let high = point.dropped_percent + point.dropped_percent_interval;
                    ErrorBar::new_vertical(
                        axis.place(x),
                        low,
                        point.dropped_percent,
                        high,
                        colour.stroke_width(2),
                        10,
                    )
                },
            ),
        )?;
    }
    draw_strategy_lines(&mut chart, &lines, SAME_PERCENT)?;
    draw_legend(&legend_area, &entries)
}

/// The gap between the two closest sweep values, in axis units: bars are
/// drawn narrower than it.
fn bar_room(input: &PlotInput) -> f64 {
    let axis = input.axis();
    let mut places: Vec<f64> = (0..input.values().len()).map(|index| axis.place(index)).collect();
    places.sort_by(f64::total_cmp);
    let range = axis.range();
    places.windows(2).map(|pair| pair[1] - pair[0]).fold((range.end - range.start) / 3.0, f64::min)
}

pub(super) fn draw_causes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &PlotInput,
) -> DrawResult<DB> {
    let lww = last_write_wins(input);
    let body = titled(area, &format!("{}: why last-write-wins dropped writes", input.experiment))?;
    let entries = cause_entries();
    let (panels_area, legend_area) = with_legend(&body, &entries);
    let (rows, columns) = grid(lww.len(), panels_area.dim_in_pixel().0);
    let panels = panels_area.split_evenly((rows, columns));
    let highest = lww
        .iter()
        .flat_map(|series| series.points.iter())
        .map(|point| point.causality_percent + point.realtime_percent + point.concurrent_percent)
        .fold(1.0_f64, f64::max);
    let axis = input.axis();
    let half = bar_room(input) * 0.35;
    let x_desc = input.parameter.map_or(input.parameter_name.as_str(), |parameter| parameter.short_label());
    for (panel, series) in panels.iter().zip(&lww) {
        let frame = Frame { title: Some(&series.strategy), x_desc, y_desc: "% dropped" };
        let mut chart = sweep_chart(panel, &frame, input, highest)?;
        for (index, &cause) in Cause::ALL.iter().enumerate() {
            let colour = cause_colour(cause);
            let bars = series.points.iter().enumerate().map(|(x, point)| {
                let parts = [point.causality_percent, point.realtime_percent, point.concurrent_percent];
                let bottom: f64 = parts[..index].iter().sum();
                let top = bottom + parts[index];
                let at = axis.place(x);
                Rectangle::new([(at - half, bottom), (at + half, top)], colour.filled())
            });
            chart.draw_series(bars)?;
        }
    }
    draw_legend(&legend_area, &entries)
}

pub(super) fn draw_siblings<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &PlotInput,
) -> DrawResult<DB> {
    let keeping = keeping(input);
    let body = titled(area, &format!("{}: conflicts kept as siblings instead of dropped", input.experiment))?;
    let lines = siblings_lines(input);
    let entries = line_entries(&lines, 0.0);
    let (panels_area, legend_area) = with_legend(&body, &entries);
    let (width, height) = panels_area.dim_in_pixel();
    let (left, right) = if siblings_side_by_side(width) {
        panels_area.split_horizontally(width / 2)
    } else {
        panels_area.split_vertically(height / 2)
    };
    let x_desc = input.parameter.map_or(input.parameter_name.as_str(), |parameter| parameter.short_label());
    let axis = input.axis();
    // Left: how often reads handed siblings back, bars side by side.
    let highest = keeping
        .iter()
        .flat_map(|series| series.points.iter())
        .map(|point| point.siblings_per_trial)
        .fold(1.0_f64, f64::max);
    let frame =
        Frame { title: Some("how often: reads that returned siblings"), x_desc, y_desc: "reads per trial" };
    let mut chart = sweep_chart(&left, &frame, input, highest)?;
    let room = bar_room(input) * 0.8;
    let width_each = room / keeping.len().max(1) as f64;
    for (slot, series) in keeping.iter().enumerate() {
        let colour = super::palette::style_of(&series.strategy).colour;
        let offset = -room / 2.0 + width_each * slot as f64;
        let bars = series.points.iter().enumerate().map(|(x, point)| {
            let left = axis.place(x) + offset;
            Rectangle::new(
                [(left, 0.0), (left + width_each * 0.9, point.siblings_per_trial)],
                colour.filled(),
            )
        });
        chart.draw_series(bars)?;
    }
    // Right: how many at once, the burden a single read hands over.
    let most = keeping
        .iter()
        .flat_map(|series| series.points.iter().map(|point| point.max_siblings))
        .max()
        .unwrap_or(1)
        .max(1);
    let frame =
        Frame { title: Some("how many: the most siblings at once"), x_desc, y_desc: "siblings at most" };
    let mut chart = sweep_chart(&right, &frame, input, most as f64)?;
    draw_strategy_lines(&mut chart, &lines, 0.0)?;
    draw_legend(&legend_area, &entries)
}

/// The sweep point with the largest value (by size; the first of equals),
/// whose first trial the time plots show, and a title naming it in words.
pub(super) fn largest_point(spec: &Spec) -> Option<(usize, String)> {
    let values = &spec.sweep.values;
    let point =
        (0..values.len()).max_by(|&a, &b| values[a].abs().total_cmp(&values[b].abs()).then(b.cmp(&a)))?;
    Some((point, format!("one trial {}", spec.phrase_at(values[point]))))
}
