//! Reading values and stamps into vectors of exactly their length.
//!
//! Serde cannot know how long a JSON array is before it has read it, so it
//! grows a vector by doubling: an 11-item value would take room for 16, a
//! two-number stamp room for four. A million-write history is mostly values
//! and stamps, and fresh memory is what reading it costs most, so these read
//! each array into a scratch vector first and keep an exact copy.

use std::cell::RefCell;

use serde::Deserializer;
use serde::de::{SeqAccess, Visitor};
use serde_json::Value;

thread_local! {
    static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Items;

impl<'de> Visitor<'de> for Items {
    type Value = Vec<u64>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an array of item ids")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Vec<u64>, A::Error> {
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            while let Some(item) = sequence.next_element::<u64>()? {
                scratch.push(item);
            }
            Ok(scratch.to_vec())
        })
    }
}

pub fn items<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    deserializer.deserialize_seq(Items)
}

/// A stamp, its outer array (if it is one) held in exactly its length.
pub fn stamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    Ok(match <Value as serde::Deserialize>::deserialize(deserializer)? {
        Value::Array(grown) if grown.capacity() > grown.len() => {
            let mut array = Vec::with_capacity(grown.len());
            array.extend(grown);
            Value::Array(array)
        }
        other => other,
    })
}

pub fn optional_stamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    match stamp(deserializer)? {
        Value::Null => Ok(None),
        present => Ok(Some(present)),
    }
}
