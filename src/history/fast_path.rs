//! Reading the lab's own `write` and `final` lines without serde.
//!
//! A million-write history is almost all `write` lines and `final` lines,
//! and the lab's writer always lays them out the same way: fields in
//! declaration order, no spaces, integers as integers, names without
//! escapes, stamps as short arrays of integers. Serde reads them through
//! its general machinery (a field name looked up per field, a visitor per
//! value); this reads exactly that one layout with a cursor, a few times
//! faster.
//!
//! It is only a fast path. The moment a line differs from the layout in any
//! way (a field missing, moved or added, a space, an escape in a string, a
//! float, a number too large, a stamp serde would read another way) it
//! gives up and returns `None`, and the line goes through serde as before.
//! So what a line means never depends on which path read it; the tests
//! below hold the two paths to that, on written records and on damaged ones.

use compact_str::CompactString;

use super::{FinalRecord, FinalSibling, Outcome, Stamp, WriteRecord};
use crate::clock::dots::ReplicaId;

/// A `write` line as the lab writes it, else `None`; with the item of the
/// write it extends, if it is written compact (see `compact`).
pub fn write_record(line: &[u8]) -> Option<(WriteRecord, Option<u64>)> {
    let mut cursor = Cursor { bytes: line, at: 0 };
    let Opening { point, trial, bucket, key, replica } = cursor.opening(b"write")?;
    cursor.literal(b",\"item\":")?;
    let item = cursor.unsigned()?;
    let (value, extends) = if cursor.optional_literal(b",\"value\":") {
        (cursor.items()?, None)
    } else {
        cursor.literal(b",\"extends\":")?;
        let extends = cursor.unsigned()?;
        let adds = if cursor.optional_literal(b",\"adds\":") { cursor.items()? } else { Vec::new() };
        (super::compact::with_item(adds, item), Some(extends))
    };
    cursor.literal(b",\"read_siblings\":")?;
    let read_siblings = cursor.unsigned()?.try_into().ok()?;
    cursor.literal(b",\"stamp\":")?;
    let stamp = if cursor.null() { None } else { Some(cursor.stamp()?) };
    cursor.literal(b",\"write_id\":")?;
    let write_id = if cursor.null() { None } else { Some(cursor.string()?.parse().ok()?) };
    let metadata_bytes = if cursor.optional_literal(b",\"metadata_bytes\":") {
        Some(cursor.unsigned()?.try_into().ok()?)
    } else {
        None
    };
    cursor.literal(b",\"invoke_ns\":")?;
    let invoke_ns = cursor.signed()?;
    cursor.literal(b",\"complete_ns\":")?;
    let complete_ns = cursor.signed()?;
    cursor.literal(b",\"outcome\":")?;
    let outcome = match cursor.string()? {
        "ok" => Outcome::Ok,
        "fail" => Outcome::Fail,
        "unknown" => Outcome::Unknown,
        _ => return None,
    };
    cursor.end()?;
    let record = WriteRecord {
        point,
        trial,
        bucket,
        key,
        replica,
        item,
        value,
        read_siblings,
        stamp,
        write_id,
        metadata_bytes,
        invoke_ns,
        complete_ns,
        outcome,
    };
    Some((record, extends))
}

/// A `final` line as the lab writes it, else `None`.
pub fn final_record(line: &[u8]) -> Option<FinalRecord> {
    let mut cursor = Cursor { bytes: line, at: 0 };
    let Opening { point, trial, bucket, key, replica } = cursor.opening(b"final")?;
    cursor.literal(b",\"siblings\":[")?;
    let mut siblings = Vec::with_capacity(1);
    if !cursor.optional_literal(b"]") {
        loop {
            cursor.literal(b"{\"value\":")?;
            let value = cursor.items()?;
            cursor.literal(b",\"stamp\":")?;
            let stamp = if cursor.null() { Stamp::null() } else { cursor.stamp()? };
            cursor.literal(b",\"write_id\":")?;
            let write_id = cursor.string()?.parse().ok()?;
            cursor.literal(b"}")?;
            siblings.push(FinalSibling { value, stamp, write_id });
            if cursor.optional_literal(b"]") {
                break;
            }
            cursor.literal(b",")?;
        }
    }
    cursor.end()?;
    siblings.shrink_to_fit();
    Some(FinalRecord { point, trial, bucket, key, replica, siblings })
}

