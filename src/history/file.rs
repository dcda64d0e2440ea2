//! History files: appending records as a run makes them, and reading a
//! whole history back (plain or gzip-compressed), in parallel.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use super::{HISTORY_FILE, HISTORY_FILE_GZ, PointRecord, Record};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot open {0}: {1}")]
    Open(PathBuf, std::io::Error),
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("{path}:{line}: not a history record: {error}")]
    Parse { path: PathBuf, line: usize, error: serde_json::Error },
}

/// Appends records to a history file, buffered.
pub struct HistoryWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl HistoryWriter {
    pub fn create(path: &Path) -> Result<Self, HistoryError> {
        let file = File::create(path).map_err(|error| HistoryError::Open(path.to_path_buf(), error))?;
        Ok(Self { path: path.to_path_buf(), file: BufWriter::new(file) })
    }

    pub fn append(&mut self, record: &Record) -> Result<(), HistoryError> {
        let write = |file: &mut BufWriter<File>| -> std::io::Result<()> {
            serde_json::to_writer(&mut *file, record)?;
            file.write_all(b"\n")
        };
        write(&mut self.file).map_err(|error| HistoryError::Write(self.path.clone(), error))
    }

    /// Flushes what is buffered; call at the end of each trial.
    pub fn flush(&mut self) -> Result<(), HistoryError> {
        self.file.flush().map_err(|error| HistoryError::Write(self.path.clone(), error))
    }
}

/// Reads a whole history file. Blank lines are skipped; anything else that
/// is not a record is an error naming the line.
pub fn read(path: &Path) -> Result<Vec<Record>, HistoryError> {
    read_lines(path, open(path)?, text_bytes(path), BLOCK_BYTES)
}

/// About how many bytes of text the history file at `path` holds, if that
/// can be told without reading it: a plain file's length, or the length a
/// gzip file records of its contents in its last four bytes (modulo 4 GiB,
/// which is fine for an estimate), but never more than
/// [`MOST_GZIP_RATIO`] times the compressed length, so a damaged trailer
/// cannot make the reader ask for gigabytes. The reader sizes its record vector from
/// it once it has seen how long the first block's lines are, instead of
/// growing it by doubling and copying a gigabyte of records on the way.
fn text_bytes(path: &Path) -> Option<u64> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let length = std::fs::metadata(path).ok()?.len();
    if path.extension().is_none_or(|extension| extension != "gz") {
        return Some(length);
    }
    let mut file = File::open(path).ok()?;
    file.seek(SeekFrom::End(-4)).ok()?;
    let mut trailer = [0u8; 4];
    file.read_exact(&mut trailer).ok()?;
    Some(u64::from(u32::from_le_bytes(trailer)).min(length.saturating_mul(MOST_GZIP_RATIO)))
}

/// How many times smaller than its text a compressed history can plausibly
/// be (the lab's compress about 10 times).
const MOST_GZIP_RATIO: u64 = 40;

