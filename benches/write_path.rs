//! Write-path benchmark: how close does an acknowledged, replicated PUT
//! come to the cost of HTTP alone?
//!
//! In one run, each with the same number of requests in flight:
//!
//! 1. `echo`: a trivial axum handler that returns its body: the floor set
//!    by HTTP and JSON on this machine.
//! 2. `sqlite`: raw inserts into the replica's log table, one transaction
//!    each, with the replica's durability settings (WAL, synchronous=NORMAL).
//! 3. `replica`: acknowledged PUTs to replica 1 of a real 3-replica cluster
//!    (separate processes), with replication to both peers running.
//!
//! It prints each rate with p50/p99 latency and the replica/echo ratio, and
//! for the cluster the CPU time and resident memory each replica spent per
//! acknowledged write: steadier than rates on a shared machine, and where to
//! look when the rate drops.
//! Echo and replica run in alternating rounds and the median ratio is
//! reported, since one run on a shared 2-core machine is noisy. Run it with
//! `cargo bench --bench write_path` (or `just bench`); `BENCH_SECONDS` sets
//! the measured time per case (default 2), `BENCH_ROUNDS` the rounds (5).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::put;
use clocklab::replica::store::Store;
use clocklab::strategy::{RawJson, Write};
use serde_json::{Value, json};

/// Requests in flight in every case.
const IN_FLIGHT: usize = 32;
/// Warm-up before measuring, per case.
const WARM_UP: Duration = Duration::from_millis(500);
const TOKEN: &str = "bench";

struct Figures {
    name: &'static str,
    count: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> u64 {
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us.get(index).copied().unwrap_or(0)
    }

    fn print(&self) {
        println!(
            "{:<8} {:>10.0} req/s   p50 {:>6} us   p99 {:>6} us   ({} requests in {:.1} s)",
            self.name,
            self.rate(),
            self.percentile(0.50),
            self.percentile(0.99),
            self.count,
            self.elapsed.as_secs_f64()
        );
    }
}

fn measured_time() -> Duration {
    let seconds = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(seconds)
}

/// Runs `IN_FLIGHT` loops of `request` for warm-up plus `duration`, and
/// collects the latencies of those that finished inside the measured window.
async fn drive<F, Fut>(name: &'static str, duration: Duration, request: F) -> Figures
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let start = Instant::now();
    let measure_from = start + WARM_UP;
    let stop_at = measure_from + duration;
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (request, counter) = (request.clone(), Arc::clone(&counter));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let began = Instant::now();
                if began >= stop_at {
                    return latencies;
                }
                let ok = request(counter.fetch_add(1, Ordering::Relaxed)).await;
                assert!(ok, "{name}: a request failed");
                if began >= measure_from {
                    latencies.push(began.elapsed().as_micros() as u64);
                }
            }
        }));
    }
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await.expect("load task"));
    }
    latencies_us.sort_unstable();
    Figures { name, count: latencies_us.len(), elapsed: duration, latencies_us }
}

async fn echo(body: axum::body::Bytes) -> axum::body::Bytes {
    body
}

fn bench_echo(client: &reqwest::Client, duration: Duration) -> Figures {
    // The server gets its own runtime, as a separate process would.
    let server = tokio::runtime::Runtime::new().expect("server runtime");
    let listener = server.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    server.spawn(async move { axum::serve(listener, Router::new().route("/echo", put(echo))).await });
    let client = client.clone();
    let url = format!("http://{addr}/echo");
    let figures = client_runtime().block_on(drive("echo", duration, move |n| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let body = json!({ "value": [n], "context": null });
            let response = client.put(&url).json(&body).send().await;
            response.is_ok_and(|r| r.status().is_success())
        }
    }));
    server.shutdown_background();
    figures
}

