//! Faults during a trial: clock steps, link cuts, partitions, pauses and
//! crashes, on a schedule.
//!
//! DDIA chapter 8 lists more ways for clocks and networks to lie than a
//! fixed skew: NTP *steps* a clock back or forward when it finds it far off;
//! a network *partition* cuts replicas off from each other (sometimes in one
//! direction only); a *process pause* (a GC, a VM migration, SIGSTOP)
//! freezes a node while the world goes on, and when it wakes its clock has
//! jumped; a *crash* loses what was only in memory. An experiment spec lists
//! such faults as `[[fault]]` tables, each at a time after the workload
//! starts; the swept parameter can set their size (see
//! [`Parameter::apply`](super::spec::Parameter::apply)):
//!
//! ```toml
//! [[fault]]
//! kind = "step"        # step | strobe | wobble | jitter | leap | cut | partition | link | pause | crash
//! at_ms = 1000         # ms after the workload starts
//! replica = 1          # the replica it hits (a cut: the one cut off)
//! step_ms = -500       # step, strobe: the jump (negative: back)
//! period_ms = 50       # strobe: the clock flips every this many ms
//! duration_ms = 500    # strobe, cut, partition, pause: how long it lasts
//! cut = "both"         # cut: "both", or "in"/"out" as seen from `replica`
//! every_ms = 0         # crash: again every this many ms (0: once)
//! groups = [[1, 2], [3, 4, 5]]  # partition: who still hears whom
//! shape = "halves"     # partition, instead of groups: isolate | halves | ring | bridge
//! one_way = false      # partition: only the first group goes deaf
//! delay_ms = [5, 50]   # link: what `replica` sends is delayed,
//! loss = 0.1           #   lost, sent twice
//! duplicate = 0.3      #   or its writes reversed, with these
//! reorder = 0.3        #   probabilities, for duration_ms
//! ```
//!
//! A *partition* splits the cluster as Jepsen's nemeses do. Two replicas
//! keep their link if some group holds both; every other link is cut, both
//! ways (or, with `one_way`, only toward the first group: its replicas hear
//! nothing from the rest, who still hear them). Groups may overlap, so
//! Jepsen's shapes are groups too ([`PartitionShape`]): `isolate` cuts
//! `replica` off; `halves` splits the replicas into a smaller first half
//! and the rest (a minority and a majority); `ring` lets each replica hear
//! only its two neighbours (Jepsen's majorities ring: with five, everyone
//! sees a majority, no two the same); `bridge` joins two halves through one
//! replica in both. When the partition ends every link is healed.
//!
//! Every fault, and its end (heal, resume, restart), is logged as a `fault`
//! record with the true time it was applied, so plots can shade fault

mod network;
mod partition;
mod table;
pub mod timeline;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::dots::ReplicaId;
use crate::clock::update::LeapMode;
pub use crate::history::FaultKind;
use crate::lease::WorkerId;
use crate::replica::links::{Cut, DelaySpec, LinkUpdate};

pub use self::network::NetworkSpec;
pub use self::partition::{PartitionFault, PartitionShape, Split, partition_links};

/// How long a crashed replica stays down before it is restarted.
pub const CRASH_DOWN_TIME: Duration = Duration::from_millis(100);

