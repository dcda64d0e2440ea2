//! The timeline of one trial: when writes were dropped, against when the
//! faults happened and what every clock read.
//!
//! A sweep plot says *how many* writes a fault costs; a timeline says
//! *when*. For one trial (the sweep's largest fault, first trial) it draws
//! two panels over the workload's time, as Jepsen's plots do:
//!
//! - dropped writes per time bin, by when the dropped write was invoked,
//!   one line per strategy, with every fault window shaded (a cut until its
//!   heal, a pause until its resume, a crash until its restart) and every
//!   clock step marked by a vertical line;
//! - every replica's clock offset from true time, replayed from the clock
//!   settings and steps the runner logged, through the same clock model the
//!   replicas run: a step shows as a cliff, drift with resync as a sawtooth.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette::style_of;
use super::plots::{
    AXIS_PX, DrawResult, LegendEntry, NOTE_PX, Swatch, TEXT_PX, draw_legend, draw_markers, font,
    legend_height, text_width, titled, with_legend,
};
use crate::analysis::DroppedWrite;
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ClockEvent, replay_offsets};
use crate::history::{FaultKind, FaultName, FaultRecord, Record, TrialRecord};

/// The plot's file stem.
pub const TIMELINE: &str = "timeline";
/// How many time bins the workload is cut into.
pub const BINS: usize = 40;

/// A fault window: what, from, to (ms).
pub type Window = (String, f64, f64);
/// A clock step: what, when (ms).
pub type Instant = (String, f64);

/// What one trial's timeline shows; times are ms after the workload began.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub title: String,
    pub duration_ms: f64,
    pub bin_ms: f64,
    /// Per strategy, dropped writes per bin.
    pub drops: Vec<(String, Vec<usize>)>,
    pub windows: Vec<Window>,
    pub steps: Vec<Instant>,
    /// Per replica, `(time, offset ms)` samples.
    pub offsets: Vec<(ReplicaId, Vec<(f64, f64)>)>,
}

/// The timeline of `point`'s first trial, if the history has its `trial` record.
pub fn build(
    title: &str,
    records: &[Record],
    drops: &[DroppedWrite],
    strategies: &[String],
    point: usize,
) -> Option<Timeline> {
    let trial = 0;
    let TrialRecord { workload_start_ns: start, workload_end_ns: end, .. } =
        records.iter().find_map(|record| match record {
            Record::Trial(found) if found.point == point && found.trial == trial => Some(found.clone()),
            _ => None,
        })?;
    let duration_ms = ((end - start) as f64 / 1e6).max(1.0);
    let bin_ms = duration_ms / BINS as f64;
    let since_start = |ns: Nanos| (ns - start) as f64 / 1e6;
    let drops = strategies
        .iter()
        .map(|strategy| {
            let mut bins = vec![0; BINS];
            for drop in
                drops.iter().filter(|d| d.point == point && d.trial == trial && *d.bucket == **strategy)
            {
                let at = since_start(drop.victim.invoke_ns.unwrap_or(start));
                bins[((at / bin_ms).max(0.0) as usize).min(BINS - 1)] += 1;
            }
            (strategy.clone(), bins)
        })
        .collect();
    let mut faults: Vec<&FaultRecord> = records
        .iter()
        .filter_map(|record| match record {
            Record::Fault(fault) if fault.point == point && fault.trial == trial => Some(fault),
            _ => None,
        })
        .collect();
    faults.sort_by_key(|fault| fault.true_ns);
    let (windows, steps) = windows_and_steps(&faults, since_start, duration_ms);
    let samples: Vec<Nanos> = (0..=4 * BINS)
        .map(|i| start + ((end - start) as f64 * i as f64 / (4 * BINS) as f64) as Nanos)
        .collect();
    let mut by_replica: BTreeMap<ReplicaId, Vec<(Nanos, ClockEvent)>> = BTreeMap::new();
    for fault in &faults {
        if let Some(event) = fault.clock_event() {
            by_replica.entry(fault.replica).or_default().push((fault.true_ns, event));
        }
    }
    let offsets = by_replica
        .into_iter()
        .map(|(replica, events)| {
            let offsets = replay_offsets(&events, &samples);
            (
                replica,
                samples
                    .iter()
                    .zip(offsets)
                    .map(|(&at, offset)| (since_start(at), offset as f64 / 1e6))
                    .collect(),
            )
        })
        .collect();
    Some(Timeline { title: title.to_string(), duration_ms, bin_ms, drops, windows, steps, offsets })
}

