//! What every plot shares: text sizes a projector's back row can read,
//! strategies' colours and markers, legends that never hide data, and the
//! sweep axis.
//!
//! The pictures themselves are in [`super::sweep`] (dropped writes, their
//! causes, siblings), [`super::costs`], [`super::timeline`],
//! [`super::offsets`], [`super::heatmap`] and [`super::compare`]; each
//! draws on an area of any size and lays itself out for it, so the
//! dashboard can ask for a plot at exactly the width it shows it
//! ([`super::figures`]) and every label is drawn at its stated size.
//!
//! **Text.** Sizes here are what a reader sees, in CSS pixels when the plot
//! is shown at its own size: nothing smaller than [`SMALLEST_TEXT_PX`].
//! (plotters shrinks every font it is given by 1.24; [`font`] undoes that,
//! so an SVG's `font-size` is the size named here.)
//!
//! **Legends** sit in a strip below the chart, as many rows as the entries
//! need at that width, never over the data.
//!
//! plotters draws text in PNGs with a font it is given: on a machine with no
//! fonts configured it would otherwise draw none. So the lab carries DejaVu
//! Sans (assets/fonts, Bitstream Vera licence) and registers it once.

use std::path::PathBuf;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontDesc;

use super::palette::{Marker, Style, style_of};

/// The size of a plot drawn to a file, in pixels (PNG) or user units (SVG):
/// about the width a README or a report shows it at, so it is seen at its
/// own size.
pub const PLOT_SIZE: (u32, u32) = (880, 520);
/// The font family every label uses.
pub const FONT: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Text sizes, in pixels as displayed.
pub const TITLE_PX: f64 = 21.0;
pub const PANEL_TITLE_PX: f64 = 19.0;
pub const AXIS_PX: f64 = 18.0;
pub const TEXT_PX: f64 = 17.0;
/// Notes inside a chart (a fault's name on its band, a cell's number).
pub const NOTE_PX: f64 = 16.0;
/// No plot text is smaller than this (a test reads every plot's SVG).
pub const SMALLEST_TEXT_PX: f64 = NOTE_PX;

/// plotters draws a font given at size `s` with `s / 1.24` pixels per em.
const PLOTTERS_FONT_SCALE: f64 = 1.24;

/// The font for text of `px` pixels.
pub fn font(px: f64) -> FontDesc<'static> {
    (FONT, px * PLOTTERS_FONT_SCALE).into_font()
}

/// How wide `text` is at `px`, in pixels (measured with the plot font;
/// estimated if it cannot be).
pub fn text_width(text: &str, px: f64) -> u32 {
    register_font();
    font(px).box_size(text).map_or((text.chars().count() as f64 * px * 0.62).ceil() as u32, |(w, _)| w)
}

/// One strategy's numbers at one sweep point (averaged over trials).
#[derive(Debug, Clone, PartialEq)]
pub struct PointFigures {
    pub value: f64,
    pub dropped_percent: f64,
    /// Half the 95% confidence interval of the mean over trials, in
    /// percentage points (0 for one trial).
    pub dropped_percent_interval: f64,
    pub causality_percent: f64,
    pub realtime_percent: f64,
    pub concurrent_percent: f64,
    /// Reads that surfaced more than one sibling, per trial.
    pub siblings_per_trial: f64,
    pub max_siblings: usize,
    /// What the strategy cost at this point (see `analysis::PointSummary`).
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub metadata_bytes: f64,
}

/// One strategy across the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategySeries {
    pub strategy: String,
    /// Whether it keeps one write per key (last write wins).
    pub last_write_wins: bool,
    pub points: Vec<PointFigures>,
}

/// What the sweep plots show, and how the x axis is labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotInput {
    pub experiment: String,
    /// The swept parameter (`None`: one this build does not know).
    pub parameter: Option<crate::experiment::spec::Parameter>,
    /// The swept parameter's short name (`skew_ms`).
    pub parameter_name: String,
    pub series: Vec<StrategySeries>,
}

impl PlotInput {
    /// The x axis's description: the swept parameter and its unit.
    pub fn axis_label(&self) -> &str {
        self.parameter.map_or(self.parameter_name.as_str(), |parameter| parameter.axis_label())
    }

