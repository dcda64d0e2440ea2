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
fn open(path: &Path) -> Result<Box<dyn BufRead>, HistoryError> {
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
pub fn open_run(run_dir: &Path) -> Result<(PathBuf, Box<dyn BufRead>), HistoryError> {
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
fn read_lines(
    path: &Path,
    mut input: Box<dyn BufRead>,
    text_bytes: Option<u64>,
    block_bytes: u64,
) -> Result<Vec<Record>, HistoryError> {
    use std::io::Read as _;
    use std::sync::Mutex;

    use rayon::prelude::*;
    let read_error = |error| HistoryError::Read(path.to_path_buf(), error);
    let mut records = Vec::new();
    let mut block: Vec<u8> = Vec::new();
    let mut first_line = 1;
    loop {
        // Read about a block more, and parse up to its last newline; the
        // line it cuts waits for the next block (a line longer than a
        // block makes the block longer).
        let read = (&mut input).take(block_bytes).read_to_end(&mut block).map_err(read_error)?;
        let at_end = read == 0;
        let whole = if at_end {
            block.len()
        } else {
            match memchr::memrchr(b'\n', &block) {
                Some(newline) => newline + 1,
                None => continue,
            }
        };
        if whole == 0 {
            return Ok(records);
        }
        let mut lines: Vec<(usize, &[u8])> = Vec::with_capacity(whole / 128);
        let mut start = 0;
        for (index, end) in memchr::memchr_iter(b'\n', &block[..whole]).chain([whole]).enumerate() {
            let line = &block[start..end];
            if !line.trim_ascii().is_empty() {
                lines.push((first_line + index, line));
            }
            start = (end + 1).min(whole);
        }
        if records.is_empty()
            && let Some(total) = text_bytes
        {
            // As many records per byte in the rest as in this block, and a
            // little more, so the vector is not grown (and copied) as it fills.
            let expected = (lines.len() as f64 * total as f64 / whole as f64 * 1.02) as usize;
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
                Record::Point(PointRecord { point: 0, params: Default::default(), kinds: Default::default() })
            })
        }));
        if let Some(error) = first_error.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()) {
            return Err(error);
        }
        first_line += memchr::memchr_iter(b'\n', &block[..whole]).count();
        if at_end {
            return Ok(records);
        }
        block.drain(..whole);
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

    /// Reads `text` with blocks of `block_bytes`.
    fn read_in_blocks(text: &str, block_bytes: u64) -> Result<Vec<Record>, HistoryError> {
        let input: Box<dyn BufRead> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
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