/// One scheduled fault, as a spec writes it: a `[[fault]]` table whose
/// `kind` says which of these it is (read and written through
/// [`table::FaultTable`], the table's flat shape). Times are ms: `at_ms`
/// after the workload starts, `duration_ms` how long the fault lasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "table::FaultTable", into = "table::FaultTable")]
pub enum FaultSpec {
    /// The replica's clock jumps by `step_ms` (negative: back), as an NTP
    /// reset does.
    Step { at_ms: f64, replica: ReplicaId, step_ms: f64 },
    /// For `duration_ms` the replica's clock flips between its reading and
    /// that plus `step_ms` every `period_ms` (Jepsen's strobe-time).
    Strobe { at_ms: f64, replica: ReplicaId, step_ms: f64, period_ms: f64, duration_ms: f64 },
    /// For `duration_ms` the replica's offset swings by up to `step_ms`
    /// either way, a sine of period `period_ms`.
    Wobble { at_ms: f64, replica: ReplicaId, step_ms: f64, period_ms: f64, duration_ms: f64 },
    /// For `duration_ms` every reading of the replica's clock is off by up
    /// to `step_ms` either way, differently each time.
    Jitter { at_ms: f64, replica: ReplicaId, step_ms: f64, duration_ms: f64 },
    /// A leap second, `leap = "step"` (the clock repeats a second) or
    /// `"smear"` (spread over `duration_ms`, centred `duration_ms / 2` after
    /// `at_ms`).
    Leap { at_ms: f64, replica: ReplicaId, leap: LeapMode, duration_ms: f64 },
    /// The replica's links to every peer are cut for `duration_ms`, both
    /// ways or (`cut = "in"`/`"out"`) one way as seen from the replica.
    Cut { at_ms: f64, replica: ReplicaId, cut: CutDirection, duration_ms: f64 },
    /// The cluster splits into groups (or a Jepsen shape) for `duration_ms`.
    Partition(PartitionFault),
    /// For `duration_ms`, what the replica sends suffers its `link` fault;
    /// then its links are as the spec's `[network]` has them again.
    Link { at_ms: f64, replica: ReplicaId, link: LinkFault, duration_ms: f64 },
    /// The replica's process is stopped (SIGSTOP) for `duration_ms`.
    Pause { at_ms: f64, replica: ReplicaId, duration_ms: f64 },
    /// A lease worker's process is stopped for `duration_ms` (`kind =
    /// "pause"` with `worker` instead of `replica`): a GC pause, a VM
    /// migrated (DDIA Figure 8-4).
    PauseWorker { at_ms: f64, worker: WorkerId, duration_ms: f64 },
    /// A lease worker's clock jumps by `step_ms` (`kind = "step"` with
    /// `worker`): its time of day, never its monotonic clock.
    StepWorker { at_ms: f64, worker: WorkerId, step_ms: f64 },
    /// The replica's process is killed (SIGKILL) and restarted
    /// [`CRASH_DOWN_TIME`] later; again every `every_ms` until the workload
    /// ends (0: once).
    Crash { at_ms: f64, replica: ReplicaId, every_ms: f64 },
}

/// A `link` fault's settings, as the replica's links take them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkFault {
    pub delay_ms: [f64; 2],
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
}

impl LinkFault {
    /// The update that puts it on the link to `peer`.
    pub fn update(&self, peer: ReplicaId) -> LinkUpdate {
        LinkUpdate {
            peer,
            cut: None,
            delay_ms: Some(DelaySpec::Range(self.delay_ms)),
            loss: Some(self.loss),
            duplicate: Some(self.duplicate),
            reorder: Some(self.reorder),
        }
    }
}

/// Which way a cut blocks replication, from the cut-off replica's side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutDirection {
    /// Nothing in or out.
    #[default]
    Both,
    /// It hears nothing from its peers, but they hear it.
    In,
    /// Its peers hear nothing from it, but it hears them.
    Out,
}

/// A cut fault is a link cut that is not [`Cut::None`].
impl From<CutDirection> for Cut {
    fn from(direction: CutDirection) -> Self {
        match direction {
            CutDirection::Both => Cut::Both,
            CutDirection::In => Cut::In,
            CutDirection::Out => Cut::Out,
        }
    }
}

impl FaultSpec {
    /// Which kind of fault it is.
    pub fn kind(&self) -> FaultKind {
        match self {
            Self::Step { .. } => FaultKind::Step,
            Self::Strobe { .. } => FaultKind::Strobe,
            Self::Wobble { .. } => FaultKind::Wobble,
            Self::Jitter { .. } => FaultKind::Jitter,
            Self::Leap { .. } => FaultKind::Leap,
            Self::Cut { .. } => FaultKind::Cut,
            Self::Partition(_) => FaultKind::Partition,
            Self::Link { .. } => FaultKind::Link,
            Self::Pause { .. } | Self::PauseWorker { .. } => FaultKind::Pause,
            Self::Crash { .. } => FaultKind::Crash,
            Self::StepWorker { .. } => FaultKind::Step,
        }
    }

    /// The lease worker it hits, if it hits one.
    pub fn worker(&self) -> Option<WorkerId> {
        match self {
            Self::PauseWorker { worker, .. } | Self::StepWorker { worker, .. } => Some(*worker),
            _ => None,
        }
    }

