//! Leases in the simulator: DDIA Figures 8-4 and 8-5 on the lab's own
//! replicas, judged by the lease oracle from the history alone.
//!
//! Each test runs one simulated trial of two lease workers (a loop per
//! guard in each) against a lock service with a 1 s TTL, storage on the
//! lab's replicas, and one fault on worker 1, which holds the lease from
//! the start.

use std::collections::BTreeMap;
use std::sync::Arc;

use clocklab::analysis::lease::{GuardVerdict, JudgedWrite, WriteVerdict, judge};
use clocklab::engine::sim::run_trial;
use clocklab::experiment::spec::Spec;
use clocklab::experiment::stop::Stop;
use clocklab::experiment::workload::Counters;
use clocklab::history::{LeaseEvent, LeaseRecord, Record, TrialPlan};
use clocklab::lease::{Guard, WorkerId};
use clocklab::sim::SimOptions;

/// A lease spec with `extra` (faults, settings) appended.
fn spec(extra: &str) -> Spec {
    let text = format!(
        r#"
replicas = 3
strategies = ["lww-hlc"]
trials = 1
duration_ms = 5000
seed = 3

[lease]
workers = 2
ttl_ms = 1000
margin_ms = 100
renew_ms = 500
work_ms = 300
idle_ms = 20
retry_ms = 50
{extra}

[sweep]
parameter = "skew_ms"
values = [0]
"#
    );
    Spec::parse(&text, std::path::Path::new("lease.toml")).expect("a valid spec")
}

/// One trial's lease records, its oracle's verdicts, and when its workload
/// started (true ns).
struct Trial {
    leases: Vec<LeaseRecord>,
    verdicts: BTreeMap<Guard, GuardVerdict>,
    started_ns: i64,
}

/// Runs the trial and judges it.
fn run(spec: &Spec) -> Trial {
    let plan = TrialPlan { point: 0, trial: 0, value: 0.0 };
    let (outcome, _) =
        run_trial(spec, plan, Arc::new(Counters::default()), &SimOptions::default(), &Stop::default())
            .expect("ran");
    assert!(outcome.converged, "the replicas converged");
    judged(&outcome.records)
}

/// The pause lands between worker 1's last check and its write: the last
/// valid check before `from_ns` has no write between it and `from_ns`.
fn pause_fell_between_check_and_write(leases: &[LeaseRecord], guard: Guard, from_ns: i64) -> bool {
    let mine: Vec<&LeaseRecord> =
        leases.iter().filter(|record| record.guard == guard && record.worker == WorkerId(1)).collect();
    let last_check = mine
        .iter()
        .filter(|record| record.true_ns < from_ns && record.event == LeaseEvent::Checked { valid: true })
        .map(|record| record.true_ns)
        .max();
    let last_write_sent = mine
        .iter()
        .filter_map(|record| match record.event {
            LeaseEvent::Write { invoke_ns, .. } if invoke_ns < from_ns => Some(invoke_ns),
            _ => None,
        })
        .max();
    last_check.is_some_and(|check| last_write_sent.is_none_or(|sent| sent < check))
}

/// When the pause begins, after the workload starts.
const PAUSE_AT_NS: i64 = 1_000_000_000;

const PAUSE: &str = r#"
[[fault]]
kind = "pause"
worker = 1
at_ms = 1000
duration_ms = 2000
"#;

#[test]
fn with_no_faults_nothing_is_unsafe_and_every_increment_counts() {
    let Trial { verdicts, .. } = run(&spec(""));
    assert_eq!(verdicts.len(), 3, "three guards judged: {verdicts:?}");
    for (guard, verdict) in &verdicts {
        assert!(verdict.is_safe(), "{guard}: {verdict:?}");
        assert!(verdict.acked > 5, "{guard}: the holder kept writing: {verdict:?}");
        assert_eq!(verdict.final_value, verdict.acked, "{guard}");
        assert_eq!(verdict.leases.len(), 1, "{guard}: worker 1 renewed its one lease throughout");
    }
}

#[test]
fn a_pause_longer_than_the_ttl_between_check_and_write_makes_two_holders_and_loses_an_update() {
    let Trial { leases, verdicts, started_ns } = run(&spec(PAUSE));
    let paused_at = started_ns + PAUSE_AT_NS;
    for guard in [Guard::WallClock, Guard::Monotonic] {
        assert!(
            pause_fell_between_check_and_write(&leases, guard, paused_at),
            "{guard}: the story's premise"
        );
        let verdict = &verdicts[&guard];
        assert!(!verdict.overlaps.is_empty(), "{guard}: two workers believed at once: {verdict:?}");
        assert!(verdict.stale_acked >= 1, "{guard}: the expired holder's write landed: {verdict:?}");
        assert!(
            verdict.lost_updates >= 1 && verdict.harmful >= 1,
            "{guard}: an update was lost: {verdict:?}"
        );
        assert_eq!(verdict.fenced, 0, "{guard}: nothing fenced");
    }
}

