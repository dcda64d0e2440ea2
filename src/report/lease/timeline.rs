//! `lease-timeline`: one lease trial drawn as DDIA draws Figures 8-4 and
//! 8-5.
//!
//! One panel per guard, one row per worker, time running right. In each
//! row, the upper bar is when the lock service considered the worker's
//! lease in force (from its grant to its TTL after the last renewal,
//! labelled with its token) and the lower bar is when the worker *believed*
//! it held the lease. Where the lower bar runs past the upper one, the
//! worker acted on a lease that was no longer its own. Pauses are shaded,
//! clock steps are vertical lines, and every write of the protected value
//! is a mark on the worker's belief: accepted, accepted from an expired
//! lease, accepted over an increment (the harm), or refused by fencing.
//! Everything is read from the history alone (`analysis::lease`).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analysis::lease::{WriteVerdict, judge};
use crate::clock::Nanos;
use crate::history::{FaultKind, FaultName, Record};
use crate::lease::{Guard, Token, WorkerId};
use crate::report::palette::{Marker, Style, guard_style};
use crate::report::plots::{
    AXIS_PX, DrawResult, LegendEntry, NOTE_PX, Swatch, TEXT_PX, draw_legend, draw_markers, font,
    legend_height, titled,
};

/// The plot's file stem.
pub const LEASE_TIMELINE: &str = "lease-timeline";

/// Heights, in pixels: the title strip, a panel's caption, one worker's
/// row, a panel's time axis.
const TITLE_STRIP: u32 = 40;
const CAPTION: u32 = 34;
const ROW: u32 = 58;
const TIME_AXIS: u32 = 64;

/// One lease as drawn: ms after the workload started.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseBar {
    pub worker: WorkerId,
    pub token: Token,
    /// In force at the service, from, to.
    pub service: (f64, f64),
    /// Believed by its worker, from, to (`None`: it never heard of its grant).
    pub believed: Option<(f64, f64)>,
}

/// One write as drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteMark {
    pub worker: WorkerId,
    /// When the storage answered, ms.
    pub at_ms: f64,
    pub verdict: WriteVerdict,
}

/// One guard's panel.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardPanel {
    pub guard: Guard,
    pub leases: Vec<LeaseBar>,
    pub writes: Vec<WriteMark>,
}

/// What the plot shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseTimeline {
    pub title: String,
    pub duration_ms: f64,
    pub workers: Vec<WorkerId>,
    pub panels: Vec<GuardPanel>,
    /// Each worker's pauses, from, to (ms).
    pub pauses: Vec<(WorkerId, f64, f64)>,
    /// Each worker's clock steps: when (ms) and by how much (ms).
    pub steps: Vec<(WorkerId, f64, f64)>,
    /// Drawn only up to this moment (ms), marked by a line: a story told
    /// step by step.
    pub now_ms: Option<f64>,
}

impl LeaseTimeline {
    /// What had happened by `now_ms`: bars cut there, later writes, pauses
    /// and steps left out, and a line marking the moment.
    pub fn upto(&self, now_ms: f64) -> LeaseTimeline {
        let cut = |(from, to): (f64, f64)| (from <= now_ms).then_some((from, to.min(now_ms)));
        let panels = self
            .panels
            .iter()
            .map(|panel| GuardPanel {
                guard: panel.guard,
                leases: panel
                    .leases
                    .iter()
                    .filter_map(|lease| {
                        Some(LeaseBar {
                            service: cut(lease.service)?,
                            believed: lease.believed.and_then(cut),
                            ..lease.clone()
                        })
                    })
                    .collect(),
                writes: panel.writes.iter().filter(|write| write.at_ms <= now_ms).cloned().collect(),
            })
            .collect();
        LeaseTimeline {
            panels,
            pauses: self
                .pauses
                .iter()
                .filter_map(|&(worker, from, to)| cut((from, to)).map(|(from, to)| (worker, from, to)))
                .collect(),
            steps: self.steps.iter().copied().filter(|&(_, at, _)| at <= now_ms).collect(),
            now_ms: Some(now_ms),
            ..self.clone()
        }
    }
}

