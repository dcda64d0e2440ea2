//! The dashboard, end to end: the real `clocklab dashboard` process, its
//! JSON API, and its pages in a real headless Chromium.
//!
//! The runs they look at are their own (`browser::runs`), never the
//! checkout's `results/`. The browser tests save a screenshot of each page
//! (to target/tmp/screenshots/; `just screenshots` refreshes the README's).
//! They run one at a time (one Chromium is plenty for two cores).

mod browser;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use browser::{
    Browser, Dashboard, REPO, Runs, children_of, finished_run, process_gone, runs, start_experiment,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// One browser at a time.
static BROWSER: Mutex<()> = Mutex::const_new(());

/// Per shipped experiment, the answer its README section gives to its
/// quiz, and an answer that is wrong.
const README_ANSWERS: [(&str, &str, &str); 17] = [
    ("chaos", "vv", "truetime"),
    ("commit-wait", "truetime", "lww-wall"),
    ("crash", "vv", "lww-wall"),
    ("drift", "lww-wall", "vv"),
    ("fencing", "fenced", "monotonic"),
    ("lease-clock", "monotonic", "wall-clock"),
    ("lease-pause", "fenced", "wall-clock"),
    ("monitor", "lww-wall", "lww-hlc"),
    ("ntp-step", "lww-wall", "vv"),
    ("partition", "vv", "lww-wall"),
    ("pause", "vv", "lww-hlc"),
    ("resolution", "lww-wall", "vv"),
    ("resync", "lww-wall", "vv"),
    ("riak-2013", "set-union", "lww-wall"),
    ("siblings", "vv-server", "vv"),
    ("skew", "lww-wall", "vv"),
    ("skew-rate", "lww-wall", "lww-hlc"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_a_run_and_refuses_what_it_cannot_serve() {
    let dashboard = Dashboard::start(&runs().results);
    check_the_api(&dashboard, runs()).await;
}

/// A results directory with no runs, for tests that need none.
fn no_runs() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-runs")
}

/// A run the user made in the checkout's `results/`, removed when dropped.
struct UsersRun(PathBuf);

impl Drop for UsersRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_own_runs_in_results_change_nothing_the_tests_see() {
    // What a new user does first: the README's first command (quick), in
    // the checkout, into its own results/. It is the newest run there, and
    // of a sweep the tests' runs were not made with.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["experiment", "skew", "--quick", "--seed", "99"])
        .current_dir(REPO)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start clocklab experiment");
    let id = finished_run(child);
    let users = UsersRun(Path::new(REPO).join("results/skew").join(&id));
    assert!(users.0.join("summary.json").is_file(), "the user's run is in the checkout's results/");

    // The tests' own checks still hold...
    let dashboard = Dashboard::start(&runs().results);
    check_the_api(&dashboard, runs()).await;
    // ...and the user's dashboard, on the checkout's results/, lists it.
    let theirs = Dashboard::start(&Path::new(REPO).join("results"));
    let (_, listing) = theirs.get("/api/experiments").await;
    let skew = listing["experiments"].as_array().unwrap().iter().find(|e| e["name"] == "skew").expect("skew");
    assert_eq!(skew["runs"][0]["id"], json!(id), "the newest run is listed first");
    drop(users);
}

/// The API's answers about the tests' runs, and its refusals.
async fn check_the_api(dashboard: &Dashboard, runs: &Runs) {
    let run = runs.skew.as_str();

    let (status, listing) = dashboard.get("/api/experiments").await;
    assert_eq!(status, 200);
    let skew = listing["experiments"].as_array().unwrap().iter().find(|e| e["name"] == "skew").expect("skew");
    assert!(skew["runs"].as_array().unwrap().iter().any(|r| r["id"] == run && r["finished"] == true));
    let step = listing["experiments"].as_array().unwrap().iter().find(|e| e["name"] == "ntp-step").unwrap();
    let engine_of = |runs: &Value, id: &str| {
        runs.as_array().unwrap().iter().find(|r| r["id"] == id).map(|r| r["engine"].clone())
    };
    assert_eq!(engine_of(&skew["runs"], run), Some(json!("processes")), "which engine ran each run");
    assert_eq!(engine_of(&step["runs"], &runs.ntp_step), Some(json!("sim")));

    let (status, page) = dashboard.get(&format!("/api/runs/skew/{run}")).await;
    assert_eq!(status, 200);
    assert_eq!(page["engine"], "processes");
    assert_eq!(page["plots"], json!(["dropped", "causes", "siblings", "costs", "offsets"]));
    assert!(
        page["report_html"].as_str().unwrap().contains(&format!("/api/runs/skew/{run}/plots/dropped.svg"))
    );
    // Every plot is drawn at the width asked for, text at its drawn size.
    for plot in page["plots"].as_array().unwrap() {
        let url =
            format!("{}/api/runs/skew/{run}/plots/{}.svg?width=640", dashboard.url, plot.as_str().unwrap());
        let svg = reqwest::get(&url).await.expect("GET").text().await.expect("an SVG");
        assert!(svg.starts_with("<svg width=\"640\""), "{url}: {}", &svg[..svg.len().min(80)]);
    }
    let (status, _) = dashboard.get(&format!("/api/runs/skew/{run}/plots/no-such-plot.svg")).await;
    assert_eq!(status, 404);
    let drops = page["drops"].as_u64().unwrap();
    assert!(drops > 0, "the skew run has drops");

    // A fault experiment's run also has its timeline and offset plots.
    let step_run = &runs.ntp_step;
    let (status, step_page) = dashboard.get(&format!("/api/runs/ntp-step/{step_run}")).await;
    assert_eq!(status, 200);
    assert_eq!(step_page["plots"], json!(["dropped", "causes", "siblings", "costs", "timeline", "offsets"]));
    assert_eq!(step_page["engine"], "sim", "a simulated run says so");

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
    for (method, path, expected) in [
        (Method::POST, "/api/lab/replicas/one/pause", 400),
        (Method::PUT, "/api/lab/replicas/-1/clock", 400),
        (Method::POST, "/api/no-such-thing", 404),
        (Method::DELETE, "/api/lab", 405),
    ] {
        let (status, answer) = dashboard.send(method.clone(), path, json!({})).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert!(answer["error"].is_string(), "{method} {path}: a JSON error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_dashboard_stops_its_lab_replicas() {
    let mut dashboard = Dashboard::start(&no_runs());
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
async fn the_overview_shows_every_experiment_with_its_question_plot_and_headline() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the overview test").await else { return };
    // A quick run of every shipped experiment, in the simulator (a tenth of
    // a second each), into a results directory of this test's own.
    let results = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a results directory");
    let mut names: Vec<String> = std::fs::read_dir(Path::new(REPO).join("experiments"))
        .expect("experiments/")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".toml").map(str::to_string))
        // A real database's experiments need its servers, not the simulator
        // (tests/pg.rs runs one on them).
        .filter(|name| {
            let spec = std::fs::read_to_string(Path::new(REPO).join(format!("experiments/{name}.toml")));
            !spec.unwrap_or_default().contains("engine = \"pglogical\"")
        })
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    let children: Vec<_> =
        names.iter().map(|name| start_experiment(name, &["--sim"], results.path())).collect();
    children.into_iter().for_each(|child| drop(finished_run(child)));
    let dashboard = Dashboard::start(results.path());
    let (_, listing) = dashboard.get("/api/experiments").await;

    browser.open(&format!("{}/#/", dashboard.url)).await;
    for name in &names {
        browser.find(&format!("#card-{name} img.plot")).await;
        let card =
            listing["experiments"].as_array().unwrap().iter().find(|e| e["name"] == **name).expect("listed");
        let question = browser.text(&format!("#card-{name} .question")).await;
        assert_eq!(Some(question.as_str()), card["question"].as_str(), "{name}: its question, from its spec");
        let headline = browser.text(&format!("#card-{name} .headline")).await;
        assert_eq!(Some(headline.as_str()), card["latest"]["headline"].as_str(), "{name}");
        let in_words = if name.starts_with("lease-") || name == "fencing" {
            headline.contains(" safe in all ") || headline.contains(" unsafe in ")
        } else {
            headline.contains(" drop")
        };
        assert!(in_words, "{name}: the numbers in words: {headline}");
        let facts = browser
            .run(&format!("return document.querySelector('#card-{name} .run-facts').textContent"))
            .await;
        assert!(
            facts.as_str().is_some_and(|facts| facts.contains("seed 1, quick, simulator")),
            "{name}: {facts}"
        );
    }
    let skew = browser.text("#card-skew .headline").await;
    assert!(
        skew.contains("lww-wall drops")
            && skew.contains("with every clock in step")
            && skew.contains("drop none"),
        "the headline in words: {skew}"
    );

    // Every shipped experiment's quiz: the answer the README gives is
    // right, a wrong one is not, and the quiz names the run it graded on.
    for (name, right, wrong) in README_ANSWERS {
        let (status, quiz) = dashboard.get(&format!("/api/quiz/{name}")).await;
        assert_eq!(status, 200, "{name}: {quiz}");
        let choices = quiz["choices"].as_array().unwrap();
        assert!(choices.contains(&json!(right)) && choices.contains(&json!(wrong)), "{name}: {choices:?}");
        assert!(
            quiz.get("accepted").is_none() && quiz.get("correct").is_none(),
            "{name}: no answer before the choice"
        );
        for (choice, correct) in [(right, true), (wrong, false)] {
            let (status, answer) = dashboard
                .send(Method::POST, &format!("/api/quiz/{name}/answer"), json!({"choice": choice}))
                .await;
            assert_eq!(status, 200, "{name}: {answer}");
            assert_eq!(answer["correct"], json!(correct), "{name}, {choice}: {}", answer["sentence"]);
            assert_eq!(answer["run"], quiz["run"], "{name}: graded on the run the quiz named");
        }
    }
    // A lease run's page: its guards' verdicts and its two plots, no
    // strategies' tables and no drops.
    let lease_run = listing["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "lease-pause")
        .and_then(|e| e["latest"]["id"].as_str())
        .expect("a lease-pause run")
        .to_string();
    browser.open(&format!("{}/#/run/lease-pause/{lease_run}", dashboard.url)).await;
    let verdicts = browser.text("#lease-verdicts").await;
    for guard in ["wall-clock", "monotonic", "fenced"] {
        assert!(verdicts.contains(guard), "every guard's row: {verdicts}");
    }
    assert!(!browser.exists("#summary").await && !browser.exists("#drops").await, "no strategy tables");
    let (status, page) = dashboard.get(&format!("/api/runs/lease-pause/{lease_run}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["plots"], json!(["lease-harm", "lease-timeline"]), "{page}");
    let timeline = reqwest::get(format!(
        "{}/api/runs/lease-pause/{lease_run}/plots/lease-timeline.svg?width=900",
        dashboard.url
    ))
    .await
    .expect("GET the timeline");
    assert_eq!(timeline.status().as_u16(), 200);
    let svg = timeline.text().await.expect("its SVG");
    assert!(svg.contains("guard: fenced") && svg.contains("worker 2"), "the timeline's panels and rows");
    browser.open(&format!("{}/#/", dashboard.url)).await;

    let names_in_answers: Vec<&str> = README_ANSWERS.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(names_in_answers, names, "a README answer for every shipped experiment");
    let (status, answer) =
        dashboard.send(Method::POST, "/api/quiz/skew/answer", json!({"choice": "no-such-strategy"})).await;
    assert_eq!(status, 400, "{answer}");

    // Lesson mode keeps every answer off the overview until the class has
    // answered that experiment's quiz.
    browser.click("#lesson-mode").await;
    browser.find("#lesson-note").await;
    for name in &names {
        assert!(
            !browser.exists(&format!("#card-{name} img.plot")).await,
            "{name}: lesson mode hides the plot"
        );
        assert!(!browser.exists(&format!("#card-{name} .headline")).await, "{name}: and the findings");
    }
    browser.click("a[href='#/predict/skew']").await;
    browser.click("#choices .choice[data-strategy='lww-wall']").await;
    browser.find("#verdict").await;
    browser.open(&format!("{}/#/", dashboard.url)).await;
    browser.find("#card-skew img.plot").await;
    assert!(!browser.exists("#card-partition img.plot").await, "partition is not answered yet");
    browser.click("#lesson-mode").await;
    browser.find("#card-partition img.plot").await;

    // A run made now is there once it finishes.
    finished_run(start_experiment("partition", &["--sim"], results.path()));
    browser.open(&format!("{}/#/lab", dashboard.url)).await;
    browser.open(&format!("{}/#/", dashboard.url)).await;
    browser.wait_for_text("#card-partition summary", "two runs", |text| text == "2 runs").await;

    // Two runs of one experiment compared: one plot, and a row per point and strategy.
    let (_, listing) = dashboard.get("/api/experiments").await;
    let partition =
        listing["experiments"].as_array().unwrap().iter().find(|e| e["name"] == "partition").unwrap();
    let ids: Vec<&str> =
        partition["runs"].as_array().unwrap().iter().map(|run| run["id"].as_str().unwrap()).collect();
    let (newer, older) = (ids[0], ids[1]);
    browser.open(&format!("{}/#/run/partition/{older}", dashboard.url)).await;
    browser.find("#compare-with").await;
    browser.click("#compare").await;
    browser.find("#compare-table tbody tr").await;
    let (status, comparison) = dashboard.get(&format!("/api/compare/partition/{older}/{newer}")).await;
    assert_eq!(status, 200);
    let rows = comparison["rows"].as_array().expect("rows");
    assert!(!rows.is_empty());
    let shown = browser.run("return document.querySelectorAll('#compare-table tbody tr').length").await;
    assert_eq!(shown.as_u64(), Some(rows.len() as u64), "a row per point and strategy");
    // Same spec, same seed, in the simulator: the same history, so every rate agrees exactly.
    assert!(
        rows.iter().all(|row| row["difference"] == json!(0.0) && row["agrees"] == json!(true)),
        "{rows:?}"
    );
    let width = browser
        .run("const img = document.getElementById('compare-plot'); return new Promise((done) => img.complete ? done(img.naturalWidth) : (img.onload = () => done(img.naturalWidth)));")
        .await;
    assert!(width.as_u64().unwrap_or(0) > 0, "the comparison plot loaded");
    browser.screenshot("compare").await;

    // Predict, then reveal: no plot and no answer until the class has chosen.
    browser.open(&format!("{}/#/", dashboard.url)).await;
    browser.click("a[href='#/predict/skew']").await;
    browser.find("#choices .choice").await;
    assert!(!browser.exists("#reveal img").await, "the plot is hidden before the choice");
    assert!(!browser.text("#reveal").await.contains('%'), "and so are the numbers");
    let setup = browser.text("#setup").await;
    assert!(setup.starts_with("Replica 1's clock runs ahead"), "the README's setup: {setup}");
    assert!(setup.ends_with("drop none at all?"), "and its question: {setup}");
    assert!(!setup.contains("should"), "the setup does not give the answer away: {setup}");
    let question = browser.text("#question").await;
    assert!(question.contains("largest share"), "the quiz's own question: {question}");
    assert!(!browser.exists("#why").await, "the explanation waits for the choice");
    browser.click("#choices .choice[data-strategy='vv']").await;
    browser.find("#reveal-plot").await;
    let why = browser.text("#why").await;
    assert!(
        why.starts_with("Last-write-wins on wall clocks orders writes"),
        "the README's explanation: {why}"
    );
    let verdict = browser.text("#verdict").await;
    assert!(verdict.starts_with("✗ Not vv: it dropped none"), "a wrong choice is told so: {verdict}");
    assert!(verdict.contains("lww-wall dropped"), "with the right answer: {verdict}");
    let graded = browser.text("#reveal .graded").await;
    assert!(graded.contains("the newest run"), "it says which run graded it: {graded}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_page_shows_plots_and_table_and_explains_a_dropped_write() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the results page test").await else { return };
    let dashboard = Dashboard::start(&runs().results);
    let run = &runs().skew;

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
    for strategy in ["lww-wall", "lww-hlc", "lww-lamport", "vv", "vv-server", "set-union"] {
        assert!(table.contains(strategy), "{strategy} in the table: {table}");
    }
    assert!(table.contains("✗"), "drops are marked with a symbol, not colour alone");
    let costs = browser.text("#costs").await;
    assert!(
        costs.contains("99th percentile") && costs.contains("bytes kept per write"),
        "what it cost: {costs}"
    );
    let engine = browser.text("#engine").await;
    assert!(engine.contains("real replica processes"), "the page says what ran it: {engine}");
    browser.find("#report img").await;

    // Clicking a dropped write of lww-wall explains it.
    browser.run("const s = document.getElementById('strategy'); s.value = 'lww-wall'; s.dispatchEvent(new Event('change'));").await;
    browser
        .wait_for_text("#drops-table tbody tr td:nth-child(2)", "lww-wall", |text| text == "lww-wall")
        .await;
    browser.click("#drops-table tbody tr.drop-row").await;
    let rule = browser.text("#rule").await;
    assert!(rule.contains("Last write wins kept write"), "{rule}");
    assert!(rule.contains("by replica") && rule.contains("'s clock"), "stamps in words: {rule}");
    let writes = browser.text("#drop-writes").await;
    assert!(writes.contains("dropped") && writes.contains("beat it"), "{writes}");
    // A stamp reads as a time of day; its exact nanoseconds are on hover,
    // not rounded to a JavaScript number.
    let index = browser.run("return location.hash.split('/').pop()").await;
    let (_, detail) = dashboard.get(&format!("/api/runs/skew/{run}/drops/{}", index.as_str().unwrap())).await;
    let exact = detail["drop"]["victim"]["stamp"].to_string().replace('"', "");
    let hover = browser.run("return document.querySelector('#drop-writes .stamp').title").await;
    assert_eq!(hover.as_str(), Some(format!("exact stamp: {exact}").as_str()));
    assert!(writes.contains(detail["victim_stamp"].as_str().unwrap()), "{writes}");
    let clocks = browser.text("#clocks").await;
    assert_eq!(clocks.matches(" ms").count(), 3, "an offset per replica: {clocks}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_live_lab_a_skewed_clock_drops_an_increment_and_stopping_leaves_no_replica() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the live lab test").await else { return };
    let dashboard = Dashboard::start(&no_runs());

    // The page offers what the lab accepts, as the API says it.
    let (_, idle) = dashboard.get("/api/lab").await;
    let limits = &idle["limits"];
    assert_eq!(limits["min_replicas"], json!(clocklab::dashboard::lab::MIN_REPLICAS));
    assert_eq!(limits["max_replicas"], json!(clocklab::dashboard::lab::MAX_REPLICAS));
    assert_eq!(limits["max_workload_rate"], json!(clocklab::dashboard::lab::MAX_WORKLOAD_RATE));
    browser.open(&format!("{}/#/lab", dashboard.url)).await;
    browser.find("#replica-count").await;
    let offered = browser
        .run("return [...document.querySelectorAll('#replica-count option')].map((option) => Number(option.value))")
        .await;
    let expected: Vec<u64> =
        (limits["min_replicas"].as_u64().unwrap()..=limits["max_replicas"].as_u64().unwrap()).collect();
    assert_eq!(offered, json!(expected), "replica counts come from the API");

    // Start a three-replica cluster from the page.
    browser.click("#start").await;
    browser.find("#replica-3").await;
    let rate = browser.run("const rate = document.getElementById('rate'); return [Number(rate.max), Number(rate.step), Number(rate.value)]").await;
    let number = |value: &Value| value.as_f64().expect("a number");
    let offered: Vec<f64> = rate.as_array().expect("three numbers").iter().map(number).collect();
    let wanted: Vec<f64> = ["max_workload_rate", "workload_rate_step", "default_workload_rate"]
        .iter()
        .map(|name| number(&limits[*name]))
        .collect();
    assert_eq!(offered, wanted, "the workload rate's bounds come from the API");
    let (_, lab) = dashboard.get("/api/lab").await;
    let pids: Vec<u32> =
        lab["replicas"].as_array().unwrap().iter().map(|r| r["pid"].as_u64().unwrap() as u32).collect();

    // Replica 1's clock runs a second ahead.
    let offset = browser.find("#offset-1").await;
    offset.clear().await.expect("clear");
    offset.send_keys("1000").await.expect("type");
    browser.click("#replica-1 .set-offset").await;
    browser.wait_for_text("#replica-1 .offset", "+1000 ms", |text| text.starts_with("+1000.0 ms")).await;

    // A client writes x on replica 1; once replica 2 has it, another client
    // reads x there and writes it back with one more item: Figure 8-3.
    browser.click("#replica-1 .write").await;
    // One operation is a write in every bucket: it has reached replica 2
    // when every one of them has.
    browser
        .wait_for_text("#replica-2 .holds", "replica 1's writes", |text| text == "1 operation from replica 1")
        .await;
    browser.click("#replica-2 .write").await;

    // Wall-clock LWW drops the increment; the others keep it.
    browser.wait_for_text("#strategy-lww-wall .drops", "a drop", |text| text == "✗ 1").await;
    let why = browser.text("#strategy-lww-wall .causes").await;
    assert!(why.contains("causality violation"), "the writer had read the winner: {why}");
    browser.wait_for_text("#strategy-lww-wall .acked", "two writes", |text| text == "2").await;
    assert_eq!(browser.text("#strategy-lww-hlc .drops").await, "0", "lww-hlc dropped nothing");
    assert_eq!(browser.text("#strategy-vv .drops").await, "0", "vv dropped nothing");
    // The lab shows what each bucket keeps of x: vv holds the increment.
    let held = browser.wait_for_text("#key-table", "x's values", |text| text.contains("replica 3")).await;
    assert!(held.contains("lww-wall") && held.contains("vv"), "{held}");
    browser.run("window.scrollTo(0, 0); return true").await;
    browser.screenshot("lab").await;

    // A paused replica refuses a write at once, saying why.
    browser.click("#replica-3 .pause").await;
    browser.find("#replica-3.paused").await;
    browser.click("#replica-3 .write").await;
    let error = browser.wait_for_text("main .error", "a refusal", |text| text.contains("paused")).await;
    assert!(error.contains("SIGSTOP"), "{error}");
    browser.click("#replica-3 .resume").await;

    // A slow link, from the page: every push over it waits.
    // (In one script: a snapshot may redraw the page between two commands.)
    browser.run("document.getElementById('delay-1-2').value = '2000'; document.querySelector('#links tr:first-child .slow').click(); return true").await;
    browser.wait_for_text("#links", "the delay", |text| text.contains("2000 ms delay")).await;
    let (_, lab) = dashboard.get("/api/lab").await;
    assert_eq!(lab["slow_links"][0]["delay_ms"], json!(2000.0), "{lab}");

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
    let dashboard = Dashboard::start(&no_runs());

    browser.open(&format!("{}/#/scenarios", dashboard.url)).await;
    browser.click("a[href='#/scenario/figure-8-3']").await;
    browser.wait_for_text("#step-counter", "step 1", |text| text == "Step 1 of 6").await;
    assert!(browser.text("#say").await.contains("Client A writes x = 1 on node 1"));
    // Clock readings start from the scenario's own second, as the API gives it.
    let (_, trace) = dashboard.get("/api/scenarios/figure-8-3").await;
    assert_eq!(trace["start_second"], json!(42.0));
    assert!(browser.text("#state-table").await.contains("clock 42.004"), "node 1 is 3 ms ahead at 1 ms");
    assert!(browser.text("#verdict [data-buckets~='lww-wall']").await.contains("nothing"));

    // Step 3: client B's increment on node 3.
    browser.click("#next").await;
    browser.click("#next").await;
    browser.wait_for_text("#step-counter", "step 3", |text| text == "Step 3 of 6").await;
    let lost = browser.text("#verdict [data-buckets~='lww-wall']").await;
    assert!(lost.contains("✗") && lost.contains("increment x = 2 (step 3)"), "the increment is gone: {lost}");
    assert!(browser.text("#verdict [data-buckets~='lww-hlc']").await.contains("nothing"));
    assert!(browser.text("#verdict [data-buckets~='vv']").await.contains("nothing"));

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

/// "Find the smallest story": the search, run from the page, finds DDIA
/// Figure 8-3 for lww-wall and plays it in the step-through; for vv it says
/// that nothing within the bounds loses a write, with the states it tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smallest_story_search_finds_figure_8_3_and_plays_it_in_the_step_through() {
    let dashboard = Dashboard::start(&no_runs());
    // The API first: what can be searched, and bad questions refused.
    let (status, options) = dashboard.get("/api/explore").await;
    assert_eq!(status, 200, "{options}");
    assert!(options["strategies"].as_array().unwrap().contains(&json!("lww-wall")), "{options}");
    for (path, expected) in [("/api/explore/no-such-strategy", 404), ("/api/explore/vv?cause=sideways", 400)]
    {
        let (status, answer) = dashboard.get(path).await;
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(answer["error"].is_string(), "{path}: a JSON error");
    }

    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the smallest story test").await else { return };
    browser.viewport(1280, 720).await;
    browser.open(&format!("{}/#/scenarios", dashboard.url)).await;
    browser.find("body[data-route='#/scenarios']").await;
    browser
        .run(
            "document.getElementById('smallest-strategy').value = 'lww-wall'; \
             document.getElementById('smallest-cause').value = 'causality'; return true",
        )
        .await;
    browser.click("#find-smallest").await;
    browser.wait_for_text("#step-counter", "step 1", |text| text == "Step 1 of 5").await;
    assert!(browser.text("h1").await.contains("lww-wall loses a write (causality violation)"));
    // Replica 1's clock runs ahead; its write reaches replica 2; a client
    // there reads it and writes on top, and its write is lost at once.
    assert!(browser.text("#say").await.contains("5 ms ahead of true time"));
    browser.click("#next").await;
    browser.click("#next").await;
    browser.wait_for_text("#step-counter", "step 3", |text| text == "Step 3 of 5").await;
    assert!(browser.text("#say").await.contains("reads x (write 1:1)"));
    let lost = browser.text("#verdict [data-buckets~='lww-wall']").await;
    assert!(lost.contains("✗") && lost.contains("(step 3)"), "the update is gone: {lost}");
    assert!(
        browser.on_screen("#say").await && browser.on_screen("#verdict").await,
        "line and verdict on screen"
    );
    browser.press(browser::keys::END).await;
    browser.wait_for_text("#step-counter", "the end", |text| text == "Step 5 of 5").await;
    let said = browser.text("#say").await;
    assert!(said.contains("causality violation") && said.contains("Figure 8-3"), "{said}");
    assert!(browser.text("#verdict [data-buckets~='lww-wall']").await.contains("lost"));

    // Where nothing can be lost, the page says so, and within what.
    browser.open(&format!("{}/#/smallest/vv/any", dashboard.url)).await;
    let none =
        browser.wait_for_text("#none-found", "the verdict", |text| text.contains("No story within")).await;
    assert!(
        none.contains("in which vv loses an acknowledged write") && none.contains("states explored"),
        "{none}"
    );
    browser.close().await;
}

/// Sends one HTTP/1.1 request exactly as written (a browser's, or an
/// attacker's) and returns the status and the body.
fn raw_request(url: &str, request: &str) -> (u16, String) {
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the dashboard");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let status = answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sites_cannot_drive_the_lab_and_a_foreign_host_is_not_answered() {
    let dashboard = Dashboard::start(&no_runs());
    let host = dashboard.url.trim_start_matches("http://").to_string();
    let start = |host: &str, content_type: &str, origin: &str| {
        let body = r#"{"replicas":3}"#;
        format!(
            "POST /api/lab/start HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{origin}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let refused = [
        // A "simple" cross-site request, which a browser sends without asking.
        start(&host, "text/plain", "Origin: http://evil.example\r\n"),
        // The same from a form, or with no Origin at all.
        start(&host, "application/x-www-form-urlencoded", ""),
        start(&host, "text/plain", ""),
        // JSON, but from another site's page.
        start(&host, "application/json", "Origin: http://evil.example\r\n"),
        // DNS rebinding: the browser thinks it talks to evil.example.
        start("evil.example", "application/json", "Origin: http://evil.example\r\n"),
        start(&format!("evil.example:{}", host.rsplit(':').next().unwrap()), "application/json", ""),
    ];
    for request in &refused {
        let (status, body) = raw_request(&dashboard.url, request);
        assert_eq!(status, 403, "{request}\n=> {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
        assert!(answer["error"].is_string(), "{body}");
    }
    let read = "GET /api/lab HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_request(&dashboard.url, read).0, 403, "a rebinding page cannot read the API");
    let page = "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_request(&dashboard.url, page).0, 403, "nor the page");

    // Nothing started.
    assert!(children_of(dashboard.child.id()).is_empty(), "a refused request started a process");
    let (_, lab) = dashboard.get("/api/lab").await;
    assert_eq!(lab["running"], json!(false));

    // The dashboard's own page may: same host, JSON, its own origin.
    let own = start(&host, "application/json", &format!("Origin: http://{host}\r\n"));
    let (status, body) = raw_request(&dashboard.url, &own);
    assert_eq!(status, 200, "{body}");
    assert_eq!(children_of(dashboard.child.id()).len(), 3, "the lab's three replicas");
    let local = host.replace("127.0.0.1", "localhost");
    let stop = format!(
        "POST /api/lab/stop HTTP/1.1\r\nHost: {local}\r\nContent-Type: application/json\r\n\
         Origin: http://{local}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    assert_eq!(raw_request(&dashboard.url, &stop).0, 200, "localhost is the dashboard too");
    assert!(children_of(dashboard.child.id()).is_empty(), "stopping the lab stopped its replicas");
}
