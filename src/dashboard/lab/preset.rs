//! Presets: known stories, played on the live cluster one step at a time.
//!
//! Setting up DDIA Figure 8-3 by hand in the lab takes six clicks in the
//! right order; a preset does it in one per step, with a line for the
//! teacher to say at each. A preset is a TOML file in
//! `experiments/presets/`: a title, a summary, a cluster size, and
//! `[[step]]`s, each an `action` (below) and a `say`. The page plays the
//! steps in order, by hand or on its own with a pause between them
//! ([`PAUSE_BETWEEN_STEPS`]) that the teacher can stop at any step.
//!
//! Unlike the step-through's scenarios, which replay exact milliseconds on
//! replica cores, a preset runs on real processes at a class's pace: a
//! minute may pass between two steps while the teacher talks. So the clock
//! faults in the presets are large (a clock a minute fast), the story's
//! order does not rest on how fast anyone clicks, and a write step waits
//! until the replicas it names have the write ([`PresetAction::Write`]'s
//! `reaches`), so the next step reads it there. The last step of each
//! preset waits until the live oracle has judged every write
//! ([`PresetAction::Settle`]): the drops the page then shows are the
//! oracle's verdict, with their causes, not a prediction.

use std::time::{Duration, Instant};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use std::collections::BTreeMap;

use super::verdict::{Claim, LeaseClaim, check_claims, check_lease_claims, check_lease_story, check_story};
use super::{Lab, LinkRequest, WorkloadRequest, WriteRequest, lock};
use crate::builtin::Folder;
use crate::clock::dots::ReplicaId;
use crate::clock::update::ClockUpdate;
use crate::dashboard::DashboardError;

/// How long the page waits between steps when it plays a preset on its own.
pub const PAUSE_BETWEEN_STEPS: Duration = Duration::from_secs(4);
/// How long a write may take to reach the replicas its step names.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the live oracle may take to judge every write.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest `wait` step, in ms.
pub const MAX_WAIT_MS: f64 = 60_000.0;
/// How often a step that waits looks again.
const POLL: Duration = Duration::from_millis(25);

/// A preset file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub title: String,
    pub summary: String,
    /// The cluster its `start` step starts.
    pub replicas: usize,
    #[serde(rename = "step")]
    pub steps: Vec<PresetStep>,
}

/// One step: what to do, and what to say.
#[derive(Debug, Clone, Serialize)]
pub struct PresetStep {
    pub say: String,
    #[serde(flatten)]
    pub action: PresetAction,
}

/// What a step does to the live cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum PresetAction {
    /// Stops any lab cluster and starts a fresh one of the preset's size.
    Start,
    /// Changes a replica's clock, as `PUT /api/lab/replicas/{id}/clock`.
    Clock {
        replica: ReplicaId,
        clock: Box<ClockUpdate>,
    },
    /// Cuts the link between `a` and `b`, both ways.
    Cut {
        a: ReplicaId,
        b: ReplicaId,
    },
    /// Cuts `replica` off from every other replica.
    Isolate {
        replica: ReplicaId,
    },
    /// Heals every link.
    HealAll,
    Pause {
        replica: ReplicaId,
    },
    Resume {
        replica: ReplicaId,
    },
    /// One read-modify-write of `key` on `replica`, then a wait until the
    /// replicas in `reaches` have it.
    Write {
        replica: ReplicaId,
        key: String,
        #[serde(default)]
        reaches: Vec<ReplicaId>,
    },
    /// The background workload at `rate` operations per second (absent:
    /// off), its choices drawn from `seed`.
    Workload {
        #[serde(default)]
        rate: Option<f64>,
        #[serde(default)]
        seed: Option<u64>,
    },
    /// Lets `ms` of real time pass.
    Wait {
        ms: f64,
    },
    /// Starts the lab's two lease workers (`monotonic` and `fenced`).
    Lease,
    /// Stops lease worker `worker` (SIGSTOP) once it has checked its lease
    /// and is working towards its write: Figure 8-4's pause.
    PauseWorker {
        worker: u32,
    },
    /// Continues lease worker `worker` (SIGCONT).
    ResumeWorker {
        worker: u32,
    },
    /// Checks what the story says of each guard against the lease oracle.
    LeaseVerdict {
        verdict: BTreeMap<crate::lease::Guard, LeaseClaim>,
    },
    /// Waits until the live oracle has judged every write so far; then
    /// checks what the story says of each strategy (`verdict`) against it.
    Settle {
        #[serde(default)]
        verdict: BTreeMap<String, Claim>,
    },
}

