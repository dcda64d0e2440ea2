//! Estimated against true clock offsets over one trial.
//!
//! Every replica estimates its peers' offsets from replication round trips
//! (`replica::offsets`); the runner samples those estimates during the
//! workload. An estimate is relative: "replica 1's clock reads 480 ms ahead
//! of mine". This plot takes one observer, the highest-numbered replica, and
//! draws for each peer the true difference between the two clocks (replayed
//! from the settings the runner logged) as a line, and the observer's
//! estimates as points with their error bounds. A good monitor's points sit
//! on the line, and the line always lies within the bars.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plots::{
    AXIS_PX, DrawResult, LegendEntry, Swatch, TEXT_PX, draw_legend, font, legend_height, titled, with_legend,
};
use super::timeline::REPLICA_COLOURS;
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ClockEvent, replay_offsets};
use crate::history::{Record, SampleRecord};

/// The plot's file stem.
pub const OFFSETS: &str = "offsets";

/// One peer as the observer saw it; times are ms since the workload began.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerOffsets {
    pub peer: ReplicaId,
    /// `(time, true offset of peer minus observer, ms)`.
    pub truth: Vec<(f64, f64)>,
    /// Each distinct estimate: when it was measured, its value and error
    /// bound, and the true offset at that moment (all ms).
    pub estimates: Vec<EstimatePoint>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EstimatePoint {
    pub at_ms: f64,
    pub offset_ms: f64,
    pub error_ms: f64,
    pub truth_ms: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OffsetsPlot {
    pub title: String,
    pub observer: ReplicaId,
    pub peers: Vec<PeerOffsets>,
}

impl OffsetsPlot {
    /// The largest gap between an estimate and the truth at its time, and
    /// how many estimates' bounds held the truth, out of how many.
    pub fn accuracy(&self) -> (f64, usize, usize) {
        let mut worst = 0.0_f64;
        let (mut held, mut all) = (0, 0);
        for peer in &self.peers {
            for estimate in &peer.estimates {
                let miss = (estimate.offset_ms - estimate.truth_ms).abs();
                worst = worst.max(miss);
                all += 1;
                // A sample straddling a step or resync can miss; allow the
                // 1 ms the clocks' own reading takes.
                held += usize::from(miss <= estimate.error_ms + 1.0);
            }
        }
        (worst, held, all)
    }
}

/// The plot for `point`'s first trial, if the history sampled estimates.
pub fn build(title: &str, records: &[Record], point: usize) -> Option<OffsetsPlot> {
    let trial = 0;
    let start = records.iter().find_map(|record| match record {
        Record::Trial(found) if found.point == point && found.trial == trial => Some(found.workload_start_ns),
        _ => None,
    })?;
    let samples: Vec<&SampleRecord> = records
        .iter()
        .filter_map(|record| match record {
            Record::Sample(sample) if sample.point == point && sample.trial == trial => Some(sample),
            _ => None,
        })
        .collect();
    let observer = samples.iter().map(|sample| sample.replica).max()?;
    let mut events: BTreeMap<ReplicaId, Vec<(Nanos, ClockEvent)>> = BTreeMap::new();
    for record in records {
        if let Record::Fault(fault) = record
            && fault.point == point
            && fault.trial == trial
            && let Some(event) = fault.clock_event()
        {
            events.entry(fault.replica).or_default().push((fault.true_ns, event));
        }
    }
    let mine: Vec<&SampleRecord> =
        samples.iter().copied().filter(|sample| sample.replica == observer).collect();
    let times: Vec<Nanos> = mine.iter().map(|sample| sample.true_ns).collect();
    let replay =
        |replica: ReplicaId| replay_offsets(events.get(&replica).map_or(&[][..], Vec::as_slice), &times);
    let observer_offsets = replay(observer);
    let since_start = |ns: Nanos| (ns - start) as f64 / 1e6;
    // An estimate is stamped with the observer's clock when it was taken;
    // that clock's offset at the sample turns it into true time.
    let mut measured: BTreeMap<ReplicaId, BTreeMap<Nanos, (f64, f64)>> = BTreeMap::new();
    for sample in &mine {
        let Some(estimates) = sample.peer_offsets.as_object() else { continue };
        for (peer, estimate) in estimates {
            let (Ok(peer), Some(at), Some(offset), Some(error)) = (
                peer.parse::<ReplicaId>(),
                estimate["measured_at_ns"].as_i64(),
                estimate["offset_ms"].as_f64(),
                estimate["error_ms"].as_f64(),
            ) else {
                continue;
            };
            measured.entry(peer).or_default().insert(at - sample.offset_ns, (offset, error));
        }
    }
    let peers: Vec<PeerOffsets> = events
        .keys()
        .copied()
        .filter(|&peer| peer != observer)
        .map(|peer| {
            let truth = times
                .iter()
                .zip(replay(peer).iter().zip(&observer_offsets))
                .map(|(&at, (theirs, ours))| (since_start(at), (theirs - ours) as f64 / 1e6))
                .collect();
            let found = measured.remove(&peer).unwrap_or_default();
            let at: Vec<Nanos> = found.keys().copied().collect();
            let empty = Vec::new();
            let theirs = replay_offsets(events.get(&peer).unwrap_or(&empty), &at);
            let ours = replay_offsets(events.get(&observer).unwrap_or(&empty), &at);
            let estimates = found
                .iter()
                .zip(theirs.iter().zip(&ours))
                .map(|((&at, &(offset_ms, error_ms)), (theirs, ours))| EstimatePoint {
                    at_ms: since_start(at),
                    offset_ms,
                    error_ms,
                    truth_ms: (theirs - ours) as f64 / 1e6,
                })
                .collect();
            PeerOffsets { peer, truth, estimates }
        })
        .collect();
    peers.iter().any(|peer| !peer.estimates.is_empty()).then(|| OffsetsPlot {
        title: title.to_string(),
        observer,
        peers,
    })
}

fn entries(plot: &OffsetsPlot) -> Vec<LegendEntry> {
    plot.peers
        .iter()
        .enumerate()
        .flat_map(|(index, peer)| {
            let colour = REPLICA_COLOURS[index % REPLICA_COLOURS.len()];
            [
                LegendEntry { swatch: Swatch::Line(colour), label: format!("replica {}: true", peer.peer) },
                LegendEntry {
                    swatch: Swatch::Estimate(colour),
                    label: format!(
                        "replica {}: estimated by replica {} (± error bound)",
                        peer.peer, plot.observer
                    ),
                },
            ]
        })
        .collect()
}

/// How tall the plot is at `width`.
pub fn height(plot: &OffsetsPlot, width: u32) -> u32 {
    40 + super::sweep::chart_height(width) + legend_height(&entries(plot), width)
}

pub(super) fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, plot: &OffsetsPlot) -> DrawResult<DB> {
    let values = plot.peers.iter().flat_map(|peer| {
        let truth = peer.truth.iter().map(|(_, offset)| *offset);
        let estimates =
            peer.estimates.iter().flat_map(|e| [e.offset_ms - e.error_ms, e.offset_ms + e.error_ms]);
        truth.chain(estimates).collect::<Vec<_>>()
    });
    let (low, high) = values.fold((0.0_f64, 0.0_f64), |(low, high), value| (low.min(value), high.max(value)));
    let pad = ((high - low) * 0.15).max(2.0);
    let end =
        plot.peers.iter().flat_map(|peer| peer.truth.iter().map(|(at, _)| *at)).fold(1.0, f64::max) / 1e3;
    let body = titled(area, &plot.title)?;
    let entries = entries(plot);
    let (chart_area, legend_area) = with_legend(&body, &entries);
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(10)
        .margin_right(24)
        .x_label_area_size(56)
        .y_label_area_size(74)
        .build_cartesian_2d(0.0..end, (low - pad)..(high + pad))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the workload started")
        .y_desc(format!("peer minus replica {} (ms)", plot.observer))
        .x_labels(8)
        .y_labels(6)
        .max_light_lines(2)
        .label_style(font(TEXT_PX))
        .axis_desc_style(font(AXIS_PX))
        .draw()?;
    for (index, peer) in plot.peers.iter().enumerate() {
        let colour = REPLICA_COLOURS[index % REPLICA_COLOURS.len()];
        chart.draw_series(LineSeries::new(
            peer.truth.iter().map(|(at, offset)| (at / 1e3, *offset)),
            colour.stroke_width(2),
        ))?;
        chart.draw_series(peer.estimates.iter().filter(|e| e.at_ms >= 0.0).map(|e| {
            let (low, high) = (e.offset_ms - e.error_ms, e.offset_ms + e.error_ms);
            ErrorBar::new_vertical(e.at_ms / 1e3, low, e.offset_ms, high, colour.filled(), 6)
        }))?;
    }
    draw_legend(&legend_area, &entries)
}
