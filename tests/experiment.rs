//! The experiment runner as a user runs it: `clocklab experiment NAME`, a
//! real process spawning real replicas, or (`--sim`) the simulator.
//!
//! Whether each experiment shows what the README says it shows is checked
//! in the simulator: deterministic, so a verdict never depends on how busy
//! the machine is, and fast. A few runs on real processes (a tiny spec, the
//! quick `skew` and `crash` sweeps) prove the real path works end to end.

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

/// Runs `spec` as `tiny` to the end in a lab of its own; returns the lab
/// (which holds the results) and the run's directory.
fn run_spec(spec: &str) -> (Lab, PathBuf) {
    let lab = Lab::new(spec);
    let output = lab.start().wait_with_output().expect("the run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let run = lab.runs().pop().expect("a run");
    (lab, run)
}

/// The `fault` records of a run's history.
fn fault_records(run: &Path) -> Vec<Value> {
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("a history");
    history
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .filter(|record| record["type"] == "fault")
        .collect()
}

/// One strategy's row of a one-point, one-trial run's summary.
fn row_of(run: &Path, strategy: &str) -> Value {
    let rows = read_json(&run.join("summary.json"));
    rows.as_array()
        .unwrap()
        .iter()
        .find(|row| row["strategy"] == strategy)
        .expect("the strategy's row")
        .clone()
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
    let strategies = clocklab::strategy::NAMES.len();
    assert_eq!(rows.len(), 2 * strategies, "2 points x 1 trial x every strategy (the default)");
    for row in rows {
        assert!(row["acked"].as_u64().unwrap() > 0, "every strategy acknowledged writes: {row}");
        assert_eq!(row["diverged_keys"], 0, "replicas converged: {row}");
        if row["strategy"] == "vv" {
            assert_eq!(row["dropped"], 0, "vv drops nothing: {row}");
        }
    }
    let csv = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    assert!(csv.starts_with("point,trial,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 2 * strategies);

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

/// Which engine a test runs an experiment on.
#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Processes,
    Sim,
}

/// Runs a committed spec in its `--quick` form on `engine`; returns the
/// results directory (removed when dropped) and the run's directory.
fn quick_run(experiment: &str, engine: Engine) -> (tempfile::TempDir, PathBuf) {
    let results = tempfile::tempdir().expect("temporary directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_clocklab"));
    command
        .args(["experiment", experiment, "--quick", "--experiments"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"))
        .arg("--results")
        .arg(results.path());
    if engine == Engine::Sim {
        command.arg("--sim");
    }
    let output = command.output().expect("run the quick sweep");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let run = std::fs::read_dir(results.path().join(experiment)).unwrap().flatten().next().unwrap().path();
    (results, run)
}

/// Runs a committed spec in its `--quick` form on `engine` and returns its
/// summary rows, checked for what every run must show.
fn quick_rows(experiment: &str, engine: Engine) -> Vec<Value> {
    let (_results, run) = quick_run(experiment, engine);
    let rows = read_json(&run.join("summary.json"));
    let rows = rows.as_array().expect("rows").clone();
    for row in &rows {
        assert_eq!(row["diverged_keys"], 0, "{experiment}: replicas converge: {row}");
        assert_eq!(row["final_not_max"], 0, "{experiment}: LWW ends on its max stamp: {row}");
        assert_eq!(row["dropped_without_killer"], 0, "{experiment}: every drop is explained: {row}");
        if ["vv", "vv-server", "set-union"].contains(&row["strategy"].as_str().unwrap_or_default()) {
            assert_eq!(row["dropped"], 0, "{experiment}: strategies that keep or merge drop nothing: {row}");
        }
        if ["lww-hlc", "lww-lamport"].contains(&row["strategy"].as_str().unwrap_or_default()) {
            assert_eq!(row["dropped_causality"], 0, "{experiment}: logical clocks keep causal order: {row}");
        }
        if row["strategy"] == "lww-hlc" {
            assert_eq!(row["dropped_causality"], 0, "{experiment}: lww-hlc keeps causal order: {row}");
            assert_eq!(row["stamp_regressions"], 0, "{experiment}: an HLC never goes back: {row}");
        }
    }
    rows
}

/// The rows of one strategy, in sweep order.
fn of<'a>(rows: &'a [Value], strategy: &str) -> Vec<&'a Value> {
    rows.iter().filter(|row| row["strategy"] == strategy).collect()
}

fn percent(row: &Value) -> f64 {
    100.0 * row["dropped"].as_f64().unwrap() / row["acked"].as_f64().unwrap()
}

/// `lww-wall` drops clearly more at the sweep's last value than at its first.
fn wall_clock_drops_grow(experiment: &str, rows: &[Value]) {
    let wall = of(rows, "lww-wall");
    let (first, last) = (percent(wall[0]), percent(wall[wall.len() - 1]));
    assert!(last > first + 5.0, "{experiment}: lww-wall drops grow: {first:.1}% -> {last:.1}%");
}

#[test]
fn the_quick_skew_sweep_shows_what_the_readme_claims() {
    // The claim about rates is made in the simulator, where it is the same
    // on every machine; real processes are held to what cannot fail by
    // chance: every strategy took writes at every skew, and the invariants
    // quick_rows checks (convergence, every drop explained, nothing lost
    // by the strategies that keep or merge, causal order under logical
    // clocks).
    let simulated = quick_rows("skew", Engine::Sim);
    let wall = of(&simulated, "lww-wall");
    let (no_skew, most_skew) = (percent(wall[0]), percent(wall[wall.len() - 1]));
    assert!(most_skew > no_skew + 10.0, "lww-wall drops grow with skew: {no_skew:.1}% -> {most_skew:.1}%");
    for rows in [simulated, quick_rows("skew", Engine::Processes)] {
        for strategy in ["lww-wall", "lww-hlc", "lww-lamport", "vv", "vv-server", "set-union"] {
            let rows = of(&rows, strategy);
            assert_eq!(rows.len(), 4, "{strategy} at every skew");
            assert!(rows.iter().all(|row| row["acked"].as_u64().unwrap() > 0), "{strategy} took writes");
            assert!(
                rows.iter().all(|row| row["latency_p99_ms"].as_f64().unwrap() > 0.0),
                "{strategy}: latency"
            );
        }
    }
}

#[test]
fn commit_wait_buys_safety_from_skew_with_latency() {
    // Quick values: epsilon 0, 25, 50, 100 ms; true offsets are +-50 ms.
    let rows = quick_rows("commit-wait", Engine::Sim);
    let truetime = of(&rows, "truetime");
    let epsilon = |row: &Value| row["value"].as_f64().unwrap();
    let clock_caused =
        |row: &Value| row["dropped_causality"].as_u64().unwrap() + row["dropped_realtime"].as_u64().unwrap();
    assert_eq!(epsilon(truetime[0]), 0.0);
    assert!(clock_caused(truetime[0]) > 0, "with no uncertainty, skew drops writes: {}", truetime[0]);
    for row in truetime.iter().filter(|row| epsilon(row) >= 50.0) {
        assert_eq!(clock_caused(row), 0, "epsilon covers the offsets: no clock-caused drop: {row}");
    }
    let largest = truetime[truetime.len() - 1];
    let p50 = largest["latency_p50_ms"].as_f64().unwrap();
    assert!(p50 >= 2.0 * epsilon(largest), "commit wait: p50 {p50} ms >= 2 x {} ms", epsilon(largest));
    // Its waits slow only its own bucket: lww-wall keeps the schedule.
    let acked = |row: &Value| row["acked"].as_u64().unwrap();
    let wall = of(&rows, "lww-wall");
    assert!(
        acked(wall[wall.len() - 1]) > 3 * acked(largest),
        "lww-wall {} vs truetime {}",
        wall[wall.len() - 1],
        largest
    );
}

#[test]
fn an_ntp_step_back_loses_wall_clock_writes_and_never_sends_an_hlc_back() {
    // Quick values: step -500, 0, +500 ms.
    let rows = quick_rows("ntp-step", Engine::Sim);
    let wall = of(&rows, "lww-wall");
    let (back, none, forward) = (percent(wall[0]), percent(wall[1]), percent(wall[2]));
    assert!(back > none + 5.0, "a step back loses more: {back:.1}% vs {none:.1}%");
    assert!(forward > none + 5.0, "a step forward loses more: {forward:.1}% vs {none:.1}%");
    assert!(wall[0]["stamp_regressions"].as_u64().unwrap() > 0, "the wall clock went back: {}", wall[0]);
    assert_eq!(wall[1]["stamp_regressions"], 0, "without a step it does not: {}", wall[1]);
}

#[test]
fn drifting_clocks_lose_wall_clock_writes_and_frequent_resyncs_bound_it() {
    wall_clock_drops_grow("drift", &quick_rows("drift", Engine::Sim));
    // Quick values: resync never, then every 20 ms.
    let rows = quick_rows("resync", Engine::Sim);
    let wall = of(&rows, "lww-wall");
    assert!(percent(wall[0]) > percent(wall[1]) + 5.0, "resyncing often drops less: {wall:?}");
}

#[test]
fn coarse_clocks_tie_and_the_tiebreak_drops_wall_clock_writes() {
    let rows = quick_rows("resolution", Engine::Sim);
    wall_clock_drops_grow("resolution", &rows);
    let wall = of(&rows, "lww-wall");
    assert!(wall[1]["dropped_causality"].as_u64().unwrap() > 0, "ties break causality: {}", wall[1]);
}

#[test]
fn a_partition_makes_lww_drop_concurrent_writes_and_vv_keep_siblings() {
    // Quick values: no cut, then 500 ms cuts.
    let rows = quick_rows("partition", Engine::Sim);
    let hlc = of(&rows, "lww-hlc");
    assert!(percent(hlc[1]) > percent(hlc[0]) + 5.0, "even lww-hlc loses the other side's writes: {hlc:?}");
    assert_eq!(hlc[1]["dropped_causality"], 0);
    let vv = of(&rows, "vv");
    let siblings = |row: &Value| row["siblings"].as_u64().unwrap();
    assert!(siblings(vv[1]) > siblings(vv[0]), "vv keeps both sides as siblings: {vv:?}");
}

#[test]
fn a_paused_replica_costs_availability_not_acknowledged_writes() {
    // Quick values: no pause, then an 800 ms pause.
    let rows = quick_rows("pause", Engine::Sim);
    let vv = of(&rows, "vv");
    let acked = |row: &Value| row["acked"].as_u64().unwrap();
    assert!(acked(vv[1]) < acked(vv[0]), "clients waited out the pause: {vv:?}");
}

#[test]
fn crashes_lose_no_acknowledged_write_in_both_engines() {
    // Quick values: no crash, then a crash every 500 ms; quick_rows checks
    // vv drops nothing and the replicas converge, on both engines. That a
    // crash cost writes is a matter of timing, so it is asked of the
    // simulator alone.
    let simulated = quick_rows("crash", Engine::Sim);
    let vv = of(&simulated, "vv");
    let writes = |row: &Value| row["writes"].as_u64().unwrap();
    let acked = |row: &Value| row["acked"].as_u64().unwrap();
    assert_eq!(acked(vv[0]), writes(vv[0]), "without crashes every write is acknowledged");
    assert!(acked(vv[1]) < writes(vv[1]), "a crashed replica refuses or loses in-flight writes: {}", vv[1]);
    let real = quick_rows("crash", Engine::Processes);
    assert!(of(&real, "vv").iter().all(|row| acked(row) > 0), "the real replicas took writes: {real:?}");
}

#[test]
fn a_replica_that_finds_its_clock_out_of_bounds_refuses_writes_instead_of_losing_them() {
    // Quick values: no bound, then a 250 ms bound; replica 1 runs 500 ms ahead.
    let rows = quick_rows("monitor", Engine::Sim);
    let wall = of(&rows, "lww-wall");
    let (unbounded, bounded) = (percent(wall[0]), percent(wall[1]));
    assert!(unbounded > bounded + 20.0, "the bound cuts silent drops: {unbounded:.1}% -> {bounded:.1}%");
    let refused = |row: &Value| row["writes"].as_u64().unwrap() - row["acked"].as_u64().unwrap();
    assert!(refused(wall[1]) > refused(wall[0]) + 50, "at the cost of refused writes: {wall:?}");
}

#[test]
fn runs_started_together_each_get_a_directory_and_a_whole_history() {
    // Four users start the same quick sweep with the same seed at once: the
    // run ids of the same second and seed collide, and each run must still
    // get a directory of its own.
    let results = tempfile::tempdir().expect("temporary directory");
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let runners: Vec<Child> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_clocklab"))
                .args(["experiment", "skew", "--quick", "--seed", "3", "--experiments"])
                .arg(&experiments)
                .arg("--results")
                .arg(results.path())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start clocklab experiment")
        })
        .collect();
    for runner in runners {
        let output = runner.wait_with_output().expect("output");
        assert!(output.status.success(), "a run failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let mut runs: Vec<PathBuf> = std::fs::read_dir(results.path().join("skew"))
        .expect("results/skew")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 4, "four run directories: {runs:?}");
    // Runs of the same second and seed are numbered 1 (no suffix), 2, 3...
    let mut by_second: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    for run in &runs {
        let name = run.file_name().unwrap().to_string_lossy().into_owned();
        let (second, attempt) = name.split_once("-seed3").unwrap_or_else(|| panic!("{name} has the seed"));
        let attempt =
            if attempt.is_empty() { 1 } else { attempt.trim_start_matches('-').parse().expect("-N") };
        by_second.entry(second.to_string()).or_default().push(attempt);
    }
    for (second, mut attempts) in by_second {
        attempts.sort();
        assert_eq!(attempts, (1..=attempts.len() as u32).collect::<Vec<_>>(), "runs started in {second}");
    }
    for run in &runs {
        let name = run.file_name().unwrap().to_string_lossy().into_owned();
        let history = std::fs::read_to_string(run.join("history.jsonl")).expect("a history");
        let mut writes = 0;
        for (number, line) in history.lines().enumerate() {
            let record: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{name} line {}: {error}: {line}", number + 1));
            writes += usize::from(record["type"] == "write");
        }
        assert!(writes > 0, "{name} recorded writes");
        // The summary is the oracle's verdict on this run's own history.
        let summary = std::fs::read(run.join("summary.json")).expect("a summary");
        let analyze = Command::new(env!("CARGO_BIN_EXE_clocklab"))
            .arg("analyze")
            .arg(run)
            .output()
            .expect("clocklab analyze");
        assert!(analyze.status.success(), "{}", String::from_utf8_lossy(&analyze.stderr));
        assert_eq!(std::fs::read(run.join("summary.json")).unwrap(), summary, "{name}: analyze agrees");
        let leftovers: Vec<_> = std::fs::read_dir(run)
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{name}: analyze left {leftovers:?} behind");
    }
}

#[test]
fn stale_contexts_pile_up_siblings_without_dots_and_lose_nothing() {
    // Quick values: 16, 4 and 1 keys; every write carries a stale context.
    let rows = quick_rows("siblings", Engine::Sim);
    let most = |strategy: &str| -> Vec<u64> {
        of(&rows, strategy).iter().map(|row| row["max_siblings"].as_u64().unwrap()).collect()
    };
    let (dotted, server) = (most("vv"), most("vv-server"));
    let last = dotted.len() - 1;
    assert!(server[last] > 4 * dotted[last], "one key: vv-server {server:?} against vv {dotted:?}");
    assert!(server[last] > server[0], "more writes per key, more siblings without dots: {server:?}");
}

const HALVES: &str = r#"
description = "Five replicas split into a minority and a majority, then healed."
replicas = 5
seed = 11
trials = 1
duration_ms = 1500
strategies = ["lww-wall", "vv"]

[workload]
clients = 5
keys = 3
rate_per_client = 40

[network]
delay_ms = [1, 2]

[[fault]]
kind = "partition"
at_ms = 300
replica = 1
shape = "halves"
duration_ms = 800

[sweep]
parameter = "cut_ms"
values = [800]
"#;

#[test]
fn a_minority_majority_partition_keeps_the_minoritys_writes_as_siblings_and_converges() {
    for engine in ["sim", "processes"] {
        let (_lab, run) = run_spec(&format!("engine = \"{engine}\"\n{HALVES}"));
        let faults = fault_records(&run);
        // Logged with its groups: {1, 2} | {3, 4, 5}, every link across cut.
        let cuts: Vec<&Value> = faults.iter().filter(|fault| fault["fault"] == "partition").collect();
        assert_eq!(cuts.len(), 12, "{engine}: 2 x 3 links, both ends");
        assert!(cuts.iter().all(|cut| cut["settings"]["groups"] == serde_json::json!([[1, 2], [3, 4, 5]])));
        // Every link healed when the partition ends, and again as the trial
        // ends (as after any run, so that the replicas converge): 2 x 20.
        let heals = faults.iter().filter(|fault| fault["fault"] == "heal").count();
        assert_eq!(heals, 40, "{engine}: every link healed");
        let (vv, wall) = (row_of(&run, "vv"), row_of(&run, "lww-wall"));
        assert_eq!(vv["dropped"], 0, "{engine}: vv keeps both sides' writes: {vv}");
        if engine == "sim" {
            // Whether both sides wrote one key during the cut is timing:
            // asked of the simulator, where it is the same on every machine.
            assert!(vv["siblings"].as_u64().unwrap() > 0, "{engine}: as siblings: {vv}");
            let concurrent = wall["dropped_concurrent"].as_u64().unwrap();
            assert!(concurrent > 0, "{engine}: lww-wall loses one side: {wall}");
        }
        for row in [&vv, &wall] {
            assert_eq!(row["diverged_keys"], 0, "{engine}: converged after the heal: {row}");
        }
    }
}

/// The nemesis's faults in a run's history: (kind, replica, settings).
fn nemesis_faults(run: &Path) -> Vec<(String, u64, Value)> {
    fault_records(run)
        .into_iter()
        .filter(|record| {
            let name = clocklab::history::FaultName::parse(record["fault"].as_str().unwrap_or(""));
            name.and_then(|name| name.kind()).is_some()
        })
        .map(|record| {
            let kind = record["fault"].as_str().unwrap().to_string();
            (kind, record["replica"].as_u64().unwrap(), record["settings"].clone())
        })
        .collect()
}

#[test]
fn a_random_nemesis_mixes_fault_kinds_keeps_every_invariant_and_replays_from_its_seed() {
    let (_real_results, real) = quick_run("chaos", Engine::Processes);
    let (_sim_results, simulated) = quick_run("chaos", Engine::Sim);
    let (_again_results, again) = quick_run("chaos", Engine::Sim);
    let faults = nemesis_faults(&real);
    let kinds: BTreeSet<&str> = faults.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert!(kinds.len() >= 4, "at least four kinds of fault: {kinds:?}");
    // One seed, one schedule: in the simulator twice, and on real processes.
    assert_eq!(nemesis_faults(&simulated), faults, "the simulator applied the real run's schedule");
    assert_eq!(nemesis_faults(&again), faults, "and does again");
    // Whatever the schedule, the invariants hold, and the report says so.
    for run in [&real, &simulated] {
        for row in read_json(&run.join("summary.json")).as_array().expect("rows") {
            assert_eq!(row["diverged_keys"], 0, "converged: {row}");
            assert_eq!(row["dropped_without_killer"], 0, "every drop explained: {row}");
            if ["vv", "vv-server", "set-union"].contains(&row["strategy"].as_str().unwrap_or_default()) {
                assert_eq!(row["dropped"], 0, "siblings and merges lose nothing: {row}");
            }
        }
        let report = std::fs::read_to_string(run.join("report.md")).expect("report.md");
        assert!(report.contains("## The nemesis"), "{report}");
        assert_eq!(report.matches("| yes |").count(), 3, "three invariants, each held: {report}");
    }
}

#[test]
fn riak_2013_sets_kingsburys_figures_beside_the_labs() {
    let (_results, run) = quick_run("riak-2013", Engine::Sim);
    let report = std::fs::read_to_string(run.join("report.md")).expect("report.md");
    let table =
        report.split("## Beside the published figures").nth(1).expect("the published figures' section");
    for published in ["1434 of 2000 (72%)", "1815 of 1985 (91%)", "0 of 1948 (0%)"] {
        assert!(table.contains(published), "{published} in {table}");
    }
    // Beside each, the lab's own count for the strategy and value it names.
    let rows = read_json(&run.join("summary.json"));
    let count = |strategy: &str, value: f64| {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["strategy"] == strategy && row["value"] == value)
            .unwrap();
        let (dropped, acked) = (row["dropped"].as_u64().unwrap(), row["acked"].as_u64().unwrap());
        format!("{dropped} of {acked} ({:.0}%)", 100.0 * dropped as f64 / acked as f64)
    };
    for (strategy, value) in [("lww-wall", 0.0), ("lww-wall", 2000.0), ("set-union", 2000.0)] {
        let ours = count(strategy, value);
        assert!(table.contains(&format!("{strategy} at {value} | {ours} |")), "{ours} in {table}");
    }
    assert!(
        count("set-union", 2000.0).starts_with("0 of"),
        "the merging set loses nothing, as Riak's CRDT did"
    );
    // And every strategy of the run beside them, at both values.
    for strategy in ["lww-wall", "lww-hlc", "vv", "set-union"] {
        let row = format!("| {strategy} | {} | {} |", count(strategy, 0.0), count(strategy, 2000.0));
        assert!(table.contains(&row), "{row} in {table}");
    }
}

