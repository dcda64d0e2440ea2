//! The simulator as an engine: a [`World`] told the trial protocol.
//!
//! Every operation is a change to the world at its current true time: a
//! clock or a link set on a replica's core, a pause that holds the
//! replica's events until it resumes, a crash that loses what was not yet
//! committed, a restart from its checkpoint (see `crate::sim::world`).
//! Letting time pass is running the world's agenda up to a moment, so
//! nothing here ever waits: a trial is the protocol driven by
//! `futures::executor::block_on`, on whichever core rayon gives it.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use super::trial::ms_to_ns;
use super::{ClockSample, Engine, EngineError, TrialOutcome, Workload, WorkloadRecords, Writes};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::experiment::faults::timeline::Operation;
use crate::experiment::spec::Spec;
use crate::experiment::stop::Stop;
use crate::experiment::workload::{self, Counters, Schedule};
use crate::history::spill::WriteSpill;
use crate::history::{EngineKind, TrialPlan, WriteRecord};
use crate::replica::core::Snapshot;
use crate::sim::client::Client;
use crate::sim::lease::LeaseHost;
use crate::sim::node::Life;
use crate::sim::world::World;
use crate::sim::{EPOCH_NS, Effort, SimOptions, TRIAL_SPACING_NS};

/// A simulated cluster, as an engine.
pub struct SimEngine {
    world: World,
    options: SimOptions,
    /// When the workload's clients stop issuing operations, once started.
    stop_at: Nanos,
    /// The writes the clients have finished, in the order they were invoked.
    writes: WriteLog,
}

/// A trial's finished writes, in invocation order: held, then, past
/// [`SimOptions::spill_after_writes`], all of them on disk.
enum WriteLog {
    Held(Vec<WriteRecord>),
    Spilling(WriteSpill),
}

