//! Plugin strategies as a student uses them: `--strategy ./rule.py` beside
//! the built-ins, `clocklab strategy check`, and plugins that break.
//!
//! Real processes throughout: the runner, its replicas, and one Python
//! process per replica per plugin, talking JSON lines over pipes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/strategies").join(name)
}

fn clocklab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clocklab"))
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `experiment` (a name or a spec path) with `arguments`; returns the
/// results directory (removed when dropped), the run's directory and the output.
fn experiment(experiment: &str, arguments: &[&str]) -> (tempfile::TempDir, PathBuf, Output) {
    let results = tempfile::tempdir().expect("temporary directory");
    let output = clocklab()
        .args(["experiment", experiment, "--experiments"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"))
        .args(arguments)
        .arg("--results")
        .arg(results.path())
        .stdin(Stdio::null())
        .output()
        .expect("run clocklab experiment");
    let stem = Path::new(experiment).file_stem().unwrap().to_string_lossy().into_owned();
    let run = std::fs::read_dir(results.path().join(stem))
        .ok()
        .and_then(|entries| entries.flatten().next())
        .map(|entry| entry.path())
        .unwrap_or_else(|| panic!("no run directory: {}", stderr_of(&output)));
    (results, run, output)
}

fn rows(run: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(run.join("summary.json")).expect("summary.json");
    serde_json::from_str::<Value>(&text).expect("JSON").as_array().expect("rows").clone()
}

fn row<'a>(rows: &'a [Value], strategy: &str, point: u64) -> &'a Value {
    rows.iter()
        .find(|row| row["strategy"] == strategy && row["point"] == point)
        .unwrap_or_else(|| panic!("no {strategy} row at point {point}"))
}

/// Processes running the script `path` (one of their arguments is the path).
fn processes_running(path: &Path) -> Vec<u32> {
    let wanted = path.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let command = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if !zombie && command.split(|byte| *byte == 0).any(|argument| argument == wanted) {
            found.push(pid);
        }
    }
    found
}

/// Waits a little for processes running `path` to be gone; returns those left.
fn left_running(path: &Path) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_running(path);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A copy of tests/plugins/misbehave.py under a name of its own, so that
/// its processes can be told from any other test's.
fn misbehaving_copy(dir: &Path, how: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/misbehave.py");
    let copy = dir.join(format!("misbehave_{how}.py"));
    std::fs::copy(source, &copy).expect("copy the plugin");
    copy
}

