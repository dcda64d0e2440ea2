//! The simulator's histories, pinned: the same seed gives the same bytes.
//!
//! A simulated run is a pure function of its spec and seed, so a change to
//! how trials are run (the engine protocol, the fault timeline, the
//! workload) that should change nothing must leave `history.jsonl`
//! byte-identical. Each case runs a shipped experiment's `--quick` form in
//! the simulator at a fixed seed and compares the history's length and
//! FNV-1a hash with the figures recorded here.
//!
//! When a change *means* to alter histories (a new record field, a changed
//! workload), run this test, check that the change is the one intended
//! (`clocklab experiment NAME --quick --sim --seed 7` before and after, and
//! `diff` the two histories), and update the figures it prints.

use std::path::Path;
use std::process::Command;

/// The seed every pinned history is run with.
const SEED: &str = "7";

/// Each pinned experiment: its name, history length in bytes, and FNV-1a hash.
const PINNED: [(&str, usize, u64); 3] = [
    ("skew", 3_879_995, 0xd7ff_dbde_d04f_7657),
    ("chaos", 3_801_175, 0x3e70_e2b7_904f_c70e),
    ("riak-2013", 1_362_225, 0xf300_c16e_6199_835c),
];

/// 64-bit FNV-1a: small, stable across platforms and Rust versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3))
}

/// The history of `experiment`'s quick sweep in the simulator, at [`SEED`].
fn simulated_history(experiment: &str) -> Vec<u8> {
    let results = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["experiment", experiment, "--quick", "--sim", "--seed", SEED, "--experiments"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"))
        .arg("--results")
        .arg(results.path())
        .output()
        .expect("run the quick sweep");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let runs: Vec<_> =
        std::fs::read_dir(results.path().join(experiment)).expect("its runs").flatten().collect();
    assert_eq!(runs.len(), 1, "one run");
    std::fs::read(runs[0].path().join("history.jsonl")).expect("an uncompressed history")
}

#[test]
fn simulated_histories_are_byte_identical_to_the_pinned_ones() {
    let mut changed = Vec::new();
    for (experiment, length, hash) in PINNED {
        let history = simulated_history(experiment);
        let found = (history.len(), fnv1a(&history));
        if found != (length, hash) {
            changed.push(format!("(\"{experiment}\", {}, {:#018x}),", found.0, found.1));
        }
    }
    assert!(
        changed.is_empty(),
        "simulated histories changed; if that was meant, pin these:\n{}",
        changed.join("\n")
    );
}

/// Old histories still read: every committed reference run (a run directory
/// holding `REFERENCE`; a user's own runs have none and are not read), in
/// whatever form its history was written, reads and judges to the summary
/// committed beside it.
#[test]
fn committed_reference_runs_read_to_their_own_summaries() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let mut read = 0;
    for experiment in std::fs::read_dir(&results).expect("the committed results").flatten() {
        // A user's own files and runs beside them are not read.
        let Ok(runs) = std::fs::read_dir(experiment.path()) else { continue };
        for run in runs.flatten() {
            let run = run.path();
            // A lease run's summary is the lease oracle's, not this one's.
            if !run.join("REFERENCE").exists() || run.join("lease.json").exists() {
                continue;
            }
            let records = clocklab::history::read_run(&run).expect("a reference history reads");
            let rows = serde_json::to_value(clocklab::analysis::analyze(&records).rows).unwrap();
            let text = std::fs::read_to_string(run.join("summary.json")).expect("its summary");
            let committed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(rows, committed, "{}", run.display());
            read += 1;
        }
    }
    assert!(read >= 10, "the reference runs are committed: {read} read");
}
