//! Explorer benchmark: how many states a search explores per second, and
//! the largest bounds it searches exhaustively within a minute.
//!
//! Searches for any lost write under `vv`, which loses none, so each search
//! must try every story within its bounds: the honest measure of an
//! exhaustive search. The bounds grow (replicas, then writes, then keys)
//! and each search may explore what the last one's rate would manage in
//! `EXPLORE_BUDGET_S` seconds (60 by default); one that runs out gives up
//! and is shown as such. For each: the states reached by a step (before
//! duplicates were dropped), the distinct states explored, seconds, states
//! explored per second, and whether it finished. Then the same for the
//! searches the tests make (`lww-hlc` and `lww-lamport` for a causality
//! violation, `truetime` for a clock-caused loss). Run alone, with
//! `cargo bench --bench explore`.

use std::time::Instant;

use clocklab::analysis::Cause;
use clocklab::explore::{Bounds, Search, Target, Verdict, search};
use clocklab::strategy::plugin::Lineup;

/// The allocator the `clocklab` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn lineup(name: &str) -> Lineup {
    let strategy = clocklab::strategy::registry().into_iter().find(|strategy| strategy.name() == name);
    Lineup { builtins: vec![strategy.expect("a built-in")], plugins: Vec::new() }
}

/// One search, timed: its figures as a table row.
fn timed(strategy: &str, bounds: &Bounds, target: Target) -> (Search, f64) {
    let started = Instant::now();
    let search = search(&lineup(strategy), bounds, target, |_, _| {}).expect("the search runs");
    let seconds = started.elapsed().as_secs_f64();
    let verdict = match &search.verdict {
        Verdict::Found { story } => format!("found, {} steps", story.search_steps),
        Verdict::NoneWithin => "none within: exhaustive".to_string(),
        Verdict::GaveUp => "gave up: over budget".to_string(),
    };
    println!(
        "{:<12} {:<10} {:>3} {:>3} {:>3} {:>11} {:>11} {:>6.2} {:>5.2}x {:>9.0}  {verdict}",
        strategy,
        target.name(),
        bounds.replicas,
        bounds.writes,
        bounds.keys,
        search.effort.reached,
        search.effort.explored,
        seconds,
        search.effort.reached as f64 / search.effort.explored.max(1) as f64,
        search.effort.explored as f64 / seconds.max(1e-9),
    );
    (search, seconds)
}

fn header() {
    println!(
        "{:<12} {:<10} {:>3} {:>3} {:>3} {:>11} {:>11} {:>6} {:>6} {:>9}  verdict",
        "strategy", "target", "rep", "wr", "key", "reached", "explored", "s", "dedup", "states/s"
    );
}

fn main() {
    let budget_s: f64 =
        std::env::var("EXPLORE_BUDGET_S").ok().and_then(|text| text.parse().ok()).unwrap_or(60.0);
    println!("exhaustive searches under vv (no loss exists), each within about {budget_s:.0} s:");
    header();
    let grow =
        [(2, 2, 1), (2, 3, 1), (3, 2, 1), (3, 3, 1), (2, 4, 1), (3, 3, 2), (2, 5, 1), (3, 4, 1), (4, 3, 1)];
    let mut rate = 20_000.0;
    // The most states among the searches that finished within the budget.
    let mut largest: Option<(usize, String)> = None;
    for (replicas, writes, keys) in grow {
        let max_states = (rate * budget_s) as usize;
        let bounds = Bounds { replicas, writes, keys, max_states, ..Bounds::default() };
        let (search, seconds) = timed("vv", &bounds, Target::AnyLoss);
        rate = search.effort.explored as f64 / seconds.max(1e-3);
        let explored = search.effort.explored;
        if matches!(search.verdict, Verdict::NoneWithin)
            && seconds <= budget_s
            && largest.as_ref().is_none_or(|(most, _)| explored > *most)
        {
            largest = Some((explored, bounds.describe()));
        }
    }
    println!(
        "largest bounds searched exhaustively within {budget_s:.0} s: {}",
        largest.map_or_else(|| "none".into(), |(explored, bounds)| format!("{bounds} ({explored} states)"))
    );
    println!();
    println!("the searches the tests make (3 replicas, 3 writes, 1 key):");
    header();
    timed("lww-hlc", &Bounds::default(), Target::Cause(Cause::Causality));
    timed("lww-lamport", &Bounds::default(), Target::Cause(Cause::Causality));
    timed("truetime", &Bounds::default(), Target::ClockCaused);
    timed("lww-wall", &Bounds::default(), Target::Cause(Cause::Causality));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find(|line| line.starts_with("VmHWM")).unwrap_or("VmHWM: unknown");
    println!("peak memory of the whole benchmark: {}", peak.trim_start_matches("VmHWM:").trim());
}
