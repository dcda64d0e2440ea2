//! A write's stamp as the history keeps it: numbers when it can be.
//!
//! A stamp is whatever JSON its strategy makes (a plugin's are its own), so
//! the history could hold every stamp as a [`serde_json::Value`]. But every
//! built-in last-write-wins stamp is a short array of integers
//! (`[wall_ns, replica]`, `[wall_ns, counter, replica]`, `[counter,
//! replica]`), and a long history holds a million of them: as `Value`s each
//! is a heap array of 32-byte JSON values, allocated as it is read and
//! compared element by element as JSON. [`Stamp`] keeps such a stamp as up to
//! [`Stamp::INLINE`] integers in place, with no allocation, and anything else
//! as its JSON. It writes back the same JSON it read, and its order is
//! [`compare_stamps`]' order on that JSON, so nothing the history says
//! changes with the way it is held.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A strategy's stamp on one write.
///
/// How it is held is private, and every way of making one chooses by the
/// same test, so two stamps of the same JSON are always equal.
#[derive(Clone, PartialEq)]
pub struct Stamp(Held);

#[derive(Clone, PartialEq)]
enum Held {
    /// A JSON array of at most [`Stamp::INLINE`] integers, held as numbers.
    Integers(Integers),
    /// Any other JSON: longer arrays, other numbers, objects, strings, null.
    Json(Box<Value>),
}

/// A short array of integers, in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Integers {
    length: Length,
    numbers: [i64; Stamp::INLINE],
}

/// How many of [`Integers::numbers`] are the stamp's (a type of its own, so
/// that `Stamp` and `Option<Stamp>` take no room for their tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Length {
    Zero,
    One,
    Two,
    Three,
}

impl Length {
    const ALL: [Length; Stamp::INLINE + 1] = [Length::Zero, Length::One, Length::Two, Length::Three];
}

impl Integers {
    fn as_slice(&self) -> &[i64] {
        &self.numbers[..self.length as usize]
    }

    fn of(numbers: &[i64]) -> Option<Self> {
        let length = *Length::ALL.get(numbers.len())?;
        let mut inline = [0; Stamp::INLINE];
        inline[..numbers.len()].copy_from_slice(numbers);
        Some(Self { length, numbers: inline })
    }
}

impl Stamp {
    /// The most integers a stamp holds in place: enough for every built-in's.
    pub const INLINE: usize = 3;

    /// The stamp JSON `value` is.
    pub fn from_value(value: Value) -> Self {
        let integers = value.as_array().and_then(|array| {
            let numbers: Option<Vec<i64>> = array.iter().map(Value::as_i64).collect();
            Integers::of(&numbers?)
        });
        match integers {
            Some(integers) => Stamp::integers(integers),
            None => Stamp::json(value),
        }
    }

    fn integers(integers: Integers) -> Self {
        Stamp(Held::Integers(integers))
    }

    fn json(value: Value) -> Self {
        Stamp(Held::Json(Box::new(value)))
    }

    /// The stamp that is these integers, if they fit in place.
    pub(super) fn of_integers(numbers: &[i64]) -> Option<Self> {
        Integers::of(numbers).map(Stamp::integers)
    }

    /// The stamp in JSON `text`; text that is not JSON reads as null (a
    /// replica's answers are JSON by construction).
    pub fn parse(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| Stamp::null())
    }

    /// The JSON null: the stamp of a write that has none (a merged value).
    pub fn null() -> Self {
        Stamp::json(Value::Null)
    }

    /// The stamp's numbers, when it is a short array of integers (every
    /// built-in last-write-wins stamp is).
    pub fn as_integers(&self) -> Option<&[i64]> {
        match &self.0 {
            Held::Integers(integers) => Some(integers.as_slice()),
            Held::Json(_) => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.0, Held::Json(value) if value.is_null())
    }

    /// The stamp as JSON.
    pub fn to_value(&self) -> Value {
        self.as_value().into_owned()
    }

    fn as_value(&self) -> Cow<'_, Value> {
        match self {
            Stamp(Held::Integers(integers)) => Cow::Owned(Value::from(integers.as_slice())),
            Stamp(Held::Json(value)) => Cow::Borrowed(value),
        }
    }

    /// The last-write-wins order of two stamps: [`compare_stamps`] on
    /// their JSON, without the JSON when both are integers.
    pub fn order(&self, other: &Stamp) -> Ordering {
        match (self, other) {
            // Element by element, then the shorter first: as compare_stamps.
            (Stamp(Held::Integers(left)), Stamp(Held::Integers(right))) => {
                left.as_slice().cmp(right.as_slice())
            }
            _ => compare_stamps(&self.as_value(), &other.as_value()),
        }
    }
}

