//! Plugin strategies: a conflict-resolution rule written in any language.
//!
//! Maelstrom (Kingsbury and Alvaro's workbench for distributed-systems
//! courses) lets a student write a node in any language that reads and
//! writes JSON lines; the workbench runs and checks it. A plugin strategy is
//! the same idea for conflict resolution: an executable that answers a few
//! requests on stdin/stdout, one JSON line each, in order:
//!
//! | request   | carries                                   | answer                                   |
//! |-----------|-------------------------------------------|------------------------------------------|
//! | `init`    | replica id, every replica id, parameters  | `name`, `kind`, `observes`               |
//! | `stamp`   | physical clock, client's context, siblings | `stamp`, `context` (or `refuse`)         |
//! | `apply`   | the key's siblings and one write          | `keep`: the ids of the writes that survive |
//! | `read`    | the key's siblings                        | `context` (and `value`, for `merge`)     |
//! | `observe` | a write from a peer (if `observes`)       | `{}`                                     |
//!
//! The plugin sees one key at a time, as a built-in [`Strategy`] does, and
//! the key's state is its siblings: whatever the plugin needs to remember
//! about a key it keeps in the stamps and contexts it makes, which the
//! replica stores, replicates and reports like any strategy's. What it
//! remembers across keys (a logical clock) lives in its process, one per
//! replica, started with the replica and killed with it
//! ([`process::PluginProcess`]). docs/design.md has a worked transcript.
//!
//! A plugin that crashes, hangs past [`REPLY_TIMEOUT`] or answers what the
//! request does not expect fails with a [`PluginFailure`] naming the plugin,
//! the request and the line it sent; the replica takes that one bucket out
//! of service (`core`), and every other bucket goes on.
//!
//! Whether a rule keeps the promises replicas need to converge is a separate
//! question, answered by `clocklab strategy check` ([`super::conformance`]).

pub mod process;
pub mod protocol;

use crate::write_id::{WriteId, WriteIds};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::process::PluginProcess;
use self::protocol::{ApplyAnswer, InitAnswer, ObserveAnswer, ReadAnswer, Request, StampAnswer, WireWrite};
use super::{Clocks, KeyState, Kind, Merged, RawJson, Stamped, Strategy, StrategyError, Write};
use crate::clock::dots::ReplicaId;

/// How long a plugin may take to answer a request, once started.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a plugin may take to answer `init` (an interpreter starting on
/// a busy machine).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest request line quoted in an error message, in characters.
pub const QUOTED_CHARS: usize = 300;

/// A plugin, as a spec (`[[plugins]]`), `--strategy` or the dashboard names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// The executable, relative to the directory clocklab runs in.
    pub path: PathBuf,
    /// Sent to the plugin in `init`, as JSON.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub parameters: serde_json::Map<String, Value>,
    /// The bucket name the plugin answers `init` with: filled in when the
    /// plugin is first started ([`PluginSpec::describe`]); if a spec gives
    /// it, the plugin must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The kind the plugin declares, filled in with the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// Whether it asked to observe peers' writes (so keeps a clock in its
    /// process), filled in with the name; not part of a spec.
    #[serde(skip)]
    pub observes: Option<bool>,
}

impl PluginSpec {
    /// A plugin at `path` with no parameters.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), parameters: serde_json::Map::new(), name: None, kind: None, observes: None }
    }

    /// Starts the plugin once, as replica 1 of one, to learn its name and
    /// kind, and records them.
    pub fn describe(&mut self) -> Result<(), PluginFailure> {
        let plugin = PluginStrategy::start(self, 1, &[1])?;
        self.name = Some(plugin.name.clone());
        self.kind = Some(plugin.kind);
        self.observes = Some(plugin.observes);
        Ok(())
    }
}