    /// When it happens, ms after the workload starts.
    pub fn at_ms(&self) -> f64 {
        match self {
            Self::Step { at_ms, .. }
            | Self::Strobe { at_ms, .. }
            | Self::Wobble { at_ms, .. }
            | Self::Jitter { at_ms, .. }
            | Self::Leap { at_ms, .. }
            | Self::Cut { at_ms, .. }
            | Self::Link { at_ms, .. }
            | Self::Pause { at_ms, .. }
            | Self::PauseWorker { at_ms, .. }
            | Self::StepWorker { at_ms, .. }
            | Self::Crash { at_ms, .. } => *at_ms,
            Self::Partition(partition) => partition.at_ms,
        }
    }

    /// The replica it hits (a partition's: the one its shape is drawn
    /// around, if it has a shape).
    pub fn replica(&self) -> Option<ReplicaId> {
        match self {
            Self::Step { replica, .. }
            | Self::Strobe { replica, .. }
            | Self::Wobble { replica, .. }
            | Self::Jitter { replica, .. }
            | Self::Leap { replica, .. }
            | Self::Cut { replica, .. }
            | Self::Link { replica, .. }
            | Self::Pause { replica, .. }
            | Self::Crash { replica, .. } => Some(*replica),
            Self::Partition(partition) => match partition.split {
                Split::Shape { replica, .. } => Some(replica),
                Split::Groups(_) => None,
            },
            Self::PauseWorker { .. } | Self::StepWorker { .. } => None,
        }
    }

    /// How long it lasts, ms (0 for a step, a stepped leap and a crash,
    /// whose down time is fixed).
    pub fn duration_ms(&self) -> f64 {
        match self {
            Self::Strobe { duration_ms, .. }
            | Self::Wobble { duration_ms, .. }
            | Self::Jitter { duration_ms, .. }
            | Self::Leap { duration_ms, .. }
            | Self::Cut { duration_ms, .. }
            | Self::Link { duration_ms, .. }
            | Self::Pause { duration_ms, .. }
            | Self::PauseWorker { duration_ms, .. } => *duration_ms,
            Self::Partition(partition) => partition.duration_ms,
            Self::Step { .. } | Self::StepWorker { .. } | Self::Crash { .. } => 0.0,
        }
    }

    /// Whether the fault does anything (a sweep value of 0 turns it off).
    pub fn is_active(&self) -> bool {
        match self {
            Self::Step { step_ms, .. } | Self::StepWorker { step_ms, .. } => *step_ms != 0.0,
            Self::Strobe { step_ms, duration_ms, .. }
            | Self::Wobble { step_ms, duration_ms, .. }
            | Self::Jitter { step_ms, duration_ms, .. } => *step_ms != 0.0 && *duration_ms > 0.0,
            Self::Leap { .. } | Self::Crash { .. } => true,
            Self::Cut { .. }
            | Self::Partition(_)
            | Self::Link { .. }
            | Self::Pause { .. }
            | Self::PauseWorker { .. } => self.duration_ms() > 0.0,
        }
    }

