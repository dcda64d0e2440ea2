//! Engine benchmark: how much faster is the simulator than real processes?
//!
//! Runs every trial of the default `skew` spec (the built-in one, full
//! size) in the simulator and then on real replica processes, in one run,
//! and prints for each engine the acknowledged writes per second of wall
//! time, the trials' total wall time, and the ratio. For the simulator it
//! also prints events handled per second; its figure is the median of five
//! runs (each run is under a second, so one alone is noisy). Only the trials are timed (not
//! the oracle or the plots), the same work for both engines, each as the
//! runner runs it: the simulator's trials in parallel over the cores (they
//! are independent), the real ones one after another (each cluster needs
//! the whole machine). Each trial's records are counted and let go.
//!
//! Run it alone (`cargo bench --bench engines`, or `just bench-engines`):
//! the real engine takes about 40 s and shares the machine's two cores with
//! its replicas. `ENGINES_SIM_ONLY=1` skips the real engine.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clocklab::builtin::Folder;
use clocklab::engine;
use clocklab::experiment::workload::Counters;
use clocklab::experiment::{Wanted, load_spec};
use clocklab::history::{Outcome, Record};
use clocklab::sim::SimOptions;
use rayon::prelude::*;

/// How many times the simulator runs the sweep (the median counts).
const SIM_RUNS: usize = 5;

/// The allocator the `clocklab` binary uses, so both engines are timed as they run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn acknowledged(records: &[Record]) -> u64 {
    records
        .iter()
        .filter(|record| matches!(record, Record::Write(write) if write.outcome == Outcome::Ok))
        .count() as u64
}

fn main() {
    let wanted = Wanted {
        experiment: "skew".into(),
        experiments: Folder::experiments(None),
        quick: false,
        seed: None,
        engine: None,
        trials: None,
        plugins: Vec::new(),
    };
    let (_, spec) = load_spec(&wanted).expect("the built-in skew spec");
    let plans = spec.plans();
    println!("skew, full size: {} trials of {} ms, seed {}", plans.len(), spec.duration_ms, spec.seed);

    // The simulator's run is short, so one run is at the mercy of whatever
    // else the machine does: it runs SIM_RUNS times and the median counts.
    let options = SimOptions::default();
    let mut times = Vec::new();
    let (mut acked, mut events) = (0, 0);
    for _ in 0..SIM_RUNS {
        let started = Instant::now();
        // As the runner runs them (in parallel), each trial's records
        // counted and let go, as the real engine's are below.
        let counts: Vec<(u64, u64)> = plans
            .par_iter()
            .map(|(plan, spec)| {
                let (outcome, effort) = engine::sim::run_trial(
                    spec,
                    *plan,
                    Arc::new(Counters::default()),
                    &options,
                    &Default::default(),
                )
                .expect("a benchmark is not interrupted");
                (acknowledged(&outcome.records), effort.events)
            })
            .collect();
        times.push(started.elapsed());
        acked = counts.iter().map(|(acked, _)| acked).sum();
        events = counts.iter().map(|(_, events)| events).sum();
    }
    times.sort();
    let sim_time = times[times.len() / 2];
    let sim_rate = acked as f64 / sim_time.as_secs_f64();
    println!(
        "simulator:       {acked} writes acknowledged in {:.3} s (median of {SIM_RUNS}; {:.3} to {:.3} s): \
         {sim_rate:.0} writes/s; {events} events, {:.0} events/s",
        sim_time.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        events as f64 / sim_time.as_secs_f64()
    );
    if std::env::var_os("ENGINES_SIM_ONLY").is_some() {
        return;
    }

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("an HTTP client");
    let counters = Arc::new(Counters::default());
    let replica = Some(std::path::Path::new(env!("CARGO_BIN_EXE_clocklab")));
    let mut real_time = Duration::ZERO;
    let mut real_acked = 0;
    for (plan, spec) in &plans {
        let plan = *plan;
        let data = tempfile::tempdir().expect("a data directory");
        let started = Instant::now();
        let outcome = runtime
            .block_on(engine::processes::run_trial(
                spec,
                plan,
                data.path(),
                "bench",
                client.clone(),
                counters.clone(),
                replica,
            ))
            .expect("a real trial");
        real_time += started.elapsed();
        real_acked += acknowledged(&outcome.records);
    }
    let real_rate = real_acked as f64 / real_time.as_secs_f64();
    println!(
        "real processes:  {real_acked} writes acknowledged in {:.3} s: {real_rate:.0} writes/s ({} counted live)",
        real_time.as_secs_f64(),
        counters.acked.load(Ordering::Relaxed)
    );
    println!(
        "simulator / real processes: {:.0} times the acknowledged writes per second",
        sim_rate / real_rate
    );
}
