//! `clocklab explore`: the smallest story in which a strategy loses a write.
//!
//! The step-through's stories were written by hand, and `strategy check`
//! samples random histories. Neither answers what a student or a
//! strategy's author asks: *what is the smallest thing that can go wrong?*
//! and *is there any way at all, with three replicas and three writes, to
//! lose a write?* A model checker answers such questions by trying every
//! history within bounds, breadth first, so that the first bad one it meets
//! is a shortest one (Stateright and DSLabs do this for protocols; neither
//! knows anything of clocks, nor asks whether an acknowledged write
//! survived). This module is that search, with the lab's own parts:
//!
//! - **Steps** are what a story is made of ([`crate::sim::scenario::step`]):
//!   a client's read-modify-write at a replica (read the key, write back
//!   its items plus a new one: the lab's workload), a replication from one
//!   replica to another, and, if asked, a change of one replica's clock.
//!   Each step comes a millisecond after the one before finished. Each
//!   replica's clock starts at an offset from a small set.
//! - **States** are the stories so far, played on bare replica cores
//!   ([`Cores`]) that a [`Player`] clones to branch. A state is hashed (every
//!   replica's clocks, log and keys, and the writes made, with what each
//!   read) and a state met before is not explored again. A step that
//!   changes nothing (a replication of nothing new) is not taken. Replicas
//!   are not folded by symmetry: write ids break stamp ties by replica, so
//!   two mirrored stories can end differently.
//! - **Judging.** At every state, the story is finished the quiet way:
//!   every replica sends replica 1 what it lacks, then replica 1 sends
//!   every other what it lacks, so that all hold every write. The
//!   oracle ([`crate::analysis`]) judges that story's history, by the kind
//!   the strategy declares, as it judges an experiment: which acknowledged
//!   writes were lost, and why (a causality violation, a real-time
//!   violation, a concurrent overwrite), and whether the replicas diverged
//!   (a broken strategy, which is always a finding).
//! - **The result is a story**: the first state whose finished story shows
//!   what was asked for, written as a scenario ([`story`]) with a sentence
//!   per step, played again in the step-through's scripted world (which
//!   must agree), or the bounds within which nothing can be lost, with the
//!   number of states that shows it. "Within the bounds" means within this
//!   timing model too: steps a millisecond apart, and a replication carries
//!   everything the receiver lacks.

pub mod story;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::analysis::{self, Cause};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::sim::scenario::{Action, Cores, Player, START_NS, Step};
use crate::strategy::Kind;
use crate::strategy::plugin::Lineup;

/// The keys stories write, in order.
pub const KEYS: [&str; 3] = ["x", "y", "z"];
/// The most replicas, writes and clock changes a search takes.
pub const MAX_REPLICAS: usize = 4;
pub const MAX_WRITES: usize = 6;
pub const MAX_CLOCK_STEPS: usize = 3;
/// The most distinct states a search explores before it gives up, by
/// default: about a minute's work, and a few GB at most.
pub const DEFAULT_MAX_STATES: usize = 2_000_000;
/// Time between a step's end and the next step, ms.
pub const STEP_GAP_MS: f64 = 1.0;

/// How far a search looks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bounds {
    /// Replicas in every story (2 to [`MAX_REPLICAS`]).
    pub replicas: usize,
    /// Client writes per story, at most (1 to [`MAX_WRITES`]).
    pub writes: usize,
    /// Keys the writes may go to (1 to 3: x, y, z).
    pub keys: usize,
    /// Each replica's clock starts this many ms off true time, one of these.
    pub offsets_ms: Vec<f64>,
    /// Clock changes (to another offset of the set) a story may make.
    pub clock_steps: usize,
    /// Distinct states explored before the search gives up.
    pub max_states: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            replicas: 3,
            writes: 3,
            keys: 1,
            offsets_ms: vec![0.0, 5.0],
            clock_steps: 0,
            max_states: DEFAULT_MAX_STATES,
        }
    }
}

