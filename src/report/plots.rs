//! Plots of a run, as SVG (for the browser) and PNG (for anything else).
//!
//! Four pictures, the first three against the swept parameter:
//!
//! - `dropped`: silently dropped writes as a percentage of acknowledged
//!   ones, one line per strategy, with error bars spanning the 95%
//!   confidence interval of the mean over trials (none for one trial; see
//!   `analysis::summary`);
//! - `causes`: for each last-write-wins strategy, the drops split by cause
//!   (causality violation, other clock-caused, concurrent overwrite), as
//!   stacked bars;
//! - `siblings`: for sibling-keeping strategies, how many reads surfaced
//!   siblings (conflicts handed to the client instead of dropped);
//! - `costs` ([`super::costs`]): what each strategy lost against what it
//!   cost, dropped writes against write latency.
//!
//! [`super::figures`] draws them all; this module holds the first three and
//! what every plot shares (size, font, palette, markers).
//!
//! Up to seven strategies share a plot, so each has its own colour from a
//! palette chosen for colour-blind readers (Okabe and Ito's) *and* its own
//! marker shape, so that no line is told apart by colour alone.
//!
//! Sweep values are spaced evenly along the x axis and labelled with their
//! value, because sweeps are roughly geometric (0, 10, 100, 1000 ms).
//!
//! plotters draws text in PNGs with a font it is given: on a machine with no
//! fonts configured it would otherwise draw none. So the lab carries DejaVu
//! Sans (assets/fonts, Bitstream Vera licence) and registers it once.

use std::path::PathBuf;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Size of every plot, in pixels (PNG) or user units (SVG).
pub const PLOT_SIZE: (u32, u32) = (960, 540);
/// The font family every label uses.
pub const FONT: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

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

/// What the plots show, and how the x axis is labelled.
#[derive(Debug, Clone)]
pub struct PlotInput {
    pub experiment: String,
    /// The x axis's description: the swept parameter and its unit.
    pub parameter: String,
    /// The swept parameter's short name (`skew_ms`), for narrow panels.
    pub parameter_name: String,
    pub series: Vec<StrategySeries>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct PlotError {
    pub(super) path: PathBuf,
    pub(super) message: String,
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

/// Colours for strategies, in order: Okabe and Ito's palette, whose
/// colours stay apart for colour-blind readers (its yellow left out: it
/// vanishes on white).
pub(super) const PALETTE: [RGBColor; 7] = [
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 114, 178),   // blue
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 0, 0),       // black
];

/// Marker shapes for strategies, in order, beside their colours: filled
/// outlines that stay apart at a glance (and in grey).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
    TriangleDown,
    Hexagon,
    Star,
}

pub(super) const MARKERS: [Marker; 7] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Diamond,
    Marker::TriangleDown,
    Marker::Hexagon,
    Marker::Star,
];

/// The colour and marker of the strategy at `index`.
pub(super) fn style_of(index: usize) -> (RGBColor, Marker) {
    (PALETTE[index % PALETTE.len()], MARKERS[index % MARKERS.len()])
}

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
    marker: Marker,
    colour: RGBColor,
    size: i32,
) -> DrawResult<DB> {
    let shape = outline(marker, size);
    chart.draw_series(
        points.iter().map(|&at| EmptyElement::at(at) + Polygon::new(shape.clone(), colour.filled())),
    )?;
    Ok(())
}

/// One strategy's line through `line`, in its colour, with its markers and
/// a legend entry labelled `label`.
pub(super) fn draw_strategy_line<
    'a,
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    line: &[(f64, f64)],
    label: String,
    index: usize,
) -> DrawResult<DB> {
    let (colour, marker) = style_of(index);
    // Segment by segment: a thick polyline that doubles back gets a long
    // mitre spike at the turn in the bitmap backend.
    let segments = line.windows(2).map(|pair| PathElement::new(pair.to_vec(), colour.stroke_width(3)));
    chart.draw_series(segments)?.label(label).legend(move |at| {
        EmptyElement::at(at)
            + PathElement::new(vec![(0, 0), (24, 0)], colour.stroke_width(3))
            + Polygon::new(legend_outline(marker), colour.filled())
    });
    draw_markers(chart, line, marker, colour, 5)
}