#[test]
fn fencing_on_one_replica_refuses_the_stale_write_and_loses_nothing() {
    let Trial { leases, verdicts, started_ns } = run(&spec(PAUSE));
    let paused_at = started_ns + PAUSE_AT_NS;
    assert!(pause_fell_between_check_and_write(&leases, Guard::Fenced, paused_at), "the story's premise");
    let verdict = &verdicts[&Guard::Fenced];
    assert!(!verdict.overlaps.is_empty(), "belief overlaps as before: {verdict:?}");
    assert!(verdict.fenced >= 1, "the stale write was refused: {verdict:?}");
    assert_eq!((verdict.stale_acked, verdict.lost_updates, verdict.harmful), (0, 0, 0), "{verdict:?}");
    assert_eq!(verdict.final_value, verdict.acked);
}

#[test]
fn a_worker_clock_stepped_back_past_the_ttl_breaks_the_wall_clock_guard_and_not_the_monotonic_one() {
    let step = r#"
[[fault]]
kind = "step"
worker = 1
at_ms = 1000
step_ms = -3000
"#;
    let Trial { verdicts, .. } = run(&spec(step));
    let wall = &verdicts[&Guard::WallClock];
    assert!(
        !wall.overlaps.is_empty() && wall.stale_acked >= 1,
        "wall-clock acts on a lease gone by: {wall:?}"
    );
    for guard in [Guard::Monotonic, Guard::Fenced] {
        assert!(verdicts[&guard].is_safe(), "{guard} does not read the time of day: {:?}", verdicts[&guard]);
    }
}

/// A nemesis in a lease run pauses and steps the workers too: its faults
/// on workers reach the history as worker faults, and the oracle judges
/// every guard. Fencing on one replica refuses every write whose token is
/// older than one the replica has already been written with, whatever the
/// dice did; what it cannot refuse is a late write that lands before the
/// new holder's first write (this seed's dice deal one: worker 1 resumes
/// just after its lease has passed to worker 2, writes before worker 2
/// does, and worker 2's write, built on a read taken before, overwrites
/// it).
#[test]
fn a_nemesis_pauses_and_steps_lease_workers_and_fencing_refuses_exactly_the_writes_behind_a_newer_token() {
    let chaos = r#"
[chaos]
every_ms = 300
longest_ms = 1500
kinds = ["pause", "step"]
"#;
    let spec = spec(chaos);
    let plan = TrialPlan { point: 0, trial: 0, value: 0.0 };
    let (outcome, _) =
        run_trial(&spec, plan, Arc::new(Counters::default()), &SimOptions::default(), &Stop::default())
            .expect("ran");
    let on_workers = outcome
        .records
        .iter()
        .filter(|record| matches!(record, Record::Fault(fault) if fault.worker.is_some()))
        .count();
    assert!(on_workers >= 2, "the nemesis reached the workers: {on_workers} worker faults");
    let Trial { verdicts, .. } = judged(&outcome.records);
    assert_eq!(verdicts.len(), 3, "every guard judged");
    let fenced = &verdicts[&Guard::Fenced];
    assert!(fenced.acked > 0, "{fenced:?}");
    let accepted =
        |write: &&JudgedWrite| !matches!(write.verdict, WriteVerdict::Fenced | WriteVerdict::Failed);
    for write in fenced.writes.iter().filter(accepted) {
        let newer_first = fenced
            .writes
            .iter()
            .filter(accepted)
            .any(|other| other.token > write.token && other.answered_ns < write.sent_ns);
        assert!(!newer_first, "accepted though a newer token had been written first: {write:?}");
    }
    for write in fenced.writes.iter().filter(|write| write.verdict == WriteVerdict::Fenced) {
        let newer_first = fenced
            .writes
            .iter()
            .filter(accepted)
            .any(|other| other.token > write.token && other.answered_ns < write.answered_ns);
        assert!(newer_first, "refused with no newer token written: {write:?}");
    }
    let unfenced = &verdicts[&Guard::Monotonic];
    assert!(unfenced.stale_acked >= fenced.stale_acked, "fencing lets through no more: {unfenced:?}");
}