const CLOCK_ON_REPLICA_1: &str = r#"
engine = "sim"
description = "Replica 1's clock is 200 ms off, steadily or strobing."
replicas = 3
seed = 5
trials = 1
duration_ms = 1500
strategies = ["lww-wall", "lww-hlc"]

[workload]
clients = 6
keys = 8
rate_per_client = 40

[network]
delay_ms = [1, 2]

[sweep]
parameter = "skew_ms"
values = [0]
"#;

/// lww-wall's drops that replica 1 inflicted on itself: a write made on
/// replica 1 that read, and lost to, writes made on replica 1 alone.
fn self_inflicted(run: &Path) -> usize {
    let drops = read_json(&run.join("drops.json"));
    drops
        .as_array()
        .expect("drops")
        .iter()
        .filter(|drop| {
            drop["bucket"] == "lww-wall" && drop["cause"] == "causality" && drop["victim"]["replica"] == 1
        })
        .filter(|drop| drop["killers"].as_array().unwrap().iter().all(|killer| killer["replica"] == 1))
        .count()
}

#[test]
fn a_strobing_clock_makes_lww_wall_drop_writes_a_steady_offset_of_the_same_size_does_not() {
    let steady = "[[fault]]\nkind = \"step\"\nat_ms = 0\nreplica = 1\nstep_ms = 200\n";
    let strobe = "[[fault]]\nkind = \"strobe\"\nat_ms = 0\nreplica = 1\nstep_ms = 200\nperiod_ms = 50\nduration_ms = 1500\n";
    let mut found = Vec::new();
    for fault in [steady, strobe] {
        let (_lab, run) = run_spec(&format!(
            "{CLOCK_ON_REPLICA_1}
{fault}"
        ));
        let wall = row_of(&run, "lww-wall");
        let hlc = row_of(&run, "lww-hlc");
        assert_eq!(hlc["dropped_causality"], 0, "an HLC never loses a write it read: {hlc}");
        found.push((self_inflicted(&run), wall["stamp_regressions"].as_u64().unwrap()));
    }
    let [(steady_drops, steady_regressions), (strobe_drops, strobe_regressions)] = found[..] else {
        unreachable!()
    };
    // A steady clock never runs back, so replica 1 never stamps a write
    // below one it already made; a strobing one does, every other period.
    assert_eq!((steady_drops, steady_regressions), (0, 0));
    assert!(strobe_regressions > 0, "the strobing clock runs back");
    assert!(strobe_drops > 0, "and replica 1 drops its own writes' successors: {strobe_drops}");
}