impl WriteLog {
    fn push(&mut self, write: WriteRecord, spill_after: usize) -> std::io::Result<()> {
        match self {
            WriteLog::Held(held) if held.len() < spill_after => held.push(write),
            WriteLog::Held(held) => {
                let mut spill = WriteSpill::new()?;
                for earlier in held.drain(..) {
                    spill.push(earlier)?;
                }
                spill.push(write)?;
                *self = WriteLog::Spilling(spill);
            }
            WriteLog::Spilling(spill) => spill.push(write)?,
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<Writes> {
        Ok(match self {
            WriteLog::Held(held) => Writes::Held(held),
            WriteLog::Spilling(spill) => Writes::Spilled(spill.finish()?),
        })
    }
}

impl SimEngine {
    /// A fresh world for `spec`'s trial `plan`: its replicas and their
    /// strategies at the trial's sweep value, its clock at the trial's
    /// place on the simulated calendar, its dice from the run's seed.
    pub fn new(spec: &Spec, plan: TrialPlan, options: &SimOptions, stop: &Stop) -> Self {
        let strategies = spec.lineup_at(plan.value);
        let trial_index = (plan.point * spec.trials + plan.trial) as Nanos;
        let start = EPOCH_NS + trial_index * TRIAL_SPACING_NS;
        let seed = workload::client_seed(spec.seed, plan.point, plan.trial, usize::MAX);
        let mut world = World::new(start, spec.replicas, strategies, options.clone(), seed);
        world.stop = stop.clone();
        world.max_peer_offset_ms = spec.sweep.parameter.offset_bound(spec.max_peer_offset_ms, plan.value);
        Self { world, options: options.clone(), stop_at: start, writes: WriteLog::Held(Vec::new()) }
    }

    /// Moves the clients' finished writes on to the log, in the order of
    /// their invocation (ties in the clients' order), as far as no write
    /// still to finish can come before them; with `all`, every one.
    fn collect_writes(&mut self, all: bool) -> Result<(), EngineError> {
        let clients = &mut self.world.clients;
        let now = self.world.now;
        let bound = if all {
            None
        } else {
            clients.iter().enumerate().map(|(index, client)| (client.earliest_next(now), index)).min()
        };
        loop {
            let oldest = clients
                .iter()
                .enumerate()
                .filter_map(|(index, client)| client.writes.front().map(|write| (write.invoke_ns, index)))
                .min();
            let Some((_, index)) = oldest.filter(|next| bound.is_none_or(|bound| *next < bound)) else {
                return Ok(());
            };
            let write = clients[index].writes.pop_front().expect("the oldest write");
            self.writes
                .push(write, self.options.spill_after_writes)
                .map_err(|error| EngineError::Workload(format!("spilling the trial's writes: {error}")))?;
        }
    }

    /// What the world has computed so far.
    pub fn effort(&self) -> Effort {
        Effort { events: self.world.handled }
    }
}

impl Engine for SimEngine {
    const KIND: EngineKind = EngineKind::Sim;

    fn now(&self) -> Nanos {
        self.world.now
    }

    async fn run_until(&mut self, at: Nanos) -> Result<(), EngineError> {
        self.world.run_until(at)?;
        self.collect_writes(false)
    }

    async fn apply(&mut self, operation: &Operation) -> Result<(), EngineError> {
        let world = &mut self.world;
        match operation {
            // Settings come from a checked spec; one the model refuses changes nothing.
            Operation::SetClock { replica, update } => {
                let _ = world.node_mut(*replica).core.update_clock(update);
            }
            Operation::SetLink { replica, update } => {
                let _ = world.node_mut(*replica).links.update(update);
            }
            Operation::Pause { replica } => world.pause_replica(*replica),
            Operation::Resume { replica } => world.resume_replica(*replica),
            Operation::Crash { replica } => world.crash_replica(*replica),
            Operation::Restart { replica } => world.restart_replica(*replica),
            Operation::PauseWorker { worker } => {
                if let Some(host) = &mut world.lease {
                    host.pause(*worker);
                }
            }
            Operation::ResumeWorker { worker } => {
                if let Some(host) = &mut world.lease {
                    let effects = host.resume(world.now, *worker);
                    world.apply_lease(effects);
                }
            }
            Operation::SetWorkerClock { worker, update } => {
                if let Some(host) = &mut world.lease {
                    host.set_clock(*worker, update);
                }
            }
        }
        Ok(())
    }

    async fn start_workload(&mut self, workload: Workload) -> Result<(), EngineError> {
        let started = self.world.now;
        self.stop_at = started + ms_to_ns(workload.duration_ms as f64);
        let Workload { spec, buckets, seed, plan, counters, lease, .. } = workload;
        let replicas = self.world.nodes.len();
        if let Some(lease) = lease {
            let host = LeaseHost::new(&lease, plan, &self.world.time, self.stop_at);
            let effects = host.start(started);
            self.world.lease = Some(host);
            self.world.apply_lease(effects);
            return Ok(());
        }
        for number in 0..spec.clients {
            let seeds = workload::TrialSeed { seed, point: plan.point, trial: plan.trial };
            for bucket in &buckets {
                let schedule = Schedule::new(&spec, number, replicas, seeds);
                let client = Client::new(
                    plan.point,
                    plan.trial,
                    bucket,
                    spec.contexts,
                    schedule,
                    started,
                    self.stop_at,
                    counters.clone(),
                );
                self.world.add_client(client, started);
            }
        }
        Ok(())
    }

    async fn finish_workload(&mut self) -> Result<WorkloadRecords, EngineError> {
        let world = &mut self.world;
        // Clients finish the operations they have begun.
        world.run_until(self.stop_at)?;
        let give_up = self.stop_at + self.options.request_timeout_ns * 2;
        if world.lease.is_some() {
            // Workers finish their round; one that is paused past the end
            // of the workload is left where it stands.
            while world.lease.as_ref().is_some_and(|host| !host.done()) && world.now < give_up {
                world.run_until(world.now + ms_to_ns(1.0))?;
            }
            let leases = world.lease.as_mut().map(LeaseHost::take_records).unwrap_or_default();
            return Ok(WorkloadRecords { writes: Writes::default(), leases });
        }
        while !world.clients_done() && world.now < give_up {
            world.run_until(world.now + ms_to_ns(1.0))?;
        }
        // Only a simulator bug leaves an operation unfinished this long; it
        // is recorded as what it is to a client, unknown, not left out.
        let now = world.now;
        for client in &mut world.clients {
            client.abandon(now);
        }
        self.collect_writes(true)?;
        let log = std::mem::replace(&mut self.writes, WriteLog::Held(Vec::new()));
        let writes = log
            .finish()
            .map_err(|error| EngineError::Workload(format!("spilling the trial's writes: {error}")))?;
        Ok(WorkloadRecords { writes, leases: Vec::new() })
    }

    fn sample_clocks(&mut self) -> BoxFuture<'static, Vec<ClockSample>> {
        let samples = self
            .world
            .nodes
            .iter()
            .filter(|node| node.life == Life::Up)
            .map(|node| {
                let status = node.core.status();
                ClockSample {
                    replica: node.id,
                    true_ns: status.true_ns,
                    offset_ns: status.offset_ns,
                    peer_offsets: serde_json::to_value(node.offsets.estimates()).unwrap_or(Value::Null),
                }
            })
            .collect();
        Box::pin(std::future::ready(samples))
    }

    async fn converged(&mut self) -> Result<bool, EngineError> {
        Ok(self.world.converged())
    }

    async fn failed_buckets(&mut self, replica: ReplicaId) -> Result<BTreeMap<String, String>, EngineError> {
        Ok(self.world.node(replica).core.status().failed_buckets)
    }

    async fn state(&mut self, replica: ReplicaId) -> Result<Snapshot, EngineError> {
        Ok(self.world.node(replica).core.snapshot())
    }
}

/// Runs one trial of `spec` in the simulator: the same steps, and the same
/// records, as on real processes.
pub fn run_trial(
    spec: &Spec,
    plan: TrialPlan,
    counters: Arc<Counters>,
    options: &SimOptions,
    stop: &Stop,
) -> Result<(TrialOutcome, Effort), EngineError> {
    let mut engine = SimEngine::new(spec, plan, options, stop);
    let outcome = futures::executor::block_on(super::run_trial(&mut engine, spec, plan, counters))?;
    Ok((outcome, engine.effort()))
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
) -> Result<Vec<(TrialOutcome, Effort)>, EngineError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use crate::history::Outcome;
    use crate::history::Record;

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

