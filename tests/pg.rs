//! DDIA Figure 8-3 on a real database: three PostgreSQL servers in a
//! pglogical full mesh resolving conflicts by `last_update_wins`, one of
//! them with its clock (libfaketime) seconds behind. Seconds, not
//! milliseconds, so no scheduling delay can change the verdict.
//!
//! Needs PostgreSQL 15, pglogical and libfaketime (`apt-get install
//! postgresql-15 postgresql-15-pglogical libfaketime`): CI installs them;
//! elsewhere, without them, the test says so and skips.

use std::time::Duration;

use clocklab::pg::PgError;
use clocklab::pg::cluster::{PgCluster, Resolution};
use clocklab::pg::install::Installation;

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
async fn items(cluster: &PgCluster, node: usize, key: &str) -> Option<Vec<i64>> {
    let client = cluster.node(node).connect().await.expect("connect");
    let row = client.query_opt("SELECT items FROM kv WHERE key = $1", &[&key]).await.expect("read");
    row.map(|row| serde_json::from_value(row.get::<_, serde_json::Value>(0)).expect("an array of items"))
}

/// A read-modify-write of `key` on `node`: read its items, add `item`, write back.
async fn add(cluster: &PgCluster, node: usize, key: &str, item: i64) {
    let before = items(cluster, node, key).await.unwrap_or_default();
    let mut after = before.clone();
    after.push(item);
    let client = cluster.node(node).connect().await.expect("connect");
    client
        .execute(
            "INSERT INTO kv (key, items) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET items = EXCLUDED.items",
            &[&key, &serde_json::json!(after)],
        )
        .await
        .expect("write");
}

/// Waits until `node` holds `key`.
async fn wait_for(cluster: &PgCluster, node: usize, key: &str) {
    for _ in 0..400 {
        if items(cluster, node, key).await.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("node {node} never received {key}");
}

/// Client A adds 1 to x on node 1; client B reads x on node 3 (once node 3
/// has A's write) and adds 2; then every node settles. Returns each node's x.
async fn figure_8_3(cluster: &PgCluster) -> Vec<Option<Vec<i64>>> {
    add(cluster, 1, "x", 1).await;
    wait_for(cluster, 3, "x").await;
    add(cluster, 3, "x", 2).await;
    cluster.settle(1).await.expect("settle");
    let mut held = Vec::new();
    for node in 1..=3 {
        held.push(items(cluster, node, "x").await);
    }
    held
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
async fn with_node_3_seconds_behind_last_update_wins_loses_the_increment_and_the_nodes_diverge() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.lock().await;
    let cluster =
        PgCluster::start(3, Resolution::LastUpdateWins).await.unwrap_or_else(|error| panic!("{error}"));
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

    let held = figure_8_3(&cluster).await;
    // B's write truly came later and had read A's, yet its commit timestamp
    // is two seconds older: nodes 1 and 2 keep A's row, and B's increment
    // is gone there; node 3 never revisits its own row, so it disagrees.
    assert_eq!(held[0], Some(vec![1]), "node 1 kept A's write: {held:?}");
    assert_eq!(held[1], Some(vec![1]), "node 2 kept A's write: {held:?}");
    assert_eq!(held[2], Some(vec![1, 2]), "node 3 kept its own: the nodes diverge: {held:?}");
    let logs: String = (1..=2).map(|node| cluster.node(node).log()).collect();
    assert!(logs.contains("CONFLICT"), "pglogical logged the conflict it resolved");
    stop_and_check_nothing_is_left(cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_clock_in_step_writes_made_one_after_another_all_survive_and_the_nodes_agree() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.lock().await;
    let cluster = match PgCluster::start(3, Resolution::LastUpdateWins).await {
        Ok(cluster) => cluster,
        Err(PgError::Missing(message)) => panic!("{message}"),
        Err(error) => panic!("{error}"),
    };
    let held = figure_8_3(&cluster).await;
    assert!(
        held.iter().all(|items| items.as_deref() == Some(&[1, 2][..])),
        "every node holds both: {held:?}"
    );
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
    let cluster = PgCluster::start(2, Resolution::KeepLocal).await.unwrap_or_else(|error| panic!("{error}"));
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

/// Figure 8-3 under every resolution mode, with node 3's clock 2 s behind
/// and with every clock in step: what each node keeps of x. Each mode
/// keeps one write per node, by its own rule, and only for incoming
/// changes: a node never revisits its own row.
///
/// - `last_update_wins`: the later commit timestamp wins. Skewed, B's
///   stamp is older: nodes 1 and 2 keep A's `[1]`, node 3 its own `[1, 2]`.
///   In step, B's is newer and everyone takes it.
/// - `first_update_wins`: the earlier stamp wins: skewed, B's (older by
///   its clock) wins everywhere, by luck; in step, A's wins on nodes 1 and 2
///   and B's increment is lost there, clocks or no clocks.
/// - `apply_remote`: the incoming change wins: nodes 1 and 2 take B's.
/// - `keep_local`: the row already there wins: nodes 1 and 2 keep A's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resolution_mode_tells_figure_8_3_its_own_way() {
    if !installed() {
        return;
    }
    let _one = ONE_CLUSTER.lock().await;
    let a = Some(vec![1]);
    let both = Some(vec![1, 2]);
    // (last_update_wins, both ways, is the two tests above.)
    let expected = [
        (Resolution::FirstUpdateWins, true, [both.clone(), both.clone(), both.clone()]),
        (Resolution::FirstUpdateWins, false, [a.clone(), a.clone(), both.clone()]),
        (Resolution::ApplyRemote, true, [both.clone(), both.clone(), both.clone()]),
        (Resolution::KeepLocal, true, [a.clone(), a.clone(), both.clone()]),
    ];
    for (resolution, skewed, keeps) in expected {
        let cluster = PgCluster::start(3, resolution).await.unwrap_or_else(|error| panic!("{error}"));
        if skewed {
            cluster.node(3).set_offset_ms(-BEHIND_MS).expect("set the clock");
        }
        let held = figure_8_3(&cluster).await;
        let told =
            format!("{} with node 3 {}", resolution.setting(), if skewed { "behind" } else { "in step" });
        assert_eq!(held, keeps, "{told}");
        cluster.stop().await;
    }
}
