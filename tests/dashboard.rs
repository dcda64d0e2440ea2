//! The dashboard, end to end: the real `clocklab dashboard` process, its
//! JSON API, and its pages in a real headless Chromium.
//!
//! The browser tests save a screenshot of each page to web/screenshots/,
//! which the README shows. They run one at a time (one Chromium is plenty
//! for two cores).

mod browser;

use std::time::Duration;

use browser::{Browser, Dashboard, process_gone, reference_run};
use reqwest::Method;
use serde_json::json;
use tokio::sync::Mutex;

/// One browser at a time.
static BROWSER: Mutex<()> = Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_the_reference_run_and_refuses_what_it_cannot_serve() {
    let dashboard = Dashboard::start();
    let run = reference_run("skew");

    let (status, listing) = dashboard.get("/api/experiments").await;
    assert_eq!(status, 200);
    let skew = listing["experiments"].as_array().unwrap().iter().find(|e| e["name"] == "skew").expect("skew");
    assert!(
        skew["runs"].as_array().unwrap().iter().any(|r| r["id"] == run.as_str() && r["finished"] == true)
    );

    let (status, page) = dashboard.get(&format!("/api/runs/skew/{run}")).await;
    assert_eq!(status, 200);
    assert_eq!(page["plots"], json!(["dropped", "causes", "siblings"]));
    assert!(page["report_html"].as_str().unwrap().contains(&format!("/results/skew/{run}/dropped.svg")));
    let drops = page["drops"].as_u64().unwrap();
    assert!(drops > 0, "the skew reference run has drops");

    // A fault experiment's run also has its timeline and offset plots.
    let step_run = reference_run("ntp-step");
    let (status, step_page) = dashboard.get(&format!("/api/runs/ntp-step/{step_run}")).await;
    assert_eq!(status, 200);
    assert_eq!(step_page["plots"], json!(["dropped", "causes", "siblings", "timeline", "offsets"]));

    let (_, lww) = dashboard.get(&format!("/api/runs/skew/{run}/drops?strategy=lww-wall&limit=5")).await;
    assert_eq!(lww["drops"].as_array().unwrap().len(), 5);
    assert!(lww["drops"].as_array().unwrap().iter().all(|drop| drop["bucket"] == "lww-wall"));
    let index = lww["drops"][0]["index"].as_u64().unwrap();
    let (status, detail) = dashboard.get(&format!("/api/runs/skew/{run}/drops/{index}")).await;
    assert_eq!(status, 200);
    assert!(detail["drop"]["rule"].as_str().unwrap().starts_with("Last write wins kept write"));
    assert_eq!(detail["clocks"].as_array().unwrap().len(), 3, "every replica's clock at the time");

    for (path, expected) in [
        (format!("/api/runs/skew/{run}/drops/{drops}"), 404),
        (format!("/api/runs/skew/{run}/drops/first"), 400),
        ("/api/runs/skew/..%2F..".to_string(), 400),
        ("/api/runs/skew/no-such-run".to_string(), 404),
        ("/api/scenarios/no-such-scenario".to_string(), 404),
        ("/api/no-such-thing".to_string(), 404),
    ] {
        let (status, answer) = dashboard.get(&path).await;
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(answer["error"].is_string(), "{path}: a JSON error");
    }
    for (body, expected) in [(json!({"replicas": 9}), 400), (json!({"replicas": "three"}), 400)] {
        let (status, answer) = dashboard.send(Method::POST, "/api/lab/start", body).await;
        assert_eq!(status, expected, "{answer}");
    }
    let (status, _) = dashboard.send(Method::POST, "/api/lab/write", json!({"replica": 1, "key": "x"})).await;
    assert_eq!(status, 409, "no lab is running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_dashboard_stops_its_lab_replicas() {
    let mut dashboard = Dashboard::start();
    let (status, lab) = dashboard.send(Method::POST, "/api/lab/start", json!({"replicas": 3})).await;
    assert_eq!(status, 200, "{lab}");
    let pids: Vec<u32> =
        lab["replicas"].as_array().unwrap().iter().map(|r| r["pid"].as_u64().unwrap() as u32).collect();
    assert_eq!(pids.len(), 3);
    // A paused replica must die too.
    let (status, _) = dashboard.send(Method::POST, "/api/lab/replicas/2/pause", json!(null)).await;
    assert_eq!(status, 200);
    dashboard.terminate();
    for pid in pids {
        assert!(process_gone(pid), "replica process {pid} outlived the dashboard");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_page_shows_plots_and_table_and_explains_a_dropped_write() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the results page test").await else { return };
    let dashboard = Dashboard::start();
    let run = reference_run("skew");

    // The list of runs links to the reference run.
    browser.open(&format!("{}/#/results", dashboard.url)).await;
    browser.click(&format!("a[href='#/run/skew/{run}']")).await;

    // Its plot is drawn and its table lists every strategy.
    browser.find("#summary tbody tr").await;
    let loaded = browser
        .run("const img = document.querySelector('img.plot'); return img.complete && img.naturalWidth;");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut width = loaded.await;
    while width.as_u64().unwrap_or(0) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        width = browser
            .run("const img = document.querySelector('img.plot'); return img.complete && img.naturalWidth;")
            .await;
    }
    assert!(width.as_u64().unwrap_or(0) > 0, "the dropped-writes plot loaded");
    let table = browser.text("#summary").await;
    for strategy in ["lww-wall", "lww-hlc", "vv"] {
        assert!(table.contains(strategy), "{strategy} in the table: {table}");
    }
    assert!(table.contains("✗"), "drops are marked with a symbol, not colour alone");
    browser.find("#report img").await;
    browser.screenshot("results").await;

    // Clicking a dropped write of lww-wall explains it.
    browser.run("const s = document.getElementById('strategy'); s.value = 'lww-wall'; s.dispatchEvent(new Event('change'));").await;
    browser
        .wait_for_text("#drops-table tbody tr td:nth-child(2)", "lww-wall", |text| text == "lww-wall")
        .await;
    browser.click("#drops-table tbody tr.drop-row").await;
    let rule = browser.text("#rule").await;
    assert!(rule.contains("Last write wins kept write"), "{rule}");
    let writes = browser.text("#drop-writes").await;
    assert!(writes.contains("dropped") && writes.contains("killer 1"), "{writes}");
    // Nanosecond stamps are shown exactly, not rounded to a JavaScript number.
    let victim_stamp =
        rule.split("smaller stamp ").nth(1).and_then(|rest| rest.split(']').next()).expect("a stamp");
    assert!(writes.contains(&format!("{victim_stamp}]")), "{victim_stamp}] in {writes}");
    let clocks = browser.text("#clocks").await;
    assert_eq!(clocks.matches(" ms").count(), 3, "an offset per replica: {clocks}");
    browser.screenshot("drop").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_live_lab_a_skewed_clock_drops_an_increment_and_stopping_leaves_no_replica() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the live lab test").await else { return };
    let dashboard = Dashboard::start();

    // Start a three-replica cluster from the page.
    browser.open(&format!("{}/#/lab", dashboard.url)).await;
    browser.click("#start").await;
    browser.find("#replica-3").await;
    let (_, lab) = dashboard.get("/api/lab").await;
    let pids: Vec<u32> =
        lab["replicas"].as_array().unwrap().iter().map(|r| r["pid"].as_u64().unwrap() as u32).collect();

    // Replica 1's clock runs a second ahead.
    let offset = browser.find("#offset-1").await;
    offset.clear().await.expect("clear");
    offset.send_keys("1000").await.expect("type");
    browser.click("#replica-1 .set-offset").await;
    browser.wait_for_text("#replica-1 .offset", "+1000 ms", |text| text.starts_with("+1000")).await;

    // A client writes x on replica 1; once replica 2 has it, another client
    // reads x there and writes it back with one more item: Figure 8-3.
    browser.click("#replica-1 .write").await;
    browser.wait_for_text("#replica-2 dl", "replica 1's writes", |text| text.contains("1:3")).await;
    browser.click("#replica-2 .write").await;

    // Wall-clock LWW drops the increment; the others keep it.
    let dropped =
        browser.wait_for_text("#strategy-lww-wall .drop", "a drop", |text| text.contains("✗")).await;
    assert!(dropped.contains("causality"), "the writer had read the winner: {dropped}");
    browser.wait_for_text("#strategy-lww-wall .acked", "two writes", |text| text == "2").await;
    assert!(!browser.exists("#strategy-lww-hlc .drop").await, "lww-hlc dropped nothing");
    assert!(!browser.exists("#strategy-vv .drop").await, "vv dropped nothing");
    browser.screenshot("lab").await;

    // Stopping the lab stops every replica.
    browser.click("#stop").await;
    browser.find("#start").await;
    for pid in pids {
        assert!(process_gone(pid), "replica process {pid} outlived the lab");
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stepping_through_figure_8_3_shows_the_increment_disappear() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the Figure 8-3 test").await else { return };
    let dashboard = Dashboard::start();

    browser.open(&format!("{}/#/scenarios", dashboard.url)).await;
    browser.click("a[href='#/scenario/figure-8-3']").await;
    browser.wait_for_text("#step-counter", "step 1", |text| text == "Step 1 of 6").await;
    assert!(browser.text("#say").await.contains("Client A writes x = 1 on node 1"));
    assert!(browser.text(".lost-lww-wall").await.contains("nothing"));

    // Step 3: client B's increment on node 3.
    browser.click("#next").await;
    browser.click("#next").await;
    browser.wait_for_text("#step-counter", "step 3", |text| text == "Step 3 of 6").await;
    let lost = browser.text(".lost-lww-wall").await;
    assert!(lost.contains("✗") && lost.contains("acknowledged"), "the increment is gone: {lost}");
    assert!(browser.text(".lost-lww-hlc").await.contains("nothing"));
    assert!(browser.text(".lost-vv").await.contains("nothing"));
    browser.screenshot("figure-8-3").await;

    // The keyboard walks the story too, to the end: x = 1 everywhere.
    for _ in 0..3 {
        browser.find("#next").await.send_keys("\u{E014}").await.expect("arrow right");
    }
    browser.wait_for_text("#step-counter", "the last step", |text| text == "Step 6 of 6").await;
    let state = browser.text("#state-table").await;
    assert!(state.contains("x = 1") && state.contains("x = 2"), "{state}");
    assert!(browser.text(".cell-lww-wall").await.contains("x = 1"));
    assert!(browser.run("return document.getElementById('next').disabled").await.as_bool().unwrap_or(false));
    browser.close().await;
}