/// The fields a `write` and a `final` line both open with.
struct Opening {
    point: usize,
    trial: usize,
    bucket: CompactString,
    key: CompactString,
    replica: ReplicaId,
}

/// Where the reading is in a line.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// `{"type":"TAG","point":..,"trial":..,"bucket":..,"key":..,"replica":..`
    fn opening(&mut self, tag: &[u8]) -> Option<Opening> {
        self.literal(b"{\"type\":\"")?;
        self.literal(tag)?;
        self.literal(b"\",\"point\":")?;
        let point = self.unsigned()?.try_into().ok()?;
        self.literal(b",\"trial\":")?;
        let trial = self.unsigned()?.try_into().ok()?;
        self.literal(b",\"bucket\":")?;
        let bucket = self.string()?.into();
        self.literal(b",\"key\":")?;
        let key = self.string()?.into();
        self.literal(b",\"replica\":")?;
        let replica = self.unsigned()?.try_into().ok()?;
        Some(Opening { point, trial, bucket, key, replica })
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at..]
    }

    fn literal(&mut self, text: &[u8]) -> Option<()> {
        self.optional_literal(text).then_some(())
    }

    fn optional_literal(&mut self, text: &[u8]) -> bool {
        let found = self.rest().starts_with(text);
        if found {
            self.at += text.len();
        }
        found
    }

    fn null(&mut self) -> bool {
        self.optional_literal(b"null")
    }

    /// The closing brace, then nothing but JSON's whitespace (a CRLF
    /// file's carriage return, say).
    fn end(&mut self) -> Option<()> {
        self.literal(b"}")?;
        self.rest().iter().all(|byte| matches!(byte, b' ' | b'\t' | b'\n' | b'\r')).then_some(())
    }

    /// A JSON integer `0` or `[1-9][0-9]*` that fits a `u64`.
    fn unsigned(&mut self) -> Option<u64> {
        let rest = self.rest();
        let mut number: u64 = 0;
        let mut digits = 0;
        while let Some(digit) =
            rest.get(digits).and_then(|byte| byte.checked_sub(b'0')).filter(|digit| *digit < 10)
        {
            number = number.checked_mul(10)?.checked_add(u64::from(digit))?;
            digits += 1;
        }
        if digits == 0 || (rest[0] == b'0' && digits > 1) {
            return None;
        }
        self.at += digits;
        Some(number)
    }

    /// A JSON integer that fits an `i64` (but `-0`, left to serde).
    fn signed(&mut self) -> Option<i64> {
        if self.optional_literal(b"-") {
            let magnitude = self.unsigned().filter(|magnitude| *magnitude != 0)?;
            0i64.checked_sub_unsigned(magnitude)
        } else {
            self.unsigned()?.try_into().ok()
        }
    }

    /// A string with no escapes and no control characters, as UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        self.literal(b"\"")?;
        let rest = self.rest();
        let length = rest.iter().position(|byte| *byte == b'"' || *byte == b'\\' || *byte < 0x20)?;
        if rest[length] != b'"' {
            return None;
        }
        let text = std::str::from_utf8(&rest[..length]).ok()?;
        self.at += length + 1;
        Some(text)
    }

    /// An array of item ids, held at exactly its length.
    fn items(&mut self) -> Option<Vec<u64>> {
        self.literal(b"[")?;
        if self.optional_literal(b"]") {
            return Some(Vec::new());
        }
        // Most values are short: read into the stack, copied once at the end.
        let mut short = [0u64; 32];
        let mut length = 0;
        let mut long: Vec<u64> = Vec::new();
        loop {
            let item = self.unsigned()?;
            if length < short.len() {
                short[length] = item;
            } else {
                if long.is_empty() {
                    long.extend_from_slice(&short);
                }
                long.push(item);
            }
            length += 1;
            match self.rest().first() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    break;
                }
                _ => return None,
            }
        }
        Some(if long.is_empty() {
            short[..length].to_vec()
        } else {
            long.shrink_to_fit();
            long
        })
    }

    /// A stamp that is an array of at most [`Stamp::INLINE`] integers: read
    /// as serde reads it (anything else is left to serde).
    fn stamp(&mut self) -> Option<Stamp> {
        self.literal(b"[")?;
        let mut numbers = [0i64; Stamp::INLINE];
        let mut length = 0;
        if !self.optional_literal(b"]") {
            loop {
                *numbers.get_mut(length)? = self.signed()?;
                length += 1;
                if self.optional_literal(b"]") {
                    break;
                }
                self.literal(b",")?;
            }
        }
        Stamp::of_integers(&numbers[..length])
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::history::Record;
    use crate::write_id::{WriteId, WriteIds};

    /// What serde makes of a line.
    fn by_serde(line: &str) -> Option<Record> {
        serde_json::from_str::<Record>(line).ok()
    }

    /// Names as they come: plain, with escapes, with other scripts.
    fn any_name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-z0-9:-]{0,12}",
            1 => "[\"\\\\/ \t\né]{0,3}",
            1 => "\\PC{0,6}",
        ]
    }

    fn any_stamp() -> impl Strategy<Value = Value> {
        prop_oneof![
            6 => prop::collection::vec(any::<i64>(), 0..4).prop_map(|numbers| json!(numbers)),
            1 => prop::collection::vec(any::<i64>(), 4..6).prop_map(|numbers| json!(numbers)),
            1 => Just(json!([1.5, 2])),
            1 => Just(json!({"1": 2})),
            1 => Just(json!(null)),
            1 => Just(json!("text")),
        ]
    }

    fn any_write_id() -> impl Strategy<Value = WriteId> {
        (any::<u32>(), any::<u64>()).prop_map(|(origin, seq)| WriteId::new(origin, seq))
    }

    fn any_write_ids() -> impl Strategy<Value = WriteIds> {
        prop::collection::vec(any_write_id(), 1..4).prop_map(WriteIds::merged)
    }

    prop_compose! {
        fn any_write()(
            point in 0usize..5, trial in 0usize..3, bucket in any_name(), key in any_name(),
            replica in any::<u32>(), item in any::<u64>(),
            value in prop_oneof![4 => prop::collection::vec(any::<u64>(), 0..6), 1 => prop::collection::vec(any::<u64>(), 30..40)],
            read_siblings in 0usize..4,
            stamp in prop::option::of(any_stamp()), write_id in prop::option::of(any_write_id()),
            metadata_bytes in prop::option::of(0usize..500), invoke_ns in any::<i64>(),
            complete_ns in any::<i64>(), outcome in prop_oneof![Just(Outcome::Ok), Just(Outcome::Fail), Just(Outcome::Unknown)],
        ) -> Record {
            Record::Write(WriteRecord {
                point, trial, bucket: bucket.into(), key: key.into(), replica, item, value, read_siblings,
                stamp: stamp.map(Stamp::from_value).filter(|stamp| !stamp.is_null()),
                write_id, metadata_bytes, invoke_ns, complete_ns, outcome,
            })
        }
    }

    prop_compose! {
        fn any_final()(
            point in 0usize..5, bucket in any_name(), key in any_name(), replica in 0u32..4,
            siblings in prop::collection::vec(
                (prop::collection::vec(any::<u64>(), 0..5), any_stamp(), any_write_ids()), 0..3),
        ) -> Record {
            Record::Final(FinalRecord {
                point, trial: 0, bucket: bucket.into(), key: key.into(), replica,
                siblings: siblings.into_iter().map(|(value, stamp, write_id)| FinalSibling {
                    value, stamp: Stamp::from_value(stamp), write_id,
                }).collect(),
            })
        }
    }

    /// Either path's reading of a line.
    fn by_fast_path(line: &str) -> Option<Record> {
        write_record(line.as_bytes())
            .map(|(write, extends)| {
                assert_eq!(extends, None, "a whole value");
                Record::Write(write)
            })
            .or_else(|| final_record(line.as_bytes()).map(Record::Final))
    }

    /// Whether the lab's writer writes this record in the layout the fast
    /// path reads: ASCII names without escapes, short integer stamps.
    fn plain(record: &Record) -> bool {
        let name =
            |text: &str| text.bytes().all(|byte| byte.is_ascii_graphic() && byte != b'"' && byte != b'\\');
        let stamp = |stamp: &Stamp| {
            stamp.to_value().as_array().is_some_and(|numbers| {
                numbers.len() <= Stamp::INLINE && numbers.iter().all(|number| number.as_i64().is_some())
            }) || stamp.is_null()
        };
        match record {
            Record::Write(write) => {
                name(&write.bucket) && name(&write.key) && write.stamp.as_ref().is_none_or(stamp)
            }
            Record::Final(last) => {
                name(&last.bucket)
                    && name(&last.key)
                    && last.siblings.iter().all(|sibling| stamp(&sibling.stamp))
            }
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn a_written_record_reads_back_the_same_by_either_path(
            record in prop_oneof![any_write(), any_final()],
        ) {
            let line = serde_json::to_string(&record).unwrap();
            let fast = by_fast_path(&line);
            prop_assert_eq!(by_serde(&line), Some(record.clone()));
            if plain(&record) {
                prop_assert_eq!(fast.as_ref(), Some(&record), "the fast path reads the lab's own layout: {}", line);
            } else if let Some(fast) = fast {
                prop_assert_eq!(fast, record, "{}", line);
            }
        }

        #[test]
        fn a_damaged_line_means_the_same_to_both_paths_or_is_left_to_serde(
            record in prop_oneof![any_write(), any_final()],
            damage in prop::collection::vec((any::<prop::sample::Index>(), prop_oneof![
                Just(b' '), Just(b'"'), Just(b','), Just(b'0'), Just(b'9'), Just(b'-'), Just(b'.'),
                Just(b'e'), Just(b']'), Just(b'['), Just(b'}'), Just(b'\\'), Just(b'n'), any::<u8>(),
            ], 0u8..3), 1..3),
        ) {
            let mut line = serde_json::to_string(&record).unwrap().into_bytes();
            for (place, byte, how) in damage {
                let at = place.index(line.len());
                match how {
                    0 => line[at] = byte,
                    1 => line.insert(at, byte),
                    _ => { line.remove(at); }
                }
            }
            let whole = write_record(&line).filter(|(_, extends)| extends.is_none());
            if let Some(fast) = whole.map(|(write, _)| Record::Write(write)).or_else(|| final_record(&line).map(Record::Final)) {
                let text = String::from_utf8(line.clone()).expect("the fast path reads only UTF-8");
                prop_assert_eq!(by_serde(&text), Some(fast), "{}", text);
            }
        }
    }

    #[test]
    fn lines_the_fast_path_leaves_to_serde() {
        let write = r#"{"type":"write","point":0,"trial":0,"bucket":"b","key":"k","replica":1,"item":1,"value":[1],"read_siblings":0,"stamp":[5,1],"write_id":"1:1","invoke_ns":0,"complete_ns":1,"outcome":"ok"}"#;
        assert!(write_record(write.as_bytes()).is_some());
        for changed in [
            write.replace("\"point\":0", "\"point\":00"),
            write.replace("\"point\":0", "\"point\": 0"),
            write.replace("[5,1]", "[5,1,2,3]"),
            write.replace("[5,1]", "[5.0,1]"),
            write.replace("\"invoke_ns\":0", "\"invoke_ns\":-0"),
            write.replace("\"k\"", "\"\\u006b\""),
            write.replace("\"ok\"", "\"maybe\""),
            write.replace(",\"outcome\":\"ok\"}", ",\"outcome\":\"ok\",\"extra\":1}"),
            write.replace("\"item\":1", "\"item\":18446744073709551616"),
        ] {
            assert_eq!(write_record(changed.as_bytes()), None, "{changed}");
        }
        // With a trailing CR (a CRLF file) it is still the lab's own line.
        assert!(write_record(format!("{write}\r").as_bytes()).is_some());
    }
}
