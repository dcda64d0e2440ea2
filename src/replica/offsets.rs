//! Clock offset monitoring: each replica estimates each peer's clock offset
//! from replication round trips, the way NTP does.
//!
//! DDIA chapter 8: if you use software that depends on synchronised clocks,
//! "it is essential that you also carefully monitor the clock offsets between
//! all the machines." Every replication push is a round trip, so it measures
//! for free. The sender notes its clock when it sends (`t0`); the receiver
//! notes its own clock when the push arrives (`t1`) and when it answers
//! (`t2`); the sender notes its clock when the answer arrives (`t3`). Then,
//! as in NTP (RFC 5905):
//!
//! - the peer's offset from us is `((t1 - t0) + (t2 - t3)) / 2`;
//! - the round trip spent on the network is `(t3 - t0) - (t2 - t1)`, and
//!   since the two directions may take different times, the true offset can
//!   be anywhere within half of it: that is the estimate's **error bound**.
//!
//! Of the last [`SAMPLES_KEPT`] samples per peer the one with the shortest
//! round trip is the estimate (NTP's clock filter): queueing only ever adds
//! delay, so the fastest exchange is the most trustworthy.
//!
//! With [`OffsetMonitor::out_of_bounds`] a replica can tell that its *own*
//! clock is off: when most of its peers' clocks read far from its own, the
//! odd one out is itself. The replica then refuses client writes until its
//! clock is back in bounds (as CockroachDB stops a node whose clock is off
//! from the others by more than its maximum offset): it gives up
//! availability so that its stamps cannot silently overwrite other writes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;

/// How many recent samples per peer the estimate is chosen from.
pub const SAMPLES_KEPT: usize = 8;

/// One round trip's measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The peer's clock minus ours.
    pub offset_ns: Nanos,
    /// Time the round trip spent outside the peer.
    pub delay_ns: Nanos,
    /// Our clock when the answer arrived.
    pub at_ns: Nanos,
}

impl Sample {
    /// From the four timestamps of one exchange: `sent` and `answered` by
    /// our clock, `received` and `replied` by the peer's.
    pub fn from_round_trip(sent: Nanos, received: Nanos, replied: Nanos, answered: Nanos) -> Self {
        Self {
            offset_ns: ((received - sent) + (replied - answered)) / 2,
            delay_ns: ((answered - sent) - (replied - received)).max(0),
            at_ns: answered,
        }
    }
}

/// A peer's offset as `GET /admin/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The peer's clock minus ours, ms (positive: the peer is ahead).
    pub offset_ms: f64,
    /// The true offset is within `offset_ms ± error_ms`.
    pub error_ms: f64,
    /// Our clock when the chosen sample was taken.
    pub measured_at_ns: Nanos,
    pub samples: usize,
}

/// Every peer's recent samples.
#[derive(Debug, Default)]
pub struct OffsetMonitor {
    peers: Mutex<HashMap<ReplicaId, VecDeque<Sample>>>,
}

impl OffsetMonitor {
    pub fn record(&self, peer: ReplicaId, sample: Sample) {
        let mut peers = self.peers.lock().unwrap_or_else(|poison| poison.into_inner());
        let samples = peers.entry(peer).or_default();
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Per peer, the sample with the shortest round trip.
    pub fn estimates(&self) -> BTreeMap<ReplicaId, Estimate> {
        let peers = self.peers.lock().unwrap_or_else(|poison| poison.into_inner());
        peers
            .iter()
            .filter_map(|(&peer, samples)| {
                let best = samples.iter().min_by_key(|sample| sample.delay_ns)?;
                Some((
                    peer,
                    Estimate {
                        offset_ms: best.offset_ns as f64 / 1e6,
                        error_ms: best.delay_ns as f64 / 2e6,
                        measured_at_ns: best.at_ns,
                        samples: samples.len(),
                    },
                ))
            })
            .collect()
    }

    /// If most of `peers` peers are surely more than `bound_ms` off from
    /// our clock (beyond the estimate's error), says so: then our own clock
    /// is the one that is off.
    pub fn out_of_bounds(&self, bound_ms: f64, peers: usize) -> Option<String> {
        let estimates = self.estimates();
        let off: Vec<f64> = estimates
            .values()
            .filter(|estimate| estimate.offset_ms.abs() - estimate.error_ms > bound_ms)
            .map(|estimate| estimate.offset_ms)
            .collect();
        (peers > 0 && off.len() * 2 > peers).then(|| {
            let mean = off.iter().sum::<f64>() / off.len() as f64;
            format!(
                "this replica's clock is about {:.0} ms off from {} of its {peers} peers, beyond the bound of \
                 {bound_ms} ms; it refuses writes until its clock is back in bounds",
                -mean,
                off.len()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    #[test]
    fn a_symmetric_round_trip_measures_the_offset_exactly() {
        // The peer is 50 ms ahead; each way takes 2 ms; it answers after 1 ms.
        let sample = Sample::from_round_trip(1000 * MS, 1052 * MS, 1053 * MS, 1005 * MS);
        assert_eq!(sample.offset_ns, 50 * MS);
        assert_eq!(sample.delay_ns, 4 * MS);
    }

    #[test]
    fn an_asymmetric_round_trip_errs_within_half_the_delay() {
        // The peer is 50 ms ahead; out takes 8 ms, back 0 ms.
        let sample = Sample::from_round_trip(1000 * MS, 1058 * MS, 1058 * MS, 1008 * MS);
        let error = (sample.offset_ns - 50 * MS).abs();
        assert!(error <= sample.delay_ns / 2, "{error} > {}", sample.delay_ns / 2);
        assert_eq!(error, 4 * MS);
    }

    #[test]
    fn the_fastest_recent_round_trip_is_the_estimate() {
        let monitor = OffsetMonitor::default();
        monitor.record(2, Sample { offset_ns: 60 * MS, delay_ns: 20 * MS, at_ns: 1 });
        monitor.record(2, Sample { offset_ns: 50 * MS, delay_ns: 2 * MS, at_ns: 2 });
        monitor.record(2, Sample { offset_ns: 45 * MS, delay_ns: 10 * MS, at_ns: 3 });
        let estimate = monitor.estimates()[&2];
        assert_eq!((estimate.offset_ms, estimate.error_ms, estimate.samples), (50.0, 1.0, 3));
        for at in 0..SAMPLES_KEPT as i64 {
            monitor.record(2, Sample { offset_ns: 0, delay_ns: 5 * MS, at_ns: 10 + at });
        }
        assert_eq!(monitor.estimates()[&2].offset_ms, 0.0, "old samples are forgotten");
    }

    #[test]
    fn a_replica_is_out_of_bounds_only_when_most_peers_disagree_with_it() {
        let sample = |offset_ms: i64| Sample { offset_ns: offset_ms * MS, delay_ns: 2 * MS, at_ns: 0 };
        // Replica 1's view: both peers read 500 ms behind it, so it is ahead.
        let ahead = OffsetMonitor::default();
        ahead.record(2, sample(-500));
        ahead.record(3, sample(-500));
        let reason = ahead.out_of_bounds(100.0, 2).expect("out of bounds");
        assert!(reason.contains("about 500 ms off"), "{reason}");
        // Replica 2's view: replica 1 is ahead, replica 3 agrees with it.
        let fine = OffsetMonitor::default();
        fine.record(1, sample(500));
        fine.record(3, sample(0));
        assert_eq!(fine.out_of_bounds(100.0, 2), None);
    }
}