/// The marker of a legend entry, in the middle of its 24-pixel line.
pub(super) fn legend_outline(marker: Marker) -> Vec<(i32, i32)> {
    outline(marker, 5).into_iter().map(|(x, y)| (x + 12, y)).collect()
}

fn values(input: &PlotInput) -> Vec<f64> {
    input
        .series
        .first()
        .map(|series| series.points.iter().map(|point| point.value).collect())
        .unwrap_or_default()
}

fn value_label(values: &[f64], index: f64) -> String {
    let rounded = index.round();
    if (index - rounded).abs() > 0.01 || rounded < 0.0 {
        return String::new();
    }
    values.get(rounded as usize).map(|value| format!("{value}")).unwrap_or_default()
}

/// A chart whose x axis holds the sweep points, evenly spaced and labelled
/// with their values.
type SweepChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The text of one chart and the size of its smaller text.
struct Frame<'t> {
    title: &'t str,
    title_size: u32,
    y_desc: &'t str,
    text_size: u32,
    margin: u32,
    /// The x axis's description, if not the parameter's full one.
    x_desc: Option<&'t str>,
}

fn sweep_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    frame: &Frame<'_>,
    input: &PlotInput,
    highest: f64,
) -> Result<SweepChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let values = values(input);
    let mut chart = ChartBuilder::on(area)
        .caption(frame.title, (FONT, frame.title_size))
        .margin(frame.margin)
        .x_label_area_size(56)
        .y_label_area_size(frame.text_size * 4 + 8)
        .build_cartesian_2d(-0.5..(values.len() as f64 - 0.5), 0.0..(highest * 1.1))?;
    chart
        .configure_mesh()
        .x_desc(frame.x_desc.unwrap_or(input.parameter.as_str()))
        .y_desc(frame.y_desc)
        .x_labels(values.len().max(2) * 2 + 1)
        .x_label_formatter(&|index| value_label(&values, *index))
        .label_style((FONT, frame.text_size))
        .axis_desc_style((FONT, frame.text_size + 2))
        .draw()?;
    Ok(chart)
}

fn draw_legend<'a, DB: DrawingBackend + 'a>(chart: &mut SweepChart<'a, DB>, size: u32) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, size))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

pub(super) fn draw_dropped<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &PlotInput,
) -> DrawResult<DB> {
    let highest = input
        .series
        .iter()
        .flat_map(|series| series.points.iter())
        .map(|point| point.dropped_percent + point.dropped_percent_interval)
        .fold(1.0_f64, f64::max);
    let title = format!("{}: acknowledged writes silently dropped", input.experiment);
    let frame = Frame {
        title: &title,
        title_size: 26,
        y_desc: "dropped, % of acknowledged writes",
        text_size: 16,
        margin: 16,
        x_desc: None,
    };
    let mut chart = sweep_chart(area, &frame, input, highest)?;
    for (index, series) in input.series.iter().enumerate() {
        let (colour, _) = style_of(index);
        let line: Vec<(f64, f64)> =
            series.points.iter().enumerate().map(|(x, point)| (x as f64, point.dropped_percent)).collect();
        draw_strategy_line(&mut chart, &line, series.strategy.clone(), index)?;
        chart.draw_series(series.points.iter().enumerate().map(|(x, point)| {
            let low = (point.dropped_percent - point.dropped_percent_interval).max(0.0);
            let high = point.dropped_percent + point.dropped_percent_interval;
            ErrorBar::new_vertical(x as f64, low, point.dropped_percent, high, colour.stroke_width(2), 10)
        }))?;
    }
    draw_legend(&mut chart, 18)
}

/// Cause colours: the dark one for causality violations, the lesson of Figure 8-3.
const CAUSES: [(&str, RGBColor); 3] = [
    ("causality violation", RGBColor(120, 28, 28)),
    ("other clock-caused", RGBColor(230, 159, 0)),
    ("concurrent overwrite", RGBColor(150, 150, 150)),
];

