//! Faults during a trial: clock steps, link cuts, pauses and crashes, on a
//! schedule.
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
//! kind = "step"        # step | cut | pause | crash
//! at_ms = 1000         # ms after the workload starts
//! replica = 1          # the replica it hits (a cut: the one cut off)
//! step_ms = -500       # step: the jump (negative: back)
//! duration_ms = 500    # cut, pause: how long it lasts
//! cut = "both"         # cut: "both", or "in"/"out" as seen from `replica`
//! every_ms = 0         # crash: again every this many ms (0: once)
//! ```
//!
//! Every fault, and its end (heal, resume, restart), is logged as a `fault`
//! record with the true time it was applied, so plots can shade fault
//! windows and anyone can check what was done.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::cluster::{Cluster, ClusterError, Signal};
use crate::clock::dots::ReplicaId;
use crate::clock::physical::ClockUpdate;
use crate::history::{FaultRecord, Record, TrialPlan};
use crate::replica::links::{Cut, LinkUpdate};

/// How long a crashed replica stays down before it is restarted.
pub const CRASH_DOWN_TIME: Duration = Duration::from_millis(100);

/// One scheduled fault, as a spec writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// When, in ms after the workload starts.
    pub at_ms: f64,
    /// The replica it hits; for a cut, the one cut off from every other.
    pub replica: ReplicaId,
    /// `step`: how far the clock jumps, ms (negative: back).
    #[serde(default)]
    pub step_ms: f64,
    /// `cut` and `pause`: how long the fault lasts, ms.
    #[serde(default)]
    pub duration_ms: f64,
    /// `cut`: which directions, as seen from `replica`.
    #[serde(default)]
    pub cut: CutDirection,
    /// `crash`: crash again every this many ms until the workload ends; 0: once.
    #[serde(default)]
    pub every_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The replica's clock jumps by `step_ms`, as an NTP reset does.
    Step,
    /// The replica's links to every peer are cut for `duration_ms`.
    Cut,
    /// The replica's process is stopped (SIGSTOP) for `duration_ms`.
    Pause,
    /// The replica's process is killed (SIGKILL) and restarted.
    Crash,
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
    /// Whether the fault does anything (a sweep value of 0 turns it off).
    pub fn is_active(&self) -> bool {
        match self.kind {
            FaultKind::Step => self.step_ms != 0.0,
            FaultKind::Cut | FaultKind::Pause => self.duration_ms > 0.0,
            FaultKind::Crash => true,
        }
    }

    /// Checks the fault against a cluster of `replicas`; returns the problem.
    pub fn check(&self, replicas: usize) -> Result<(), String> {
        if self.replica == 0 || self.replica as usize > replicas {
            return Err(format!("replica {} does not exist (replicas are 1 to {replicas})", self.replica));
        }
        let finite =
            [self.at_ms, self.step_ms, self.duration_ms, self.every_ms].iter().all(|v| v.is_finite());
        if !finite || self.at_ms < 0.0 || self.duration_ms < 0.0 || self.every_ms < 0.0 {
            return Err("at_ms, duration_ms and every_ms must be 0 or more, and numbers".into());
        }
        if self.kind == FaultKind::Crash
            && self.every_ms > 0.0
            && self.every_ms < 2.0 * CRASH_DOWN_TIME.as_secs_f64() * 1e3
        {
            return Err(format!(
                "every_ms must leave a crashed replica time to restart: at least {} ms",
                2 * CRASH_DOWN_TIME.as_millis()
            ));
        }
        Ok(())
    }
}

/// One thing to do at one moment: what both engines do to a replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Step { replica: ReplicaId, step_ms: f64 },
    Cut { replica: ReplicaId, direction: CutDirection },
    Heal { replica: ReplicaId },
    Pause { replica: ReplicaId },
    Resume { replica: ReplicaId },
    Crash { replica: ReplicaId },
    Restart { replica: ReplicaId },
}

/// The faults' actions in time order, each at ms after the workload starts.
/// Windows still open at `end_ms` close then, so the trial ends fault-free.
pub fn timeline(faults: &[FaultSpec], end_ms: f64) -> Vec<(f64, Action)> {
    let mut actions = Vec::new();
    for fault in faults.iter().filter(|fault| fault.is_active() && fault.at_ms < end_ms) {
        let (at, replica) = (fault.at_ms, fault.replica);
        let until = (at + fault.duration_ms).min(end_ms);
        match fault.kind {
            FaultKind::Step => actions.push((at, Action::Step { replica, step_ms: fault.step_ms })),
            FaultKind::Cut => {
                actions.push((at, Action::Cut { replica, direction: fault.cut }));
                actions.push((until, Action::Heal { replica }));
            }
            FaultKind::Pause => {
                actions.push((at, Action::Pause { replica }));
                actions.push((until, Action::Resume { replica }));
            }
            FaultKind::Crash => {
                let mut crash_at = at;
                let down_ms = CRASH_DOWN_TIME.as_secs_f64() * 1e3;
                while crash_at < end_ms {
                    actions.push((crash_at, Action::Crash { replica }));
                    actions.push(((crash_at + down_ms).min(end_ms), Action::Restart { replica }));
                    if fault.every_ms <= 0.0 {
                        break;
                    }
                    crash_at += fault.every_ms;
                }
            }
        }
    }
    // Stable: an end and a start at the same moment keep the spec's order.
    actions.sort_by(|a, b| a.0.total_cmp(&b.0));
    actions
}

