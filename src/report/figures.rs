//! Every plot of a run: which plots there are, in which order, drawn at any
//! width.
//!
//! A run's [`RunFigures`] are made from what its files hold (the spec, the
//! summary rows, the drops, and the history's fault, trial and sample
//! records), so the runner can draw them when it writes a run and the
//! dashboard can draw them again, at exactly the width a page shows each
//! one (`GET /api/runs/{experiment}/{run}/plots/{name}.svg?width=W`): a
//! plot shown at its own size shows its text at the size it was drawn,
//! which [`super::plots`] keeps at a projector's back-row minimum. The
//! files in the run directory (`NAME.svg` and `NAME.png`) are drawn
//! [`PLOT_SIZE`]'s width wide, for the README and `report.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::compare::Names;
use super::heatmap::HeatmapInput;
use super::lease::{LeaseFigures, LeaseHarm, LeaseTimeline};
use super::offsets::OffsetsPlot;
use super::plots::{
    DrawResult, PLOT_SIZE, PlotError, PlotInput, PointFigures, StrategySeries, register_font,
};
use super::sweep::{CAUSES, DROPPED, SIBLINGS};
use super::timeline::Timeline;
use crate::analysis::compare::Agreement;
use crate::analysis::lease::LeaseRow;
use crate::analysis::{DroppedWrite, PointSummary, kind_in};
use crate::experiment::spec::{Parameter, Spec};
use crate::history::Record;
use crate::strategy::Kind;

/// The sweep plots' file stems, in the order they are drawn.
pub const PLOTS: [&str; 4] = [DROPPED, CAUSES, SIBLINGS, COSTS];
pub const COSTS: &str = "costs";

/// The narrowest and widest a plot is drawn, in pixels.
pub const MIN_WIDTH: u32 = 360;
pub const MAX_WIDTH: u32 = 2400;

