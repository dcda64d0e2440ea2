//! A played scenario as plain text: the golden scripts.
//!
//! Each scenario in `experiments/scenarios/` is a story told once: the
//! TOML file says what happens, and `NAME.golden` beside it says what the
//! replica cores made of it, step by step: every write with its stamp, each
//! replica's clock, what each replica holds after the step (where that
//! changed), and which acknowledged writes are lost so far; then the
//! oracle's verdict on the whole story, judged from its history as an
//! experiment's is (`super::history`). The dashboard's step-through
//! plays the same TOML file, so the class sees exactly what the test checks.
//!
//! The tests play every scenario and compare the transcript with its golden
//! file line for line, as toyDB's goldenscript tests do: change a strategy
//! and a stamp moves, and the test names the line. After a change that is
//! meant, `UPDATE_GOLDEN=1 cargo test --release --lib transcript` writes the
//! new transcripts; the diff is then the change's story, to read before
//! committing.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Action, Trace, TraceStep};
use crate::analysis::Cause;

/// The file beside `NAME.toml` that holds its transcript.
pub fn golden_file(name: &str) -> String {
    format!("{name}.golden")
}

/// Lists (siblings, reads, lost writes) are shown in full up to this many
/// entries; beyond, with their length and their first and last few.
const LIST_SHOWN: usize = 6;

fn shortened(items: &[impl ToString]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    if items.len() <= LIST_SHOWN {
        return items.join(" ");
    }
    let (head, tail) = (&items[..LIST_SHOWN / 2], &items[items.len() - LIST_SHOWN / 2..]);
    format!("{} of them: {} ... {}", items.len(), head.join(" "), tail.join(" "))
}

/// The transcript of a played scenario.
pub fn transcript(trace: &Trace) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# {}", trace.title);
    let _ = writeln!(text, "# {} replicas; buckets: {}", trace.replicas, trace.buckets.join(", "));
    let mut before = None;
    for step in &trace.steps {
        text.push('\n');
        step_lines(&mut text, step, before);
        before = Some(step);
    }
    text.push('\n');
    verdict_lines(&mut text, trace);
    text
}

