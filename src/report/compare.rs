//! Two runs of one experiment in one picture and one table: each
//! strategy's drop rate in both, with error bars, and whether they agree
//! (see [`crate::analysis::compare`]). `clocklab validate` draws real
//! processes against the simulator this way.

use std::fmt::Write as _;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::axis::SweepAxis;
use super::palette::style_of;
use super::plots::{
    AXIS_PX, DrawResult, LegendEntry, MARKER_SIZE, Swatch, TEXT_PX, draw_legend, draw_markers, font,
    legend_height, titled, with_legend,
};
use crate::analysis::compare::{AGREEMENT_ERRORS, AGREEMENT_FLOOR, Agreement};
use crate::experiment::spec::Parameter;

/// The file stem of the comparison plot.
pub const PLOT: &str = "comparison";

/// What the two runs are called, in the plot and the table.
pub struct Names<'a> {
    pub experiment: &'a str,
    pub parameter: &'a str,
    pub first: &'a str,
    pub second: &'a str,
}

/// The strategies compared, in name order.
fn strategies(agreements: &[Agreement]) -> Vec<&str> {
    let mut strategies: Vec<&str> = agreements.iter().map(|row| row.strategy.as_str()).collect();
    strategies.sort();
    strategies.dedup();
    strategies
}

fn entries(names: &Names<'_>, agreements: &[Agreement]) -> Vec<LegendEntry> {
    let mut entries: Vec<LegendEntry> = strategies(agreements)
        .into_iter()
        .map(|strategy| LegendEntry::strategy(strategy, strategy))
        .collect();
    entries.push(LegendEntry { swatch: Swatch::Line(BLACK), label: format!("solid: {}", names.first) });
    entries.push(LegendEntry { swatch: Swatch::Dashed(BLACK), label: format!("dashed: {}", names.second) });
    entries
}

/// How tall the plot is at `width`.
pub fn height(names: &Names<'_>, agreements: &[Agreement], width: u32) -> u32 {
    40 + super::sweep::chart_height(width) + legend_height(&entries(names, agreements), width)
}

/// Per strategy, the first run as a solid line and the second as a dashed
/// one, each with error bars of two standard errors.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &Names<'_>,
    agreements: &[Agreement],
) -> DrawResult<DB> {
    let mut values: Vec<(usize, f64)> = agreements.iter().map(|row| (row.point, row.value)).collect();
    values.sort_by_key(|(point, _)| *point);
    values.dedup_by_key(|(point, _)| *point);
    let axis = SweepAxis::new(
        Parameter::from_name(names.parameter),
        &values.iter().map(|(_, value)| *value).collect::<Vec<_>>(),
    );
    let highest = agreements
        .iter()
        .flat_map(|row| {
            [
                row.first.rate + 2.0 * row.first.standard_error,
                row.second.rate + 2.0 * row.second.standard_error,
            ]
        })
        .fold(0.01_f64, f64::max)
        * 100.0;
    let body = titled(area, &format!("{}: two runs side by side", names.experiment))?;
    let entries = entries(names, agreements);
    let (chart_area, legend_area) = with_legend(&body, &entries);
    let range = axis.range();
    let (width, _) = chart_area.dim_in_pixel();
    let pixels_per_unit = f64::from(width.saturating_sub(110).max(1)) / (range.end - range.start);
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(12)
        .margin_right(24)
        .x_label_area_size(62)
        .y_label_area_size(74)
        .build_cartesian_2d(super::plots::SweepCoord::new(&axis), 0.0..(highest * 1.1))?;
    let parameter = match Parameter::from_name(names.parameter) {
        Some(parameter) => parameter.short_label().to_string(),
        None => names.parameter.to_string(),
    };
    chart
        .configure_mesh()
        .x_desc(format!("{parameter}{}", axis.note()))
        .y_desc("% dropped")
        .x_label_formatter(&|place| axis.label_at(*place, pixels_per_unit, TEXT_PX))
        .y_labels(6)
        .label_style(font(TEXT_PX))
        .axis_desc_style(font(AXIS_PX))
        .draw()?;
    // The two runs' points sit a little apart, so that both error bars show.
    let nudge = (range.end - range.start) * 0.006;
    for strategy in strategies(agreements) {
        let style = style_of(strategy);
        let rows: Vec<&Agreement> = agreements.iter().filter(|row| row.strategy == strategy).collect();
        let x_of = |row: &Agreement| {
            axis.place(values.iter().position(|(point, _)| *point == row.point).unwrap_or(0))
        };
        for (second, offset) in [(false, -nudge), (true, nudge)] {
            let line: Vec<(f64, f64)> = rows
                .iter()
                .map(|row| {
                    let rate = if second { row.second.rate } else { row.first.rate };
                    (x_of(row) + offset, rate * 100.0)
                })
                .collect();
            let stroke = style.colour.stroke_width(if second { 2 } else { 3 });
            if second {
                chart.draw_series(
                    line.windows(2).map(|pair| DashedPathElement::new(pair.to_vec(), 8_i32, 6_i32, stroke)),
                )?;
            } else {
                chart.draw_series(line.windows(2).map(|pair| PathElement::new(pair.to_vec(), stroke)))?;
            }
            draw_markers(&mut chart, &line, style, if second { MARKER_SIZE - 2 } else { MARKER_SIZE })?;
            chart.draw_series(rows.iter().map(|row| {
                let rate = if second { row.second } else { row.first };
                let (mid, error) = (rate.rate * 100.0, 2.0 * rate.standard_error * 100.0);
                ErrorBar::new_vertical(
                    x_of(row) + offset,
                    (mid - error).max(0.0),
                    mid,
                    mid + error,
                    stroke,
                    8,
                )
            }))?;
        }
    }
    draw_legend(&legend_area, &entries)
}

/// The comparison as a Markdown table, with a sentence saying how to read it.
pub fn table(names: &Names<'_>, agreements: &[Agreement]) -> String {
    let mut text = String::new();
    let agreeing = agreements.iter().filter(|row| row.agrees).count();
    let _ = writeln!(
        text,
        "{agreeing} of {} points and strategies agree: their drop rates differ by at most {:.0} percentage \
         points or {AGREEMENT_ERRORS:.0} standard errors of the difference, whichever is larger.\n",
        agreements.len(),
        AGREEMENT_FLOOR * 100.0
    );
    let _ = writeln!(
        text,
        "| {} | strategy | {} dropped | {} dropped | difference | allowed | agrees |",
        names.parameter, names.first, names.second
    );
    text.push_str("|---:|---|---:|---:|---:|---:|:---:|\n");
    for row in agreements {
        let rate = |rate: &crate::analysis::compare::Rate| {
            format!("{:.1}% ± {:.1} ({} trials)", rate.rate * 100.0, rate.standard_error * 100.0, rate.trials)
        };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {:+.1} | {:.1} | {} |",
            row.value,
            row.strategy,
            rate(&row.first),
            rate(&row.second),
            row.difference * 100.0,
            row.allowed * 100.0,
            if row.agrees { "yes" } else { "**no**" }
        );
    }
    text
}