/// One plot, ready to draw at any width.
pub enum Figure<'a> {
    /// `dropped`, `causes`, `siblings` or `costs`.
    Sweep(&'static str, &'a PlotInput),
    Timeline(&'a Timeline),
    Offsets(&'a OffsetsPlot),
    Heatmap(&'a HeatmapInput),
    Comparison(&'a Names<'a>, &'a [Agreement]),
    LeaseHarm(&'a LeaseHarm),
    LeaseTimeline(&'a LeaseTimeline),
}

impl Figure<'_> {
    /// Its file stem.
    pub fn name(&self) -> &'static str {
        match self {
            Figure::Sweep(name, _) => name,
            Figure::Timeline(_) => super::timeline::TIMELINE,
            Figure::Offsets(_) => super::offsets::OFFSETS,
            Figure::Heatmap(_) => super::heatmap::HEATMAP,
            Figure::Comparison(..) => super::compare::PLOT,
            Figure::LeaseHarm(_) => super::lease::LEASE_HARM,
            Figure::LeaseTimeline(_) => super::lease::LEASE_TIMELINE,
        }
    }

    /// How tall it is at `width` (clamped to the widths it is drawn at).
    pub fn height(&self, width: u32) -> u32 {
        let width = width.clamp(MIN_WIDTH, MAX_WIDTH);
        match self {
            Figure::Sweep(COSTS, input) => super::costs::height(input, width),
            Figure::Sweep(name, input) => super::sweep::height(name, input, width),
            Figure::Timeline(timeline) => super::timeline::height(timeline, width),
            Figure::Offsets(plot) => super::offsets::height(plot, width),
            Figure::Heatmap(input) => super::heatmap::height(input, width),
            Figure::Comparison(names, rows) => super::compare::height(names, rows, width),
            Figure::LeaseHarm(harm) => super::lease::harm::height(harm, width),
            Figure::LeaseTimeline(timeline) => super::lease::timeline::height(timeline, width),
        }
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        area.fill(&WHITE)?;
        match self {
            Figure::Sweep(DROPPED, input) => super::sweep::draw_dropped(area, input),
            Figure::Sweep(CAUSES, input) => super::sweep::draw_causes(area, input),
            Figure::Sweep(SIBLINGS, input) => super::sweep::draw_siblings(area, input),
            Figure::Sweep(_, input) => super::costs::draw(area, input),
            Figure::Timeline(timeline) => super::timeline::draw(area, timeline),
            Figure::Offsets(plot) => super::offsets::draw(area, plot),
            Figure::Heatmap(input) => super::heatmap::draw(area, input),
            Figure::Comparison(names, rows) => super::compare::draw(area, names, rows),
            Figure::LeaseHarm(harm) => super::lease::harm::draw(area, harm),
            Figure::LeaseTimeline(timeline) => super::lease::timeline::draw(area, timeline),
        }
    }

    /// The plot as SVG text, `width` pixels wide (clamped).
    pub fn svg(&self, width: u32) -> Result<String, PlotError> {
        register_font();
        let width = width.clamp(MIN_WIDTH, MAX_WIDTH);
        let size = (width, self.height(width));
        let path = format!("{}.svg", self.name());
        let mut text = String::new();
        {
            let area = SVGBackend::with_string(&mut text, size).into_drawing_area();
            self.draw(&area).map_err(|error| PlotError::new(&path, &error))?;
            area.present().map_err(|error| PlotError::new(&path, &error))?;
        }
        Ok(text)
    }

    /// Writes `NAME.svg` and `NAME.png` into `dir`, [`PLOT_SIZE`]'s width wide.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
        let svg = dir.join(format!("{}.svg", self.name()));
        let png = dir.join(format!("{}.png", self.name()));
        let text = self.svg(PLOT_SIZE.0)?;
        std::fs::write(&svg, text).map_err(|error| PlotError::new(&svg, &error))?;
        {
            let size = (PLOT_SIZE.0, self.height(PLOT_SIZE.0));
            let area = BitMapBackend::new(&png, size).into_drawing_area();
            self.draw(&area).map_err(|error| PlotError::new(&png, &error))?;
            area.present().map_err(|error| PlotError::new(&png, &error))?;
        }
        Ok(vec![svg, png])
    }
}

/// Every plot of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// What the sweep plots show (for a two-parameter sweep, the row at the
    /// second parameter's middle value).
    pub sweep: PlotInput,
    /// The per-point summaries the sweep plots and the report's paragraphs
    /// show.
    pub summaries: Vec<PointSummary>,
    pub heatmap: Option<HeatmapInput>,
    pub timeline: Option<Timeline>,
    pub offsets: Option<OffsetsPlot>,
    /// A lease run's plots, which are then its only ones.
    pub lease: Option<LeaseFigures>,
}

impl RunFigures {
    /// The figures of a run of `spec`: from every per-point summary
    /// (`every`), each bucket's kind, its drops, and its history's records
    /// (only faults, trials and samples are looked at: writes may be left out).
    pub fn build(
        experiment: &str,
        spec: &Spec,
        every: Vec<PointSummary>,
        kinds: &BTreeMap<String, Kind>,
        drops: &[DroppedWrite],
        records: &[Record],
    ) -> RunFigures {
        let (summaries, heatmap) = match &spec.sweep.across {
            None => (every, None),
            Some(across) => {
                let middle = across.values.get(across.values.len() / 2).copied().unwrap_or_default();
                let row: Vec<PointSummary> =
                    every.iter().filter(|summary| summary.across_value == Some(middle)).cloned().collect();
                let heatmap = HeatmapInput {
                    experiment: experiment.to_string(),
                    parameter: spec.sweep.parameter.name().to_string(),
                    across: across.parameter.name().to_string(),
                    strategies: spec
                        .strategies
                        .iter()
                        .filter(|strategy| kind_in(kinds, strategy) == Kind::LastWriteWins)
                        .cloned()
                        .collect(),
                    summaries: every,
                };
                (row, Some(heatmap))
            }
        };
        let sweep = plot_input(experiment, spec, kinds, &summaries);
        let timeline = timeline_of(experiment, spec, records, drops);
        let offsets = super::sweep::largest_point(spec).and_then(|(point, title)| {
            super::offsets::build(
                &format!("{experiment}: clock offsets as replicas estimate them, {title}"),
                records,
                point,
            )
        });
        RunFigures { sweep, summaries, heatmap, timeline, offsets, lease: None }
    }

    /// The figures of a lease run of `spec`: its verdicts and its history
    /// (trial, lease and fault records).
    pub fn for_lease(experiment: &str, spec: &Spec, rows: &[LeaseRow], records: &[Record]) -> RunFigures {
        RunFigures {
            sweep: plot_input(experiment, spec, &BTreeMap::new(), &[]),
            summaries: Vec::new(),
            heatmap: None,
            timeline: None,
            offsets: None,
            lease: Some(LeaseFigures::build(experiment, spec, rows, records)),
        }
    }

    /// Every plot, main plot first.
    pub fn figures(&self) -> Vec<Figure<'_>> {
        if let Some(lease) = &self.lease {
            let mut figures = vec![Figure::LeaseHarm(&lease.harm)];
            figures.extend(lease.timeline.as_ref().map(Figure::LeaseTimeline));
            return figures;
        }
        let mut figures: Vec<Figure<'_>> =
            PLOTS.iter().map(|name| Figure::Sweep(name, &self.sweep)).collect();
        figures.extend(self.heatmap.as_ref().map(Figure::Heatmap));
        figures.extend(self.timeline.as_ref().map(Figure::Timeline));
        figures.extend(self.offsets.as_ref().map(Figure::Offsets));
        figures
    }

    /// The plot named `name`, if the run has it.
    pub fn figure(&self, name: &str) -> Option<Figure<'_>> {
        self.figures().into_iter().find(|figure| figure.name() == name)
    }

    /// Every plot's name, main plot first.
    pub fn names(&self) -> Vec<&'static str> {
        self.figures().iter().map(Figure::name).collect()
    }

    /// Writes every plot into `dir` as `NAME.svg` and `NAME.png`; returns the paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
        let mut written = Vec::new();
        for figure in self.figures() {
            written.extend(figure.write(dir)?);
        }
        Ok(written)
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 }
}

