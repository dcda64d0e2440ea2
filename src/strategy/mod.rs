//! Conflict resolution: what a replica does when two writes meet.
//!
//! In multi-leader replication (DDIA chapter 5, "Handling Write Conflicts")
//! every replica accepts writes and ships them to the others, so the same key
//! can be written in two places before either hears of the other. Every
//! replica must then settle on the same outcome, whatever order the writes
//! arrive in and however often. A [`Strategy`] is one way of settling it:
//!
//! | bucket        | kind              | keeps                               | orders writes by                   |
//! |---------------|-------------------|-------------------------------------|------------------------------------|
//! | `lww-wall`    | last write wins   | one write, the "latest"             | the writer's physical clock        |
//! | `lww-hlc`     | last write wins   | one write, the "latest"             | a hybrid logical clock             |
//! | `lww-lamport` | last write wins   | one write, the "latest"             | a Lamport clock                    |
//! | `truetime`    | last write wins   | one write, the "latest"             | an interval clock, with commit wait |
//! | `vv`          | siblings          | every write no later write has read | dotted version vectors             |
//! | `vv-server`   | siblings          | every write it cannot prove was read | per-server version vectors        |
//! | `set-union`   | merge             | the union of every write's set      | nothing: sets merge                |
//!
//! Each is a trade (each file says which): `lww-wall` is cheap and loses
//! writes to skew; `truetime` loses none while its clock bound holds, at
//! the price of waiting out the bound on every write; `vv` loses nothing but
//! hands siblings to the application; `vv-server` needs no dots but hands
//! over far more siblings; `set-union` never hands over siblings, but only
//! for values that are sets. A strategy declares its [`Kind`], which the
//! history records, so the oracle judges each bucket by what it promises,
//! never by its name.
//!
//! A strategy sees one key at a time: a [`KeyState`] holding the surviving
//! writes (siblings). It stamps new writes made at this replica and merges
//! writes from anywhere into the state. `apply` must be idempotent and
//! commutative: replication delivers at least once, in no guaranteed order,
//! and replicas converge only if every order gives the same state.
//!
//! Adding a strategy is one new file and one line in [`registry`], or, in
//! any language and with no rebuild, a [`plugin`].
//! Strategies with parameters (`truetime`'s `epsilon_ms`) take them from a
//! [`Parameters`] table, which experiment specs fill in.

pub mod lww;
pub mod lww_hlc;
pub mod lww_lamport;
pub mod lww_wall;
pub mod plugin;
pub mod set_union;
pub mod truetime;
pub mod vv;
pub mod vv_server;

use crate::write_id::{WriteId, WriteIds};
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Nanos;
use crate::clock::dots::{DotSet, ReplicaId};
use crate::clock::hlc::Hlc;
use crate::lease::Token;

/// One write, as logged, replicated and kept as a sibling. Immutable once
/// made; its identity is `(origin, seq)`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Write {
    /// The replica that accepted the write from a client.
    pub origin: ReplicaId,
    /// Its place in the origin's replication log, from 1.
    pub seq: u64,
    pub bucket: String,
    pub key: String,
    /// What the client wrote: any JSON, kept as text (see [`RawJson`]).
    pub value: RawJson,
    /// The strategy's stamp (see each strategy), as JSON text.
    pub stamp: RawJson,
    /// What the write supersedes, in the strategy's terms (`null` for LWW),
    /// as JSON text.
    pub context: RawJson,
    /// The fencing token its writer held (DDIA Figure 8-5), if it fences:
    /// a replica refuses a write whose token is below one it has seen for
    /// the key, and learns tokens from the writes replicated to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<Token>,
}

impl Write {
    /// The write's name in the API and the history: `origin:seq`.
    pub fn write_id(&self) -> WriteId {
        WriteId::new(self.origin, self.seq)
    }
}

