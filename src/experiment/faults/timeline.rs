//! A trial's faults as typed operations in time order, and the record each
//! leaves: what every engine carries out, written once.
//!
//! An engine knows a handful of [`Operation`]s (set a replica's clock, set
//! its link to a peer, pause, resume, crash and restart it). Everything a
//! trial does to its replicas is made of them: the clocks and links its
//! spec sets at the start ([`Baseline::start`]), each scheduled fault and
//! its end ([`timeline`]), and the network mended after the workload
//! ([`Baseline::heal`]). Each operation comes as a [`Step`]: the operation
//! and the name of the `fault` record it leaves, so the history says the
//! same thing whichever engine ran the trial, and an engine never decides
//! what to call what it did.
//!
//! A restarted replica is a new process: a true clock and clean links. Its
//! restart is therefore followed at once by its clock and links set again,
//! as at the start.

use std::sync::Arc;

use serde_json::Value;

use super::{CRASH_DOWN_TIME, FaultSpec, LinkFault, NetworkSpec, partition_links};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::update::{ClockStep, ClockUpdate, Lasting, LeapMode, LeapSecond, LeapTaken, Periodic};
use crate::history::{FaultKind, FaultName, FaultRecord, Record, TrialPlan};
use crate::lease::WorkerId;
use crate::replica::links::{Cut, DelaySpec, LinkUpdate};

/// One thing done to one replica or lease worker: all an engine is asked
/// to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Change the replica's clock model, as `PUT /admin/clock` does.
    SetClock { replica: ReplicaId, update: ClockUpdate },
    /// Change the replica's link to one peer, as `PUT /admin/links` does.
    SetLink { replica: ReplicaId, update: LinkUpdate },
    /// Stop the replica's process where it stands (SIGSTOP).
    Pause { replica: ReplicaId },
    /// Let a paused process go on (SIGCONT).
    Resume { replica: ReplicaId },
    /// Kill the replica's process (SIGKILL): what was not yet durable is lost.
    Crash { replica: ReplicaId },
    /// Start a crashed replica again, on its own data.
    Restart { replica: ReplicaId },
    /// Stop a lease worker's process where it stands.
    PauseWorker { worker: WorkerId },
    /// Let a paused lease worker go on.
    ResumeWorker { worker: WorkerId },
    /// Change a lease worker's time-of-day clock (never its monotonic one).
    SetWorkerClock { worker: WorkerId, update: ClockUpdate },
}

impl Operation {
    /// The replica it is done to (none: a lease worker).
    pub fn replica(&self) -> Option<ReplicaId> {
        match self {
            Self::SetClock { replica, .. }
            | Self::SetLink { replica, .. }
            | Self::Pause { replica }
            | Self::Resume { replica }
            | Self::Crash { replica }
            | Self::Restart { replica } => Some(*replica),
            Self::PauseWorker { .. } | Self::ResumeWorker { .. } | Self::SetWorkerClock { .. } => None,
        }
    }

    /// The lease worker it is done to, if it is one.
    pub fn worker(&self) -> Option<WorkerId> {
        match self {
            Self::PauseWorker { worker }
            | Self::ResumeWorker { worker }
            | Self::SetWorkerClock { worker, .. } => Some(*worker),
            _ => None,
        }
    }

    /// What it does, in words that follow "cannot" in a refusal.
    pub fn in_words(&self) -> String {
        let replica = self.replica().unwrap_or_default();
        match self {
            Self::SetClock { .. } => format!("change replica {replica}'s clock this way"),
            Self::SetLink { update, .. } => {
                format!("set replica {replica}'s link to {} this way", update.peer)
            }
            Self::Pause { .. } => format!("pause replica {replica}"),
            Self::Resume { .. } => format!("resume replica {replica}"),
            Self::Crash { .. } => format!("crash replica {replica}"),
            Self::Restart { .. } => format!("restart replica {replica}"),
            Self::PauseWorker { worker } => format!("pause lease {worker}"),
            Self::ResumeWorker { worker } => format!("resume lease {worker}"),
            Self::SetWorkerClock { worker, .. } => format!("change lease {worker}'s clock"),
        }
    }
}

