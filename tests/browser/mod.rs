//! Helpers for the dashboard's tests: the runs they look at, the real
//! `clocklab dashboard` process, and a real headless Chromium driven over
//! WebDriver (chromedriver).
//!
//! The tests never rely on the checkout's `results/`, which holds whatever
//! its user ran: the runs they look at ([`runs`]) are made by the real
//! runner, once per test binary, in a directory of their own under
//! `target/`. (One test adds a run there, as a user would, and removes it.)
//! Screenshots go to `target/tmp/screenshots/` unless
//! `CLOCKLAB_SCREENSHOTS` names another directory (`just screenshots`
//! refreshes the README's, in `docs/screenshots/`).
//!
//! Chromium is started headless, with no sandbox, no GPU, no first-run, no
//! background networking, component updates or sync, and a fresh profile
//! directory: what a machine without a display or a network needs. Without `chromium` and `chromedriver` on the
//! PATH the browser tests skip with a message saying how to get them.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// How long a page may take to show what a test waits for.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// The runs the dashboard's tests look at: a `--quick` run of `skew` on real
/// processes and one of `ntp-step` (a fault experiment, with timeline and
/// offset plots) in the simulator, made by `clocklab experiment` into a
/// results directory of their own.
pub struct Runs {
    pub results: PathBuf,
    /// The run ids.
    pub skew: String,
    pub ntp_step: String,
}

/// The runs, made on first use (about five seconds) and shared by every
/// test of this binary.
pub fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_runs(base);
        let results = base.join(format!("dashboard-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&results);
        let experiments: Vec<Child> = [("skew", &[][..]), ("ntp-step", &["--sim"][..])]
            .iter()
            .map(|(name, flags)| start_experiment(name, flags, &results))
            .collect();
        let mut ids = experiments.into_iter().map(finished_run);
        let (skew, ntp_step) = (ids.next().unwrap(), ids.next().unwrap());
        Runs { results, skew, ntp_step }
    })
}

