//! Reading values into vectors of exactly their length.
//!
//! Serde cannot know how long a JSON array is before it has read it, so it
//! grows a vector by doubling: an 11-item value would take room for 16. A
//! million-write history is mostly values, and fresh memory is what reading
//! it costs most, so this reads each array into a scratch vector first and
//! keeps an exact copy. (Stamps are held in place: see [`super::Stamp`].)

use std::cell::RefCell;

use serde::Deserializer;
use serde::de::{SeqAccess, Visitor};

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

/// The same, for a value a line may leave out.
pub fn optional_items<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u64>>, D::Error> {
    items(deserializer).map(Some)
}