    /// The sweep's values, in its order.
    pub fn values(&self) -> Vec<f64> {
        self.series
            .first()
            .map(|series| series.points.iter().map(|point| point.value).collect())
            .unwrap_or_default()
    }

    pub fn axis(&self) -> super::axis::SweepAxis {
        super::axis::SweepAxis::new(self.parameter, &self.values())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct PlotError {
    pub(super) path: PathBuf,
    pub(super) message: String,
}

impl PlotError {
    pub(super) fn new(path: impl Into<PathBuf>, message: &dyn std::fmt::Display) -> Self {
        Self { path: path.into(), message: message.to_string() }
    }
}

pub(super) fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            tracing::error!("the bundled font could not be loaded; PNG plots will have no text");
        }
    });
}

pub(super) type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The outline of `marker` of radius `size` around (0, 0), in pixels.
fn outline(marker: Marker, size: i32) -> Vec<(i32, i32)> {
    let polygon = |corners: usize, radius: f64, turn: f64| -> Vec<(i32, i32)> {
        (0..corners)
            .map(|corner| {
                let angle = turn + std::f64::consts::TAU * corner as f64 / corners as f64;
                ((radius * angle.sin()).round() as i32, (-radius * angle.cos()).round() as i32)
            })
            .collect()
    };
    let size_f = f64::from(size);
    match marker {
        Marker::Circle => polygon(16, size_f, 0.0),
        Marker::Triangle => polygon(3, size_f * 1.3, 0.0),
        Marker::Square => polygon(4, size_f * 1.2, std::f64::consts::FRAC_PI_4),
        Marker::Diamond => polygon(4, size_f * 1.3, 0.0),
        Marker::TriangleDown => polygon(3, size_f * 1.3, std::f64::consts::PI),
        Marker::Hexagon => polygon(6, size_f * 1.1, 0.0),
        Marker::Star => (0..10)
            .map(|corner| {
                let radius = if corner % 2 == 0 { size_f * 1.4 } else { size_f * 0.6 };
                let angle = std::f64::consts::TAU * corner as f64 / 10.0;
                ((radius * angle.sin()).round() as i32, (-radius * angle.cos()).round() as i32)
            })
            .collect(),
    }
}

/// Draws `marker` of `size` at each of `points`, on any chart.
pub(super) fn draw_markers<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    style: Style,
    size: i32,
) -> DrawResult<DB> {
    let shape = outline(style.marker, size);
    let colour = style.colour;
    chart.draw_series(
        points.iter().map(|&at| EmptyElement::at(at) + Polygon::new(shape.clone(), colour.filled())),
    )?;
    Ok(())
}

/// Marker sizes, in pixels: the usual one, and the step by which each
/// further strategy on a line shared with others is drawn smaller, so that
/// coinciding lines show as markers one inside the other.
pub const MARKER_SIZE: i32 = 6;
const MARKER_STEP: i32 = 2;

/// `strategy`'s line through `line`, in its colour, with its markers;
/// `layer` counts the strategies drawn on this very line before it.
pub(super) fn draw_strategy_line<
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    line: &[(f64, f64)],
    strategy: &str,
    layer: usize,
) -> DrawResult<DB> {
    draw_styled_line(chart, line, style_of(strategy), layer)
}

/// A line through `line` in `style`, with its markers, `layer` as for
/// [`draw_strategy_line`].
pub(super) fn draw_styled_line<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    line: &[(f64, f64)],
    style: Style,
    layer: usize,
) -> DrawResult<DB> {
    // Segment by segment: a thick polyline that doubles back gets a long
    // mitre spike at the turn in the bitmap backend.
    let segments = line.windows(2).map(|pair| PathElement::new(pair.to_vec(), style.colour.stroke_width(3)));
    chart.draw_series(segments)?;
    let size = (MARKER_SIZE + 3 - MARKER_STEP * layer as i32).max(3);
    draw_markers(chart, line, style, size)
}