impl<'de> Deserialize<'de> for PresetStep {
    /// `say` beside the action's own fields, each refused if unknown.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(deserializer)?;
        let say = match table.remove("say") {
            Some(toml::Value::String(say)) => say,
            Some(_) => return Err(D::Error::custom("`say` is text")),
            None => return Err(D::Error::missing_field("say")),
        };
        let action = PresetAction::deserialize(toml::Value::Table(table)).map_err(D::Error::custom)?;
        Ok(Self { say, action })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("no preset {0:?} (presets: {1})")]
    Unknown(String, String),
    #[error("{0}")]
    Read(String),
    #[error("{0}: {1}")]
    Invalid(String, String),
}

impl From<PresetError> for DashboardError {
    fn from(error: PresetError) -> Self {
        match error {
            PresetError::Unknown(..) => Self::NotFound(error.to_string()),
            _ => Self::Internal(error.to_string()),
        }
    }
}

/// Every preset in `folder`, by name, in name order; files that do not load
/// are left out (and named in the log).
pub fn list(folder: &Folder) -> Vec<(String, Preset)> {
    let mut presets = Vec::new();
    for name in folder.toml_stems() {
        match load(folder, &name) {
            Ok(preset) => presets.push((name, preset)),
            Err(error) => tracing::warn!(%error, "preset left out"),
        }
    }
    presets
}

/// Loads and checks preset `name` (the file `NAME.toml`) from `folder`.
pub fn load(folder: &Folder, name: &str) -> Result<Preset, PresetError> {
    let file = format!("{name}.toml");
    if !folder.has(&file) {
        return Err(PresetError::Unknown(name.to_string(), folder.toml_stems().join(", ")));
    }
    let invalid = |problem: String| PresetError::Invalid(folder.describe_file(&file), problem);
    let text = folder.read_to_string(&file).map_err(PresetError::Read)?;
    let preset: Preset = toml::from_str(&text).map_err(|error| invalid(error.to_string()))?;
    preset.check().map_err(invalid)?;
    Ok(preset)
}

impl Preset {
    /// What parsing cannot check: sizes, replica numbers, the first step.
    fn check(&self) -> Result<(), String> {
        if !(super::MIN_REPLICAS..=super::MAX_REPLICAS).contains(&self.replicas) {
            return Err(format!(
                "a lab has {} to {} replicas, not {}",
                super::MIN_REPLICAS,
                super::MAX_REPLICAS,
                self.replicas
            ));
        }
        if self.steps.first().is_none_or(|step| step.action != PresetAction::Start) {
            return Err(
                "the first step is `start`, so that every telling begins from the same cluster".into()
            );
        }
        let replica = |id: ReplicaId| (1..=self.replicas as ReplicaId).contains(&id);
        for (index, step) in self.steps.iter().enumerate() {
            let fail = |problem: String| format!("step {}: {problem}", index + 1);
            let named: Vec<ReplicaId> = match &step.action {
                PresetAction::Clock { replica, clock } => {
                    clock.validate().map_err(|error| fail(error.to_string()))?;
                    vec![*replica]
                }
                PresetAction::Cut { a, b } => vec![*a, *b],
                PresetAction::Isolate { replica } | PresetAction::Pause { replica } => vec![*replica],
                PresetAction::Resume { replica } => vec![*replica],
                PresetAction::Write { replica, reaches, .. } => {
                    [*replica].into_iter().chain(reaches.clone()).collect()
                }
                PresetAction::Wait { ms } if !(0.0..=MAX_WAIT_MS).contains(ms) => {
                    return Err(fail(format!("a wait is 0 to {MAX_WAIT_MS} ms, not {ms}")));
                }
                PresetAction::Start if index > 0 => {
                    return Err(fail("only the first step starts the cluster".into()));
                }
                _ => Vec::new(),
            };
            if let Some(bad) = named.into_iter().find(|&id| !replica(id)) {
                return Err(fail(format!("no replica {bad}; replicas are 1 to {}", self.replicas)));
            }
            if let PresetAction::Settle { verdict } = &step.action {
                check_story(&step.say, verdict).map_err(fail)?;
            }
            if let PresetAction::LeaseVerdict { verdict } = &step.action {
                check_lease_story(&step.say, verdict).map_err(fail)?;
            }
            if let PresetAction::PauseWorker { worker } | PresetAction::ResumeWorker { worker } = &step.action
                && !(1..=2).contains(worker)
            {
                return Err(fail(format!("the lab's lease workers are 1 and 2, not {worker}")));
            }
        }
        Ok(())
    }
}

