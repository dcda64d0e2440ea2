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
//!   faults follow the same [`timeline`](crate::experiment::faults::timeline).
//! - **Simulated**: true time (an event agenda, [`queue`]); the network
//!   (a one-way trip of [`SimOptions::one_way_ns`] plus jitter, plus the
//!   link's own delay and loss, cuts and partitions); the worker's service
//!   time and the disk's commit time; pauses (a paused replica's events wait
//!   until it resumes, as a stopped process's would) and crashes (everything
//!   not yet committed is lost, whoever waited on it hears the connection
//!   close, and the replica restarts from its durable log).
//!
//! It writes the same records as the real engine (`crate::history`), so the
//! oracle, the summaries, the plots and the report apply unchanged; trial
//! records say `"engine": "sim"`. `clocklab experiment NAME --sim` runs any
//! spec here; `just validate` compares the two engines on the same sweep.
//! The dashboard's step-through plays its scenarios here too, in a world
//! that moves only when its script says ([`script`]).

pub mod client;
pub mod node;
pub mod queue;
pub mod script;
pub mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use self::client::Client;
use self::world::World;
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::ClockUpdate;
use crate::experiment::faults::{self, Action};
use crate::experiment::spec::Spec;
use crate::experiment::stop::{Stop, Stopped};
use crate::experiment::trial::{self, CONVERGE_POLL, CONVERGE_TIMEOUT, SAMPLE_INTERVAL, TrialOutcome};
use crate::experiment::workload::{self, Counters, Schedule};
use crate::history::{Engine, FaultRecord, Record, SampleRecord, TrialPlan, TrialRecord};
use crate::replica::links::{Cut, LinkUpdate};
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

/// Runs the trials `plans`, each on its spec, spread over the machine's cores
/// (each trial is independent and deterministic, so the order they run in
/// changes nothing), and returns their outcomes in the order of `plans`.
/// `done` is called as each finishes, from whichever thread ran it.
pub fn run_trials(
    plans: &[(TrialPlan, Spec)],
    counters: &Arc<Counters>,
    options: &SimOptions,
    stop: &Stop,
    done: &(dyn Fn(TrialPlan) + Sync),
) -> Result<Vec<(TrialOutcome, Effort)>, Stopped> {
    use rayon::prelude::*;
    plans
        .par_iter()
        .map(|(plan, spec)| {
            let plan = *plan;
            let result = run_trial(spec, plan, counters.clone(), options, stop)?;
            done(plan);
            Ok(result)
        })
        .collect()
}