/// Removes the run directories of earlier test processes that have ended.
fn remove_stale_runs(base: &Path) {
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("dashboard-runs-").and_then(|pid| pid.parse::<u32>().ok()) else {
            continue;
        };
        if process_gone(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts `clocklab experiment NAME --quick FLAGS...` writing into `results`.
pub fn start_experiment(name: &str, flags: &[&str], results: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["experiment", name, "--quick", "--seed", "1"])
        .args(flags)
        .arg("--experiments")
        .arg(Path::new(REPO).join("experiments"))
        .arg("--results")
        .arg(results)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start clocklab experiment")
}

/// Waits for an experiment and returns the id of the run it wrote, which it
/// names on its `results in DIR` line.
pub fn finished_run(child: Child) -> String {
    let output = child.wait_with_output().expect("the experiment runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the experiment failed: {stderr}");
    let dir = stderr.lines().find_map(|line| line.strip_prefix("results in ")).expect("a results line");
    Path::new(dir.trim()).file_name().expect("a run directory").to_string_lossy().into_owned()
}

/// A running `clocklab dashboard` serving this checkout's web/ and
/// experiments/, and the runs in `results`. Dropping it sends SIGTERM and
/// waits for it.
pub struct Dashboard {
    pub child: Child,
    pub url: String,
}

impl Dashboard {
    pub fn start(results: &Path) -> Self {
        Self::start_with(results, &[])
    }

    /// The same, with more `clocklab dashboard` flags.
    pub fn start_with(results: &Path, flags: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clocklab"));
        command.args(["dashboard", "--port", "0"]).args(flags).arg("--results").arg(results);
        // The checkout's specs, unless the test names others.
        if !flags.contains(&"--experiments") {
            command.arg("--experiments").arg(Path::new(REPO).join("experiments"));
        }
        let mut child = command
            .arg("--web")
            .arg(Path::new(REPO).join("web"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start clocklab dashboard");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the dashboard prints its URL");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Self { child, url }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.url)).await.expect("GET");
        (response.status().as_u16(), response.json().await.expect("a JSON answer"))
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("request");
        (response.status().as_u16(), response.json().await.expect("a JSON answer"))
    }

    /// Every preset the dashboard offers, with its number of steps, in order.
    pub async fn preset_steps(&self) -> Vec<(String, usize)> {
        let (status, listing) = self.get("/api/presets").await;
        assert_eq!(status, 200, "{listing}");
        listing["presets"]
            .as_array()
            .expect("presets")
            .iter()
            .map(|entry| {
                (
                    entry["name"].as_str().unwrap().to_string(),
                    entry["preset"]["step"].as_array().unwrap().len(),
                )
            })
            .collect()
    }

    /// SIGTERM, as Ctrl-C or a service manager would stop it; waits for exit.
    pub fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The processes whose parent is `parent` (started by any of its threads).
pub fn children_of(parent: u32) -> Vec<u32> {
    let threads = std::fs::read_dir(format!("/proc/{parent}/task")).into_iter().flatten().flatten();
    threads
        .flat_map(|thread| {
            std::fs::read_to_string(thread.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Whether a process is gone (or a zombie nobody has reaped yet).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')),
    }
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// WebDriver's codes for the keys a presenter uses.
pub mod keys {
    pub const RIGHT: &str = "\u{E014}";
    pub const LEFT: &str = "\u{E012}";
    pub const SPACE: &str = "\u{E00D}";
    pub const HOME: &str = "\u{E011}";
    pub const END: &str = "\u{E010}";
    pub const PAGE_DOWN: &str = "\u{E00F}";
}

/// What [`Browser::measure`] found on a page.
#[derive(Debug, serde::Deserialize)]
pub struct Measured {
    /// The page's width and the screen's, in CSS pixels.
    pub page_width: u64,
    pub screen_width: u64,
    /// The smallest text of any plot as displayed, px (none: no plot text).
    pub smallest: Option<f64>,
    pub plots: u64,
    pub texts: u64,
}

impl Measured {
    /// Asserts what a projector needs: nothing wider than the screen, no
    /// plot text under 14 px.
    pub fn assert_projector_ready(&self, page: &str) {
        assert!(
            self.page_width <= self.screen_width,
            "{page} is {} px wide on a {} px screen: it scrolls sideways",
            self.page_width,
            self.screen_width
        );
        if let Some(smallest) = self.smallest {
            assert!(smallest >= 14.0, "{page}: plot text of {smallest:.1} px as displayed ({self:?})");
        }
    }
}

/// A headless Chromium under chromedriver. Dropping it ends both.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium, or returns `None` (with a message) if it is missing.
    pub async fn start(test: &str) -> Option<Self> {
        let (Some(chromium), Some(chromedriver)) =
            (on_path(&["chromium", "chromium-browser", "google-chrome"]), on_path(&["chromedriver"]))
        else {
            // In CI a browser test that skipped would pass without testing
            // anything: there, a missing browser is a failure.
            assert!(
                std::env::var_os("CI").is_none(),
                "{test} needs chromium and chromedriver on the PATH, and CI is set: install them \
                 (Debian: `apt-get install chromium chromium-driver`)"
            );
            eprintln!(
                "skipped {test}: needs chromium and chromedriver on the PATH \
                 (Debian: `apt-get install chromium chromium-driver`), then run `cargo test --release --test dashboard`"
            );
            return None;
        };
        // Its own process group, so that chromedriver and every Chromium
        // process it starts can be killed together, even after a failure.
        // It picks its own port (`--port=0`) and names it on stdout, so no
        // other program can take the port between a choice and its start.
        let mut driver = Command::new(chromedriver)
            .arg("--port=0")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let port = driver_port(driver.stdout.take().expect("chromedriver's stdout"));
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--window-size=1280,900",
                ],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(error) if Instant::now() > deadline => panic!("chromedriver did not start: {error}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let browser = Self { client, driver, _profile: profile };
        // What a projector shows a lecture's back row, and what every
        // screenshot is taken at.
        browser.viewport(1280, 720).await;
        Some(browser)
    }

    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Makes the page's viewport exactly `width` by `height` CSS pixels, as
    /// a projector of that resolution shows it (the window is larger by
    /// whatever the browser's own frame takes).
    pub async fn viewport(&self, width: u32, height: u32) {
        for _ in 0..3 {
            let inner = self.run("return [window.innerWidth, window.innerHeight]").await;
            let (inner_width, inner_height) =
                (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
            if (inner_width, inner_height) == (u64::from(width), u64::from(height)) {
                return;
            }
            let (outer_width, outer_height) = self.client.get_window_size().await.expect("the window's size");
            let frame = (outer_width.saturating_sub(inner_width), outer_height.saturating_sub(inner_height));
            self.client
                .set_window_size(
                    u32::try_from(frame.0).unwrap_or(0) + width,
                    u32::try_from(frame.1).unwrap_or(0) + height,
                )
                .await
                .expect("resize the window");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let inner = self.run("return [window.innerWidth, window.innerHeight]").await;
        assert_eq!(inner, json!([width, height]), "the viewport could not be made {width}x{height}");
    }

    /// Waits for every plot on the page to load, then measures what a
    /// projector's back row would read: how wide the page is against the
    /// screen, and the smallest text of any plot as displayed (an image
    /// plot's SVG font sizes scaled by how wide it is shown against how
    /// wide it was drawn; an inline SVG's text by its on-screen scale).
    pub async fn measure(&self) -> Measured {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let pending = self
                .run("return [...document.querySelectorAll('img.plot')].filter((img) => !(img.getAttribute('src') && img.complete && img.naturalWidth > 0)).length")
                .await;
            if pending.as_u64() == Some(0) {
                break;
            }
            assert!(Instant::now() < deadline, "{pending} plots never loaded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let measured = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                (async () => {
                  let smallest = Infinity, plots = 0, texts = 0;
                  for (const image of document.querySelectorAll('img.plot')) {
                    const svg = await (await fetch(image.currentSrc || image.src)).text();
                    const drawn = Number((svg.match(/<svg[^>]*width="([0-9.]+)"/) || [])[1]);
                    const shown = image.getBoundingClientRect().width;
                    for (const match of svg.matchAll(/font-size="([0-9.]+)"/g)) {
                      smallest = Math.min(smallest, Number(match[1]) * shown / drawn);
                      texts++;
                    }
                    plots++;
                  }
                  for (const text of document.querySelectorAll('svg text')) {
                    if (text.getBoundingClientRect().width === 0) continue;
                    const scale = text.ownerSVGElement.getScreenCTM().a;
                    smallest = Math.min(smallest, parseFloat(getComputedStyle(text).fontSize) * scale);
                    texts++;
                  }
                  done({ page_width: document.documentElement.scrollWidth, screen_width: window.innerWidth,
                         smallest: smallest === Infinity ? null : smallest, plots, texts });
                })();"#,
                vec![],
            )
            .await
            .expect("the measuring script runs");
        serde_json::from_value(measured).expect("measurements")
    }

    /// Whether the element `css` is wholly inside the viewport, as it is now
    /// (without scrolling).
    pub async fn on_screen(&self, css: &str) -> bool {
        let script = format!(
            "const box = document.querySelector({css:?})?.getBoundingClientRect(); \
             return !!box && box.height > 0 && box.top >= 0 && box.left >= 0 \
               && box.bottom <= window.innerHeight && box.right <= window.innerWidth;"
        );
        self.run(&script).await.as_bool().unwrap_or(false)
    }

    /// Presses one key on the page, as a presenter's keyboard or clicker
    /// does (WebDriver's codes: [`keys`]), with nothing focused.
    pub async fn press(&self, key: &str) {
        self.run("document.activeElement?.blur(); return true").await;
        self.find("body").await.send_keys(key).await.expect("the key is pressed");
    }

    /// Waits for an element to appear.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css} never appeared: {error}"))
    }

    /// The text of an element, once it appears (retried if the page redraws it).
    pub async fn text(&self, css: &str) -> String {
        for _ in 0..20 {
            if let Ok(text) = self.find(css).await.text().await {
                return text;
            }
        }
        panic!("cannot read the text of {css}");
    }

    /// Clicks an element, finding it again if the page redrew it meanwhile.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            if self.find(css).await.click().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cannot click {css}");
    }

    /// Waits until the text of `css` satisfies `check`.
    pub async fn wait_for_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let text = self.text(css).await;
            if check(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} never showed {what}; it shows {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    pub async fn run(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script runs")
    }

    /// Saves what the browser shows as NAME.png in `CLOCKLAB_SCREENSHOTS`
    /// (relative to the checkout), or in target/tmp/screenshots/.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = match std::env::var_os("CLOCKLAB_SCREENSHOTS") {
            Some(dir) => Path::new(REPO).join(dir),
            None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
        };
        std::fs::create_dir_all(&dir).expect("a screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("save the screenshot");
    }

    /// Ends the browser session cleanly; dropping then ends the processes.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group of a child we started.
        unsafe { libc::kill(-(self.driver.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

/// Reads the port chromedriver names on stdout ("... started successfully
/// on port N."), then keeps reading its output so that it never blocks on a
/// full pipe or dies writing to a closed one.
fn driver_port(stdout: std::process::ChildStdout) -> u16 {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.strip_suffix('.').and_then(|line| line.rsplit_once("on port ")) {
                let _ = sender.send(port.1.parse::<u16>());
            }
        }
    });
    match receiver.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(port)) => port,
        Ok(Err(error)) => panic!("chromedriver named a port that is not a number: {error}"),
        Err(_) => panic!("chromedriver did not say which port it listens on within 20 s"),
    }
}
