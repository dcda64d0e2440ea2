//! Reading history files back (plain or gzip-compressed): a whole history
//! in parallel, or a line at a time. (Writing them: `writer`.)

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::compact::Resolver;
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
        let mut resolver = Resolver::default();
        let mut first_line = 1;
        // Every block, until the reader ends (at the end of the file, or
        // after sending its error).
        for block in full {
            let block = block.map_err(|error| HistoryError::Read(path.to_path_buf(), error))?;
            let lines = &block.bytes[..block.whole];
            let start = records.len();
            let (next_line, compact) = parse_block(path, lines, first_line, text_bytes, &mut records)?;
            first_line = next_line;
            resolve_block(path, &mut records, start, compact, &mut resolver)?;
            // The reader may have stopped already; then the buffer is not needed.
            let _ = empty_sender.send(block.bytes);
        }
        Ok(records)
    })
}

/// A compact write line: its place in its block, its line number, and the
/// item of the write it extends.
struct CompactLine {
    offset: usize,
    line: usize,
    extends: u64,
}

/// Completes a block's compact writes in order, in `records`, which hold
/// the block from `start`: each extends a write before it.
fn resolve_block(
    path: &Path,
    records: &mut [Record],
    start: usize,
    compact: Vec<CompactLine>,
    resolver: &mut Resolver,
) -> Result<(), HistoryError> {
    for CompactLine { offset, line, extends } in compact {
        resolver.resolve(records, start + offset, extends).map_err(|error| HistoryError::Parse {
            path: path.to_path_buf(),
            line,
            error: <serde_json::Error as serde::de::Error>::custom(error),
        })?;
    }
    Ok(())
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
/// first line number, and the block's compact writes (see [`resolve_block`]).
fn parse_block(
    path: &Path,
    block: &[u8],
    first_line: usize,
    text_bytes: Option<u64>,
    records: &mut Vec<Record>,
) -> Result<(usize, Vec<CompactLine>), HistoryError> {
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
    // Beside each line, the write it extends if it is a compact write.
    let mut extended: Vec<Option<u64>> = vec![None; lines.len()];
    records.par_extend(lines.par_iter().zip(extended.par_iter_mut()).map(|((number, line), extends)| {
        let (record, extending) = Record::parse(line).unwrap_or_else(|error| {
            let mut first = first_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if first
                .as_ref()
                .is_none_or(|seen| matches!(seen, HistoryError::Parse { line, .. } if line > number))
            {
                *first = Some(HistoryError::Parse { path: path.to_path_buf(), line: *number, error });
            }
            let placeholder = PointRecord {
                point: 0,
                params: Default::default(),
                kinds: Default::default(),
                stamps: Default::default(),
            };
            (Record::Point(placeholder), None)
        });
        *extends = extending;
        record
    }));
    if let Some(error) = first_error.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()) {
        return Err(error);
    }
    let compact = extended
        .iter()
        .zip(&lines)
        .enumerate()
        .filter_map(|(offset, (extends, (line, _)))| {
            Some(CompactLine { offset, line: *line, extends: (*extends)? })
        })
        .collect();
    Ok((first_line + newlines, compact))
}

/// Reads a history a line at a time, in order, completing compact writes
/// (for readers that take lines as they come, such as `clocklab merge`).
#[derive(Default)]
pub struct Lines {
    resolver: Resolver,
}

impl Lines {
    /// Reads `line` onto the end of `records`, which holds the lines before it.
    pub fn push(&mut self, line: &str, records: &mut Vec<Record>) -> serde_json::Result<()> {
        self.push_parsed(Record::parse(line.as_bytes())?, records)
    }

