//! Conflict resolution: what a replica does when two writes meet.
//!
//! In multi-leader replication (DDIA chapter 5, "Handling Write Conflicts")
//! every replica accepts writes and ships them to the others, so the same key
//! can be written in two places before either hears of the other. Every
//! replica must then settle on the same outcome, whatever order the writes
//! arrive in and however often. A [`Strategy`] is one way of settling it:
//!
//! | bucket     | keeps                                  | orders writes by            |
//! |------------|----------------------------------------|-----------------------------|
//! | `lww-wall` | one write, the "latest"                | the writer's physical clock |
//! | `lww-hlc`  | one write, the "latest"                | a hybrid logical clock      |
//! | `vv`       | every write no later write has read    | dotted version vectors      |
//!
//! A strategy sees one key at a time: a [`KeyState`] holding the surviving
//! writes (siblings). It stamps new writes made at this replica and merges
//! writes from anywhere into the state. `apply` must be idempotent and
//! commutative: replication delivers at least once, in no guaranteed order,
//! and replicas converge only if every order gives the same state.
//!
//! Adding a strategy is one new file and one line in [`registry`].

pub mod lww;
pub mod lww_hlc;
pub mod lww_wall;
pub mod vv;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::clock::Nanos;
use crate::clock::dots::{DotSet, ReplicaId};
use crate::clock::hlc::Hlc;

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
}

impl Write {
    /// The write's name in the API and the history: `"origin:seq"`.
    pub fn write_id(&self) -> String {
        format!("{}:{}", self.origin, self.seq)
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
    /// The writes that survive, oldest first: one for LWW, any number for vv.
    pub siblings: Vec<Arc<Write>>,
    /// The dots of every write this key has seen (vv only; empty for LWW).
    pub seen: DotSet,
}

/// What a replica's clocks look like to a strategy at one instant.
pub struct Clocks<'a> {
    /// The replica making or receiving the write.
    pub replica: ReplicaId,
    /// Its physical clock's reading now.
    pub physical_now: Nanos,
    /// Its hybrid logical clock.
    pub hlc: &'a mut Hlc,
}

/// A new write's stamp and the context it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    pub stamp: RawJson,
    pub context: RawJson,
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
}

/// One conflict-resolution strategy. See the module docs.
pub trait Strategy: Send + Sync {
    /// The bucket name, such as `"lww-wall"`.
    fn name(&self) -> &'static str;

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
    fn observe(&self, _write: &Write, _clocks: &mut Clocks) {}

    /// Merges a checked write into the key's state. Idempotent and
    /// commutative: any order and any repetition give the same state.
    fn apply(&self, state: &mut KeyState, write: &Arc<Write>);

    /// The context returned by a read, for the client to send back.
    fn read_context(&self, state: &KeyState) -> Value;
}

/// Every strategy the lab knows, one bucket each.
pub fn registry() -> Vec<Arc<dyn Strategy>> {
    vec![Arc::new(lww_wall::LwwWall), Arc::new(lww_hlc::LwwHlc), Arc::new(vv::VersionVectors)]
}

/// The bucket names, in registry order.
pub fn bucket_names() -> Vec<&'static str> {
    registry().iter().map(|strategy| strategy.name()).collect()
}

/// Parses a JSON stamp into a strategy's own type, or says why not.
pub(crate) fn parse_stamp<T: serde::de::DeserializeOwned>(stamp: &RawJson) -> Result<T, StrategyError> {
    serde_json::from_str(stamp.text())
        .map_err(|error| StrategyError::MalformedStamp { stamp: stamp.clone(), reason: error.to_string() })
}