const UNRULY_NETWORK: &str = r#"
description = "Every replication message may arrive twice, and its writes in reverse order."
replicas = 3
seed = 9
trials = 1
duration_ms = 1200
strategies = ["lww-wall", "vv", "set-union"]

[workload]
clients = 6
keys = 6
rate_per_client = 40

[network]
delay_ms = [1, 3]
duplicate = 0.5
reorder = 0.5

[sweep]
parameter = "skew_ms"
values = [0]
"#;

#[test]
fn duplicated_and_reordered_replication_changes_nothing_for_vv_and_every_replica_converges() {
    for engine in ["sim", "processes"] {
        let (_lab, run) = run_spec(&format!(
            "engine = \"{engine}\"
{UNRULY_NETWORK}"
        ));
        // The links were set as the spec asks, and logged.
        let links: Vec<Value> =
            fault_records(&run).into_iter().filter(|record| record["fault"] == "links").collect();
        assert_eq!(links.len(), 6, "{engine}: every link");
        assert!(
            links
                .iter()
                .all(|link| link["settings"]["duplicate"] == 0.5 && link["settings"]["reorder"] == 0.5)
        );
        for row in read_json(&run.join("summary.json")).as_array().expect("rows") {
            assert_eq!(row["diverged_keys"], 0, "{engine}: converged: {row}");
            assert_eq!(row["dropped_without_killer"], 0, "{engine}: {row}");
            if row["strategy"] != "lww-wall" {
                assert_eq!(row["dropped"], 0, "{engine}: at least once, in any order, loses nothing: {row}");
            }
            assert!(row["acked"].as_u64().unwrap() > 100, "{engine}: {row}");
        }
    }
}

