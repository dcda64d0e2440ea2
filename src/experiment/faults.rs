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
//! windows and anyone can check what was done.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::cluster::{Cluster, ClusterError, Signal};
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ClockUpdate, LeapMode};
use crate::history::{FaultRecord, Record, TrialPlan};
use crate::replica::links::{Cut, DelaySpec, LinkUpdate};

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
    /// `step`, `strobe`: how far the clock jumps, ms (negative: back).
    #[serde(default)]
    pub step_ms: f64,
    /// `strobe`: how often the clock flips, ms.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub period_ms: f64,
    /// `cut` and `pause`: how long the fault lasts, ms.
    #[serde(default)]
    pub duration_ms: f64,
    /// `cut`: which directions, as seen from `replica`.
    #[serde(default)]
    pub cut: CutDirection,
    /// `crash`: crash again every this many ms until the workload ends; 0: once.
    #[serde(default)]
    pub every_ms: f64,
    /// `partition`: the groups of replicas that still hear each other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<ReplicaId>>,
    /// `leap`: stepped or smeared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leap: Option<LeapMode>,
    /// `partition`: a named shape instead of `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<PartitionShape>,
    /// `partition`: cut only the links toward the first group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_way: bool,
    /// `link`: what the replica sends is delayed by `[MIN, MAX]` ms, lost,
    /// sent twice or reordered with these probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkFault>,
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

/// Jepsen's partition shapes, as groups of the replicas 1 to N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionShape {
    /// `replica` alone, against the rest.
    Isolate,
    /// The first N/2 replicas (rounded down) against the others.
    Halves,
    /// Each replica with its two neighbours, around a ring.
    Ring,
    /// Two halves that share their middle replica.
    Bridge,
}

