//! DDIA Figure 8-3 on a real database: three PostgreSQL servers in a
//! pglogical full mesh resolving conflicts by `last_update_wins`, one of
//! them with its clock (libfaketime) seconds behind. Seconds, not
//! milliseconds, so no scheduling delay can change the verdict.
//!
//! Needs PostgreSQL 15, pglogical and libfaketime (`apt-get install
//! postgresql-15 postgresql-15-pglogical libfaketime`): CI installs them;
//! elsewhere, without them, the test says so and skips.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clocklab::pg::PgError;
use clocklab::pg::cluster::{PgCluster, Resolution};
use clocklab::pg::install::Installation;
use serde_json::Value;

/// The skew: node 3's clock this far behind, ms.
const BEHIND_MS: f64 = 2000.0;

/// One cluster at a time: three servers and their pglogical workers each
/// are a lot for a two-core machine, and a mesh starved of CPU is slow to
/// start replicating.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether the servers can be started here; in CI they must.
fn installed() -> bool {
    match Installation::find() {
        Ok(_) => true,
        Err(error) if std::env::var_os("CI").is_some() => panic!("{error}"),
        Err(error) => {
            eprintln!("skipped: {error}");
            false
        }
    }
}

/// The items of `key` on `node`, or `None` if it has no such row.
async fn items(cluster: &PgCluster, mode: Resolution, node: usize, key: &str) -> Option<Vec<i64>> {
    let client = cluster.node(node).connect_to(mode.database()).await.expect("connect");
    let row = client.query_opt("SELECT items FROM kv WHERE key = $1", &[&key]).await.expect("read");
    row.map(|row| serde_json::from_value(row.get::<_, serde_json::Value>(0)).expect("an array of items"))
}

/// A read-modify-write of `key` on `node`: read its items, add `item`, write back.
async fn add(cluster: &PgCluster, mode: Resolution, node: usize, key: &str, item: i64) {
    let before = items(cluster, mode, node, key).await.unwrap_or_default();
    let mut after = before.clone();
    after.push(item);
    let client = cluster.node(node).connect_to(mode.database()).await.expect("connect");
    client
        .execute(
            "INSERT INTO kv (key, items) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET items = EXCLUDED.items",
            &[&key, &serde_json::json!(after)],
        )
        .await
        .expect("write");
}