impl Bounds {
    /// Refuses bounds a search cannot take, saying which.
    pub fn check(&self) -> Result<(), ExploreError> {
        let bad = |what: String| Err(ExploreError::Bounds(what));
        if !(2..=MAX_REPLICAS).contains(&self.replicas) {
            return bad(format!("replicas must be 2 to {MAX_REPLICAS}, not {}", self.replicas));
        }
        if !(1..=MAX_WRITES).contains(&self.writes) {
            return bad(format!("writes must be 1 to {MAX_WRITES}, not {}", self.writes));
        }
        if !(1..=KEYS.len()).contains(&self.keys) {
            return bad(format!("keys must be 1 to {}, not {}", KEYS.len(), self.keys));
        }
        if self.offsets_ms.is_empty() || self.offsets_ms.len() > 4 {
            return bad("give 1 to 4 clock offsets".into());
        }
        if self.offsets_ms.iter().enumerate().any(|(at, offset)| self.offsets_ms[..at].contains(offset)) {
            return bad("give each clock offset once".into());
        }
        if let Some(offset) = self.offsets_ms.iter().find(|offset| !offset.is_finite() || offset.abs() > 1e6)
        {
            return bad(format!("a clock offset must be a number of ms within 1,000 s, not {offset}"));
        }
        if self.clock_steps > MAX_CLOCK_STEPS {
            return bad(format!("clock steps must be 0 to {MAX_CLOCK_STEPS}, not {}", self.clock_steps));
        }
        if self.max_states == 0 {
            return bad("max states must be at least 1".into());
        }
        Ok(())
    }

    /// The bounds in words: "3 replicas, 3 writes to 1 key, clocks 0 or 5 ms off".
    pub fn describe(&self) -> String {
        let offsets: Vec<String> = self.offsets_ms.iter().map(|offset| format!("{offset}")).collect();
        let keys = if self.keys == 1 { "1 key".to_string() } else { format!("{} keys", self.keys) };
        let mut text = format!(
            "{} replicas, up to {} writes to {keys}, each clock starting {} ms off true time",
            self.replicas,
            self.writes,
            offsets.join(" or ")
        );
        if self.clock_steps > 0 {
            text += &format!(", up to {} clock changes", self.clock_steps);
        }
        text
    }
}

/// What counts as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Any acknowledged write lost.
    AnyLoss,
    /// A write lost because a clock lied: a causality or real-time violation.
    ClockCaused,
    /// A write lost for this cause.
    Cause(Cause),
    /// A broken promise only: replicas that diverge, or a siblings or
    /// merge strategy losing any write (a last-write-wins strategy loses
    /// writes by design). What `strategy check --exhaustive` looks for.
    BrokenPromise,
}

impl Target {
    /// Every target, in the order the dashboard offers them.
    pub const ALL: [Target; 6] = [
        Self::AnyLoss,
        Self::ClockCaused,
        Self::Cause(Cause::Causality),
        Self::Cause(Cause::Realtime),
        Self::Cause(Cause::Concurrent),
        Self::BrokenPromise,
    ];

    /// The target a name (as [`Target::name`] gives it) stands for.
    pub fn parse(name: &str) -> Result<Self, ExploreError> {
        Self::ALL.into_iter().find(|target| target.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|target| target.name()).collect();
            ExploreError::Target(name.to_string(), names.join(", "))
        })
    }

    /// Its name, as the command line and the dashboard take it.
    pub fn name(self) -> &'static str {
        match self {
            Self::AnyLoss => "any",
            Self::ClockCaused => "clock",
            Self::Cause(Cause::Causality) => "causality",
            Self::Cause(Cause::Realtime) => "realtime",
            Self::Cause(Cause::Concurrent) => "concurrent",
            Self::BrokenPromise => "broken",
        }
    }

    /// Whether a loss of `cause` by a strategy of `kind` counts.
    fn matches(self, cause: Cause, kind: Kind) -> bool {
        match self {
            Self::AnyLoss => true,
            Self::ClockCaused => matches!(cause, Cause::Causality | Cause::Realtime),
            Self::Cause(wanted) => cause == wanted,
            Self::BrokenPromise => kind != Kind::LastWriteWins,
        }
    }

    /// What a story must show, after the strategy's name: "loses an
    /// acknowledged write to a causality violation".
    pub fn describe(self) -> String {
        match self {
            Self::AnyLoss => "loses an acknowledged write".into(),
            Self::ClockCaused => "loses an acknowledged write because a clock lied".into(),
            Self::Cause(cause) => format!("loses an acknowledged write to a {}", cause.label()),
            Self::BrokenPromise => {
                "breaks a promise (its replicas diverge, or, keeping siblings or merging, it loses a write)"
                    .into()
            }
        }
    }
}

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("bad bounds: {0}")]
    Bounds(String),
    #[error("no loss kind {0:?} (kinds: {1})")]
    Target(String, String),
    #[error("a search explores exactly one strategy")]
    NotOne,
    /// A plugin that keeps a clock in its process (it observes peers'
    /// writes): the search copies replicas to branch, and cannot copy a process.
    #[error(
        "{0} asks to observe peers' writes, so it keeps state in its process; the search branches from \
         copies of replicas and cannot copy a process: explore only plugins that answer from their requests alone"
    )]
    KeepsState(String),
    #[error(transparent)]
    Plugin(#[from] crate::strategy::plugin::PluginFailure),
    /// A step could not be played: a plugin that failed mid-search, say.
    #[error("the search could not play a step: {0}")]
    Step(String),
    /// The story found, played again in the step-through's world, ended
    /// differently: a bug in the lab, or a plugin that keeps state of its
    /// own although it did not say so.
    #[error(
        "the story found does not play the same in the step-through: {0} (a bug in the lab, or a plugin \
         whose answers depend on more than its requests)"
    )]
    Replay(String),
    #[error("cannot write the story as TOML: {0}")]
    Toml(String),
}