#[test]
fn a_python_plugin_runs_on_real_processes_beside_the_builtins_judged_by_its_kind() {
    let plugin = example("lww_wall.py");
    let (_results, run, output) = experiment("skew", &["--quick", "--strategy", plugin.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let rows = rows(&run);
    let points: Vec<u64> = rows.iter().filter_map(|row| row["point"].as_u64()).collect();
    let last = *points.iter().max().unwrap();
    for point in 0..=last {
        let (builtin, plugin) = (row(&rows, "lww-wall", point), row(&rows, "py-lww-wall", point));
        // Judged like a built-in: every write acknowledged is accounted
        // for, every drop explained.
        // (That it loses what lww-wall loses is a rate, compared in the
        // simulator, where one seed gives one history.)
        for row in [builtin, plugin] {
            assert!(row["acked"].as_u64().unwrap() > 0, "{row}");
            assert_eq!(row["diverged_keys"], 0, "{row}");
            assert_eq!(row["dropped_without_killer"], 0, "{row}");
        }
    }
    // The oracle judged it by the kind it declared, from the history.
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let point: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(point["kinds"]["py-lww-wall"], "last_write_wins", "{point}");
    // It is in the plots and the report, as a bucket of its own.
    for file in ["dropped.svg", "costs.svg", "report.md", "summary.csv"] {
        let text = std::fs::read_to_string(run.join(file)).unwrap();
        assert!(text.contains("py-lww-wall"), "{file} shows the plugin's bucket");
    }
    // The saved spec names the plugin, so `clocklab analyze` can judge the run again.
    let analyzed = clocklab().arg("analyze").arg(&run).output().unwrap();
    assert!(analyzed.status.success(), "{}", stderr_of(&analyzed));
    assert!(left_running(&example("lww_wall.py")).is_empty(), "no plugin process outlives the run");
}

#[test]
fn the_simulator_hosts_plugins_deterministically_and_they_lose_what_lww_wall_loses() {
    let plugin = example("lww_wall.py");
    let arguments = ["--quick", "--sim", "--strategy", plugin.to_str().unwrap()];
    let (_first, first, output) = experiment("skew", &arguments);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let (_second, second, _) = experiment("skew", &arguments);
    let history = |run: &Path| std::fs::read(run.join("history.jsonl")).unwrap();
    assert!(history(&first) == history(&second), "the same seed gives the same history, plugin and all");
    let rows = rows(&first);
    let drops = |strategy: &str| -> u64 {
        rows.iter()
            .filter(|row| row["strategy"] == strategy)
            .map(|row| row["dropped"].as_u64().unwrap())
            .sum()
    };
    assert!(drops("py-lww-wall") > 100, "the plugin's bucket loses writes to skew as lww-wall does");
    let (builtin, plugin) = (drops("lww-wall") as f64, drops("py-lww-wall") as f64);
    assert!((builtin - plugin).abs() <= 0.05 * builtin, "lww-wall dropped {builtin}, py-lww-wall {plugin}");
}

#[test]
fn strategy_check_passes_the_example_and_rejects_the_broken_rule_with_a_counterexample() {
    let passed = clocklab().args(["strategy", "check"]).arg(example("lww_wall.py")).output().unwrap();
    let text = String::from_utf8_lossy(&passed.stdout);
    assert!(passed.status.success(), "{text}{}", stderr_of(&passed));
    assert!(text.contains("py-lww-wall (last_write_wins): passed 200 random histories"), "{text}");

    let failed = clocklab().args(["strategy", "check"]).arg(example("keep_larger.py")).output().unwrap();
    let text = String::from_utf8_lossy(&failed.stdout);
    assert!(!failed.status.success(), "the broken rule is rejected: {text}");
    assert!(text.contains("FAILED") && text.contains("never converge"), "{text}");
    // Shrunk to the two writes of equal size and the two orders.
    assert!(text.contains("Counterexample, shrunk to 2 write(s)"), "{text}");
    let orders: Vec<&str> = text.lines().filter(|line| line.contains("applied in the order")).collect();
    assert_eq!(orders.len(), 2, "{text}");
    assert_ne!(
        orders[0].split(": ").nth(1),
        orders[1].split(": ").nth(1),
        "the orders keep different writes"
    );
    assert!(stderr_of(&failed).contains("does not keep its promises"));

    let built_in = clocklab().args(["strategy", "check", "vv", "--cases", "50"]).output().unwrap();
    assert!(built_in.status.success(), "built-in strategies can be checked by name");
}

/// The exhaustive check shows a broken rule with a shortest story: two
/// writes that replicas keep in opposite orders, never agreeing; a sound
/// plugin passes within its bounds; and `explore` finds Figure 8-3 for a
/// plugin as for the built-in it copies, saved as a scenario.
#[test]
fn the_exhaustive_check_shows_the_broken_rule_with_two_writes_and_explore_takes_plugins() {
    let failed = clocklab()
        .args(["strategy", "check", "--exhaustive"])
        .arg(example("keep_larger.py"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&failed.stdout);
    assert!(!failed.status.success(), "the broken rule is rejected: {text}");
    assert!(text.contains("py-keep-larger's replicas never agree"), "{text}");
    assert!(text.contains("2 steps and 2 write(s)"), "the shortest story has two writes: {text}");
    assert!(stderr_of(&failed).contains("does not keep its promises"));

    let sound = ["strategy", "check", "--exhaustive", "--replicas", "2", "--writes", "2"];
    let passed = clocklab().args(sound).arg(example("lww_wall.py")).output().unwrap();
    let text = String::from_utf8_lossy(&passed.stdout);
    assert!(passed.status.success(), "{text}{}", stderr_of(&passed));
    assert!(text.contains("No story within 2 replicas") && text.contains("every one was tried"), "{text}");

    let out = tempfile::tempdir().unwrap();
    let found = clocklab()
        .args(["explore", "--cause", "causality", "--replicas", "2", "--writes", "2", "--out"])
        .arg(out.path())
        .arg(example("lww_wall.py"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(found.status.success(), "{text}{}", stderr_of(&found));
    assert!(text.contains("py-lww-wall loses a write (causality violation)"), "{text}");
    let scenario = std::fs::read_to_string(out.path().join("smallest-py-lww-wall-causality.toml")).unwrap();
    assert!(scenario.contains("strategies = [\"py-lww-wall\"]"), "{scenario}");
    let golden = std::fs::read_to_string(out.path().join("smallest-py-lww-wall-causality.golden")).unwrap();
    assert!(golden.contains("py-lww-wall  dropped 2:1 (causality"), "{golden}");

    // A plugin that keeps a clock in its process cannot be copied to branch.
    let observer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/observer.py");
    let refused = clocklab().arg("explore").arg(&observer).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("py-observer asks to observe peers' writes"),
        "{}",
        stderr_of(&refused)
    );
}

/// A one-point, one-trial spec with two built-ins and the misbehaving
/// plugin, which turns bad on replica 2 after `after` requests.
fn misbehaving_spec(dir: &Path, plugin: &Path, how: &str, after: u32) -> PathBuf {
    let spec = format!(
        r#"
description = "A plugin that misbehaves mid-run."
replicas = 3
strategies = ["lww-wall", "vv"]
trials = 1
duration_ms = 2500

[workload]
clients = 4
keys = 8
rate_per_client = 60

[[plugins]]
path = "{}"
parameters = {{ how = "{how}", after = {after}, replica = 2 }}

[sweep]
parameter = "skew_ms"
values = [0]
"#,
        plugin.display()
    );
    let path = dir.join(format!("misbehaving-{how}.toml"));
    std::fs::write(&path, spec).unwrap();
    path
}

#[test]
fn a_plugin_that_crashes_hangs_or_prints_garbage_fails_its_bucket_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("crash", "exited (exit status: 1) before answering", "deliberate crash, for the test"),
        ("hang", "did not answer within 2s and was killed", "the request was {\"type\":"),
        ("garbage", "it sent `this is not JSON`", "the request was {\"type\":"),
    ];
    for (how, problem, detail) in cases {
        let plugin = misbehaving_copy(dir.path(), how);
        let spec = misbehaving_spec(dir.path(), &plugin, how, 20);
        let (_results, run, output) = experiment(spec.to_str().unwrap(), &[]);
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{how}: the run fails loudly");
        // The error names the plugin, the request and what went wrong.
        let error =
            stderr.lines().find(|line| line.starts_with("error: ")).unwrap_or_else(|| panic!("{stderr}"));
        assert!(error.contains(&format!("bucket py-{how} failed")), "{how}: {error}");
        assert!(error.contains(&plugin.display().to_string()), "{how}: the plugin is named: {error}");
        assert!(error.contains("request: it") || error.contains("request:"), "{how}: {error}");
        assert!(stderr.contains(problem), "{how}: {stderr}");
        assert!(stderr.contains(detail), "{how}: {stderr}");
        // Every other bucket is judged as usual, and lost nothing it should not.
        let rows = rows(&run);
        assert!(rows.iter().all(|row| row["strategy"] != format!("py-{how}")), "{how}: not judged");
        for strategy in ["lww-wall", "vv"] {
            let judged = row(&rows, strategy, 0);
            assert!(judged["acked"].as_u64().unwrap() > 0, "{how}: {judged}");
            assert_eq!(judged["diverged_keys"], 0, "{how}: {judged}");
        }
        assert_eq!(row(&rows, "vv", 0)["dropped"], 0, "{how}: vv keeps every acknowledged write");
        let report = std::fs::read_to_string(run.join("report.md")).unwrap();
        assert!(
            report.contains(&format!("Bucket **py-{how}**'s plugin failed")),
            "{how}: the report says so"
        );
        assert!(left_running(&plugin).is_empty(), "{how}: no plugin process is left behind");
    }
}

#[test]
fn a_plugin_dies_with_its_replica_even_when_the_replica_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = misbehaving_copy(dir.path(), "never");
    let parameters = serde_json::json!({ "path": plugin, "parameters": { "how": "never" } });
    let mut replica = clocklab()
        .args(["replica", "--id", "1", "--cluster-token", "t", "--clock", "model", "--data"])
        .arg(dir.path().join("data"))
        .args(["--plugin", &parameters.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(replica.stdout.take().unwrap()), &mut ready)
        .unwrap();
    assert!(ready.contains("\"addr\""), "the replica started: {ready:?}");
    assert_eq!(processes_running(&plugin).len(), 1, "the replica hosts one plugin process");
    replica.kill().unwrap(); // SIGKILL: no destructor runs
    replica.wait().unwrap();
    assert!(left_running(&plugin).is_empty(), "the kernel kills the plugin with its replica");
}
