//! Oracle benchmark: how fast does the oracle judge a long history?
//!
//! Builds a synthetic history of 1,000,000 write records (three strategies,
//! many keys, random replicas, skewed stamps, overlapping true times, reads
//! of recent items) with final states, writes it as `history.jsonl`, and
//! times reading it back and running the oracle. Prints records, seconds and
//! writes per second for each. Run with `cargo bench --bench oracle` (or
//! `just bench-oracle`); `ORACLE_WRITES` changes the size, and `ORACLE_HISTORY=PATH`
//! keeps the history at PATH and reads it from there next time (to profile
//! only the timed part).

use std::time::Instant;

use clocklab::analysis::analyze;
use clocklab::history::{
    self, FinalRecord, FinalSibling, HistoryWriter, Outcome, PointRecord, Record, WriteRecord,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;

/// The allocator the `clocklab` binary uses, so the oracle is timed as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SEED: u64 = 2014;
const KEYS: usize = 20_000;
const REPLICAS: u32 = 3;
const STRATEGIES: [&str; 3] = ["lww-wall", "lww-hlc", "vv"];

/// One key's writes in one bucket: a little read-modify-write story where
/// replica 1's clock runs 50 ms ahead, reads see a recent prefix, and the
/// final value is the highest stamp's (LWW) or the latest write (vv).
fn key_history(random: &mut StdRng, bucket: &str, key: usize, writes: usize, records: &mut Vec<Record>) {
    let mut now: i64 = 1_000_000_000;
    let mut written: Vec<(u64, Vec<u64>, serde_json::Value, String)> = Vec::new();
    for index in 0..writes {
        let replica = random.random_range(1..=REPLICAS);
        let item = (key * 1_000 + index) as u64;
        let seen = written.len().saturating_sub(random.random_range(0..3));
        let mut value: Vec<u64> =
            written.get(seen.wrapping_sub(1)).map(|last| last.1.clone()).unwrap_or_default();
        value.truncate(16);
        value.push(item);
        let skew = if replica == 1 { 50_000_000 } else { 0 };
        let stamp = if bucket == "vv" { json!([replica, index + 1]) } else { json!([now + skew, replica]) };
        let write_id = format!("{replica}:{}", index + 1);
        let outcome = if random.random_range(0..100) == 0 { Outcome::Unknown } else { Outcome::Ok };
        let acked = outcome == Outcome::Ok;
        records.push(Record::Write(WriteRecord {
            point: 0,
            trial: 0,
            bucket: bucket.into(),
            key: format!("k{key}").into(),
            replica,
            item,
            value: value.clone(),
            read_siblings: 1,
            stamp: acked.then(|| stamp.clone().into()),
            write_id: acked.then(|| write_id.parse().expect("a write id")),
            metadata_bytes: None,
            invoke_ns: now,
            complete_ns: now + random.random_range(1_000_000..5_000_000),
            outcome,
        }));
        written.push((item, value, stamp, write_id));
        now += random.random_range(0..4_000_000);
    }
    let winner = if bucket == "vv" {
        written.last().cloned()
    } else {
        written.iter().max_by(|a, b| clocklab::history::compare_stamps(&a.2, &b.2)).cloned()
    };
    if let Some((_, value, stamp, write_id)) = winner {
        for replica in 1..=REPLICAS {
            records.push(Record::Final(FinalRecord {
                point: 0,
                trial: 0,
                bucket: bucket.into(),
                key: format!("k{key}").into(),
                replica,
                siblings: vec![FinalSibling {
                    value: value.clone(),
                    stamp: stamp.clone().into(),
                    write_id: write_id.parse().expect("a write id"),
                }],
            }));
        }
    }
}

fn main() {
    // As the binary does (see clocklab::memory).
    clocklab::memory::use_small_pages();
    // ORACLE_HISTORY=PATH keeps the generated history at PATH and, on later
    // runs, reads it from there without generating it again: for profiling
    // only the timed part.
    let kept = std::env::var_os("ORACLE_HISTORY").map(std::path::PathBuf::from);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = kept.clone().unwrap_or_else(|| dir.path().join(history::HISTORY_FILE));
    if kept.is_none() || !path.exists() {
        generate(&path);
    }
    let size = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);

    let started = Instant::now();
    let records = history::read(&path).expect("read history");
    let read_seconds = started.elapsed().as_secs_f64();
    let writes = records.iter().filter(|record| matches!(record, Record::Write(_))).count();
    println!(
        "read     {:>6.2} s  {:>10.0} writes/s  ({:.0} MB of JSON lines)",
        read_seconds,
        writes as f64 / read_seconds,
        size as f64 / 1e6
    );

    let started = Instant::now();
    let analysis = analyze(&records);
    let analyze_seconds = started.elapsed().as_secs_f64();
    let dropped: usize = analysis.rows.iter().map(|row| row.dropped).sum();
    println!(
        "analyze  {:>6.2} s  {:>10.0} writes/s  ({dropped} drops found and explained)",
        analyze_seconds,
        writes as f64 / analyze_seconds
    );
    let total = read_seconds + analyze_seconds;
    println!("total    {total:>6.2} s  {:>10.0} writes/s  (target: at most 1 s)", writes as f64 / total);
}

/// Writes the synthetic history to `path`.
fn generate(path: &std::path::Path) {
    let total: usize =
        std::env::var("ORACLE_WRITES").ok().and_then(|text| text.parse().ok()).unwrap_or(1_000_000);
    let histories = KEYS * STRATEGIES.len();
    let (per_key, remainder) = (total / histories, total % histories);
    let mut random = StdRng::seed_from_u64(SEED);
    let mut params = serde_json::Map::new();
    params.insert("parameter".into(), json!("skew_ms"));
    params.insert("skew_ms".into(), json!(50));
    let mut records = vec![Record::Point(PointRecord {
        point: 0,
        params,
        kinds: Default::default(),
        stamps: Default::default(),
    })];
    for (index, bucket) in STRATEGIES.iter().enumerate() {
        for key in 0..KEYS {
            let extra = usize::from(index * KEYS + key < remainder);
            key_history(&mut random, bucket, key, per_key + extra, &mut records);
        }
    }
    let writes = records.iter().filter(|record| matches!(record, Record::Write(_))).count();
    println!(
        "oracle: {writes} writes on {KEYS} keys x {} strategies, {} records, seed {SEED}",
        STRATEGIES.len(),
        records.len()
    );
    let mut writer = HistoryWriter::create(path).expect("create history");
    for record in &records {
        writer.append(record).expect("write history");
    }
    writer.flush().expect("flush history");
}
