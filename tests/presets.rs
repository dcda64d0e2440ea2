//! The live lab's presets, played on real replica processes: each tells its
//! story, and the live oracle's verdict at the end is the one the story's
//! last line gives.

mod browser;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use browser::{Browser, Dashboard};
use reqwest::Method;
use serde_json::{Value, json};

/// How long one step may take (a settle waits for the oracle).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Each strategy's drops, as `bucket -> [cause, ...]`.
fn drops_by_bucket(lab: &Value) -> BTreeMap<String, Vec<String>> {
    let mut drops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for bucket in lab["buckets"].as_array().expect("buckets") {
        drops.entry(bucket.as_str().unwrap().to_string()).or_default();
    }
    for drop in lab["drops"].as_array().expect("drops") {
        drops
            .entry(drop["bucket"].as_str().unwrap().to_string())
            .or_default()
            .push(drop["cause"].as_str().unwrap().to_string());
    }
    drops
}

/// Plays every step of preset `name` through the API; returns the lab then,
/// having checked that what the story's last line says of every strategy
/// (its verdict) is what the live oracle found.
async fn play(dashboard: &Dashboard, name: &str, steps: usize) -> Value {
    play_checking(dashboard, name, steps, clocklab::strategy::NAMES.len()).await
}

/// As [`play`], with at least `claims` checks (a lease story makes one per guard).
async fn play_checking(dashboard: &Dashboard, name: &str, steps: usize, claims: usize) -> Value {
    let mut lab = Value::Null;
    for index in 0..steps {
        let (status, answer) =
            dashboard.send(Method::POST, &format!("/api/lab/presets/{name}/steps/{index}"), json!({})).await;
        assert_eq!(status, 200, "{name} step {}: {answer}", index + 1);
        lab = answer;
    }
    let checks = lab["story_check"].as_array().unwrap_or_else(|| panic!("{name}: no story check: {lab}"));
    assert!(checks.len() >= claims, "{name}: {checks:?}");
    for check in checks {
        assert_eq!(check["holds"], json!(true), "{name}: the story's last line is wrong: {check}");
    }
    lab
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_preset_ends_with_the_verdict_its_story_tells() {
    let dashboard = Dashboard::start(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-runs"));
    let steps: BTreeMap<String, usize> = dashboard.preset_steps().await.into_iter().collect();
    let (_, listing) = dashboard.get("/api/presets").await;
    assert_eq!(
        listing["pause_ms"],
        json!(clocklab::dashboard::lab::preset::PAUSE_BETWEEN_STEPS.as_millis() as u64)
    );

    // Nothing to play without a cluster, and no step past the last.
    for (path, expected) in [
        ("/api/lab/presets/figure-8-3/steps/1", 409),
        ("/api/lab/presets/figure-8-3/steps/99", 404),
        ("/api/lab/presets/figure-8-3/steps/first", 400),
        ("/api/lab/presets/no-such-story/steps/0", 404),
    ] {
        let (status, answer) = dashboard.send(Method::POST, path, json!({})).await;
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(answer["error"].is_string(), "{path}: a JSON error");
    }

    let lww = ["lww-wall", "lww-hlc", "lww-lamport", "truetime"];
    let keeps = ["vv", "vv-server", "set-union"];

    // Figure 8-3 and the NTP step back: a write that read the one that
    // beat it is dropped by the strategies that trust the wall clock, for
    // causality; every other strategy keeps it.
    for story in ["figure-8-3", "ntp-step-back"] {
        let drops = drops_by_bucket(&play(&dashboard, story, steps[story]).await);
        for (bucket, causes) in &drops {
            let expected: &[&str] =
                if ["lww-wall", "truetime"].contains(&bucket.as_str()) { &["causality"] } else { &[] };
            assert_eq!(causes, expected, "{story}: {bucket}");
        }
    }

    // Concurrent writes: every last-write-wins strategy drops one of the
    // two, as concurrent; siblings and merges keep both.
    let drops = drops_by_bucket(&play(&dashboard, "concurrent-writes", steps["concurrent-writes"]).await);
    for bucket in lww {
        assert_eq!(drops[bucket], ["concurrent"], "concurrent-writes: {bucket}");
    }
    for bucket in keeps {
        assert!(drops[bucket].is_empty(), "concurrent-writes: {bucket} keeps both: {:?}", drops[bucket]);
    }
    let (_, lab) = dashboard.get("/api/lab").await;
    assert!(lab["counts"]["strategies"]["vv"]["acked"].as_u64() == Some(2));

    // Partition and heal, under load: last-write-wins loses writes where
    // both sides wrote a key; siblings and merges lose none.
    let lab = play(&dashboard, "partition-and-heal", steps["partition-and-heal"]).await;
    let drops = drops_by_bucket(&lab);
    assert!(drops["lww-wall"].iter().any(|cause| cause == "concurrent"), "{drops:?}");
    for bucket in keeps {
        assert!(drops[bucket].is_empty(), "partition-and-heal: {bucket}: {:?}", drops[bucket]);
    }
    assert!(
        lab["counts"]["strategies"]["vv"]["acked"].as_u64().unwrap_or(0) >= 10,
        "the workload wrote: {lab}"
    );
    // Figures 8-4 and 8-5, live: worker 1 stopped between its check and
    // its write past its lease; its late write lands without fencing (an
    // increment lost) and is refused with it (nothing lost).
    let lab = play_checking(&dashboard, "lease-pause", steps["lease-pause"], 2).await;
    let guard = |name: &str| {
        lab["lease"]["guards"].as_array().expect("lease guards").iter().find(|g| g["guard"] == name).cloned()
    };
    let (monotonic, fenced) = (guard("monotonic").expect("monotonic"), guard("fenced").expect("fenced"));
    assert!(monotonic["lost_updates"].as_u64() >= Some(1), "{monotonic}");
    assert!(fenced["fenced"].as_u64() >= Some(1) && fenced["lost_updates"] == 0, "{fenced}");
    let (status, answer) = dashboard.send(Method::POST, "/api/lab/workers/3/pause", json!({})).await;
    assert_eq!(status, 400, "no worker 3: {answer}");
    let (status, _) = dashboard.send(Method::POST, "/api/lab/stop", json!({})).await;
    assert_eq!(status, 200);
    let (status, answer) = dashboard.send(Method::POST, "/api/lab/workers/1/pause", json!({})).await;
    assert_eq!(status, 409, "no lab, no workers: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_figure_8_3_preset_plays_on_its_own_pauses_when_asked_and_drops_the_increment() {
    let Some(browser) = Browser::start("the presets test").await else { return };
    let dashboard = Dashboard::start(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-runs"));
    let (_, listing) = dashboard.get("/api/presets").await;
    let pause = Duration::from_millis(listing["pause_ms"].as_u64().expect("the pause"));
    let done = async || browser.run("return document.querySelectorAll('#story-steps li.done').length").await;

    browser.open(&format!("{}/#/lab", dashboard.url)).await;
    browser.click(".preset[data-name='figure-8-3']").await;
    let first = browser.text("#story-say").await;
    assert!(first.contains("a minute fast"), "the story's summary comes first: {first}");

    // Played on its own, it goes a step at a time; the teacher pauses it.
    browser.click("#story-play").await;
    let deadline = std::time::Instant::now() + STEP_TIMEOUT;
    while done().await.as_u64() == Some(0) {
        assert!(std::time::Instant::now() < deadline, "step 1 never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.click("#story-pause").await;
    let paused_at = done().await;
    tokio::time::sleep(pause + Duration::from_secs(1)).await;
    assert_eq!(done().await, paused_at, "paused: no step played after the pause ran out");

    // The rest by hand, one click per step.
    let steps =
        browser.run("return document.querySelectorAll('#story-steps li').length").await.as_u64().unwrap();
    let mut played = paused_at.as_u64().unwrap();
    while played < steps {
        browser.click("#story-next").await;
        played += 1;
        let deadline = std::time::Instant::now() + STEP_TIMEOUT;
        while done().await.as_u64() != Some(played) {
            assert!(std::time::Instant::now() < deadline, "step {played} never finished");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    browser.find("#story-done").await;

    // The verdict on the page: lww-wall dropped the increment for causality.
    browser.wait_for_text("#strategy-lww-wall .drops", "a drop", |text| text == "✗ 1").await;
    let why = browser.text("#strategy-lww-wall .causes").await;
    assert!(why.contains("causality violation"), "the writer had read the winner: {why}");
    assert_eq!(browser.text("#strategy-truetime .drops").await, "✗ 1", "truetime's 7 ms bound did not hold");
    for kept in ["lww-hlc", "lww-lamport", "vv", "vv-server", "set-union"] {
        assert_eq!(browser.text(&format!("#strategy-{kept} .drops")).await, "0", "{kept} kept the increment");
        let acked = browser.text(&format!("#strategy-{kept} .acked")).await;
        assert_eq!(acked, "2", "{kept}: both writes acknowledged");
    }
    browser.click("#stop").await;
    browser.find("#start").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_partitions_in_jepsens_shapes_heals_every_link_and_strobes_a_clock() {
    let dashboard = Dashboard::start(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-runs"));
    let (status, lab) = dashboard.send(Method::POST, "/api/lab/start", json!({"replicas": 5})).await;
    assert_eq!(status, 200, "{lab}");
    let (status, lab) = dashboard.send(Method::PUT, "/api/lab/partition", json!({"shape": "halves"})).await;
    assert_eq!(status, 200, "{lab}");
    let cuts: Vec<(u64, u64)> = lab["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap()))
        .collect();
    let across: Vec<(u64, u64)> = [1, 2].iter().flat_map(|&a| [3, 4, 5].map(|b| (a, b))).collect();
    assert_eq!(cuts, across, "{{1,2}} | {{3,4,5}}: every link across cut");
    for (body, expected) in [
        (json!({"groups": [[1], [9]]}), 400),
        (json!({"shape": "halves", "groups": [[1]]}), 400),
        (json!({}), 400),
    ] {
        let (status, answer) = dashboard.send(Method::PUT, "/api/lab/partition", body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    let (status, lab) = dashboard.send(Method::POST, "/api/lab/heal", json!({})).await;
    assert_eq!((status, lab["cuts"].as_array().map(Vec::len)), (200, Some(0)), "{lab}");
    // A strobe, as the page's button sends it, is in the replica's clock model.
    let strobe = json!({"strobe_ms": 200.0, "strobe_period_ms": 50.0, "strobe_for_ms": 10000.0});
    let (status, replica) = dashboard.send(Method::PUT, "/api/lab/replicas/2/clock", strobe).await;
    assert_eq!(status, 200, "{replica}");
    assert_eq!(replica["model"]["strobes"].as_array().map(Vec::len), Some(1), "{replica}");
    let (status, _) = dashboard.send(Method::POST, "/api/lab/stop", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_students_plugin_plays_figure_8_3_in_the_step_through_and_the_live_lab() {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/strategies/lww_wall.py");
    let results = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-runs");
    let dashboard = Dashboard::start_with(&results, &["--strategy", plugin.to_str().unwrap()]);

    // The step-through plays the plugin's bucket beside the built-ins, and
    // the oracle finds it loses the increment, as lww-wall does.
    let (status, trace) = dashboard.get("/api/scenarios/figure-8-3").await;
    assert_eq!(status, 200, "{trace}");
    assert!(trace["buckets"].as_array().unwrap().contains(&json!("py-lww-wall")), "{}", trace["buckets"]);
    let lost = &trace["steps"].as_array().unwrap().last().unwrap()["lost"];
    assert_eq!(lost["py-lww-wall"].as_array().map(Vec::len), Some(1), "{lost}");
    assert_eq!(lost["lww-wall"].as_array().map(Vec::len), Some(1), "{lost}");
    assert_eq!(lost["vv"], json!([]), "{lost}");

    // The live lab hosts it on every replica; the preset ends with its
    // increment dropped for causality.
    let (_, listing) = dashboard.get("/api/presets").await;
    let steps = listing["presets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == "figure-8-3")
        .map(|entry| entry["preset"]["step"].as_array().unwrap().len())
        .expect("the figure-8-3 preset");
    let lab = play(&dashboard, "figure-8-3", steps).await;
    let drops = drops_by_bucket(&lab);
    assert_eq!(drops["py-lww-wall"], ["causality"], "{drops:?}");
    assert_eq!(drops["lww-wall"], ["causality"], "{drops:?}");
    assert!(drops["vv"].is_empty(), "{drops:?}");
}