/// An operation as a trial schedules it, with the record it leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub operation: Operation,
    /// The name its `fault` record goes under.
    pub name: FaultName,
    /// A partition's groups, which its records keep beside the link.
    pub groups: Option<Arc<[Vec<ReplicaId>]>>,
}

impl Step {
    fn new(name: impl Into<FaultName>, operation: Operation) -> Self {
        Self { operation, name: name.into(), groups: None }
    }

    /// The `fault` record of this step, carried out at true time `true_ns`:
    /// the settings sent, as the admin API takes them (nothing, for a signal).
    pub fn record(&self, plan: TrialPlan, true_ns: Nanos) -> Record {
        if let Some(worker) = self.operation.worker() {
            let settings = match &self.operation {
                Operation::SetWorkerClock { update, .. } => serde_json::to_value(update).unwrap_or_default(),
                _ => Value::Null,
            };
            let Record::Fault(record) = FaultRecord::at(true_ns, plan, 0, self.name, &settings) else {
                unreachable!("a fault record")
            };
            return Record::Fault(FaultRecord { worker: Some(worker), ..record });
        }
        let replica = self.operation.replica().unwrap_or_default();
        match (&self.operation, &self.groups) {
            (Operation::SetClock { update, .. }, _) => {
                FaultRecord::at(true_ns, plan, replica, self.name, update)
            }
            (Operation::SetLink { update, .. }, None) => {
                FaultRecord::at(true_ns, plan, replica, self.name, update)
            }
            (Operation::SetLink { update, .. }, Some(groups)) => {
                let mut settings = serde_json::to_value(update).unwrap_or_default();
                if let Value::Object(fields) = &mut settings {
                    fields.insert("groups".into(), serde_json::json!(groups));
                }
                FaultRecord::at(true_ns, plan, replica, self.name, &settings)
            }
            _ => FaultRecord::at(true_ns, plan, replica, self.name, &Value::Null),
        }
    }
}

/// What a trial's spec sets on its replicas, fault or no fault: each
/// replica's clock at the trial's sweep value, and the network's faults on
/// every link (none: `None`).
#[derive(Debug, Clone)]
pub struct Baseline {
    pub replicas: usize,
    /// Replica `i`'s clock at index `i - 1`.
    pub clocks: Vec<ClockUpdate>,
    pub network: Option<NetworkSpec>,
}

impl Baseline {
    /// The replicas' ids, 1 to N.
    pub fn ids(&self) -> impl Iterator<Item = ReplicaId> + Clone + use<> {
        1..=self.replicas as ReplicaId
    }

    fn peers(&self, replica: ReplicaId) -> impl Iterator<Item = ReplicaId> + use<> {
        self.ids().filter(move |&peer| peer != replica)
    }

    /// Replica `id`'s clock, as the admin API takes it.
    pub fn clock(&self, id: ReplicaId) -> &ClockUpdate {
        &self.clocks[id as usize - 1]
    }

    /// The network's faults on a replica's link to `peer`, if it has any.
    pub fn link_to(&self, peer: ReplicaId) -> Option<LinkUpdate> {
        let network = self.network.as_ref()?;
        Some(LinkUpdate {
            peer,
            cut: None,
            delay_ms: Some(DelaySpec::Range(network.delay_ms)),
            loss: Some(network.loss),
            // Named only when set, so the records of specs without them stay as they were.
            duplicate: (network.duplicate > 0.0).then_some(network.duplicate),
            reorder: (network.reorder > 0.0).then_some(network.reorder),
        })
    }

    /// What a trial does first: every replica's clock, then every link's
    /// network faults.
    pub fn start(&self) -> Vec<Step> {
        let clocks = self.ids().map(|replica| self.set_clock(replica));
        let links = self.ids().flat_map(|replica| self.set_links(replica));
        clocks.chain(links).collect()
    }

    /// What a trial does once its workload is over: every link's network
    /// faults lifted, so the replicas can converge.
    pub fn heal(&self) -> Vec<Step> {
        let Some(network) = &self.network else { return Vec::new() };
        let mut steps = Vec::new();
        for replica in self.ids() {
            for peer in self.peers(replica) {
                let update = LinkUpdate {
                    peer,
                    cut: Some(Cut::None),
                    delay_ms: Some(DelaySpec::Fixed(0.0)),
                    loss: Some(0.0),
                    duplicate: (network.duplicate > 0.0).then_some(0.0),
                    reorder: (network.reorder > 0.0).then_some(0.0),
                };
                steps.push(Step::new(FaultName::Heal, Operation::SetLink { replica, update }));
            }
        }
        steps
    }

