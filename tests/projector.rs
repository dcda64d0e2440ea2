//! The dashboard as a lecture shows it: in a real headless Chromium whose
//! page is exactly 1280x720 (what a projector shows the back row) or
//! 1920x1080. On every page nothing is wider than the screen and no plot
//! text is smaller than 14 px as displayed; in the Figure 8-3 step-through
//! and in every live-lab preset, the step's line and the verdict are both
//! on screen at every step, without scrolling; and the presenter's keys
//! work. The screenshots at 1280x720 are the README's pictures
//! (`just screenshots` writes them to docs/screenshots/).

mod browser;

use std::path::Path;
use std::time::{Duration, Instant};

use browser::{Browser, Dashboard, finished_run, keys, start_experiment};
use serde_json::Value;
use tokio::sync::Mutex;

/// One browser at a time.
static BROWSER: Mutex<()> = Mutex::const_new(());

/// The screens a lecture is given on.
const SCREENS: [(u32, u32); 2] = [(1280, 720), (1920, 1080)];

/// How long one preset step may take (a settle waits for the oracle).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Quick simulator runs of experiments whose plots differ in kind: sweeps
/// on log and reversed axes, a timeline, offsets, a heatmap, siblings.
fn runs(results: &Path) -> Vec<(&'static str, String)> {
    let names = ["skew", "ntp-step", "skew-rate", "siblings", "resync"];
    let children: Vec<_> = names.iter().map(|name| start_experiment(name, &["--sim"], results)).collect();
    names.into_iter().zip(children.into_iter().map(finished_run)).collect()
}

/// Opens `route`, waits for it to be drawn and for `ready`, and checks the
/// page as a projector shows it.
async fn check_page(browser: &Browser, dashboard: &Dashboard, route: &str, ready: &str) {
    browser.open(&format!("{}/#/{route}", dashboard.url)).await;
    browser.find(&format!("body[data-route='#/{route}']")).await;
    browser.find(ready).await;
    browser.measure().await.assert_projector_ready(route);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_the_screen_and_its_plots_read_from_the_back_row() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the projector test").await else { return };
    let results = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a results directory");
    let runs = runs(results.path());
    let dashboard = Dashboard::start(results.path());
    let (_, skew_page) = dashboard.get(&format!("/api/runs/skew/{}", runs[0].1)).await;
    let drop = skew_page["drops"].as_u64().expect("drops");
    assert!(drop > 0);
    for (width, height) in SCREENS {
        browser.viewport(width, height).await;
        let projector = (width, height) == (1280, 720);
        check_page(&browser, &dashboard, "", "#card-skew img.plot").await;
        if projector {
            browser.screenshot("overview").await;
        }
        for (name, run) in &runs {
            check_page(&browser, &dashboard, &format!("run/{name}/{run}"), "#summary tbody tr").await;
            if projector && *name == "skew" {
                browser.screenshot("results").await;
            }
        }
        check_page(&browser, &dashboard, &format!("run/skew/{}/drop/0", runs[0].1), "#drop-writes").await;
        let skew = &runs[0].1;
        check_page(&browser, &dashboard, &format!("compare/skew/{skew}/{skew}"), "#compare-table tbody tr")
            .await;
        check_page(&browser, &dashboard, "scenarios", "a[href='#/scenario/figure-8-3']").await;
        if projector {
            browser.screenshot("drop").await;
        }
        // The quiz, before and after the class has answered.
        check_page(&browser, &dashboard, "predict/skew", "#choices .choice").await;
        browser.click("#choices .choice[data-strategy='lww-wall']").await;
        browser.find("#verdict").await;
        browser.measure().await.assert_projector_ready("the quiz, answered");
        if projector {
            browser.screenshot("predict").await;
        }
        // Every scenario of the step-through, at its first and last step.
        let scenarios = [
            "figure-8-3",
            "concurrent-writes",
            "shopping-cart",
            "sibling-explosion",
            "smallest-lww-wall-causality",
        ];
        for scenario in scenarios {
            check_page(&browser, &dashboard, &format!("scenario/{scenario}"), "#state-table").await;
            browser.press(keys::END).await;
            browser
                .wait_for_text("#step-counter", "the last step", |text| {
                    text.split(" of ").next().map(|at| at.trim_start_matches("Step "))
                        == text.split(" of ").nth(1)
                })
                .await;
            browser.measure().await.assert_projector_ready(&format!("{scenario}, last step"));
        }
        // A story the search finds, at the step that loses the update.
        check_page(&browser, &dashboard, "smallest/lww-wall/causality", "#state-table").await;
        browser.press(keys::RIGHT).await;
        browser.press(keys::RIGHT).await;
        browser.wait_for_text("#step-counter", "step 3", |text| text.starts_with("Step 3 of")).await;
        browser.measure().await.assert_projector_ready("the smallest story, step 3");
        if projector {
            browser.screenshot("smallest-story").await;
        }
        check_page(&browser, &dashboard, "lab", "#replica-count").await;
    }
    browser.close().await;
}

