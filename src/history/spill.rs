//! A trial's writes on disk, as it runs.
//!
//! A long trial makes more write records than are worth holding: a 320 s
//! simulated trial of the skew workload makes nearly a million. Its writes
//! cannot be judged as they come, since every key is judged against the
//! final states read when the trial ends. So once a trial has made
//! [`SPILL_AFTER_WRITES`] of them, its engine writes them to a temporary
//! file instead: a [`WriteSpill`], whose lines are exactly the lines the
//! run's history will hold (the same compact form, decided from the same
//! trial's writes, see `compact`), with a count of the writes per key.
//! The runner then copies those lines into the history
//! ([`super::HistoryWriter::append_lines`]), and the oracle judges them a
//! range of keys at a time (`analysis::Judge::trial_spilled`). The file is
//! anonymous: the system removes it when it is closed, whatever happens.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom};

use super::compact::Encoder;
use super::writer::write_line;
use super::{Record, WriteRecord};

/// Write records a trial holds in memory before its engine spills them to
/// disk: about 60 MB of them (a record with its value averages some 600
/// bytes). Below it, a trial is held and judged whole, as before.
pub const SPILL_AFTER_WRITES: usize = 100_000;

/// A `(bucket, key)`, as the history names a key.
pub type BucketKey = (String, String);

/// A trial's writes being written to disk. See the module docs.
pub struct WriteSpill {
    file: BufWriter<File>,
    encoder: Encoder,
    lines: usize,
    counts: Counts,
}

/// Writes per key: by bucket, then key, in the order keys are judged.
pub type Counts = BTreeMap<String, BTreeMap<String, usize>>;

impl WriteSpill {
    /// An empty spill, in a temporary file.
    pub fn new() -> std::io::Result<Self> {
        let file = BufWriter::new(tempfile::tempfile()?);
        Ok(Self { file, encoder: Encoder::default(), lines: 0, counts: BTreeMap::new() })
    }

    /// Writes the trial's next write, in history order.
    pub fn push(&mut self, write: WriteRecord) -> std::io::Result<()> {
        let keys = match self.counts.get_mut(write.bucket.as_str()) {
            Some(keys) => keys,
            None => self.counts.entry(write.bucket.to_string()).or_default(),
        };
        match keys.get_mut(write.key.as_str()) {
            Some(count) => *count += 1,
            None => drop(keys.insert(write.key.to_string(), 1)),
        }
        self.lines += 1;
        write_line(&mut self.encoder, &mut self.file, &Record::Write(write))
    }

    /// The writes written, to be read back.
    pub fn finish(self) -> std::io::Result<SpilledWrites> {
        let file = self.file.into_inner().map_err(|error| error.into_error())?;
        Ok(SpilledWrites { file, lines: self.lines, counts: self.counts })
    }
}

/// A trial's spilled writes: history lines in a temporary file.
#[derive(Debug)]
pub struct SpilledWrites {
    file: File,
    /// How many writes (lines) it holds.
    pub lines: usize,
    /// How many writes each key has.
    pub counts: Counts,
}

impl SpilledWrites {
    /// Copies every line, as written, to `out`.
    pub fn copy_to(&mut self, out: &mut (impl std::io::Write + ?Sized)) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut self.file, out).map(drop)
    }

    /// Calls `each` with every line in order, without its newline.
    pub fn for_each_line<E: From<std::io::Error>>(
        &mut self,
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.file.seek(SeekFrom::Start(0))?;
        let mut reader = BufReader::new(&self.file);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            each(line.strip_suffix(b"\n").unwrap_or(&line))?;
        }
    }
}