/// The oracle's verdict on the whole story, judged from its history alone:
/// per bucket, each dropped write, why, and the root killers that beat it.
fn verdict_lines(text: &mut String, trace: &Trace) {
    let analysis = crate::analysis::analyze(&trace.history);
    let _ = writeln!(text, "oracle, from the history alone:");
    for bucket in &trace.buckets {
        let drops: Vec<String> = analysis
            .drops
            .iter()
            .filter(|drop| &*drop.bucket == bucket)
            .map(|drop| {
                let cause = match drop.cause {
                    Cause::Causality => "causality",
                    Cause::Realtime => "real-time",
                    Cause::Concurrent => "concurrent",
                };
                let killers: Vec<String> = drop
                    .killers
                    .iter()
                    .filter_map(|killer| Some(killer.write.write_id.as_ref()?.to_string()))
                    .collect();
                let victim = drop.victim.write_id.as_ref().map_or("?".to_string(), ToString::to_string);
                format!("{victim} ({cause}, beaten by {})", killers.join(","))
            })
            .collect();
        if drops.is_empty() {
            let _ = writeln!(text, "  {bucket:<12} dropped nothing");
        } else {
            let _ = writeln!(text, "  {bucket:<12} dropped {}", shortened(&drops));
        }
    }
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// One step's lines. What each replica holds is shown where it changed
/// since the step `before` (all of it at the first step, or a new key).
fn step_lines(text: &mut String, step: &TraceStep, before: Option<&TraceStep>) {
    let what = &step.step;
    let key = what.action.key().unwrap_or("x");
    let action = match &what.action {
        Action::Write { replica, value, client, .. } => {
            let by = client.as_ref().map(|client| format!(" by client {client}")).unwrap_or_default();
            format!("write {key} = {} on replica {replica}{by}", compact(value))
        }
        Action::Increment { replica, .. } => format!("increment {key} on replica {replica}"),
        Action::Add { replica, .. } => format!("add an item to {key} on replica {replica}"),
        Action::Replicate { from, to } => format!("replicate from replica {from} to replica {to}"),
        Action::Clock { replica, offset_ms } => format!("set replica {replica}'s clock {offset_ms:+} ms off"),
        Action::Repeat { .. } => "repeat".into(),
    };
    let _ = writeln!(text, "step {} at {} ms: {action}", step.index + 1, what.at_ms);
    let clocks: Vec<String> = step
        .clocks
        .iter()
        .map(|clock| format!("{} reads {:.3} ms", clock.replica, clock.physical_ms))
        .collect();
    let _ = writeln!(text, "  clocks: {}", clocks.join(", "));
    for write in &step.writes {
        let read =
            if write.read.is_empty() { String::new() } else { format!(", read {}", shortened(&write.read)) };
        let _ = writeln!(
            text,
            "  {:<12} wrote {} = {} stamp {}{read}",
            write.bucket,
            write.write_id,
            compact(&write.value),
            compact(&write.stamp)
        );
    }
    if !step.delivered_steps.is_empty() {
        let steps: Vec<String> = step.delivered_steps.iter().map(|index| (index + 1).to_string()).collect();
        let _ = writeln!(text, "  delivered the writes of steps {}", steps.join(", "));
    }
    let same_key = before.is_some_and(|before| before.step.action.key().unwrap_or("x") == key);
    for (bucket, replicas) in &step.state {
        let unchanged = |replica: &u32, siblings: &Vec<crate::replica::core::Sibling>| {
            same_key
                && before
                    .and_then(|before| before.state.get(bucket)?.get(replica))
                    .is_some_and(|was| was == siblings)
        };
        let held: Vec<String> = replicas
            .iter()
            .filter(|(replica, siblings)| !unchanged(replica, siblings))
            .map(|(replica, siblings)| {
                let ids: Vec<String> = siblings
                    .iter()
                    .map(|sibling| format!("{}={}", sibling.write_id, sibling.value.text()))
                    .collect();
                let shown = shortened(&ids);
                format!("r{replica} [{shown}]")
            })
            .collect();
        if !held.is_empty() {
            let _ = writeln!(text, "  {bucket:<12} {key}: {}", held.join("  "));
        }
    }
    // What is lost is shown when it changed: it grows as writes are beaten,
    // and a write that reads a lost write's value forward brings it back.
    let lost_before = |bucket: &str| before.and_then(|before| before.lost.get(bucket));
    let lost: Vec<String> = step
        .lost
        .iter()
        .filter(|(bucket, writes)| lost_before(bucket).map_or(!writes.is_empty(), |was| was != *writes))
        .map(|(bucket, writes)| format!("{bucket} lost {}", shortened(writes)))
        .collect();
    if !lost.is_empty() {
        let _ = writeln!(text, "  LOST: {}", lost.join("; "));
    }
}

/// Whether a transcript reads as its golden file does; the first line that
/// differs, if not.
pub fn differs(got: &str, want: &str) -> Option<String> {
    let mut want_lines = want.lines();
    for (number, got_line) in got.lines().enumerate() {
        match want_lines.next() {
            Some(want_line) if want_line == got_line => {}
            Some(want_line) => {
                return Some(format!(
                    "line {}: expected\n  {want_line}\nbut the scenario played\n  {got_line}",
                    number + 1
                ));
            }
            None => return Some(format!("line {}: the scenario played more: {got_line}", number + 1)),
        }
    }
    want_lines.next().map(|line| format!("the golden file has more: {line}"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::builtin::Folder;

    /// Every scenario, played, reads exactly as its golden file.
    #[test]
    fn every_scenario_plays_as_its_golden_file_says() {
        let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        let dir = experiments.join("scenarios");
        let folder = Folder::scenarios(Some(&experiments));
        let names: Vec<String> = super::super::list(&folder).into_iter().map(|(name, _)| name).collect();
        assert!(names.len() >= 4, "{names:?}");
        let update = std::env::var_os("UPDATE_GOLDEN").is_some();
        for name in &names {
            let trace = super::super::play_named(&folder, name, &[]).expect("the scenario plays");
            let got = transcript(&trace);
            let path = dir.join(golden_file(name));
            if update {
                std::fs::write(&path, &got).expect("write the golden file");
                continue;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("{}: {error} (UPDATE_GOLDEN=1 writes it)", path.display()));
            if let Some(difference) = differs(&got, &want) {
                panic!(
                    "{}: {difference}\n(if the change is meant, UPDATE_GOLDEN=1 rewrites it; read the diff first)",
                    path.display()
                );
            }
        }
    }

    /// The golden file is the telling: a stamp changed in it is a failure.
    #[test]
    fn a_changed_stamp_in_the_expected_output_fails() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/scenarios/figure-8-3.golden");
        let golden = std::fs::read_to_string(path).expect("the golden file");
        // The figure's two stamps: 42.004 s for x = 1 on node 1, 42.003 s
        // for the increment on node 3, which therefore loses.
        assert!(golden.contains("lww-wall     wrote 1:1 = 1 stamp [1700000022004000000,1]"), "{golden}");
        assert!(
            golden.contains("lww-wall     wrote 3:1 = 2 stamp [1700000022003000000,3], read 1:1"),
            "{golden}"
        );
        assert!(golden.contains("LOST: lww-wall lost 3:1"), "{golden}");
        assert_eq!(differs(&golden, &golden), None);
        let tampered = golden.replace("[1700000022003000000,3]", "[1700000022005000000,3]");
        let difference = differs(&golden, &tampered).expect("a changed stamp is a difference");
        assert!(
            difference.contains("1700000022005000000") && difference.starts_with("line "),
            "{difference}"
        );
    }
}
