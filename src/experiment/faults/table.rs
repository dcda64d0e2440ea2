//! A `[[fault]]` table as a spec file writes it, and its reading into a
//! [`FaultSpec`].
//!
//! A spec writes each fault as one flat table: its `kind`, when, which
//! replica, and the settings of that kind. The table is read whole, then
//! turned into the one variant its kind names; a setting another kind
//! takes (a `period_ms` on a pause) is refused, naming the kinds it
//! belongs to. A setting at its "nothing" value (a `step_ms` of 0, a `cut`
//! of `"both"`) passes on any kind: specs saved beside older runs name
//! every setting of every fault so, and they must still read.

use serde::{Deserialize, Serialize};

use super::{CutDirection, FaultSpec, LinkFault, PartitionFault, PartitionShape, Split};
use crate::clock::dots::ReplicaId;
use crate::clock::update::LeapMode;
use crate::history::FaultKind;
use crate::lease::WorkerId;

/// A `[[fault]]` table's flat shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultTable {
    kind: FaultKind,
    /// When, in ms after the workload starts.
    at_ms: f64,
    /// The replica it hits (a partition's: the one its shape is drawn around).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replica: Option<ReplicaId>,
    /// `pause`, `step`: the lease worker it hits, instead of a replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    worker: Option<WorkerId>,
    /// `step`, `strobe`, `wobble`, `jitter`: how far, ms.
    #[serde(default, skip_serializing_if = "is_zero")]
    step_ms: f64,
    /// `strobe`, `wobble`: how often, ms.
    #[serde(default, skip_serializing_if = "is_zero")]
    period_ms: f64,
    /// How long the fault lasts, ms.
    #[serde(default, skip_serializing_if = "is_zero")]
    duration_ms: f64,
    /// `cut`: which directions, as seen from `replica`.
    #[serde(default, skip_serializing_if = "is_both")]
    cut: CutDirection,
    /// `crash`: again every this many ms; 0: once.
    #[serde(default, skip_serializing_if = "is_zero")]
    every_ms: f64,
    /// `partition`: the groups that still hear each other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<Vec<ReplicaId>>,
    /// `leap`: stepped or smeared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leap: Option<LeapMode>,
    /// `partition`: a named shape instead of `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shape: Option<PartitionShape>,
    /// `partition`: cut only the links toward the first group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    one_way: bool,
    /// `link`: what the replica sends suffers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<LinkFault>,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

fn is_both(cut: &CutDirection) -> bool {
    *cut == CutDirection::Both
}

impl FaultTable {
    /// The settings this table gives a value other than "nothing", with
    /// the kinds each belongs to.
    fn settings_given(&self) -> Vec<(&'static str, &'static [FaultKind])> {
        use FaultKind::*;
        let given = [
            ("step_ms", self.step_ms != 0.0, &[Step, Strobe, Wobble, Jitter][..]),
            ("period_ms", self.period_ms != 0.0, &[Strobe, Wobble][..]),
            (
                "duration_ms",
                self.duration_ms != 0.0,
                &[Strobe, Wobble, Jitter, Leap, Cut, Partition, Link, Pause][..],
            ),
            ("cut", self.cut != CutDirection::Both, &[Cut][..]),
            ("every_ms", self.every_ms != 0.0, &[Crash][..]),
            ("groups", !self.groups.is_empty(), &[Partition][..]),
            ("leap", self.leap.is_some(), &[Leap][..]),
            ("shape", self.shape.is_some(), &[Partition][..]),
            ("one_way", self.one_way, &[Partition][..]),
            ("link", self.link.is_some(), &[Link][..]),
        ];
        given.into_iter().filter(|(_, given, _)| *given).map(|(name, _, kinds)| (name, kinds)).collect()
    }
}

impl TryFrom<FaultTable> for FaultSpec {
    type Error = String;

