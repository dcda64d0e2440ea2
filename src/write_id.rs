//! A write's name, `origin:seq`, and the names a merged value stands for.
//!
//! Every write a replica accepts is named by the replica (its *origin*) and
//! its place in that replica's log (`seq`, from 1): `3:17` is replica 3's
//! seventeenth write. The pair is the write's dot (`clock::dots::Dot`):
//! unique in a trial and a bucket, and the last tie-breaker of
//! last-write-wins (two stamps alike, the greater `origin:seq`, as numbers,
//! wins). A value merged from several writes (set union) stands for all of
//! them: `1:2+2:1`. The text form is what the HTTP API, the plugin
//! protocol and the history carry; in the code a name is a [`WriteId`] or
//! [`WriteIds`], read from text in one place, here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::dots::ReplicaId;

/// One write's name: `origin:seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId {
    /// The replica that accepted it from a client.
    pub origin: ReplicaId,
    /// Its place in the origin's log, from 1.
    pub seq: u64,
}

/// Text that is not a write's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a write id (origin:seq, as 3:17, or several joined by +)")]
pub struct NotAWriteId(pub String);

impl WriteId {
    pub fn new(origin: ReplicaId, seq: u64) -> Self {
        Self { origin, seq }
    }
}

impl fmt::Display for WriteId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.origin, self.seq)
    }
}

impl FromStr for WriteId {
    type Err = NotAWriteId;

    fn from_str(text: &str) -> Result<Self, NotAWriteId> {
        let fail = || NotAWriteId(text.to_string());
        let (origin, seq) = text.split_once(':').ok_or_else(fail)?;
        let number = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit()) && !part.is_empty();
        if !(number(origin) && number(seq)) {
            return Err(fail());
        }
        Ok(Self { origin: origin.parse().map_err(|_| fail())?, seq: seq.parse().map_err(|_| fail())? })
    }
}

/// The writes a value stands for: one, or (merged) several, in the order
/// the merge listed them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WriteIds {
    One(WriteId),
    Merged(Box<[WriteId]>),
}

impl WriteIds {
    /// The writes merged into one value, in their order (one alone is itself).
    ///
    /// A merge of nothing is not a value; it stands for the write `0:0`,
    /// which no replica makes.
    pub fn merged(ids: Vec<WriteId>) -> Self {
        match ids.as_slice() {
            [] => Self::One(WriteId::new(0, 0)),
            [one] => Self::One(*one),
            _ => Self::Merged(ids.into_boxed_slice()),
        }
    }

    /// Every write the value stands for.
    pub fn as_slice(&self) -> &[WriteId] {
        match self {
            Self::One(id) => std::slice::from_ref(id),
            Self::Merged(ids) => ids,
        }
    }

    /// The one write, if the value is not a merge.
    pub fn single(&self) -> Option<WriteId> {
        match self {
            Self::One(id) => Some(*id),
            Self::Merged(_) => None,
        }
    }

    pub fn contains(&self, id: WriteId) -> bool {
        self.as_slice().contains(&id)
    }

    /// The first write it stands for: a merged value orders by it.
    pub fn first(&self) -> WriteId {
        self.as_slice()[0]
    }
}

impl From<WriteId> for WriteIds {
    fn from(id: WriteId) -> Self {
        Self::One(id)
    }
}

impl fmt::Display for WriteIds {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, id) in self.as_slice().iter().enumerate() {
            if index > 0 {
                formatter.write_str("+")?;
            }
            write!(formatter, "{id}")?;
        }
        Ok(())
    }
}

impl FromStr for WriteIds {
    type Err = NotAWriteId;

    fn from_str(text: &str) -> Result<Self, NotAWriteId> {
        if !text.contains('+') {
            return text.parse().map(Self::One);
        }
        let ids = text.split('+').map(str::parse).collect::<Result<Vec<WriteId>, _>>();
        ids.map(Self::merged).map_err(|_| NotAWriteId(text.to_string()))
    }
}

/// Both serialize as their text and read from it.
macro_rules! as_text {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

as_text!(WriteId);
as_text!(WriteIds);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_reads_back_as_itself_and_anything_else_is_refused() {
        let id: WriteId = "3:17".parse().expect("a write id");
        assert_eq!(id, WriteId::new(3, 17));
        assert_eq!(id.to_string(), "3:17");
        for bad in ["", "3", "3:", ":17", "3:17:1", "a:1", "1:-2", " 1:2", "1:2 "] {
            assert!(bad.parse::<WriteId>().is_err(), "{bad:?}");
        }
        let merged: WriteIds = "1:2+2:1".parse().expect("merged ids");
        assert_eq!(merged.as_slice(), [WriteId::new(1, 2), WriteId::new(2, 1)]);
        assert_eq!(merged.to_string(), "1:2+2:1");
        assert_eq!("4:1".parse::<WriteIds>().expect("one").single(), Some(WriteId::new(4, 1)));
        assert!("1:2+".parse::<WriteIds>().is_err());
        assert_eq!(serde_json::to_string(&merged).unwrap(), "\"1:2+2:1\"");
        assert_eq!(serde_json::from_str::<WriteId>("\"5:6\"").unwrap(), WriteId::new(5, 6));
    }

    #[test]
    fn names_order_as_numbers_not_as_text() {
        assert!(WriteId::new(2, 9) < WriteId::new(2, 10));
        assert!(WriteId::new(2, 10) < WriteId::new(10, 1));
    }
}