impl Lab {
    /// Plays one step of a preset on the live cluster; returns when the step
    /// has done what it says (a write has reached where it names, the
    /// oracle has judged).
    pub async fn play(&self, preset: &Preset, step: &PresetStep) -> Result<(), DashboardError> {
        match &step.action {
            PresetAction::Start => {
                self.stop().await;
                self.start(super::StartRequest { replicas: preset.replicas }).await?;
            }
            PresetAction::Clock { replica, clock } => {
                self.set_clock(*replica, (**clock).clone()).await?;
            }
            PresetAction::Cut { a, b } => {
                self.set_link(LinkRequest::cut(*a, *b, true)).await?;
            }
            PresetAction::Isolate { replica } => {
                for other in (1..=preset.replicas as ReplicaId).filter(|other| other != replica) {
                    self.set_link(LinkRequest::cut(*replica, other, true)).await?;
                }
            }
            PresetAction::HealAll => {
                for (a, b) in self.view().cuts {
                    self.set_link(LinkRequest::cut(a, b, false)).await?;
                }
            }
            PresetAction::Pause { replica } => {
                self.set_paused(*replica, true).await?;
            }
            PresetAction::Resume { replica } => {
                self.set_paused(*replica, false).await?;
            }
            PresetAction::Write { replica, key, reaches } => {
                let writes = self.write(WriteRequest { replica: *replica, key: key.clone() }).await?;
                // The operation's writes, one per bucket, are numbered in
                // order at the origin: the last number covers them all.
                let through =
                    writes.iter().filter_map(|write| Some(write.write_id?.seq)).max().ok_or_else(|| {
                        DashboardError::Conflict(format!("replica {replica} took none of the writes"))
                    })?;
                for &to in reaches {
                    self.wait_until_has(to, *replica, through).await?;
                }
            }
            PresetAction::Workload { rate, seed } => {
                self.set_workload(WorkloadRequest { rate: *rate, seed: *seed }).await?;
            }
            PresetAction::Wait { ms } => tokio::time::sleep(Duration::from_secs_f64(ms / 1e3)).await,
            PresetAction::Lease => {
                self.start_lease().await?;
            }
            PresetAction::PauseWorker { worker } => {
                self.pause_worker_mid_round(*worker).await?;
            }
            PresetAction::ResumeWorker { worker } => {
                self.set_worker_paused(*worker, false).await?;
            }
            PresetAction::LeaseVerdict { verdict } => {
                let found = self.refresh_lease().await?;
                lock(&self.view).story_check = check_lease_claims(verdict, &found.guards);
            }
            PresetAction::Settle { verdict } => {
                self.wait_until_judged().await?;
                let mut view = lock(&self.view);
                view.story_check = check_claims(verdict, &view.drops);
            }
        }
        Ok(())
    }