/// Waits until `node` holds `key`.
async fn wait_for(cluster: &PgCluster, mode: Resolution, node: usize, key: &str) {
    for _ in 0..400 {
        if items(cluster, mode, node, key).await.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("node {node} never received {key}");
}

/// Client A adds 1 to x on node 1; client B reads x on node 3 (once node 3
/// has A's write) and adds 2, in every mode's database; then every node
/// settles. Returns what each node keeps of x, per mode.
async fn figure_8_3(cluster: &PgCluster) -> Vec<(Resolution, Vec<Option<Vec<i64>>>)> {
    for &mode in &cluster.resolutions {
        add(cluster, mode, 1, "x", 1).await;
        wait_for(cluster, mode, 3, "x").await;
        add(cluster, mode, 3, "x", 2).await;
    }
    cluster.settle(1).await.expect("settle");
    let mut held = Vec::new();
    for &mode in &cluster.resolutions {
        let mut nodes = Vec::new();
        for node in 1..=3 {
            nodes.push(items(cluster, mode, node, "x").await);
        }
        held.push((mode, nodes));
    }
    held
}

/// What each node keeps of x in Figure 8-3, per mode, with node 3's clock
/// 2 s behind (`skewed`) or every clock in step. Each mode keeps one write
/// per node, by its own rule, and only for incoming changes: a node never
/// revisits its own row.
///
/// - `last_update_wins`: the later commit timestamp wins. Skewed, B's
///   stamp is older: nodes 1 and 2 keep A's `[1]`, node 3 its own `[1, 2]`.
///   In step, B's is newer and everyone takes it.
/// - `first_update_wins`: the earlier stamp wins: skewed, B's (older by
///   its clock) wins everywhere, by luck; in step, A's wins on nodes 1 and 2
///   and B's increment is lost there, clocks or no clocks.
/// - `apply_remote`: the incoming change wins: nodes 1 and 2 take B's.
/// - `keep_local`: the row already there wins: nodes 1 and 2 keep A's.
fn expected(mode: Resolution, skewed: bool) -> Vec<Option<Vec<i64>>> {
    let a = Some(vec![1]);
    let both = Some(vec![1, 2]);
    let agreed = vec![both.clone(); 3];
    let diverged = vec![a.clone(), a, both];
    match (mode, skewed) {
        (Resolution::LastUpdateWins, true) => diverged,
        (Resolution::LastUpdateWins, false) => agreed,
        (Resolution::FirstUpdateWins, true) => agreed,
        (Resolution::FirstUpdateWins, false) => diverged,
        (Resolution::ApplyRemote, _) => agreed,
        (Resolution::KeepLocal, _) => diverged,
    }
}

/// What every server's process and port look like while it runs, and that
/// none is left once the cluster stops.
async fn stop_and_check_nothing_is_left(cluster: PgCluster) {
    let ports: Vec<u16> = cluster.servers.iter().map(|server| server.addr.port()).collect();
    let pids: Vec<u32> = cluster.servers.iter().filter_map(|server| server.pid()).collect();
    let dir = cluster.dir().to_path_buf();
    cluster.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "postgres {pid} outlived its cluster"
        );
    }
    // No process of the lab's servers remains: none names their directory.
    let leftover = std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|line| String::from_utf8_lossy(&line).contains(dir.to_str().unwrap()))
    });
    assert!(!leftover, "a process still names {}", dir.display());
    assert!(!dir.exists(), "the servers' files are removed");
    for port in ports {
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} is still held");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_node_3_seconds_behind_last_update_wins_loses_the_increment_and_the_nodes_diverge_and_every_mode_keeps_its_rule()
 {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.lock().await;
    let cluster = PgCluster::start(3, &Resolution::ALL).await.unwrap_or_else(|error| panic!("{error}"));
    // Loopback only, and no Unix socket.
    let client = cluster.node(1).connect().await.expect("connect");
    let listen: String = client.query_one("SHOW listen_addresses", &[]).await.expect("show").get(0);
    let socket: String = client.query_one("SHOW unix_socket_directories", &[]).await.expect("show").get(0);
    assert_eq!((listen.as_str(), socket.as_str()), ("127.0.0.1", ""));
    // Node 3's clock is behind: check it from the server itself, against the lab's clock.
    cluster.node(3).set_offset_ms(-BEHIND_MS).expect("set the clock");
    let client = cluster.node(3).connect().await.expect("connect");
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let server: f64 = client
        .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
        .await
        .expect("read the clock")
        .get(0);
    let offset_ms = (server - before) * 1e3;
    assert!((offset_ms + BEHIND_MS).abs() < 500.0, "node 3 is {offset_ms:.0} ms off, not -{BEHIND_MS}");

    // Under last_update_wins, B's write truly came later and had read A's,
    // yet its commit timestamp is two seconds older: nodes 1 and 2 keep A's
    // row, and B's increment is gone there; node 3 never revisits its own
    // row, so it disagrees. Every other mode as `expected` says, on the
    // same servers and clocks.
    for (mode, held) in figure_8_3(&cluster).await {
        assert_eq!(held, expected(mode, true), "{} with node 3 behind", mode.setting());
    }
    let logs: String = (1..=2).map(|node| cluster.node(node).log()).collect();
    assert!(logs.contains("CONFLICT"), "pglogical logged the conflict it resolved");
    stop_and_check_nothing_is_left(cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_clock_in_step_writes_made_one_after_another_all_survive_under_last_update_wins() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.lock().await;
    let cluster = match PgCluster::start(3, &Resolution::ALL).await {
        Ok(cluster) => cluster,
        Err(PgError::Missing(message)) => panic!("{message}"),
        Err(error) => panic!("{error}"),
    };
    // last_update_wins keeps both everywhere; first_update_wins loses B's
    // increment with no clock wrong at all.
    for (mode, held) in figure_8_3(&cluster).await {
        assert_eq!(held, expected(mode, false), "{} with every clock in step", mode.setting());
    }
    stop_and_check_nothing_is_left(cluster).await;
}

/// A run that fails half way drops its cluster without stopping it: every
/// server process still goes (the postmaster and the backends it started),
/// and so do the servers' files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_dropped_mid_run_leaves_no_server_behind() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.lock().await;
    let cluster =
        PgCluster::start(2, &[Resolution::KeepLocal]).await.unwrap_or_else(|error| panic!("{error}"));
    let dir = cluster.dir().to_path_buf();
    let pids: Vec<u32> = cluster.servers.iter().filter_map(|server| server.pid()).collect();
    // Every process the servers started: their children too.
    let family = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                status.lines().any(|line| {
                    line.strip_prefix("PPid:")
                        .is_some_and(|parent| pids.contains(&parent.trim().parse().unwrap_or(0)))
                }) || pids.contains(pid)
            })
            .collect()
    };
    let before = family();
    assert!(before.len() > pids.len(), "the postmasters have backends and workers: {before:?}");
    drop(cluster);
    let mut left = before.clone();
    for _ in 0..100 {
        left.retain(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
                !status.lines().any(|line| line.starts_with("State:") && line.contains("Z"))
            })
        });
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(left.is_empty(), "server processes outlived their cluster: {left:?}");
    assert!(!dir.exists(), "the servers' files are removed");
}