/// Runs one trial of `spec` in the simulator: the same steps, and the same
/// records, as `experiment::trial::run` on real processes.
pub fn run_trial(
    spec: &Spec,
    plan: TrialPlan,
    counters: Arc<Counters>,
    options: &SimOptions,
    stop: &Stop,
) -> Result<(TrialOutcome, Effort), Stopped> {
    let strategies = spec.lineup_at(plan.value);
    let trial_index = (plan.point * spec.trials + plan.trial) as Nanos;
    let start = EPOCH_NS + trial_index * TRIAL_SPACING_NS;
    let seed = workload::client_seed(spec.seed, plan.point, plan.trial, usize::MAX);
    let mut world = World::new(start, spec.replicas, strategies, options.clone(), seed);
    world.stop = stop.clone();
    world.max_peer_offset_ms = spec.sweep.parameter.offset_bound(spec.max_peer_offset_ms, plan.value);
    let ids: Vec<ReplicaId> = (1..=spec.replicas as ReplicaId).collect();

    let mut records = Vec::new();
    for &id in &ids {
        let clock = trial::clock_settings(spec, plan, id);
        set_clock(&mut world, plan, id, "clock", &clock, &mut records);
    }
    let network = &spec.network;
    if network.is_faulty() {
        for &id in &ids {
            for &peer in ids.iter().filter(|&&peer| peer != id) {
                set_link(&mut world, plan, id, "links", &trial::network_link(network, peer), &mut records);
            }
        }
    }

    // The workload, with the faults on schedule and the clocks sampled.
    let started = world.now;
    let duration = ms_to_ns(spec.duration_ms as f64);
    let stop_at = started + duration;
    let workload = spec.sweep.parameter.workload_for(&spec.workload, plan.value);
    for number in 0..workload.clients {
        let client_seed = workload::client_seed(spec.seed, plan.point, plan.trial, number);
        for bucket in &spec.strategies {
            let schedule = Schedule::new(&workload, number, spec.replicas, client_seed);
            let client = Client::new(
                plan.point,
                plan.trial,
                bucket,
                workload.contexts,
                schedule,
                started,
                stop_at,
                counters.clone(),
            );
            world.add_client(client, started);
        }
    }
    let faults = spec.faults_of(plan);
    let mut actions =
        faults::timeline(&faults, spec.replicas, spec.duration_ms as f64).into_iter().peekable();
    let mut samples = Vec::new();
    let mut fault_records = Vec::new();
    let sample_every = SAMPLE_INTERVAL.as_nanos() as Nanos;
    let mut next_sample = started;
    loop {
        let next_action = actions.peek().map(|(at_ms, _)| started + ms_to_ns(*at_ms));
        match next_action {
            Some(at) if next_sample >= stop_at || at <= next_sample => {
                world.run_until(at)?;
                if let Some((_, action)) = actions.next() {
                    apply(&mut world, spec, plan, action, &mut fault_records);
                }
            }
            _ if next_sample < stop_at => {
                world.run_until(next_sample)?;
                samples.extend(sample(&world, plan));
                next_sample += sample_every;
            }
            _ => break,
        }
    }
    // Clients finish the operations they have begun.
    world.run_until(stop_at)?;
    let give_up = stop_at + options.request_timeout_ns * 2;
    while !world.clients_done() && world.now < give_up {
        world.run_until(world.now + ms_to_ns(1.0))?;
    }
    let workload_end_ns = world.now;
    // Only a simulator bug leaves an operation unfinished this long; it
    // is recorded as what it is to a client, unknown, not left out.
    for client in &mut world.clients {
        client.abandon(workload_end_ns);
    }
    // The history's bulk: sized once, since growing it copies it again and again.
    let count: usize = world.clients.iter().map(|client| client.writes.len()).sum();
    let mut writes = Vec::with_capacity(count);
    for client in &mut world.clients {
        writes.append(&mut client.writes);
    }
    writes.sort_by_key(|write| write.invoke_ns);
    let keys: BTreeSet<&str> = writes.iter().map(|write| write.key.as_str()).collect();
    let keys: BTreeSet<String> = keys.into_iter().map(str::to_string).collect();
    let finals = spec.strategies.len() * keys.len() * ids.len();
    records
        .reserve(samples.len() + fault_records.len() + writes.len() + finals + 2 * ids.len() * ids.len() + 1);
    records.extend(samples);
    records.extend(fault_records);
    records.extend(writes.into_iter().map(Record::Write));

    // Faults stop; the replicas must now converge.
    if network.is_faulty() {
        for &id in &ids {
            for &peer in ids.iter().filter(|&&peer| peer != id) {
                set_link(&mut world, plan, id, "heal", &trial::healed_link(network, peer), &mut records);
            }
        }
    }
    let healed = world.now;
    let converged = loop {
        if world.converged() {
            break true;
        }
        if world.now - healed > CONVERGE_TIMEOUT.as_nanos() as Nanos {
            break false;
        }
        world.run_until(world.now + CONVERGE_POLL.as_nanos() as Nanos)?;
    };
    let converge_time = Duration::from_nanos((world.now - healed) as u64);
    let failed_buckets =
        trial::first_failures(ids.iter().map(|&id| (id, world.node(id).core.status().failed_buckets)));
    records.push(Record::Trial(TrialRecord {
        point: plan.point,
        trial: plan.trial,
        workload_start_ns: started,
        workload_end_ns,
        converged,
        converge_ms: converge_time.as_micros() as f64 / 1e3,
        engine: Engine::Sim,
        failed_buckets: failed_buckets.clone(),
    }));
    let states: BTreeMap<_, _> = ids.iter().map(|&id| (id, world.node(id).core.snapshot())).collect();
    let judged = trial::judged_buckets(spec, &failed_buckets);
    records.extend(trial::final_records_of(&states, &judged, plan, &keys));
    let effort = Effort { events: world.handled };
    Ok((TrialOutcome { records, converged, converge_time }, effort))
}

