//! Plugin benchmark: what does a strategy in another language cost per write?
//!
//! In one run, on a real 3-replica cluster (separate processes) whose
//! replicas each host `examples/strategies/lww_wall.py`:
//!
//! - acknowledged PUTs per second to the built-in `lww-wall` bucket, and to
//!   the plugin's `py-lww-wall` bucket, the same rule in Python, in
//!   alternating rounds (so a noisy moment on a shared machine lands on
//!   both), with the median ratio;
//! - the same on one replica core in this process, no HTTP or SQLite: the
//!   price of the pipe round trips alone.
//!
//! Each write through the plugin costs its origin a `read`-free `stamp` and
//! an `apply`, and each peer an `apply`: three JSON round trips over pipes.
//! Run it with `cargo bench --bench plugin`; `BENCH_SECONDS` sets the
//! measured time per case (default 2), `BENCH_ROUNDS` the rounds (3).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clocklab::clock::physical::PhysicalClock;
use clocklab::engine::processes::cluster::{Cluster, ClusterOptions};
use clocklab::replica::core::ReplicaCore;
use clocklab::strategy::RawJson;
use clocklab::strategy::plugin::{Lineup, PluginSpec};
use serde_json::{Value, json};

/// Requests in flight.
const IN_FLIGHT: usize = 32;
/// Keys written, so that every apply meets a sibling, as in the lab's workload.
const KEYS: u64 = 40;
const WARM_UP: Duration = Duration::from_millis(500);
const TOKEN: &str = "bench";
const PLUGIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/strategies/lww_wall.py");

fn setting(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// Acknowledged PUTs per second to `bucket` on replica 1, `IN_FLIGHT` at a time.
async fn acknowledged_per_second(
    client: &reqwest::Client,
    cluster: &Cluster,
    bucket: &str,
    duration: Duration,
) -> f64 {
    let target = cluster.addr(1);
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let (measure_from, stop_at) = (start + WARM_UP, start + WARM_UP + duration);
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, counter, bucket) = (client.clone(), Arc::clone(&counter), bucket.to_string());
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = 0u64;
            while Instant::now() < stop_at {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let url = format!("http://{target}/kv/{bucket}/k{}", n % KEYS);
                let began = Instant::now();
                let response = client.put(&url).json(&json!({ "value": [n], "context": null })).send().await;
                let ok = response.is_ok_and(|response| response.status().is_success());
                assert!(ok, "{bucket}: a write was not acknowledged");
                acknowledged += u64::from(began >= measure_from && Instant::now() <= stop_at);
            }
            acknowledged
        }));
    }
    let mut acknowledged = 0;
    for task in tasks {
        acknowledged += task.await.expect("load task");
    }
    acknowledged as f64 / duration.as_secs_f64()
}

/// Writes per second on one in-process replica core, to `bucket`.
fn core_writes_per_second(core: &mut ReplicaCore, bucket: &str, duration: Duration) -> f64 {
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        let value = RawJson::of(&[count]);
        core.write(bucket, &format!("k{}", count % KEYS), value, &Value::Null).expect("write");
        count += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let duration = Duration::from_secs_f64(setting("BENCH_SECONDS", 2.0));
    let rounds = setting("BENCH_ROUNDS", 3.0) as usize;
    println!(
        "plugin strategy: {IN_FLIGHT} writes in flight on {KEYS} keys, {:.1} s per case, {rounds} rounds, plugin {PLUGIN}",
        duration.as_secs_f64()
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::builder().pool_max_idle_per_host(IN_FLIGHT).build().expect("client");
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = ClusterOptions {
        replicas: 3,
        token: TOKEN.into(),
        executable: Some(env!("CARGO_BIN_EXE_clocklab").into()),
        replica_args: ["--clock", "model", "--plugin", PLUGIN].map(String::from).to_vec(),
        ..Default::default()
    };
    let cluster = runtime.block_on(Cluster::start(options, dir.path(), client.clone())).expect("cluster");
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let builtin = runtime.block_on(acknowledged_per_second(&client, &cluster, "lww-wall", duration));
        let plugin = runtime.block_on(acknowledged_per_second(&client, &cluster, "py-lww-wall", duration));
        println!(
            "round {round}: lww-wall {builtin:>7.0} acknowledged writes/s   py-lww-wall {plugin:>7.0} acknowledged writes/s   \
             built-in/plugin {:.2}",
            builtin / plugin
        );
        ratios.push(builtin / plugin);
    }
    runtime.block_on(cluster.stop());
    ratios.sort_by(f64::total_cmp);
    println!(
        "cluster: the built-in is {:.2} times as fast as the plugin (median of {rounds} rounds)",
        ratios[rounds / 2]
    );

    let lineup = Lineup {
        builtins: clocklab::strategy::registry().into_iter().filter(|s| s.name() == "lww-wall").collect(),
        plugins: vec![PluginSpec::at(PLUGIN)],
    };
    let strategies = lineup.for_replica(1, &[1, 2, 3]).expect("plugin starts");
    let mut core = ReplicaCore::with_strategies(1, PhysicalClock::system(), strategies);
    let builtin = core_writes_per_second(&mut core, "lww-wall", duration);
    let plugin = core_writes_per_second(&mut core, "py-lww-wall", duration);
    println!(
        "one core, no HTTP or SQLite: lww-wall {builtin:.0} writes/s ({:.1} us each), py-lww-wall {plugin:.0} writes/s \
         ({:.1} us each: two round trips, stamp and apply)",
        1e6 / builtin,
        1e6 / plugin
    );
}
