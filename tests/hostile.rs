//! A user who mistypes or over-asks, and one who changes their mind.
//!
//! Every bad spec is refused before anything starts, naming the file and
//! the field, with the numbers when it asks for too much work; a run whose
//! clients cannot keep to their schedule says so. And a run in the
//! simulator stops at once when it is told to, wherever it is: Ctrl-C
//! (SIGINT) or SIGTERM in the middle of a long simulated trial ends the
//! command within two seconds, with the message it always prints, and
//! leaves no run directory; a dashboard job in the simulator, cancelled,
//! stops as fast.

mod browser;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use browser::Dashboard;
use reqwest::Method;
use serde_json::json;

/// A spec whose one trial keeps the simulator busy for a long time (over a
/// million operations), within the limits a spec may ask for.
const LONG_TRIAL: &str = r#"description = "One long simulated trial, to be interrupted."
engine = "sim"
trials = 1
duration_ms = 60000
strategies = ["lww-wall", "vv"]

[workload]
clients = 20
keys = 40
rate_per_client = 1000

[sweep]
parameter = "skew_ms"
values = [0]
"#;

/// How long the command may take to stop.
const STOP_WITHIN: Duration = Duration::from_secs(2);

fn spec_in(dir: &Path) -> PathBuf {
    let path = dir.join("long-trial.toml");
    std::fs::write(&path, LONG_TRIAL).expect("write the spec");
    path
}