/// A small skew sweep on the real database, beside the lab's `vv`: node 1
/// two seconds ahead at the second point.
const SWEEP: &str = r#"
description = "A small skew sweep on PostgreSQL for tests."
replicas = 3
engine = "pglogical"
strategies = ["pg-last-update-wins", "vv"]
seed = 3
trials = 1
duration_ms = 2500

[workload]
clients = 3
keys = 3
rate_per_client = 15

[sweep]
parameter = "skew_ms"
values = [0, 2000]
"#;

/// A results folder with `spec` as the experiment `tiny`.
fn lab_with(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir(dir.path().join("experiments")).expect("experiments dir");
    std::fs::write(dir.path().join("experiments/tiny.toml"), spec).expect("write spec");
    dir
}

fn start_run(lab: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["experiment", "tiny", "--experiments"])
        .arg(lab.join("experiments"))
        .arg("--results")
        .arg(lab.join("results"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start clocklab experiment")
}

/// The processes whose parent is `parent`, with their command lines.
fn children_of(parent: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // After the parenthesised command name: state, then the parent's pid.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        if ppid == Some(parent) {
            let command = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&command).replace('\0', " ")));
        }
    }
    found
}

/// The postmasters a runner started.
fn postmasters_of(runner: u32) -> Vec<u32> {
    children_of(runner)
        .into_iter()
        .filter(|(_, command)| command.contains("postgres"))
        .map(|(pid, _)| pid)
        .collect()
}

/// Every TCP socket `pid` listens on, as (address, port), read from the
/// kernel's tables; IPv6 sockets as `"ipv6"`.
fn listening(pid: u32) -> Vec<(String, u16)> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().to_string();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut found = Vec::new();
    for (table, family) in [("/proc/net/tcp", "ipv4"), ("/proc/net/tcp6", "ipv6")] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" || !inodes.contains(fields[9]) {
                continue;
            }
            let (address, port) = fields[1].split_once(':').expect("address:port");
            let port = u16::from_str_radix(port, 16).expect("a port");
            let address = match family {
                "ipv4" => {
                    let bytes = u32::from_str_radix(address, 16).expect("an address").to_le_bytes();
                    std::net::Ipv4Addr::from(bytes).to_string()
                }
                _ => "ipv6".to_string(),
            };
            found.push((address, port));
        }
    }
    found
}