/// What the oracle found at the end of a story.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "found", rename_all = "snake_case")]
pub enum Finding {
    /// An acknowledged write lost, and why.
    Lost { write: String, cause: Cause, rule: String },
    /// The replicas received the same writes and disagree.
    Diverged { keys: usize },
}

/// How a search went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Effort {
    /// States reached by a step, before duplicates were dropped.
    pub reached: usize,
    /// Distinct states, each judged and expanded.
    pub explored: usize,
    /// The steps (before the finishing replications) of the longest stories
    /// judged: every shorter story was tried, and these in part if the
    /// search found something or gave up.
    pub depth: usize,
}

/// A search's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The first story whose end shows what was asked for: a shortest one.
    Found { story: Box<story::Story> },
    /// Every story within the bounds ends with nothing of the kind lost.
    NoneWithin,
    /// The search stopped at `max_states` before it had tried every story.
    GaveUp,
}

/// A search, asked and answered.
#[derive(Debug, Clone, Serialize)]
pub struct Search {
    pub strategy: String,
    pub kind: Kind,
    pub bounds: Bounds,
    pub target: Target,
    pub verdict: Verdict,
    pub effort: Effort,
}

/// One state: a story so far, and what it has used of the bounds.
#[derive(Clone)]
struct Node {
    player: Player<Cores>,
    /// Which of the starting states (one per choice of clock offsets) the
    /// story starts from.
    start: usize,
    steps: Vec<Step>,
    /// Each replica's clock offset at the start, and now, ms.
    start_offsets: Vec<f64>,
    offsets: Vec<f64>,
    writes: usize,
    clock_steps: usize,
}

/// A state as a level of the search keeps it: how to reach it again from
/// its start. A full state is a few KB; a path is a few dozen bytes, and
/// replaying one costs less than judging the state did.
struct Path {
    start: usize,
    actions: Vec<Action>,
}

impl Node {
    fn path(&self) -> Path {
        Path { start: self.start, actions: self.steps.iter().map(|step| step.action.clone()).collect() }
    }
}

/// States are expanded and judged this many at a time, on every core; the
/// full states of one batch's children are all that is held at once.
const BATCH: usize = 2048;

/// The strategy a lineup of one holds (a plugin described first): its
/// bucket name and kind; refused if the search cannot explore it.
pub fn strategy_of(lineup: &Lineup) -> Result<(String, Kind), ExploreError> {
    match (lineup.builtins.as_slice(), lineup.plugins.as_slice()) {
        ([strategy], []) => Ok((strategy.name().to_string(), strategy.kind())),
        ([], [plugin]) => match (&plugin.name, plugin.kind) {
            (Some(name), _) if plugin.observes == Some(true) => Err(ExploreError::KeepsState(name.clone())),
            (Some(name), Some(kind)) => Ok((name.clone(), kind)),
            _ => Err(ExploreError::NotOne),
        },
        _ => Err(ExploreError::NotOne),
    }
}

/// What a search looks for, as the judge needs it.
struct Question {
    strategy: String,
    kind: Kind,
    target: Target,
}

