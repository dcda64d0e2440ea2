//! A two-parameter sweep as a heatmap: one panel per last-write-wins
//! strategy, the first parameter across, the second up, each cell coloured
//! by the share of acknowledged writes dropped there (white none, dark red
//! the most of any cell) and labelled with it. Strategies that keep
//! siblings or merge drop nothing, so they get no panel.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plots::{FONT, PlotError, register_font};
use crate::analysis::PointSummary;

/// The file stem of the heatmap.
pub const HEATMAP: &str = "heatmap";

/// Size of the heatmap, in pixels (PNG) or user units (SVG).
pub const HEATMAP_SIZE: (u32, u32) = (1200, 420);

/// What the heatmap shows.
pub struct HeatmapInput<'a> {
    pub experiment: &'a str,
    /// The two parameters' names.
    pub parameter: &'a str,
    pub across: &'a str,
    /// The last-write-wins strategies, in the spec's order.
    pub strategies: Vec<String>,
    pub summaries: &'a [PointSummary],
}

/// Draws `heatmap.svg` and `heatmap.png` into `dir`; returns the paths.
pub fn draw(dir: &Path, input: &HeatmapInput<'_>) -> Result<Vec<PathBuf>, PlotError> {
    register_font();
    let svg = dir.join(format!("{HEATMAP}.svg"));
    let png = dir.join(format!("{HEATMAP}.png"));
    let fail = |path: &Path, error: &dyn std::fmt::Display| PlotError {
        path: path.to_path_buf(),
        message: error.to_string(),
    };
    {
        let area = SVGBackend::new(&svg, HEATMAP_SIZE).into_drawing_area();
        draw_on(&area, input).map_err(|error| fail(&svg, &error))?;
        area.present().map_err(|error| fail(&svg, &error))?;
    }
    {
        let area = BitMapBackend::new(&png, HEATMAP_SIZE).into_drawing_area();
        draw_on(&area, input).map_err(|error| fail(&png, &error))?;
        area.present().map_err(|error| fail(&png, &error))?;
    }
    Ok(vec![svg, png])
}

/// The heatmap's section of `report.md`: the picture, what the other plots
/// show of it, and each panel's numbers as a table.
pub fn section(input: &HeatmapInput<'_>, first_across: f64) -> String {
    use std::fmt::Write as _;
    let columns = distinct(input.summaries.iter().map(|summary| summary.value));
    let rows = distinct(input.summaries.iter().filter_map(|summary| summary.across_value));
    let mut text = format!(
        "### Across {parameter} and {across}\n\n![Dropped writes for every {parameter} and {across}]({HEATMAP}.svg)\n\n\
         Every value of {parameter} was run at every value of {across}. The heatmap shows, for each \
         last-write-wins strategy, the share of acknowledged writes dropped in each pair; the line plots and \
         the paragraphs above show the row {across} = {first_across}.\n",
        parameter = input.parameter,
        across = input.across,
    );
    for strategy in &input.strategies {
        let _ = writeln!(
            text,
            "\n**{strategy}**, dropped % ({} across, {} down):\n",
            input.parameter, input.across
        );
        let header: Vec<String> = columns.iter().map(|value| value.to_string()).collect();
        let _ = writeln!(text, "| {} \\ {} | {} |", input.across, input.parameter, header.join(" | "));
        let _ = writeln!(text, "|---:|{}", "---:|".repeat(columns.len()));
        for row in &rows {
            let cells: Vec<String> = columns
                .iter()
                .map(|column| {
                    input
                        .summaries
                        .iter()
                        .find(|summary| {
                            &summary.strategy == strategy
                                && summary.value == *column
                                && summary.across_value == Some(*row)
                        })
                        .map_or_else(String::new, |summary| format!("{:.1}", summary.dropped_percent_mean))
                })
                .collect();
            let _ = writeln!(text, "| {row} | {} |", cells.join(" | "));
        }
    }
    text
}

/// The distinct values, in the order the sweep has them.
fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut seen: Vec<f64> = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// White for none, dark red for `highest`.
fn shade(percent: f64, highest: f64) -> RGBColor {
    let share = if highest > 0.0 { (percent / highest).clamp(0.0, 1.0) } else { 0.0 };
    let mix = |from: f64, to: f64| (from + (to - from) * share).round() as u8;
    RGBColor(mix(255.0, 150.0), mix(255.0, 20.0), mix(255.0, 30.0))
}

fn draw_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &HeatmapInput<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    area.fill(&WHITE)?;
    let columns = distinct(input.summaries.iter().map(|summary| summary.value));
    let rows = distinct(input.summaries.iter().filter_map(|summary| summary.across_value));
    let highest = input.summaries.iter().map(|summary| summary.dropped_percent_mean).fold(0.0, f64::max);
    let title = format!("{}: acknowledged writes dropped, % (darker: more)", input.experiment);
    let area = area.titled(&title, (FONT, 24))?;
    let panels = area.split_evenly((1, input.strategies.len().max(1)));
    for (panel, strategy) in panels.iter().zip(&input.strategies) {
        let column_labels: Vec<String> = columns.iter().map(|value| format!("{value}")).collect();
        let row_labels: Vec<String> = rows.iter().map(|value| format!("{value}")).collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(strategy, (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..columns.len() as f64, 0.0..rows.len() as f64)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(input.parameter)
            .y_desc(input.across)
            .x_labels(columns.len() * 2 + 1)
            .y_labels(rows.len() * 2 + 1)
            .x_label_formatter(&|x| label_at(&column_labels, *x))
            .y_label_formatter(&|y| label_at(&row_labels, *y))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        for summary in input.summaries.iter().filter(|summary| &summary.strategy == strategy) {
            let (Some(x), Some(y)) = (
                columns.iter().position(|value| *value == summary.value),
                summary.across_value.and_then(|across| rows.iter().position(|value| *value == across)),
            ) else {
                continue;
            };
            let (x, y) = (x as f64, y as f64);
            let percent = summary.dropped_percent_mean;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                shade(percent, highest).filled(),
            )))?;
            let ink = if percent > highest * 0.55 { WHITE } else { BLACK };
            chart.draw_series(std::iter::once(Text::new(
                format!("{percent:.1}"),
                (x + 0.3, y + 0.6),
                (FONT, 15).into_font().color(&ink),
            )))?;
        }
    }
    Ok(())
}

/// The label of the cell whose middle is at `at`, else none.
fn label_at(labels: &[String], at: f64) -> String {
    let middle = at - 0.5;
    let rounded = middle.round();
    if (middle - rounded).abs() > 0.01 || rounded < 0.0 {
        return String::new();
    }
    labels.get(rounded as usize).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_shaded_by_their_share_of_the_most_and_labelled_in_their_middle() {
        assert_eq!(shade(0.0, 50.0), RGBColor(255, 255, 255));
        assert_eq!(shade(50.0, 50.0), RGBColor(150, 20, 30));
        assert_eq!(shade(10.0, 0.0), RGBColor(255, 255, 255), "nothing dropped anywhere: all white");
        let labels = ["0".to_string(), "50".to_string()];
        assert_eq!(label_at(&labels, 0.5), "0");
        assert_eq!(label_at(&labels, 1.5), "50");
        assert_eq!(label_at(&labels, 1.0), "");
        assert_eq!(distinct([3.0, 1.0, 3.0, 2.0].into_iter()), vec![3.0, 1.0, 2.0]);
    }
}