    fn set_clock(&self, replica: ReplicaId) -> Step {
        Step::new(FaultName::Clock, Operation::SetClock { replica, update: self.clock(replica).clone() })
    }

    fn set_links(&self, replica: ReplicaId) -> Vec<Step> {
        self.peers(replica)
            .filter_map(|peer| self.link_to(peer))
            .map(|update| Step::new(FaultName::Links, Operation::SetLink { replica, update }))
            .collect()
    }

    /// Every link of `replica` set to `update(peer)`, each recorded as `name`.
    fn every_link(
        &self,
        replica: ReplicaId,
        name: impl Into<FaultName> + Copy,
        update: impl Fn(ReplicaId) -> LinkUpdate,
    ) -> Vec<Step> {
        let set = |peer| Step::new(name, Operation::SetLink { replica, update: update(peer) });
        self.peers(replica).map(set).collect()
    }

    /// A restart, then the clock and links a new process must be given.
    fn restart(&self, replica: ReplicaId) -> Vec<Step> {
        let mut steps = vec![Step::new(FaultName::Restart, Operation::Restart { replica })];
        steps.push(self.set_clock(replica));
        steps.extend(self.set_links(replica));
        steps
    }
}

fn heal_link(peer: ReplicaId) -> LinkUpdate {
    LinkUpdate::cut(peer, Cut::None)
}

/// Every cut link of every one of `replicas` replicas mended, each recorded as `heal`.
pub fn heal_all(replicas: usize) -> Vec<Step> {
    let ids = 1..=replicas as ReplicaId;
    let link =
        |replica, peer| Step::new(FaultName::Heal, Operation::SetLink { replica, update: heal_link(peer) });
    ids.clone()
        .flat_map(|replica| {
            ids.clone().filter(move |&peer| peer != replica).map(move |peer| link(replica, peer))
        })
        .collect()
}

/// A partition of `replicas` replicas into `groups`: the links between
/// them cut, each recorded as `partition` with the groups.
pub fn partition(replicas: usize, groups: Vec<Vec<ReplicaId>>, one_way: bool) -> Vec<Step> {
    let links = partition_links(&groups, replicas, one_way);
    let groups: Arc<[Vec<ReplicaId>]> = groups.into();
    links
        .into_iter()
        .map(|(replica, peer, cut)| Step {
            operation: Operation::SetLink { replica, update: LinkUpdate::cut(peer, cut) },
            name: FaultKind::Partition.into(),
            groups: Some(groups.clone()),
        })
        .collect()
}

