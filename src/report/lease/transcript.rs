//! A lease trial told line by line, from its history alone: the golden
//! transcripts of DDIA Figures 8-4 and 8-5 (`experiments/lease-stories/`).

use std::fmt::Write as _;

use crate::experiment::spec::Spec;

/// A lease trial told line by line, from its history alone: what the lock
/// service granted, what each worker believed, checked and wrote, and when
/// it was paused or its clock stepped, at ms after the workload started;
/// then the oracle's verdict per guard. The golden transcripts of DDIA
/// Figures 8-4 and 8-5 (`experiments/lease-stories/`) are these.
pub fn transcript(spec: &Spec, records: &[crate::history::Record]) -> String {
    use crate::history::{FaultName, LeaseEvent, Record};
    use crate::lease::worker::WriteOutcome;

    let mut text = format!("# {}\n", spec.description);
    if let Some(lease) = &spec.lease {
        let _ = writeln!(
            text,
            "# {} workers; lease {} ms, acted on with more than {} ms left, renewed below {} ms; work {} ms; they write to {}",
            lease.workers,
            lease.ttl_ms,
            lease.margin_ms,
            lease.renew_ms,
            lease.work_ms,
            match lease.storage_replicas {
                1 => "replica 1".to_string(),
                n => format!("the first {n} replicas, a replica each"),
            }
        );
    }
    let start = records.iter().find_map(|record| match record {
        Record::Trial(trial) => Some(trial.workload_start_ns),
        _ => None,
    });
    let Some(start) = start else { return text + "(no trial)\n" };
    let at = |true_ns: i64| format!("{:>10.3} ms", (true_ns - start) as f64 / 1e6);
    text.push('\n');
    // In true-time order: a fault and a lease event each at its moment.
    let mut lines: Vec<(i64, String)> = Vec::new();
    for record in records {
        let (true_ns, line) = match record {
            Record::Lease(lease) => {
                let (who, token) = (format!("{}", lease.worker), lease.token);
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
                            "{who} writes {wrote} (read {read}){carried} to replica {replica}, sent at {}: {ended}",
                            at(*invoke_ns).trim()
                        )
                    }
                };
                (lease.true_ns, format!("{}  [{}] {what}", at(lease.true_ns), lease.guard))
            }
            Record::Fault(fault) if fault.worker.is_some() => {
                let who = fault.worker.map(|worker| worker.to_string()).unwrap_or_default();
                let what = match fault.fault {
                    FaultName::Resume => format!("{who} resumes (SIGCONT)"),
                    FaultName::Fault(crate::history::FaultKind::Pause) => {
                        format!("{who} is paused (SIGSTOP)")
                    }
                    _ => format!("{who}'s clock: {}", fault.settings),
                };
                (fault.true_ns, format!("{}  {what}", at(fault.true_ns)))
            }
            _ => continue,
        };
        lines.push((true_ns, line));
    }
    lines.sort_by_key(|(true_ns, _)| *true_ns);
    for (_, line) in lines {
        text.push_str(&line);
        text.push('\n');
    }
    let end_ns = records
        .iter()
        .find_map(|record| match record {
            Record::Trial(trial) => Some(trial.workload_end_ns),
            _ => None,
        })
        .unwrap_or(start);
    let leases = records.iter().filter_map(|record| match record {
        Record::Lease(lease) => Some(lease),
        _ => None,
    });
    let finals = records.iter().filter_map(|record| match record {
        Record::Final(last) => Some(last),
        _ => None,
    });
    text.push('\n');
    for (guard, verdict) in crate::analysis::lease::judge(leases, finals, end_ns) {
        let both: f64 = verdict.overlaps.iter().map(|overlap| overlap.ms).sum();
        let _ = writeln!(
            text,
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
        );
    }
    text
}