#[test]
fn a_stepped_leap_second_makes_lww_wall_drop_writes_and_a_smeared_one_does_not() {
    let stepped = "[[fault]]\nkind = \"leap\"\nat_ms = 500\nreplica = 1\nleap = \"step\"\n";
    let smeared =
        "[[fault]]\nkind = \"leap\"\nat_ms = 200\nreplica = 1\nleap = \"smear\"\nduration_ms = 4000\n";
    let mut found = Vec::new();
    for fault in [stepped, smeared] {
        let (_lab, run) = run_spec(&format!(
            "{CLOCK_ON_REPLICA_1}
{fault}"
        ));
        let wall = row_of(&run, "lww-wall");
        found.push((self_inflicted(&run), wall["stamp_regressions"].as_u64().unwrap()));
    }
    // Stepped, replica 1's clock repeats a second: its writes after the
    // leap are stamped below those just before, and lose to them.
    assert!(found[0].0 > 0 && found[0].1 > 0, "stepped: {:?}", found[0]);
    // Smeared over four seconds, the clock only runs slow: never back.
    assert_eq!(found[1], (0, 0), "smeared");
}

/// Retired keys (`writes_per_key`): on real processes and in the simulator
/// alike, no key takes more writes than the bound and no value holds more
/// items, the workload moves on to fresh keys (`k0-1`, ...), and both
/// engines give the same item the same key.
#[test]
fn retired_keys_keep_every_value_under_the_bound_on_both_engines() {
    const BOUND: usize = 6;
    let spec =
        TINY.replace("rate_per_client = 40", &format!("rate_per_client = 40\nwrites_per_key = {BOUND}"));
    let (_real_lab, real) = run_spec(&spec);
    let sim_lab = Lab::new(&spec.replace("seed = 7", "seed = 7\nengine = \"sim\""));
    let output = sim_lab.start().wait_with_output().expect("the simulated run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let simulated = sim_lab.runs().pop().expect("a simulated run");
    let mut keys_of = Vec::new();
    for run in [&real, &simulated] {
        // Values are read whole, however the lines give them.
        let history = clocklab::history::read_run(run).expect("a history");
        let writes = history.iter().filter_map(|record| match record {
            clocklab::history::Record::Write(write) => Some(write),
            _ => None,
        });
        let mut per_key: std::collections::BTreeMap<(usize, String, String), usize> = Default::default();
        let mut key_of_item = std::collections::BTreeMap::new();
        for write in writes {
            let value = &write.value;
            assert!(value.len() <= BOUND, "{}: a value of {} items: {write:?}", run.display(), value.len());
            let key = write.key.to_string();
            *per_key.entry((write.point, write.bucket.to_string(), key.clone())).or_default() += 1;
            key_of_item.insert((write.point, write.item), key);
        }
        assert!(per_key.values().all(|&count| count <= BOUND), "{per_key:?}");
        let names: BTreeSet<&str> = per_key.keys().map(|(_, _, key)| key.as_str()).collect();
        assert!(
            names.len() > 4 && names.contains("k0-1"),
            "keys were retired and fresh ones written: {names:?}"
        );
        keys_of.push(key_of_item);
    }
    let (real, simulated) = (&keys_of[0], &keys_of[1]);
    let both: Vec<_> = real.keys().filter(|item| simulated.contains_key(item)).collect();
    assert!(both.len() > 50, "most items are in both runs");
    for item in both {
        assert_eq!(real[item], simulated[item], "item {item:?}: one key on both engines");
    }
}