    fn try_from(table: FaultTable) -> Result<Self, String> {
        let kind = table.kind;
        for (setting, kinds) in table.settings_given() {
            if !kinds.contains(&kind) {
                let names: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
                return Err(format!("a {kind} takes no `{setting}` (it belongs to: {})", names.join(", ")));
            }
        }
        let at_ms = table.at_ms;
        let FaultTable { step_ms, duration_ms, .. } = table;
        match (kind, table.worker, table.replica) {
            (_, None, _) => {}
            (FaultKind::Pause, Some(worker), None) => {
                return Ok(FaultSpec::PauseWorker { at_ms, worker, duration_ms });
            }
            (FaultKind::Step, Some(worker), None) => {
                return Ok(FaultSpec::StepWorker { at_ms, worker, step_ms });
            }
            (FaultKind::Pause | FaultKind::Step, Some(_), Some(_)) => {
                return Err(format!("a {kind} hits a `replica` or a `worker`, not both"));
            }
            (_, Some(_), _) => {
                return Err(format!("a {kind} takes no `worker` (only a pause and a step do)"));
            }
        }
        // Every kind but a partition hits one replica.
        let replica = match (kind, table.replica) {
            (FaultKind::Partition, _) => 0,
            (_, Some(replica)) => replica,
            (_, None) => return Err(format!("a {kind} names the `replica` it hits")),
        };
        let FaultTable { step_ms, period_ms, duration_ms, every_ms, cut, .. } = table;
        Ok(match kind {
            FaultKind::Step => FaultSpec::Step { at_ms, replica, step_ms },
            FaultKind::Strobe => FaultSpec::Strobe { at_ms, replica, step_ms, period_ms, duration_ms },
            FaultKind::Wobble => FaultSpec::Wobble { at_ms, replica, step_ms, period_ms, duration_ms },
            FaultKind::Jitter => FaultSpec::Jitter { at_ms, replica, step_ms, duration_ms },
            FaultKind::Leap => {
                let leap = table.leap.ok_or("a leap says leap = \"step\" or \"smear\"")?;
                FaultSpec::Leap { at_ms, replica, leap, duration_ms }
            }
            FaultKind::Cut => FaultSpec::Cut { at_ms, replica, cut, duration_ms },
            FaultKind::Partition => {
                let split = Split::new(table.groups, table.shape, table.replica)?;
                FaultSpec::Partition(PartitionFault { at_ms, split, one_way: table.one_way, duration_ms })
            }
            FaultKind::Link => {
                let link = table.link.ok_or("a link fault says what it does: [fault.link]")?;
                FaultSpec::Link { at_ms, replica, link, duration_ms }
            }
            FaultKind::Pause => FaultSpec::Pause { at_ms, replica, duration_ms },
            FaultKind::Crash => FaultSpec::Crash { at_ms, replica, every_ms },
        })
    }
}

impl From<FaultSpec> for FaultTable {
    fn from(fault: FaultSpec) -> Self {
        let mut table = FaultTable {
            kind: fault.kind(),
            at_ms: fault.at_ms(),
            replica: fault.replica(),
            worker: fault.worker(),
            step_ms: 0.0,
            period_ms: 0.0,
            duration_ms: fault.duration_ms(),
            cut: CutDirection::Both,
            every_ms: 0.0,
            groups: Vec::new(),
            leap: None,
            shape: None,
            one_way: false,
            link: None,
        };
        match fault {
            FaultSpec::Step { step_ms, .. }
            | FaultSpec::StepWorker { step_ms, .. }
            | FaultSpec::Jitter { step_ms, .. } => table.step_ms = step_ms,
            FaultSpec::Strobe { step_ms, period_ms, .. } | FaultSpec::Wobble { step_ms, period_ms, .. } => {
                (table.step_ms, table.period_ms) = (step_ms, period_ms);
            }
            FaultSpec::Leap { leap, .. } => table.leap = Some(leap),
            FaultSpec::Cut { cut, .. } => table.cut = cut,
            FaultSpec::Partition(partition) => {
                table.one_way = partition.one_way;
                match partition.split {
                    Split::Groups(groups) => table.groups = groups,
                    Split::Shape { shape, .. } => table.shape = Some(shape),
                }
            }
            FaultSpec::Link { link, .. } => table.link = Some(link),
            FaultSpec::Crash { every_ms, .. } => table.every_ms = every_ms,
            FaultSpec::Pause { .. } | FaultSpec::PauseWorker { .. } => {}
        }
        table
    }
}