/// The timeline of `point`'s first trial, if the history holds it.
pub fn build(title: &str, records: &[Record], point: usize) -> Option<LeaseTimeline> {
    let trial = 0;
    let (start, end) = records.iter().find_map(|record| match record {
        Record::Trial(found) if found.point == point && found.trial == trial => {
            Some((found.workload_start_ns, found.workload_end_ns))
        }
        _ => None,
    })?;
    let duration_ms = ((end - start) as f64 / 1e6).max(1.0);
    let ms = |ns: Nanos| ((ns - start) as f64 / 1e6).clamp(0.0, duration_ms);
    let leases: Vec<_> = records
        .iter()
        .filter_map(|record| match record {
            Record::Lease(lease) if lease.point == point && lease.trial == trial => Some(lease),
            _ => None,
        })
        .collect();
    if leases.is_empty() {
        return None;
    }
    let mut workers: Vec<WorkerId> = leases.iter().map(|lease| lease.worker).collect();
    workers.sort();
    workers.dedup();
    // The final values only count lost updates, which this plot does not draw.
    let panels = judge(leases, [], end)
        .into_iter()
        .map(|(guard, verdict)| GuardPanel {
            guard,
            leases: verdict
                .leases
                .iter()
                .map(|span| LeaseBar {
                    worker: span.worker,
                    token: span.token,
                    service: (ms(span.granted_ns), ms(span.service_end_ns)),
                    believed: span.believed.map(|(from, to)| (ms(from), ms(to))),
                })
                .collect(),
            writes: verdict
                .writes
                .iter()
                .map(|write| WriteMark {
                    worker: write.worker,
                    at_ms: ms(write.answered_ns),
                    verdict: write.verdict,
                })
                .collect(),
        })
        .collect();
    let mut pauses = Vec::new();
    let mut steps = Vec::new();
    let mut paused: Vec<(WorkerId, f64)> = Vec::new();
    let mut faults: Vec<_> = records
        .iter()
        .filter_map(|record| match record {
            Record::Fault(fault) if fault.point == point && fault.trial == trial => {
                fault.worker.map(|worker| (fault, worker))
            }
            _ => None,
        })
        .collect();
    faults.sort_by_key(|(fault, _)| fault.true_ns);
    for (fault, worker) in faults {
        let at = ms(fault.true_ns);
        match fault.fault {
            FaultName::Fault(FaultKind::Pause) => paused.push((worker, at)),
            FaultName::Resume => {
                if let Some(index) = paused.iter().position(|(who, _)| *who == worker) {
                    let (_, from) = paused.remove(index);
                    pauses.push((worker, from, at));
                }
            }
            _ => {
                if let Some(by) = fault.settings["step_ms"].as_f64() {
                    steps.push((worker, at, by));
                }
            }
        }
    }
    pauses.extend(paused.into_iter().map(|(worker, from)| (worker, from, duration_ms)));
    Some(LeaseTimeline {
        title: title.to_string(),
        duration_ms,
        workers,
        panels,
        pauses,
        steps,
        now_ms: None,
    })
}

/// The service's bars: dark, so the belief below reads against them.
const SERVICE: RGBColor = RGBColor(70, 70, 70);
const SHADE: RGBAColor = RGBAColor(120, 120, 120, 0.28);
/// The line marking the moment a story has reached.
const NOW: RGBColor = RGBColor(200, 0, 0);

/// How each verdict is marked.
fn mark_style(verdict: WriteVerdict) -> Style {
    match verdict {
        WriteVerdict::Fine => Style { colour: RGBColor(0, 0, 0), marker: Marker::Circle },
        WriteVerdict::Stale => Style { colour: RGBColor(230, 159, 0), marker: Marker::Triangle },
        WriteVerdict::Harmful => Style { colour: RGBColor(200, 0, 0), marker: Marker::Star },
        WriteVerdict::Fenced => Style { colour: RGBColor(204, 121, 167), marker: Marker::Square },
        WriteVerdict::Failed => Style { colour: RGBColor(150, 150, 150), marker: Marker::Diamond },
    }
}