/// Searches, breadth first, every story within `bounds` for one in which
/// the one strategy of `lineup` (its plugin described) loses what `target`
/// asks for; `progress` hears after each batch of states, with `true`
/// once a level (every story of `effort.depth` steps) is done. Deterministic, however
/// many threads judge: the same question always gets the same story.
pub fn search(
    lineup: &Lineup,
    bounds: &Bounds,
    target: Target,
    mut progress: impl FnMut(&Effort, bool),
) -> Result<Search, ExploreError> {
    use rayon::prelude::*;
    bounds.check()?;
    let (strategy, kind) = strategy_of(lineup)?;
    let question = Question { strategy: strategy.clone(), kind, target };
    let mut answer = Search {
        strategy: strategy.clone(),
        kind,
        bounds: bounds.clone(),
        target,
        verdict: Verdict::NoneWithin,
        effort: Effort::default(),
    };
    let kinds = BTreeMap::from([(strategy.clone(), kind)]);
    let stage = Cores::new(START_NS, bounds.replicas, lineup)?;
    let empty = Player::new(stage, kinds, vec![strategy]);
    let mut starts = Vec::new();
    for (start, offsets) in offset_choices(&bounds.offsets_ms, bounds.replicas).into_iter().enumerate() {
        let mut player = empty.clone();
        for (index, offset) in offsets.iter().enumerate() {
            let update = crate::clock::update::ClockUpdate { offset_ms: Some(*offset), ..Default::default() };
            player.update_clock(index as ReplicaId + 1, &update).map_err(ExploreError::Step)?;
        }
        let (writes, clock_steps, steps) = (0, 0, Vec::new());
        starts.push(Node {
            player,
            start,
            steps,
            start_offsets: offsets.clone(),
            offsets,
            writes,
            clock_steps,
        });
    }

    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    // Each batch: the states reached, in a fixed order, then the new ones
    // among them judged (in parallel), then kept as paths.
    let mut level: Vec<Path> = Vec::new();
    let mut batch = |reached: Vec<Node>, answer: &mut Search, next: &mut Vec<Path>| {
        answer.effort.reached += reached.len();
        let fresh: Vec<Node> = reached.into_iter().filter(|node| seen.insert(fingerprint(node))).collect();
        let verdicts: Vec<Option<(Node, Finding)>> =
            fresh.par_iter().map(|node| judge(node, &question)).collect::<Result<_, _>>()?;
        answer.effort.explored += fresh.len();
        if let Some(depth) = fresh.last().map(|node| node.steps.len()) {
            answer.effort.depth = depth;
        }
        if let Some(((finished, finding), node)) =
            verdicts.into_iter().zip(&fresh).find_map(|(v, n)| Some((v?, n)))
        {
            let asked = story::Asked { lineup, strategy: &question.strategy, bounds, target };
            let story = story::tell(&asked, node.steps.len(), &finished, finding, &answer.effort)?;
            answer.verdict = Verdict::Found { story: Box::new(story) };
            return Ok(true);
        }
        next.extend(fresh.iter().map(Node::path));
        if answer.effort.explored >= bounds.max_states {
            answer.verdict = Verdict::GaveUp;
            return Ok(true);
        }
        Ok::<bool, ExploreError>(false)
    };
    if batch(starts.clone(), &mut answer, &mut level)? {
        return Ok(answer);
    }
    progress(&answer.effort, true);
    while !level.is_empty() {
        let mut next = Vec::new();
        for paths in level.chunks(BATCH) {
            let children: Vec<Vec<Node>> = paths
                .par_iter()
                .map(|path| children(&replay(&starts, path)?, bounds))
                .collect::<Result<_, _>>()?;
            if batch(children.into_iter().flatten().collect(), &mut answer, &mut next)? {
                return Ok(answer);
            }
            progress(&answer.effort, false);
        }
        // The last level may reach nothing new: its stories were told already.
        if !next.is_empty() {
            progress(&answer.effort, true);
        }
        level = next;
    }
    Ok(answer)
}

/// The state `path` reaches from its start.
fn replay(starts: &[Node], path: &Path) -> Result<Node, ExploreError> {
    let mut node = starts[path.start].clone();
    for action in &path.actions {
        take(&mut node, action.clone())?;
    }
    Ok(node)
}

/// Every assignment of an offset from `choices` to each of `replicas`
/// clocks: exact clocks first, and the first replica's clock the first to
/// change (so a story with one clock off has it on replica 1).
fn offset_choices(choices: &[f64], replicas: usize) -> Vec<Vec<f64>> {
    let mut sorted = choices.to_vec();
    sorted.sort_by(|a, b| a.abs().total_cmp(&b.abs()).then(a.total_cmp(b)));
    sorted.dedup();
    let mut all = vec![Vec::new()];
    for _ in 0..replicas {
        all = all
            .into_iter()
            .flat_map(|prefix: Vec<f64>| {
                sorted.iter().map(move |offset| [*offset].into_iter().chain(prefix.iter().copied()).collect())
            })
            .collect();
    }
    all
}

