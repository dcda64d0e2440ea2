//! The trial protocol: one trial, on any engine, and the records it leaves.
//!
//! The steps (docs/design.md, "Experiments and runs"):
//!
//! 1. set every replica's clock, and the network's faults on every link
//!    ([`Baseline::start`](crate::experiment::faults::timeline::Baseline::start)), each recorded as a `fault` record with the
//!    true time it took effect;
//! 2. start the workload; meanwhile, in true-time order, carry out the
//!    scheduled faults ([`timeline`]) and sample every replica's clocks every
//!    [`SAMPLE_INTERVAL`] (at the same moment, the fault first);
//! 3. once every client has finished, lift the network's faults
//!    ([`Baseline::heal`](crate::experiment::faults::timeline::Baseline::heal)) and wait, up to [`CONVERGE_TIMEOUT`], until every
//!    replica holds every write;
//! 4. record the trial (when its workload ran, whether and how fast it
//!    converged, which plugin buckets failed) and every replica's final
//!    state of every key.
//!
//! Records come out in one order whatever the engine: the settings of step
//! 1, the clock samples, the faults, the writes, the heal, the trial, the
//! final states. On the simulator the same seed therefore gives the same
//! history, byte for byte. A long simulated trial's writes come on disk
//! (`history::spill`): [`TrialOutcome::spilled`] says where they belong.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::{Engine, EngineError, Workload, WorkloadRecords, Writes};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::experiment::faults::timeline::{Step, timeline};
use crate::experiment::spec::Spec;
use crate::experiment::workload::Counters;
use crate::history::spill::SpilledWrites;
use crate::history::{FinalRecord, FinalSibling, Record, SampleRecord, Stamp, TrialPlan, TrialRecord};
use crate::lease;
use crate::replica::core::{Sibling, Snapshot};

/// How long replicas may take to converge after the faults stop.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often convergence is checked.
pub const CONVERGE_POLL: Duration = Duration::from_millis(20);
/// How often every replica's clock and offset estimates are sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// What a trial produced, in history order.
pub struct TrialOutcome {
    /// Every record, but the writes if they were spilled.
    pub records: Vec<Record>,
    /// The writes, if the engine spilled them, and where in `records` they go.
    pub spilled: Option<SpilledTrial>,
    /// Whether the replicas converged before [`CONVERGE_TIMEOUT`].
    pub converged: bool,
    /// How long convergence took after the heal.
    pub converge_time: Duration,
}

/// A trial's spilled writes (`history::spill`): they belong in its history
/// just before `records[at]`.
#[derive(Debug)]
pub struct SpilledTrial {
    pub at: usize,
    pub writes: SpilledWrites,
}

/// What happens at one moment of the workload.
enum Moment {
    /// Operations of the faults' timeline, one after another.
    Steps(Vec<Step>),
    /// Every replica's clocks read.
    Sample,
}

/// The workload's moments, ns after it starts: the timeline's steps, and a
/// clock sample every [`SAMPLE_INTERVAL`] before `duration_ns`; at the same
/// moment, the steps come first.
fn agenda(steps: Vec<(f64, Vec<Step>)>, duration_ns: Nanos) -> Vec<(Nanos, Moment)> {
    let every = SAMPLE_INTERVAL.as_nanos() as Nanos;
    let samples = (0..).map(|tick| tick * every).take_while(|&at| at < duration_ns);
    let mut moments: Vec<(Nanos, Moment)> =
        steps.into_iter().map(|(at_ms, steps)| (ms_to_ns(at_ms), Moment::Steps(steps))).collect();
    moments.extend(samples.map(|at| (at, Moment::Sample)));
    // Stable: steps (pushed first) stay before a sample at the same moment.
    moments.sort_by_key(|(at, _)| *at);
    moments
}

/// A spec's ms as ns, rounded.
pub fn ms_to_ns(ms: f64) -> Nanos {
    (ms * 1e6).round() as Nanos
}