/// The sweep plots' input: per strategy, in the spec's order, its figures per point.
pub fn plot_input(
    experiment: &str,
    spec: &Spec,
    kinds: &BTreeMap<String, Kind>,
    summaries: &[PointSummary],
) -> PlotInput {
    let series = spec
        .strategies
        .iter()
        .map(|strategy| StrategySeries {
            strategy: strategy.clone(),
            last_write_wins: kind_in(kinds, strategy) == Kind::LastWriteWins,
            points: summaries
                .iter()
                .filter(|summary| &summary.strategy == strategy)
                .map(|summary| PointFigures {
                    value: summary.value,
                    dropped_percent: summary.dropped_percent_mean,
                    dropped_percent_interval: summary.dropped_percent_interval,
                    causality_percent: percent(summary.dropped_causality, summary.acked),
                    realtime_percent: percent(summary.dropped_realtime, summary.acked),
                    concurrent_percent: percent(summary.dropped_concurrent, summary.acked),
                    siblings_per_trial: summary.siblings as f64 / summary.trials.max(1) as f64,
                    max_siblings: summary.max_siblings,
                    latency_p50_ms: summary.latency_p50_ms,
                    latency_p99_ms: summary.latency_p99_ms,
                    metadata_bytes: summary.metadata_bytes,
                })
                .collect(),
        })
        .collect();
    PlotInput {
        experiment: experiment.to_string(),
        parameter: Some(spec.sweep.parameter),
        parameter_name: spec.sweep.parameter.name().to_string(),
        series,
    }
}