/// Judges a trial's records, as the oracle does a run's.
fn judged(records: &[Record]) -> Trial {
    let (started_ns, end_ns) = records
        .iter()
        .find_map(|record| match record {
            Record::Trial(trial) => Some((trial.workload_start_ns, trial.workload_end_ns)),
            _ => None,
        })
        .expect("a trial record");
    let leases: Vec<LeaseRecord> = records
        .iter()
        .filter_map(|record| match record {
            Record::Lease(lease) => Some(lease.clone()),
            _ => None,
        })
        .collect();
    let finals = records.iter().filter_map(|record| match record {
        Record::Final(last) => Some(last),
        _ => None,
    });
    let verdicts = judge(&leases, finals, end_ns);
    eprintln!("{verdicts:#?}");
    Trial { leases, verdicts, started_ns }
}

/// On real processes: worker 1 starts at once and worker 2 600 ms later,
/// so worker 1 holds the lease (token 33). 300 ms in, while worker 1 works
/// between its check and its write (its first round's work lasts a
/// second), it is SIGSTOPped for 4 s, past its 2 s lease. Worker 2 takes
/// the lease about 2 s in and writes about 3 s in; worker 1 wakes at 4.3 s
/// and writes. Every margin is hundreds of milliseconds, and the test
/// checks its premise from the records before its claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_real_processes_a_sigstop_past_the_ttl_makes_a_second_holder_and_fencing_refuses_the_stale_write()
{
    use clocklab::engine::processes::Processes;
    let text = r#"
replicas = 2
strategies = ["lww-hlc"]
trials = 1
duration_ms = 6000
seed = 5

[lease]
workers = 2
ttl_ms = 2000
margin_ms = 100
renew_ms = 1000
work_ms = 1000
idle_ms = 20
retry_ms = 50
stagger_ms = 600

[[fault]]
kind = "pause"
worker = 1
at_ms = 300
duration_ms = 4000

[sweep]
parameter = "skew_ms"
values = [0]
"#;
    let spec = Spec::parse(text, std::path::Path::new("real-lease.toml")).expect("a valid spec");
    let plan = TrialPlan { point: 0, trial: 0, value: 0.0 };
    let data = tempfile::tempdir().expect("a directory");
    let executable = std::path::Path::new(env!("CARGO_BIN_EXE_clocklab"));
    let mut engine = Processes::start(
        &spec,
        plan,
        data.path(),
        "lease-test-token",
        reqwest::Client::new(),
        Some(executable),
    )
    .await
    .expect("the replicas and workers started");
    let outcome = clocklab::engine::run_trial(&mut engine, &spec, plan, Arc::new(Counters::default())).await;
    engine.stop().await;
    let outcome = outcome.expect("the trial ran");
    assert!(outcome.converged);
    let Trial { leases, verdicts, started_ns } = judged(&outcome.records);
    let paused_at = started_ns + 300_000_000;
    for guard in Guard::ALL {
        assert!(
            pause_fell_between_check_and_write(&leases, guard, paused_at),
            "{guard}: the SIGSTOP should have landed between worker 1's check and its write: {leases:#?}"
        );
    }
    for guard in [Guard::WallClock, Guard::Monotonic] {
        let verdict = &verdicts[&guard];
        assert!(!verdict.overlaps.is_empty(), "{guard}: a second holder while worker 1 slept: {verdict:?}");
        assert!(
            verdict.stale_acked >= 1,
            "{guard}: the stale holder's write landed and was counted: {verdict:?}"
        );
    }
    let fenced = &verdicts[&Guard::Fenced];
    assert!(!fenced.overlaps.is_empty(), "fenced: the same second holder: {fenced:?}");
    assert!(fenced.fenced >= 1 && fenced.stale_acked == 0, "fenced: the stale write was refused: {fenced:?}");
}

#[test]
fn a_lease_experiment_reports_its_verdicts_per_guard_on_the_terminal_and_in_its_report() {
    let dir = tempfile::tempdir().expect("a directory");
    let spec = dir.path().join("lease-report.toml");
    std::fs::write(
        &spec,
        r#"
replicas = 2
strategies = ["lww-hlc"]
trials = 2
duration_ms = 3000
[lease]
work_ms = 300
idle_ms = 20
[[fault]]
kind = "pause"
worker = 1
at_ms = 1000
duration_ms = 2000
[sweep]
parameter = "pause_ms"
values = [0, 2000]
"#,
    )
    .expect("write the spec");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["experiment", spec.to_str().expect("a path"), "--sim", "--results"])
        .arg(dir.path().join("results"))
        .output()
        .expect("run clocklab");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("guard")
            && stderr.contains("monotonic")
            && stderr.contains("writes of protected values"),
        "{stderr}"
    );
    let run = std::fs::read_dir(dir.path().join("results/lease-report"))
        .expect("runs")
        .flatten()
        .next()
        .expect("a run")
        .path();
    let report = std::fs::read_to_string(run.join("report.md")).expect("report.md");
    assert!(report.contains("## Leases") && report.contains("| 0 | fenced | 0 of 2 |"), "{report}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(run.join("lease.json")).expect("lease.json"))
            .expect("JSON");
    assert_eq!(rows.len(), 2 * 3, "two sweep points, three guards");
    let unpaused_safe = rows.iter().filter(|row| row["point"] == 0).all(|row| row["unsafe_trials"] == 0);
    assert!(unpaused_safe, "no pause, nothing unsafe: {rows:?}");
}

