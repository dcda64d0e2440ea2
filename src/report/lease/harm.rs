//! `lease-harm`: what each guard let through, against the swept parameter.
//!
//! Two panels, one line per guard: writes the storage accepted from a
//! worker whose lease had already ended at the lock service, and
//! increments lost from the protected value, each per trial. A guard that
//! is safe lies flat on zero in both; `fenced` may still have let two
//! workers *believe* at once (the verdict table counts those overlaps), but
//! its stale writes are refused, so it loses nothing.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::analysis::lease::LeaseRow;
use crate::experiment::spec::{Parameter, Spec};
use crate::lease::Guard;
use crate::report::axis::SweepAxis;
use crate::report::palette::guard_style;
use crate::report::plots::{
    DrawResult, Frame, LegendEntry, Swatch, axis_chart, draw_legend, draw_styled_line, legend_height, titled,
};

/// The plot's file stem.
pub const LEASE_HARM: &str = "lease-harm";

/// The title strip and one panel, in pixels; the narrowest a panel may be
/// before the two stack.
const TITLE_STRIP: u32 = 40;
const PANEL_HEIGHT: u32 = 330;
const PANEL_WIDTH: u32 = 380;

/// One guard at one sweep value, per trial.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardPoint {
    pub stale_per_trial: f64,
    pub lost_per_trial: f64,
}

/// What the plot shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseHarm {
    pub experiment: String,
    pub parameter: Parameter,
    /// The sweep's values, in its order.
    pub values: Vec<f64>,
    /// Per guard, its figures at each value (in `values`' order).
    pub guards: Vec<(Guard, Vec<GuardPoint>)>,
}

impl LeaseHarm {
    /// From a run's verdict rows. In a two-parameter sweep, the points at
    /// the second parameter's middle value (as the other runs' plots do).
    pub fn build(experiment: &str, spec: &Spec, rows: &[LeaseRow]) -> LeaseHarm {
        let values = spec.sweep.values.clone();
        let offset = spec.sweep.across.as_ref().map_or(0, |across| across.values.len() / 2 * values.len());
        let guards = spec
            .lease
            .as_ref()
            .map(|lease| lease.guards.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|guard| {
                let points = (0..values.len())
                    .map(|point| {
                        let row =
                            rows.iter().find(|row| row.point == offset + point && row.guard == Some(guard));
                        let per_trial =
                            |count: u64| row.map_or(0.0, |row| count as f64 / row.trials.max(1) as f64);
                        GuardPoint {
                            stale_per_trial: per_trial(row.map_or(0, |row| row.stale_acked)),
                            lost_per_trial: per_trial(row.map_or(0, |row| row.lost_updates)),
                        }
                    })
                    .collect();
                (guard, points)
            })
            .collect();
        LeaseHarm { experiment: experiment.to_string(), parameter: spec.sweep.parameter, values, guards }
    }

    fn axis(&self) -> SweepAxis {
        SweepAxis::new(Some(self.parameter), &self.values)
    }

    /// One entry per guard, except that guards whose lines lie on one
    /// another in both panels share one ("wall-clock = monotonic (one
    /// line)"), their markers nested as the panels draw them.
    fn entries(&self) -> Vec<LegendEntry> {
        let mut groups: Vec<Vec<(Guard, &Vec<GuardPoint>)>> = Vec::new();
        for (guard, points) in &self.guards {
            match groups.iter_mut().find(|group| group[0].1 == points) {
                Some(group) => group.push((*guard, points)),
                None => groups.push(vec![(*guard, points)]),
            }
        }
        groups
            .into_iter()
            .map(|group| match group.as_slice() {
                [(guard, _)] => {
                    LegendEntry { swatch: Swatch::Styled(guard_style(*guard)), label: guard.to_string() }
                }
                _ => LegendEntry {
                    swatch: Swatch::StyledGroup(group.iter().map(|(guard, _)| guard_style(*guard)).collect()),
                    label: format!(
                        "{} (one line)",
                        group.iter().map(|(guard, _)| guard.as_str()).collect::<Vec<_>>().join(" = ")
                    ),
                },
            })
            .collect()
    }
}

/// What a panel draws of each point.
type Measure = fn(&GuardPoint) -> f64;

fn side_by_side(width: u32) -> bool {
    width >= 2 * PANEL_WIDTH + 40
}

/// How tall the plot is at `width`.
pub fn height(harm: &LeaseHarm, width: u32) -> u32 {
    let panels = if side_by_side(width) { 1 } else { 2 };
    TITLE_STRIP + panels * PANEL_HEIGHT + legend_height(&harm.entries(), width)
}

pub fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, harm: &LeaseHarm) -> DrawResult<DB> {
    let title = format!("{}: what each way of checking the lease let through", harm.experiment);
    let body = titled(area, &title)?;
    let (width, height) = body.dim_in_pixel();
    let entries = harm.entries();
    let (charts, legend) = body.split_vertically(height - legend_height(&entries, width).min(height / 2));
    let (first, second) = if side_by_side(width) {
        charts.split_horizontally(width / 2)
    } else {
        charts.split_vertically(PANEL_HEIGHT)
    };
    let panels: [(&DrawingArea<DB, Shift>, &str, Measure); 2] = [
        (&first, "writes accepted from an expired lease", |point| point.stale_per_trial),
        (&second, "increments lost (the harm)", |point| point.lost_per_trial),
    ];
    let axis = harm.axis();
    for (panel, title, measure) in panels {
        let lines: Vec<(Guard, Vec<(f64, f64)>)> = harm
            .guards
            .iter()
            .map(|(guard, points)| {
                (
                    *guard,
                    points.iter().enumerate().map(|(x, point)| (axis.place(x), measure(point))).collect(),
                )
            })
            .collect();
        let highest = lines.iter().flat_map(|(_, line)| line.iter().map(|&(_, y)| y)).fold(1.0, f64::max);
        let frame =
            Frame { title: Some(title), x_desc: harm.parameter.lease_axis_label(), y_desc: "per trial" };
        let mut chart = axis_chart(panel, &frame, &axis, Some(harm.parameter), highest)?;
        // Lines that lie on one another: each later one's markers smaller,
        // so that none hides another.
        for (index, (guard, line)) in lines.iter().enumerate() {
            let layer = lines[..index].iter().filter(|(_, other)| other == line).count();
            draw_styled_line(&mut chart, line, guard_style(*guard), layer)?;
        }
    }
    draw_legend(&legend, &entries)
}