/// Strategies whose lines lie on top of each other: groups (two or more)
/// of indices into `lines` whose every point agrees within `tolerance`.
pub fn coinciding(lines: &[Vec<(f64, f64)>], tolerance: f64) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let same = |other: &Vec<(f64, f64)>| {
            other.len() == line.len()
                && other.iter().zip(line).all(|(a, b)| a.0 == b.0 && (a.1 - b.1).abs() <= tolerance)
        };
        match groups.iter_mut().find(|group| same(&lines[group[0]])) {
            Some(group) => group.push(index),
            None => groups.push(vec![index]),
        }
    }
    groups.retain(|group| group.len() > 1);
    groups
}

/// Draws each strategy's line; where lines coincide, their markers nest
/// (each later one drawn smaller on top), so that none is hidden.
pub(super) fn draw_strategy_lines<
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    lines: &[(String, Vec<(f64, f64)>)],
    tolerance: f64,
) -> DrawResult<DB> {
    let points: Vec<Vec<(f64, f64)>> = lines.iter().map(|(_, line)| line.clone()).collect();
    let groups = coinciding(&points, tolerance);
    let layer_of = |index: usize| {
        groups.iter().find_map(|group| group.iter().position(|&member| member == index)).unwrap_or(0)
    };
    for (index, (strategy, line)) in lines.iter().enumerate() {
        draw_strategy_line(chart, line, strategy, layer_of(index))?;
    }
    Ok(())
}

/// The legend of strategies' lines: one entry a strategy, except that
/// lines lying on one another share one entry that names them all
/// ("vv = vv-server = set-union (one line)"), with their markers nested as
/// the chart draws them.
pub fn line_entries(lines: &[(String, Vec<(f64, f64)>)], tolerance: f64) -> Vec<LegendEntry> {
    let points: Vec<Vec<(f64, f64)>> = lines.iter().map(|(_, line)| line.clone()).collect();
    let groups = coinciding(&points, tolerance);
    let mut entries = Vec::new();
    for (index, (strategy, _)) in lines.iter().enumerate() {
        match groups.iter().find(|group| group.contains(&index)) {
            Some(group) if group[0] == index => {
                let names: Vec<String> = group.iter().map(|&member| lines[member].0.clone()).collect();
                let label = format!("{} (one line)", names.join(" = "));
                entries.push(LegendEntry { swatch: Swatch::Strategies(names), label });
            }
            Some(_) => {}
            None => entries.push(LegendEntry::strategy(strategy, strategy.clone())),
        }
    }
    entries
}

/// What a legend entry shows beside its words.
#[derive(Debug, Clone, PartialEq)]
pub enum Swatch {
    /// A strategy: its line and marker.
    Strategy(String),
    /// Strategies on one line: the first's line, their markers nested.
    Strategies(Vec<String>),
    /// A filled box of a colour (bar charts, bands).
    Fill(RGBColor),
    /// A line of a colour.
    Line(RGBColor),
    /// A dashed line of a colour.
    Dashed(RGBColor),
    /// A dot with an error bar.
    Estimate(RGBColor),
    /// A line and marker of a style not a strategy's (a lease guard's).
    Styled(Style),
    /// Such lines lying on one another: the first's line, their markers nested.
    StyledGroup(Vec<Style>),
    /// A marker alone.
    Mark(Style),
}

/// One legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub swatch: Swatch,
    pub label: String,
}

impl LegendEntry {
    pub fn strategy(name: &str, label: impl Into<String>) -> Self {
        Self { swatch: Swatch::Strategy(name.to_string()), label: label.into() }
    }
}

const SWATCH_WIDTH: u32 = 30;
const LEGEND_ROW: u32 = 26;
const LEGEND_GAP: u32 = 22;
const LEGEND_MARGIN: u32 = 12;

