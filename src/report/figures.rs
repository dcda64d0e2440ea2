//! Every plot of a run, drawn in one go: which plots there are, in which
//! order, and each as SVG and PNG. The pictures themselves are in
//! [`super::plots`] and [`super::costs`].

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plots::{
    PLOT_SIZE, PlotError, PlotInput, draw_causes, draw_dropped, draw_siblings, register_font,
};

/// The plots' file stems, in the order they are drawn.
pub const PLOTS: [&str; 4] = ["dropped", "causes", "siblings", "costs"];

/// Draws every plot into `dir` as `NAME.svg` and `NAME.png`; returns the paths.
pub fn draw_all(dir: &Path, input: &PlotInput) -> Result<Vec<PathBuf>, PlotError> {
    register_font();
    let mut written = Vec::new();
    for name in PLOTS {
        let svg = dir.join(format!("{name}.svg"));
        let png = dir.join(format!("{name}.png"));
        draw(name, SVGBackend::new(&svg, PLOT_SIZE).into_drawing_area(), input, &svg)?;
        draw(name, BitMapBackend::new(&png, PLOT_SIZE).into_drawing_area(), input, &png)?;
        written.extend([svg, png]);
    }
    Ok(written)
}

fn draw<DB: DrawingBackend>(
    name: &str,
    area: DrawingArea<DB, Shift>,
    input: &PlotInput,
    path: &Path,
) -> Result<(), PlotError> {
    let fail =
        |error: &dyn std::fmt::Display| PlotError { path: path.to_path_buf(), message: error.to_string() };
    area.fill(&WHITE).map_err(|error| fail(&error))?;
    let result = match name {
        "dropped" => draw_dropped(&area, input),
        "causes" => draw_causes(&area, input),
        "siblings" => draw_siblings(&area, input),
        _ => super::costs::draw(&area, input),
    };
    result.map_err(|error| fail(&error))?;
    area.present().map_err(|error| fail(&error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plots::{PointFigures, StrategySeries};

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
            parameter: "skew_ms".into(),
            parameter_name: "skew_ms".into(),
            series: vec![
                series("lww-wall", true, 10.0),
                series("lww-hlc", true, 3.0),
                series("vv", false, 0.0),
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
        let written = draw_all(dir.path(), &input()).unwrap();
        assert_eq!(written.len(), 2 * PLOTS.len());
        let (width, height) = PLOT_SIZE;
        for name in PLOTS {
            let image = image::open(dir.path().join(format!("{name}.png"))).unwrap().to_rgb8();
            assert_eq!(image.dimensions(), PLOT_SIZE);
            let (title_dark, _) = count(&image, 200..width - 200, 0..44);
            assert!(title_dark > 200, "{name}: no title text ({title_dark} dark pixels)");
            // The y axis labels and description, left of the tick marks.
            let (y_labels, _) = count(&image, 0..60, 60..height - 80);
            assert!(y_labels > 150, "{name}: no y-axis labels ({y_labels} dark pixels)");
            // The x axis labels and description, below the tick marks.
            let (x_labels, _) = count(&image, 100..width - 20, height - 50..height);
            assert!(x_labels > 150, "{name}: no x-axis labels ({x_labels} dark pixels)");
            let (_, data) = count(&image, 100..width - 30, 60..height - 80);
            assert!(data > 500, "{name}: no data drawn ({data} coloured pixels)");
            let svg = std::fs::read_to_string(dir.path().join(format!("{name}.svg"))).unwrap();
            let axis = if name == "costs" { "latency" } else { "skew_ms" };
            assert!(svg.contains("<text") && svg.contains(axis), "{name}.svg has no axis text");
        }
    }
}