    /// Checks the fault against a cluster of `replicas`; returns the problem.
    pub fn check(&self, replicas: usize) -> Result<(), String> {
        if let Some(replica) = self.replica()
            && (replica == 0 || replica as usize > replicas)
        {
            return Err(format!("replica {replica} does not exist (replicas are 1 to {replicas})"));
        }
        let (at_ms, duration_ms) = (self.at_ms(), self.duration_ms());
        if !(at_ms.is_finite() && duration_ms.is_finite() && at_ms >= 0.0 && duration_ms >= 0.0) {
            return Err("at_ms and duration_ms must be 0 or more, and numbers".into());
        }
        match self {
            Self::Step { step_ms, .. } | Self::StepWorker { step_ms, .. } | Self::Jitter { step_ms, .. }
                if !step_ms.is_finite() =>
            {
                Err("step_ms must be a number".into())
            }
            Self::Strobe { step_ms, period_ms, .. } | Self::Wobble { step_ms, period_ms, .. } => {
                if !(step_ms.is_finite() && period_ms.is_finite() && *period_ms > 0.0) {
                    return Err("a strobe or a wobble has a step_ms and a period_ms above 0".into());
                }
                Ok(())
            }
            Self::Leap { leap: LeapMode::Smear, duration_ms, .. } if *duration_ms <= 0.0 => {
                Err("a smeared leap needs duration_ms, its window".into())
            }
            Self::Leap { leap: LeapMode::Step, duration_ms, .. } if *duration_ms > 0.0 => {
                Err("a stepped leap takes no duration_ms".into())
            }
            Self::Link { link, .. } => {
                let [min, max] = link.delay_ms;
                let probability = |p: f64| (0.0..=1.0).contains(&p);
                let probabilities = [link.loss, link.duplicate, link.reorder].into_iter().all(probability);
                if !(0.0 <= min && min <= max && max.is_finite() && probabilities) {
                    return Err(
                        "a link fault has 0 <= delay_ms MIN <= MAX, and probabilities from 0 to 1".into()
                    );
                }
                Ok(())
            }
            Self::Partition(partition) => partition.check(replicas),
            Self::Crash { every_ms, .. } => {
                if !(every_ms.is_finite() && *every_ms >= 0.0) {
                    return Err("every_ms must be 0 or more, and a number".into());
                }
                let shortest = 2.0 * CRASH_DOWN_TIME.as_secs_f64() * 1e3;
                if *every_ms > 0.0 && *every_ms < shortest {
                    return Err(format!(
                        "every_ms must leave a crashed replica time to restart: at least {shortest} ms"
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FaultSpec, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    #[test]
    fn each_kind_takes_only_its_own_settings() {
        let pause = parse("kind = 'pause'\nat_ms = 10\nreplica = 1\nduration_ms = 200").expect("a pause");
        assert_eq!(pause, FaultSpec::Pause { at_ms: 10.0, replica: 1, duration_ms: 200.0 });
        let stray = parse("kind = 'pause'\nat_ms = 10\nreplica = 1\nperiod_ms = 5").unwrap_err();
        assert!(stray.contains("period_ms"), "{stray}");
        let leap_on_a_step = parse("kind = 'step'\nat_ms = 0\nreplica = 1\nleap = 'step'").unwrap_err();
        assert!(leap_on_a_step.contains("leap"), "{leap_on_a_step}");
        assert!(parse("kind = 'link'\nat_ms = 0\nreplica = 1").unwrap_err().contains("link"));
        assert!(parse("kind = 'melt'\nat_ms = 0\nreplica = 1").is_err());
        // What a spec reads, it writes back the same.
        let strobe =
            "kind = 'strobe'\nat_ms = 5\nreplica = 2\nstep_ms = -50\nperiod_ms = 20\nduration_ms = 300";
        let fault = parse(strobe).expect("a strobe");
        assert_eq!(parse(&toml::to_string(&fault).expect("written")), Ok(fault));
    }

    #[test]
    fn what_each_kind_needs_is_checked_against_the_cluster() {
        let pause = FaultSpec::Pause { at_ms: 0.0, replica: 4, duration_ms: 10.0 };
        assert!(pause.check(3).unwrap_err().contains("replica 4"));
        let wobble =
            FaultSpec::Wobble { at_ms: 0.0, replica: 1, step_ms: 80.0, period_ms: 0.0, duration_ms: 5.0 };
        assert!(wobble.check(3).is_err());
        let timeless = FaultSpec::Leap { at_ms: 0.0, replica: 1, leap: LeapMode::Smear, duration_ms: 0.0 };
        assert!(timeless.check(3).is_err());
        let stepped = FaultSpec::Leap { at_ms: 0.0, replica: 1, leap: LeapMode::Step, duration_ms: 10.0 };
        assert!(stepped.check(3).is_err());
        let fast = FaultSpec::Crash { at_ms: 0.0, replica: 1, every_ms: 50.0 };
        assert!(fast.check(3).unwrap_err().contains("every_ms"));
        let late = FaultSpec::Cut { at_ms: f64::NAN, replica: 1, cut: CutDirection::In, duration_ms: 1.0 };
        assert!(late.check(3).is_err());
        assert!(FaultSpec::Crash { at_ms: 0.0, replica: 3, every_ms: 500.0 }.check(3).is_ok());
    }
}
