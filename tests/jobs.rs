//! Experiments run from the dashboard's page: the run `clocklab experiment`
//! makes, its progress streamed as server-sent events, one run on real
//! processes at a time, and a cancel that leaves no process and no
//! directory behind.

mod browser;

use std::time::{Duration, Instant};

use browser::{Browser, Dashboard, children_of, finished_run, process_gone, start_experiment};
use reqwest::Method;
use serde_json::{Value, json};

/// How long a quick run on real processes may take here.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A job's server-sent events, read until the stream ends: (name, data).
async fn events(dashboard: &Dashboard, job: u64) -> Vec<(String, Value)> {
    let mut response =
        reqwest::get(format!("{}/api/jobs/{job}/events", dashboard.url)).await.expect("the event stream");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.expect("a chunk of the stream") {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| block.lines().find_map(|line| line.strip_prefix(name));
            let data = serde_json::from_str(field("data:")?.trim()).expect("JSON data");
            Some((field("event:")?.trim().to_string(), data))
        })
        .collect()
}

/// The number before "writes acknowledged" in the page's progress line.
fn acknowledged(facts: &str) -> u64 {
    let before = facts.split(" writes acknowledged").next().unwrap_or_default();
    before.rsplit(' ').next().unwrap_or_default().replace(',', "").parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_streams_its_progress_and_writes_exactly_what_the_command_writes() {
    let results = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a results directory");
    let dashboard = Dashboard::start(results.path());

    // What the page cannot start, it is told plainly.
    for (body, expected) in [
        (json!({"experiment": "../experiments/skew"}), 404),
        (json!({"experiment": "no-such-experiment"}), 404),
        (json!({"experiment": "skew", "size": "huge"}), 400),
        (json!({"experiment": "skew", "engine": "quantum"}), 400),
        (json!({"experiment": "skew", "seed": -1}), 400),
    ] {
        let (status, answer) = dashboard.send(Method::POST, "/api/jobs", body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{body}: a JSON error");
    }
    for (path, expected) in [("/api/jobs/9", 404), ("/api/jobs/first", 400), ("/api/jobs/9/events", 404)] {
        let (status, answer) = dashboard.get(path).await;
        assert_eq!(status, expected, "{path}: {answer}");
    }

    // A quick skew sweep in the simulator, seed 1.
    let (status, job) = dashboard
        .send(
            Method::POST,
            "/api/jobs",
            json!({"experiment": "skew", "size": "quick", "seed": 1, "engine": "sim"}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        (job["state"].as_str(), job["engine"].as_str(), job["seed"].as_u64()),
        (Some("running"), Some("sim"), Some(1))
    );
    let id = job["id"].as_u64().expect("a job id");
    let events = events(&dashboard, id).await;
    let (last, rest) = events.split_last().expect("at least the last event");
    assert!(rest.iter().all(|(name, job)| name == "progress" && job["state"] == "running"), "{rest:?}");
    assert_eq!(last.0, "ended");
    let ended = &last.1;
    assert_eq!(ended["state"], "finished", "{ended}");
    assert_eq!(ended["trials_done"], ended["trials"], "every trial done: {ended}");
    assert_eq!(ended["points_done"], ended["points"]);
    assert!(ended["acked"].as_u64().unwrap_or(0) > 1000, "writes acknowledged: {ended}");
    let run = ended["run"].as_str().expect("the run's id");
    let (_, listed) = dashboard.get("/api/jobs").await;
    assert_eq!(listed["jobs"][0]["run"], json!(run), "the job is listed with its run");

    // The same run from the command line, into another directory: the
    // simulator is deterministic, so one code path means the same bytes.
    let elsewhere = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("another results directory");
    let command = finished_run(start_experiment("skew", &["--sim"], elsewhere.path()));
    for file in ["history.jsonl", "summary.json", "summary.csv", "drops.json", "spec.toml", "report.md"] {
        let from_page = std::fs::read(results.path().join("skew").join(run).join(file)).expect(file);
        let from_command =
            std::fs::read(elsewhere.path().join("skew").join(&command).join(file)).expect(file);
        assert!(from_page == from_command, "{file} differs between the page's run and the command's");
    }
    // And the overview lists it as soon as it has finished.
    let (_, overview) = dashboard.get("/api/experiments").await;
    let skew = overview["experiments"].as_array().unwrap().iter().find(|e| e["name"] == "skew").unwrap();
    assert_eq!(skew["latest"]["id"], json!(run));
}

/// Waits until `check` holds, or fails saying `what` never happened.
async fn until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Chooses the run panel's fields, as a teacher would with the mouse.
async fn choose(browser: &Browser, experiment: &str, size: &str, seed: u64, engine: &str) {
    browser.find("#job-start").await;
    browser
        .run(&format!(
            "document.getElementById('job-experiment').value = '{experiment}';
             document.getElementById('job-size').value = '{size}';
             document.getElementById('job-seed').value = '{seed}';
             document.getElementById('job-engine').value = '{engine}';"
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_page_a_real_run_shows_its_progress_opens_its_page_and_cancels_without_a_trace() {
    let Some(browser) = Browser::start("the run-from-the-page test").await else { return };
    let results = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a results directory");
    let dashboard = Dashboard::start(results.path());
    let skew_runs = || -> Vec<String> {
        std::fs::read_dir(results.path().join("skew"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect()
    };

    // Start the quick skew sweep on real processes from the overview.
    browser.open(&format!("{}/#/", dashboard.url)).await;
    choose(&browser, "skew", "quick", 4, "processes").await;
    browser.click("#job-start").await;
    browser.find("#job-progress").await;

    // A second run on real processes is refused while it runs, with the reason.
    let (status, refused) = dashboard
        .send(Method::POST, "/api/jobs", json!({"experiment": "partition", "engine": "processes"}))
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"].as_str().unwrap_or_default().contains("one such job at a time"), "{refused}");

    // Its progress streams in: writes are acknowledged before it ends...
    let facts =
        browser.wait_for_text("#job-facts", "acknowledged writes", |facts| acknowledged(facts) > 0).await;
    assert!(facts.starts_with("points "), "{facts}");
    browser.screenshot("job").await;
    // ...and when it finishes its run page opens.
    let mut hash = String::new();
    until("the run page opening", RUN_TIMEOUT, async || {
        hash = browser.run("return location.hash").await.as_str().unwrap_or_default().to_string();
        hash.starts_with("#/run/skew/")
    })
    .await;
    let run = hash.trim_start_matches("#/run/skew/").to_string();
    browser.find(".plots img").await;
    assert!(results.path().join("skew").join(&run).join("summary.json").is_file(), "{run} is complete");
    let (_, page) = dashboard.get(&format!("/api/runs/skew/{run}")).await;
    assert_eq!(page["engine"], "processes");
    assert_eq!(skew_runs(), vec![run.clone()]);

    // A full sweep, cancelled once its replicas are up.
    browser.open(&format!("{}/#/", dashboard.url)).await;
    choose(&browser, "skew", "full", 5, "processes").await;
    browser.click("#job-start").await;
    let mut replicas = Vec::new();
    until("the full sweep's replicas starting", RUN_TIMEOUT, async || {
        replicas = children_of(dashboard.child.id());
        replicas.len() >= 3
    })
    .await;
    assert_eq!(skew_runs().len(), 2, "the unfinished run has its directory");
    browser.click("#job-cancel").await;
    browser.find("#job-cancelled").await;
    // Killed with their cluster; a moment for the kernel to finish them.
    until("the cancelled run's replicas exiting", Duration::from_secs(5), async || {
        replicas.iter().all(|&pid| process_gone(pid))
    })
    .await;
    assert!(children_of(dashboard.child.id()).into_iter().all(process_gone), "no process is left");
    assert_eq!(skew_runs(), vec![run], "the unfinished directory is removed; the finished run stays");
    let (_, jobs) = dashboard.get("/api/jobs").await;
    let states: Vec<&str> =
        jobs["jobs"].as_array().unwrap().iter().filter_map(|job| job["state"].as_str()).collect();
    assert_eq!(states, ["cancelled", "finished"], "newest first");

    // Once nothing runs, a run on real processes may start again.
    let (status, again) =
        dashboard.send(Method::POST, "/api/jobs", json!({"experiment": "partition", "size": "quick"})).await;
    assert_eq!(status, 202, "{again}");
    let (status, cancelled) =
        dashboard.send(Method::POST, &format!("/api/jobs/{}/cancel", again["id"]), json!({})).await;
    assert_eq!((status, cancelled["state"].as_str()), (200, Some("cancelled")), "{cancelled}");
    browser.close().await;
}