impl PartitionShape {
    /// The shape's groups among `replicas` replicas.
    pub fn groups(self, replicas: usize, replica: ReplicaId) -> Vec<Vec<ReplicaId>> {
        let all: Vec<ReplicaId> = (1..=replicas as ReplicaId).collect();
        match self {
            Self::Isolate => vec![vec![replica], all.into_iter().filter(|&other| other != replica).collect()],
            Self::Halves => {
                let (minority, majority) = all.split_at(replicas / 2);
                vec![minority.to_vec(), majority.to_vec()]
            }
            Self::Ring => all.iter().map(|&id| vec![id, id % replicas as ReplicaId + 1]).collect(),
            Self::Bridge => {
                let middle = replicas.div_ceil(2);
                vec![all[..middle].to_vec(), all[middle - 1..].to_vec()]
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The replica's clock jumps by `step_ms`, as an NTP reset does.
    Step,
    /// For `duration_ms` the replica's clock flips between its reading and
    /// that plus `step_ms` every `period_ms` (Jepsen's strobe-time).
    Strobe,
    /// For `duration_ms` the replica's offset swings by up to `step_ms`
    /// either way, a sine of period `period_ms`.
    Wobble,
    /// For `duration_ms` every reading of the replica's clock is off by up
    /// to `step_ms` either way, differently each time.
    Jitter,
    /// A leap second, `leap = "step"` (the clock repeats a second) or
    /// `"smear"` (spread over `duration_ms`, centred `duration_ms / 2` after
    /// `at_ms`).
    Leap,
    /// The replica's links to every peer are cut for `duration_ms`.
    Cut,
    /// The cluster splits into `groups` (or a `shape`) for `duration_ms`.
    Partition,
    /// For `duration_ms`, what the replica sends suffers its `link` fault;
    /// then its links are as the spec's `[network]` has them again.
    Link,
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
    /// A fault of `kind` on `replica` at `at_ms`, every other setting at its
    /// default (no size, no duration), for the caller to fill in.
    pub fn new(kind: FaultKind, at_ms: f64, replica: ReplicaId) -> Self {
        Self {
            kind,
            at_ms,
            replica,
            step_ms: 0.0,
            period_ms: 0.0,
            duration_ms: 0.0,
            cut: CutDirection::Both,
            every_ms: 0.0,
            groups: Vec::new(),
            shape: None,
            one_way: false,
            leap: None,
            link: None,
        }
    }

    /// Whether the fault does anything (a sweep value of 0 turns it off).
    pub fn is_active(&self) -> bool {
        match self.kind {
            FaultKind::Step => self.step_ms != 0.0,
            FaultKind::Strobe | FaultKind::Wobble | FaultKind::Jitter => {
                self.step_ms != 0.0 && self.duration_ms > 0.0
            }
            FaultKind::Leap => true,
            FaultKind::Cut | FaultKind::Partition | FaultKind::Link | FaultKind::Pause => {
                self.duration_ms > 0.0
            }
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
        if matches!(self.kind, FaultKind::Strobe | FaultKind::Wobble) != (self.period_ms > 0.0) {
            return Err("a strobe or a wobble, and only they, have a period_ms above 0".into());
        }
        match (self.kind, self.leap) {
            (FaultKind::Leap, None) => return Err("a leap says leap = \"step\" or \"smear\"".into()),
            (FaultKind::Leap, Some(LeapMode::Smear)) if self.duration_ms <= 0.0 => {
                return Err("a smeared leap needs duration_ms, its window".into());
            }
            (FaultKind::Leap, Some(LeapMode::Step)) if self.duration_ms > 0.0 => {
                return Err("a stepped leap takes no duration_ms".into());
            }
            (kind, Some(_)) if kind != FaultKind::Leap => return Err("leap belongs to a leap fault".into()),
            _ => {}
        }
        match (self.kind, &self.link) {
            (FaultKind::Link, None) => return Err("a link fault says what it does: [fault.link]".into()),
            (FaultKind::Link, Some(link)) => {
                let [min, max] = link.delay_ms;
                let probability = |p: f64| (0.0..=1.0).contains(&p);
                let probabilities = [link.loss, link.duplicate, link.reorder].into_iter().all(probability);
                if !(0.0 <= min && min <= max && max.is_finite() && probabilities) {
                    return Err(
                        "a link fault has 0 <= delay_ms MIN <= MAX, and probabilities from 0 to 1".into()
                    );
                }
            }
            (_, Some(_)) => return Err("link belongs to a link fault".into()),
            _ => {}
        }
        if self.kind == FaultKind::Partition {
            self.check_partition(replicas)?;
        } else if !self.groups.is_empty() || self.shape.is_some() || self.one_way {
            return Err("groups, shape and one_way belong to a partition".into());
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

impl FaultSpec {
    fn check_partition(&self, replicas: usize) -> Result<(), String> {
        match (self.groups.is_empty(), self.shape) {
            (true, None) | (false, Some(_)) => {
                return Err("a partition has either groups or a shape".into());
            }
            (_, Some(_)) if replicas < 3 => return Err("a partition shape needs at least 3 replicas".into()),
            _ => {}
        }
        for &member in self.groups.iter().flatten() {
            if member == 0 || member as usize > replicas {
                return Err(format!("group member {member} does not exist (replicas are 1 to {replicas})"));
            }
        }
        if self.groups.iter().any(Vec::is_empty) {
            return Err("a partition's group is never empty".into());
        }
        Ok(())
    }

    /// A partition's groups among `replicas` replicas.
    pub fn partition_groups(&self, replicas: usize) -> Vec<Vec<ReplicaId>> {
        match self.shape {
            Some(shape) => shape.groups(replicas, self.replica),
            None => self.groups.clone(),
        }
    }
}

/// The links a partition into `groups` cuts, as (replica, peer, what the
/// replica blocks on its link to the peer); links it keeps are left out.
pub fn partition_links(
    groups: &[Vec<ReplicaId>],
    replicas: usize,
    one_way: bool,
) -> Vec<(ReplicaId, ReplicaId, Cut)> {
    let together =
        |a: ReplicaId, b: ReplicaId| groups.iter().any(|group| group.contains(&a) && group.contains(&b));
    let deaf = |id: ReplicaId| one_way && groups.first().is_some_and(|first| first.contains(&id));
    let ids = 1..=replicas as ReplicaId;
    let mut links = Vec::new();
    for replica in ids.clone() {
        for peer in ids.clone().filter(|&peer| peer != replica && !together(replica, peer)) {
            let cut = match (one_way, deaf(replica), deaf(peer)) {
                (false, _, _) => Cut::Both,
                // The first group hears nothing from the others...
                (true, true, false) => Cut::In,
                // ...who still hear it, but send it nothing.
                (true, false, true) => Cut::Out,
                _ => Cut::Both,
            };
            links.push((replica, peer, cut));
        }
    }
    links
}

/// One thing to do at one moment: what both engines do to a replica.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Step {
        replica: ReplicaId,
        step_ms: f64,
    },
    /// A clock fault the model plays out on its own (strobe, wobble,
    /// jitter, leap), logged as `fault`.
    Clock {
        replica: ReplicaId,
        fault: &'static str,
        update: Box<ClockUpdate>,
    },
    Cut {
        replica: ReplicaId,
        direction: CutDirection,
    },
    Heal {
        replica: ReplicaId,
    },
    /// Cut these links (replica, peer, cut); `groups` is logged with them.
    Partition {
        groups: Vec<Vec<ReplicaId>>,
        links: Vec<(ReplicaId, ReplicaId, Cut)>,
    },
    /// Restore every link of every replica.
    HealAll,
    /// Put a link fault on every link of `replica`.
    Links {
        replica: ReplicaId,
        link: LinkFault,
    },
    /// Give `replica`'s links back the spec's network settings.
    RestoreLinks {
        replica: ReplicaId,
    },
    Pause {
        replica: ReplicaId,
    },
    Resume {
        replica: ReplicaId,
    },
    Crash {
        replica: ReplicaId,
    },
    Restart {
        replica: ReplicaId,
    },
}

/// The faults' actions in time order, each at ms after the workload starts,
/// in a cluster of `replicas`. Windows still open at `end_ms` close then, so
/// the trial ends fault-free.
pub fn timeline(faults: &[FaultSpec], replicas: usize, end_ms: f64) -> Vec<(f64, Action)> {
    let mut actions = Vec::new();
    for fault in faults.iter().filter(|fault| fault.is_active() && fault.at_ms < end_ms) {
        let (at, replica) = (fault.at_ms, fault.replica);
        let until = (at + fault.duration_ms).min(end_ms);
        match fault.kind {
            FaultKind::Step => actions.push((at, Action::Step { replica, step_ms: fault.step_ms })),
            FaultKind::Strobe | FaultKind::Wobble | FaultKind::Jitter | FaultKind::Leap => {
                let (name, update) = fault.clock_update(until - at);
                actions.push((at, Action::Clock { replica, fault: name, update: Box::new(update) }));
            }
            FaultKind::Cut => {
                actions.push((at, Action::Cut { replica, direction: fault.cut }));
                actions.push((until, Action::Heal { replica }));
            }
            FaultKind::Partition => {
                let groups = fault.partition_groups(replicas);
                let links = partition_links(&groups, replicas, fault.one_way);
                actions.push((at, Action::Partition { groups, links }));
                actions.push((until, Action::HealAll));
            }
            FaultKind::Link => {
                actions.push((at, Action::Links { replica, link: fault.link.unwrap_or_default() }));
                actions.push((until, Action::RestoreLinks { replica }));
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
    for (at_ms, action) in timeline(faults, cluster.ids().count(), end_ms) {
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
            Action::Clock { replica, fault, update } => {
                cluster.set_clock(replica, &update).await?;
                records.push(FaultRecord::now(plan, replica, fault, &update));
            }
            Action::Partition { groups, links } => {
                for (replica, peer, cut) in links {
                    let update = LinkUpdate::cut(peer, cut);
                    cluster.set_link(replica, &update).await?;
                    records.push(FaultRecord::now(
                        plan,
                        replica,
                        "partition",
                        &partition_settings(&update, &groups),
                    ));
                }
            }
            Action::HealAll => {
                for replica in cluster.ids() {
                    for peer in cluster.ids().filter(|&peer| peer != replica) {
                        let update = LinkUpdate::cut(peer, Cut::None);
                        cluster.set_link(replica, &update).await?;
                        records.push(FaultRecord::now(plan, replica, "heal", &update));
                    }
                }
            }
            Action::Links { replica, link } => {
                for peer in cluster.ids().filter(|&peer| peer != replica) {
                    let update = link.update(peer);
                    cluster.set_link(replica, &update).await?;
                    records.push(FaultRecord::now(plan, replica, "link", &update));
                }
            }
            Action::RestoreLinks { replica } => {
                for peer in cluster.ids().filter(|&peer| peer != replica) {
                    let update = (restore.links)(peer).unwrap_or_else(|| LinkFault::default().update(peer));
                    cluster.set_link(replica, &update).await?;
                    records.push(FaultRecord::now(plan, replica, "restore", &update));
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

impl FaultSpec {
    /// A clock fault's record name and the update it sends, lasting `for_ms`.
    pub fn clock_update(&self, for_ms: f64) -> (&'static str, ClockUpdate) {
        let none = ClockUpdate::default();
        match self.kind {
            FaultKind::Strobe => (
                "strobe",
                ClockUpdate {
                    strobe_ms: Some(self.step_ms),
                    strobe_period_ms: Some(self.period_ms),
                    strobe_for_ms: Some(for_ms),
                    ..none
                },
            ),
            FaultKind::Wobble => (
                "wobble",
                ClockUpdate {
                    wobble_ms: Some(self.step_ms.abs()),
                    wobble_period_ms: Some(self.period_ms),
                    wobble_for_ms: Some(for_ms),
                    ..none
                },
            ),
            FaultKind::Jitter => (
                "jitter",
                ClockUpdate { jitter_ms: Some(self.step_ms.abs()), jitter_for_ms: Some(for_ms), ..none },
            ),
            FaultKind::Leap => {
                let mode = self.leap.unwrap_or(LeapMode::Step);
                let smear = (mode == LeapMode::Smear).then_some(self.duration_ms);
                // A smear is centred on the leap, so it starts half a window early.
                let after = smear.map(|window| window / 2.0);
                ("leap", ClockUpdate { leap: Some(mode), leap_smear_ms: smear, leap_after_ms: after, ..none })
            }
            _ => ("clock", none),
        }
    }
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// A partition's fault record: the link it cut, and the groups it made.
pub fn partition_settings(update: &LinkUpdate, groups: &[Vec<ReplicaId>]) -> Value {
    let mut settings = serde_json::to_value(update).unwrap_or_default();
    if let Value::Object(fields) = &mut settings {
        fields.insert("groups".into(), serde_json::json!(groups));
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, at_ms: f64) -> FaultSpec {
        FaultSpec { step_ms: -500.0, duration_ms: 300.0, ..FaultSpec::new(kind, at_ms, 1) }
    }

    fn kinds(actions: &[(f64, Action)]) -> Vec<(f64, &'static str)> {
        actions
            .iter()
            .map(|(at, action)| {
                let name = match action {
                    Action::Step { .. } => "step",
                    Action::Clock { fault, .. } => fault,
                    Action::Cut { .. } => "cut",
                    Action::Heal { .. } => "heal",
                    Action::Partition { .. } => "partition",
                    Action::HealAll => "heal all",
                    Action::Links { .. } => "link",
                    Action::RestoreLinks { .. } => "restore",
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
        let actions = timeline(&faults, 3, 1000.0);
        assert_eq!(
            kinds(&actions),
            vec![(50.0, "step"), (100.0, "cut"), (400.0, "heal"), (900.0, "pause"), (1000.0, "resume")]
        );
    }

    #[test]
    fn a_repeated_crash_restarts_every_time_and_zero_sized_faults_do_nothing() {
        let crash = FaultSpec { every_ms: 400.0, ..fault(FaultKind::Crash, 100.0) };
        let no_pause = FaultSpec { duration_ms: 0.0, ..fault(FaultKind::Pause, 10.0) };
        let actions = timeline(&[crash, no_pause], 3, 1000.0);
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
    fn jepsens_shapes_are_groups_and_a_partition_cuts_the_links_between_them() {
        assert_eq!(PartitionShape::Halves.groups(5, 1), [vec![1, 2], vec![3, 4, 5]]);
        assert_eq!(PartitionShape::Isolate.groups(4, 2), [vec![2], vec![1, 3, 4]]);
        assert_eq!(PartitionShape::Ring.groups(5, 1), [[1, 2], [2, 3], [3, 4], [4, 5], [5, 1]]);
        assert_eq!(PartitionShape::Bridge.groups(5, 1), [vec![1, 2, 3], vec![3, 4, 5]]);
        let cut = |groups: &[Vec<ReplicaId>], one_way| {
            let mut pairs: Vec<(ReplicaId, ReplicaId, Cut)> = partition_links(groups, 5, one_way);
            pairs.sort_by_key(|&(a, b, _)| (a, b));
            pairs
        };
        // Halves: every link across, both ways; none within.
        let halves = cut(&PartitionShape::Halves.groups(5, 1), false);
        assert_eq!(halves.len(), 2 * 2 * 3);
        assert!(halves.iter().all(|&(a, b, cut)| (a <= 2) != (b <= 2) && cut == Cut::Both));
        // Ring: each replica keeps its two neighbours and loses the other two.
        let ring = cut(&PartitionShape::Ring.groups(5, 1), false);
        assert_eq!(ring.iter().filter(|&&(a, _, _)| a == 1).map(|&(_, b, _)| b).collect::<Vec<_>>(), [3, 4]);
        // Bridge: only the two outer pairs are cut from each other; 3 hears all.
        let bridge = cut(&PartitionShape::Bridge.groups(5, 1), false);
        assert!(bridge.iter().all(|&(a, b, _)| a != 3 && b != 3));
        assert_eq!(bridge.len(), 8);
        // One way: the first group hears nothing, the rest still hear it.
        let deaf = cut(&[vec![1], vec![2, 3, 4, 5]], true);
        assert!(deaf.iter().filter(|&&(a, _, _)| a == 1).all(|&(_, _, cut)| cut == Cut::In));
        assert!(deaf.iter().filter(|&&(_, b, _)| b == 1).all(|&(_, _, cut)| cut == Cut::Out));
    }

    #[test]
    fn a_partition_heals_every_link_when_it_ends() {
        let partition =
            FaultSpec { shape: Some(PartitionShape::Halves), ..fault(FaultKind::Partition, 100.0) };
        let actions = timeline(&[partition], 5, 1000.0);
        assert_eq!(kinds(&actions), vec![(100.0, "partition"), (400.0, "heal all")]);
        let Action::Partition { groups, links } = &actions[0].1 else { panic!("a partition") };
        assert_eq!(groups, &[vec![1, 2], vec![3, 4, 5]]);
        assert_eq!(links.len(), 12);
    }

    #[test]
    fn a_partition_needs_groups_or_a_shape_of_real_replicas() {
        let partition = fault(FaultKind::Partition, 0.0);
        assert!(partition.check(5).unwrap_err().contains("either groups or a shape"));
        let ghost = FaultSpec { groups: vec![vec![1], vec![6]], ..partition.clone() };
        assert!(ghost.check(5).unwrap_err().contains("member 6"));
        let both =
            FaultSpec { groups: vec![vec![1]], shape: Some(PartitionShape::Ring), ..partition.clone() };
        assert!(both.check(5).is_err());
        let stray = FaultSpec { one_way: true, ..fault(FaultKind::Pause, 0.0) };
        assert!(stray.check(5).unwrap_err().contains("belong to a partition"));
        assert!(FaultSpec { shape: Some(PartitionShape::Ring), ..partition }.check(5).is_ok());
    }

    #[test]
    fn clock_faults_that_end_on_their_own_are_one_clock_update_each() {
        let wobble = FaultSpec { step_ms: 80.0, period_ms: 200.0, ..fault(FaultKind::Wobble, 100.0) };
        let jitter = FaultSpec { step_ms: 5.0, ..fault(FaultKind::Jitter, 100.0) };
        let smear =
            FaultSpec { leap: Some(LeapMode::Smear), duration_ms: 4000.0, ..fault(FaultKind::Leap, 100.0) };
        for (spec, name) in [(&wobble, "wobble"), (&jitter, "jitter"), (&smear, "leap")] {
            spec.check(3).unwrap_or_else(|problem| panic!("{name}: {problem}"));
            let actions = timeline(std::slice::from_ref(spec), 3, 1000.0);
            assert_eq!(kinds(&actions), vec![(100.0, name)]);
            let Action::Clock { update, .. } = &actions[0].1 else { panic!("a clock update") };
            update.validate().unwrap_or_else(|error| panic!("{name}: {error}"));
        }
        let Action::Clock { update, .. } = &timeline(&[smear], 3, 1000.0)[0].1 else { unreachable!() };
        assert_eq!(
            (update.leap_smear_ms, update.leap_after_ms),
            (Some(4000.0), Some(2000.0)),
            "centred on its window"
        );
        // What each needs, and what only it may have.
        assert!(FaultSpec { period_ms: 0.0, ..wobble }.check(3).is_err());
        assert!(fault(FaultKind::Leap, 0.0).check(3).unwrap_err().contains("step"));
        let timeless =
            FaultSpec { leap: Some(LeapMode::Smear), duration_ms: 0.0, ..fault(FaultKind::Leap, 0.0) };
        assert!(timeless.check(3).is_err());
        assert!(FaultSpec { leap: Some(LeapMode::Step), ..fault(FaultKind::Pause, 0.0) }.check(3).is_err());
    }

    #[test]
    fn a_fault_on_a_missing_replica_is_refused() {
        let far = FaultSpec { replica: 4, ..fault(FaultKind::Pause, 0.0) };
        assert!(far.check(3).unwrap_err().contains("replica 4"));
        let fast = FaultSpec { every_ms: 50.0, ..fault(FaultKind::Crash, 0.0) };
        assert!(fast.check(3).is_err());
    }
}
