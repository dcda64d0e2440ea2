//! A trial's writes spilled to disk write and judge as the trial held
//! whole: the same history lines, and the same verdicts, whatever the
//! ranges of keys the oracle cuts the trial into.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use clocklab::analysis::{Analysis, Judge};
use clocklab::engine::sim::run_trial;
use clocklab::experiment::spec::Spec;
use clocklab::experiment::stop::Stop;
use clocklab::experiment::workload::Counters;
use clocklab::history::spill::WriteSpill;
use clocklab::history::{HistoryWriter, PointRecord, Record, TrialPlan};
use clocklab::sim::SimOptions;

/// Skewed clocks, a crash and a partition, keys retired every 24 writes: drops of
/// every cause, siblings, and keys that come and go.
const SPEC: &str = r#"
replicas = 3
strategies = ["lww-wall", "lww-hlc", "vv", "set-union", "truetime"]
trials = 1
duration_ms = 1500
[workload]
clients = 6
keys = 5
rate_per_client = 150
writes_per_key = 24
[[fault]]
kind = "crash"
at_ms = 400
replica = 2
every_ms = 600
[[fault]]
kind = "partition"
at_ms = 700
replica = 1
groups = [[1], [2, 3]]
duration_ms = 300
[sweep]
parameter = "skew_ms"
values = [30]
"#;

fn whole_history(records: &[Record]) -> Vec<u8> {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut writer = HistoryWriter::create(file.path()).expect("a history");
    records.iter().for_each(|record| writer.append(record).expect("written"));
    writer.finish().expect("finished");
    std::fs::read(file.path()).expect("read back")
}

#[test]
fn a_spilled_trial_writes_and_judges_as_the_trial_held_whole() {
    let spec = Spec::parse(SPEC, Path::new("spill.toml")).expect("a valid spec");
    let plan = TrialPlan { point: 0, trial: 0, value: 30.0 };
    let (outcome, _) =
        run_trial(&spec, plan, Arc::new(Counters::default()), &SimOptions::default(), &Stop::default())
            .expect("not stopped");
    let mut records = vec![Record::Point(PointRecord {
        point: 0,
        params: Default::default(),
        kinds: spec.kinds_at(30.0),
        stamps: spec.stamps_at(30.0),
    })];
    records.extend(outcome.records);
    let is_write = |record: &Record| matches!(record, Record::Write(_));
    let first = records.iter().position(is_write).expect("writes");
    let end = records.iter().rposition(is_write).expect("writes") + 1;
    assert!(records[first..end].iter().all(is_write), "a trial's writes come together");

    let mut spill = WriteSpill::new().expect("a spill");
    for record in &records[first..end] {
        let Record::Write(write) = record else { unreachable!() };
        spill.push(write.clone()).expect("spilled");
    }
    let mut spilled = spill.finish().expect("finished");
    let others: Vec<Record> = records.iter().filter(|record| !is_write(record)).cloned().collect();

    // The history: the same bytes, the writes copied from the spill.
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut writer = HistoryWriter::create(file.path()).expect("a history");
    records[..first].iter().for_each(|record| writer.append(record).expect("written"));
    writer.append_lines(|out| spilled.copy_to(out)).expect("copied");
    records[end..].iter().for_each(|record| writer.append(record).expect("written"));
    writer.finish().expect("finished");
    let mut copied = Vec::new();
    std::fs::File::open(file.path()).expect("open").read_to_end(&mut copied).expect("read");
    assert!(copied == whole_history(&records), "the spilled history differs from the whole one");

    // The verdicts: the same, whether the ranges hold a key or all of them.
    let whole: Analysis = {
        let mut judge = Judge::default();
        judge.point(&records[0]);
        let drops = judge.trial(&records[1..]);
        judge.finish(drops)
    };
    let lww = whole.rows.iter().find(|row| row.strategy == "lww-wall").expect("an lww-wall row");
    assert!(lww.dropped > 0 && lww.keys > 20, "{lww:?}");
    let writes = spilled.lines;
    for range_writes in [1, 100, 700, writes] {
        let mut judge = Judge::default();
        judge.point(&records[0]);
        let mut drops = Vec::new();
        judge
            .trial_spilled(&others[1..], &mut spilled, range_writes, |judged| {
                drops.extend(judged);
                Ok(())
            })
            .expect("judged");
        assert_eq!(judge.finish(drops), whole, "{range_writes} writes at a time");
    }
}