/// Runs one trial of `spec` on `engine`, whose replicas are fresh.
pub async fn run_trial<E: Engine>(
    engine: &mut E,
    spec: &Spec,
    plan: TrialPlan,
    counters: Arc<Counters>,
) -> Result<TrialOutcome, EngineError> {
    let baseline = spec.baseline(plan);
    let mut records = Vec::new();
    carry_out(engine, baseline.start(), plan, &mut records).await?;

    // The workload, with the faults on schedule and the clocks sampled.
    let faults = spec.faults_of(plan);
    let duration_ms = spec.duration_ms;
    let moments = agenda(timeline(&faults, &baseline, duration_ms as f64), ms_to_ns(duration_ms as f64));
    let started = engine.now();
    engine
        .start_workload(Workload {
            spec: spec.sweep.parameter.workload_for(&spec.workload, plan.value),
            buckets: spec.strategies.clone(),
            lease: spec.sweep.parameter.lease_for(spec.lease.as_ref(), plan.value),
            duration_ms,
            seed: spec.seed,
            plan,
            counters,
        })
        .await?;
    let mut fault_records = Vec::new();
    let mut samples = Vec::new();
    for (at, moment) in moments {
        engine.run_until(started + at).await?;
        match moment {
            Moment::Steps(steps) => carry_out(engine, steps, plan, &mut fault_records).await?,
            Moment::Sample => samples.push(engine.sample_clocks()),
        }
    }
    let WorkloadRecords { writes, leases } = engine.finish_workload().await?;
    let workload_end_ns = engine.now();
    let mut keys: BTreeSet<String> = match &writes {
        Writes::Held(writes) => writes.iter().map(|write| write.key.to_string()).collect(),
        Writes::Spilled(spilled) => spilled.counts.values().flat_map(|keys| keys.keys().cloned()).collect(),
    };
    keys.extend(leases.iter().map(|record| lease::key_of(record.guard)));
    let samples = futures::future::join_all(samples).await.into_iter().flatten().map(|sample| {
        Record::Sample(SampleRecord {
            point: plan.point,
            trial: plan.trial,
            true_ns: sample.true_ns,
            replica: sample.replica,
            offset_ns: sample.offset_ns,
            peer_offsets: sample.peer_offsets,
        })
    });
    // The history's bulk: sized once, since growing it copies it again and again.
    let finals = spec.strategies.len() * keys.len() * spec.replicas;
    let held = match &writes {
        Writes::Held(writes) => writes.len(),
        Writes::Spilled(_) => 0,
    };
    records.reserve(fault_records.len() + held + finals + 2 * spec.replicas * spec.replicas + 1);
    records.extend(samples);
    records.extend(fault_records);
    let spilled = match writes {
        Writes::Held(writes) => {
            records.extend(writes.into_iter().map(Record::Write));
            None
        }
        Writes::Spilled(writes) => Some(SpilledTrial { at: records.len(), writes }),
    };
    records.extend(leases.into_iter().map(Record::Lease));

    // Faults stop; the replicas must now converge.
    carry_out(engine, baseline.heal(), plan, &mut records).await?;
    let healed = engine.now();
    let converged = loop {
        if engine.converged().await? {
            break true;
        }
        if engine.now() - healed > CONVERGE_TIMEOUT.as_nanos() as Nanos {
            break false;
        }
        let next = engine.now() + CONVERGE_POLL.as_nanos() as Nanos;
        engine.run_until(next).await?;
    };
    let converge_time = Duration::from_nanos((engine.now() - healed).max(0) as u64);
    if !converged {
        tracing::warn!(point = plan.point, trial = plan.trial, "replicas did not converge in time");
    }
    let mut failures = Vec::new();
    for id in baseline.ids() {
        failures.push((id, engine.failed_buckets(id).await?));
    }
    let failed_buckets = first_failures(failures);
    let mut states = BTreeMap::new();
    for id in baseline.ids() {
        states.insert(id, engine.state(id).await?);
    }
    records.push(Record::Trial(TrialRecord {
        point: plan.point,
        trial: plan.trial,
        workload_start_ns: started,
        workload_end_ns,
        converged,
        converge_ms: converge_time.as_micros() as f64 / 1e3,
        engine: E::KIND,
        failed_buckets: failed_buckets.clone(),
        notes: engine.notes(),
    }));
    let judged = judged_buckets(spec, &failed_buckets);
    records.extend(final_records_of(&states, &judged, plan, &keys));
    Ok(TrialOutcome { records, spilled, converged, converge_time })
}

/// Carries out `steps` in order, each recorded with the true time it took effect.
async fn carry_out<E: Engine>(
    engine: &mut E,
    steps: Vec<Step>,
    plan: TrialPlan,
    records: &mut Vec<Record>,
) -> Result<(), EngineError> {
    for step in steps {
        engine.apply(&step.operation).await?;
        records.push(step.record(plan, engine.now()));
    }
    Ok(())
}

/// Each failed bucket with the first replica's error (`replica N: ...`),
/// from every replica's failed buckets, in replica order.
pub fn first_failures(
    per_replica: impl IntoIterator<Item = (ReplicaId, BTreeMap<String, String>)>,
) -> BTreeMap<String, String> {
    let mut first = BTreeMap::new();
    for (id, failed) in per_replica {
        for (bucket, error) in failed {
            first.entry(bucket).or_insert_with(|| format!("replica {id}: {error}"));
        }
    }
    first
}

/// The spec's buckets but those whose plugin failed: only these have final
/// states to judge.
pub fn judged_buckets(spec: &Spec, failed: &BTreeMap<String, String>) -> Vec<String> {
    spec.strategies.iter().filter(|bucket| !failed.contains_key(*bucket)).cloned().collect()
}

/// The `final` records of replicas' states: every bucket and key, on every
/// replica. A key some replica lacks gets an empty record there, so
/// divergence shows.
pub fn final_records_of(
    states: &BTreeMap<ReplicaId, Snapshot>,
    buckets: &[String],
    plan: TrialPlan,
    written: &BTreeSet<String>,
) -> Vec<Record> {
    let mut records = Vec::new();
    for bucket in buckets {
        let mut keys = written.clone();
        for state in states.values() {
            if let Some(bucket_keys) = state.get(bucket) {
                keys.extend(bucket_keys.keys().cloned());
            }
        }
        for key in &keys {
            for (&replica, state) in states {
                let siblings =
                    state.get(bucket).and_then(|keys| keys.get(key)).map(|read| read.siblings.as_slice());
                records.push(Record::Final(FinalRecord {
                    point: plan.point,
                    trial: plan.trial,
                    bucket: bucket.as_str().into(),
                    key: key.as_str().into(),
                    replica,
                    siblings: siblings.unwrap_or_default().iter().map(final_sibling).collect(),
                }));
            }
        }
    }
    records
}

/// One sibling of `GET /admin/state`, as the history keeps it.
pub fn final_sibling(sibling: &Sibling) -> FinalSibling {
    FinalSibling {
        // A value this workload did not write holds no items.
        value: serde_json::from_str(sibling.value.text()).unwrap_or_default(),
        stamp: Stamp::parse(sibling.stamp.text()),
        write_id: sibling.write_id.clone(),
    }
}
