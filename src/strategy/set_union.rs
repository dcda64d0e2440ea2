//! `set-union`: the replica merges concurrent writes itself, by set union.
//!
//! A value here is a set, written as a JSON array. Two writes that never saw
//! each other are not a conflict to settle but two sets to merge: their
//! union holds everything both writers meant to keep. Union is idempotent,
//! commutative and associative, so replicas that have received the same
//! writes, in any order and any number of times, hold the same set: a
//! grow-only set, the simplest state-based CRDT (Shapiro, Preguiça, Baquero
//! and Zawirski, "Conflict-free Replicated Data Types", 2011). A read
//! returns one value, never siblings, and no item written is ever lost.
//!
//! The cost is the data model. It works for data that has a merge (a set of
//! items, a shopping cart that only grows), not for a register whose new
//! value should replace the old: a value that is not an array is refused
//! with 400, and nothing can be removed. DDIA chapter 5 ("Merging
//! concurrently written values") discusses why removal needs more
//! (tombstones).
//!
//! Internally the replica keeps the writes whose sets are not inside
//! another's (of two equal sets, the one with the smaller write id), and a
//! read returns their union. Each write of the lab's workload holds what it
//! read plus one item, so this is usually one or two writes.

use crate::write_id::WriteIds;
use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::Value;

use super::{Clocks, KeyState, Kind, Merged, RawJson, Stamped, Strategy, StrategyError, Write};

pub struct SetUnion;

/// The elements of a set value, sorted and without repeats.
///
/// Most sets in the lab hold item ids only (whole numbers), and these are
/// kept as numbers: parsing them into general JSON values would be most of
/// the cost of a merge. Any other array is kept as JSON values.
#[derive(Debug, Clone, PartialEq)]
enum Elements {
    Ids(Vec<u64>),
    Values(Vec<Value>),
}

impl Elements {
    /// A value's elements; `None` if the value is not an array.
    fn of(value: &RawJson) -> Option<Self> {
        if let Ok(mut ids) = serde_json::from_str::<Vec<u64>>(value.text()) {
            ids.sort_unstable();
            ids.dedup();
            return Some(Self::Ids(ids));
        }
        let Ok(Value::Array(mut items)) = serde_json::from_str::<Value>(value.text()) else { return None };
        items.sort_by(order);
        items.dedup();
        Some(Self::Values(items))
    }

    fn len(&self) -> usize {
        match self {
            Self::Ids(ids) => ids.len(),
            Self::Values(values) => values.len(),
        }
    }

    /// The elements as JSON values, in [`order`].
    fn values(&self) -> Vec<Value> {
        match self {
            Self::Ids(ids) => {
                let mut values: Vec<Value> = ids.iter().map(|&id| Value::from(id)).collect();
                values.sort_by(order);
                values
            }
            Self::Values(values) => values.clone(),
        }
    }

    /// Whether every element of `self` is in `large`.
    fn is_subset(&self, large: &Elements) -> bool {
        match (self, large) {
            (Self::Ids(small), Self::Ids(large)) => subset(small, large, Ord::cmp),
            _ => subset(&self.values(), &large.values(), order),
        }
    }
}

/// Numbers by value, before anything else, which goes by its JSON text.
fn order(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        // Equal values need no text to tell them apart (merges meet many).
        (Some(x), Some(y)) => x
            .total_cmp(&y)
            .then_with(|| if a == b { Ordering::Equal } else { a.to_string().cmp(&b.to_string()) }),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.to_string().cmp(&b.to_string()),
    }
}

