//! The history: everything an experiment did and saw, one JSON object per line.
//!
//! The history is the only thing the oracle reads. It is written by the
//! runner as the run happens, records true times taken by the runner (never
//! a replica's clock), and is complete enough that anyone can re-analyse a
//! run with their own script (docs/design.md, "The history format"):
//!
//! - a `point` record per sweep point, with the swept parameter's value;
//! - a `fault` record for every clock setting or network fault applied;
//! - a `write` record per client write, acknowledged or not;
//! - a `final` record per replica and key, once the replicas converged;
//! - a `trial` record per trial: when its workload ran, and how long the
//!   replicas took to converge once the faults stopped;
//! - `sample` records: each replica's clock offset and its estimates of its
//!   peers' offsets, sampled during the workload.
//!
//! Values in this lab's workload are sets of item ids (`[3, 17, 42]`), so
//! whether a write survived is a plain question: is its item still in a
//! final value?

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ClockEvent, system_now};

/// The file name of a run's history inside its directory.
pub const HISTORY_FILE: &str = "history.jsonl";
/// The same, gzip-compressed, as the committed reference runs keep it; every
/// reader takes either (see [`open_run`]).
pub const HISTORY_FILE_GZ: &str = "history.jsonl.gz";

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Point(PointRecord),
    Fault(FaultRecord),
    Write(WriteRecord),
    Final(FinalRecord),
    Trial(TrialRecord),
    Sample(SampleRecord),
}

impl Record {
    /// Parses one line of a history.
    ///
    /// A record's `type` tag tells which kind it is, and serde, not knowing
    /// where the tag is, buffers a whole object before it can read one. The
    /// lab writes the tag first, so a line that starts `{"type":"write",` is
    /// read straight as a write record; any other line (a history written by
    /// hand, say) goes the general way, with the same result.
    pub fn from_line(line: &str) -> serde_json::Result<Record> {
        const TAG: &str = "{\"type\":\"";
        let tagged = line.strip_prefix(TAG).and_then(|rest| {
            let (tag, fields) = rest.split_once('"')?;
            Some((tag, fields.strip_prefix(',')?))
        });
        let Some((tag, fields)) = tagged else { return serde_json::from_str(line) };
        let mut object = String::with_capacity(fields.len() + 1);
        object.push('{');
        object.push_str(fields);
        match tag {
            "write" => serde_json::from_str(&object).map(Record::Write),
            "final" => serde_json::from_str(&object).map(Record::Final),
            "sample" => serde_json::from_str(&object).map(Record::Sample),
            "fault" => serde_json::from_str(&object).map(Record::Fault),
            "trial" => serde_json::from_str(&object).map(Record::Trial),
            "point" => serde_json::from_str(&object).map(Record::Point),
            _ => serde_json::from_str(line),
        }
    }
}

/// A replica's clocks as the runner sampled them during the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub point: usize,
    pub trial: usize,
    /// True time of the sample, ns.
    pub true_ns: Nanos,
    pub replica: ReplicaId,
    /// Its physical clock minus true time, ns.
    pub offset_ns: Nanos,
    /// Its estimates of its peers' offsets from it, as `GET /admin/status`
    /// gives them: `{"2": {"offset_ms": .., "error_ms": .., ..}, ..}`.
    pub peer_offsets: Value,
}

/// When a trial's workload ran, and how its replicas converged afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub point: usize,
    pub trial: usize,
    /// True times the workload started and ended, ns.
    pub workload_start_ns: Nanos,
    pub workload_end_ns: Nanos,
    /// Whether every replica held every write before the runner gave up.
    pub converged: bool,
    /// How long that took after the faults stopped, ms.
    pub converge_ms: f64,
    /// Which engine ran the trial (absent in histories made before there
    /// were two: real processes).
    #[serde(default)]
    pub engine: Engine,
}

/// What runs a trial: the same replica cores either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// Real `clocklab replica` processes, sockets and SQLite files, in real time.
    #[default]
    Processes,
    /// The deterministic simulator (`crate::sim`): simulated time, network
    /// and durable logs, driven by one seed.
    Sim,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Processes => "processes",
            Engine::Sim => "sim",
        }
    }
}