/// Pairs each fault's start with its end (cut with heal, pause with resume,
/// crash with restart), per replica; a window left open ends with the run.
fn windows_and_steps(
    faults: &[&FaultRecord],
    since_start: impl Fn(Nanos) -> f64,
    duration_ms: f64,
) -> (Vec<Window>, Vec<Instant>) {
    let mut open: BTreeMap<(ReplicaId, FaultKind), f64> = BTreeMap::new();
    let mut windows = Vec::new();
    let mut steps = Vec::new();
    // A partition is one window for the whole cluster, named by its groups,
    // from its first cut link to the first heal.
    let mut partition: Option<(String, f64)> = None;
    for fault in faults {
        let at = since_start(fault.true_ns);
        match fault.fault {
            FaultName::Fault(FaultKind::Step) => {
                let by = fault.settings["step_ms"].as_f64().unwrap_or(0.0);
                let way = if by < 0.0 { "back" } else { "forward" };
                let size = crate::experiment::spec::shown_number(by.abs());
                steps.push((format!("replica {}'s clock steps {way} {size} ms", fault.replica), at));
            }
            FaultName::Fault(FaultKind::Partition) => {
                partition.get_or_insert_with(|| (partition_label(&fault.settings["groups"]), at));
            }
            FaultName::Fault(kind) => match lasting_field(kind) {
                // A clock fault the model ends on its own, after its settings' time.
                Some(field) => {
                    let lasting = fault.settings[field].as_f64().unwrap_or(0.0);
                    if lasting > 0.0 {
                        windows.push((
                            window_label(fault.replica, kind),
                            at,
                            (at + lasting).min(duration_ms),
                        ));
                    } else {
                        steps.push((format!("replica {} leap second", fault.replica), at));
                    }
                }
                None => {
                    open.entry((fault.replica, kind)).or_insert(at);
                }
            },
            name => {
                if name == FaultName::Heal
                    && let Some((label, from)) = partition.take()
                {
                    windows.push((label, from, at));
                }
                // The fault on this replica that this record ends (a partition's heal aside).
                let ended = [FaultKind::Cut, FaultKind::Link, FaultKind::Pause, FaultKind::Crash]
                    .into_iter()
                    .find(|kind| kind.ending() == Some(name));
                if let Some(kind) = ended
                    && let Some(from) = open.remove(&(fault.replica, kind))
                {
                    windows.push((window_label(fault.replica, kind), from, at));
                }
            }
        }
    }
    if let Some((label, from)) = partition {
        windows.push((label, from, duration_ms));
    }
    for ((replica, kind), from) in open {
        windows.push((window_label(replica, kind), from, duration_ms));
    }
    windows.sort_by(|a, b| a.1.total_cmp(&b.1));
    (windows, steps)
}

/// A fault window's name on the plot, in words.
fn window_label(replica: ReplicaId, kind: FaultKind) -> String {
    match kind {
        FaultKind::Cut => format!("replica {replica} cut off"),
        FaultKind::Link => format!("replica {replica}'s links bad"),
        FaultKind::Pause => format!("replica {replica} paused"),
        FaultKind::Crash => format!("replica {replica} crashed"),
        FaultKind::Strobe | FaultKind::Wobble | FaultKind::Jitter => {
            format!("replica {replica}'s clock {kind}s")
        }
        FaultKind::Leap => format!("replica {replica}'s leap second"),
        other => format!("replica {replica}: {other}"),
    }
}

/// The settings field that says how long a self-ending clock fault lasts.
fn lasting_field(kind: FaultKind) -> Option<&'static str> {
    match kind {
        FaultKind::Strobe => Some("strobe_for_ms"),
        FaultKind::Wobble => Some("wobble_for_ms"),
        FaultKind::Jitter => Some("jitter_for_ms"),
        FaultKind::Leap => Some("leap_smear_ms"),
        _ => None,
    }
}

/// `partition {1,2} | {3,4,5}`, from a partition record's groups.
fn partition_label(groups: &serde_json::Value) -> String {
    let groups: Vec<String> = groups
        .as_array()
        .into_iter()
        .flatten()
        .map(|group| {
            let members: Vec<String> =
                group.as_array().into_iter().flatten().map(|member| member.to_string()).collect();
            format!("{{{}}}", members.join(","))
        })
        .collect();
    format!("partition {}", groups.join(" | "))
}

/// Heights of the two panels, in pixels.
const DROPS_HEIGHT: u32 = 280;
const OFFSETS_HEIGHT: u32 = 230;