fn interrupted_by(signal: libc::c_int) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a directory");
    let spec = spec_in(dir.path());
    let results = dir.path().join("results");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .arg("experiment")
        .arg(&spec)
        .arg("--results")
        .arg(&results)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start clocklab experiment");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the run announces itself");
    assert!(line.starts_with("experiment long-trial in the simulator"), "{line}");
    // Well inside the trial: the run directory exists, nothing is written yet.
    std::thread::sleep(Duration::from_millis(1500));
    let runs = results.join("long-trial");
    assert_eq!(
        std::fs::read_dir(&runs).map(Iterator::count).unwrap_or(0),
        1,
        "the run's directory, while it runs"
    );
    assert!(child.try_wait().expect("wait").is_none(), "still simulating");
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child, which has not been reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if sent.elapsed() > STOP_WITHIN {
            let _ = child.kill();
            panic!("the run was still going {} s after signal {signal}", STOP_WITHIN.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(!status.success(), "an interrupted run fails");
    assert!(
        rest.contains("interrupted: the replicas were stopped and the unfinished run removed"),
        "the message it always prints: {rest}"
    );
    let left: Vec<_> = std::fs::read_dir(&runs)
        .map(|dir| dir.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no run directory is left: {left:?}");
}

#[test]
fn ctrl_c_stops_a_simulated_trial_within_two_seconds_and_leaves_nothing() {
    interrupted_by(libc::SIGINT);
}

#[test]
fn sigterm_stops_a_simulated_trial_within_two_seconds_and_leaves_nothing() {
    interrupted_by(libc::SIGTERM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_simulator_job_stops_at_once() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a directory");
    let experiments = dir.path().join("experiments");
    std::fs::create_dir_all(&experiments).expect("an experiments directory");
    spec_in(&experiments);
    let results = dir.path().join("results");
    let dashboard =
        Dashboard::start_with(&results, &["--experiments", experiments.to_str().expect("a path")]);
    let (status, job) =
        dashboard.send(Method::POST, "/api/jobs", json!({"experiment": "long-trial", "size": "full"})).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_u64().expect("an id");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cancelled = Instant::now();
    let (status, job) = dashboard.send(Method::POST, &format!("/api/jobs/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(cancelled.elapsed() < STOP_WITHIN, "the cancel took {:?}", cancelled.elapsed());
    // The simulator's threads stopped too: the dashboard's process goes idle.
    let busy = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or_default().split_whitespace().collect();
        fields.get(11).and_then(|ticks| ticks.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|ticks| ticks.parse::<u64>().ok()).unwrap_or(0)
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = busy(dashboard.child.id());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = busy(dashboard.child.id()) - before;
    assert!(spent < 50, "the dashboard kept computing after the cancel: {spent} ticks in a second");
    let left: Vec<_> = std::fs::read_dir(results.join("long-trial"))
        .map(|dir| dir.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no run directory is left: {left:?}");
}

/// Runs `clocklab experiment` on a spec of `text`; returns whether it
/// succeeded, what it printed on stderr, and the results directory.
fn experiment(name: &str, text: &str) -> (bool, String, tempfile::TempDir) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a directory");
    let spec = dir.path().join(format!("{name}.toml"));
    std::fs::write(&spec, text).expect("write the spec");
    let output = Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .arg("experiment")
        .arg(&spec)
        .arg("--results")
        .arg(dir.path().join("results"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run clocklab experiment");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned(), dir)
}

#[test]
fn the_specs_a_hostile_user_writes_are_refused_before_anything_starts() {
    let sweep = "[sweep]\nparameter = \"skew_ms\"\nvalues = [0]\n";
    let cases = [
        (
            "flood",
            format!("engine = \"sim\"\n[workload]\nclients = 1000\nrate_per_client = 100000\n{sweep}"),
            "field `workload.rate_per_client`",
            "100,000 operations a second per client is more than the limit of 10,000",
        ),
        (
            "huge",
            format!("[workload]\nclients = 100000\nrate_per_client = 1000000\n{sweep}"),
            "field `workload.clients`",
            "100,000 clients is more than the limit of 1,000",
        ),
        (
            "years",
            format!("trials = 100000\nduration_ms = 100000\n{sweep}"),
            "field `trials`",
            "100,000 trials is more than the limit of 10,000",
        ),
        ("negative", format!("trials = -1\n{sweep}"), "field `trials`", "expected a whole number, 0 or more"),
        ("enormous", format!("duration_ms = 1e300\n{sweep}"), "field `duration_ms`", "1.0e300"),
        (
            "bogus",
            "[sweep]\nparameter = \"bogus\"\nvalues = [0]\n".to_string(),
            "field `sweep.parameter`",
            "unknown variant `bogus`, expected one of",
        ),
    ];
    for (name, text, field, problem) in cases {
        let started = Instant::now();
        let (succeeded, stderr, dir) = experiment(name, &text);
        assert!(!succeeded, "{name}: refused");
        assert!(
            stderr.contains(&format!("{name}.toml: {field}")),
            "{name}: the file and the field: {stderr}"
        );
        assert!(stderr.contains(problem), "{name}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}: refused at once");
        assert!(!dir.path().join("results").exists(), "{name}: nothing started, no run directory");
    }
}

#[test]
fn a_run_whose_clients_cannot_keep_to_their_schedule_says_so() {
    // Five clients asking for 5,000 operations a second each: more than the
    // simulated replicas answer.
    let text = "engine = \"sim\"\ntrials = 1\nduration_ms = 500\nstrategies = [\"lww-wall\"]\n\
                [workload]\nclients = 5\nrate_per_client = 5000\n[sweep]\nparameter = \"skew_ms\"\nvalues = [0]\n";
    let (succeeded, stderr, dir) = experiment("fast", text);
    assert!(succeeded, "{stderr}");
    assert!(
        stderr.contains("warning: The workload did not keep to its schedule: it asked for 12,500 operations"),
        "{stderr}"
    );
    let runs = dir.path().join("results/fast");
    let run = std::fs::read_dir(&runs).expect("a run").flatten().next().expect("one run").path();
    let report = std::fs::read_to_string(run.join("report.md")).expect("a report");
    let said = report.split("## What happened").nth(1).unwrap_or_default();
    assert!(said.trim_start().starts_with("**The workload did not keep to its schedule"), "{report}");
    // The same clients at a pace the replicas keep: nothing to say.
    let (succeeded, stderr, _) = experiment("paced", &text.replace("5000", "50"));
    assert!(succeeded && !stderr.contains("did not keep to its schedule"), "{stderr}");
}