/// A sweep point and the value of the swept parameter there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    pub point: usize,
    /// The swept parameter's name (e.g. `skew_ms`) and value, plus anything
    /// else the point fixes.
    pub params: serde_json::Map<String, Value>,
    /// What each bucket's strategy promises, as the strategy declared it:
    /// the oracle judges a bucket by its kind, never by its name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kinds: std::collections::BTreeMap<String, crate::strategy::Kind>,
}

/// A fault or clock setting the runner applied, when it applied it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub point: usize,
    pub trial: usize,
    /// True time when it was applied, ns since the epoch.
    pub true_ns: Nanos,
    /// The replica it was applied to.
    pub replica: ReplicaId,
    /// What kind: `clock`, `links`, `heal`, ...
    pub fault: String,
    /// The settings sent, as the admin API took them.
    pub settings: Value,
}

/// Which trial of which sweep point records belong to, and the swept value there.
#[derive(Debug, Clone, Copy)]
pub struct TrialPlan {
    pub point: usize,
    pub trial: usize,
    pub value: f64,
}

impl FaultRecord {
    /// A `fault` record: what was applied to `replica` (`settings`, as the
    /// admin API was sent them), stamped with true time now.
    pub fn now(plan: TrialPlan, replica: ReplicaId, fault: &str, settings: &impl Serialize) -> Record {
        Self::at(system_now(), plan, replica, fault, settings)
    }

    /// The same, applied at true time `true_ns` (the simulator's).
    pub fn at(
        true_ns: Nanos,
        plan: TrialPlan,
        replica: ReplicaId,
        fault: &str,
        settings: &impl Serialize,
    ) -> Record {
        Record::Fault(FaultRecord {
            point: plan.point,
            trial: plan.trial,
            true_ns,
            replica,
            fault: fault.to_string(),
            // The lab's own types, with string or number keys: this cannot fail.
            settings: serde_json::to_value(settings).unwrap_or(Value::Null),
        })
    }
}

impl FaultRecord {
    /// What this record did to its replica's clock, if anything: a `clock`
    /// setting or a `step` updates the model; a `restart` starts a new one.
    pub fn clock_event(&self) -> Option<ClockEvent> {
        match self.fault.as_str() {
            "clock" | "step" => serde_json::from_value(self.settings.clone()).ok().map(ClockEvent::Update),
            "restart" => Some(ClockEvent::Restart),
            _ => None,
        }
    }
}

/// How a client write ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged: the replica answered 200 after its commit.
    Ok,
    /// Certainly not applied: refused, or the connection failed before sending.
    Fail,
    /// No answer: it may or may not have been applied.
    Unknown,
}

/// One client write to one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteRecord {
    pub point: usize,
    pub trial: usize,
    pub bucket: String,
    pub key: String,
    /// The replica the client wrote to.
    pub replica: ReplicaId,
    /// The new item this write adds; unique within a trial and bucket.
    pub item: u64,
    /// The whole value written: the items read, plus `item`.
    pub value: Vec<u64>,
    /// How many siblings the read before this write returned.
    #[serde(default)]
    pub read_siblings: usize,
    /// The strategy's stamp, from the acknowledgement (absent if none came).
    #[serde(default)]
    pub stamp: Option<Value>,
    /// `"origin:seq"`, from the acknowledgement (absent if none came).
    #[serde(default)]
    pub write_id: Option<String>,
    /// Bytes of stamp and context the replica stored with the write (their
    /// JSON text, as acknowledged); `None` without an acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_bytes: Option<usize>,
    /// True time when the client started the operation, ns: the read
    /// before the write, or (with stale contexts) the write itself.
    pub invoke_ns: Nanos,
    /// True time when the client had the write's answer (or gave up), ns.
    pub complete_ns: Nanos,
    pub outcome: Outcome,
}

/// One surviving write in a replica's final state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalSibling {
    pub value: Vec<u64>,
    pub stamp: Value,
    pub write_id: String,
}

