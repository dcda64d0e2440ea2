//! DDIA Figures 8-4 and 8-5 as golden transcripts: each story in
//! `experiments/lease-stories/` is a lease spec played in the simulator
//! (deterministic), told line by line from its history by
//! `report::lease::transcript`, and compared with `NAME.golden` beside it.
//! After a change that is meant, `UPDATE_GOLDEN=1 cargo test --release
//! --test lease_stories` rewrites them; read the diff before committing.

use std::path::Path;
use std::sync::Arc;

use clocklab::engine::sim::run_trial;
use clocklab::experiment::spec::Spec;
use clocklab::experiment::stop::Stop;
use clocklab::experiment::workload::Counters;
use clocklab::history::TrialPlan;
use clocklab::report::lease::transcript;
use clocklab::sim::SimOptions;
use clocklab::sim::scenario::transcript::differs;

fn stories() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/lease-stories")
}

/// Plays the story `name` and returns its transcript.
fn told(name: &str) -> String {
    let path = stories().join(format!("{name}.toml"));
    let spec = Spec::load(&path).unwrap_or_else(|error| panic!("{error}"));
    let plan = TrialPlan { point: 0, trial: 0, value: spec.sweep.values[0] };
    let (outcome, _) =
        run_trial(&spec, plan, Arc::new(Counters::default()), &SimOptions::default(), &Stop::default())
            .expect("the story plays");
    transcript(&spec, &outcome.records)
}

fn check(name: &str) -> String {
    let got = told(name);
    let golden = stories().join(format!("{name}.golden"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).expect("write the golden file");
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|error| panic!("{}: {error} (UPDATE_GOLDEN=1 writes it)", golden.display()));
    if let Some(difference) = differs(&got, &want) {
        panic!(
            "{name}: {difference}\n(if the change is meant, UPDATE_GOLDEN=1 rewrites it; read the diff first)"
        );
    }
    got
}

#[test]
fn figure_8_4_plays_as_its_golden_transcript_says_and_the_paused_holder_loses_an_update() {
    let told = check("figure-8-4");
    assert!(told.contains("[monotonic] worker 1 holds token 33"), "{told}");
    assert!(told.contains("[monotonic] worker 2 holds token 34"), "{told}");
    let verdict = told.lines().find(|line| line.starts_with("verdict")).expect("a verdict");
    assert!(verdict.contains("two workers believed") && !verdict.contains(" 0 update(s) lost"), "{verdict}");
}

#[test]
fn figure_8_5_plays_as_its_golden_transcript_says_and_fencing_refuses_the_late_write() {
    let told = check("figure-8-5");
    assert!(told.contains("carrying token 33 to replica 1") && told.contains("REFUSED"), "{told}");
    let verdict = told.lines().find(|line| line.starts_with("verdict")).expect("a verdict");
    assert!(verdict.contains("1 refused by fencing") && verdict.contains(" 0 update(s) lost"), "{verdict}");
}

#[test]
fn a_changed_line_in_a_golden_transcript_fails() {
    let got = told("figure-8-5");
    let changed = got.replacen("REFUSED", "accepted", 1);
    assert!(differs(&got, &changed).is_some(), "a changed verdict must be noticed");
}