/// Entries laid out in rows across `width`: each row's entries and their x.
/// An entry whose words are wider than a row (many lines lying on one
/// another) takes a row of its own and, below it, one empty row for each
/// further line of its words ([`label_lines`]).
fn legend_rows(entries: &[LegendEntry], width: u32) -> Vec<Vec<(usize, u32)>> {
    let mut rows: Vec<Vec<(usize, u32)>> = Vec::new();
    let mut x = LEGEND_MARGIN;
    let mut wrapped_above = false;
    for (index, entry) in entries.iter().enumerate() {
        let lines = label_lines(&entry.label, width);
        let widest = lines.iter().map(|line| text_width(line, TEXT_PX)).max().unwrap_or(0);
        let needed = SWATCH_WIDTH + 6 + widest;
        let full = x + needed > width.saturating_sub(LEGEND_MARGIN) && x > LEGEND_MARGIN;
        if rows.is_empty() || full || wrapped_above || (lines.len() > 1 && x > LEGEND_MARGIN) {
            rows.push(Vec::new());
            x = LEGEND_MARGIN;
        }
        if let Some(row) = rows.last_mut() {
            row.push((index, x));
        }
        rows.extend((1..lines.len()).map(|_| Vec::new()));
        wrapped_above = lines.len() > 1;
        x += needed + LEGEND_GAP;
    }
    rows
}

/// A legend entry's words as lines that fit `width`: broken after an `=`
/// of "a = b = c (one line)" where it must be, each piece shortened if it
/// alone is too wide.
fn label_lines(label: &str, width: u32) -> Vec<String> {
    let room = width.saturating_sub(2 * LEGEND_MARGIN + SWATCH_WIDTH + 6);
    if text_width(label, TEXT_PX) <= room {
        return vec![label.to_string()];
    }
    let mut lines: Vec<String> = Vec::new();
    for piece in label.split_inclusive(" = ") {
        match lines.last_mut() {
            Some(line) if text_width(&format!("{line}{piece}"), TEXT_PX) <= room => line.push_str(piece),
            _ => lines.push(piece.to_string()),
        }
    }
    lines.into_iter().map(|line| fitted(line.trim_end(), TEXT_PX, room)).collect()
}

/// The height a legend of `entries` takes at `width`.
pub fn legend_height(entries: &[LegendEntry], width: u32) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    legend_rows(entries, width).len() as u32 * LEGEND_ROW + 10
}

/// Draws a legend strip filling `area`.
pub(super) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> DrawResult<DB> {
    let (width, _) = area.dim_in_pixel();
    for (row, placed) in legend_rows(entries, width).iter().enumerate() {
        let y = 6 + row as i32 * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
        for &(index, x) in placed {
            let entry = &entries[index];
            let x = x as i32;
            let swatch_end = x + SWATCH_WIDTH as i32;
            match &entry.swatch {
                Swatch::Strategy(name) => line_swatch(area, (x, swatch_end, y), true, &[style_of(name)])?,
                Swatch::Strategies(names) => {
                    let styles: Vec<Style> = names.iter().map(|name| style_of(name)).collect();
                    line_swatch(area, (x, swatch_end, y), true, &styles)?
                }
                Swatch::Styled(style) => line_swatch(area, (x, swatch_end, y), true, &[*style])?,
                Swatch::StyledGroup(styles) => line_swatch(area, (x, swatch_end, y), true, styles)?,
                Swatch::Mark(style) => line_swatch(area, (x, swatch_end, y), false, &[*style])?,
                Swatch::Fill(colour) => {
                    area.draw(&Rectangle::new([(x + 4, y - 8), (swatch_end - 4, y + 8)], colour.filled()))?
                }
                Swatch::Line(colour) => {
                    area.draw(&PathElement::new(vec![(x, y), (swatch_end, y)], colour.stroke_width(3)))?
                }
                Swatch::Dashed(colour) => {
                    for start in (x..swatch_end).step_by(10) {
                        area.draw(&PathElement::new(
                            vec![(start, y), ((start + 6).min(swatch_end), y)],
                            colour.stroke_width(3),
                        ))?;
                    }
                }
                Swatch::Estimate(colour) => {
                    area.draw(&PathElement::new(
                        vec![(x + 15, y - 9), (x + 15, y + 9)],
                        colour.stroke_width(2),
                    ))?;
                    area.draw(&Circle::new((x + 15, y), 4, colour.filled()))?;
                }
            }
            let style = font(TEXT_PX).color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            ));
            for (line, text) in label_lines(&entry.label, width).into_iter().enumerate() {
                let y = y + line as i32 * LEGEND_ROW as i32;
                area.draw(&Text::new(text, (swatch_end + 6, y), style.clone()))?;
            }
        }
    }
    Ok(())
}