/// The faults' steps in time order, each group at ms after the workload
/// starts. Windows still open at `end_ms` close then, so the trial ends
/// fault-free.
pub fn timeline(faults: &[FaultSpec], baseline: &Baseline, end_ms: f64) -> Vec<(f64, Vec<Step>)> {
    let mut moments = Vec::new();
    for fault in faults.iter().filter(|fault| fault.is_active() && fault.at_ms() < end_ms) {
        let at = fault.at_ms();
        let until = (at + fault.duration_ms()).min(end_ms);
        let kind = fault.kind();
        let one = |name: FaultKind, operation| vec![Step::new(name, operation)];
        match fault {
            FaultSpec::Step { replica, step_ms, .. } => {
                let update = ClockUpdate {
                    step: Some(ClockStep { by_ms: *step_ms, after_ms: 0.0 }),
                    ..Default::default()
                };
                moments.push((at, one(kind, Operation::SetClock { replica: *replica, update })));
            }
            FaultSpec::Strobe { replica, .. }
            | FaultSpec::Wobble { replica, .. }
            | FaultSpec::Jitter { replica, .. }
            | FaultSpec::Leap { replica, .. } => {
                let update = clock_fault(fault, until - at);
                moments.push((at, one(kind, Operation::SetClock { replica: *replica, update })));
            }
            FaultSpec::Cut { replica, cut, .. } => {
                let direction = Cut::from(*cut);
                moments
                    .push((at, baseline.every_link(*replica, kind, |peer| LinkUpdate::cut(peer, direction))));
                moments.push((until, baseline.every_link(*replica, FaultName::Heal, heal_link)));
            }
            FaultSpec::Partition(partition) => {
                let groups = partition.groups(baseline.replicas);
                moments.push((at, self::partition(baseline.replicas, groups, partition.one_way)));
                moments.push((until, heal_all(baseline.replicas)));
            }
            FaultSpec::Link { replica, link, .. } => {
                moments.push((at, baseline.every_link(*replica, kind, |peer| link.update(peer))));
                let restore =
                    |peer| baseline.link_to(peer).unwrap_or_else(|| LinkFault::default().update(peer));
                moments.push((until, baseline.every_link(*replica, FaultName::Restore, restore)));
            }
            FaultSpec::Pause { replica, .. } => {
                moments.push((at, one(kind, Operation::Pause { replica: *replica })));
                moments.push((
                    until,
                    vec![Step::new(FaultName::Resume, Operation::Resume { replica: *replica })],
                ));
            }
            FaultSpec::PauseWorker { worker, .. } => {
                moments.push((at, one(kind, Operation::PauseWorker { worker: *worker })));
                let resume = Step::new(FaultName::Resume, Operation::ResumeWorker { worker: *worker });
                moments.push((until, vec![resume]));
            }
            FaultSpec::StepWorker { worker, step_ms, .. } => {
                let update = ClockUpdate {
                    step: Some(ClockStep { by_ms: *step_ms, after_ms: 0.0 }),
                    ..Default::default()
                };
                moments.push((at, one(kind, Operation::SetWorkerClock { worker: *worker, update })));
            }
            FaultSpec::Crash { replica, every_ms, .. } => {
                let mut crash_at = at;
                let down_ms = CRASH_DOWN_TIME.as_secs_f64() * 1e3;
                while crash_at < end_ms {
                    moments.push((crash_at, one(kind, Operation::Crash { replica: *replica })));
                    moments.push(((crash_at + down_ms).min(end_ms), baseline.restart(*replica)));
                    if *every_ms <= 0.0 {
                        break;
                    }
                    crash_at += every_ms;
                }
            }
        }
    }
    // Stable: an end and a start at the same moment keep the spec's order.
    moments.sort_by(|a, b| a.0.total_cmp(&b.0));
    moments
}