/// The recount: for every (point, bucket), acknowledged writes and those
/// whose item is in no node's final value, straight from the history's lines.
fn recount(history: &str) -> BTreeMap<(u64, String), (u64, u64)> {
    let records: Vec<Value> = history.lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
    let mut kept: BTreeMap<(u64, String, String), BTreeSet<u64>> = BTreeMap::new();
    for record in records.iter().filter(|record| record["type"] == "final") {
        let place =
            (record["point"].as_u64().unwrap(), record["bucket"].to_string(), record["key"].to_string());
        let items = record["siblings"].as_array().unwrap().iter().flat_map(|sibling| {
            sibling["value"].as_array().unwrap().iter().map(|item| item.as_u64().unwrap()).collect::<Vec<_>>()
        });
        kept.entry(place).or_default().extend(items);
    }
    let mut counts: BTreeMap<(u64, String), (u64, u64)> = BTreeMap::new();
    for write in records.iter().filter(|record| record["type"] == "write" && record["outcome"] == "ok") {
        let point = write["point"].as_u64().unwrap();
        let place = (point, write["bucket"].to_string(), write["key"].to_string());
        let count = counts.entry((point, write["bucket"].as_str().unwrap().to_string())).or_default();
        count.0 += 1;
        if !kept.get(&place).is_some_and(|items| items.contains(&write["item"].as_u64().unwrap())) {
            count.1 += 1;
        }
    }
    counts
}

/// `pg-skew` in small: last_update_wins loses increments with node 1 two
/// seconds ahead and (nearly) none in step, while the lab's `vv` beside it,
/// under the same clocks and operations, loses none; the summary agrees with
/// a recount of the history made here; while it runs, every server listens
/// on 127.0.0.1 alone; afterwards no server is left.
#[test]
fn a_skew_sweep_on_the_real_database_loses_increments_under_last_update_wins_and_none_under_vv() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.blocking_lock();
    let lab = lab_with(SWEEP);
    let mut runner = start_run(lab.path());
    let runner_pid = runner.id();
    // While it runs: every postmaster's listening sockets.
    let mut seen: BTreeMap<u32, Vec<(String, u16)>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let output = loop {
        for pid in postmasters_of(runner_pid) {
            let sockets = listening(pid);
            if !sockets.is_empty() {
                seen.insert(pid, sockets);
            }
        }
        if let Ok(Some(_)) = runner.try_wait() {
            break runner.wait_with_output().expect("the run");
        }
        assert!(Instant::now() < deadline, "the run took more than two minutes");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(seen.len() >= 6, "two trials of three servers each were seen: {seen:?}");
    for (pid, sockets) in &seen {
        assert!(
            sockets.iter().all(|(address, _)| address == "127.0.0.1"),
            "postgres {pid} listens beyond loopback: {sockets:?}"
        );
    }
    let run =
        std::fs::read_dir(lab.path().join("results/tiny")).unwrap().flatten().next().expect("a run").path();
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("a history");
    let recounted = recount(&history);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let mut dropped = BTreeMap::new();
    for row in summary.as_array().unwrap() {
        let key = (row["point"].as_u64().unwrap(), row["strategy"].as_str().unwrap().to_string());
        let counted = recounted.get(&key).copied().unwrap_or_default();
        assert_eq!(
            (row["acked"].as_u64().unwrap(), row["dropped"].as_u64().unwrap()),
            counted,
            "the summary's {key:?} against the recount"
        );
        dropped.insert(key, counted.1);
    }
    let lost = |point: u64, bucket: &str| dropped[&(point, bucket.to_string())];
    assert!(lost(1, "pg-last-update-wins") >= 3, "node 1 two seconds ahead loses increments: {dropped:?}");
    assert!(lost(1, "pg-last-update-wins") > lost(0, "pg-last-update-wins"), "more with skew: {dropped:?}");
    assert_eq!((lost(0, "vv"), lost(1, "vv")), (0, 0), "vv beside it loses nothing: {dropped:?}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## The real database"), "the report explains the database's buckets");
    for pid in seen.keys() {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "postgres {pid} outlived the run");
    }
    for (_, port) in seen.values().flatten() {
        assert!(std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok(), "port {port} is still held");
    }
}

