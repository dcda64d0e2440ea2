//! A lease trial told line by line, from its history alone: the golden
//! transcripts of DDIA Figures 8-4 and 8-5 (`experiments/lease-stories/`),
//! and the steps the dashboard's step-through plays of them.

use std::fmt::Write as _;

use serde::Serialize;

use crate::analysis::lease::judge;
use crate::clock::Nanos;
use crate::experiment::spec::Spec;
use crate::history::{FaultKind, FaultName, LeaseEvent, Record};
use crate::lease::worker::WriteOutcome;

/// One line of a lease story, at ms after the workload started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoryLine {
    pub at_ms: f64,
    pub say: String,
}

/// A lease trial told: its setup, its lines in true-time order, and the
/// oracle's verdict per guard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseStory {
    pub title: String,
    pub setup: String,
    pub lines: Vec<StoryLine>,
    pub verdicts: Vec<String>,
    /// How long the workload ran, ms.
    pub duration_ms: f64,
}

/// Tells the first trial in `records`: what the lock service granted, what
/// each worker believed, checked and wrote, when a lease ended at the
/// service, and when a worker was paused or its clock stepped; then the
/// verdicts.
pub fn story(spec: &Spec, records: &[Record]) -> LeaseStory {
    let setup = spec.lease.as_ref().map_or_else(String::new, |lease| {
        format!(
            "{} workers; lease {} ms, acted on with more than {} ms left, renewed below {} ms; work {} ms; they write to {}",
            lease.workers,
            lease.ttl_ms,
            lease.margin_ms,
            lease.renew_ms,
            lease.work_ms,
            match lease.storage_replicas {
                1 => "replica 1".to_string(),
                n => format!("the first {n} replicas, a replica each"),
            }
        )
    });
    let trial = records.iter().find_map(|record| match record {
        Record::Trial(trial) => Some((trial.workload_start_ns, trial.workload_end_ns)),
        _ => None,
    });
    let mut told = LeaseStory {
        title: spec.description.clone(),
        setup,
        lines: Vec::new(),
        verdicts: Vec::new(),
        duration_ms: 0.0,
    };
    let Some((start, end)) = trial else { return told };
    told.duration_ms = (end - start) as f64 / 1e6;
    let ms = |true_ns: Nanos| (true_ns - start) as f64 / 1e6;
    let mut lines: Vec<(Nanos, String)> = Vec::new();
    for record in records {
        match record {
            Record::Lease(lease) => {
                let (who, token) = (lease.worker.to_string(), lease.token);
                let what = match &lease.event {
                    LeaseEvent::Granted { ttl_ms } => format!("service grants {who} {token} for {ttl_ms} ms"),
                    LeaseEvent::Renewed { ttl_ms } => {
                        format!("service renews {who}'s {token} for {ttl_ms} ms")
                    }
                    LeaseEvent::Acquired => format!("{who} holds {token}"),
                    LeaseEvent::Checked { valid: true } => format!("{who} checks {token}: valid"),
                    LeaseEvent::Checked { valid: false } => format!("{who} checks {token}: no longer valid"),
                    LeaseEvent::Lost => format!("{who} learns {token} is lost: the renewal was refused"),
                    LeaseEvent::Write { invoke_ns, replica, read, wrote, fenced, outcome } => {
                        let carried = if *fenced { format!(" carrying {token}") } else { String::new() };
                        let ended = match outcome {
                            WriteOutcome::Ok => "accepted",
                            WriteOutcome::Fenced => "REFUSED: the replica has seen a larger token",
                            WriteOutcome::Failed => "failed",
                        };
                        format!(
                            "{who} writes {wrote} (read {read}){carried} to replica {replica}, sent at {:.3} ms: {ended}",
                            ms(*invoke_ns)
                        )
                    }
                };
                lines.push((lease.true_ns, format!("[{}] {what}", lease.guard)));
            }
            Record::Fault(fault) => {
                let Some(worker) = fault.worker else { continue };
                let what = match fault.fault {
                    FaultName::Resume => format!("{worker} resumes (SIGCONT)"),
                    FaultName::Fault(FaultKind::Pause) => format!("{worker} is paused (SIGSTOP)"),
                    _ => format!("{worker}'s clock: {}", fault.settings),
                };
                lines.push((fault.true_ns, what));
            }
            _ => {}
        }
    }
    let leases = records.iter().filter_map(|record| match record {
        Record::Lease(lease) => Some(lease),
        _ => None,
    });
    let finals = records.iter().filter_map(|record| match record {
        Record::Final(last) => Some(last),
        _ => None,
    });
    for (guard, verdict) in judge(leases, finals, end) {
        // When a lease ended at the service: no one is told, and that is the story.
        for span in verdict.leases.iter().filter(|span| span.service_end_ns < end) {
            let believing = span.believed.is_some_and(|(_, to)| to > span.service_end_ns);
            let still = if believing {
                format!(", and {} still believes it holds it", span.worker)
            } else {
                String::new()
            };
            lines.push((
                span.service_end_ns,
                format!("[{guard}] {}'s {} runs out at the service{still}", span.worker, span.token),
            ));
        }
        let both: f64 = verdict.overlaps.iter().map(|overlap| overlap.ms).sum();
        told.verdicts.push(format!(
            "verdict [{guard}]: {}; {} of {} acknowledged writes came from an expired lease; {} refused by fencing; \
             final value {}, {} update(s) lost",
            if verdict.overlaps.is_empty() {
                "never two holders at once".to_string()
            } else {
                format!("two workers believed they held the lease at once for {both:.0} ms")
            },
            verdict.stale_acked,
            verdict.acked,
            verdict.fenced,
            verdict.final_value,
            verdict.lost_updates
        ));
    }
    // In true-time order; stable, so lines at one moment keep their order.
    lines.sort_by_key(|(true_ns, _)| *true_ns);
    told.lines = lines.into_iter().map(|(true_ns, say)| StoryLine { at_ms: ms(true_ns), say }).collect();
    told
}

/// The story as text, one line per event at ms after the workload started,
/// then the verdicts: the golden transcripts' form.
pub fn transcript(spec: &Spec, records: &[Record]) -> String {
    let told = story(spec, records);
    let mut text = format!("# {}\n", told.title);
    if !told.setup.is_empty() {
        let _ = writeln!(text, "# {}", told.setup);
    }
    if told.duration_ms == 0.0 && told.lines.is_empty() {
        return text + "(no trial)\n";
    }
    text.push('\n');
    for line in &told.lines {
        let _ = writeln!(text, "{:>10.3} ms  {}", line.at_ms, line.say);
    }
    text.push('\n');
    for verdict in &told.verdicts {
        let _ = writeln!(text, "{verdict}");
    }
    text
}