/// The clock update of a clock fault the model plays out on its own
/// (strobe, wobble, jitter, leap), lasting `for_ms`.
fn clock_fault(fault: &FaultSpec, for_ms: f64) -> ClockUpdate {
    let none = ClockUpdate::default();
    match *fault {
        FaultSpec::Strobe { step_ms, period_ms, .. } => {
            ClockUpdate { strobe: Some(Periodic { size_ms: step_ms, period_ms, for_ms }), ..none }
        }
        FaultSpec::Wobble { step_ms, period_ms, .. } => {
            ClockUpdate { wobble: Some(Periodic { size_ms: step_ms.abs(), period_ms, for_ms }), ..none }
        }
        FaultSpec::Jitter { step_ms, .. } => {
            ClockUpdate { jitter: Some(Lasting { bound_ms: step_ms.abs(), for_ms }), ..none }
        }
        FaultSpec::Leap { leap: LeapMode::Step, .. } => {
            ClockUpdate { leap: Some(LeapSecond { after_ms: 0.0, taken: LeapTaken::Stepped }), ..none }
        }
        FaultSpec::Leap { leap: LeapMode::Smear, duration_ms, .. } => {
            // A smear is centred on the leap, so it starts half a window early.
            let taken = LeapTaken::Smeared { window_ms: duration_ms };
            ClockUpdate { leap: Some(LeapSecond { after_ms: duration_ms / 2.0, taken }), ..none }
        }
        _ => none,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::faults::{CutDirection, PartitionFault, PartitionShape, Split};

    fn baseline(replicas: usize) -> Baseline {
        Baseline { replicas, clocks: vec![ClockUpdate::default(); replicas], network: None }
    }

    fn names(moments: &[(f64, Vec<Step>)]) -> Vec<(f64, String)> {
        moments.iter().map(|(at, steps)| (*at, steps[0].name.to_string())).collect()
    }

    #[test]
    fn windows_close_in_time_and_at_the_end_at_the_latest() {
        let faults = [
            FaultSpec::Cut { at_ms: 100.0, replica: 1, cut: CutDirection::Both, duration_ms: 300.0 },
            FaultSpec::Pause { at_ms: 900.0, replica: 1, duration_ms: 300.0 },
            FaultSpec::Step { at_ms: 50.0, replica: 1, step_ms: -500.0 },
        ];
        let moments = timeline(&faults, &baseline(3), 1000.0);
        let expected =
            [(50.0, "step"), (100.0, "cut"), (400.0, "heal"), (900.0, "pause"), (1000.0, "resume")];
        assert_eq!(names(&moments), expected.map(|(at, name)| (at, name.to_string())));
        assert_eq!(moments[1].1.len(), 2, "a cut is one step per peer");
    }

    #[test]
    fn a_repeated_crash_restarts_every_time_with_its_clock_and_zero_sized_faults_do_nothing() {
        let faults = [
            FaultSpec::Crash { at_ms: 100.0, replica: 1, every_ms: 400.0 },
            FaultSpec::Pause { at_ms: 10.0, replica: 1, duration_ms: 0.0 },
        ];
        let moments = timeline(&faults, &baseline(3), 1000.0);
        let at: Vec<f64> = moments.iter().map(|(at, _)| *at).collect();
        assert_eq!(at, [100.0, 200.0, 500.0, 600.0, 900.0, 1000.0]);
        let restart: Vec<FaultName> = moments[1].1.iter().map(|step| step.name).collect();
        assert_eq!(restart, [FaultName::Restart, FaultName::Clock], "a new process gets its clock again");
    }

    #[test]
    fn a_partition_cuts_between_its_groups_keeps_them_in_its_records_and_heals_every_link() {
        let partition = FaultSpec::Partition(PartitionFault {
            at_ms: 100.0,
            split: Split::Shape { shape: PartitionShape::Halves, replica: 1 },
            one_way: false,
            duration_ms: 300.0,
        });
        let moments = timeline(&[partition], &baseline(5), 1000.0);
        assert_eq!(names(&moments), [(100.0, "partition".to_string()), (400.0, "heal".to_string())]);
        assert_eq!(moments[0].1.len(), 12);
        assert_eq!(moments[1].1.len(), 20, "every link of every replica");
        let plan = TrialPlan { point: 0, trial: 0, value: 0.0 };
        let Record::Fault(record) = moments[0].1[0].record(plan, 5) else { panic!("a fault record") };
        assert_eq!(record.settings["groups"], serde_json::json!([[1, 2], [3, 4, 5]]));
        assert_eq!(record.settings["cut"], "both");
    }

    #[test]
    fn clock_faults_that_end_on_their_own_are_one_clock_update_each() {
        let wobble = FaultSpec::Wobble {
            at_ms: 100.0,
            replica: 1,
            step_ms: 80.0,
            period_ms: 200.0,
            duration_ms: 300.0,
        };
        let jitter = FaultSpec::Jitter { at_ms: 100.0, replica: 1, step_ms: 5.0, duration_ms: 300.0 };
        let smear = FaultSpec::Leap { at_ms: 100.0, replica: 1, leap: LeapMode::Smear, duration_ms: 4000.0 };
        for fault in [&wobble, &jitter, &smear] {
            fault.check(3).unwrap_or_else(|problem| panic!("{fault:?}: {problem}"));
            let moments = timeline(std::slice::from_ref(fault), &baseline(3), 1000.0);
            assert_eq!(names(&moments), [(100.0, fault.kind().to_string())]);
            let Operation::SetClock { update, .. } = &moments[0].1[0].operation else {
                panic!("a clock update")
            };
            update.validate().unwrap_or_else(|error| panic!("{fault:?}: {error}"));
        }
        let moments = timeline(&[smear], &baseline(3), 1000.0);
        let Operation::SetClock { update, .. } = &moments[0].1[0].operation else { unreachable!() };
        let centred = LeapSecond { after_ms: 2000.0, taken: LeapTaken::Smeared { window_ms: 4000.0 } };
        assert_eq!(update.leap, Some(centred), "centred on its window");
    }
}