/// Colours for replicas' clocks: neutral tones, apart from every
/// strategy's colour, so a replica is never read as a strategy.
pub const REPLICA_COLOURS: [RGBColor; 5] = [
    RGBColor(0, 0, 0),
    RGBColor(120, 120, 120),
    RGBColor(40, 60, 140),
    RGBColor(150, 60, 40),
    RGBColor(60, 120, 60),
];

fn strategy_entries(timeline: &Timeline) -> Vec<LegendEntry> {
    timeline.drops.iter().map(|(strategy, _)| LegendEntry::strategy(strategy, strategy.clone())).collect()
}

fn replica_entries(timeline: &Timeline) -> Vec<LegendEntry> {
    timeline
        .offsets
        .iter()
        .enumerate()
        .map(|(index, (replica, _))| LegendEntry {
            swatch: Swatch::Line(REPLICA_COLOURS[index % REPLICA_COLOURS.len()]),
            label: format!("replica {replica}'s clock"),
        })
        .collect()
}

/// How tall the timeline is at `width`.
pub fn height(timeline: &Timeline, width: u32) -> u32 {
    40 + DROPS_HEIGHT
        + OFFSETS_HEIGHT
        + legend_height(&strategy_entries(timeline), width)
        + legend_height(&replica_entries(timeline), width)
}

pub(super) fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, timeline: &Timeline) -> DrawResult<DB> {
    let body = titled(area, &timeline.title)?;
    let (width, _) = body.dim_in_pixel();
    let strategies = strategy_entries(timeline);
    let (top, bottom) = body.split_vertically(DROPS_HEIGHT + legend_height(&strategies, width));
    let (drops, drops_legend) = with_legend(&top, &strategies);
    draw_drops(&drops, timeline)?;
    draw_legend(&drops_legend, &strategies)?;
    let replicas = replica_entries(timeline);
    let (offsets, offsets_legend) = with_legend(&bottom, &replicas);
    draw_offsets(&offsets, timeline)?;
    draw_legend(&offsets_legend, &replicas)
}

const SHADE: RGBAColor = RGBAColor(120, 120, 120, 0.22);

type TimeChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Shades every fault window and marks every clock step; with `named`, writes
/// what each is, in rows so that no two names overlap.
fn shade_faults<DB: DrawingBackend>(
    chart: &mut TimeChart<'_, DB>,
    timeline: &Timeline,
    (low, high): (f64, f64),
    named: bool,
) -> DrawResult<DB> {
    let seconds = |ms: f64| ms / 1e3;
    for (_, from, to) in &timeline.windows {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(seconds(*from), low), (seconds(*to), high)],
            SHADE.filled(),
        )))?;
    }
    for (_, at) in &timeline.steps {
        chart.draw_series(LineSeries::new(
            [(seconds(*at), low), (seconds(*at), high)],
            BLACK.stroke_width(2),
        ))?;
    }
    if !named {
        return Ok(());
    }
    // Each name in the first row where it does not run into one before it.
    let pixels = chart.plotting_area().get_pixel_range().0;
    let (left, right) = (pixels.start, pixels.end);
    let pixels_per_second = f64::from(right - left) / (timeline.duration_ms / 1e3).max(1e-9);
    let mut rows: Vec<f64> = Vec::new();
    let mut names: Vec<(&str, f64)> = timeline
        .windows
        .iter()
        .map(|(label, from, _)| (label.as_str(), *from))
        .chain(timeline.steps.iter().map(|(label, at)| (label.as_str(), *at)))
        .collect();
    names.sort_by(|a, b| a.1.total_cmp(&b.1));
    for (label, at) in names {
        let x = seconds(at) * pixels_per_second;
        let width = f64::from(text_width(label, NOTE_PX)) + 10.0;
        let row = rows.iter().position(|&free_from| free_from <= x).unwrap_or(rows.len());
        if row == rows.len() {
            rows.push(0.0);
        }
        rows[row] = x + width;
        let style = font(NOTE_PX).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Top));
        chart.draw_series(std::iter::once(
            EmptyElement::at((seconds(at), high))
                + Text::new(label.to_string(), (3, 2 + 18 * row as i32), style),
        ))?;
    }
    Ok(())
}

