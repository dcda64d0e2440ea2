//! The deterministic simulator: the replicas' own logic under simulated
//! time, network and disks, driven by one seed.
//!
//! A trial on real processes is honest but slow (real time passes) and
//! never the same twice (the machine's scheduler, the network stack and the
//! disk all add their own noise). FoundationDB's simulation, TigerBeetle's
//! VOPR and tokio's turmoil show the other way: run the *same* logic with
//! every source of time and nondeterminism replaced by a simulated one. A
//! run then takes as long as its events take to compute, and the same seed
//! gives the same history, byte for byte, so a surprising drop can be
//! replayed and looked at as often as needed.
//!
//! What is real and what is simulated:
//!
//! - **Real**: every decision. Each replica is a
//!   [`ReplicaCore`](crate::replica::core::ReplicaCore) with its strategies,
//!   reading a [`PhysicalClock`](crate::clock::physical::PhysicalClock)
//!   through the same clock models; replication toward each peer is the same
//!   [`PeerPolicy`](crate::replica::peer_policy::PeerPolicy); clock offsets
//!   are estimated by the same [`OffsetMonitor`](crate::replica::offsets::OffsetMonitor)
//!   and write admission refuses on the same test; the workload's clients
//!   work through the same [`Schedule`](crate::experiment::workload::Schedule);
//!   trials follow the same protocol (`crate::engine::trial`), the faults
//!   the same [`timeline`](crate::experiment::faults::timeline).
//! - **Simulated**: true time (an event agenda, [`queue`]); the network
//!   (a one-way trip of [`SimOptions::one_way_ns`] plus jitter, plus the
//!   link's own delay and loss, cuts and partitions); the worker's service
//!   time and the disk's commit time; pauses (a paused replica's events wait
//!   until it resumes, as a stopped process's would) and crashes (everything
//!   not yet committed is lost, whoever waited on it hears the connection
//!   close, and the replica restarts from its checkpoint,
//!   `crate::replica::core::checkpoint`).
//!
//! This module is the world; `crate::engine::sim` tells it the trial
//! protocol, so it writes the same records as the real engine
//! (`crate::history`), and the oracle, the summaries, the plots and the
//! report apply unchanged; trial records say `"engine": "sim"`. `clocklab experiment NAME --sim` runs any
//! spec here; `just validate` compares the two engines on the same sweep.
//! The dashboard's step-through plays its [`scenario`]s here too, in a
//! world that moves only when its script says ([`script`]), and their golden
//! transcripts are written and checked here.

pub mod client;
pub mod lease;
pub mod node;
pub mod queue;
pub mod scenario;
pub mod script;
pub mod world;

use crate::clock::Nanos;
use crate::experiment::workload;
use crate::replica::peer_policy::ReplicationOptions;

/// True time at which every simulated trial's clock starts: 2026-01-01
/// 00:00:00 UTC, in ns. Fixed, so that a seed alone decides the history.
pub const EPOCH_NS: Nanos = 1_767_225_600_000_000_000;
/// True time between the starts of consecutive trials, ns (one hour).
pub const TRIAL_SPACING_NS: Nanos = 3_600_000_000_000;

/// The simulator's timing: what the real system's machinery costs, in ns.
///
/// Calibrated against real runs on this project's 2-core machine (see
/// docs/design.md, "The simulator", for how each was measured and
/// `just validate` for the check that the two engines agree).
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// One way between a client and a replica, or between replicas, over
    /// loopback HTTP (a request's parsing and routing included), ns.
    pub one_way_ns: Nanos,
    /// Extra one-way time, uniform in `0..=this`, ns.
    pub one_way_jitter_ns: Nanos,
    /// Extra one-way time per write a push carries (encoding and parsing), ns.
    pub per_write_on_wire_ns: Nanos,
    /// The worker's time per job, ns.
    pub service_per_job_ns: Nanos,
    /// The worker's time per write it merges or collects for a push, ns.
    pub service_per_write_ns: Nanos,
    /// One SQLite commit of a batch with new writes (WAL, synchronous=NORMAL), ns.
    pub commit_ns: Nanos,
    /// The timers' tick: a sleep ends at the first tick at or after its
    /// deadline (tokio's timer wheel has millisecond ticks), ns.
    pub timer_tick_ns: Nanos,
    /// How long a client waits for an answer (`workload::REQUEST_TIMEOUT`), ns.
    pub request_timeout_ns: Nanos,
    /// How long a push waits for an answer (`ReplicationOptions::request_timeout`), ns.
    pub push_timeout_ns: Nanos,
    /// Writes a trial holds before it spills them to disk
    /// (`history::spill::SPILL_AFTER_WRITES`, 100,000).
    pub spill_after_writes: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            one_way_ns: 120_000,
            one_way_jitter_ns: 80_000,
            per_write_on_wire_ns: 2_000,
            service_per_job_ns: 15_000,
            service_per_write_ns: 3_000,
            commit_ns: 250_000,
            timer_tick_ns: 1_000_000,
            request_timeout_ns: workload::REQUEST_TIMEOUT.as_nanos() as Nanos,
            push_timeout_ns: ReplicationOptions::default().request_timeout.as_nanos() as Nanos,
            spill_after_writes: crate::history::spill::SPILL_AFTER_WRITES,
        }
    }
}

impl SimOptions {
    /// Machinery that costs no time: a message arrives, a job runs and a
    /// batch commits at the instant it is sent or begun, and a sleep ends
    /// at its deadline. A scripted world (see [`script`]) uses it, so that
    /// every step happens at exactly the true time its script names.
    pub fn instant() -> Self {
        Self {
            one_way_ns: 0,
            one_way_jitter_ns: 0,
            per_write_on_wire_ns: 0,
            service_per_job_ns: 0,
            service_per_write_ns: 0,
            commit_ns: 0,
            timer_tick_ns: 1,
            ..Self::default()
        }
    }
}

/// What a simulated trial cost to compute.
#[derive(Debug, Clone, Copy, Default)]
pub struct Effort {
    /// Events handled.
    pub events: u64,
}