/// The states one step from `node`, in a fixed order: writes, then
/// replications, then clock changes.
fn children(node: &Node, bounds: &Bounds) -> Result<Vec<Node>, ExploreError> {
    let replicas = 1..=bounds.replicas as ReplicaId;
    let mut actions = Vec::new();
    if node.writes < bounds.writes {
        for replica in replicas.clone() {
            for key in &KEYS[..bounds.keys] {
                actions.push(Action::Add { replica, key: key.to_string() });
            }
        }
    }
    for from in replicas.clone() {
        for to in replicas.clone().filter(|to| *to != from) {
            actions.push(Action::Replicate { from, to });
        }
    }
    if node.clock_steps < bounds.clock_steps {
        for replica in replicas {
            let now = node.offsets[replica as usize - 1];
            for offset_ms in bounds.offsets_ms.iter().copied().filter(|offset| *offset != now) {
                actions.push(Action::Clock { replica, offset_ms });
            }
        }
    }
    let mut children = Vec::with_capacity(actions.len());
    for action in actions {
        if let Action::Replicate { from, to } = action
            && !node.player.lacks(from, to)
        {
            continue; // it would change nothing but the time
        }
        let mut child = node.clone();
        take(&mut child, action)?;
        children.push(child);
    }
    Ok(children)
}

/// Takes `action` as `node`'s next step, counting what it uses of the bounds.
fn take(node: &mut Node, action: Action) -> Result<(), ExploreError> {
    play(&mut node.player, &mut node.steps, action.clone())?;
    match action {
        Action::Add { .. } => node.writes += 1,
        Action::Clock { replica, offset_ms } => {
            node.offsets[replica as usize - 1] = offset_ms;
            node.clock_steps += 1;
        }
        _ => {}
    }
    Ok(())
}

/// Plays `action` as the story's next step, [`STEP_GAP_MS`] after the last
/// one finished.
fn play(player: &mut Player<Cores>, steps: &mut Vec<Step>, action: Action) -> Result<(), ExploreError> {
    let at_ms = (player.now() - START_NS) as f64 / 1e6 + STEP_GAP_MS;
    player.advance_to(START_NS + (at_ms * 1e6) as Nanos).map_err(ExploreError::Step)?;
    let step = Step { at_ms, say: String::new(), action };
    player.apply(steps.len(), &step).map_err(ExploreError::Step)?;
    steps.push(step);
    Ok(())
}

/// A state's hash, 128 bits (two 64-bit hashes, the second salted), of
/// what decides every story that goes on from it: at a few million states
/// the chance that two differ yet hash alike, dropping one unexplored, is
/// about 1e-26.
fn fingerprint(node: &Node) -> (u64, u64) {
    let hash = |salt: u64| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut hasher);
        node.player.fingerprint(&mut hasher);
        (node.writes, node.clock_steps).hash(&mut hasher);
        node.offsets.iter().for_each(|offset| offset.to_bits().hash(&mut hasher));
        hasher.finish()
    };
    (hash(0), hash(0x9e37_79b9_7f4a_7c15))
}

/// Finishes `node`'s story the quiet way (every replica sends to replica 1
/// what it lacks, then replica 1 to every other) and asks the oracle; the
/// finished story, if it shows what `target` asks for (or divergence).
fn judge(node: &Node, question: &Question) -> Result<Option<(Node, Finding)>, ExploreError> {
    let (bucket, kind, target) = (question.strategy.as_str(), question.kind, question.target);
    let mut finished = node.clone();
    let replicas = node.offsets.len() as ReplicaId;
    let sends = (2..=replicas).map(|other| (other, 1)).chain((2..=replicas).map(|other| (1, other)));
    for (from, to) in sends {
        if finished.player.lacks(from, to) {
            play(&mut finished.player, &mut finished.steps, Action::Replicate { from, to })?;
        }
    }
    let analysis = analysis::analyze(&finished.player.history());
    let diverged: usize = analysis.rows.iter().map(|row| row.diverged_keys).sum();
    if diverged > 0 {
        return Ok(Some((finished, Finding::Diverged { keys: diverged })));
    }
    let lost = analysis.drops.iter().find(|drop| &*drop.bucket == bucket && target.matches(drop.cause, kind));
    Ok(lost.map(|drop| {
        let write = drop.victim.write_id.as_ref().map_or("?".to_string(), ToString::to_string);
        (finished, Finding::Lost { write, cause: drop.cause, rule: drop.rule() })
    }))
}
