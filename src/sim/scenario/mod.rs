//! Scripted scenarios, played step by step in the simulator.
//!
//! A scenario is a short story in a TOML file under `experiments/scenarios/`:
//! replicas with fixed clock offsets, then steps at given true times, each a
//! write, a read-modify-write increment, a replication from one replica to
//! another, or a clock change ([`step`]), each with a sentence for the
//! teacher to say. `figure-8-3.toml` is DDIA Figure 8-3: node 1's clock is
//! a few milliseconds ahead of node 3's, client B increments on node 3 the
//! value client A wrote on node 1, and last-write-wins on wall clocks keeps
//! A's value because B's increment got the *smaller* timestamp.
//!
//! The scenario is played in the simulator, in a world its script drives
//! ([`ScriptedWorld`]): the same [`ReplicaCore`](crate::replica::core::ReplicaCore)s
//! and peer tasks as a simulated trial, with a hand-wound true time and
//! machinery that takes no time, so every step happens at the instant it
//! names, every timestamp is exact and every run is the same. Every step is
//! applied to every bucket (one per strategy), and after each step the
//! trace records each replica's state per strategy, its clock readings, and
//! which acknowledged writes are lost so far. What is lost is the oracle's
//! word, not the player's: the story so far is written down as a history
//! ([`history`]) and judged as an experiment's is. The dashboard draws the
//! trace as a space-time (Lamport) diagram, one lane per replica, so the
//! class can watch the increment disappear; [`transcript`] writes it as
//! the golden scripts the tests compare.

mod history;
mod player;
pub mod stage;
pub mod step;
pub mod transcript;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::player::Player;
pub use self::stage::{Cores, Stage};
pub use self::step::{Action, ActionKind, Step};
use crate::builtin::Folder;
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::hlc::HlcTimestamp;
use crate::replica::core::Sibling;
use crate::sim::script::ScriptedWorld;
use crate::strategy;
use crate::strategy::plugin::{Lineup, PluginSpec};
use crate::write_id::{WriteId, WriteIds};

/// True time at a scenario's 0 ms: 42 s past some minute, as in Figure 8-3.
pub const START_NS: Nanos = 1_700_000_022_000_000_000;
/// The most replicas and steps a scenario may have.
pub const MAX_REPLICAS: usize = 8;
pub const MAX_STEPS: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("no scenario {0:?} (scenarios: {1})")]
    Unknown(String, String),
    #[error("cannot read {0}")]
    Read(String),
    #[error("{0}: {1}")]
    Invalid(String, String),
}

/// A scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub title: String,
    /// What the scenario shows, in a sentence or two.
    pub summary: String,
    pub replicas: usize,
    /// Each replica's clock offset from true time at the start, in ms
    /// (positive: ahead); missing ones are exact.
    #[serde(default)]
    pub clock_offsets_ms: Vec<f64>,
    /// The strategies to play, by name (built-ins, or described plugins);
    /// missing: every built-in and plugin that can play the story. Only a
    /// story that names `truetime` plays it: its commit waits move true
    /// time on, so each step must come after the one before has finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strategies: Vec<String>,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

/// A write a step made on one bucket.
#[derive(Debug, Clone, Serialize)]
pub struct TraceWrite {
    pub bucket: String,
    pub write_id: WriteId,
    pub stamp: Value,
    pub value: Value,
    /// For an increment: the writes its read returned.
    pub read: Vec<WriteIds>,
}

/// A replica's clocks after a step.
#[derive(Debug, Clone, Serialize)]
pub struct TraceClock {
    pub replica: ReplicaId,
    /// Physical clock reading, in ms from the scenario's 0.
    pub physical_ms: f64,
    pub offset_ms: f64,
    pub hlc: HlcTimestamp,
}