fn ms_to_ns(ms: f64) -> Nanos {
    (ms * 1e6).round() as Nanos
}

fn set_clock(
    world: &mut World,
    plan: TrialPlan,
    id: ReplicaId,
    fault: &str,
    update: &ClockUpdate,
    records: &mut Vec<Record>,
) {
    // Settings come from a checked spec; one the model refuses changes nothing.
    let _ = world.node_mut(id).core.update_clock(update);
    records.push(FaultRecord::at(world.now, plan, id, fault, update));
}

fn set_link(
    world: &mut World,
    plan: TrialPlan,
    id: ReplicaId,
    fault: &str,
    update: &LinkUpdate,
    records: &mut Vec<Record>,
) {
    let _ = world.node_mut(id).links.update(update);
    records.push(FaultRecord::at(world.now, plan, id, fault, update));
}

/// Does one fault action, as `experiment::faults::run` does it on processes.
fn apply(world: &mut World, spec: &Spec, plan: TrialPlan, action: Action, records: &mut Vec<Record>) {
    let peers_of = |replica: ReplicaId| (1..=spec.replicas as ReplicaId).filter(move |&peer| peer != replica);
    let now = world.now;
    match action {
        Action::Step { replica, step_ms } => {
            let update = ClockUpdate { step_ms: Some(step_ms), ..Default::default() };
            set_clock(world, plan, replica, "step", &update, records);
        }
        Action::Cut { replica, direction } => {
            for peer in peers_of(replica) {
                set_link(world, plan, replica, "cut", &LinkUpdate::cut(peer, direction.into()), records);
            }
        }
        Action::Heal { replica } => {
            for peer in peers_of(replica) {
                set_link(world, plan, replica, "heal", &LinkUpdate::cut(peer, Cut::None), records);
            }
        }
        Action::Clock { replica, fault, update } => set_clock(world, plan, replica, fault, &update, records),
        Action::Partition { groups, links } => {
            for (replica, peer, cut) in links {
                let update = LinkUpdate::cut(peer, cut);
                let _ = world.node_mut(replica).links.update(&update);
                let settings = faults::partition_settings(&update, &groups);
                records.push(FaultRecord::at(now, plan, replica, "partition", &settings));
            }
        }
        Action::HealAll => {
            for replica in 1..=spec.replicas as ReplicaId {
                for peer in peers_of(replica) {
                    set_link(world, plan, replica, "heal", &LinkUpdate::cut(peer, Cut::None), records);
                }
            }
        }
        Action::Links { replica, link } => {
            for peer in peers_of(replica) {
                set_link(world, plan, replica, "link", &link.update(peer), records);
            }
        }
        Action::RestoreLinks { replica } => {
            for peer in peers_of(replica) {
                let update = if spec.network.is_faulty() {
                    trial::network_link(&spec.network, peer)
                } else {
                    faults::LinkFault::default().update(peer)
                };
                set_link(world, plan, replica, "restore", &update, records);
            }
        }
        Action::Pause { replica } => {
            world.pause_replica(replica);
            records.push(FaultRecord::at(now, plan, replica, "pause", &Value::Null));
        }
        Action::Resume { replica } => {
            world.resume_replica(replica);
            records.push(FaultRecord::at(now, plan, replica, "resume", &Value::Null));
        }
        Action::Crash { replica } => {
            world.crash_replica(replica);
            records.push(FaultRecord::at(now, plan, replica, "crash", &Value::Null));
        }
        Action::Restart { replica } => {
            world.restart_replica(replica);
            records.push(FaultRecord::at(now, plan, replica, "restart", &Value::Null));
            // A new process starts with a true clock and clean links.
            let clock = trial::clock_settings(spec, plan, replica);
            set_clock(world, plan, replica, "clock", &clock, records);
            if spec.network.is_faulty() {
                for peer in peers_of(replica) {
                    set_link(
                        world,
                        plan,
                        replica,
                        "links",
                        &trial::network_link(&spec.network, peer),
                        records,
                    );
                }
            }
        }
    }
}