/// JSON kept as text. Replicas never look inside a client's value, so they
/// never parse or re-serialize it: a value is checked once on the way in and
/// then copied as bytes to SQLite, to peers and to readers. (In the lab's
/// workload values are sets of item ids that grow with every
/// read-modify-write, so this matters.) Stamps and contexts are kept the same
/// way: a strategy parses the few it compares, and the text is far smaller in
/// memory than a parsed tree, on replicas that hold every write.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// Checks that `text` is one JSON value and keeps it.
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        serde_json::value::RawValue::from_string(text).map(Self)
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// Parses the text, for code that does look inside (tests, the oracle).
    pub fn parse(&self) -> Value {
        serde_json::from_str(self.text()).unwrap_or(Value::Null)
    }

    /// The JSON of one of the lab's own types (stamps, dot sets).
    pub fn of<T: Serialize>(value: &T) -> Self {
        // The lab's types serialize to JSON by construction (their maps have
        // number or string keys), so this cannot fail.
        Self(serde_json::value::to_raw_value(value).unwrap_or_else(|_| unreachable!("serializable to JSON")))
    }

    /// JSON `null`.
    pub fn null() -> Self {
        Self::of(&())
    }

    pub fn is_null(&self) -> bool {
        self.text() == "null"
    }
}

impl std::fmt::Display for RawJson {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.text())
    }
}

impl From<&Value> for RawJson {
    fn from(value: &Value) -> Self {
        Self::of(value)
    }
}

/// Two values are equal if their text is: copies of one write always are.
impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

/// The state of one key under one strategy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyState {
    /// The writes that survive, oldest first: one for LWW, any number for
    /// `vv` and `vv-server`, those whose sets are not inside another's for
    /// `set-union`.
    pub siblings: Vec<Arc<Write>>,
    /// The dots of every write this key has seen (`vv`, `vv-server`; empty
    /// for the others).
    pub seen: DotSet,
    /// The dots no survivor may have: what the contexts of writes that
    /// replaced everything they read cover (`vv-server` only).
    pub superseded: DotSet,
}

/// What a strategy promises, and so how the oracle judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One write per key survives, chosen by a total order of stamps; the
    /// others are discarded. Drops are expected; the oracle finds their
    /// killers and causes.
    LastWriteWins,
    /// Writes no later write has read survive side by side, for the
    /// application to merge. Nothing may be dropped.
    Siblings,
    /// The replica merges concurrent writes itself into one value. Nothing
    /// may be dropped.
    Merge,
}

/// What a strategy's stamps are made of. The oracle never judges by it
/// (it judges by [`Kind`] and by true time); it says in words *why* a
/// stamp ranked a later write below an earlier one: "a clock that lagged"
/// is true of a wall clock, not of a Lamport counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StampKind {
    /// A physical clock reading in ns, then the replica (`lww-wall`).
    WallClock,
    /// A physical clock reading plus an assumed error bound, in ns, then
    /// the replica (`truetime`).
    ClockInterval,
    /// A hybrid logical clock: the largest clock reading the replica has
    /// heard of, a counter, the replica (`lww-hlc`).
    Hybrid,
    /// A Lamport counter, then the replica (`lww-lamport`).
    Lamport,
    /// A version: a dot or a version vector (`vv`, `vv-server`).
    Version,
    /// No stamp at all (`set-union`).
    Unstamped,
    /// Something else (a plugin's own).
    Opaque,
}

/// Strategy parameters, by bucket: `{"truetime": {"epsilon_ms": 20}}`.
pub type Parameters = BTreeMap<String, serde_json::Map<String, Value>>;

/// What a replica's clocks look like to a strategy at one instant.
pub struct Clocks<'a> {
    /// The replica making or receiving the write.
    pub replica: ReplicaId,
    /// Its physical clock's reading now.
    pub physical_now: Nanos,
    /// Its hybrid logical clock.
    pub hlc: &'a mut Hlc,
    /// Its Lamport clock: the greatest counter it has made or seen.
    pub lamport: &'a mut u64,
}

/// A new write's stamp and the context it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    pub stamp: RawJson,
    pub context: RawJson,
    /// The physical clock reading before which the write must not be
    /// acknowledged (`truetime`'s commit wait), if any.
    pub acknowledge_at: Option<Nanos>,
}