/// Ctrl-C in the middle of a trial on the real database: the run stops,
/// says so, removes its unfinished directory, and leaves no server, no
/// server's child, no port and no file of theirs behind.
#[test]
fn ctrl_c_in_the_middle_of_a_database_trial_leaves_nothing_behind() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.blocking_lock();
    let lab = lab_with(&SWEEP.replace("duration_ms = 2500", "duration_ms = 30000"));
    let runner = start_run(lab.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    // Wait for the workload: three servers and the lab's three replicas.
    let postmasters = loop {
        let children = children_of(runner.id());
        let postmasters: Vec<u32> = postmasters_of(runner.id());
        let replicas = children.iter().filter(|(_, command)| command.contains("replica")).count();
        if postmasters.len() == 3 && replicas == 3 {
            break postmasters;
        }
        assert!(Instant::now() < deadline, "the servers and replicas never all started");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(1500));
    let family: Vec<u32> = postmasters
        .iter()
        .flat_map(|&pid| children_of(pid).into_iter().map(|(child, _)| child).chain([pid]))
        .collect();
    let ports: Vec<u16> = postmasters.iter().flat_map(|&pid| listening(pid)).map(|(_, port)| port).collect();
    let dirs: BTreeSet<PathBuf> = postmasters
        .iter()
        .filter_map(|pid| {
            let command = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let command = String::from_utf8_lossy(&command).to_string();
            let data = command.split('\0').skip_while(|arg| *arg != "-D").nth(1)?.to_string();
            // .../clocklab-pg-XXXX/node-N/data
            Some(Path::new(&data).parent()?.parent()?.to_path_buf())
        })
        .collect();
    assert_eq!((ports.len(), dirs.len()), (3, 1), "three servers listening, under one directory");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(runner.id() as libc::pid_t, libc::SIGINT) };
    let output = runner.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an interrupted run is not a success");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let mut left = family.clone();
    for _ in 0..100 {
        left.retain(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
                !status.lines().any(|line| line.starts_with("State:") && line.contains('Z'))
            })
        });
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(left.is_empty(), "server processes outlived the interrupted run: {left:?}");
    for port in ports {
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} is still held");
    }
    for dir in dirs {
        assert!(!dir.exists(), "the servers' files {} are removed", dir.display());
    }
    let runs = std::fs::read_dir(lab.path().join("results/tiny")).map(|entries| entries.count()).unwrap_or(0);
    assert_eq!(runs, 0, "the unfinished run was removed");
}

/// The shipped `pg-figure-8-3`, a scripted run: under `last_update_wins`,
/// with node 1 two seconds ahead, the final rows are DDIA's (nodes 1 and 2
/// keep A's `[1]`, node 3 its own `[1, 2]`), the trial's notes hold the
/// servers' CONFLICT lines, and the report quotes them.
#[test]
fn pg_figure_8_3_tells_the_story_with_the_servers_own_log_lines() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.blocking_lock();
    let results = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["experiment", "pg-figure-8-3", "--quick", "--experiments"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"))
        .arg("--results")
        .arg(results.path())
        .output()
        .expect("run pg-figure-8-3");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let run =
        std::fs::read_dir(results.path().join("pg-figure-8-3")).unwrap().flatten().next().unwrap().path();
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("a history");
    let records: Vec<Value> = history.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let skewed = |record: &&Value| record["point"] == 1;
    let finals: Vec<(u64, Value)> = records
        .iter()
        .filter(skewed)
        .filter(|record| record["type"] == "final" && record["bucket"] == "pg-last-update-wins")
        .map(|record| (record["replica"].as_u64().unwrap(), record["siblings"][0]["value"].clone()))
        .collect();
    let expected =
        vec![(1, serde_json::json!([1])), (2, serde_json::json!([1])), (3, serde_json::json!([1, 2]))];
    assert_eq!(finals, expected, "DDIA Figure 8-3, and the nodes diverge");
    let notes: Vec<String> = records
        .iter()
        .filter(skewed)
        .filter(|record| record["type"] == "trial")
        .flat_map(|record| record["notes"].as_array().cloned().unwrap_or_default())
        .map(|note| note.as_str().unwrap().to_string())
        .collect();
    assert!(
        notes
            .iter()
            .any(|note| note.contains(" last_update_wins ") && note.contains("Resolution: keep_local")),
        "the servers' own words: {notes:?}"
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("CONFLICT: remote UPDATE"), "the report quotes them");
}