/// A lease spec's mistakes are refused when it is read, naming the field.
#[test]
fn a_bad_lease_spec_is_refused_with_its_field_named() {
    let refused = |extra: &str| -> String {
        let text = format!(
            "replicas = 2\nstrategies = [\"lww-hlc\"]\n{extra}\n[sweep]\nparameter = \"skew_ms\"\nvalues = [0]\n"
        );
        match Spec::parse(&text, std::path::Path::new("bad-lease.toml")) {
            Ok(_) => panic!("accepted: {extra}"),
            Err(error) => error.to_string(),
        }
    };
    let cases = [
        ("[lease]\nworkers = 0", "workers must be 1 to 16"),
        ("[lease]\nttl_ms = 50\nmargin_ms = 100", "ttl_ms (50) must be more than margin_ms (100)"),
        (
            "[lease]\nrenew_ms = 5000",
            "renew_ms (5000) must be at least margin_ms (100) and less than ttl_ms (1000)",
        ),
        ("[lease]\nretry_ms = 0", "retry_ms must be above 0"),
        ("[lease]\nwork_ms = -1", "work_ms must be 0 to 3,600,000 ms"),
        ("[lease]\nbucket = \"vv\"", "bucket \"vv\" is not one of the spec's strategies"),
        ("[lease]\nguards = []", "guards must name at least one"),
        ("[lease]\nguards = [\"sundial\"]", "unknown variant `sundial`"),
        (
            "[[fault]]\nkind = \"pause\"\nworker = 1\nat_ms = 1\nduration_ms = 1",
            "a spec without [lease] has no workers",
        ),
        (
            "[lease]\n[[fault]]\nkind = \"pause\"\nworker = 3\nat_ms = 1\nduration_ms = 1",
            "worker 3 does not exist (workers are 1 to 2)",
        ),
        (
            "[lease]\n[[fault]]\nkind = \"pause\"\nworker = 1\nreplica = 1\nat_ms = 1\nduration_ms = 1",
            "not both",
        ),
        (
            "[lease]\n[[fault]]\nkind = \"cut\"\nworker = 1\nat_ms = 1\nduration_ms = 1",
            "a cut takes no `worker`",
        ),
    ];
    for (extra, expected) in cases {
        let error = refused(extra);
        assert!(error.contains("bad-lease.toml") && error.contains(expected), "{extra:?}: {error}");
    }
    // Where the workers write, as a setting and as a sweep.
    let sweeping = |lease: &str, values: &str| -> String {
        let text = format!(
            "replicas = 2\nstrategies = [\"lww-hlc\"]\n{lease}\n[sweep]\nparameter = \"storage_replicas\"\nvalues = {values}\n"
        );
        match Spec::parse(&text, std::path::Path::new("bad-lease.toml")) {
            Ok(_) => panic!("accepted: {lease} {values}"),
            Err(error) => error.to_string(),
        }
    };
    let cases = [
        (
            refused("[lease]\nstorage_replicas = 3"),
            "storage_replicas must be 1 to the spec's 2 replicas, got 3",
        ),
        (sweeping("", "[1, 2]"), "this spec has no [lease]"),
        (sweeping("[lease]", "[1, 3]"), "storage_replicas must be 1 to the spec's 2 replicas, got 3"),
        (sweeping("[lease]", "[1.5]"), "a number of replicas is a whole number"),
        (refused("[quiz]\nquestion = \"Which?\"\nanswer = \"fewest_lost\""), "this spec has no [lease]"),
        (
            refused("[lease]\n[quiz]\nquestion = \"Which?\"\nanswer = \"drops_none\""),
            "a lease run's quiz is about its guards",
        ),
    ];
    for (error, expected) in cases {
        assert!(error.contains("bad-lease.toml") && error.contains(expected), "{expected}: {error}");
    }
}
