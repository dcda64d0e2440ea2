//! The names a `fault` record goes under: one type, read and written in
//! one place.
//!
//! A trial's fault records say what was done to a replica and why: its
//! clock set as the spec has it (`clock`), its links set to the spec's
//! network (`links`), a scheduled fault beginning (`step`, `cut`,
//! `partition`, ... : the spec's [`FaultKind`]s), or one ending (`heal`,
//! `restore`, `resume`, `restart`). In the JSON of a history each is the
//! plain word; in the code it is a [`FaultName`], so a misspelt name does
//! not compile, and a history with a name no engine writes does not load.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kinds of fault a spec schedules (`[[fault]] kind = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A clock jumps, as an NTP reset makes it.
    Step,
    /// A clock flips back and forth (Jepsen's strobe-time).
    Strobe,
    /// A clock's offset swings to and fro, a sine.
    Wobble,
    /// Every reading of a clock is off by a different amount.
    Jitter,
    /// A leap second, stepped or smeared.
    Leap,
    /// A replica's links to every peer are cut.
    Cut,
    /// The cluster splits into groups that hear only each other.
    Partition,
    /// What a replica sends is delayed, lost, sent twice or reordered.
    Link,
    /// A replica's process stops (SIGSTOP) and later resumes.
    Pause,
    /// A replica's process is killed (SIGKILL) and restarted.
    Crash,
}

impl FaultKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [FaultKind; 10] = [
        Self::Step,
        Self::Strobe,
        Self::Wobble,
        Self::Jitter,
        Self::Leap,
        Self::Cut,
        Self::Partition,
        Self::Link,
        Self::Pause,
        Self::Crash,
    ];

    /// The kind's name, as a spec and a history write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::Strobe => "strobe",
            Self::Wobble => "wobble",
            Self::Jitter => "jitter",
            Self::Leap => "leap",
            Self::Cut => "cut",
            Self::Partition => "partition",
            Self::Link => "link",
            Self::Pause => "pause",
            Self::Crash => "crash",
        }
    }

    /// Whether the fault changes a clock (and so shows on the offsets plot).
    pub fn is_clock_fault(self) -> bool {
        matches!(self, Self::Step | Self::Strobe | Self::Wobble | Self::Jitter | Self::Leap)
    }

    /// The name of the record that ends a fault of this kind, for kinds
    /// that last a while and end on their own record.
    pub fn ending(self) -> Option<FaultName> {
        match self {
            Self::Cut | Self::Partition => Some(FaultName::Heal),
            Self::Link => Some(FaultName::Restore),
            Self::Pause => Some(FaultName::Resume),
            Self::Crash => Some(FaultName::Restart),
            Self::Step | Self::Strobe | Self::Wobble | Self::Jitter | Self::Leap => None,
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What a `fault` record did, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultName {
    /// A replica's clock set as the spec has it: at the start of a trial,
    /// and again after a restart.
    Clock,
    /// A link set to the spec's `[network]` faults: at the start, and
    /// again after a restart.
    Links,
    /// A scheduled fault beginning.
    Fault(FaultKind),
    /// A cut link mended: a cut or partition ending, or the network's
    /// faults lifted after the workload.
    Heal,
    /// A `link` fault ending: the link back to the spec's network.
    Restore,
    /// A paused process continued (SIGCONT).
    Resume,
    /// A crashed replica started again, from its durable log.
    Restart,
}

impl FaultName {
    /// The name as a history writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clock => "clock",
            Self::Links => "links",
            Self::Fault(kind) => kind.as_str(),
            Self::Heal => "heal",
            Self::Restore => "restore",
            Self::Resume => "resume",
            Self::Restart => "restart",
        }
    }

    /// The scheduled fault this record begins, if it begins one.
    pub fn kind(self) -> Option<FaultKind> {
        match self {
            Self::Fault(kind) => Some(kind),
            _ => None,
        }
    }

    /// Reads a name; `None` for a word no engine writes.
    pub fn parse(word: &str) -> Option<Self> {
        let fixed = [Self::Clock, Self::Links, Self::Heal, Self::Restore, Self::Resume, Self::Restart];
        fixed.into_iter().chain(FaultKind::ALL.map(Self::Fault)).find(|name| name.as_str() == word)
    }
}

impl From<FaultKind> for FaultName {
    fn from(kind: FaultKind) -> Self {
        Self::Fault(kind)
    }
}

impl fmt::Display for FaultName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Serialize for FaultName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FaultName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&word).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "no fault record is called {word:?} (clock, links, heal, restore, resume, restart, or a fault kind)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_as_itself_and_kinds_are_spelt_as_serde_spells_them() {
        for kind in FaultKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str(), "{kind:?}");
            let name = FaultName::from(kind);
            assert_eq!(serde_json::from_str::<FaultName>(&format!("\"{kind}\"")).unwrap(), name);
        }
        for name in ["clock", "links", "heal", "restore", "resume", "restart"] {
            let parsed: FaultName = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(serde_json::to_string(&parsed).unwrap(), format!("\"{name}\""));
        }
        let error = serde_json::from_str::<FaultName>("\"melt\"").unwrap_err().to_string();
        assert!(error.contains("\"melt\""), "{error}");
    }
}