fn entries(timeline: &LeaseTimeline) -> Vec<LegendEntry> {
    let mut entries = vec![
        LegendEntry { swatch: Swatch::Fill(SERVICE), label: "lease in force at the service".into() },
        LegendEntry {
            swatch: Swatch::Fill(RGBColor(150, 190, 225)),
            label: "worker believes it holds it (its guard's colour)".into(),
        },
    ];
    if !timeline.pauses.is_empty() {
        entries.push(LegendEntry { swatch: Swatch::Fill(RGBColor(200, 200, 200)), label: "paused".into() });
    }
    if !timeline.steps.is_empty() {
        entries.push(LegendEntry { swatch: Swatch::Line(RGBColor(0, 0, 0)), label: "clock step".into() });
    }
    for verdict in [WriteVerdict::Fine, WriteVerdict::Stale, WriteVerdict::Harmful, WriteVerdict::Fenced] {
        if timeline.panels.iter().any(|panel| panel.writes.iter().any(|write| write.verdict == verdict)) {
            entries.push(LegendEntry {
                swatch: Swatch::Mark(mark_style(verdict)),
                label: verdict.label().into(),
            });
        }
    }
    entries
}

fn panel_height(timeline: &LeaseTimeline) -> u32 {
    CAPTION + timeline.workers.len().max(1) as u32 * ROW + TIME_AXIS
}

/// How tall the plot is at `width`.
pub fn height(timeline: &LeaseTimeline, width: u32) -> u32 {
    TITLE_STRIP
        + timeline.panels.len() as u32 * panel_height(timeline)
        + legend_height(&entries(timeline), width)
}