/// Whether the step's line and the verdict are both on screen, and the page
/// has not scrolled sideways.
async fn line_and_verdict_on_screen(browser: &Browser, line: &str, verdict: &str) -> Result<(), String> {
    let scrolled =
        browser.run("return [window.scrollX, document.documentElement.scrollWidth, window.innerWidth]").await;
    if scrolled[0].as_f64() != Some(0.0) || scrolled[1].as_u64() > scrolled[2].as_u64() {
        return Err(format!("the page scrolled or is too wide: {scrolled}"));
    }
    for css in [line, verdict] {
        if !browser.on_screen(css).await {
            let place = browser
                .run(&format!(
                    "return JSON.stringify(document.querySelector({css:?})?.getBoundingClientRect())"
                ))
                .await;
            return Err(format!("{css} is not wholly on screen: {place}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure_8_3_keeps_its_line_and_verdict_on_one_screen_and_answers_the_presenters_keys() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the step-through keys test").await else { return };
    let dashboard = Dashboard::start(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-runs"));
    let counter = async || browser.text("#step-counter").await;
    for (width, height) in SCREENS {
        browser.viewport(width, height).await;
        // From another page, so that the story starts afresh each time.
        browser.open(&format!("{}/#/scenarios", dashboard.url)).await;
        browser.click("a[href='#/scenario/figure-8-3']").await;
        browser.wait_for_text("#step-counter", "step 1", |text| text == "Step 1 of 6").await;
        for step in 1..=6 {
            browser
                .wait_for_text("#step-counter", "the step", |text| text == format!("Step {step} of 6"))
                .await;
            line_and_verdict_on_screen(&browser, "#say", "#verdict")
                .await
                .unwrap_or_else(|problem| panic!("{width}x{height}, step {step}: {problem}"));
            if step == 3 && (width, height) == (1280, 720) {
                let lost = browser.text("#verdict [data-buckets~='lww-wall']").await;
                assert!(lost.contains("✗") && lost.contains("increment"), "the increment is gone: {lost}");
                browser.screenshot("figure-8-3").await;
            }
            browser.press(keys::RIGHT).await;
        }
        // Back, home, end, and a clicker's page-down.
        browser.press(keys::LEFT).await;
        assert_eq!(counter().await, "Step 5 of 6", "← goes back");
        browser.press(keys::HOME).await;
        assert_eq!(counter().await, "Step 1 of 6", "Home restarts");
        browser.press(keys::PAGE_DOWN).await;
        assert_eq!(counter().await, "Step 2 of 6", "a clicker's page-down goes on");
        browser.press(keys::END).await;
        assert_eq!(counter().await, "Step 6 of 6", "End goes to the end");
        let lost = browser.text("#verdict [data-buckets~='lww-wall']").await;
        assert!(lost.contains("lost"), "at the end, the oracle's word: {lost}");
        // Space plays the story on its own, and space pauses it.
        browser.press(keys::HOME).await;
        browser.press(keys::SPACE).await;
        browser.wait_for_text("#step-counter", "playing on", |text| text == "Step 3 of 6").await;
        browser.press(keys::SPACE).await;
        let paused = counter().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(counter().await, paused, "space paused it");
        let scrolled = browser.run("return window.scrollX").await;
        assert_eq!(scrolled.as_f64(), Some(0.0), "the arrow keys did not scroll the page sideways");
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_preset_keeps_its_line_and_verdict_on_one_screen_at_every_step() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the presets on a projector test").await else { return };
    let dashboard = Dashboard::start(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-runs"));
    let presets = dashboard.preset_steps().await;
    assert_eq!(presets.len(), 5, "{presets:?}");
    browser.viewport(1280, 720).await;
    browser.open(&format!("{}/#/lab", dashboard.url)).await;
    let done = async || browser.run("return document.querySelectorAll('#story-steps li.done').length").await;
    for (name, steps) in &presets {
        browser.viewport(1280, 720).await;
        // Once a story is told, the others are a click away.
        if browser.exists("details.other-stories").await {
            browser.click("details.other-stories summary").await;
        }
        browser.click(&format!(".preset[data-name='{name}']")).await;
        browser.find("#story-say").await;
        // A lease story's verdict is per guard, in the lease table.
        let (verdict, claims) = if name == "lease-pause" {
            ("#lease-table", 2)
        } else {
            ("#columns", clocklab::strategy::NAMES.len())
        };
        for step in 1..=*steps {
            browser.press(keys::RIGHT).await;
            let deadline = Instant::now() + STEP_TIMEOUT;
            while done().await.as_u64() != Some(step as u64) {
                let error = browser
                    .run("return document.querySelector('#presets .error')?.textContent ?? null")
                    .await;
                assert!(error.is_null(), "{name} step {step}: {error}");
                assert!(Instant::now() < deadline, "{name}: step {step} never finished");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for (width, height) in SCREENS {
                browser.viewport(width, height).await;
                // The strategies' table, or once lease workers run, the lease table.
                line_and_verdict_on_screen(&browser, "#story-say", "#verdict-panel table")
                    .await
                    .unwrap_or_else(|problem| panic!("{name}, {width}x{height}, step {step}: {problem}"));
            }
            browser.viewport(1280, 720).await;
        }
        browser.find("#story-done").await;
        // What the story's last line says of each strategy is what the oracle found.
        let checks: Value = browser
            .run(&format!("return [...document.querySelectorAll('{verdict} .story-check')].map((cell) => [cell.closest('tr').id, cell.textContent])"))
            .await;
        let checks = checks.as_array().expect("a check per strategy");
        assert_eq!(checks.len(), claims, "{name}: {checks:?}");
        for check in checks {
            assert!(check[1].as_str().is_some_and(|text| text.starts_with('✓')), "{name}: {check}");
        }
        if name == "figure-8-3" {
            browser.screenshot("preset").await;
        }
        if name == "lease-pause" {
            browser.screenshot("preset-lease").await;
        }
    }
    browser.click("#stop").await;
    browser.find("#start").await;
    browser.close().await;
}

/// DDIA Figures 8-4 and 8-5 in the step-through: a line a step, the lease
/// timeline drawn up to that step's moment, the line, the verdict and the
/// timeline on one screen at every step, and at the end the oracle's word:
/// an update lost without fencing, the late write refused with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_8_4_and_8_5_step_through_with_their_timeline_on_one_screen() {
    let _one_browser = BROWSER.lock().await;
    let Some(browser) = Browser::start("the lease stories test").await else { return };
    let dashboard = Dashboard::start(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-runs"));
    let (status, listed) = dashboard.get("/api/scenarios").await;
    assert_eq!(status, 200);
    for name in ["figure-8-4", "figure-8-5"] {
        assert!(
            listed["scenarios"].as_array().unwrap().iter().any(|s| s["name"] == name),
            "{name}: {listed}"
        );
    }
    browser.viewport(1280, 720).await;
    for (name, ending) in [("figure-8-4", " 1 update(s) lost"), ("figure-8-5", "1 refused by fencing")] {
        browser.open(&format!("{}/#/scenarios", dashboard.url)).await;
        browser.click(&format!("a[href='#/scenario/{name}']")).await;
        let first = browser.text("#step-counter").await;
        let steps: usize =
            first.rsplit(' ').next().and_then(|count| count.parse().ok()).expect("Step 1 of N");
        assert!(first.starts_with("Step 1 of ") && steps > 10, "{name}: {first}");
        let mut seen_runs_out = false;
        for step in 1..=steps {
            browser
                .wait_for_text("#step-counter", "the step", |text| text == format!("Step {step} of {steps}"))
                .await;
            let say = browser.text("#say").await;
            seen_runs_out |= say.contains("runs out at the service, and worker 1 still believes it holds it");
            // The timeline is drawn up to this step, and has arrived.
            let mut drawn = String::new();
            for _ in 0..40 {
                let src = browser
                    .run(
                        "const plot = document.querySelector('#lease-timeline'); \
                         return plot.complete && plot.naturalWidth > 0 ? plot.src : ''",
                    )
                    .await;
                drawn = src.as_str().unwrap_or_default().to_string();
                if drawn.contains("upto_ms=") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                drawn.contains("upto_ms="),
                "{name}, step {step}: the timeline up to this step: {drawn:?}"
            );
            line_and_verdict_on_screen(&browser, "#say", "#lease-timeline")
                .await
                .unwrap_or_else(|problem| panic!("{name}, step {step}: {problem}"));
            assert!(browser.on_screen("#verdict").await, "{name}, step {step}: the verdict bar");
            if step == 6 && name == "figure-8-4" {
                browser.screenshot("figure-8-4").await;
            }
            browser.press(keys::RIGHT).await;
        }
        assert!(seen_runs_out, "{name}: the step where the lease runs out, unknown to its holder");
        let verdict = browser.text("#verdict").await;
        assert!(verdict.contains(ending), "{name}: the oracle's word at the end: {verdict}");
    }
    browser.close().await;
}
