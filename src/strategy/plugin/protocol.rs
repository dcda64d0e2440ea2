//! The plugin protocol's messages: newline-delimited JSON, one request, one
//! answer, in order (the worked transcript is in docs/design.md, "Plugin
//! strategies").
//!
//! Requests are built here from the replica's own types; answers are parsed
//! into small structs that deny what they do not expect, so a plugin that
//! answers the wrong thing hears about it at once rather than corrupting a
//! bucket later. Stamps, contexts and values stay JSON text
//! ([`RawJson`]): the plugin defines them, and the replica stores and ships
//! them exactly as it does a built-in strategy's.

use crate::write_id::WriteId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::strategy::{Kind, RawJson, Write};

/// One write, as a plugin sees it.
#[derive(Debug, Serialize)]
pub struct WireWrite<'a> {
    /// `"origin:seq"`, the name `apply` answers use.
    pub id: WriteId,
    pub origin: ReplicaId,
    pub seq: u64,
    pub value: &'a RawJson,
    pub stamp: &'a RawJson,
    pub context: &'a RawJson,
}

impl<'a> From<&'a Write> for WireWrite<'a> {
    fn from(write: &'a Write) -> Self {
        Self {
            id: write.write_id(),
            origin: write.origin,
            seq: write.seq,
            value: &write.value,
            stamp: &write.stamp,
            context: &write.context,
        }
    }
}

/// What the replica asks. Every request is one line of JSON with a `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request<'a> {
    /// The first request, once per process.
    Init { replica: ReplicaId, replicas: &'a [ReplicaId], parameters: &'a serde_json::Map<String, Value> },
    /// Stamp a write a client makes at this replica.
    Stamp {
        /// This replica's physical clock now, ns since the epoch (it may lie).
        physical_ns: Nanos,
        /// The context the client got from its read (`null` for a blind write).
        client_context: &'a Value,
        /// The key's surviving writes at this replica.
        siblings: Vec<WireWrite<'a>>,
    },
    /// A write arrived from a peer (only for plugins that asked to observe).
    Observe { physical_ns: Nanos, write: WireWrite<'a> },
    /// Merge `write` into the key's siblings.
    Apply { siblings: Vec<WireWrite<'a>>, write: WireWrite<'a> },
    /// A client reads the key.
    Read { siblings: Vec<WireWrite<'a>> },
}

impl Request<'_> {
    /// The request's `type`, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Init { .. } => "init",
            Self::Stamp { .. } => "stamp",
            Self::Observe { .. } => "observe",
            Self::Apply { .. } => "apply",
            Self::Read { .. } => "read",
        }
    }
}

/// The answer to `init`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitAnswer {
    /// The bucket's name.
    pub name: String,
    pub kind: Kind,
    /// Whether to send `observe` requests (a logical clock needs them).
    #[serde(default)]
    pub observes: bool,
}

/// The answer to `stamp`: `stamp` (with `context` and `acknowledge_at_ns`
/// if it likes), or `refuse` alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StampAnswer {
    pub stamp: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    pub context: Option<Box<serde_json::value::RawValue>>,
    /// Do not acknowledge before the physical clock reads this (commit wait).
    #[serde(default)]
    pub acknowledge_at_ns: Option<Nanos>,
    /// Why the write is refused; the client gets it with a 400.
    #[serde(default)]
    pub refuse: Option<String>,
}

/// The answer to `observe`: an empty object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveAnswer {}

/// The answer to `apply`: the ids of the writes that survive, among the
/// siblings sent and the new write.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyAnswer {
    pub keep: Vec<String>,
}

/// The answer to `read`: the context for the client to send back, and for
/// a merge plugin the one value the read returns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadAnswer {
    #[serde(default)]
    pub context: Value,
    #[serde(default)]
    pub value: Option<Box<serde_json::value::RawValue>>,
}
