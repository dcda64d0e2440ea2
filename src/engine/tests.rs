//! The protocol told to an engine that only writes down what it is asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::*;
use crate::experiment::workload::Counters;
use crate::history::{FaultKind, Record};

/// An engine with no replicas behind it: it keeps what it was asked to
/// do, at what true time, and moves time on when told to.
#[derive(Default)]
struct Notebook {
    now: Nanos,
    done: Vec<(Nanos, Operation)>,
    samples_taken: Vec<Nanos>,
    workload_started: Option<Nanos>,
    workload_ends: Nanos,
}

impl Engine for Notebook {
    const KIND: EngineKind = EngineKind::Sim;

    /// This engine cannot strobe a clock (as a real database under
    /// libfaketime could not).
    fn refusal(operation: &Operation) -> Option<String> {
        match operation {
            Operation::SetClock { update, .. } if update.strobe.is_some() => {
                Some("its clocks move only by offset and rate".into())
            }
            _ => None,
        }
    }

    /// Nor run lease workers (as a real database has none).
    fn lease_refusal() -> Option<String> {
        Some("it has no worker processes".into())
    }

    fn now(&self) -> Nanos {
        self.now
    }

    async fn run_until(&mut self, at: Nanos) -> Result<(), EngineError> {
        assert!(at >= self.now, "time only moves forward: {at} < {}", self.now);
        self.now = at;
        Ok(())
    }

    async fn apply(&mut self, operation: &Operation) -> Result<(), EngineError> {
        self.done.push((self.now, operation.clone()));
        Ok(())
    }

    async fn start_workload(&mut self, workload: Workload) -> Result<(), EngineError> {
        self.workload_started = Some(self.now);
        self.workload_ends = self.now + workload.duration_ms as Nanos * MS;
        Ok(())
    }

    /// The clients (there are none) finish when the workload's time is up.
    async fn finish_workload(&mut self) -> Result<WorkloadRecords, EngineError> {
        self.now = self.now.max(self.workload_ends);
        Ok(WorkloadRecords::default())
    }

    fn sample_clocks(&mut self) -> BoxFuture<'static, Vec<ClockSample>> {
        self.samples_taken.push(self.now);
        let sample = ClockSample { replica: 1, true_ns: self.now, offset_ns: 0, peer_offsets: Value::Null };
        Box::pin(std::future::ready(vec![sample]))
    }

    async fn converged(&mut self) -> Result<bool, EngineError> {
        Ok(true)
    }

    async fn failed_buckets(&mut self, _replica: ReplicaId) -> Result<BTreeMap<String, String>, EngineError> {
        Ok(BTreeMap::new())
    }

    async fn state(&mut self, _replica: ReplicaId) -> Result<Snapshot, EngineError> {
        Ok(Snapshot::new())
    }
}

fn spec(faults: &str) -> Spec {
    let text = format!(
        "replicas = 3\nstrategies = ['lww-wall']\ntrials = 1\nduration_ms = 1000\n\
         [network]\ndelay_ms = [1, 2]\n\
         [sweep]\nparameter = 'skew_ms'\nvalues = [0, 100]\n{faults}"
    );
    Spec::parse(&text, std::path::Path::new("notebook.toml")).expect("a valid spec")
}

const MS: Nanos = 1_000_000;

#[test]
fn the_protocol_sets_the_scene_runs_the_faults_on_time_and_heals_after_the_workload() {
    let spec = spec("[[fault]]\nkind = 'pause'\nat_ms = 300\nreplica = 2\nduration_ms = 200\n");
    let plan = TrialPlan { point: 1, trial: 0, value: 100.0 };
    let mut engine = Notebook { now: 7 * MS, ..Notebook::default() };
    let outcome =
        futures::executor::block_on(run_trial(&mut engine, &spec, plan, Arc::new(Counters::default())))
            .expect("a trial");
    let started = engine.workload_started.expect("the workload ran");
    assert_eq!(started, 7 * MS, "after the clocks and links, at once");
    // The scene: three clocks, then six links, before the workload.
    let scene: Vec<&Operation> =
        engine.done.iter().take_while(|(at, _)| *at == 7 * MS).map(|(_, op)| op).collect();
    assert_eq!(scene.len(), 3 + 6);
    assert!(scene[..3].iter().all(|op| matches!(op, Operation::SetClock { .. })));
    // The pause and its end at their true times, then the network mended after the workload.
    let signals: Vec<(Nanos, &Operation)> = engine
        .done
        .iter()
        .filter(|(_, op)| matches!(op, Operation::Pause { .. } | Operation::Resume { .. }))
        .map(|(at, op)| (*at - started, op))
        .collect();
    assert_eq!(
        signals,
        [(300 * MS, &Operation::Pause { replica: 2 }), (500 * MS, &Operation::Resume { replica: 2 })]
    );
    let healed = engine.done.iter().filter(|(at, _)| *at >= started + 1000 * MS).count();
    assert_eq!(healed, 6, "every link mended once the workload is over");
    // Ten samples, 100 ms apart, the first at the start.
    let samples: Vec<Nanos> = engine.samples_taken.iter().map(|at| (at - started) / MS).collect();
    assert_eq!(samples, (0..10).map(|tick| tick * 100).collect::<Vec<_>>());
    // Every operation left its record, in the protocol's order.
    let names: Vec<String> = outcome
        .records
        .iter()
        .filter_map(|record| match record {
            Record::Fault(fault) => Some(fault.fault.to_string()),
            Record::Sample(_) => Some("sample".into()),
            Record::Trial(_) => Some("trial".into()),
            _ => None,
        })
        .collect();
    let mut expected = vec!["clock"; 3];
    expected.extend(["links"; 6]);
    expected.extend(["sample"; 10]);
    expected.extend(["pause", "resume"]);
    expected.extend(["heal"; 6]);
    expected.push("trial");
    assert_eq!(names, expected);
    assert!(outcome.converged);
}

#[test]
fn an_engine_that_cannot_carry_out_a_fault_refuses_the_spec_before_any_trial() {
    let strobe = spec(
        "[[fault]]\nkind = 'strobe'\nat_ms = 200\nreplica = 3\nstep_ms = 50\nperiod_ms = 20\nduration_ms = 100\n",
    );
    let refused = check_with::<Notebook>(&strobe).expect_err("no strobes here");
    assert!(matches!(refused, Refused::Operation { name: FaultName::Fault(FaultKind::Strobe), .. }));
    let message = refused.to_string();
    for part in ["the sim engine", "replica 3's clock", "strobe at 200 ms", "offset and rate"] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    let step = spec("[[fault]]\nkind = 'step'\nat_ms = 200\nreplica = 3\nstep_ms = 50\n");
    assert!(check_with::<Notebook>(&step).is_ok());
    // The engines that exist carry out every fault a replica can take.
    assert!(check(&strobe, EngineKind::Processes).is_ok() && check(&strobe, EngineKind::Sim).is_ok());
}

#[test]
fn an_engine_without_lease_workers_refuses_a_lease_spec_before_any_trial() {
    let lease = spec("[lease]\nworkers = 2\nbucket = 'lww-wall'\n");
    let refused = check_with::<Notebook>(&lease).expect_err("no workers here");
    let message = refused.to_string();
    assert!(
        message.contains("the sim engine cannot run lease workers: it has no worker processes"),
        "{message}"
    );
    assert!(check(&lease, EngineKind::Processes).is_ok() && check(&lease, EngineKind::Sim).is_ok());
}
