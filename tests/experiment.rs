//! The experiment runner as a user runs it: `clocklab experiment NAME`, a
//! real process spawning real replicas. A tiny spec keeps each run short.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TINY: &str = r#"
description = "A tiny skew sweep for tests."
replicas = 3
seed = 7
trials = 1
duration_ms = 700

[workload]
clients = 4
keys = 4
rate_per_client = 40

[network]
delay_ms = [1, 2]

[sweep]
parameter = "skew_ms"
values = [0, 500]
"#;

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(spec: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("experiments")).expect("experiments dir");
        std::fs::write(dir.path().join("experiments/tiny.toml"), spec).expect("write spec");
        Self { dir }
    }

    fn start(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_clocklab"))
            .args(["experiment", "tiny", "--experiments"])
            .arg(self.dir.path().join("experiments"))
            .arg("--results")
            .arg(self.dir.path().join("results"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start clocklab experiment")
    }

    fn runs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path().join("results/tiny"))
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default()
    }
}

/// Replica processes whose parent is `runner`.
fn replicas_of(runner: u32) -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised command name: state, ppid, ...
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        let command = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
        if parent == Some(runner) && command.contains("replica") {
            found.insert(pid);
        }
    }
    found
}

/// Whether a process still exists (and is not a zombie awaiting its reaper).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn wait_gone(pids: &BTreeSet<u32>) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&pid| alive(pid)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON")
}

#[test]
fn a_run_writes_its_results_and_leaves_no_replica_behind() {
    let lab = Lab::new(TINY);
    let mut runner = lab.start();
    let mut seen = BTreeSet::new();
    let status = loop {
        seen.extend(replicas_of(runner.id()));
        if let Some(status) = runner.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = runner.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "the run failed:\n{stderr}");
    assert!(stderr.contains("seed 7"), "the seed is printed:\n{stderr}");
    assert!(stderr.contains("wall time"), "the wall time is printed:\n{stderr}");
    assert!(seen.len() >= 3, "replica processes were seen while it ran: {seen:?}");
    assert_eq!(wait_gone(&seen), Vec::<u32>::new(), "replicas outlived the runner");

    let runs = lab.runs();
    assert_eq!(runs.len(), 1, "one run directory: {runs:?}");
    let run = &runs[0];
    for file in ["spec.toml", "history.jsonl", "summary.json", "summary.csv", "drops.json", "report.md"] {
        assert!(run.join(file).is_file(), "{file} is missing");
    }
    for plot in ["dropped", "causes", "siblings"] {
        assert!(run.join(format!("{plot}.svg")).is_file() && run.join(format!("{plot}.png")).is_file());
    }
    let rows = read_json(&run.join("summary.json"));
    let rows = rows.as_array().expect("summary rows");
    assert_eq!(rows.len(), 2 * 3, "2 points x 1 trial x 3 strategies");
    for row in rows {
        assert!(row["acked"].as_u64().unwrap() > 0, "every strategy acknowledged writes: {row}");
        assert_eq!(row["diverged_keys"], 0, "replicas converged: {row}");
        if row["strategy"] == "vv" {
            assert_eq!(row["dropped"], 0, "vv drops nothing: {row}");
        }
    }
    let csv = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    assert!(csv.starts_with("point,trial,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 6);

    // `clocklab analyze` recomputes the same summary from the history alone.
    let before = std::fs::read_to_string(run.join("summary.json")).unwrap();
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let analyze = Command::new(env!("CARGO_BIN_EXE_clocklab")).arg("analyze").arg(run).output().unwrap();
    assert!(analyze.status.success(), "{}", String::from_utf8_lossy(&analyze.stderr));
    assert_eq!(std::fs::read_to_string(run.join("summary.json")).unwrap(), before);
}

#[test]
fn ctrl_c_stops_the_replicas_and_removes_the_unfinished_run() {
    let lab = Lab::new(&TINY.replace("duration_ms = 700", "duration_ms = 20000"));
    let runner = lab.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    let replicas = loop {
        let replicas = replicas_of(runner.id());
        if replicas.len() == 3 {
            break replicas;
        }
        assert!(Instant::now() < deadline, "the replicas never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(300)); // let the workload start
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(runner.id() as libc::pid_t, libc::SIGINT) };
    let output = runner.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an interrupted run is not a success");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(wait_gone(&replicas), Vec::<u32>::new(), "replicas outlived the interrupted runner");
    assert!(lab.runs().is_empty(), "the unfinished run was removed: {:?}", lab.runs());
}

#[test]
fn a_bad_spec_is_refused_with_the_field_and_file_named() {
    let lab = Lab::new(&TINY.replace("keys = 4", "keyz = 4"));
    let output = lab.start().wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("tiny.toml") && stderr.contains("keyz"), "{stderr}");
    assert!(lab.runs().is_empty());
}

/// The committed `skew` spec, in its `--quick` form (the CI smoke run),
/// must show the lesson of the experiment.
#[test]
fn the_quick_skew_sweep_shows_what_the_readme_claims() {
    let results = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["experiment", "skew", "--quick", "--experiments"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"))
        .arg("--results")
        .arg(results.path())
        .output()
        .expect("run the quick skew sweep");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let run = std::fs::read_dir(results.path().join("skew")).unwrap().flatten().next().unwrap().path();
    let rows = read_json(&run.join("summary.json"));
    let rows: Vec<&Value> = rows.as_array().unwrap().iter().collect();
    let of = |strategy: &str| -> Vec<&Value> {
        rows.iter().copied().filter(|row| row["strategy"] == strategy).collect()
    };
    let percent = |row: &Value| 100.0 * row["dropped"].as_f64().unwrap() / row["acked"].as_f64().unwrap();

    let wall = of("lww-wall");
    let (no_skew, most_skew) = (percent(wall[0]), percent(wall[wall.len() - 1]));
    assert!(most_skew > no_skew + 10.0, "lww-wall drops grow with skew: {no_skew:.1}% -> {most_skew:.1}%");
    for row in of("lww-hlc") {
        assert_eq!(row["dropped_causality"], 0, "lww-hlc never violates causality: {row}");
    }
    for row in of("vv") {
        assert_eq!(row["dropped"], 0, "vv drops nothing: {row}");
    }
    for row in &rows {
        assert_eq!(row["diverged_keys"], 0, "replicas converge: {row}");
        assert_eq!(row["final_not_max"], 0, "LWW ends on its max stamp: {row}");
    }
}
