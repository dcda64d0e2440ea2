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

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::Value;

use super::{Clocks, KeyState, Kind, Merged, RawJson, Stamped, Strategy, StrategyError, Write};

pub struct SetUnion;

/// The elements of a set value, as canonical JSON texts, sorted and without
/// repeats; `None` if the value is not an array.
fn elements(value: &RawJson) -> Option<Vec<Value>> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(value.text()) else { return None };
    let mut items = items;
    items.sort_by(order);
    items.dedup();
    Some(items)
}

/// Numbers by value, before anything else, which goes by its JSON text.
fn order(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.to_string().cmp(&b.to_string())),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.to_string().cmp(&b.to_string()),
    }
}

/// Whether every element of sorted `small` is in sorted `large`.
fn subset(small: &[Value], large: &[Value]) -> bool {
    let mut large = large.iter().peekable();
    small.iter().all(|item| {
        while large.next_if(|candidate| order(candidate, item) == Ordering::Less).is_some() {}
        large.next_if(|candidate| *candidate == item).is_some()
    })
}

/// Whether write `a` (with elements `a_items`) adds nothing to `b`: its set
/// is inside `b`'s, and if they are equal, `b` has the smaller write id.
fn covered_by(a: &Write, a_items: &[Value], b: &Write, b_items: &[Value]) -> bool {
    subset(a_items, b_items) && (a_items.len() < b_items.len() || (b.origin, b.seq) < (a.origin, a.seq))
}

impl Strategy for SetUnion {
    fn name(&self) -> &'static str {
        "set-union"
    }

    fn kind(&self) -> Kind {
        Kind::Merge
    }

    fn accepts(&self, value: &RawJson) -> Result<(), StrategyError> {
        match elements(value) {
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

    fn apply(&self, state: &mut KeyState, write: &Arc<Write>) {
        let Some(items) = elements(&write.value) else { return };
        if state.siblings.iter().any(|kept| kept.origin == write.origin && kept.seq == write.seq) {
            return;
        }
        let kept: Vec<(Arc<Write>, Vec<Value>)> = state
            .siblings
            .iter()
            .filter_map(|kept| Some((Arc::clone(kept), elements(&kept.value)?)))
            .collect();
        if kept.iter().any(|(other, other_items)| covered_by(write, &items, other, other_items)) {
            return;
        }
        state.siblings = kept
            .into_iter()
            .filter(|(other, other_items)| !covered_by(other, other_items, write, &items))
            .map(|(other, _)| other)
            .chain(std::iter::once(Arc::clone(write)))
            .collect();
        state.siblings.sort_by_key(|sibling| (sibling.origin, sibling.seq));
    }

    fn read_context(&self, _: &KeyState) -> Value {
        Value::Null
    }

    fn merged(&self, state: &KeyState) -> Option<Merged> {
        if state.siblings.is_empty() {
            return None;
        }
        let mut union: Vec<Value> =
            state.siblings.iter().filter_map(|write| elements(&write.value)).flatten().collect();
        union.sort_by(order);
        union.dedup();
        let ids: Vec<String> = state.siblings.iter().map(|write| write.write_id()).collect();
        Some(Merged { value: RawJson::of(&union), write_id: ids.join("+") })
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
        })
    }

    fn union(state: &KeyState) -> Value {
        SetUnion.merged(state).map_or(json!([]), |merged| merged.value.parse())
    }

    #[test]
    fn concurrent_additions_are_merged_not_dropped() {
        // DDIA Figure 5-13's shopping cart, without the siblings: two
        // clients add to the same cart at once.
        let mut cart = KeyState::default();
        SetUnion.apply(&mut cart, &write(1, 1, json!(["milk"])));
        SetUnion.apply(&mut cart, &write(2, 1, json!(["eggs"])));
        SetUnion.apply(&mut cart, &write(1, 2, json!(["milk", "flour"])));
        assert_eq!(union(&cart), json!(["eggs", "flour", "milk"]));
        assert_eq!(cart.siblings.len(), 2, "the milk-only write added nothing and is not kept");
        let merged = SetUnion.merged(&cart).unwrap();
        assert_eq!(merged.write_id, "1:2+2:1");
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
                SetUnion.apply(&mut forward, write);
            }
            let mut shuffled = KeyState::default();
            for &index in &order {
                SetUnion.apply(&mut shuffled, &writes[index % writes.len()]);
            }
            for write in writes.iter().rev() {
                SetUnion.apply(&mut shuffled, write);
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