    /// The same, for a line already parsed (`Record::parse`).
    pub(crate) fn push_parsed(
        &mut self,
        (record, extends): (Record, Option<u64>),
        records: &mut Vec<Record>,
    ) -> serde_json::Result<()> {
        records.push(record);
        let at = records.len() - 1;
        match extends {
            Some(extends) => self
                .resolver
                .resolve(records, at, extends)
                .map_err(<serde_json::Error as serde::de::Error>::custom),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{
        FinalRecord, FinalSibling, HistoryWriter, Outcome, Stamp, TrialRecord, WriteRecord,
    };

    /// A workload's history, two trials of it: clients read a key (the
    /// latest value, an older one, or two siblings at once) and write back
    /// what they read plus an item; now and then a value written by hand
    /// (unsorted, or missing its own item) or a retired key. Between the
    /// writes, the other records a trial has.
    fn workload(seed: u64) -> Vec<Record> {
        use rand::{RngExt, SeedableRng};
        let mut random = rand::rngs::StdRng::seed_from_u64(seed);
        let mut records = vec![Record::Point(PointRecord {
            point: 0,
            params: Default::default(),
            kinds: Default::default(),
            stamps: Default::default(),
        })];
        for trial in 0..2 {
            let mut values: Vec<Vec<Vec<u64>>> = vec![Vec::new(); 4];
            for item in 0..1500u64 {
                let key = random.random_range(0..values.len());
                let written = &values[key];
                let mut value: Vec<u64> = match (written.len(), random.random_range(0..10)) {
                    (0, _) => Vec::new(),
                    (count, 0) => written[random.random_range(0..count)].clone(),
                    (count, 1) if count > 1 => {
                        let mut both = written[count - 1].clone();
                        both.extend(&written[count - 2]);
                        both
                    }
                    (count, _) => written[count - 1].clone(),
                };
                value.push(item);
                value.sort_unstable();
                value.dedup();
                match random.random_range(0..200) {
                    0..5 => value.reverse(),
                    5..10 => value.retain(|held| *held != item),
                    10 => values.push(Vec::new()),
                    _ => {}
                }
                values[key].push(value.clone());
                let bucket = ["lww-wall", "vv"][key % 2];
                let mut write = WriteRecord::started(0, trial, bucket, &format!("k{key}"), 1, item, 5);
                write.value = value;
                write.outcome = [Outcome::Ok, Outcome::Unknown][usize::from(item % 9 == 0)];
                records.push(Record::Write(write));
                if item % 50 == 0 {
                    let plan = crate::history::TrialPlan { point: 0, trial, value: 0.0 };
                    records.push(crate::history::FaultRecord::at(
                        1,
                        plan,
                        1,
                        crate::history::FaultName::Clock,
                        &serde_json::json!({}),
                    ));
                }
            }
            records.push(Record::Final(FinalRecord {
                point: 0,
                trial,
                bucket: "vv".into(),
                key: "k0".into(),
                replica: 1,
                siblings: vec![FinalSibling {
                    value: vec![1, 2],
                    stamp: Stamp::null(),
                    write_id: "1:1".parse().unwrap(),
                }],
            }));
            records.push(Record::Trial(TrialRecord {
                point: 0,
                trial,
                workload_start_ns: 0,
                workload_end_ns: 1,
                converged: true,
                converge_ms: 1.0,
                engine: Default::default(),
                failed_buckets: Default::default(),
                notes: Vec::new(),
            }));
        }
        records
    }

    /// Writes `records` as a history at `path`.
    fn write(path: &Path, records: &[Record]) {
        let mut writer = HistoryWriter::create(path).unwrap();
        records.iter().for_each(|record| writer.append(record).unwrap());
        writer.finish().unwrap();
    }

    #[test]
    fn compact_writes_read_back_exactly_as_written_by_every_reader() {
        let dir = tempfile::tempdir().unwrap();
        for seed in 0..12 {
            let records = workload(seed);
            let plain = dir.path().join(HISTORY_FILE);
            write(&plain, &records);
            let text = std::fs::read_to_string(&plain).unwrap();
            // A long sorted value that holds its key's previous one is written
            // compact; so are some others, and some are written whole.
            let mut previous: std::collections::HashMap<(usize, String, String), Vec<u64>> =
                Default::default();
            let (mut compact, mut whole) = (0, 0);
            for (record, line) in records.iter().zip(text.lines()) {
                let Record::Write(write) = record else { continue };
                let is_compact = line.contains("\"extends\":");
                (compact, whole) = if is_compact { (compact + 1, whole) } else { (compact, whole + 1) };
                let last = previous.insert(
                    (write.trial, write.bucket.to_string(), write.key.to_string()),
                    write.value.clone(),
                );
                let extends_last = last.is_some_and(|last| {
                    last.is_sorted() && last.iter().all(|item| write.value.contains(item))
                });
                if write.value.is_sorted()
                    && write.value.contains(&write.item)
                    && write.value.len() >= super::super::compact::COMPACT_FROM_ITEMS
                    && extends_last
                {
                    assert!(is_compact, "seed {seed}: {line}");
                }
            }
            assert!(compact > 500 && whole > 500, "seed {seed}: {compact} compact, {whole} whole");
            assert_eq!(read(&plain).unwrap(), records, "seed {seed}, in one block");
            for block_bytes in [1, 300, 4096] {
                assert_eq!(
                    read_in_blocks(&text, block_bytes).unwrap(),
                    records,
                    "seed {seed}, blocks of {block_bytes}"
                );
            }
            let mut lines = Lines::default();
            let mut one_by_one = Vec::new();
            text.lines().for_each(|line| lines.push(line, &mut one_by_one).unwrap());
            assert_eq!(one_by_one, records, "seed {seed}, line by line");
            let compressed = dir.path().join(HISTORY_FILE_GZ);
            write(&compressed, &records);
            assert_eq!(read(&compressed).unwrap(), records, "seed {seed}, compressed as written");
            assert!(std::fs::metadata(&compressed).unwrap().len() * 4 < text.len() as u64);
        }
    }

    #[test]
    fn a_compact_write_without_the_write_it_extends_is_an_error_naming_its_line() {
        let point = "{\"type\":\"point\",\"point\":0,\"params\":{}}";
        let write = |item: u64, value: &str| {
            format!(
                "{{\"type\":\"write\",\"point\":0,\"trial\":0,\"bucket\":\"b\",\"key\":\"k\",\"replica\":1,\"item\":{item},{value},\
                 \"read_siblings\":1,\"stamp\":null,\"write_id\":null,\"invoke_ns\":0,\"complete_ns\":1,\"outcome\":\"fail\"}}"
            )
        };
        let good =
            format!("{point}\n{}\n{}\n", write(1, "\"value\":[1]"), write(2, "\"extends\":1,\"adds\":[0]"));
        let records = read_in_blocks(&good, 1 << 20).unwrap();
        assert!(matches!(&records[2], Record::Write(write) if write.value == [0, 1, 2]), "{records:?}");
        // Read alone, it cannot be whole.
        assert!(Record::from_line(good.lines().nth(2).unwrap()).is_err());
        let missing = format!("{point}\n{}\n{}\n", write(1, "\"value\":[1]"), write(2, "\"extends\":7"));
        let error = read_in_blocks(&missing, 1 << 20).unwrap_err().to_string();
        assert!(error.starts_with("history.jsonl:3:") && error.contains("extends write 7"), "{error}");
        let both = format!("{point}\n{}\n", write(2, "\"value\":[2],\"extends\":7"));
        assert!(read_in_blocks(&both, 1 << 20).is_err());
        // Written by hand, with the tag last: still read in its place.
        let moved = write(2, "\"extends\":1")
            .replacen("\"type\":\"write\",", "", 1)
            .replace("}", ",\"type\":\"write\"}");
        let records =
            read_in_blocks(&format!("{point}\n{}\n{moved}\n", write(1, "\"value\":[1]")), 64).unwrap();
        assert!(matches!(&records[2], Record::Write(write) if write.value == [1, 2]), "{records:?}");
    }

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