impl Stamped {
    /// A stamp and context to acknowledge as soon as the write is durable.
    pub fn now(stamp: RawJson, context: RawJson) -> Self {
        Self { stamp, context, acknowledge_at: None }
    }
}

/// One value as a read returns it: what a merging strategy hands out in
/// place of its siblings.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub value: RawJson,
    /// The writes merged into it, in order.
    pub write_id: WriteIds,
}

/// Why a strategy refused a write. Each becomes a 4xx for the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StrategyError {
    #[error("malformed context: {0}")]
    MalformedContext(String),
    #[error(
        "the context names writes this replica has not received yet; read the key from this replica first"
    )]
    ContextAhead,
    #[error("malformed stamp {stamp}: {reason}")]
    MalformedStamp { stamp: RawJson, reason: String },
    #[error("{bucket} cannot store this value: {reason}")]
    BadValue { bucket: &'static str, reason: String },
    /// A plugin strategy's process failed (crashed, hung or answered
    /// nonsense). Unlike the refusals above, this is not about the write:
    /// the bucket cannot go on, and the replica takes it out of service.
    #[error(transparent)]
    Plugin(plugin::PluginFailure),
    /// A plugin refused the write, with its reason.
    #[error("{plugin} refused the write: {reason}")]
    Refused { plugin: String, reason: String },
}

/// Why a strategy could not be built from its parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParameterError {
    #[error("no strategy {0:?} (strategies: {1})")]
    UnknownStrategy(String, String),
    #[error("{strategy} has no parameter {name:?} (it takes: {takes})")]
    Unknown { strategy: &'static str, name: String, takes: &'static str },
    #[error("{strategy}'s {name} must be {expected}, got {value}")]
    Invalid { strategy: &'static str, name: &'static str, expected: &'static str, value: Value },
}

/// One conflict-resolution strategy. See the module docs.
pub trait Strategy: Send + Sync {
    /// The bucket name, such as `"lww-wall"`.
    fn name(&self) -> &str;

    /// What it promises (see [`Kind`]).
    fn kind(&self) -> Kind;

    /// What its stamps are made of (see [`StampKind`]).
    fn stamp_kind(&self) -> StampKind {
        StampKind::Opaque
    }

    /// Refuses values it cannot keep (only `set-union` has any); checked
    /// for a client's write and for every write received.
    fn accepts(&self, _value: &RawJson) -> Result<(), StrategyError> {
        Ok(())
    }

    /// Stamps a write a client makes at this replica. `client_context` is the
    /// context the client got from its read (`null` for a blind write).
    fn stamp(
        &self,
        state: &KeyState,
        client_context: &Value,
        clocks: &mut Clocks,
    ) -> Result<Stamped, StrategyError>;

    /// Checks a write received from a peer before anything is applied.
    fn check(&self, write: &Write) -> Result<(), StrategyError>;

    /// Lets the replica's clocks observe a write received from a peer.
    fn observe(&self, _write: &Write, _clocks: &mut Clocks) -> Result<(), StrategyError> {
        Ok(())
    }

    /// Merges a checked write into the key's state. Idempotent and
    /// commutative: any order and any repetition give the same state.
    /// Built-in strategies never fail here; a plugin can (see
    /// [`StrategyError::Plugin`]).
    fn apply(&self, state: &mut KeyState, write: &Arc<Write>) -> Result<(), StrategyError>;

    /// The context returned by a read, for the client to send back.
    fn read_context(&self, state: &KeyState) -> Result<Value, StrategyError>;

    /// Whether its writes wait for the clock before they are acknowledged
    /// (`truetime`'s commit wait).
    fn waits_for_clock(&self) -> bool {
        false
    }

    /// For a merging strategy, the one value a read returns in place of the
    /// siblings; `None` (every other kind) returns the siblings.
    fn merged(&self, _state: &KeyState) -> Result<Option<Merged>, StrategyError> {
        Ok(None)
    }