/// Runs `spec` as `tiny` to its end; returns its lab and each (point,
/// bucket)'s dropped writes, from its summary.
fn run_to_end(spec: &str) -> (tempfile::TempDir, BTreeMap<(u64, String), u64>) {
    let lab = lab_with(spec);
    let output = start_run(lab.path()).wait_with_output().expect("the run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let run = std::fs::read_dir(lab.path().join("results/tiny")).unwrap().flatten().next().unwrap().path();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let dropped = summary
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let key = (row["point"].as_u64().unwrap(), row["strategy"].as_str().unwrap().to_string());
            (key, row["dropped"].as_u64().unwrap())
        })
        .collect();
    (lab, dropped)
}

/// A cut on the real database is a disabled subscription: replica 1 cut
/// off both ways for 1.5 s, both sides keep writing the same rows, and at
/// the heal `last_update_wins` keeps one write per row, as the lab's
/// `lww-wall` does, while `vv` keeps both sides.
#[test]
fn a_cut_on_the_real_database_holds_changes_until_the_heal_and_last_update_wins_drops_one_side() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.blocking_lock();
    let spec = SWEEP
        .replace("\"pg-last-update-wins\", \"vv\"", "\"pg-last-update-wins\", \"lww-wall\", \"vv\"")
        .replace(
            "[sweep]\nparameter = \"skew_ms\"\nvalues = [0, 2000]",
            "[[fault]]\nkind = \"cut\"\nat_ms = 300\nreplica = 1\ncut = \"both\"\n\n\
             [sweep]\nparameter = \"cut_ms\"\nvalues = [0, 1500]",
        );
    assert!(spec.contains("cut_ms"), "{spec}");
    let (_lab, dropped) = run_to_end(&spec);
    let lost = |point: u64, bucket: &str| dropped[&(point, bucket.to_string())];
    assert!(lost(1, "pg-last-update-wins") >= 3, "the cut's concurrent writes lose: {dropped:?}");
    assert!(lost(1, "lww-wall") >= 3, "as the lab's lww-wall's do: {dropped:?}");
    assert_eq!((lost(0, "vv"), lost(1, "vv")), (0, 0), "{dropped:?}");
}

/// A step on the real database: node 1's clock stepped two seconds back
/// half a second into the workload; afterwards its commits look older than
/// the rows they read, and `last_update_wins` loses them. The servers'
/// sampled clocks show the step.
#[test]
fn a_clock_stepped_back_on_a_server_makes_last_update_wins_lose_its_writes() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.blocking_lock();
    let spec = SWEEP.replace(
        "[sweep]\nparameter = \"skew_ms\"\nvalues = [0, 2000]",
        "[[fault]]\nkind = \"step\"\nat_ms = 500\nreplica = 1\n\n[sweep]\nparameter = \"step_ms\"\nvalues = [0, -2000]",
    );
    let (lab, dropped) = run_to_end(&spec);
    let lost = |point: u64, bucket: &str| dropped[&(point, bucket.to_string())];
    assert!(lost(1, "pg-last-update-wins") >= 3, "writes after the step lose: {dropped:?}");
    assert!(lost(1, "pg-last-update-wins") > lost(0, "pg-last-update-wins"), "{dropped:?}");
    assert_eq!((lost(0, "vv"), lost(1, "vv")), (0, 0), "{dropped:?}");
    let run = std::fs::read_dir(lab.path().join("results/tiny")).unwrap().flatten().next().unwrap().path();
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let offsets: Vec<f64> = history
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| record["type"] == "sample" && record["point"] == 1 && record["replica"] == 1)
        .map(|record| record["offset_ns"].as_f64().unwrap() / 1e6)
        .collect();
    assert!(offsets.first().is_some_and(|ms| ms.abs() < 100.0), "in step before: {offsets:?}");
    assert!(offsets.last().is_some_and(|ms| (ms + 2000.0).abs() < 100.0), "2 s back after: {offsets:?}");
}
