//! Writing history files: appending records as a run makes them, plain or
//! gzip-compressed as they go, each write's value compact where it can be
//! (see `compact`).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use super::Record;
use super::compact::{Encoder, WriteLine};
use super::file::HistoryError;

/// Appends records to a history file, buffered, gzip-compressed as it
/// goes if the file's name ends in `.gz`; writes values compact where they
/// can be (see `compact`). Call [`HistoryWriter::finish`] at the end.
pub struct HistoryWriter {
    path: PathBuf,
    file: BufWriter<Sink>,
    encoder: Encoder,
}

/// A file written plain, or gzip-compressed as it goes if its name ends in
/// `.gz` (a history, or a run's drops). Call [`Sink::finish`] at the end.
pub enum Sink {
    Plain(File),
    Gzip(flate2::write::GzEncoder<File>),
}

impl Sink {
    pub fn create(path: &Path) -> std::io::Result<Sink> {
        let file = File::create(path)?;
        Ok(if path.extension().is_some_and(|extension| extension == "gz") {
            Sink::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::new(WRITE_COMPRESSION)))
        } else {
            Sink::Plain(file)
        })
    }

    /// Writes out what is left and, compressed, the end of the stream.
    pub fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Plain(mut file) => file.flush(),
            Sink::Gzip(file) => file.finish().map(drop),
        }
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(file) => file.write(bytes),
            Sink::Gzip(file) => file.write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(file) => file.flush(),
            Sink::Gzip(file) => file.flush(),
        }
    }
}

/// Writes `record` as one line of a history, a write's value in the form
/// `encoder` chooses.
pub(super) fn write_line(
    encoder: &mut Encoder,
    out: &mut impl std::io::Write,
    record: &Record,
) -> std::io::Result<()> {
    match encoder.next(record) {
        Some((write, form)) => serde_json::to_writer(&mut *out, &WriteLine::new(write, &form)),
        None => serde_json::to_writer(&mut *out, record),
    }
    .map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// How hard a file is compressed as it is written: gzip's fastest level,
/// about a tenth of a history's text at a few hundred MB a second, so the
/// compressing keeps up with the simulator.
const WRITE_COMPRESSION: u32 = 1;

impl HistoryWriter {
    pub fn create(path: &Path) -> Result<Self, HistoryError> {
        let sink = Sink::create(path).map_err(|error| HistoryError::Open(path.to_path_buf(), error))?;
        Ok(Self { path: path.to_path_buf(), file: BufWriter::new(sink), encoder: Encoder::default() })
    }

    /// Writes out what is buffered and, for a compressed history, the
    /// end of its stream.
    pub fn finish(self) -> Result<(), HistoryError> {
        let fail = |error: std::io::Error| HistoryError::Write(self.path.clone(), error);
        self.file.into_inner().map_err(|error| fail(error.into_error()))?.finish().map_err(fail)
    }

    pub fn append(&mut self, record: &Record) -> Result<(), HistoryError> {
        write_line(&mut self.encoder, &mut self.file, record)
            .map_err(|error| HistoryError::Write(self.path.clone(), error))
    }

    /// Appends lines already in history form, as `copy` writes them: a
    /// trial's spilled writes (`SpilledWrites::copy_to`), written by the
    /// same rules as this writer's, so as it would have written them.
    pub fn append_lines(
        &mut self,
        copy: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), HistoryError> {
        copy(&mut self.file).map_err(|error| HistoryError::Write(self.path.clone(), error))
    }

    /// Flushes what is buffered; call at the end of each trial.
    pub fn flush(&mut self) -> Result<(), HistoryError> {
        self.file.flush().map_err(|error| HistoryError::Write(self.path.clone(), error))
    }
}
