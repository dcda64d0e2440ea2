//! `drops.json`, written a trial at a time.
//!
//! A long run drops millions of writes, and its report needs only one
//! trial's to draw; so the runner hands each trial's drops to a
//! [`DropsWriter`] as the oracle judges them, and never holds them all. The
//! file is the one `serde_json::to_writer_pretty` makes of the whole list,
//! byte for byte (a test holds the two to that), whether written at once
//! (`clocklab analyze`, a merge) or a trial at a time (a run); with a
//! compressed history it is compressed too (`drops.json.gz`).

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use super::{DROPS_JSON, DROPS_JSON_GZ, ReportError};
use crate::analysis::DroppedWrite;
use crate::history::Sink;

/// Appends drops to a JSON list in a file of its own until it is finished.
pub struct DropsWriter {
    path: PathBuf,
    name: &'static str,
    out: BufWriter<Sink>,
    written: usize,
    /// One drop's pretty JSON, reused.
    scratch: Vec<u8>,
}

impl DropsWriter {
    /// A list begun in `dir` (under a name of its own until [`Self::finish`]),
    /// to become `drops.json`, or `drops.json.gz` if `compressed`.
    pub fn create(dir: &Path, compressed: bool) -> Result<Self, ReportError> {
        let (name, partial) = if compressed {
            (DROPS_JSON_GZ, ".drops-partial.json.gz")
        } else {
            (DROPS_JSON, ".drops-partial.json")
        };
        let path = dir.join(partial);
        let out = Sink::create(&path).map_err(|error| ReportError::Write(path.clone(), error.to_string()))?;
        Ok(Self { path, name, out: BufWriter::new(out), written: 0, scratch: Vec::new() })
    }

    /// Adds `drops` to the end of the list.
    pub fn append(&mut self, drops: &[DroppedWrite]) -> Result<(), ReportError> {
        let fail = |error: String| ReportError::Write(self.path.clone(), error);
        for drop in drops {
            self.scratch.clear();
            serde_json::to_writer_pretty(&mut self.scratch, drop).map_err(|error| fail(error.to_string()))?;
            // As the list's pretty printer puts it: one level in, after a
            // comma from the second on. (JSON strings hold no raw newline.)
            let opening: &[u8] = if self.written == 0 { b"[\n  " } else { b",\n  " };
            let mut lines = self.scratch.split(|byte| *byte == b'\n');
            let written = self.out.write_all(opening).and_then(|()| {
                if let Some(first) = lines.next() {
                    self.out.write_all(first)?;
                }
                lines.try_for_each(|line| {
                    self.out.write_all(b"\n  ")?;
                    self.out.write_all(line)
                })
            });
            written.map_err(|error| fail(error.to_string()))?;
            self.written += 1;
        }
        Ok(())
    }

    /// Removes the file begun.
    pub fn discard(self) -> Result<(), ReportError> {
        drop(self.out);
        std::fs::remove_file(&self.path)
            .map_err(|error| ReportError::Write(self.path.clone(), error.to_string()))
    }

    /// Closes the list and moves the file to `dir/drops.json` (or `.gz`).
    pub fn finish(mut self, dir: &Path) -> Result<(), ReportError> {
        let fail = |error: std::io::Error| ReportError::Write(self.path.clone(), error.to_string());
        let closing: &[u8] = if self.written == 0 { b"[]" } else { b"\n]" };
        self.out.write_all(closing).map_err(fail)?;
        self.out.into_inner().map_err(|error| fail(error.into_error()))?.finish().map_err(fail)?;
        let target = dir.join(self.name);
        std::fs::rename(&self.path, &target).map_err(|error| ReportError::Write(target, error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;
    use crate::history::{FinalRecord, FinalSibling, Outcome, Record, Stamp, WriteRecord};

    /// On each of three keys, a write that a later-stamped one overwrote.
    fn overwritten() -> Vec<Record> {
        let mut records = Vec::new();
        for key in ["a", "b", "c"] {
            for (item, stamp) in [(1, 10), (2, 20)] {
                let mut write = WriteRecord::started(0, 0, "lww-wall", key, 1, item, item as i64);
                write.stamp = Some(Stamp::from_value(serde_json::json!([stamp, 1])));
                write.write_id = Some(crate::write_id::WriteId::new(1, item));
                write.outcome = Outcome::Ok;
                records.push(Record::Write(write));
            }
            records.push(Record::Final(FinalRecord {
                point: 0,
                trial: 0,
                bucket: "lww-wall".into(),
                key: key.into(),
                replica: 1,
                siblings: vec![FinalSibling {
                    value: vec![2],
                    stamp: Stamp::from_value(serde_json::json!([20, 1])),
                    write_id: "1:2".parse().unwrap(),
                }],
            }));
        }
        records
    }

    #[test]
    fn drops_written_a_few_at_a_time_are_the_whole_list_pretty_printed() {
        let analysis = analyze(&overwritten());
        assert_eq!(analysis.drops.len(), 3);
        for drops in [&analysis.drops[..], &[]] {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = DropsWriter::create(dir.path(), false).unwrap();
            for some in drops.chunks(1) {
                writer.append(some).unwrap();
            }
            writer.append(&[]).unwrap();
            writer.finish(dir.path()).unwrap();
            let written = std::fs::read_to_string(dir.path().join(DROPS_JSON)).unwrap();
            assert_eq!(written, serde_json::to_string_pretty(drops).unwrap());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only drops.json is left");
        }
    }
}