    /// The replicas forget what every peer holds, through crashes: at the
    /// end of a trial each one's log, and what a crash would keep of it, is
    /// a small part of the writes, and version vectors still lose nothing.
    #[test]
    fn replicas_forget_the_writes_every_peer_holds_and_still_lose_nothing() {
        let spec = spec(
            r#"
replicas = 3
strategies = ["vv", "lww-hlc", "truetime"]
trials = 1
duration_ms = 2000
[workload]
clients = 8
keys = 8
rate_per_client = 200
[[fault]]
kind = "crash"
at_ms = 300
replica = 2
every_ms = 700
[sweep]
parameter = "skew_ms"
values = [20]
"#,
        );
        let plan = TrialPlan { point: 0, trial: 0, value: 20.0 };
        let mut engine = SimEngine::new(&spec, plan, &SimOptions::default(), &Stop::default());
        let counters = Arc::new(Counters::default());
        let outcome =
            futures::executor::block_on(super::super::run_trial(&mut engine, &spec, plan, counters))
                .expect("not stopped");
        let logged = engine.world.node(1).core.have().vector().values().sum::<u64>() as usize;
        assert!(logged > 5000, "{logged} writes");
        for id in 1..=3 {
            let node = engine.world.node(id);
            let (log, tail) = (node.core.log_len(), node.durable.tail_len());
            assert!(log < logged / 20 && tail < logged / 20, "replica {id}: {log} and {tail} of {logged}");
        }
        let analysis = crate::analysis::analyze(&outcome.records);
        let vv = analysis.rows.iter().find(|row| row.strategy == "vv").expect("a vv row");
        assert_eq!((vv.dropped, vv.diverged_keys), (0, 0));
        assert!(outcome.converged);
    }
}