/// Describes every plugin of a run ([`PluginSpec::describe`]), with its
/// path made absolute so that every replica finds the same file, and
/// refuses two that take the same bucket name.
pub fn describe_all(plugins: &mut [PluginSpec]) -> Result<(), PluginFailure> {
    let mut names: Vec<String> = Vec::new();
    for plugin in plugins {
        if let Ok(absolute) = std::path::absolute(&plugin.path) {
            plugin.path = absolute;
        }
        plugin.describe()?;
        let name = plugin.name.clone().unwrap_or_default();
        if names.contains(&name) {
            let problem = Problem::Start(format!("another plugin already takes the bucket name {name:?}"));
            return Err(PluginFailure::new(
                &plugin.path.display().to_string(),
                "init",
                "",
                problem,
                Vec::new(),
            ));
        }
        names.push(name);
    }
    Ok(())
}

/// Why a plugin failed, with what it was asked and what it said (boxed:
/// errors travel in `Result`s on every write's path, and should be small).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(transparent)]
pub struct PluginFailure(Box<FailureDetails>);

/// What a [`PluginFailure`] holds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "strategy plugin {plugin} failed on its {request:?} request: {problem}{}{}",
    quote_request(sent),
    quote_stderr(stderr)
)]
pub struct FailureDetails {
    /// The plugin as the user named it.
    pub plugin: String,
    /// The request's type (`apply`, ...).
    pub request: String,
    /// The request line, shortened to [`QUOTED_CHARS`].
    pub sent: String,
    pub problem: Problem,
    /// The last lines the plugin wrote on stderr.
    pub stderr: Vec<String>,
}

impl PluginFailure {
    pub fn new(plugin: &str, request: &str, sent: &str, problem: Problem, stderr: Vec<String>) -> Self {
        let sent = shorten(sent);
        Self(Box::new(FailureDetails {
            plugin: plugin.to_string(),
            request: request.to_string(),
            sent,
            problem,
            stderr,
        }))
    }
}

fn quote_request(sent: &str) -> String {
    if sent.is_empty() { String::new() } else { format!("; the request was {sent}") }
}

fn quote_stderr(stderr: &[String]) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; its stderr ended with:\n  {}", stderr.join("\n  "))
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// What went wrong with a plugin.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("it could not be started: {0}")]
    Start(String),
    #[error("it {0} before answering")]
    Exited(String),
    #[error("it did not answer within {0:?} and was killed (a plugin must flush stdout after each answer)")]
    TimedOut(Duration),
    #[error("{0}")]
    Unreadable(String),
    #[error("it sent `{}`, which is not the answer this request needs: {reason}", shorten(.line))]
    Malformed { line: String, reason: String },
}

/// A plugin strategy: one process per replica, behind the [`Strategy`]
/// trait, so the replica core (in both engines) uses it like any other.
pub struct PluginStrategy {
    name: String,
    kind: Kind,
    observes: bool,
    process: Mutex<PluginProcess>,
}

