//! Published figures beside the lab's own, for experiments that reproduce
//! a result someone else measured.
//!
//! A spec may list what a paper or a test report found, as `[[published]]`
//! tables: what was measured, where it was published, how many
//! acknowledged writes were lost of how many, and which of the lab's
//! strategies at which sweep value stands for it. The report puts the lab's
//! own count for that strategy and value beside each (summed over trials),
//! then every strategy's count at every value the figures name, so a
//! reader sees the whole field, and the README says why they differ.

use std::fmt::Write as _;

use crate::analysis::PointSummary;
use crate::experiment::spec::PublishedFigure;

/// The report's table: each published figure beside the lab's.
pub fn section(figures: &[PublishedFigure], parameter: &str, summaries: &[PointSummary]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "## Beside the published figures\n");
    let _ = writeln!(
        text,
        "| published | source | lost of acknowledged | the lab: strategy at {parameter} | lost of acknowledged |\n\
         |---|---|---:|---|---:|"
    );
    let share =
        |lost: u64, of: u64| format!("{lost} of {of} ({:.0}%)", 100.0 * lost as f64 / of.max(1) as f64);
    for figure in figures {
        let ours = summaries
            .iter()
            .find(|summary| summary.strategy == figure.strategy && summary.value == figure.value)
            .map_or_else(
                || "not run".to_string(),
                |summary| share(summary.dropped as u64, summary.acked as u64),
            );
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} at {} | {ours} |",
            figure.what,
            figure.source,
            share(figure.lost, figure.acknowledged),
            figure.strategy,
            figure.value
        );
    }
    // Every strategy of the run at each value a figure names.
    let mut values: Vec<f64> = Vec::new();
    for figure in figures {
        if !values.contains(&figure.value) {
            values.push(figure.value);
        }
    }
    let mut strategies: Vec<&str> = Vec::new();
    for summary in summaries {
        if !strategies.contains(&summary.strategy.as_str()) {
            strategies.push(&summary.strategy);
        }
    }
    let _ = writeln!(text, "\nEvery strategy of this run, lost of acknowledged:\n");
    let header: Vec<String> = values.iter().map(|value| format!("{parameter} = {value}")).collect();
    let _ = writeln!(text, "| strategy | {} |\n|---|{}", header.join(" | "), "---:|".repeat(values.len()));
    for strategy in strategies {
        let cells: Vec<String> = values
            .iter()
            .map(|&value| {
                summaries
                    .iter()
                    .find(|summary| summary.strategy == strategy && summary.value == value)
                    .map_or_else(
                        || "not run".to_string(),
                        |summary| share(summary.dropped as u64, summary.acked as u64),
                    )
            })
            .collect();
        let _ = writeln!(text, "| {strategy} | {} |", cells.join(" | "));
    }
    text.push('\n');
    text
}