pub fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, timeline: &LeaseTimeline) -> DrawResult<DB> {
    let body = titled(area, &timeline.title)?;
    let (width, height) = body.dim_in_pixel();
    let legend_entries = entries(timeline);
    let (mut rest, legend) =
        body.split_vertically(height - legend_height(&legend_entries, width).min(height / 2));
    for panel in &timeline.panels {
        let (this, below) = rest.split_vertically(panel_height(timeline));
        draw_panel(&this, timeline, panel)?;
        rest = below;
    }
    draw_legend(&legend, &legend_entries)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    timeline: &LeaseTimeline,
    panel: &GuardPanel,
) -> DrawResult<DB> {
    let rows = timeline.workers.len().max(1);
    let seconds = timeline.duration_ms / 1e3;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("guard: {}", panel.guard), font(AXIS_PX))
        .margin(6)
        .margin_right(24)
        .x_label_area_size(TIME_AXIS - 8)
        .y_label_area_size(96)
        .build_cartesian_2d(0.0..seconds, 0.0..rows as f64)?;
    // Worker 1 on top.
    let base = |worker: WorkerId| {
        let index = timeline.workers.iter().position(|&known| known == worker).unwrap_or(0);
        (rows - 1 - index) as f64
    };
    let names: Vec<String> = timeline.workers.iter().map(|worker| worker.to_string()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows * 2 + 1)
        .y_label_formatter(&|y| {
            // A label at each row's middle only.
            let row = y - y.floor();
            if (row - 0.5).abs() > 1e-6 {
                return String::new();
            }
            let index = rows - 1 - y.floor() as usize;
            names.get(index).cloned().unwrap_or_default()
        })
        .x_labels(8)
        .x_desc("seconds since the workload started")
        .label_style(font(TEXT_PX))
        .axis_desc_style(font(TEXT_PX))
        .draw()?;
    let s = |ms: f64| ms / 1e3;
    for &(worker, from, to) in &timeline.pauses {
        let b = base(worker);
        chart
            .draw_series(std::iter::once(Rectangle::new([(s(from), b), (s(to), b + 1.0)], SHADE.filled())))?;
    }
    let belief = guard_style(panel.guard).colour;
    let light = RGBAColor(belief.0, belief.1, belief.2, 0.45);
    let token_style = font(NOTE_PX).color(&WHITE).pos(Pos::new(HPos::Left, VPos::Center));
    for lease in &panel.leases {
        let b = base(lease.worker);
        let (from, to) = lease.service;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(s(from), b + 0.54), (s(to), b + 0.88)],
            SERVICE.filled(),
        )))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((s(from), b + 0.71))
                + Text::new(lease.token.0.to_string(), (4, 0), token_style.clone()),
        ))?;
        if let Some((from, to)) = lease.believed {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(s(from), b + 0.12), (s(to), b + 0.46)],
                light.filled(),
            )))?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(s(from), b + 0.12), (s(to), b + 0.46)],
                belief.stroke_width(2),
            )))?;
        }
    }
    if let Some(now) = timeline.now_ms {
        chart.draw_series(LineSeries::new([(s(now), 0.0), (s(now), rows as f64)], NOW.stroke_width(2)))?;
    }
    for &(worker, at, _) in &timeline.steps {
        let b = base(worker);
        chart.draw_series(LineSeries::new([(s(at), b), (s(at), b + 1.0)], BLACK.stroke_width(3)))?;
    }
    for verdict in [
        WriteVerdict::Fine,
        WriteVerdict::Failed,
        WriteVerdict::Fenced,
        WriteVerdict::Stale,
        WriteVerdict::Harmful,
    ] {
        let points: Vec<(f64, f64)> = panel
            .writes
            .iter()
            .filter(|write| write.verdict == verdict)
            .map(|write| (s(write.at_ms), base(write.worker) + 0.29))
            .collect();
        let size = if matches!(verdict, WriteVerdict::Harmful | WriteVerdict::Fenced) { 9 } else { 7 };
        draw_markers(&mut chart, &points, mark_style(verdict), size)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{FaultRecord, LeaseEvent, LeaseRecord, TrialRecord};
    use crate::lease::worker::WriteOutcome;

    const MS: Nanos = 1_000_000;

    fn lease(at_ms: i64, worker: u32, token: u64, event: LeaseEvent) -> Record {
        Record::Lease(LeaseRecord {
            point: 0,
            trial: 0,
            true_ns: at_ms * MS,
            worker: WorkerId(worker),
            guard: Guard::Monotonic,
            token: Token(token),
            event,
        })
    }

    fn fault(at_ms: i64, name: &str) -> Record {
        Record::Fault(FaultRecord {
            point: 0,
            trial: 0,
            true_ns: at_ms * MS,
            replica: 0,
            fault: FaultName::parse(name).expect("a fault's name"),
            settings: serde_json::Value::Null,
            worker: Some(WorkerId(1)),
        })
    }

    fn write(at_ms: i64, worker: u32, token: u64, wrote: u64, outcome: WriteOutcome) -> Record {
        let event = LeaseEvent::Write {
            invoke_ns: (at_ms - 1) * MS,
            replica: 1,
            read: wrote - 1,
            wrote,
            fenced: false,
            outcome,
        };
        lease(at_ms, worker, token, event)
    }

    /// Figure 8-4 as records: the bars, the pause and the marks come out
    /// where the story puts them, and the plot draws at any width.
    #[test]
    fn figure_8_4_is_drawn_from_its_records() {
        let trial = TrialRecord {
            point: 0,
            trial: 0,
            workload_start_ns: 0,
            workload_end_ns: 3000 * MS,
            converged: true,
            converge_ms: 0.0,
            engine: Default::default(),
            failed_buckets: Default::default(),
            notes: Vec::new(),
        };
        let records = vec![
            Record::Trial(trial),
            lease(0, 1, 33, LeaseEvent::Granted { ttl_ms: 1000.0 }),
            lease(0, 1, 33, LeaseEvent::Acquired),
            fault(200, "pause"),
            lease(1100, 2, 34, LeaseEvent::Granted { ttl_ms: 1000.0 }),
            lease(1100, 2, 34, LeaseEvent::Acquired),
            write(1200, 2, 34, 1, WriteOutcome::Ok),
            fault(1800, "resume"),
            write(1801, 1, 33, 1, WriteOutcome::Ok),
            lease(1900, 1, 33, LeaseEvent::Lost),
        ];
        let timeline = build("figure 8-4", &records, 0).expect("a timeline");
        assert_eq!(timeline.workers, [WorkerId(1), WorkerId(2)]);
        assert_eq!(timeline.pauses, [(WorkerId(1), 200.0, 1800.0)]);
        let panel = &timeline.panels[0];
        assert_eq!(panel.leases[0].service, (0.0, 1000.0));
        assert_eq!(panel.leases[0].believed, Some((0.0, 1900.0)), "believed through its pause");
        let marks: Vec<(u32, WriteVerdict)> =
            panel.writes.iter().map(|write| (write.worker.0, write.verdict)).collect();
        assert_eq!(marks, [(2, WriteVerdict::Fine), (1, WriteVerdict::Harmful)]);
        for width in [crate::report::figures::MIN_WIDTH, 880, 1900] {
            let svg = crate::report::figures::Figure::LeaseTimeline(&timeline).svg(width).unwrap();
            assert!(svg.contains("guard: monotonic") && svg.contains("\n34\n"), "labels at {width}");
            assert!(crate::report::figures::tests::smallest_text(&svg) >= 14.0, "text at {width}");
        }
    }
}
