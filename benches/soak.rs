//! Soak benchmark: a thousand chaos trials in the simulator, within five
//! minutes and two gigabytes.
//!
//! Runs the `chaos` workload (five replicas, ten clients on 40 keys at 40
//! operations a second each, a random nemesis of clock steps and strobes,
//! cuts, partitions, pauses and crashes every 300 ms; the seven built-in
//! strategies) at one point, 100 ms of skew, for `SOAK_TRIALS` trials of
//! 8 s each (default 1,000), as a user would: `clocklab experiment soak
//! --sim --gzip`. It prints the wall time, the disk the run directory takes
//! and the peak memory of the process, against the issue's bounds (5
//! minutes, 2 GB on disk), and then the oracle's verdict from the run's
//! summary: what the strategies that keep every write (`vv`, `vv-server`,
//! `set-union`) lost, keys the replicas disagree about, and last-write-wins
//! drops no write explains.
//!
//! Run it alone, after a release build (`cargo bench --bench soak`; about
//! four minutes on two cores).

mod common;

use std::ffi::OsStr;

const SPEC: &str = r#"
description = "The soak benchmark: chaos, one point, many trials."
replicas = 5
seed = 1
trials = TRIALS
duration_ms = 8000
engine = "sim"

[workload]
clients = 10
keys = 40
rate_per_client = 40
replica_choice = "random"

[network]
delay_ms = [1, 4]

[chaos]
every_ms = 300
longest_ms = 600

[sweep]
parameter = "skew_ms"
values = [100]
"#;

/// The issue's bounds.
const MOST_SECONDS: f64 = 300.0;
const MOST_DISK_BYTES: u64 = 2_000_000_000;

/// Bytes the files directly in `dir` take.
fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

fn main() {
    let trials: u64 = std::env::var("SOAK_TRIALS").ok().and_then(|text| text.parse().ok()).unwrap_or(1000);
    common::binary();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let experiments = dir.path().join("experiments");
    let results = dir.path().join("results");
    std::fs::create_dir(&experiments).unwrap();
    std::fs::write(experiments.join("soak.toml"), SPEC.replace("TRIALS", &trials.to_string())).unwrap();
    println!("soak: {trials} chaos trials of 8 s in the simulator, 5 replicas, skew 100 ms, --gzip");
    let args: [&OsStr; 8] = [
        "experiment".as_ref(),
        "soak".as_ref(),
        "--gzip".as_ref(),
        "--experiments".as_ref(),
        experiments.as_os_str(),
        "--results".as_ref(),
        results.as_os_str(),
        "--sim".as_ref(),
    ];
    let measured = common::run_clocklab(&args, true);
    let run = std::fs::read_dir(results.join("soak")).unwrap().flatten().next().unwrap().path();
    let disk = disk_bytes(&run);
    let within = |ok: bool| if ok { "within" } else { "OVER" };
    println!(
        "{} writes acknowledged; wall {:.1} s ({} {MOST_SECONDS:.0} s); disk {:.2} GB ({} 2 GB); peak memory {:.0} MB",
        measured.acknowledged(),
        measured.wall_s,
        within(measured.wall_s <= MOST_SECONDS),
        disk as f64 / 1e9,
        within(disk <= MOST_DISK_BYTES),
        measured.peak_mb
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let rows = summary.as_array().expect("summary rows");
    let total = |strategy: Option<&str>, field: &str| -> u64 {
        rows.iter()
            .filter(|row| strategy.is_none_or(|strategy| row["strategy"] == strategy))
            .map(|row| row[field].as_u64().unwrap_or(0))
            .sum()
    };
    for strategy in ["vv", "vv-server", "set-union"] {
        println!(
            "  {strategy:<10} lost {} of {} acknowledged writes",
            total(Some(strategy), "dropped"),
            total(Some(strategy), "acked")
        );
    }
    println!("  keys the replicas disagree about at the end: {}", total(None, "diverged_keys"));
    println!(
        "  last-write-wins drops with no write to explain them: {} of {}",
        total(None, "dropped_without_killer"),
        total(None, "dropped")
    );
    println!(
        "  trials whose replicas did not converge: {}",
        measured.stderr.lines().filter(|line| line.contains("did not converge")).count()
    );
}