/// A replica's final state for one key, read after convergence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalRecord {
    pub point: usize,
    pub trial: usize,
    pub bucket: String,
    pub key: String,
    pub replica: ReplicaId,
    pub siblings: Vec<FinalSibling>,
}

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
    read_lines(path, open(path)?)
}

/// Opens a history file for reading line by line, gunzipping a `.gz` one.
fn open(path: &Path) -> Result<Box<dyn BufRead>, HistoryError> {
    let file = File::open(path).map_err(|error| HistoryError::Open(path.to_path_buf(), error))?;
    Ok(if path.extension().is_some_and(|extension| extension == "gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(file)))
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

/// Parses every line; lines are parsed in parallel, a block at a time, and
/// come back in file order. Blank lines are skipped; the first line that is
/// not a record is the error.
fn read_lines(path: &Path, mut lines: Box<dyn BufRead>) -> Result<Vec<Record>, HistoryError> {
    use rayon::prelude::*;
    /// Bytes read before a block is parsed: enough to keep every core busy,
    /// few enough that text and records need not both be held whole.
    const BLOCK_BYTES: usize = 32 << 20;
    let mut records = Vec::new();
    let mut block = String::new();
    let mut first_line = 1;
    loop {
        block.clear();
        // Whole lines only, up to about a block.
        while block.len() < BLOCK_BYTES {
            let read =
                lines.read_line(&mut block).map_err(|error| HistoryError::Read(path.to_path_buf(), error))?;
            if read == 0 {
                break;
            }
        }
        if block.is_empty() {
            return Ok(records);
        }
        let texts: Vec<&str> = block.lines().collect();
        let parsed: Vec<Result<Option<Record>, HistoryError>> = texts
            .par_iter()
            .enumerate()
            .map(|(index, line)| {
                if line.trim().is_empty() {
                    return Ok(None);
                }
                Record::from_line(line).map(Some).map_err(|error| HistoryError::Parse {
                    path: path.to_path_buf(),
                    line: first_line + index,
                    error,
                })
            })
            .collect();
        for record in parsed {
            records.extend(record?);
        }
        first_line += texts.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn records_have_the_design_shape() {
        let write = Record::Write(WriteRecord {
            point: 0,
            trial: 1,
            bucket: "lww-wall".into(),
            key: "k1".into(),
            replica: 3,
            item: 7,
            value: vec![1, 7],
            read_siblings: 1,
            stamp: Some(json!([5, 3])),
            write_id: Some("3:4".into()),
            metadata_bytes: None,
            invoke_ns: 10,
            complete_ns: 20,
            outcome: Outcome::Ok,
        });
        let text = serde_json::to_value(&write).unwrap();
        assert_eq!(text["type"], "write");
        assert_eq!(text["outcome"], "ok");
        assert_eq!(text["value"], json!([1, 7]));
        let back: Record = serde_json::from_value(text).unwrap();
        assert_eq!(back, write);
    }

    #[test]
    fn a_record_reads_the_same_wherever_its_tag_is() {
        let first = r#"{"type":"trial","point":1,"trial":0,"workload_start_ns":5,"workload_end_ns":9,"converged":true,"converge_ms":1.5,"engine":"sim"}"#;
        let last = r#"{"point":1,"trial":0,"workload_start_ns":5,"workload_end_ns":9,"converged":true,"converge_ms":1.5,"engine":"sim","type":"trial"}"#;
        let record = Record::from_line(first).unwrap();
        assert_eq!(record, Record::from_line(last).unwrap());
        assert!(matches!(&record, Record::Trial(trial) if trial.engine == Engine::Sim && trial.point == 1));
        // What the writer writes, the fast path reads back.
        assert_eq!(Record::from_line(&serde_json::to_string(&record).unwrap()).unwrap(), record);
        assert!(Record::from_line(r#"{"type":"nonsense","point":1}"#).is_err());
        assert!(Record::from_line(r#"{"type":"write","point":"one"}"#).is_err());
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HISTORY_FILE);
        std::fs::write(&path, "{\"type\":\"point\",\"point\":0,\"params\":{}}\n\nnot json\n").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains(":3:"), "{error}");
    }
}