/// A legend swatch of lines lying on one another: the first style's line
/// (if `line`) from `x` to `end` at `y`, and every style's marker, each
/// later one smaller, nested as the charts draw them.
fn line_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, end, y): (i32, i32, i32),
    line: bool,
    styles: &[Style],
) -> DrawResult<DB> {
    if let Some(first) = styles.first().filter(|_| line) {
        area.draw(&PathElement::new(vec![(x, y), (end, y)], first.colour.stroke_width(3)))?;
    }
    for (layer, style) in styles.iter().enumerate() {
        let size = if styles.len() == 1 {
            MARKER_SIZE
        } else {
            (MARKER_SIZE + 3 - MARKER_STEP * layer as i32).max(3)
        };
        let shape = outline(style.marker, size).into_iter().map(|(dx, dy)| (x + 15 + dx, y + dy));
        area.draw(&Polygon::new(shape.collect::<Vec<_>>(), style.colour.filled()))?;
    }
    Ok(())
}

/// Splits `area` into a chart above and a legend strip for `entries` below.
pub(super) fn with_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let (width, height) = area.dim_in_pixel();
    let strip = legend_height(entries, width).min(height / 2);
    area.split_vertically(height - strip)
}

/// A chart's title in a strip of its own at the top of `area`; returns the rest.
pub(super) fn titled<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    // A long title wraps nowhere: shorten it to the width, whole words kept.
    // A long title on a narrow plot: first without the experiment's name
    // ("skew: "), which the page around it shows; then shortened at a word.
    let (width, _) = area.dim_in_pixel();
    let room = width.saturating_sub(24);
    let title = match title.split_once(": ") {
        Some((_, rest)) if text_width(title, TITLE_PX) > room => rest,
        _ => title,
    };
    let title = fitted(title, TITLE_PX, room);
    area.titled(&title, font(TITLE_PX))
}

/// `text`, cut at a word and ended with "…" if it is wider than `width` at `px`.
pub fn fitted(text: &str, px: f64, width: u32) -> String {
    if text_width(text, px) <= width {
        return text.to_string();
    }
    let mut words: Vec<&str> = text.split(' ').collect();
    while words.len() > 1 {
        words.pop();
        let shorter = format!("{}…", words.join(" ").trim_end_matches([',', ':', ';']));
        if text_width(&shorter, px) <= width {
            return shorter;
        }
    }
    words.join(" ")
}

/// An x coordinate whose ticks are exactly the sweep's values.
pub struct SweepCoord {
    inner: plotters::coord::types::RangedCoordf64,
    ticks: Vec<f64>,
}

impl SweepCoord {
    pub fn new(axis: &super::axis::SweepAxis) -> Self {
        Self { inner: axis.range().into(), ticks: axis.ticks() }
    }
}

impl Ranged for SweepCoord {
    type ValueType = f64;
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// A chart on a sweep: x is the [`SweepAxis`](super::axis::SweepAxis), y runs from 0 to `highest`.
pub(super) type SweepChart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<SweepCoord, plotters::coord::types::RangedCoordf64>>;

/// The words around a chart.
pub(super) struct Frame<'t> {
    /// A panel's own title, if it has one.
    pub title: Option<&'t str>,
    pub x_desc: &'t str,
    pub y_desc: &'t str,
}

/// Room for the y axis's numbers and description, in pixels.
const Y_LABEL_AREA: u32 = 74;
const X_LABEL_AREA: u32 = 62;

pub(super) fn sweep_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    frame: &Frame<'_>,
    input: &PlotInput,
    highest: f64,
) -> Result<SweepChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    axis_chart(area, frame, &input.axis(), input.parameter, highest)
}