fn draw_drops<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, timeline: &Timeline) -> DrawResult<DB> {
    let most = timeline.drops.iter().flat_map(|(_, bins)| bins.iter().copied()).max().unwrap_or(0).max(1)
        as f64
        * 1.6;
    let seconds = timeline.duration_ms / 1e3;
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .margin_right(24)
        .x_label_area_size(34)
        .y_label_area_size(74)
        .build_cartesian_2d(0.0..seconds, 0.0..most)?;
    chart
        .configure_mesh()
        .y_desc(format!("dropped per {:.0} ms", timeline.bin_ms))
        .x_labels(8)
        .y_labels(5)
        .max_light_lines(2)
        .label_style(font(TEXT_PX))
        .axis_desc_style(font(AXIS_PX))
        .draw()?;
    shade_faults(&mut chart, timeline, (0.0, most), true)?;
    for (strategy, bins) in &timeline.drops {
        let style = style_of(strategy);
        let points: Vec<(f64, f64)> = bins
            .iter()
            .enumerate()
            .map(|(bin, &count)| ((bin as f64 + 0.5) * timeline.bin_ms / 1e3, count as f64))
            .collect();
        chart.draw_series(LineSeries::new(points.iter().copied(), style.colour.stroke_width(2)))?;
        draw_markers(&mut chart, &points, style, 3)?;
    }
    Ok(())
}

fn draw_offsets<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, timeline: &Timeline) -> DrawResult<DB> {
    let all = timeline.offsets.iter().flat_map(|(_, samples)| samples.iter().map(|(_, offset)| *offset));
    let (low, high) = all.fold((0.0_f64, 0.0_f64), |(low, high), offset| (low.min(offset), high.max(offset)));
    let pad = ((high - low) * 0.15).max(1.0);
    let (low, high) = (low - pad, high + pad);
    let seconds = timeline.duration_ms / 1e3;
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .margin_right(24)
        .x_label_area_size(56)
        .y_label_area_size(74)
        .build_cartesian_2d(0.0..seconds, low..high)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the workload started")
        .y_desc("clock offset (ms)")
        .x_labels(8)
        .y_labels(5)
        .max_light_lines(2)
        .label_style(font(TEXT_PX))
        .axis_desc_style(font(AXIS_PX))
        .draw()?;
    shade_faults(&mut chart, timeline, (low, high), false)?;
    for (index, (_, samples)) in timeline.offsets.iter().enumerate() {
        let colour = REPLICA_COLOURS[index % REPLICA_COLOURS.len()];
        chart.draw_series(LineSeries::new(
            samples.iter().map(|(ms, offset)| (ms / 1e3, *offset)),
            colour.stroke_width(2),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn fault(replica: ReplicaId, at_ms: i64, name: &str, settings: Value) -> FaultRecord {
        let fault = FaultName::parse(name).expect("a record's name");
        FaultRecord { point: 0, trial: 0, true_ns: at_ms * 1_000_000, replica, fault, settings, worker: None }
    }

    #[test]
    fn windows_pair_each_fault_with_its_end_and_steps_stand_alone() {
        let faults = [
            fault(1, 100, "cut", json!({"peer": 2})),
            fault(1, 100, "cut", json!({"peer": 3})),
            fault(2, 200, "pause", Value::Null),
            fault(1, 400, "heal", json!({"peer": 2})),
            fault(1, 400, "heal", json!({"peer": 3})),
            fault(3, 500, "step", json!({"step_ms": -250.0})),
        ];
        let refs: Vec<&FaultRecord> = faults.iter().collect();
        let (windows, steps) = windows_and_steps(&refs, |ns| ns as f64 / 1e6, 1000.0);
        assert_eq!(
            windows,
            vec![
                ("replica 1 cut off".to_string(), 100.0, 400.0),
                ("replica 2 paused".to_string(), 200.0, 1000.0)
            ]
        );
        assert_eq!(steps, vec![("replica 3's clock steps back 250 ms".to_string(), 500.0)]);
    }

    #[test]
    fn a_partition_is_one_window_named_by_its_groups() {
        let groups = json!([[1, 2], [3, 4, 5]]);
        let faults = [
            fault(1, 100, "partition", json!({"peer": 3, "cut": "both", "groups": groups})),
            fault(3, 100, "partition", json!({"peer": 1, "cut": "both", "groups": groups})),
            fault(1, 600, "heal", json!({"peer": 2})),
            fault(3, 600, "heal", json!({"peer": 1})),
        ];
        let refs: Vec<&FaultRecord> = faults.iter().collect();
        let (windows, _) = windows_and_steps(&refs, |ns| ns as f64 / 1e6, 1000.0);
        assert_eq!(windows, vec![("partition {1,2} | {3,4,5}".to_string(), 100.0, 600.0)]);
    }
}