impl PluginStrategy {
    /// Starts the plugin for replica `replica` of `replicas` and asks it
    /// `init`. If `spec` names the bucket, the plugin must answer that name.
    pub fn start(
        spec: &PluginSpec,
        replica: ReplicaId,
        replicas: &[ReplicaId],
    ) -> Result<Self, PluginFailure> {
        let mut process = PluginProcess::spawn(&spec.path)?;
        let request = Request::Init { replica, replicas, parameters: &spec.parameters };
        let line = to_line(&request);
        let answer = process.call("init", &line, INIT_TIMEOUT)?;
        let init: InitAnswer = match serde_json::from_str(&answer) {
            Ok(init) => init,
            Err(error) => {
                let reason = error.to_string();
                return Err(process.reject("init", &line, Problem::Malformed { line: answer, reason }));
            }
        };
        let refused = match (check_name(&init.name), &spec.name) {
            (Err(reason), _) => Some(reason),
            (Ok(()), Some(expected)) if *expected != init.name => {
                Some(format!("the spec expects the bucket {expected:?}"))
            }
            _ => None,
        };
        if let Some(reason) = refused {
            return Err(process.reject("init", &line, Problem::Malformed { line: answer, reason }));
        }
        Ok(Self { name: init.name, kind: init.kind, observes: init.observes, process: Mutex::new(process) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PluginProcess> {
        self.process.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends `request`, parses its answer as `T`; returns it with the line.
    fn ask<T: serde::de::DeserializeOwned>(&self, request: &Request) -> Result<(T, String), StrategyError> {
        let line = to_line(request);
        let mut process = self.lock();
        let answer = process.call(request.name(), &line, REPLY_TIMEOUT).map_err(failed)?;
        match serde_json::from_str(&answer) {
            Ok(parsed) => Ok((parsed, answer)),
            Err(error) => {
                let problem = Problem::Malformed { line: answer, reason: error.to_string() };
                Err(failed(process.reject(request.name(), &line, problem)))
            }
        }
    }

    /// Fails the plugin for an answer that parsed but makes no sense.
    fn nonsense(&self, request: &Request, answer: String, reason: String) -> StrategyError {
        failed(self.lock().reject(
            request.name(),
            &to_line(request),
            Problem::Malformed { line: answer, reason },
        ))
    }
}

/// A parsed answer's JSON, kept as the text the plugin sent.
fn raw_json(raw: Box<serde_json::value::RawValue>) -> RawJson {
    RawJson(raw)
}

fn failed(failure: PluginFailure) -> StrategyError {
    StrategyError::Plugin(failure)
}

fn to_line(request: &Request) -> String {
    // Requests hold only JSON-able values (RawJson is JSON already).
    serde_json::to_string(request).unwrap_or_else(|_| unreachable!("requests serialize"))
}

fn siblings(state: &KeyState) -> Vec<WireWrite<'_>> {
    state.siblings.iter().map(|write| WireWrite::from(&**write)).collect()
}

/// Bucket names a plugin may take: short, lowercase, and not a built-in's.
fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if name.is_empty() || name.len() > 40 || !name.chars().all(allowed) {
        return Err(format!("the name {name:?} must be 1 to 40 of a-z, 0-9 and -"));
    }
    if super::NAMES.contains(&name) {
        return Err(format!("the name {name:?} is a built-in strategy's"));
    }
    Ok(())
}

impl Strategy for PluginStrategy {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn stamp(
        &self,
        state: &KeyState,
        client_context: &Value,
        clocks: &mut Clocks,
    ) -> Result<Stamped, StrategyError> {
        let request =
            Request::Stamp { physical_ns: clocks.physical_now, client_context, siblings: siblings(state) };
        let (answer, line): (StampAnswer, String) = self.ask(&request)?;
        match answer {
            StampAnswer { refuse: Some(reason), stamp: None, .. } => {
                Err(StrategyError::Refused { plugin: self.name.clone(), reason })
            }
            StampAnswer { stamp: Some(stamp), context, acknowledge_at_ns, refuse: None } => Ok(Stamped {
                stamp: raw_json(stamp),
                context: context.map_or_else(RawJson::null, raw_json),
                acknowledge_at: acknowledge_at_ns,
            }),
            _ => Err(self.nonsense(
                &request,
                line,
                "expected a \"stamp\" that is not null, or a \"refuse\"".into(),
            )),
        }
    }

    fn check(&self, _write: &Write) -> Result<(), StrategyError> {
        // The peers run the same plugin: its own `apply` judges its stamps.
        Ok(())
    }

    fn observe(&self, write: &Write, clocks: &mut Clocks) -> Result<(), StrategyError> {
        if !self.observes {
            return Ok(());
        }
        let request = Request::Observe { physical_ns: clocks.physical_now, write: WireWrite::from(write) };
        self.ask::<ObserveAnswer>(&request).map(drop)
    }

    fn apply(&self, state: &mut KeyState, write: &Arc<Write>) -> Result<(), StrategyError> {
        let request = Request::Apply { siblings: siblings(state), write: WireWrite::from(&**write) };
        let (answer, line): (ApplyAnswer, String) = self.ask(&request)?;
        let candidates = || state.siblings.iter().chain(std::iter::once(write));
        let mut kept = Vec::with_capacity(answer.keep.len());
        for id in &answer.keep {
            let named = id.parse::<WriteId>().ok();
            let Some(found) = candidates().find(|candidate| Some(candidate.write_id()) == named) else {
                let reason = format!("{id:?} is neither a sibling nor the new write");
                return Err(self.nonsense(&request, line, reason));
            };
            kept.push(Arc::clone(found));
        }
        // One order on every replica, whatever order the plugin listed them in.
        kept.sort_by_key(|sibling| (sibling.origin, sibling.seq));
        kept.dedup_by_key(|sibling| (sibling.origin, sibling.seq));
        drop(request);
        state.siblings = kept;
        Ok(())
    }

    fn read_context(&self, state: &KeyState) -> Result<Value, StrategyError> {
        Ok(self.read(state)?.1)
    }

    fn merged(&self, state: &KeyState) -> Result<Option<Merged>, StrategyError> {
        Ok(self.read(state)?.0)
    }

    fn read(&self, state: &KeyState) -> Result<(Option<Merged>, Value), StrategyError> {
        let request = Request::Read { siblings: siblings(state) };
        let (answer, line): (ReadAnswer, String) = self.ask(&request)?;
        let merged = match (self.kind, answer.value) {
            (Kind::Merge, Some(value)) if !state.siblings.is_empty() => {
                let value = raw_json(value);
                let ids = state.siblings.iter().map(|write| write.write_id()).collect();
                Some(Merged { value, write_id: WriteIds::merged(ids) })
            }
            (Kind::Merge, None) if !state.siblings.is_empty() => {
                let reason = "a merge plugin's read must answer a \"value\"".to_string();
                return Err(self.nonsense(&request, line, reason));
            }
            _ => None,
        };
        Ok((merged, answer.context))
    }
}

/// A plugin that could not be started on this replica: its bucket exists,
/// and fails with the start-up failure on first use, as a plugin that
/// crashed would, so the rest of the replica goes on.
pub struct Unstarted {
    name: String,
    kind: Kind,
    failure: PluginFailure,
}

impl Strategy for Unstarted {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn stamp(&self, _: &KeyState, _: &Value, _: &mut Clocks) -> Result<Stamped, StrategyError> {
        Err(failed(self.failure.clone()))
    }

    fn check(&self, _: &Write) -> Result<(), StrategyError> {
        Ok(())
    }

    fn apply(&self, _: &mut KeyState, _: &Arc<Write>) -> Result<(), StrategyError> {
        Err(failed(self.failure.clone()))
    }

    fn read_context(&self, _: &KeyState) -> Result<Value, StrategyError> {
        Err(failed(self.failure.clone()))
    }
}

/// The strategies every replica of a cluster runs: the built-ins, shared by
/// all, and the plugins, started once per replica.
#[derive(Clone, Default)]
pub struct Lineup {
    pub builtins: Vec<Arc<dyn Strategy>>,
    pub plugins: Vec<PluginSpec>,
}

impl Lineup {
    /// Replica `replica`'s strategies, its plugins started. A plugin that
    /// cannot start becomes a failed bucket if its name is known (it was
    /// described), else the replica cannot start.
    pub fn for_replica(
        &self,
        replica: ReplicaId,
        replicas: &[ReplicaId],
    ) -> Result<Vec<Arc<dyn Strategy>>, PluginFailure> {
        let mut strategies = self.builtins.clone();
        for spec in &self.plugins {
            let strategy: Arc<dyn Strategy> = match (PluginStrategy::start(spec, replica, replicas), spec) {
                (Ok(plugin), _) => Arc::new(plugin),
                (Err(failure), PluginSpec { name: Some(name), kind: Some(kind), .. }) => {
                    Arc::new(Unstarted { name: name.clone(), kind: *kind, failure })
                }
                (Err(failure), _) => return Err(failure),
            };
            strategies.push(strategy);
        }
        Ok(strategies)
    }
}
