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

mod compact;
mod exact;
mod fast_path;
mod fault_name;
mod file;
mod lease;
pub mod spill;
mod stamp;
mod writer;

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ClockEvent, system_now};
use crate::write_id::{WriteId, WriteIds};

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
    Lease(LeaseRecord),
}

impl Record {
    /// Parses one line of a history.
    ///
    /// A record's `type` tag tells which kind it is, and serde, not knowing
    /// where the tag is, buffers a whole object before it can read one. The
    /// lab writes the tag first, so a line that starts `{"type":"write",` is
    /// read straight as a write record (which skips the `type` field as it
    /// skips any field it does not know), and a `write` or `final` line
    /// laid out exactly as the lab writes it is read faster still, without
    /// serde (see `fast_path`); any other line (a history written by hand,
    /// say) goes the general way, with the same result.
    ///
    /// A compact write line (one that `extends` an earlier write: see
    /// `compact`) cannot be read alone, since its value is partly the other
    /// write's: it is an error here; [`read`] and [`Lines`] read it in its place.
    pub fn from_line(line: &str) -> serde_json::Result<Record> {
        match Self::parse(line.as_bytes())? {
            (record, None) => Ok(record),
            (_, Some(extends)) => Err(<serde_json::Error as serde::de::Error>::custom(format!(
                "this write extends write {extends}: read it with the lines before it"
            ))),
        }
    }

    /// A line read on its own (its bytes, checked as UTF-8 where it matters:
    /// inside strings): its record, and for a compact write, the item of
    /// the write it extends; its value is then its own items only, until
    /// [`compact::Resolver`] joins the other's to it.
    pub(crate) fn parse(line: &[u8]) -> serde_json::Result<(Record, Option<u64>)> {
        const TAG: &[u8] = b"{\"type\":\"";
        let tag = line.strip_prefix(TAG).and_then(|rest| {
            let end = rest.iter().position(|byte| *byte == b'"')?;
            Some(&rest[..end])
        });
        let whole = |record: serde_json::Result<Record>| record.map(|record| (record, None));
        match tag {
            Some(b"write") => match fast_path::write_record(line) {
                Some((write, extends)) => Ok((Record::Write(write), extends)),
                None => write_parts(serde_json::from_slice(line)?),
            },
            Some(b"final") => match fast_path::final_record(line) {
                Some(last) => Ok((Record::Final(last), None)),
                None => whole(serde_json::from_slice(line).map(Record::Final)),
            },
            Some(b"sample") => whole(serde_json::from_slice(line).map(Record::Sample)),
            Some(b"fault") => whole(serde_json::from_slice(line).map(Record::Fault)),
            Some(b"trial") => whole(serde_json::from_slice(line).map(Record::Trial)),
            Some(b"point") => whole(serde_json::from_slice(line).map(Record::Point)),
            Some(b"lease") => whole(serde_json::from_slice(line).map(Record::Lease)),
            _ => {
                // The tag elsewhere (a line written by hand): a write may be compact.
                let value: Value = serde_json::from_slice(line)?;
                if value.get("type").and_then(Value::as_str) == Some("write") {
                    write_parts(serde_json::from_value(value)?)
                } else {
                    whole(serde_json::from_value(value))
                }
            }
        }
    }
}

/// A write line serde read, as [`Record::parse`] gives it.
fn write_parts(line: compact::OwnedWriteLine) -> serde_json::Result<(Record, Option<u64>)> {
    let (write, extends) = line.into_parts().map_err(<serde_json::Error as serde::de::Error>::custom)?;
    Ok((Record::Write(write), extends))
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
    pub engine: EngineKind,
    /// Buckets whose plugin strategy failed during the trial, each with the
    /// first replica's error: the oracle does not judge them (it would
    /// count every write as lost), and the run says so.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_buckets: BTreeMap<String, String>,
    /// What the system under test said about the trial in its own words: a
    /// real database's conflict log lines, a few per node and bucket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What runs a trial: the same replica cores either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// Real `clocklab replica` processes, sockets and SQLite files, in real time.
    #[default]
    Processes,
    /// The deterministic simulator (`crate::sim`): simulated time, network
    /// and durable logs, driven by one seed.
    Sim,
    /// Real PostgreSQL servers replicating with pglogical (`crate::pg`),
    /// one bucket per conflict resolution mode, beside real `clocklab
    /// replica` processes for the spec's other strategies.
    Pglogical,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Processes => "processes",
            EngineKind::Sim => "sim",
            EngineKind::Pglogical => "pglogical",
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
    /// What each bucket's stamps are made of, as the strategy declared it:
    /// only for the words that explain a drop (absent in older histories).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stamps: std::collections::BTreeMap<String, crate::strategy::StampKind>,
}

/// A fault or clock setting the runner applied, when it applied it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub point: usize,
    pub trial: usize,
    /// True time when it was applied, ns since the epoch.
    pub true_ns: Nanos,
    /// The replica it was applied to (0 when it was a lease worker).
    pub replica: ReplicaId,
    /// What was done: `clock`, `links`, a fault's kind, `heal`, ...
    pub fault: FaultName,
    /// The settings sent, as the admin API took them.
    pub settings: Value,
    /// The lease worker it was applied to, if it was one (`crate::lease`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<crate::lease::WorkerId>,
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
    pub fn now(plan: TrialPlan, replica: ReplicaId, fault: FaultName, settings: &impl Serialize) -> Record {
        Self::at(system_now(), plan, replica, fault, settings)
    }

    /// The same, applied at true time `true_ns` (the simulator's).
    pub fn at(
        true_ns: Nanos,
        plan: TrialPlan,
        replica: ReplicaId,
        fault: FaultName,
        settings: &impl Serialize,
    ) -> Record {
        Record::Fault(FaultRecord {
            point: plan.point,
            trial: plan.trial,
            true_ns,
            replica,
            fault,
            // The lab's own types, with string or number keys: this cannot fail.
            settings: serde_json::to_value(settings).unwrap_or(Value::Null),
            worker: None,
        })
    }
}

