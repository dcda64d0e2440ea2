//! Two runs of one experiment in one picture and one table: each
//! strategy's drop rate in both, with error bars, and whether they agree
//! (see [`crate::analysis::compare`]). `clocklab validate` draws real
//! processes against the simulator this way.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::plots::{FONT, PLOT_SIZE, PlotError, draw_markers, register_font, style_of};
use crate::analysis::compare::{AGREEMENT_ERRORS, AGREEMENT_FLOOR, Agreement};

/// The file stem of the comparison plot.
pub const PLOT: &str = "comparison";

/// What the two runs are called, in the plot and the table.
pub struct Names<'a> {
    pub experiment: &'a str,
    pub parameter: &'a str,
    pub first: &'a str,
    pub second: &'a str,
}

/// Draws `comparison.svg` and `comparison.png` into `dir`: per strategy, the
/// first run as a solid line and the second as a dashed one, each with
/// error bars of two standard errors.
pub fn draw(dir: &Path, names: &Names<'_>, agreements: &[Agreement]) -> Result<Vec<PathBuf>, PlotError> {
    register_font();
    let svg = dir.join(format!("{PLOT}.svg"));
    let png = dir.join(format!("{PLOT}.png"));
    let fail = |path: &Path, error: &dyn std::fmt::Display| PlotError {
        path: path.to_path_buf(),
        message: error.to_string(),
    };
    let text = self::svg(names, agreements).map_err(|error| fail(&svg, &error.message))?;
    std::fs::write(&svg, text).map_err(|error| fail(&svg, &error))?;
    {
        let area = BitMapBackend::new(&png, PLOT_SIZE).into_drawing_area();
        draw_on(&area, names, agreements).map_err(|error| fail(&png, &error))?;
        area.present().map_err(|error| fail(&png, &error))?;
    }
    Ok(vec![svg, png])
}

/// The same plot as SVG text, for a page that asks for it.
pub fn svg(names: &Names<'_>, agreements: &[Agreement]) -> Result<String, PlotError> {
    register_font();
    let mut text = String::new();
    let fail = |error: &dyn std::fmt::Display| PlotError {
        path: PathBuf::from(format!("{PLOT}.svg")),
        message: error.to_string(),
    };
    {
        let area = SVGBackend::with_string(&mut text, PLOT_SIZE).into_drawing_area();
        draw_on(&area, names, agreements).map_err(|error| fail(&error))?;
        area.present().map_err(|error| fail(&error))?;
    }
    Ok(text)
}

fn draw_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &Names<'_>,
    agreements: &[Agreement],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    area.fill(&WHITE)?;
    let mut values: Vec<(usize, f64)> = agreements.iter().map(|row| (row.point, row.value)).collect();
    values.sort_by_key(|(point, _)| *point);
    values.dedup_by_key(|(point, _)| *point);
    let mut strategies: Vec<&str> = agreements.iter().map(|row| row.strategy.as_str()).collect();
    strategies.sort();
    strategies.dedup();
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
    let title = format!("{}: {} (solid) against {} (dashed)", names.experiment, names.first, names.second);
    let labels: Vec<String> = values.iter().map(|(_, value)| format!("{value}")).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 24))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.5..(values.len() as f64 - 0.5), 0.0..(highest * 1.1))?;
    chart
        .configure_mesh()
        .x_desc(names.parameter)
        .y_desc("dropped, % of acknowledged writes")
        .x_labels(values.len().max(2) * 2 + 1)
        .x_label_formatter(&|index| {
            let rounded = index.round();
            if (index - rounded).abs() > 0.01 || rounded < 0.0 {
                return String::new();
            }
            labels.get(rounded as usize).cloned().unwrap_or_default()
        })
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()?;
    for (index, strategy) in strategies.iter().enumerate() {
        let (colour, marker) = style_of(index);
        let rows: Vec<&Agreement> = agreements.iter().filter(|row| row.strategy == *strategy).collect();
        let x_of =
            |row: &Agreement| values.iter().position(|(point, _)| *point == row.point).unwrap_or(0) as f64;
        for (second, offset) in [(false, -0.06), (true, 0.06)] {
            let line: Vec<(f64, f64)> = rows
                .iter()
                .map(|row| {
                    let rate = if second { row.second.rate } else { row.first.rate };
                    (x_of(row) + offset, rate * 100.0)
                })
                .collect();
            let style = colour.stroke_width(if second { 2 } else { 3 });
            if second {
                chart.draw_series(
                    line.windows(2).map(|pair| DashedPathElement::new(pair.to_vec(), 8_i32, 6_i32, style)),
                )?;
            } else {
                chart
                    .draw_series(line.windows(2).map(|pair| PathElement::new(pair.to_vec(), style)))?
                    .label(strategy.to_string())
                    .legend(move |at| {
                        EmptyElement::at(at) + PathElement::new(vec![(0, 0), (24, 0)], colour.stroke_width(3))
                    });
            }
            draw_markers(&mut chart, &line, marker, colour, if second { 4 } else { 5 })?;
            chart.draw_series(rows.iter().map(|row| {
                let rate = if second { row.second } else { row.first };
                let (mid, error) = (rate.rate * 100.0, 2.0 * rate.standard_error * 100.0);
                ErrorBar::new_vertical(x_of(row) + offset, (mid - error).max(0.0), mid, mid + error, style, 8)
            }))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
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
