//! The binary on its own: copied to an empty directory, with no checkout
//! beside it, it runs an experiment and serves the full dashboard from what
//! it carries (`clocklab::builtin`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `start` (a spawn of the copied binary) again while it fails with
/// "Text file busy": while one test copies the binary, a process another
/// test forks at that moment holds the new file open for writing too, until
/// it execs, and running the file fails meanwhile (ETXTBSY).
fn retrying<T>(mut start: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    for _ in 0..100 {
        match start() {
            Err(error) if error.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result,
        }
    }
    start()
}

/// An empty directory holding nothing but a copy of the binary.
fn lonely_binary() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let binary = dir.path().join("clocklab");
    std::fs::copy(env!("CARGO_BIN_EXE_clocklab"), &binary).expect("copy the binary");
    (dir, binary)
}

#[test]
fn from_an_empty_directory_it_lists_and_runs_the_builtin_experiments() {
    let (dir, binary) = lonely_binary();
    let list =
        retrying(|| Command::new(&binary).args(["experiment", "--list"]).current_dir(dir.path()).output())
            .unwrap();
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(listing.contains("built-in"), "{listing}");
    for name in ["skew", "ntp-step", "drift", "partition", "crash"] {
        assert!(listing.lines().any(|line| line.trim_start().starts_with(name)), "{name} in {listing}");
    }
    assert!(listing.contains("Replica 1's clock runs ahead of replica 3's"), "descriptions: {listing}");

    let output = retrying(|| {
        Command::new(&binary)
            .args(["experiment", "skew", "--quick"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .output()
    })
    .expect("run the experiment");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let runs: Vec<_> =
        std::fs::read_dir(dir.path().join("results/skew")).expect("./results/skew").flatten().collect();
    assert_eq!(runs.len(), 1);
    let run = runs[0].path();
    for file in [
        "spec.toml",
        "history.jsonl",
        "summary.json",
        "summary.csv",
        "drops.json",
        "report.md",
        "dropped.png",
    ] {
        assert!(run.join(file).is_file(), "{file} in {}", run.display());
    }
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!entries.contains(&"experiments".to_string()), "nothing was unpacked: {entries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_empty_directory_it_serves_the_whole_dashboard() {
    let (dir, binary) = lonely_binary();
    let mut child = retrying(|| {
        Command::new(&binary)
            .args(["dashboard", "--port", "0"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
    })
    .expect("start the dashboard");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("its URL");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("a URL")
        .trim_end_matches('/')
        .to_string();
    let get = |path: &str| {
        let url = format!("{url}{path}");
        async move {
            let response = reqwest::get(url).await.expect("GET");
            let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
            (response.status().as_u16(), content_type, response.text().await.unwrap())
        }
    };
    let (status, content_type, index) = get("/").await;
    assert_eq!((status, content_type.as_str()), (200, "text/html"));
    assert!(index.contains("<script") && index.contains("app.js"), "{index}");
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/lab.js", "text/javascript"),
        ("/jobs.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let (status, content_type, _) = get(path).await;
        assert_eq!((status, content_type.as_str()), (200, kind), "{path}");
    }
    let (status, _, scenarios) = get("/api/scenarios").await;
    assert_eq!(status, 200);
    assert!(scenarios.contains("figure-8-3"), "the built-in scenarios: {scenarios}");
    let (status, _, trace) = get("/api/scenarios/figure-8-3").await;
    assert_eq!(status, 200, "{trace}");
    let (status, _, presets) = get("/api/presets").await;
    assert_eq!(status, 200);
    assert!(
        presets.contains("\"figure-8-3\"") && presets.contains("partition-and-heal"),
        "the built-in presets: {presets}"
    );
    let (status, _, _) = get("/no-such-page.js").await;
    assert_eq!(status, 404);
    let _ = child.kill();
    let _ = child.wait();
    assert!(!Path::new(&dir.path().join("web")).exists());
}

#[test]
fn a_web_directory_without_a_page_is_refused_before_any_url_is_printed() {
    let (dir, binary) = lonely_binary();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let output = retrying(|| {
        Command::new(&binary)
            .args(["dashboard", "--port", "0", "--web", "empty"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .output()
    })
    .expect("run the dashboard");
    assert!(!output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "", "no URL for a dashboard that cannot serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("empty") && stderr.contains("index.html"), "{stderr}");
}