    /// What a read returns: the merged value ([`Strategy::merged`]) and the
    /// context ([`Strategy::read_context`]). One call, so that a plugin
    /// answers both with one request.
    fn read(&self, state: &KeyState) -> Result<(Option<Merged>, Value), StrategyError> {
        Ok((self.merged(state)?, self.read_context(state)?))
    }
}

/// The bucket names, in registry order.
pub const NAMES: [&str; 7] =
    ["lww-wall", "lww-hlc", "lww-lamport", "truetime", "vv", "vv-server", "set-union"];

/// What each built-in strategy does, in a line a student reads beside its name.
const ABOUT: [(&str, &str); 7] = [
    ("lww-wall", "last write wins, ordered by the wall clock of the replica that took the write"),
    ("lww-hlc", "last write wins, ordered by a hybrid logical clock (never below a stamp it has seen)"),
    ("lww-lamport", "last write wins, ordered by a Lamport counter (no real time at all)"),
    ("truetime", "last write wins by the clock plus its error bound, waiting that bound out (Spanner)"),
    ("vv", "keeps writes that never saw each other as siblings, told apart by dotted version vectors"),
    ("vv-server", "keeps siblings with one version vector per server, without dots"),
    ("set-union", "merges writes that never saw each other into the union of their sets"),
];

/// What the strategy named `name` does, in a line; a plugin's says so.
pub fn about(name: &str) -> &'static str {
    ABOUT.iter().find(|(builtin, _)| *builtin == name).map_or("a plugin strategy", |(_, about)| about)
}

/// Every strategy the lab knows, one bucket each, built with `parameters`
/// (a strategy left out takes its defaults).
pub fn registry_with(parameters: &Parameters) -> Result<Vec<Arc<dyn Strategy>>, ParameterError> {
    for (strategy, given) in parameters {
        let Some(&strategy) = NAMES.iter().find(|name| **name == strategy) else {
            return Err(ParameterError::UnknownStrategy(strategy.clone(), NAMES.join(", ")));
        };
        // Only truetime takes parameters; it checks its own below.
        if strategy != "truetime"
            && let Some(name) = given.keys().next()
        {
            return Err(ParameterError::Unknown { strategy, name: name.clone(), takes: "nothing" });
        }
    }
    let empty = serde_json::Map::new();
    let of = |name: &str| parameters.get(name).unwrap_or(&empty);
    Ok(vec![
        Arc::new(lww_wall::LwwWall),
        Arc::new(lww_hlc::LwwHlc),
        Arc::new(lww_lamport::LwwLamport),
        Arc::new(truetime::TrueTime::from_parameters(of("truetime"))?),
        Arc::new(vv::VersionVectors),
        Arc::new(vv_server::ServerVersionVectors),
        Arc::new(set_union::SetUnion),
    ])
}

/// Every strategy with its default parameters.
pub fn registry() -> Vec<Arc<dyn Strategy>> {
    registry_with(&Parameters::new()).unwrap_or_else(|_| unreachable!("the defaults are valid"))
}

/// The kind of the strategy named `bucket`, if there is one.
pub fn kind_of(bucket: &str) -> Option<Kind> {
    registry().iter().find(|strategy| strategy.name() == bucket).map(|strategy| strategy.kind())
}

/// The stamp kind of the built-in strategy named `bucket`, if there is one
/// (for histories from before stamp kinds were recorded).
pub fn stamp_kind_of(bucket: &str) -> Option<StampKind> {
    registry().iter().find(|strategy| strategy.name() == bucket).map(|strategy| strategy.stamp_kind())
}

/// Parses a JSON stamp into a strategy's own type, or says why not.
pub(crate) fn parse_stamp<T: serde::de::DeserializeOwned>(stamp: &RawJson) -> Result<T, StrategyError> {
    serde_json::from_str(stamp.text())
        .map_err(|error| StrategyError::MalformedStamp { stamp: stamp.clone(), reason: error.to_string() })
}
