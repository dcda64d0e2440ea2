//! One step of a scenario: what happens, when, and what the teacher says.
//!
//! A scenario file writes each step as one flat `[[step]]` table with an
//! `action` and the fields that action takes. It is read whole and turned
//! into a [`Step`] holding one [`Action`] variant with exactly its fields,
//! so a write without a key, or a replication with a `value`, is refused as
//! the file is read, naming the step's action and the field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::dots::ReplicaId;

/// One step: at `at_ms` of true time from the story's start, `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StepTable", into = "StepTable")]
pub struct Step {
    pub at_ms: f64,
    /// What the teacher says at this step.
    pub say: String,
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A write of `value` to `key` on `replica`: blind, or, with a
    /// `client`, with the context of that client's last read of the key
    /// (the client then reads the key again, as a client told the new state
    /// with each answer).
    Write { replica: ReplicaId, key: String, value: Value, client: Option<String> },
    /// Read `key` on `replica`, write the largest number read plus one,
    /// with the read's context.
    Increment { replica: ReplicaId, key: String, client: Option<String> },
    /// Read `key` on `replica` and write back the items read (a value is a
    /// set of numbers here, as in the lab's workload) plus one new item,
    /// numbered by the story's `add` steps (1, 2, ...), with the read's
    /// context.
    Add { replica: ReplicaId, key: String },
    /// Deliver what `to` lacks from `from`.
    Replicate { from: ReplicaId, to: ReplicaId },
    /// Set `replica`'s clock offset to `offset_ms`.
    Clock { replica: ReplicaId, offset_ms: f64 },
    /// Play the `steps` steps before this one `times` more times, each copy
    /// a millisecond after the last step (so that a file need not spell out
    /// a hundred writes).
    Repeat { steps: usize, times: usize },
}

/// The actions, as a file names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Write,
    Increment,
    Add,
    Replicate,
    Clock,
    Repeat,
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::Write { .. } => ActionKind::Write,
            Self::Increment { .. } => ActionKind::Increment,
            Self::Add { .. } => ActionKind::Add,
            Self::Replicate { .. } => ActionKind::Replicate,
            Self::Clock { .. } => ActionKind::Clock,
            Self::Repeat { .. } => ActionKind::Repeat,
        }
    }

    /// The key it writes, if it writes one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Write { key, .. } | Self::Increment { key, .. } | Self::Add { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The replica it happens on, if one.
    pub fn replica(&self) -> Option<ReplicaId> {
        match self {
            Self::Write { replica, .. }
            | Self::Increment { replica, .. }
            | Self::Add { replica, .. }
            | Self::Clock { replica, .. } => Some(*replica),
            Self::Replicate { .. } | Self::Repeat { .. } => None,
        }
    }
}

/// A `[[step]]` table's flat shape, as files write it and the page reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepTable {
    at_ms: f64,
    action: ActionKind,
    say: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replica: Option<ReplicaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<ReplicaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<ReplicaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steps: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<usize>,
}

impl TryFrom<StepTable> for Step {
    type Error = String;