/// Every running replica's clock and offset estimates, as the runner samples them.
fn sample(world: &World, plan: TrialPlan) -> Vec<Record> {
    world
        .nodes
        .iter()
        .filter(|node| node.life == node::Life::Up)
        .map(|node| {
            let status = node.core.status();
            Record::Sample(SampleRecord {
                point: plan.point,
                trial: plan.trial,
                true_ns: status.true_ns,
                replica: node.id,
                offset_ns: status.offset_ns,
                peer_offsets: serde_json::to_value(node.offsets.estimates()).unwrap_or(Value::Null),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    fn spec(text: &str) -> Spec {
        Spec::parse(text, std::path::Path::new("test.toml")).expect("a valid spec")
    }

    fn writes_of(records: &[Record], bucket: &str) -> Vec<(Outcome, u64)> {
        records
            .iter()
            .filter_map(|record| match record {
                Record::Write(write) if write.bucket == bucket => Some((write.outcome, write.item)),
                _ => None,
            })
            .collect()
    }

    /// A truetime write whose wait is already over when its batch commits
    /// is released by the next batch; the worker runs one batch at a time
    /// and every client hears back, so with no uncertainty truetime does
    /// exactly the operations lww-wall does, all acknowledged.
    #[test]
    fn with_no_uncertainty_commit_wait_changes_nothing_and_every_write_is_answered() {
        let spec = spec(
            r#"
replicas = 3
strategies = ["lww-wall", "truetime"]
trials = 1
duration_ms = 1000
[parameters.truetime]
epsilon_ms = 0
[workload]
clients = 8
keys = 4
rate_per_client = 200
[sweep]
parameter = "skew_ms"
values = [0]
"#,
        );
        let plan = TrialPlan { point: 0, trial: 0, value: 0.0 };
        let (outcome, _) =
            run_trial(&spec, plan, Arc::new(Counters::default()), &SimOptions::default(), &Stop::default())
                .expect("not stopped");
        let (wall, truetime) =
            (writes_of(&outcome.records, "lww-wall"), writes_of(&outcome.records, "truetime"));
        assert!(wall.len() > 1000, "{} writes", wall.len());
        let items = |writes: &[(Outcome, u64)]| writes.iter().map(|(_, item)| *item).collect::<BTreeSet<_>>();
        assert_eq!(items(&wall), items(&truetime), "the same operations in both buckets");
        assert!(truetime.iter().all(|(outcome, _)| *outcome == Outcome::Ok), "every write acknowledged");
        assert!(outcome.converged);
    }

    /// Crashes and a pause: whoever waited hears back, the restarted
    /// replica holds every write acknowledged before, and version vectors
    /// drop nothing.
    #[test]
    fn a_crash_loses_nothing_acknowledged_and_leaves_no_client_waiting() {
        let spec = spec(
            r#"
replicas = 3
strategies = ["vv"]
trials = 1
duration_ms = 1000
[workload]
clients = 8
keys = 8
rate_per_client = 200
[[fault]]
kind = "crash"
at_ms = 100
replica = 1
every_ms = 300
[[fault]]
kind = "pause"
at_ms = 500
replica = 2
duration_ms = 200
[sweep]
parameter = "skew_ms"
values = [0]
"#,
        );
        let plan = TrialPlan { point: 0, trial: 0, value: 0.0 };
        let (outcome, _) =
            run_trial(&spec, plan, Arc::new(Counters::default()), &SimOptions::default(), &Stop::default())
                .expect("not stopped");
        let writes = writes_of(&outcome.records, "vv");
        let count = |wanted: Outcome| writes.iter().filter(|(outcome, _)| *outcome == wanted).count();
        assert!(count(Outcome::Fail) + count(Outcome::Unknown) > 0, "a down replica refuses or loses writes");
        assert!(count(Outcome::Ok) > 1000);
        let analysis = crate::analysis::analyze(&outcome.records);
        assert!(
            analysis.rows.iter().all(|row| row.dropped == 0 && row.diverged_keys == 0),
            "{:?}",
            analysis.rows
        );
        assert!(outcome.converged);
    }
}
