//! Cost benchmark: does a run's cost grow in proportion to its work?
//!
//! Runs one simulated trial of the `skew` workload (8 clients, 40 keys, 60
//! operations per second each, the spec's six strategies, clocks 100 ms
//! apart) as a user does, `clocklab experiment ... --sim`, once per trial
//! length, and prints for each: the acknowledged writes, the history's size
//! and bytes per acknowledged write, the wall time (the whole command: the
//! trials, the oracle, the report and plots) and per write, and the peak
//! memory of the process (its maximum resident set, from `wait4`). Then it
//! prints the ratios the issue asks about: bytes per write across lengths,
//! time per write across lengths, and the longest trial's peak memory
//! against the 20 s trial's.
//!
//! Run it alone, after a release build (`cargo bench --bench cost`; about a
//! minute). `COST_LENGTHS=5,20,80` picks the trial lengths in seconds
//! (default 5, 20, 80, 320).

mod common;

use std::ffi::OsStr;

const SPEC: &str = r#"
description = "The cost benchmark: one trial of the skew workload."
replicas = 3
strategies = ["lww-wall", "lww-hlc", "lww-lamport", "vv", "vv-server", "set-union"]
seed = 1
trials = 1
duration_ms = DURATION
engine = "sim"

[workload]
clients = 8
keys = 40
rate_per_client = 60
replica_choice = "random"

[network]
delay_ms = [1, 4]

[sweep]
parameter = "skew_ms"
values = [100]
"#;

/// One length's figures.
struct Figures {
    seconds: u64,
    acked: u64,
    history_bytes: u64,
    wall_s: f64,
    peak_mb: f64,
}

impl Figures {
    fn bytes_per_write(&self) -> f64 {
        self.history_bytes as f64 / self.acked.max(1) as f64
    }
    fn us_per_write(&self) -> f64 {
        self.wall_s * 1e6 / self.acked.max(1) as f64
    }
}

fn main() {
    let lengths: Vec<u64> = std::env::var("COST_LENGTHS")
        .ok()
        .map(|text| text.split(',').filter_map(|part| part.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![5, 20, 80, 320]);
    common::binary();
    println!("cost of one simulated trial of the skew workload, by its length");
    println!(
        "{:>8} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "trial", "acked", "history", "B/write", "wall", "us/write", "peak"
    );
    let mut rows = Vec::new();
    for seconds in lengths {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("experiments")).unwrap();
        let spec = SPEC.replace("DURATION", &(seconds * 1000).to_string());
        std::fs::write(dir.path().join("experiments/cost.toml"), spec).unwrap();
        let experiments = dir.path().join("experiments");
        let results = dir.path().join("results");
        let args =
            [OsStr::new("experiment"), "cost".as_ref(), "--experiments".as_ref(), experiments.as_os_str()];
        let measured =
            common::run_clocklab(&[&args[..], &["--results".as_ref(), results.as_os_str()]].concat(), false);
        let (acked, wall_s) = (measured.acknowledged(), measured.wall_s);
        let run =
            std::fs::read_dir(dir.path().join("results/cost")).unwrap().flatten().next().unwrap().path();
        let history_bytes = std::fs::metadata(run.join("history.jsonl")).map(|meta| meta.len()).unwrap_or(0);
        let figures = Figures { seconds, acked, history_bytes, wall_s, peak_mb: measured.peak_mb };
        println!(
            "{:>7}s {:>12} {:>10.1}MB {:>10.0} {:>9.2}s {:>10.1} {:>8.0}MB",
            figures.seconds,
            figures.acked,
            figures.history_bytes as f64 / 1e6,
            figures.bytes_per_write(),
            figures.wall_s,
            figures.us_per_write(),
            figures.peak_mb
        );
        rows.push(figures);
    }
    let spread = |values: Vec<f64>| {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(0.0, f64::max);
        high / low
    };
    println!(
        "bytes per write, most against least: {:.2}x; time per write: {:.2}x",
        spread(rows.iter().map(Figures::bytes_per_write).collect()),
        spread(rows.iter().map(Figures::us_per_write).collect())
    );
    if let (Some(twenty), Some(longest)) = (rows.iter().find(|row| row.seconds == 20), rows.last()) {
        println!(
            "peak memory, {} s trial against 20 s: {:.2}x",
            longest.seconds,
            longest.peak_mb / twenty.peak_mb
        );
    }
}
