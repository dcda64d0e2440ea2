//! A search's finding told as a story: a scenario with a sentence per step,
//! in the format of the hand-written ones, played in the step-through's
//! scripted world, with its golden transcript.
//!
//! The sentences are made from what the step-through's trace shows (each
//! clock's reading, each write's stamp, what each replication carried,
//! what the oracle finds lost), so they say what happened, not what the
//! search meant. Playing the story again in the scripted world is also a
//! check: the search ran on bare cores, and the world must end the same way.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Bounds, Effort, ExploreError, Finding, Node, Target};
use crate::analysis;
use crate::sim::scenario::{self, Action, Scenario, Trace, transcript};
use crate::strategy::plugin::Lineup;

/// What was searched for.
pub(super) struct Asked<'a> {
    pub lineup: &'a Lineup,
    pub strategy: &'a str,
    pub bounds: &'a Bounds,
    pub target: Target,
}

/// A story a search found.
#[derive(Debug, Clone, Serialize)]
pub struct Story {
    /// The file stem it is saved under: `smallest-STRATEGY-TARGET`.
    pub name: String,
    /// What the oracle found at its end.
    pub finding: Finding,
    /// Steps the search took before the story was finished by replication,
    /// and in all.
    pub search_steps: usize,
    pub steps: usize,
    /// Client writes in it.
    pub writes: usize,
    /// The scenario, and its TOML file.
    #[serde(skip)]
    pub scenario: Scenario,
    #[serde(skip)]
    pub toml: String,
    /// The scenario played in the step-through, as the dashboard draws it.
    pub trace: Trace,
    /// Its golden transcript.
    #[serde(skip)]
    pub golden: String,
}

/// Tells the finished story of `finished` (the search's `searched` steps,
/// then replication): plays it in the step-through's world, checks it ends
/// in `finding` there too, and writes its sentences.
pub(super) fn tell(
    asked: &Asked,
    searched: usize,
    finished: &Node,
    finding: Finding,
    effort: &Effort,
) -> Result<Story, ExploreError> {
    let name = format!("smallest-{}-{}", file_safe(asked.strategy), asked.target.name());
    let writes = finished.steps.iter().filter(|step| matches!(step.action, Action::Add { .. })).count();
    let (title, verdict) = match &finding {
        Finding::Lost { write, cause, rule } => (
            format!("The smallest story: {} loses a write ({})", asked.strategy, cause.label()),
            format!("The oracle, from the history alone: write {write} is lost, a {}. {rule}", cause.label()),
        ),
        Finding::Diverged { keys } => (
            format!("The smallest story: {}'s replicas never agree", asked.strategy),
            format!(
                "Every replica has received every write, and they still disagree on {keys} key(s): \
                 {} does not converge, a broken promise.",
                asked.strategy
            ),
        ),
    };
    let summary = format!(
        "Found by trying every story within {}, shortest first: {searched} steps and {writes} write(s), \
         then replication until every replica has every write. No story of fewer steps before that \
         replication does it: {} states were explored. {verdict}",
        asked.bounds.describe(),
        thousands(effort.explored)
    );
    let mut scenario = Scenario {
        title,
        summary,
        replicas: finished.start_offsets.len(),
        clock_offsets_ms: finished.start_offsets.clone(),
        strategies: vec![asked.strategy.to_string()],
        steps: finished.steps.clone(),
    };
    let mut trace = scenario::play(&name, &scenario, &asked.lineup.plugins).map_err(ExploreError::Replay)?;
    agrees(&trace, asked.strategy, &finding)?;
    let last = trace.steps.len().saturating_sub(1);
    for index in 0..trace.steps.len() {
        let mut line = sentence(&trace, index, searched);
        if index == last {
            line = format!("{line} {verdict}");
        }
        scenario.steps[index].say = line.clone();
        trace.steps[index].step.say = line;
    }
    let golden = transcript::transcript(&trace);
    let header = format!(
        "# Found by `clocklab explore`: a shortest story in which {} {}.\n",
        asked.strategy,
        match &finding {
            Finding::Lost { .. } => "loses an acknowledged write",
            Finding::Diverged { .. } => "leaves its replicas disagreeing",
        }
    );
    let text = toml::to_string(&scenario).map_err(|error| ExploreError::Toml(error.to_string()))?;
    let toml = header + &text;
    let steps = trace.steps.len();
    Ok(Story { name, finding, search_steps: searched, steps, writes, scenario, toml, trace, golden })
}

/// Whether the step-through's world ends the story as the search's did.
fn agrees(trace: &Trace, bucket: &str, finding: &Finding) -> Result<(), ExploreError> {
    let analysis = analysis::analyze(&trace.history);
    let diverged: usize = analysis.rows.iter().map(|row| row.diverged_keys).sum();
    let same = match finding {
        Finding::Diverged { keys } => diverged == *keys,
        Finding::Lost { write, cause, .. } => analysis.drops.iter().any(|drop| {
            &*drop.bucket == bucket
                && drop.cause == *cause
                && drop.victim.write_id.as_ref().map(ToString::to_string).as_deref() == Some(write.as_str())
        }),
    };
    if same {
        Ok(())
    } else {
        Err(ExploreError::Replay(format!(
            "the search found {finding:?}; played again, the oracle finds {} drop(s) and {diverged} diverged key(s)",
            analysis.drops.len()
        )))
    }
}