fn bench_sqlite(duration: Duration) -> Figures {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Arc::new(Mutex::new(Store::open(dir.path(), 1).expect("open store")));
    let seq = Arc::new(AtomicU64::new(0));
    let measure_from = Instant::now() + WARM_UP;
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (store, seq, stop) = (Arc::clone(&store), Arc::clone(&seq), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let n = seq.fetch_add(1, Ordering::Relaxed) + 1;
                    let write = Arc::new(Write {
                        origin: 1,
                        seq: n,
                        bucket: "lww-wall".into(),
                        key: format!("k{}", n % 1000),
                        value: (&json!([n])).into(),
                        stamp: RawJson::of(&[n, 1]),
                        context: RawJson::null(),
                        fence: None,
                    });
                    let began = Instant::now();
                    store.lock().expect("store lock").append(&[write]).expect("insert");
                    if began >= measure_from {
                        latencies.push(began.elapsed().as_micros() as u64);
                    }
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(WARM_UP + duration);
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us: Vec<u64> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
    latencies_us.sort_unstable();
    Figures { name: "sqlite", count: latencies_us.len(), elapsed: duration, latencies_us }
}

/// A replica process, killed when dropped.
struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_cluster(dir: &std::path::Path) -> (Vec<Replica>, Vec<SocketAddr>) {
    let addrs: Vec<SocketAddr> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port"))
        .collect();
    let mut replicas = Vec::new();
    for (index, addr) in addrs.iter().enumerate() {
        let peers: Vec<String> = addrs
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(other, addr)| format!("{}={addr}", other + 1))
            .collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_clocklab"))
            .args(["replica", "--id", &(index + 1).to_string(), "--listen", &addr.to_string()])
            .arg("--data")
            .arg(dir.join(format!("replica-{}", index + 1)))
            .args(["--peers", &peers.join(","), "--cluster-token", TOKEN, "--clock", "model"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn replica");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("announcement");
        replicas.push(Replica(child));
    }
    (replicas, addrs)
}

fn bench_replica(client: &reqwest::Client, duration: Duration) -> Figures {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (replicas, addrs) = start_cluster(dir.path());
    let runtime = client_runtime();
    let target = addrs[0];
    let load_client = client.clone();
    let figures = runtime.block_on(drive("replica", duration, move |n| {
        let client = load_client.clone();
        async move {
            let bucket = ["lww-wall", "lww-hlc", "vv"][(n % 3) as usize];
            // Distinct keys: the write path alone, no siblings piling up under vv.
            let url = format!("http://{target}/kv/{bucket}/k{n}");
            let body = json!({ "value": [n], "context": null });
            let response = client.put(&url).json(&body).send().await;
            response.is_ok_and(|r| r.status().is_success())
        }
    }));
    // How long the peers take to hold every write replica 1 acknowledged.
    let stopped = Instant::now();
    let (written, caught_up) = runtime.block_on(async {
        let status = |addr: SocketAddr| {
            let client = client.clone();
            async move {
                let url = format!("http://{addr}/admin/status");
                let response = client.get(url).header("x-cluster-token", TOKEN).send().await.ok()?;
                let status: Value = response.json().await.ok()?;
                status["high_water"]["1"].as_u64()
            }
        };
        let written = status(addrs[0]).await.unwrap_or(0);
        loop {
            let mut behind = false;
            for &peer in &addrs[1..] {
                behind |= status(peer).await.unwrap_or(0) < written;
            }
            if !behind || stopped.elapsed() > Duration::from_secs(60) {
                return (written, !behind);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    println!(
        "         peers {} {:.0} ms after the load stopped",
        if caught_up { "held every write" } else { "had NOT caught up" },
        stopped.elapsed().as_secs_f64() * 1000.0
    );
    // What each write cost each replica, warm-up included.
    let per_write = |total: f64| total / written.max(1) as f64;
    let costs: Vec<String> = replicas
        .iter()
        .map(|replica| {
            let pid = replica.0.id();
            let cpu_us = cpu_seconds(pid).map_or(f64::NAN, |seconds| per_write(seconds * 1e6));
            let bytes = resident_bytes(pid).map_or(f64::NAN, |bytes| per_write(bytes as f64));
            format!("{cpu_us:.1} us CPU, {bytes:.0} B resident")
        })
        .collect();
    println!("         per write on replicas 1, 2, 3: {}", costs.join("; "));
    figures
}

/// The resident memory of a process, from /proc (Linux only).
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// CPU time (user + system) a process has used, from /proc (Linux only).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("client runtime")
}

fn main() {
    let duration = measured_time();
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    println!(
        "write path: {IN_FLIGHT} requests in flight, {:.1} s measured per case, {rounds} rounds, {} cores",
        duration.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let client = reqwest::Client::builder().pool_max_idle_per_host(IN_FLIGHT).build().expect("client");
    bench_sqlite(duration).print();
    // Echo and replica alternate, so that a noisy moment on the machine
    // does not land on one side of the ratio only.
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        println!("round {round}");
        let echo = bench_echo(&client, duration);
        echo.print();
        let replica = bench_replica(&client, duration);
        replica.print();
        ratios.push(replica.rate() / echo.rate());
    }
    ratios.sort_by(f64::total_cmp);
    let shown: Vec<String> = ratios.iter().map(|ratio| format!("{ratio:.2}")).collect();
    println!(
        "ratio replica PUTs / echo: median {:.2} (rounds: {}; target 0.5 or above)",
        ratios[ratios.len() / 2],
        shown.join(", ")
    );
}
