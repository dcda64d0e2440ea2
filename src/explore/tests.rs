//! The searches the issue asks for, each a claim about a strategy within
//! small bounds, and the story the search tells for DDIA Figure 8-3.

use std::path::Path;

use super::*;
use crate::analysis::Cause;
use crate::strategy;

fn builtin(name: &str) -> Lineup {
    let found = strategy::registry().into_iter().find(|strategy| strategy.name() == name);
    Lineup { builtins: vec![found.expect("a built-in")], plugins: Vec::new() }
}

fn explore(name: &str, bounds: &Bounds, target: Target) -> Search {
    search(&builtin(name), bounds, target, |_, _| {}).expect("the search runs")
}

fn found(search: &Search) -> &story::Story {
    match &search.verdict {
        Verdict::Found { story } => story,
        other => panic!("{}: expected a story, got {other:?} ({:?})", search.strategy, search.effort),
    }
}

fn lost_cause(story: &story::Story) -> Cause {
    match &story.finding {
        Finding::Lost { cause, .. } => *cause,
        other => panic!("expected a lost write, got {other:?}"),
    }
}

fn none_within(search: &Search) {
    assert!(
        matches!(search.verdict, Verdict::NoneWithin),
        "{}: expected no loss within the bounds, got {}",
        search.strategy,
        search
    );
    assert!(search.effort.explored > 1_000, "the whole space was searched: {:?}", search.effort);
}

/// DDIA Figure 8-3, found rather than told: replica 1's clock runs ahead,
/// its write reaches replica 2, a client there reads it and writes on top,
/// and the later write gets the smaller stamp. Two writes, three steps.
#[test]
fn lww_wall_s_smallest_causality_violation_is_figure_8_3() {
    let search = explore("lww-wall", &Bounds::default(), Target::Cause(Cause::Causality));
    let story = found(&search);
    assert_eq!((story.writes, story.search_steps), (2, 3), "{search}");
    assert_eq!(lost_cause(story), Cause::Causality);
    // One clock off, the others exact.
    let skewed = story.scenario.clock_offsets_ms.iter().filter(|offset| **offset != 0.0).count();
    assert_eq!(skewed, 1, "{:?}", story.scenario.clock_offsets_ms);
    // The oracle, on the story played in the step-through's world: the lost
    // write had read the write that beat it.
    let analysis = crate::analysis::analyze(&story.trace.history);
    assert_eq!(analysis.drops.len(), 1, "{:?}", analysis.drops);
    assert!(analysis.drops[0].killers[0].read_by_victim, "the update had read what beat it");
    assert!(analysis.drops[0].rule().contains("Figure 8-3"));
    // Without a cause asked for, the first loss is shorter still: two
    // writes neither had seen, one overwritten.
    let any = explore("lww-wall", &Bounds::default(), Target::AnyLoss);
    assert_eq!((found(&any).search_steps, lost_cause(found(&any))), (2, Cause::Concurrent), "{any}");
}

/// The committed story is what the search finds, word for word: change
/// the search or a sentence and this names the line.
#[test]
fn the_committed_smallest_story_is_what_the_search_finds() {
    let search = explore("lww-wall", &Bounds::default(), Target::Cause(Cause::Causality));
    let story = found(&search);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/scenarios");
    for (file, got) in [
        (format!("{}.toml", story.name), story.toml.clone()),
        (format!("{}.golden", story.name), story.golden.clone()),
    ] {
        let path = dir.join(&file);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &got).expect("write the story");
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error} (UPDATE_GOLDEN=1 writes it)", path.display()));
        assert!(
            got == want,
            "{file} differs from what the search finds (UPDATE_GOLDEN=1 rewrites it):\n{got}"
        );
    }
}

/// Logical clocks never let an update lose to what it read; their
/// shortest loss is two writes that never saw each other.
#[test]
fn hybrid_and_lamport_clocks_lose_only_concurrent_writes_never_to_causality() {
    for name in ["lww-hlc", "lww-lamport"] {
        let any = explore(name, &Bounds::default(), Target::AnyLoss);
        let story = found(&any);
        assert_eq!((story.writes, lost_cause(story)), (2, Cause::Concurrent), "{any}");
        none_within(&explore(name, &Bounds::default(), Target::Cause(Cause::Causality)));
    }
}

/// TrueTime's commit wait makes a write wait out its clock's error bound:
/// with every offset inside it, no clock can order two writes wrongly;
/// with an offset beyond it, one can.
#[test]
fn truetime_loses_nothing_to_a_clock_inside_its_bound_and_something_outside() {
    let inside = Bounds { offsets_ms: vec![0.0, 5.0], ..Bounds::default() };
    assert!(inside.offsets_ms.iter().all(|offset| offset.abs() <= strategy::truetime::DEFAULT_EPSILON_MS));
    none_within(&explore("truetime", &inside, Target::ClockCaused));
    let outside = Bounds { offsets_ms: vec![0.0, 20.0], ..Bounds::default() };
    let search = explore("truetime", &outside, Target::ClockCaused);
    assert_eq!(lost_cause(found(&search)), Cause::Realtime, "{search}");
}

/// Siblings and merges keep every write: no story of three replicas and
/// three writes loses one.
#[test]
fn version_vectors_and_set_union_lose_nothing_within_three_replicas_and_three_writes() {
    let bounds = Bounds { replicas: 3, writes: 3, ..Bounds::default() };
    for name in ["vv", "vv-server", "set-union"] {
        let search = explore(name, &bounds, Target::AnyLoss);
        none_within(&search);
        assert!(search.effort.reached > search.effort.explored, "duplicates were met and dropped");
    }
}

#[test]
fn the_same_question_gets_the_same_story_and_bad_bounds_are_named() {
    let bounds = Bounds { replicas: 2, ..Bounds::default() };
    let first = explore("lww-wall", &bounds, Target::Cause(Cause::Causality));
    let second = explore("lww-wall", &bounds, Target::Cause(Cause::Causality));
    assert_eq!(found(&first).golden, found(&second).golden);
    for (bad, words) in [
        (Bounds { replicas: 1, ..Bounds::default() }, "replicas must be 2"),
        (Bounds { writes: 0, ..Bounds::default() }, "writes must be 1"),
        (Bounds { offsets_ms: vec![], ..Bounds::default() }, "offsets"),
        (Bounds { offsets_ms: vec![f64::NAN], ..Bounds::default() }, "clock offset"),
    ] {
        let error = search(&builtin("vv"), &bad, Target::AnyLoss, |_, _| {}).expect_err("refused");
        assert!(error.to_string().contains(words), "{error}");
    }
    assert!(Target::parse("sideways").unwrap_err().to_string().contains("causality"));
}

/// A search that runs out of states says so rather than claiming safety.
#[test]
fn a_search_cut_short_gives_up_and_does_not_claim_safety() {
    let bounds = Bounds { max_states: 50, ..Bounds::default() };
    let search = explore("vv", &bounds, Target::AnyLoss);
    assert!(matches!(search.verdict, Verdict::GaveUp), "{search}");
}