pub(super) fn draw_causes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &PlotInput,
) -> DrawResult<DB> {
    let lww: Vec<&StrategySeries> = input.series.iter().filter(|series| series.last_write_wins).collect();
    let (title, body) = area.split_vertically(48);
    title.titled(&format!("{}: why last-write-wins dropped writes", input.experiment), (FONT, 26))?;
    let panels = body.split_evenly((1, lww.len().max(1)));
    let highest = lww
        .iter()
        .flat_map(|series| series.points.iter())
        .map(|point| point.causality_percent + point.realtime_percent + point.concurrent_percent)
        .fold(1.0_f64, f64::max);
    for (panel, series) in panels.iter().zip(&lww) {
        let frame = Frame {
            title: &series.strategy,
            title_size: 20,
            y_desc: "dropped, % of acked",
            text_size: 14,
            margin: 12,
            // Side by side, the full description would run into the next panel's.
            x_desc: (lww.len() > 1).then_some(input.parameter_name.as_str()),
        };
        let mut chart = sweep_chart(panel, &frame, input, highest)?;
        for (cause, (label, colour)) in CAUSES.iter().enumerate() {
            let bars = series.points.iter().enumerate().map(|(x, point)| {
                let parts = [point.causality_percent, point.realtime_percent, point.concurrent_percent];
                let bottom: f64 = parts[..cause].iter().sum();
                let top = bottom + parts[cause];
                Rectangle::new([(x as f64 - 0.35, bottom), (x as f64 + 0.35, top)], colour.filled())
            });
            chart
                .draw_series(bars)?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour.filled()));
        }
        draw_legend(&mut chart, 15)?;
    }
    Ok(())
}

pub(super) fn draw_siblings<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &PlotInput,
) -> DrawResult<DB> {
    let keeping: Vec<(usize, &StrategySeries)> =
        input.series.iter().enumerate().filter(|(_, series)| !series.last_write_wins).collect();
    let (title, body) = area.split_vertically(48);
    title.titled(
        &format!("{}: conflicts kept as siblings instead of dropped", input.experiment),
        (FONT, 26),
    )?;
    let (left, right) = body.split_horizontally(body.dim_in_pixel().0 / 2);
    // Left: how often reads handed siblings back, bars side by side.
    let highest = keeping
        .iter()
        .flat_map(|(_, series)| series.points.iter())
        .map(|point| point.siblings_per_trial)
        .fold(1.0_f64, f64::max);
    let frame = Frame {
        title: "how often: reads that returned siblings",
        title_size: 18,
        y_desc: "reads with siblings, per trial",
        text_size: 14,
        margin: 12,
        x_desc: None,
    };
    let mut chart = sweep_chart(&left, &frame, input, highest)?;
    let width = 0.7 / keeping.len().max(1) as f64;
    for (slot, (index, series)) in keeping.iter().enumerate() {
        let (colour, _) = style_of(*index);
        let offset = -0.35 + width * slot as f64;
        let bars = series.points.iter().enumerate().map(move |(x, point)| {
            let left = x as f64 + offset;
            Rectangle::new([(left, 0.0), (left + width * 0.9, point.siblings_per_trial)], colour.filled())
        });
        chart
            .draw_series(bars)?
            .label(series.strategy.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour.filled()));
    }
    draw_legend(&mut chart, 14)?;
    // Right: how many at once, the burden a single read hands over.
    let most = keeping.iter().map(|(_, series)| max_siblings(series)).max().unwrap_or(1).max(1);
    let frame = Frame {
        title: "how many: the most siblings at once",
        title_size: 18,
        y_desc: "siblings in one read or final state, at most",
        text_size: 14,
        margin: 12,
        x_desc: None,
    };
    let mut chart = sweep_chart(&right, &frame, input, most as f64)?;
    for (index, series) in &keeping {
        let line: Vec<(f64, f64)> = series
            .points
            .iter()
            .enumerate()
            .map(|(x, point)| (x as f64, point.max_siblings as f64))
            .collect();
        draw_strategy_line(&mut chart, &line, series.strategy.clone(), *index)?;
    }
    draw_legend(&mut chart, 14)
}

fn max_siblings(series: &StrategySeries) -> usize {
    series.points.iter().map(|point| point.max_siblings).max().unwrap_or(0)
}