    fn try_from(table: StepTable) -> Result<Self, String> {
        let kind = table.action;
        let name = serde_json::to_value(kind).ok().and_then(|name| name.as_str().map(str::to_string));
        let name = name.unwrap_or_default();
        let given = [
            ("replica", table.replica.is_some()),
            ("key", table.key.is_some()),
            ("value", table.value.is_some()),
            ("from", table.from.is_some()),
            ("to", table.to.is_some()),
            ("offset_ms", table.offset_ms.is_some()),
            ("client", table.client.is_some()),
            ("steps", table.steps.is_some()),
            ("times", table.times.is_some()),
        ];
        let takes: &[&str] = match kind {
            ActionKind::Write => &["replica", "key", "value", "client"],
            ActionKind::Increment => &["replica", "key", "client"],
            ActionKind::Add => &["replica", "key"],
            ActionKind::Replicate => &["from", "to"],
            ActionKind::Clock => &["replica", "offset_ms"],
            ActionKind::Repeat => &["steps", "times"],
        };
        if let Some((field, _)) = given.iter().find(|(field, given)| *given && !takes.contains(field)) {
            return Err(format!("a {name} step takes no `{field}` (it takes {})", takes.join(", ")));
        }
        let needs = |field: &str| format!("a {name} step needs `{field}`");
        let action = match kind {
            ActionKind::Write => Action::Write {
                replica: table.replica.ok_or_else(|| needs("replica"))?,
                key: table.key.ok_or_else(|| needs("key"))?,
                value: table.value.ok_or_else(|| needs("value"))?,
                client: table.client,
            },
            ActionKind::Increment => Action::Increment {
                replica: table.replica.ok_or_else(|| needs("replica"))?,
                key: table.key.ok_or_else(|| needs("key"))?,
                client: table.client,
            },
            ActionKind::Add => Action::Add {
                replica: table.replica.ok_or_else(|| needs("replica"))?,
                key: table.key.ok_or_else(|| needs("key"))?,
            },
            ActionKind::Replicate => Action::Replicate {
                from: table.from.ok_or_else(|| needs("from"))?,
                to: table.to.ok_or_else(|| needs("to"))?,
            },
            ActionKind::Clock => Action::Clock {
                replica: table.replica.ok_or_else(|| needs("replica"))?,
                offset_ms: table.offset_ms.ok_or_else(|| needs("offset_ms"))?,
            },
            ActionKind::Repeat => Action::Repeat {
                steps: table.steps.ok_or_else(|| needs("steps"))?,
                times: table.times.ok_or_else(|| needs("times"))?,
            },
        };
        Ok(Step { at_ms: table.at_ms, say: table.say, action })
    }
}

impl From<Step> for StepTable {
    fn from(step: Step) -> Self {
        let mut table = StepTable {
            at_ms: step.at_ms,
            action: step.action.kind(),
            say: step.say,
            replica: step.action.replica(),
            key: step.action.key().map(str::to_string),
            value: None,
            from: None,
            to: None,
            offset_ms: None,
            client: None,
            steps: None,
            times: None,
        };
        match step.action {
            Action::Write { value, client, .. } => (table.value, table.client) = (Some(value), client),
            Action::Increment { client, .. } => table.client = client,
            Action::Add { .. } => {}
            Action::Replicate { from, to } => (table.from, table.to) = (Some(from), Some(to)),
            Action::Clock { offset_ms, .. } => table.offset_ms = Some(offset_ms),
            Action::Repeat { steps, times } => (table.steps, table.times) = (Some(steps), Some(times)),
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(fields: &str) -> Result<Step, String> {
        toml::from_str(&format!("at_ms = 1\nsay = 'a line'\n{fields}")).map_err(|error| error.to_string())
    }

    #[test]
    fn each_action_takes_its_own_fields_and_needs_them() {
        let write = step("action = 'write'\nreplica = 2\nkey = 'x'\nvalue = 1").expect("a write");
        let expected = Action::Write { replica: 2, key: "x".into(), value: Value::from(1), client: None };
        assert_eq!(write.action, expected);
        assert!(step("action = 'write'\nreplica = 2\nvalue = 1").unwrap_err().contains("needs `key`"));
        let stray = step("action = 'replicate'\nfrom = 1\nto = 2\nvalue = 3").unwrap_err();
        assert!(stray.contains("takes no `value`"), "{stray}");
        assert!(step("action = 'clock'\nreplica = 1").unwrap_err().contains("offset_ms"));
        assert!(step("action = 'fly'").is_err());
        assert!(step("action = 'repeat'\nsteps = 1\ntimes = 2\ncolour = 'red'").is_err(), "unknown fields");
        // The page reads a step flat, as the file wrote it.
        let json = serde_json::to_value(&write).expect("as JSON");
        assert_eq!(
            json,
            serde_json::json!({"at_ms": 1.0, "action": "write", "say": "a line", "replica": 2, "key": "x", "value": 1})
        );
    }
}