/// Opens a history file for reading line by line, gunzipping a `.gz` one.
fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, HistoryError> {
    let file = File::open(path).map_err(|error| HistoryError::Open(path.to_path_buf(), error))?;
    Ok(if path.extension().is_some_and(|extension| extension == "gz") {
        // Every member, should the file be several gzip streams end to end.
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// The history file of the run in `run_dir`: `history.jsonl`, or
/// `history.jsonl.gz` if only that is there.
pub fn file_of_run(run_dir: &Path) -> PathBuf {
    let plain = run_dir.join(HISTORY_FILE);
    let compressed = run_dir.join(HISTORY_FILE_GZ);
    if !plain.exists() && compressed.exists() { compressed } else { plain }
}

/// Opens the history of the run in `run_dir`, compressed or not, for
/// reading line by line; returns its path too, for messages.
pub fn open_run(run_dir: &Path) -> Result<(PathBuf, Box<dyn BufRead + Send>), HistoryError> {
    let path = file_of_run(run_dir);
    let lines = open(&path)?;
    Ok((path, lines))
}

/// Reads the history of the run in `run_dir`, compressed or not.
pub fn read_run(run_dir: &Path) -> Result<Vec<Record>, HistoryError> {
    read(&file_of_run(run_dir))
}

/// Bytes of history read before a block is parsed: enough to keep every
/// core busy, few enough that text and records need not both be held whole.
const BLOCK_BYTES: u64 = 32 << 20;

/// Parses every line; lines are parsed in parallel, a block at a time, and
/// come back in file order. Blank lines are skipped; the first line that is
/// not a record is the error.
///
/// A thread of its own reads the next block while the cores parse this
/// one, so the file's reading (and gunzipping) is not added to the parsing.
fn read_lines(
    path: &Path,
    input: Box<dyn BufRead + Send>,
    text_bytes: Option<u64>,
    block_bytes: u64,
) -> Result<Vec<Record>, HistoryError> {
    use std::sync::mpsc::sync_channel;

    std::thread::scope(|scope| {
        // Two buffers go round: one being parsed, one being filled. Both
        // ends are dropped when this closure returns, error or not, so the
        // reader, blocked or not, sees it and stops before the scope ends.
        let (full_sender, full) = sync_channel::<std::io::Result<Block>>(1);
        let (empty_sender, empty) = sync_channel::<Vec<u8>>(2);
        for _ in 0..2 {
            let _ = empty_sender.send(Vec::new());
        }
        scope.spawn(move || read_blocks(input, block_bytes, empty, full_sender));
        let mut records = Vec::new();
        let mut first_line = 1;
        // Every block, until the reader ends (at the end of the file, or
        // after sending its error).
        for block in full {
            let block = block.map_err(|error| HistoryError::Read(path.to_path_buf(), error))?;
            first_line =
                parse_block(path, &block.bytes[..block.whole], first_line, text_bytes, &mut records)?;
            // The reader may have stopped already; then the buffer is not needed.
            let _ = empty_sender.send(block.bytes);
        }
        Ok(records)
    })
}

/// Whole lines of the file, in `bytes[..whole]`.
struct Block {
    bytes: Vec<u8>,
    whole: usize,
}

/// Reads about `block_bytes` at a time into the buffers that come back
/// through `empty`, cut at the last newline (the cut line is carried into
/// the next block; a line longer than a block makes the block longer), and
/// sends them through `full`; stops at the end of the file, at an error
/// (sent), or when the parser stops taking blocks.
fn read_blocks(
    mut input: Box<dyn BufRead + Send>,
    block_bytes: u64,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
    full: std::sync::mpsc::SyncSender<std::io::Result<Block>>,
) {
    use std::io::Read as _;
    let mut carried: Vec<u8> = Vec::new();
    while let Ok(mut bytes) = empty.recv() {
        bytes.clear();
        bytes.append(&mut carried);
        let (whole, at_end) = loop {
            match (&mut input).take(block_bytes).read_to_end(&mut bytes) {
                Err(error) => {
                    let _ = full.send(Err(error));
                    return;
                }
                // The end of the file: what is left is the last line.
                Ok(0) => break (bytes.len(), true),
                Ok(_) => {
                    if let Some(newline) = memchr::memrchr(b'\n', &bytes) {
                        break (newline + 1, false);
                    }
                }
            }
        };
        carried.extend_from_slice(&bytes[whole..]);
        if whole == 0 || full.send(Ok(Block { bytes, whole })).is_err() || at_end {
            return;
        }
    }
}

/// Parses the lines of `block` (whole lines, the first numbered
/// `first_line`) in parallel onto `records`; returns the next block's
/// first line number.
fn parse_block(
    path: &Path,
    block: &[u8],
    first_line: usize,
    text_bytes: Option<u64>,
    records: &mut Vec<Record>,
) -> Result<usize, HistoryError> {
    use std::sync::Mutex;

    use rayon::prelude::*;
    let mut lines: Vec<(usize, &[u8])> = Vec::with_capacity(block.len() / 128);
    let mut start = 0;
    let mut newlines = 0;
    for end in memchr::memchr_iter(b'\n', block).chain([block.len()]) {
        let line = &block[start..end];
        if !line.trim_ascii().is_empty() {
            lines.push((first_line + newlines, line));
        }
        newlines += usize::from(end < block.len());
        start = (end + 1).min(block.len());
    }
    if records.is_empty()
        && let Some(total) = text_bytes
    {
        // As many records per byte in the rest as in this block, and a
        // little more, so the vector is not grown (and copied) as it fills.
        let expected = (lines.len() as f64 * total as f64 / block.len() as f64 * 1.02) as usize;
        records.reserve(expected.min(1 << 28));
    }
    // Parsed straight into place; a line that is not a record leaves a
    // placeholder that is never returned, since its error is.
    let first_error: Mutex<Option<HistoryError>> = Mutex::new(None);
    records.par_extend(lines.par_iter().map(|(number, line)| {
        Record::from_bytes(line).unwrap_or_else(|error| {
            let mut first = first_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if first
                .as_ref()
                .is_none_or(|seen| matches!(seen, HistoryError::Parse { line, .. } if line > number))
            {
                *first = Some(HistoryError::Parse { path: path.to_path_buf(), line: *number, error });
            }
            Record::Point(PointRecord {
                point: 0,
                params: Default::default(),
                kinds: Default::default(),
                stamps: Default::default(),
            })
        })
    }));
    match first_error.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()) {
        Some(error) => Err(error),
        None => Ok(first_line + newlines),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_history_reads_back_the_same() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let text =
            "{\"type\":\"point\",\"point\":0,\"params\":{\"parameter\":\"skew_ms\",\"skew_ms\":0.0}}\n\n";
        std::fs::write(dir.path().join(HISTORY_FILE), text).unwrap();
        let plain = read_run(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(HISTORY_FILE)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            File::create(dir.path().join(HISTORY_FILE_GZ)).unwrap(),
            flate2::Compression::best(),
        );
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
        assert_eq!(file_of_run(dir.path()), dir.path().join(HISTORY_FILE_GZ));
        assert_eq!(read_run(dir.path()).unwrap(), plain);
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HISTORY_FILE);
        std::fs::write(&path, "{\"type\":\"point\",\"point\":0,\"params\":{}}\n\nnot json\n").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains(":3:"), "{error}");
    }

    #[test]
    fn a_failing_read_is_an_error_and_a_bad_line_early_stops_the_reader() {
        // Good lines, then the disk fails.
        struct Failing(std::io::Cursor<Vec<u8>>);
        impl std::io::Read for Failing {
            fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
                match self.0.read(buffer)? {
                    0 => Err(std::io::Error::other("the disk is gone")),
                    read => Ok(read),
                }
            }
        }
        let line = "{\"type\":\"point\",\"point\":0,\"params\":{}}\n";
        let input = Box::new(BufReader::new(Failing(std::io::Cursor::new(line.repeat(50).into_bytes()))));
        let error = read_lines(Path::new("h.jsonl"), input, None, 64).unwrap_err();
        assert!(matches!(&error, HistoryError::Read(..)), "{error}");
        assert!(error.to_string().contains("h.jsonl"), "{error}");

        // A bad first line, then far more blocks than the two buffers: the
        // reader, blocked on a full channel, must stop when the parser does.
        let text = format!("not json\n{}", line.repeat(20_000));
        let error = read_in_blocks(&text, 64).unwrap_err().to_string();
        assert!(error.starts_with("history.jsonl:1:"), "{error}");
    }

    /// Reads `text` with blocks of `block_bytes`.
    fn read_in_blocks(text: &str, block_bytes: u64) -> Result<Vec<Record>, HistoryError> {
        let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        read_lines(Path::new("history.jsonl"), input, Some(text.len() as u64), block_bytes)
    }

    #[test]
    fn lines_cut_by_a_block_boundary_read_whole_and_numbered_right() {
        let point = |point: usize| format!("{{\"type\":\"point\",\"point\":{point},\"params\":{{}}}}");
        // Blank lines, a CRLF ending, a line longer than a block, no final newline.
        let long =
            format!("{{\"type\":\"point\",\"point\":7,\"params\":{{\"note\":\"{}\"}}}}", "x".repeat(300));
        let text = format!("{}\n\n{}\r\n{long}\n   \n{}", point(1), point(2), point(3));
        let whole = read_in_blocks(&text, 1 << 20).unwrap();
        let numbers: Vec<usize> = whole
            .iter()
            .map(|record| match record {
                Record::Point(point) => point.point,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(numbers, [1, 2, 7, 3]);
        for block_bytes in [1, 7, 40, 64, 100] {
            assert_eq!(read_in_blocks(&text, block_bytes).unwrap(), whole, "blocks of {block_bytes} bytes");
        }
        // The first bad line is named, whichever block it falls in.
        let bad = format!("{}\n{}\nnot json\n{}\n{{\"type\":\"point\"}}\n", point(1), point(2), point(3));
        for block_bytes in [1, 30, 1 << 20] {
            let error = read_in_blocks(&bad, block_bytes).unwrap_err().to_string();
            assert!(error.starts_with("history.jsonl:3:"), "blocks of {block_bytes} bytes: {error}");
        }
    }
}