impl From<Value> for Stamp {
    fn from(value: Value) -> Self {
        Stamp::from_value(value)
    }
}

/// Shown as its JSON, which is how every message and test names a stamp.
impl fmt::Debug for Stamp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.as_value())
    }
}

/// Compares two stamps as JSON: arrays element by element, numbers
/// numerically. A last-write-wins stamp is an array, and its order element
/// by element is the strategy's order (docs/design.md, "Strategies").
pub fn compare_stamps(left: &Value, right: &Value) -> Ordering {
    match (left, right) {
        (Value::Array(left), Value::Array(right)) => {
            for (a, b) in left.iter().zip(right) {
                let order = compare_stamps(a, b);
                if order != Ordering::Equal {
                    return order;
                }
            }
            left.len().cmp(&right.len())
        }
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => match (a.as_u64(), b.as_u64()) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => a.as_f64().unwrap_or(0.0).total_cmp(&b.as_f64().unwrap_or(0.0)),
            },
        },
        _ => left.to_string().cmp(&right.to_string()),
    }
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Stamp(Held::Integers(integers)) => integers.as_slice().serialize(serializer),
            Stamp(Held::Json(value)) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StampVisitor)
    }
}

/// Reads an array element by element, keeping integers in place while they
/// fit, and everything else as JSON.
struct StampVisitor;

impl<'de> Visitor<'de> for StampVisitor {
    type Value = Stamp;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a stamp (any JSON)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Stamp, A::Error> {
        let mut numbers = [0i64; Stamp::INLINE];
        let mut length = 0;
        let mut spilled: Vec<Value> = Vec::new();
        while let Some(element) = sequence.next_element::<Value>()? {
            match element.as_i64() {
                Some(number) if spilled.is_empty() && length < Stamp::INLINE => {
                    numbers[length] = number;
                    length += 1;
                }
                _ => {
                    if spilled.is_empty() {
                        spilled.extend(numbers[..length].iter().map(|&number| Value::from(number)));
                    }
                    spilled.push(element);
                }
            }
        }
        Ok(match Integers::of(&numbers[..length]).filter(|_| spilled.is_empty()) {
            Some(integers) => Stamp::integers(integers),
            None => {
                spilled.shrink_to_fit();
                Stamp::json(Value::Array(spilled))
            }
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Stamp, A::Error> {
        let value = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(Stamp::json(value))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Stamp, E> {
        Ok(Stamp::json(Value::Bool(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Stamp, E> {
        Ok(Stamp::json(Value::from(value)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Stamp, E> {
        Ok(Stamp::json(Value::from(value)))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Stamp, E> {
        Ok(Stamp::json(Value::from(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Stamp, E> {
        Ok(Stamp::json(Value::from(value)))
    }

    fn visit_unit<E>(self) -> Result<Stamp, E> {
        Ok(Stamp::null())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn built_in_stamps_are_held_as_numbers_and_the_rest_as_json() {
        for (text, inline) in [
            ("[1700000000000000000,2]", true),
            ("[5,0,3]", true),
            ("[]", true),
            ("[1,2,3,4]", false),
            ("[1.5,2]", false),
            ("[18446744073709551615,1]", false),
            ("[1,\"two\"]", false),
            ("{\"1\":3}", false),
            ("7", false),
            ("null", false),
        ] {
            let stamp: Stamp = serde_json::from_str(text).unwrap();
            assert_eq!(matches!(stamp.0, Held::Integers(_)), inline, "{text}");
            assert_eq!(serde_json::to_string(&stamp).unwrap(), text, "written back as read");
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(Stamp::from_value(value.clone()), stamp, "{text}: one stamp, however made");
            assert_eq!(stamp.to_value(), value);
        }
        assert_eq!(std::mem::size_of::<Stamp>(), std::mem::size_of::<Option<Stamp>>());
        assert_eq!(std::mem::size_of::<Stamp>(), 32);
    }

    /// Stamps: integer arrays short and long, and a few other JSON shapes.
    fn any_stamp() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::collection::vec(-3i64..3, 0..5).prop_map(|numbers| json!(numbers)),
            prop::collection::vec(prop_oneof![Just(json!(1.5)), Just(json!(u64::MAX)), Just(json!(2))], 0..3)
                .prop_map(Value::Array),
            Just(json!(null)),
            Just(json!({"a": 1})),
            (0i64..3).prop_map(|number| json!(number)),
        ]
    }

    proptest! {
        #[test]
        fn the_order_is_compare_stamps_on_the_json(left in any_stamp(), right in any_stamp()) {
            let (a, b) = (Stamp::from_value(left.clone()), Stamp::from_value(right.clone()));
            prop_assert_eq!(a.order(&b), compare_stamps(&left, &right));
        }
    }
}