/// The timeline of the sweep's largest value (first trial), for specs with
/// scheduled faults or clocks that change over time; `None` for the others
/// or for histories from before `trial` records.
fn timeline_of(
    experiment: &str,
    spec: &Spec,
    records: &[Record],
    drops: &[DroppedWrite],
) -> Option<Timeline> {
    let changing = spec.has_faults()
        || spec.clocks.drift_ppm != 0.0
        || spec.clocks.drift_spread_ppm != 0.0
        || matches!(spec.sweep.parameter, Parameter::DriftPpm | Parameter::ResyncIntervalMs);
    if !changing {
        return None;
    }
    let (point, title) = super::sweep::largest_point(spec)?;
    super::timeline::build(&format!("{experiment}: {title}"), records, drops, &spec.strategies, point)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn input() -> PlotInput {
        let series = |strategy: &str, last_write_wins: bool, scale: f64| StrategySeries {
            strategy: strategy.into(),
            last_write_wins,
            points: [0.0, 10.0, 100.0, 1000.0]
                .iter()
                .enumerate()
                .map(|(index, &value)| PointFigures {
                    value,
                    dropped_percent: scale * index as f64,
                    dropped_percent_interval: 1.0,
                    causality_percent: scale * index as f64 / 2.0,
                    realtime_percent: scale * index as f64 / 4.0,
                    concurrent_percent: scale * index as f64 / 4.0,
                    siblings_per_trial: if last_write_wins { 0.0 } else { 5.0 + index as f64 },
                    max_siblings: 2,
                    latency_p50_ms: 1.0 + scale,
                    latency_p99_ms: 2.0 + scale * index as f64,
                    metadata_bytes: 20.0,
                })
                .collect(),
        };
        PlotInput {
            experiment: "skew".into(),
            parameter: Some(Parameter::SkewMs),
            parameter_name: "skew_ms".into(),
            series: vec![
                series("lww-wall", true, 10.0),
                series("lww-hlc", true, 3.0),
                series("vv", false, 0.0),
                series("set-union", false, 0.0),
            ],
        }
    }

    /// Counts pixels in a rectangle that are dark (text, axes) and that are
    /// saturated colour (data).
    fn count(image: &image::RgbImage, x: std::ops::Range<u32>, y: std::ops::Range<u32>) -> (usize, usize) {
        let (mut dark, mut coloured) = (0, 0);
        for py in y {
            for px in x.clone() {
                let [r, g, b] = image.get_pixel(px, py).0;
                let (high, low) = (r.max(g).max(b), r.min(g).min(b));
                if high < 100 {
                    dark += 1;
                }
                if high - low > 80 {
                    coloured += 1;
                }
            }
        }
        (dark, coloured)
    }

    /// plotters' bitmap backend draws no text unless it has a font; with no
    /// fonts configured on a machine a PNG would have axes and no labels.
    /// This decodes each PNG and looks for drawn pixels where the labels and
    /// the data must be.
    #[test]
    fn png_plots_have_data_titles_and_axis_labels() {
        let dir = tempfile::tempdir().unwrap();
        let input = input();
        for name in PLOTS {
            let figure = Figure::Sweep(name, &input);
            figure.write(dir.path()).unwrap();
            let image = image::open(dir.path().join(format!("{name}.png"))).unwrap().to_rgb8();
            let (width, height) = image.dimensions();
            assert_eq!((width, height), (PLOT_SIZE.0, figure.height(PLOT_SIZE.0)));
            let (title_dark, _) = count(&image, 150..width - 150, 0..40);
            assert!(title_dark > 200, "{name}: no title text ({title_dark} dark pixels)");
            // The y axis labels and description, left of the tick marks.
            let (y_labels, _) = count(&image, 0..70, 60..height - 120);
            assert!(y_labels > 150, "{name}: no y-axis labels ({y_labels} dark pixels)");
            let (_, data) = count(&image, 100..width - 30, 50..height - 100);
            assert!(data > 500, "{name}: no data drawn ({data} coloured pixels)");
            let svg = std::fs::read_to_string(dir.path().join(format!("{name}.svg"))).unwrap();
            let axis = if name == COSTS { "latency" } else { "clock skew" };
            assert!(svg.contains("<text") && svg.contains(axis), "{name}.svg has no axis text");
        }
    }

    /// The smallest `font-size` in an SVG.
    pub(crate) fn smallest_text(svg: &str) -> f64 {
        svg.split("font-size=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next()?.parse::<f64>().ok())
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn every_plot_at_every_width_keeps_its_text_at_a_back_row_size_and_its_strategies_colours() {
        let input = input();
        for width in [MIN_WIDTH, 600, 1200, 1900] {
            for name in PLOTS {
                let svg = Figure::Sweep(name, &input).svg(width).unwrap();
                let smallest = smallest_text(&svg);
                assert!(smallest >= 14.0, "{name} at {width}: text of {smallest} px");
                assert!(svg.starts_with(&format!("<svg width=\"{width}\"")), "{name} at {width}");
            }
        }
        // lww-wall is vermillion wherever it is drawn, whatever comes before it.
        let mut reordered = input.clone();
        reordered.series.reverse();
        for svg in [
            Figure::Sweep(DROPPED, &input).svg(900).unwrap(),
            Figure::Sweep(DROPPED, &reordered).svg(900).unwrap(),
        ] {
            assert!(svg.contains("#D55E00"), "lww-wall's colour");
        }
        // vv and set-union drop nothing: one line, named as two.
        let dropped = Figure::Sweep(DROPPED, &input).svg(900).unwrap();
        assert!(dropped.contains("vv = set-union (one line)"), "the legend names the coinciding lines");
    }
}