/// Everything after one step.
#[derive(Debug, Clone, Serialize)]
pub struct TraceStep {
    pub index: usize,
    #[serde(flatten)]
    pub step: Step,
    pub writes: Vec<TraceWrite>,
    /// For `replicate`: the earlier steps whose writes this delivered.
    pub delivered_steps: Vec<usize>,
    pub clocks: Vec<TraceClock>,
    /// Per bucket, per replica, the siblings it holds for the step's key.
    pub state: BTreeMap<String, BTreeMap<ReplicaId, Vec<Sibling>>>,
    /// Per bucket, the acknowledged writes the oracle finds lost so far:
    /// no replica holds them, and no write a replica holds read them
    /// (directly or through other writes), so nothing of them survives.
    pub lost: BTreeMap<String, Vec<WriteId>>,
}

/// A played scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub name: String,
    pub title: String,
    pub summary: String,
    pub replicas: usize,
    pub buckets: Vec<String>,
    /// Seconds past the minute at the story's 0 ms (42, as in Figure 8-3):
    /// clock readings are shown as that plus their `physical_ms`.
    pub start_second: f64,
    pub steps: Vec<TraceStep>,
    /// The whole story as an experiment's history (see [`history`]), for
    /// the oracle to judge.
    #[serde(skip)]
    pub history: Vec<crate::history::Record>,
}

/// The scenarios in `folder` that load: file stem and title.
pub fn list(folder: &Folder) -> Vec<(String, String)> {
    folder
        .toml_stems()
        .into_iter()
        .filter_map(|name| Some((name.clone(), load(folder, &name).ok()?.title)))
        .collect()
}

/// Loads and plays scenario `name` from `folder`.
/// `plugins` (described) play beside the built-ins.
pub fn play_named(folder: &Folder, name: &str, plugins: &[PluginSpec]) -> Result<Trace, ScenarioError> {
    let known = list(folder);
    if !known.iter().any(|(known, _)| known == name) {
        let names: Vec<&str> = known.iter().map(|(name, _)| name.as_str()).collect();
        return Err(ScenarioError::Unknown(name.to_string(), names.join(", ")));
    }
    let scenario = load(folder, name)?;
    play(name, &scenario, plugins)
        .map_err(|error| ScenarioError::Invalid(folder.describe_file(&format!("{name}.toml")), error))
}

/// Loads scenario `name` (the file `NAME.toml`) from `folder`.
pub fn load(folder: &Folder, name: &str) -> Result<Scenario, ScenarioError> {
    let file = format!("{name}.toml");
    let text = folder.read_to_string(&file).map_err(ScenarioError::Read)?;
    toml::from_str(&text)
        .map_err(|error| ScenarioError::Invalid(folder.describe_file(&file), error.to_string()))
}

/// The steps with every `repeat` played out.
fn expand(steps: &[Step]) -> Result<Vec<Step>, String> {
    let mut expanded: Vec<Step> = Vec::new();
    // How much later than written the steps after a repeat come: the time
    // the repeated steps took.
    let mut shift = 0.0;
    for (index, step) in steps.iter().enumerate() {
        let Action::Repeat { steps: count, times } = step.action else {
            expanded.push(Step { at_ms: step.at_ms + shift, ..step.clone() });
            continue;
        };
        let fail = |problem: &str| format!("step {} (repeat): {problem}", index + 1);
        if count == 0 || count > expanded.len() {
            return Err(fail(&format!("`steps` must be 1 to {}, the steps before it", expanded.len())));
        }
        if times.saturating_mul(count).saturating_add(expanded.len()) > MAX_STEPS {
            return Err(fail(&format!("it would make more than {MAX_STEPS} steps")));
        }
        let block: Vec<Step> = expanded[expanded.len() - count..].to_vec();
        for _ in 0..times {
            for original in &block {
                let mut copy = original.clone();
                copy.at_ms = expanded.last().map_or(0.0, |last| last.at_ms) + 1.0;
                expanded.push(copy);
            }
        }
        shift = (expanded.last().map_or(0.0, |last| last.at_ms) - step.at_ms).max(shift);
    }
    Ok(expanded)
}

/// Plays a scenario in a fresh scripted world; an error names the step at fault.
pub fn play(name: &str, scenario: &Scenario, plugins: &[PluginSpec]) -> Result<Trace, String> {
    play_on(name, scenario, plugins, |replicas, lineup| {
        ScriptedWorld::new(START_NS, replicas, lineup.clone()).map_err(|error| error.to_string())
    })
}