/// What the teacher says at step `index`, from what the trace shows.
fn sentence(trace: &Trace, index: usize, searched: usize) -> String {
    let step = &trace.steps[index];
    let at = |ms: f64| format!("{:.3} s", trace.start_second + ms / 1000.0);
    let mut line = String::new();
    match &step.step.action {
        Action::Add { replica, key } => {
            let clock = step.clocks.iter().find(|clock| clock.replica == *replica);
            let reading = clock.map_or(String::new(), |clock| {
                format!(" by its clock, which reads {} ({})", at(clock.physical_ms), off(clock.offset_ms))
            });
            for write in &step.writes {
                let read = if write.read.is_empty() {
                    format!("finds no {key} yet")
                } else {
                    let ids: Vec<String> = write.read.iter().map(ToString::to_string).collect();
                    format!("reads {key} (write {})", ids.join(", "))
                };
                let item = items_added(trace, index);
                let _ = write!(
                    line,
                    "At {}, a client on replica {replica} {read} and writes back {key} = {}, \
                     what it read plus item {item}. The write is {}, stamped {}{reading}.",
                    at(step.step.at_ms),
                    write.value,
                    write.write_id,
                    stamp_words(trace, &write.stamp),
                );
            }
        }
        Action::Replicate { from, to } => {
            let carried: Vec<String> =
                step.delivered_steps.iter().map(|made| (made + 1).to_string()).collect();
            let finishing = if index >= searched { "To finish the story, replica" } else { "Replica" };
            let made = match carried.as_slice() {
                [] => "earlier".to_string(),
                [one] => format!("at step {one}"),
                [before @ .., last] => format!("at steps {} and {last}", before.join(", ")),
            };
            let _ = write!(line, "{finishing} {from} sends replica {to} the writes it lacks (made {made}).");
        }
        Action::Clock { replica, offset_ms } => {
            let _ = write!(line, "Replica {replica}'s clock is set {}.", off(*offset_ms));
        }
        Action::Write { .. } | Action::Increment { .. } | Action::Repeat { .. } => {}
    }
    // What the oracle finds newly gone at this step.
    let before = index.checked_sub(1).map(|before| &trace.steps[before]);
    for (bucket, lost) in &step.lost {
        let was: &[_] = before.and_then(|before| before.lost.get(bucket)).map_or(&[], Vec::as_slice);
        let gone: Vec<String> = lost.iter().filter(|id| !was.contains(id)).map(ToString::to_string).collect();
        if !gone.is_empty() {
            let _ = write!(
                line,
                " At once, no replica holds write {}, nor any write that read it.",
                gone.join(", ")
            );
        }
    }
    state_words(trace, index, &mut line);
    line
}

/// " Now x is [1] on replica 1, nothing on replica 2, [1] and [2] on replica 3."
fn state_words(trace: &Trace, index: usize, line: &mut String) {
    // The trace shows the key of the story's last write.
    let written = trace.steps[..=index].iter().rev().find_map(|step| step.step.action.key());
    let key = written.unwrap_or("x");
    for replicas in trace.steps[index].state.values() {
        let held: Vec<String> = replicas
            .iter()
            .map(|(replica, siblings)| {
                let values: Vec<String> = siblings.iter().map(|sibling| sibling.value.to_string()).collect();
                let values = if values.is_empty() { "nothing".to_string() } else { values.join(" and ") };
                format!("{values} on replica {replica}")
            })
            .collect();
        let _ = write!(line, " Now {key} is {}.", held.join(", "));
    }
}

/// The item the `add` at step `index` added: one more than the adds before it.
fn items_added(trace: &Trace, index: usize) -> usize {
    trace.steps[..=index].iter().filter(|step| matches!(step.step.action, Action::Add { .. })).count()
}

/// A stamp as a class reads it: a wall-clock reading (the first number of
/// a wall-clock, TrueTime or hybrid stamp) as seconds past the minute, as
/// the story's clocks are shown; anything else as it is.
fn stamp_words(trace: &Trace, stamp: &serde_json::Value) -> String {
    let Some(parts) = stamp.as_array() else { return stamp.to_string() };
    let shown: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(index, part)| match part.as_i64() {
            Some(ns) if index == 0 && ns > scenario::START_NS / 2 => {
                format!("{:.3} s", trace.start_second + (ns - scenario::START_NS) as f64 / 1e9)
            }
            _ => part.to_string(),
        })
        .collect();
    format!("[{}]", shown.join(", "))
}

/// "5 ms ahead of true time", "exact".
fn off(offset_ms: f64) -> String {
    if offset_ms == 0.0 {
        "exact".into()
    } else if offset_ms > 0.0 {
        format!("{offset_ms} ms ahead of true time")
    } else {
        format!("{} ms behind true time", -offset_ms)
    }
}

/// 12345 as "12,345".
fn thousands(count: usize) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A strategy's name (a plugin's may be anything) as part of a file name.
fn file_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect()
}

impl std::fmt::Display for super::Search {
    /// The search's answer in words, for the command line.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let effort = &self.effort;
        let states = format!(
            "{} distinct states explored, {} reached before duplicates were dropped",
            thousands(effort.explored),
            thousands(effort.reached)
        );
        match &self.verdict {
            super::Verdict::Found { story } => {
                writeln!(formatter, "{}", story.trace.title)?;
                writeln!(formatter, "{}", story.trace.summary)?;
                writeln!(formatter, "({states}.)")?;
                for step in &story.trace.steps {
                    writeln!(formatter, "  {:>2}. {}", step.index + 1, step.step.say)?;
                }
                Ok(())
            }
            super::Verdict::NoneWithin => write!(
                formatter,
                "No story within {} in which {} {}: every one was tried ({states}; stories of up to {} steps).",
                self.bounds.describe(),
                self.strategy,
                self.target.describe(),
                effort.depth
            ),
            super::Verdict::GaveUp => write!(
                formatter,
                "Gave up after {states}: no story of up to {} steps in which {} {}, but longer ones are \
                 untried; narrow the bounds or raise --max-states.",
                effort.depth.saturating_sub(1),
                self.strategy,
                self.target.describe()
            ),
        }
    }
}