/// A chart on sweep axis `axis` of `parameter`, y from 0 to `highest`.
pub(super) fn axis_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    frame: &Frame<'_>,
    axis: &super::axis::SweepAxis,
    parameter: Option<crate::experiment::spec::Parameter>,
    highest: f64,
) -> Result<SweepChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let range = axis.range();
    let mut builder = ChartBuilder::on(area);
    if let Some(title) = frame.title {
        builder.caption(title, font(PANEL_TITLE_PX));
    }
    let mut chart = builder
        .margin(12)
        .margin_right(24)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(SweepCoord::new(axis), 0.0..(highest * 1.12))?;
    let (width, _) = area.dim_in_pixel();
    let plotted = f64::from(width.saturating_sub(Y_LABEL_AREA + 36).max(1));
    let pixels_per_unit = plotted / (range.end - range.start);
    let room = width.saturating_sub(Y_LABEL_AREA + 24);
    let mut x_desc = format!("{}{}", frame.x_desc, axis.note());
    if let Some(parameter) = parameter
        && text_width(&x_desc, AXIS_PX) > room
    {
        x_desc = format!("{}{}", parameter.short_label(), axis.note());
    }
    let x_desc = fitted(&x_desc, AXIS_PX, room);
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(frame.y_desc)
        .x_label_formatter(&|place| axis.label_at(*place, pixels_per_unit, TEXT_PX))
        .y_labels(6)
        .max_light_lines(2)
        .label_style(font(TEXT_PX))
        .axis_desc_style(font(AXIS_PX))
        .draw()?;
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_agree_everywhere_are_one_group_and_one_legend_entry() {
        let flat = vec![(0.0, 0.0), (1.0, 0.0)];
        let rising = vec![(0.0, 0.0), (1.0, 5.0)];
        let lines = [flat.clone(), rising.clone(), flat.clone(), vec![(0.0, 0.01), (1.0, 0.0)]];
        assert_eq!(coinciding(&lines, 0.05), vec![vec![0, 2, 3]]);
        assert!(coinciding(&lines[..2], 0.05).is_empty());
        let named: Vec<(String, Vec<(f64, f64)>)> = ["vv", "lww-wall", "vv-server", "set-union"]
            .iter()
            .map(|name| name.to_string())
            .zip(lines)
            .collect();
        let labels: Vec<String> = line_entries(&named, 0.05).into_iter().map(|entry| entry.label).collect();
        assert_eq!(labels, ["vv = vv-server = set-union (one line)", "lww-wall"]);
    }

    #[test]
    fn a_legend_wraps_into_as_many_rows_as_its_width_needs_and_long_text_is_shortened() {
        let entries: Vec<LegendEntry> =
            ["lww-wall", "lww-hlc", "lww-lamport", "vv", "vv-server", "set-union"]
                .iter()
                .map(|name| LegendEntry::strategy(name, *name))
                .collect();
        let wide = legend_rows(&entries, 1400);
        let narrow = legend_rows(&entries, 420);
        assert_eq!(wide.len(), 1);
        assert!(narrow.len() >= 2, "{narrow:?}");
        assert!(legend_height(&entries, 420) > legend_height(&entries, 1400));
        // Many lines on one another: their words wrap after an `=`, in rows of their own.
        let names = ["pg-last-update-wins", "pg-first-update-wins", "pg-apply-remote", "pg-keep-local"];
        let group = LegendEntry {
            swatch: Swatch::Strategies(names.iter().map(|name| name.to_string()).collect()),
            label: format!("{} (one line)", names.join(" = ")),
        };
        let lines = label_lines(&group.label, 580);
        assert!(lines.len() >= 2 && lines.iter().all(|line| !line.ends_with('…')), "{lines:?}");
        assert_eq!(
            lines.concat().replace("=", "= ").split_whitespace().count(),
            group.label.split_whitespace().count()
        );
        let rows = legend_rows(&[group, LegendEntry::strategy("vv", "vv")], 580);
        assert_eq!(rows.len(), lines.len() + 1, "the group's rows, then vv's: {rows:?}");
        let title = "skew: acknowledged writes silently dropped, against the skew between the clocks";
        let short = fitted(title, TITLE_PX, 300);
        assert!(short.ends_with('…') && text_width(&short, TITLE_PX) <= 300, "{short}");
        assert_eq!(fitted("short", TITLE_PX, 300), "short");
    }
}