/// Plays a scenario on the stage `stage` makes (given the replicas and the
/// strategies), which must start at [`START_NS`] with every clock exact.
pub fn play_on<S: Stage>(
    name: &str,
    scenario: &Scenario,
    plugins: &[PluginSpec],
    stage: impl FnOnce(usize, &Lineup) -> Result<S, String>,
) -> Result<Trace, String> {
    if !(1..=MAX_REPLICAS).contains(&scenario.replicas) || scenario.steps.len() > MAX_STEPS {
        return Err(format!("a scenario has 1 to {MAX_REPLICAS} replicas and at most {MAX_STEPS} steps"));
    }
    let steps = expand(&scenario.steps)?;
    let lineup = Lineup { builtins: strategy::registry(), plugins: plugins.to_vec() };
    let mut world = stage(scenario.replicas, &lineup)?;
    for id in 1..=scenario.replicas as ReplicaId {
        let offset = scenario.clock_offsets_ms.get(id as usize - 1).copied().unwrap_or(0.0);
        let update = crate::clock::update::ClockUpdate { offset_ms: Some(offset), ..Default::default() };
        world.update_clock(id, &update)?;
    }
    // A merging strategy holds sets: it plays only a scenario whose every
    // value is one (no increments, which write numbers).
    let sets_only = steps.iter().all(|step| match &step.action {
        Action::Write { value, .. } => value.is_array(),
        Action::Increment { .. } => false,
        _ => true,
    });
    let described = plugins.iter().filter_map(|plugin| Some((plugin.name.clone()?, plugin.kind?, false)));
    let every: Vec<(String, strategy::Kind, bool)> = lineup
        .builtins
        .iter()
        .map(|strategy| (strategy.name().to_string(), strategy.kind(), strategy.waits_for_clock()))
        .chain(described)
        .collect();
    for named in &scenario.strategies {
        let Some((_, kind, _)) = every.iter().find(|(name, ..)| name == named) else {
            let names: Vec<&str> = every.iter().map(|(name, ..)| name.as_str()).collect();
            return Err(format!("no strategy {named:?} to play (strategies: {})", names.join(", ")));
        };
        if *kind == strategy::Kind::Merge && !sets_only {
            return Err(format!("{named} merges sets: it plays only stories whose every value is a set"));
        }
    }
    // Unless named, a strategy that waits for its clock before it
    // acknowledges (`truetime`) is left out: its waits would move true
    // time on under the other strategies' steps.
    let kinds: BTreeMap<String, strategy::Kind> = every
        .into_iter()
        .filter(|(name, kind, waits_for_clock)| match scenario.strategies.is_empty() {
            true => (sets_only || *kind != strategy::Kind::Merge) && !waits_for_clock,
            false => scenario.strategies.contains(name),
        })
        .map(|(name, kind, _)| (name, kind))
        .collect();
    // In the registry's order, then the plugins'.
    let order = strategy::NAMES
        .iter()
        .map(|name| name.to_string())
        .chain(plugins.iter().filter_map(|p| p.name.clone()));
    let buckets: Vec<String> = order.filter(|name| kinds.contains_key(name)).collect();
    let mut player = Player::new(world, kinds, buckets.clone());
    let mut trace_steps = Vec::new();
    let mut key = String::from("x");
    for (index, step) in steps.iter().enumerate() {
        let fail = |error: String| format!("step {} ({:?}): {error}", index + 1, step.action.kind());
        if !step.at_ms.is_finite() || step.at_ms < 0.0 {
            return Err(fail("at_ms must be a time in ms from the start".into()));
        }
        if let Some(before) = index.checked_sub(1).map(|before| &steps[before])
            && step.at_ms < before.at_ms
        {
            return Err(fail(format!(
                "at_ms {} is earlier than the step before ({} ms): true time only moves forward",
                step.at_ms, before.at_ms
            )));
        }
        let at = START_NS + (step.at_ms * 1e6) as Nanos;
        if at < player.now() {
            let finished_ms = (player.now() - START_NS) as f64 / 1e6;
            return Err(fail(format!(
                "at_ms {} is before the step before finished, at {finished_ms} ms (a commit wait)",
                step.at_ms
            )));
        }
        player.advance_to(at).map_err(fail)?;
        if let Some(step_key) = step.action.key() {
            key = step_key.to_string();
        }
        let (writes, delivered_steps) = player.apply(index, step).map_err(fail)?;
        trace_steps.push(TraceStep {
            index,
            step: step.clone(),
            writes,
            delivered_steps,
            clocks: player.clocks(),
            state: player.state(&key),
            lost: player.lost(),
        });
    }
    Ok(Trace {
        name: name.to_string(),
        title: scenario.title.clone(),
        summary: scenario.summary.clone(),
        replicas: scenario.replicas,
        buckets,
        start_second: (START_NS % 60_000_000_000) as f64 / 1e9,
        steps: trace_steps,
        history: player.history(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str) -> Trace {
        let folder =
            Folder::Disk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/scenarios"));
        play_named(&folder, name, &[]).unwrap_or_else(|error| panic!("{name} plays: {error}"))
    }

    fn figure_8_3() -> Trace {
        scenario("figure-8-3")
    }

    /// Every story ends with its replicas agreeing, and the last step's
    /// losses are the oracle's verdict on the whole history.
    #[test]
    fn every_story_converges_and_ends_on_the_oracles_verdict() {
        let folder =
            Folder::Disk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/scenarios"));
        for (name, _) in list(&folder) {
            let trace = scenario(&name);
            let analysis = crate::analysis::analyze(&trace.history);
            for bucket in &trace.buckets {
                let dropped: Vec<WriteId> = analysis
                    .drops
                    .iter()
                    .filter(|drop| &*drop.bucket == bucket)
                    .filter_map(|drop| drop.victim.write_id.as_ref()?.single())
                    .collect();
                let lost =
                    trace.steps.last().and_then(|last| last.lost.get(bucket)).cloned().unwrap_or_default();
                assert_eq!(dropped, lost, "{name}, {bucket}");
            }
            assert!(analysis.rows.iter().all(|row| row.diverged_keys == 0), "{name}: {:?}", analysis.rows);
        }
    }

    /// Figure 8-3's increment is lost the moment it is acknowledged: node 3
    /// already holds x = 1 with a later wall-clock stamp, so it keeps that,
    /// and the increment is in no replica from its first instant on.
    #[test]
    fn the_increment_is_lost_at_the_step_that_makes_it_and_stays_lost() {
        let trace = figure_8_3();
        let first_lost =
            trace.steps.iter().position(|step| !step.lost["lww-wall"].is_empty()).expect("a loss");
        assert_eq!(trace.steps[first_lost].step.action.kind(), ActionKind::Increment);
        assert!(trace.steps[first_lost..].iter().all(|step| step.lost["lww-wall"] == [WriteId::new(3, 1)]));
    }

    #[test]
    fn to_the_oracle_figure_8_3_is_a_causality_violation_only_on_wall_clocks() {
        let trace = figure_8_3();
        let analysis = crate::analysis::analyze(&trace.history);
        assert_eq!(analysis.drops.len(), 1, "{:?}", analysis.drops);
        let drop = &analysis.drops[0];
        assert_eq!(
            (&*drop.bucket, drop.victim.write_id.clone()),
            ("lww-wall", Some(WriteId::new(3, 1).into()))
        );
        assert_eq!(drop.cause, crate::analysis::Cause::Causality);
        assert!(drop.killers[0].read_by_victim, "the increment had read the write that beat it");
        assert!(drop.rule().contains("Figure 8-3"), "{}", drop.rule());
        for row in &analysis.rows {
            assert_eq!(row.acked, 2, "{}: client A's write and client B's increment", row.strategy);
        }
    }

    #[test]
    fn a_step_earlier_than_the_one_before_is_refused() {
        let text = "title='t'\nsummary='s'\nreplicas=1\n\
            [[step]]\nat_ms=5\naction='write'\nsay='a'\nreplica=1\nkey='x'\nvalue=1\n\
            [[step]]\nat_ms=2\naction='write'\nsay='b'\nreplica=1\nkey='x'\nvalue=2\n";
        let scenario: Scenario = toml::from_str(text).expect("parses");
        let error = play("backwards", &scenario, &[]).expect_err("time went backwards");
        assert!(error.contains("step 2") && error.contains("earlier than the step before"), "{error}");
    }

    #[test]
    fn the_sibling_explosion_ends_with_101_siblings_without_dots_and_2_with_them() {
        let trace = scenario("sibling-explosion");
        assert_eq!(trace.steps.len(), 101, "the repeat played out");
        let last = trace.steps.last().unwrap();
        assert_eq!(last.state["vv-server"][&1].len(), 101);
        assert_eq!(last.state["vv"][&1].len(), 2);
        assert!(last.lost["vv"].is_empty() && last.lost["vv-server"].is_empty());
        assert!(!trace.buckets.contains(&"truetime".to_string()), "a step-through cannot wait for its clock");
    }

    #[test]
    fn figure_5_13s_cart_keeps_both_additions_as_siblings_and_set_union_merges_them() {
        let trace = scenario("shopping-cart");
        let last = trace.steps.last().unwrap();
        let carts: Vec<Value> = values(last, "vv", 1);
        assert_eq!(
            carts,
            vec![
                serde_json::json!(["eggs", "milk", "ham"]),
                serde_json::json!(["milk", "flour", "eggs", "bacon"])
            ]
        );
        assert_eq!(
            values(last, "set-union", 1),
            vec![serde_json::json!(["bacon", "eggs", "flour", "ham", "milk"])]
        );
        assert!(last.lost["set-union"].is_empty(), "{:?}", last.lost["set-union"]);
        assert!(last.lost["vv"].is_empty());
        assert!(!last.lost["lww-wall"].is_empty(), "last-write-wins lost the ham");
    }

    fn values(step: &TraceStep, bucket: &str, replica: ReplicaId) -> Vec<Value> {
        step.state[bucket][&replica].iter().map(|sibling| sibling.value.parse()).collect()
    }

    #[test]
    fn figure_8_3_loses_the_increment_under_wall_clocks_only() {
        let trace = figure_8_3();
        let last = trace.steps.last().expect("steps");
        for replica in 1..=3 {
            assert_eq!(values(last, "lww-wall", replica), vec![Value::from(1)], "replica {replica}");
            assert_eq!(values(last, "lww-hlc", replica), vec![Value::from(2)], "replica {replica}");
            assert_eq!(values(last, "vv", replica), vec![Value::from(2)], "replica {replica}");
        }
        // The increment is acknowledged, and no replica holds it.
        let increment = trace
            .steps
            .iter()
            .find(|step| step.step.action.kind() == ActionKind::Increment)
            .expect("increment");
        let lost =
            &increment.writes.iter().find(|write| write.bucket == "lww-wall").expect("a write").write_id;
        assert_eq!(last.lost["lww-wall"], vec![*lost]);
        // x = 1 is gone from the other two buckets, but the increment that
        // replaced it had read it: nothing was lost.
        assert!(last.lost["lww-hlc"].is_empty() && last.lost["vv"].is_empty(), "{:?}", last.lost);
    }

    #[test]
    fn a_delivery_names_the_steps_whose_writes_it_carried() {
        let trace = figure_8_3();
        let first_delivery =
            trace.steps.iter().find(|step| step.step.action.kind() == ActionKind::Replicate).expect("one");
        assert_eq!(first_delivery.delivered_steps, vec![0], "node 1's write reaches node 3");
    }

    #[test]
    fn a_bad_step_is_named() {
        let scenario: Scenario = toml::from_str(
            "title='t'\nsummary='s'\nreplicas=2\n[[step]]\nat_ms=1\naction='write'\nsay='oops'\nreplica=3\nkey='x'\nvalue=1\n",
        )
        .expect("parses");
        let error = play("bad", &scenario, &[]).expect_err("replica 3 does not exist");
        assert!(error.contains("step 1") && error.contains("replica 3 does not exist"), "{error}");
        let unknown = toml::from_str::<Scenario>("title='t'\nsummary='s'\nreplicas=2\nsteps=[]\n");
        assert!(unknown.is_err(), "unknown fields are refused");
    }
}