/// Whether every element of `small` is in `large`, both sorted by `cmp`.
fn subset<T: PartialEq>(small: &[T], large: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> bool {
    let mut large = large.iter().peekable();
    small.iter().all(|item| {
        while large.next_if(|candidate| cmp(candidate, item) == Ordering::Less).is_some() {}
        large.next_if(|candidate| *candidate == item).is_some()
    })
}

/// Whether write `a` (with elements `a_items`) adds nothing to `b`: its set
/// is inside `b`'s, and if they are equal, `b` has the smaller write id.
fn covered_by(a: &Write, a_items: &Elements, b: &Write, b_items: &Elements) -> bool {
    a_items.is_subset(b_items) && (a_items.len() < b_items.len() || (b.origin, b.seq) < (a.origin, a.seq))
}

impl Strategy for SetUnion {
    fn name(&self) -> &str {
        "set-union"
    }

    fn kind(&self) -> Kind {
        Kind::Merge
    }

    fn stamp_kind(&self) -> super::StampKind {
        super::StampKind::Unstamped
    }

    fn accepts(&self, value: &RawJson) -> Result<(), StrategyError> {
        match Elements::of(value) {
            Some(_) => Ok(()),
            None => Err(StrategyError::BadValue {
                bucket: "set-union",
                reason: format!("it keeps sets, so a value must be a JSON array, not {}", value.text()),
            }),
        }
    }

    fn stamp(&self, _: &KeyState, client_context: &Value, _: &mut Clocks) -> Result<Stamped, StrategyError> {
        if !client_context.is_null() {
            return Err(StrategyError::MalformedContext("set-union takes no context: send null".into()));
        }
        Ok(Stamped::now(RawJson::null(), RawJson::null()))
    }

    fn check(&self, write: &Write) -> Result<(), StrategyError> {
        self.accepts(&write.value)
    }

    fn apply(&self, state: &mut KeyState, write: &Arc<Write>) -> Result<(), StrategyError> {
        let Some(items) = Elements::of(&write.value) else { return Ok(()) };
        if state.siblings.iter().any(|kept| kept.origin == write.origin && kept.seq == write.seq) {
            return Ok(());
        }
        let kept: Vec<(Arc<Write>, Elements)> = state
            .siblings
            .iter()
            .filter_map(|kept| Some((Arc::clone(kept), Elements::of(&kept.value)?)))
            .collect();
        if kept.iter().any(|(other, other_items)| covered_by(write, &items, other, other_items)) {
            return Ok(());
        }
        state.siblings = kept
            .into_iter()
            .filter(|(other, other_items)| !covered_by(other, other_items, write, &items))
            .map(|(other, _)| other)
            .chain(std::iter::once(Arc::clone(write)))
            .collect();
        state.siblings.sort_by_key(|sibling| (sibling.origin, sibling.seq));
        Ok(())
    }

    fn read_context(&self, _: &KeyState) -> Result<Value, StrategyError> {
        Ok(Value::Null)
    }

    fn merged(&self, state: &KeyState) -> Result<Option<Merged>, StrategyError> {
        if state.siblings.is_empty() {
            return Ok(None);
        }
        let sets: Vec<Elements> =
            state.siblings.iter().filter_map(|write| Elements::of(&write.value)).collect();
        let value = if sets.iter().all(|set| matches!(set, Elements::Ids(_))) {
            let mut union: Vec<u64> = Vec::with_capacity(sets.iter().map(Elements::len).sum());
            for set in &sets {
                if let Elements::Ids(ids) = set {
                    union.extend(ids);
                }
            }
            union.sort_unstable();
            union.dedup();
            RawJson::of(&union)
        } else {
            let mut union: Vec<Value> = sets.iter().flat_map(Elements::values).collect();
            union.sort_by(order);
            union.dedup();
            RawJson::of(&union)
        };
        let ids = state.siblings.iter().map(|write| write.write_id()).collect();
        Ok(Some(Merged { value, write_id: WriteIds::merged(ids) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop, prop_assert, prop_assert_eq, proptest};
    use serde_json::json;

    fn write(origin: u32, seq: u64, value: Value) -> Arc<Write> {
        Arc::new(Write {
            origin,
            seq,
            bucket: "set-union".into(),
            key: "x".into(),
            value: RawJson::of(&value),
            stamp: RawJson::null(),
            context: RawJson::null(),
            fence: None,
        })
    }

    fn union(state: &KeyState) -> Value {
        SetUnion.merged(state).unwrap().map_or(json!([]), |merged| merged.value.parse())
    }

    #[test]
    fn concurrent_additions_are_merged_not_dropped() {
        // DDIA Figure 5-13's shopping cart, without the siblings: two
        // clients add to the same cart at once.
        let mut cart = KeyState::default();
        SetUnion.apply(&mut cart, &write(1, 1, json!(["milk"]))).unwrap();
        SetUnion.apply(&mut cart, &write(2, 1, json!(["eggs"]))).unwrap();
        SetUnion.apply(&mut cart, &write(1, 2, json!(["milk", "flour"]))).unwrap();
        assert_eq!(union(&cart), json!(["eggs", "flour", "milk"]));
        assert_eq!(cart.siblings.len(), 2, "the milk-only write added nothing and is not kept");
        let merged = SetUnion.merged(&cart).unwrap().unwrap();
        assert_eq!(merged.write_id.to_string(), "1:2+2:1");
    }

    #[test]
    fn sets_of_ids_and_sets_of_anything_merge_alike() {
        let mut set = KeyState::default();
        SetUnion.apply(&mut set, &write(1, 1, json!([2, 1, 2]))).unwrap();
        SetUnion.apply(&mut set, &write(2, 1, json!([2, "x"]))).unwrap();
        assert_eq!(union(&set), json!([1, 2, "x"]));
        assert_eq!(set.siblings.len(), 2);
        // A set of anything that holds a set of ids covers it, and the other way round.
        SetUnion.apply(&mut set, &write(3, 1, json!(["x", 1, 2]))).unwrap();
        assert_eq!(set.siblings.len(), 1, "[1, 2, \"x\"] covers both");
        SetUnion.apply(&mut set, &write(1, 2, json!([1]))).unwrap();
        assert_eq!(set.siblings.len(), 1, "[1] adds nothing");
        let mut ids = KeyState::default();
        SetUnion.apply(&mut ids, &write(1, 1, json!([3, 1]))).unwrap();
        SetUnion.apply(&mut ids, &write(2, 1, json!([2]))).unwrap();
        assert_eq!(SetUnion.merged(&ids).unwrap().unwrap().value.text(), "[1,2,3]");
    }

    #[test]
    fn only_arrays_are_accepted() {
        for bad in [json!(1), json!("x"), json!({"a": 1}), json!(null)] {
            let error = SetUnion.accepts(&RawJson::of(&bad)).unwrap_err();
            assert!(error.to_string().contains("JSON array"), "{error}");
        }
        assert_eq!(SetUnion.accepts(&RawJson::of(&json!([1, "two", {"three": 3}]))), Ok(()));
        assert!(
            SetUnion
                .stamp(
                    &KeyState::default(),
                    &json!([1]),
                    &mut Clocks {
                        replica: 1,
                        physical_now: 0,
                        hlc: &mut Default::default(),
                        lamport: &mut 0,
                    }
                )
                .is_err(),
            "no context"
        );
    }

    proptest! {
        /// Any delivery order, with repeats, gives the same state, and the
        /// read holds every item of every write.
        #[test]
        fn keeps_every_item_in_any_order(
            sets in prop::collection::vec(prop::collection::vec(0u64..12, 0..6), 1..10),
            order in prop::collection::vec(0usize..100, 0..30),
        ) {
            let writes: Vec<Arc<Write>> =
                sets.iter().enumerate().map(|(n, set)| write(1 + (n % 3) as u32, n as u64 + 1, json!(set))).collect();
            let mut forward = KeyState::default();
            for write in &writes {
                SetUnion.apply(&mut forward, write).unwrap();
            }
            let mut shuffled = KeyState::default();
            for &index in &order {
                SetUnion.apply(&mut shuffled, &writes[index % writes.len()]).unwrap();
            }
            for write in writes.iter().rev() {
                SetUnion.apply(&mut shuffled, write).unwrap();
            }
            prop_assert_eq!(&forward, &shuffled);
            let held = union(&forward);
            for set in &sets {
                for item in set {
                    prop_assert!(held.as_array().unwrap().contains(&json!(item)), "{item} in {held}");
                }
            }
        }
    }
}