/// What a restarted replica must be given again: its clock, and its links
/// to each peer.
pub struct Restore<'a> {
    pub clock: &'a (dyn Fn(ReplicaId) -> ClockUpdate + Sync),
    pub links: &'a (dyn Fn(ReplicaId) -> Option<LinkUpdate> + Sync),
}

/// Applies the faults on schedule, from `started` until `end_ms` after it;
/// returns their `fault` records.
pub async fn run(
    cluster: &mut Cluster,
    faults: &[FaultSpec],
    plan: TrialPlan,
    started: Instant,
    end_ms: f64,
    restore: &Restore<'_>,
) -> Result<Vec<Record>, ClusterError> {
    let mut records = Vec::new();
    for (at_ms, action) in timeline(faults, end_ms) {
        tokio::time::sleep_until(started + Duration::from_secs_f64(at_ms / 1e3)).await;
        match action {
            Action::Step { replica, step_ms } => {
                let update = ClockUpdate { step_ms: Some(step_ms), ..Default::default() };
                cluster.set_clock(replica, &update).await?;
                records.push(FaultRecord::now(plan, replica, "step", &update));
            }
            Action::Cut { replica, direction } => {
                for peer in cluster.ids().filter(|&peer| peer != replica) {
                    let update = LinkUpdate::cut(peer, direction.into());
                    cluster.set_link(replica, &update).await?;
                    records.push(FaultRecord::now(plan, replica, "cut", &update));
                }
            }
            Action::Heal { replica } => {
                for peer in cluster.ids().filter(|&peer| peer != replica) {
                    let update = LinkUpdate::cut(peer, Cut::None);
                    cluster.set_link(replica, &update).await?;
                    records.push(FaultRecord::now(plan, replica, "heal", &update));
                }
            }
            Action::Pause { replica } => {
                cluster.signal(replica, Signal::Pause)?;
                records.push(FaultRecord::now(plan, replica, "pause", &Value::Null));
            }
            Action::Resume { replica } => {
                cluster.signal(replica, Signal::Resume)?;
                records.push(FaultRecord::now(plan, replica, "resume", &Value::Null));
            }
            Action::Crash { replica } => {
                cluster.crash(replica).await?;
                records.push(FaultRecord::now(plan, replica, "crash", &Value::Null));
            }
            Action::Restart { replica } => {
                cluster.restart(replica).await?;
                records.push(FaultRecord::now(plan, replica, "restart", &Value::Null));
                // A new process starts with a true clock and clean links.
                let clock = (restore.clock)(replica);
                cluster.set_clock(replica, &clock).await?;
                records.push(FaultRecord::now(plan, replica, "clock", &clock));
                for peer in cluster.ids().filter(|&peer| peer != replica) {
                    if let Some(update) = (restore.links)(peer) {
                        cluster.set_link(replica, &update).await?;
                        records.push(FaultRecord::now(plan, replica, "links", &update));
                    }
                }
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, at_ms: f64) -> FaultSpec {
        FaultSpec {
            kind,
            at_ms,
            replica: 1,
            step_ms: -500.0,
            duration_ms: 300.0,
            cut: CutDirection::Both,
            every_ms: 0.0,
        }
    }

    fn kinds(actions: &[(f64, Action)]) -> Vec<(f64, &'static str)> {
        actions
            .iter()
            .map(|(at, action)| {
                let name = match action {
                    Action::Step { .. } => "step",
                    Action::Cut { .. } => "cut",
                    Action::Heal { .. } => "heal",
                    Action::Pause { .. } => "pause",
                    Action::Resume { .. } => "resume",
                    Action::Crash { .. } => "crash",
                    Action::Restart { .. } => "restart",
                };
                (*at, name)
            })
            .collect()
    }

    #[test]
    fn windows_close_in_time_and_at_the_end_at_the_latest() {
        let faults =
            [fault(FaultKind::Cut, 100.0), fault(FaultKind::Pause, 900.0), fault(FaultKind::Step, 50.0)];
        let actions = timeline(&faults, 1000.0);
        assert_eq!(
            kinds(&actions),
            vec![(50.0, "step"), (100.0, "cut"), (400.0, "heal"), (900.0, "pause"), (1000.0, "resume")]
        );
    }

    #[test]
    fn a_repeated_crash_restarts_every_time_and_zero_sized_faults_do_nothing() {
        let crash = FaultSpec { every_ms: 400.0, ..fault(FaultKind::Crash, 100.0) };
        let no_pause = FaultSpec { duration_ms: 0.0, ..fault(FaultKind::Pause, 10.0) };
        let actions = timeline(&[crash, no_pause], 1000.0);
        assert_eq!(
            kinds(&actions),
            vec![
                (100.0, "crash"),
                (200.0, "restart"),
                (500.0, "crash"),
                (600.0, "restart"),
                (900.0, "crash"),
                (1000.0, "restart")
            ]
        );
    }

    #[test]
    fn a_fault_on_a_missing_replica_is_refused() {
        let far = FaultSpec { replica: 4, ..fault(FaultKind::Pause, 0.0) };
        assert!(far.check(3).unwrap_err().contains("replica 4"));
        let fast = FaultSpec { every_ms: 50.0, ..fault(FaultKind::Crash, 0.0) };
        assert!(fast.check(3).is_err());
    }
}
