//! A two-parameter sweep as a heatmap: one panel per last-write-wins
//! strategy, the first parameter across, the second up, each cell coloured
//! by the share of acknowledged writes dropped there (white none, dark red
//! the most of any cell) and labelled with it. Strategies that keep
//! siblings or merge drop nothing, so they get no panel.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plots::{AXIS_PX, DrawResult, NOTE_PX, PANEL_TITLE_PX, TEXT_PX, font, titled};
use crate::analysis::PointSummary;
use crate::experiment::spec::{Parameter, shown_number};

/// The file stem of the heatmap.
pub const HEATMAP: &str = "heatmap";

/// A panel's size, in pixels: the narrowest before panels wrap into rows,
/// and the height of a row.
const PANEL_WIDTH: u32 = 300;
const PANEL_HEIGHT: u32 = 340;

/// What the heatmap shows.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapInput {
    pub experiment: String,
    /// The two parameters' names.
    pub parameter: String,
    pub across: String,
    /// The last-write-wins strategies, in the spec's order.
    pub strategies: Vec<String>,
    pub summaries: Vec<PointSummary>,
}

/// A parameter's short description, by its name.
fn short(name: &str) -> &str {
    match Parameter::from_name(name) {
        Some(parameter) => parameter.short_label(),
        None => name,
    }
}

/// How tall the heatmap is at `width`.
pub fn height(input: &HeatmapInput, width: u32) -> u32 {
    let (rows, _) = super::sweep::grid_of(input.strategies.len(), width, PANEL_WIDTH);
    40 + rows as u32 * PANEL_HEIGHT
}

/// The heatmap's section of `report.md`: the picture, what the other plots
/// show of it, and each panel's numbers as a table.
pub fn section(input: &HeatmapInput, first_across: f64) -> String {
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

pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &HeatmapInput,
) -> DrawResult<DB> {
    let columns = distinct(input.summaries.iter().map(|summary| summary.value));
    let rows = distinct(input.summaries.iter().filter_map(|summary| summary.across_value));
    let highest = input.summaries.iter().map(|summary| summary.dropped_percent_mean).fold(0.0, f64::max);
    let body = titled(area, &format!("{}: acknowledged writes dropped, % (darker: more)", input.experiment))?;
    let grid = super::sweep::grid_of(input.strategies.len(), body.dim_in_pixel().0, PANEL_WIDTH);
    let panels = body.split_evenly(grid);
    let column_labels: Vec<String> = columns.iter().map(|&value| shown_number(value)).collect();
    let row_labels: Vec<String> = rows.iter().map(|&value| shown_number(value)).collect();
    for (panel, strategy) in panels.iter().zip(&input.strategies) {
        let mut chart = ChartBuilder::on(panel)
            .caption(strategy, font(PANEL_TITLE_PX))
            .margin(10)
            .x_label_area_size(56)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..columns.len() as f64, 0.0..rows.len() as f64)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(short(&input.parameter))
            .y_desc(short(&input.across))
            .x_labels(columns.len() * 2 + 1)
            .y_labels(rows.len() * 2 + 1)
            .x_label_formatter(&|x| label_at(&column_labels, *x))
            .y_label_formatter(&|y| label_at(&row_labels, *y))
            .label_style(font(TEXT_PX))
            .axis_desc_style(font(AXIS_PX))
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
            let style = font(NOTE_PX).color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(
                format!("{percent:.0}"),
                (x + 0.5, y + 0.5),
                style,
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