impl FaultRecord {
    /// What this record did to its replica's clock, if anything: a `clock`
    /// setting or a clock fault (`step`, `strobe`, `wobble`, `jitter`,
    /// `leap`) updates the model; a `restart` starts a new one.
    pub fn clock_event(&self) -> Option<ClockEvent> {
        match self.fault {
            FaultName::Restart => Some(ClockEvent::Restart),
            FaultName::Clock => self.clock_update(),
            FaultName::Fault(kind) if kind.is_clock_fault() => self.clock_update(),
            _ => None,
        }
    }

    fn clock_update(&self) -> Option<ClockEvent> {
        serde_json::from_value(self.settings.clone()).ok().map(|update| ClockEvent::Update(Box::new(update)))
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
///
/// A history line may give its value compact, as an earlier write's plus
/// some items (see `compact`); the record always holds the whole value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "compact::OwnedWriteLine")]
pub struct WriteRecord {
    pub point: usize,
    pub trial: usize,
    pub bucket: CompactString,
    pub key: CompactString,
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
    pub stamp: Option<Stamp>,
    /// `origin:seq`, from the acknowledgement (absent if none came).
    #[serde(default)]
    pub write_id: Option<WriteId>,
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

impl TryFrom<compact::OwnedWriteLine> for WriteRecord {
    type Error = String;

    fn try_from(line: compact::OwnedWriteLine) -> Result<Self, String> {
        match line.into_parts()? {
            (write, None) => Ok(write),
            (write, Some(extends)) => {
                Err(format!("write {} extends write {extends}: read it with the lines before it", write.item))
            }
        }
    }
}

/// One surviving write in a replica's final state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalSibling {
    #[serde(deserialize_with = "exact::items")]
    pub value: Vec<u64>,
    pub stamp: Stamp,
    /// The write it is, or (a merged value) the writes merged into it.
    pub write_id: WriteIds,
}

/// A replica's final state for one key, read after convergence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalRecord {
    pub point: usize,
    pub trial: usize,
    pub bucket: CompactString,
    pub key: CompactString,
    pub replica: ReplicaId,
    pub siblings: Vec<FinalSibling>,
}

pub use self::compact::place_of;
pub use self::fault_name::{FaultKind, FaultName};
pub use self::file::{HistoryError, Lines, file_of_run, open_run, read, read_run};
pub use self::lease::{LeaseEvent, LeaseRecord};
pub use self::stamp::{Stamp, compare_stamps};
pub use self::writer::{HistoryWriter, Sink};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamps_and_values_read_exactly_as_json_does() {
        for stamp in [
            json!([1_700_000_042_004_000_000_i64, 1]),
            json!([1, [2, 3], {"a": [4]}]),
            json!({"1": 2, "3": [4, 5]}),
            json!([]),
            json!(-7),
            json!(18_446_744_073_709_551_615_u64),
            json!(2.5),
            json!("text"),
            json!(true),
        ] {
            let line = format!(
                "{{\"type\":\"final\",\"point\":0,\"trial\":0,\"bucket\":\"b\",\"key\":\"k\",\"replica\":1,\
                 \"siblings\":[{{\"value\":[3,1,2],\"stamp\":{stamp},\"write_id\":\"1:1\"}}]}}"
            );
            let Ok(Record::Final(last)) = Record::from_line(&line) else { panic!("{line}") };
            assert_eq!(last.siblings[0].stamp.to_value(), stamp);
            assert_eq!(last.siblings[0].stamp, Stamp::from_value(stamp));
            assert_eq!(last.siblings[0].value, [3, 1, 2]);
        }
        let write = |stamp: &str| {
            let line = format!(
                "{{\"type\":\"write\",\"point\":0,\"trial\":0,\"bucket\":\"b\",\"key\":\"k\",\"replica\":1,\
                 \"item\":1,\"value\":[1],{stamp}\"invoke_ns\":0,\"complete_ns\":1,\"outcome\":\"unknown\"}}"
            );
            match Record::from_line(&line) {
                Ok(Record::Write(write)) => write.stamp,
                other => panic!("{line}: {other:?}"),
            }
        };
        assert_eq!(write(""), None, "absent");
        assert_eq!(write("\"stamp\":null,"), None, "null");
        assert_eq!(write("\"stamp\":[5,1],"), Some(json!([5, 1]).into()));
        assert!(Record::from_line(r#"{"type":"write","value":"no"}"#).is_err());
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
            stamp: Some(json!([5, 3]).into()),
            write_id: Some(WriteId::new(3, 4)),
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
        assert!(
            matches!(&record, Record::Trial(trial) if trial.engine == EngineKind::Sim && trial.point == 1)
        );
        // What the writer writes, the fast path reads back.
        assert_eq!(Record::from_line(&serde_json::to_string(&record).unwrap()).unwrap(), record);
        assert!(Record::from_line(r#"{"type":"nonsense","point":1}"#).is_err());
        assert!(Record::from_line(r#"{"type":"write","point":"one"}"#).is_err());
    }
}