    /// Waits until replica `to` has every write of `origin` up to `through`.
    async fn wait_until_has(
        &self,
        to: ReplicaId,
        origin: ReplicaId,
        through: u64,
    ) -> Result<(), DashboardError> {
        let admin = self.admin().await?;
        let deadline = Instant::now() + REACH_TIMEOUT;
        loop {
            let status = admin.status(to).await?;
            if status.high_water.get(&origin).is_some_and(|&have| have >= through) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(DashboardError::Conflict(format!(
                    "replica {to} did not get replica {origin}'s write within {} s (is a link cut, or a replica paused?)",
                    REACH_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the live oracle's totals count every acknowledged write
    /// made so far and no key is left to judge.
    async fn wait_until_judged(&self) -> Result<(), DashboardError> {
        let acked = self.acknowledged().await?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let counts = self.view().counts;
            let judged: usize = counts.strategies.values().map(|totals| totals.acked).sum();
            if judged >= acked && counts.unsettled == 0 && counts.waiting.is_none() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let why = counts
                    .waiting
                    .unwrap_or_else(|| format!("{} keys are still unsettled", counts.unsettled));
                return Err(DashboardError::Conflict(format!(
                    "the oracle could not judge every write within {} s: {why}",
                    SETTLE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Preset, String> {
        let preset: Preset = toml::from_str(text).map_err(|error| error.to_string())?;
        preset.check()?;
        Ok(preset)
    }

    const HEAD: &str =
        "title = \"t\"\nsummary = \"s\"\nreplicas = 3\n[[step]]\naction = \"start\"\nsay = \"go\"\n";

    #[test]
    fn every_shipped_preset_loads_and_starts_its_cluster() {
        let folder =
            Folder::presets(Some(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/experiments"))));
        let presets = list(&folder);
        let names: Vec<&str> = presets.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            ["concurrent-writes", "figure-8-3", "lease-pause", "ntp-step-back", "partition-and-heal"]
        );
        for name in names {
            let preset = load(&folder, name).unwrap_or_else(|error| panic!("{error}"));
            assert!(preset.steps.iter().all(|step| !step.say.trim().is_empty()), "{name}: a line per step");
            assert!(
                matches!(
                    preset.steps.last().map(|step| &step.action),
                    Some(PresetAction::Settle { verdict }) if !verdict.is_empty()
                ) || matches!(
                    preset.steps.last().map(|step| &step.action),
                    Some(PresetAction::LeaseVerdict { verdict }) if !verdict.is_empty()
                ),
                "{name}: ends by settling, or judging its leases, with a verdict"
            );
        }
        assert!(matches!(load(&folder, "../figure-8-3"), Err(PresetError::Unknown(..))));
    }

    #[test]
    fn a_step_is_read_with_its_line_and_its_own_fields() {
        let preset = parse(&format!(
            "{HEAD}[[step]]\naction = \"write\"\nreplica = 1\nkey = \"x\"\nreaches = [2]\nsay = \"w\"\n"
        ))
        .unwrap();
        assert_eq!(
            preset.steps[1].action,
            PresetAction::Write { replica: 1, key: "x".into(), reaches: vec![2] }
        );
        assert_eq!(preset.steps[1].say, "w");
    }

    #[test]
    fn bad_presets_are_refused_with_the_step_and_the_reason() {
        let refused = |extra: &str, expected: &str| {
            let error = parse(&format!("{HEAD}{extra}")).expect_err(extra);
            assert!(error.contains(expected), "{extra}: {error}");
        };
        refused(
            "[[step]]\naction = \"write\"\nreplica = 1\nkey = \"x\"\nreach = [2]\nsay = \"w\"\n",
            "reach",
        );
        refused(
            "[[step]]\naction = \"write\"\nreplica = 4\nkey = \"x\"\nsay = \"w\"\n",
            "step 2: no replica 4",
        );
        refused("[[step]]\naction = \"isolate\"\nreplica = 1\n", "say");
        refused("[[step]]\naction = \"teleport\"\nsay = \"w\"\n", "teleport");
        refused("[[step]]\naction = \"wait\"\nms = -1\nsay = \"w\"\n", "step 2: a wait is");
        refused(
            "[[step]]\naction = \"clock\"\nreplica = 1\nclock = { offset_ms = 1e300 }\nsay = \"w\"\n",
            "offset_ms",
        );
        refused("[[step]]\naction = \"start\"\nsay = \"again\"\n", "only the first step");
        let error = parse(
            "title = \"t\"\nsummary = \"s\"\nreplicas = 3\n[[step]]\naction = \"settle\"\nsay = \"x\"\n",
        )
        .expect_err("no start");
        assert!(error.contains("first step is `start`"), "{error}");
    }
}
