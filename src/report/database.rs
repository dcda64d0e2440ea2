//! The report's section on a real database's buckets (`engine =
//! "pglogical"`): what each of pglogical's conflict resolution modes lost,
//! and where its nodes disagree for good.
//!
//! The oracle's rule for a lost write is the lab's everywhere: an
//! acknowledged write is dropped if its item is in *no* node's final value.
//! A pglogical node resolves only the changes it receives and never
//! revisits a row it wrote itself, so a write can lose a conflict on every
//! other node and still sit on its own: not dropped, but lost to anyone who
//! reads from another node, and the nodes disagree about the key for ever.
//! This section counts those writes beside the drops, from the history's
//! `write` and `final` records alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use crate::analysis::Analysis;
use crate::experiment::spec::Spec;
use crate::history::{Outcome, Record};

/// One mode's figures at one sweep point, summed over its trials.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ModeRow {
    pub acked: usize,
    /// Acknowledged writes in no node's final value.
    pub lost_everywhere: usize,
    /// Acknowledged writes in some nodes' final values but not all.
    pub lost_somewhere: usize,
    /// Keys whose final values differ between nodes, and keys written.
    pub diverged_keys: usize,
    pub keys: usize,
}

/// Every `pg-*` bucket's rows, by sweep point, from the history.
pub fn mode_rows(spec: &Spec, records: &[Record]) -> BTreeMap<(usize, String), ModeRow> {
    let modes: HashSet<&str> = spec.pg_buckets().collect();
    // Each key's final item sets, one per node.
    let mut finals: HashMap<(usize, usize, &str, &str), Vec<HashSet<u64>>> = HashMap::new();
    for record in records {
        if let Record::Final(last) = record
            && modes.contains(last.bucket.as_str())
        {
            let items = last.siblings.iter().flat_map(|sibling| sibling.value.iter().copied()).collect();
            finals
                .entry((last.point, last.trial, last.bucket.as_str(), last.key.as_str()))
                .or_default()
                .push(items);
        }
    }
    let mut rows: BTreeMap<(usize, String), ModeRow> = BTreeMap::new();
    for (&(point, _, bucket, _), nodes) in &finals {
        let row = rows.entry((point, bucket.to_string())).or_default();
        row.keys += 1;
        row.diverged_keys += usize::from(nodes.windows(2).any(|pair| pair[0] != pair[1]));
    }
    for record in records {
        let Record::Write(write) = record else { continue };
        if write.outcome != Outcome::Ok || !modes.contains(write.bucket.as_str()) {
            continue;
        }
        let row = rows.entry((write.point, write.bucket.to_string())).or_default();
        row.acked += 1;
        let nodes = finals.get(&(write.point, write.trial, write.bucket.as_str(), write.key.as_str()));
        let holding =
            nodes.map_or(0, |nodes| nodes.iter().filter(|items| items.contains(&write.item)).count());
        let all = nodes.map_or(0, Vec::len);
        match holding {
            0 => row.lost_everywhere += 1,
            held if held < all => row.lost_somewhere += 1,
            _ => {}
        }
    }
    rows
}

/// The section, if the spec has database buckets.
pub fn section(spec: &Spec, records: &[Record], analysis: &Analysis) -> Option<String> {
    spec.pg_buckets().next()?;
    let rows = mode_rows(spec, records);
    let parameter = spec.sweep.parameter.name();
    let values: BTreeMap<usize, f64> = analysis.rows.iter().map(|row| (row.point, row.value)).collect();
    let mut text = String::from("## The real database\n\n");
    text.push_str(
        "The `pg-*` buckets are PostgreSQL servers replicating multi-master with pglogical, one bucket per \
         setting of `pglogical.conflict_resolution` (each a database of its own on the same servers, so every \
         mode had the same clocks and the same operations). Each client operation was one transaction: read \
         the row, write it back with one more item, commit; a commit is an acknowledgement. A node resolves \
         only the changes it receives from its peers, by its mode, and never revisits a row it wrote itself. \
         So a write that loses a conflict on the other nodes can still sit on the node that took it: it is \
         not in the drops above (its item is in *a* final value), but anyone reading from another node has \
         lost it, and the nodes disagree about that key for good. The table counts both. (The drops' causes \
         above assume that the later stamp wins, which is `last_update_wins`' rule; for the other modes read \
         only the counts.)\n\n",
    );
    for bucket in spec.pg_buckets() {
        let mut parts = Vec::new();
        for ((point, _), row) in rows.iter().filter(|((_, name), _)| name == bucket) {
            let value = values.get(point).copied().unwrap_or_default();
            parts.push(format!(
                "at {parameter} = {value}, {} of {} acknowledged writes lost on every node and {} more on some \
                 nodes; the nodes disagree about {} of {} keys (counted in every trial)",
                row.lost_everywhere, row.acked, row.lost_somewhere, row.diverged_keys, row.keys
            ));
        }
        let _ = writeln!(text, "- **{bucket}** ({}): {}.", rule(bucket), parts.join("; "));
    }
    let _ = writeln!(
        text,
        "\n| {parameter} | mode | acked | lost on every node | lost on some nodes | keys the nodes disagree about (every trial's) |\n\
         |---|---|---|---|---|---|"
    );
    let ordered = values
        .iter()
        .flat_map(|(point, value)| spec.pg_buckets().map(move |bucket| (*point, *value, bucket)));
    for (point, value, bucket) in ordered {
        let Some(row) = rows.get(&(point, bucket.to_string())) else { continue };
        let _ = writeln!(
            text,
            "| {value} | {bucket} | {} | {} | {} | {} of {} |",
            row.acked, row.lost_everywhere, row.lost_somewhere, row.diverged_keys, row.keys
        );
    }
    text.push('\n');
    text.push_str(&logged(parameter, &values, records));
    Some(text)
}

/// The servers' own lines on the conflicts they resolved, from the first
/// trial that has any at the sweep's last value (where the clocks are
/// furthest apart), quoted as they logged them.
fn logged(parameter: &str, values: &BTreeMap<usize, f64>, records: &[Record]) -> String {
    let trials = records.iter().filter_map(|record| match record {
        Record::Trial(trial) if !trial.notes.is_empty() => Some(trial),
        _ => None,
    });
    let Some(trial) = trials.max_by_key(|trial| (trial.point, std::cmp::Reverse(trial.trial))) else {
        return "The servers logged no conflict.\n\n".to_string();
    };
    let value = values.get(&trial.point).copied().unwrap_or_default();
    let mut text = format!(
        "What the servers logged about the conflicts they resolved, in trial {} at {parameter} = {value} (a \
         few lines per mode and node. `Resolution` says which row the node kept; the two tuples are the \
         row it held and the incoming one, each with the commit timestamp pglogical compared, stamped by \
         the clock of the node that wrote it):\n\n```text\n",
        trial.trial + 1
    );
    for note in &trial.notes {
        text.push_str(note);
        text.push('\n');
    }
    text.push_str("```\n\n");
    text
}

/// A mode's rule, in words.
fn rule(bucket: &str) -> &'static str {
    use crate::pg::cluster::Resolution;
    match Resolution::of_bucket(bucket) {
        Some(Resolution::LastUpdateWins) => "the incoming change wins if its commit timestamp is later",
        Some(Resolution::FirstUpdateWins) => "the incoming change wins if its commit timestamp is earlier",
        Some(Resolution::ApplyRemote) => "the incoming change always wins",
        Some(Resolution::KeepLocal) => "the row already there always wins",
        None => "a mode this lab does not know",
    }
}
