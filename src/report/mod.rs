//! Reports: what a run's numbers are, as files people and programs read.
//!
//! For a run directory this writes, from the oracle's [`Analysis`]:
//!
//! - `summary.json` and `summary.csv`: one row per sweep point, trial and
//!   strategy (docs/design.md, "Results"), for scripts and spreadsheets;
//! - `drops.json`: every dropped write with its killers and the rule that
//!   dropped it, for the dashboard's "why was it dropped";
//! - the [`plots`], as SVG and PNG;
//! - `report.md`: the result in plain words, with its numbers ([`markdown`]).
//!
//! `clocklab analyze RUN_DIR` rebuilds all of it from `history.jsonl` and
//! `spec.toml` alone (`crate::run_dir::RunDir::reanalyze`).
//!
//! Every file is first written into a fresh staging directory inside the
//! run, then renamed into place, `summary.json` last (its presence marks a
//! run as finished). A rename replaces a file whole, so a reader, or a
//! second `analyze` of the same run, never sees a half-written file, and an
//! `analyze` that fails while writing leaves the previous files as they were.

pub mod axis;
pub mod compare;
pub mod costs;
pub mod database;
mod drops_file;
pub mod figures;
pub mod heatmap;
mod judging;
pub mod keeping_up;
pub mod lease;
pub mod markdown;
pub mod nemesis;
pub mod offsets;
pub mod palette;
pub mod plots;
pub mod published;
pub mod sweep;
pub mod timeline;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::analysis::{Analysis, DroppedWrite, summarize};
use crate::experiment::spec::{Spec, SpecError};
use crate::history::{self, HistoryError, Record};

pub use self::drops_file::DropsWriter;
use self::figures::RunFigures;
pub use self::judging::{Judged, Judging};
use self::plots::PlotError;

pub const SUMMARY_JSON: &str = "summary.json";
pub const SUMMARY_CSV: &str = "summary.csv";
pub const DROPS_JSON: &str = "drops.json";
/// The same, gzip-compressed: written instead of `drops.json` when the
/// run's history is compressed (a long run's drops are many).
pub const DROPS_JSON_GZ: &str = "drops.json.gz";

/// The text of the drops of the run in `run_dir`, from `drops.json` or, if
/// only that is there, `drops.json.gz`; with the path it came from.
pub fn read_drops(run_dir: &Path) -> Result<(PathBuf, String), (PathBuf, std::io::Error)> {
    use std::io::Read as _;
    let plain = run_dir.join(DROPS_JSON);
    let compressed = run_dir.join(DROPS_JSON_GZ);
    if plain.exists() || !compressed.exists() {
        return std::fs::read_to_string(&plain)
            .map(|text| (plain.clone(), text))
            .map_err(|error| (plain, error));
    }
    let mut text = String::new();
    std::fs::File::open(&compressed)
        .and_then(|file| flate2::read::MultiGzDecoder::new(file).read_to_string(&mut text))
        .map(|_| (compressed.clone(), text))
        .map_err(|error| (compressed, error))
}
pub const REPORT_MD: &str = "report.md";
/// A lease run's verdicts, per sweep point and guard (`analysis::lease::LeaseRow`).
pub const LEASE_JSON: &str = "lease.json";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, String),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Spilled(#[from] crate::analysis::spilled::SpilledError),
}

/// Whether the report draws `drop` (the timeline's trial: the largest
/// point's first), so a run that writes its drops as it goes keeps it.
pub fn shows(spec: &Spec, drop: &DroppedWrite) -> bool {
    sweep::largest_point(spec).is_some_and(|(point, _)| drop.point == point && drop.trial == 0)
}

/// Whether the report reads `record` besides the oracle's verdicts, so a
/// run keeps it once its trial is judged: everything but the key-value
/// workload's writes and final states (the oracle's alone), and samples of
/// trials other than each point's first (the offsets plot shows that one);
/// but a lease run's and a real database's writes and final states, which
/// their own sections count.
pub fn reads(spec: &Spec, record: &Record) -> bool {
    let counted_here = |bucket: &str| spec.lease.is_some() || spec.pg_buckets().any(|pg| pg == bucket);
    match record {
        Record::Write(write) => counted_here(&write.bucket),
        Record::Final(last) => counted_here(&last.bucket),
        Record::Sample(sample) => sample.trial == 0,
        Record::Point(_) | Record::Fault(_) | Record::Trial(_) | Record::Lease(_) => true,
    }
}

/// Writes every report file of a run into `run_dir`, each one whole (see
/// the module docs).
pub fn write_run(
    run_dir: &Path,
    experiment: &str,
    spec: &Spec,
    records: &[Record],
    analysis: &Analysis,
    drops: Option<DropsWriter>,
) -> Result<(), ReportError> {
    let fail = |error: std::io::Error| ReportError::Write(run_dir.to_path_buf(), error.to_string());
    let staging = tempfile::Builder::new().prefix(".report-").tempdir_in(run_dir).map_err(fail)?;
    // A compressed history's drops are compressed too.
    let compressed = history::file_of_run(run_dir).extension().is_some_and(|extension| extension == "gz");
    if spec.lease.is_none() {
        // Every drop in `analysis`, unless a run wrote them as it went.
        let drops = match drops {
            Some(drops) => drops,
            None => {
                let mut drops = DropsWriter::create(staging.path(), compressed)?;
                drops.append(&analysis.drops)?;
                drops
            }
        };
        drops.finish(staging.path())?;
    }
    write_files(staging.path(), experiment, spec, records, analysis)?;
    // Only one form of the drops stays: the one written now.
    let stale = run_dir.join(if compressed { DROPS_JSON } else { DROPS_JSON_GZ });
    if stale.exists() {
        std::fs::remove_file(&stale).map_err(fail)?;
    }
    let mut written: Vec<PathBuf> = std::fs::read_dir(staging.path())
        .map_err(fail)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    written.sort_by_key(|path| (path.file_name().is_some_and(|name| name == SUMMARY_JSON), path.clone()));
    for path in written {
        let Some(name) = path.file_name() else { continue };
        let target = run_dir.join(name);
        std::fs::rename(&path, &target).map_err(|error| ReportError::Write(target, error.to_string()))?;
    }
    Ok(())
}

/// Writes every report file into `dir`.
fn write_files(
    run_dir: &Path,
    experiment: &str,
    spec: &Spec,
    records: &[Record],
    analysis: &Analysis,
) -> Result<(), ReportError> {
    if spec.lease.is_some() {
        return write_lease_files(run_dir, experiment, spec, records);
    }
    write_json(&run_dir.join(SUMMARY_JSON), &analysis.rows)?;
    write_csv(&run_dir.join(SUMMARY_CSV), analysis)?;
    let figures = RunFigures::build(
        experiment,
        spec,
        summarize(&analysis.rows),
        &analysis.kinds,
        &analysis.drops,
        records,
    );
    figures.write(run_dir)?;
    // A two-parameter sweep: the heatmap shows every pair; the other plots
    // and the paragraphs show the middle value of the second parameter.
    let heatmap = figures.heatmap.as_ref().zip(spec.sweep.across.as_ref()).map(|(input, across)| {
        heatmap::section(input, across.values.get(across.values.len() / 2).copied().unwrap_or_default())
    });
    let shown = markdown::Figures {
        timeline: figures.timeline.as_ref(),
        offsets: figures.offsets.as_ref(),
        heatmap: heatmap.as_deref(),
    };
    let summaries = &figures.summaries;
    let mut report = markdown::report(experiment, spec, analysis, summaries, &shown);
    // A run that did not keep to its schedule says so first.
    if let Some(behind) = keeping_up::fell_behind(spec, records, &analysis.rows) {
        let heading = "## What happened\n\n";
        let at = report.find(heading).map_or(0, |at| at + heading.len());
        report.insert_str(at, &format!("**{}**\n\n", behind.sentence()));
    }
    // Before the explanation and the table of numbers, after what happened.
    let at = report.find("## How to read it").unwrap_or(report.len());
    if !spec.published.is_empty() {
        report.insert_str(at, &published::section(&spec.published, spec.sweep.parameter.name(), summaries));
    }
    if spec.chaos.is_some() {
        report.insert_str(at, &nemesis::section(experiment, spec.seed, records, analysis));
    }
    if let Some(section) = database::section(spec, records, analysis) {
        report.insert_str(at, &section);
    }
    let path = run_dir.join(REPORT_MD);
    std::fs::write(&path, report).map_err(|error| ReportError::Write(path, error.to_string()))
}

/// A lease run's files: its verdicts (`lease.json`), its plots, its
/// report, and an empty `summary.json` (it has no key-value workload; the
/// summary still marks the run finished).
fn write_lease_files(
    run_dir: &Path,
    experiment: &str,
    spec: &Spec,
    records: &[Record],
) -> Result<(), ReportError> {
    let rows = crate::analysis::lease::judge_run(records);
    write_json(&run_dir.join(LEASE_JSON), &rows)?;
    let figures = RunFigures::for_lease(experiment, spec, &rows, records);
    figures.write(run_dir)?;
    let path = run_dir.join(REPORT_MD);
    let report = figures.lease.as_ref().map(|lease| lease::report(experiment, spec, &rows, lease));
    std::fs::write(&path, report.unwrap_or_default())
        .map_err(|error| ReportError::Write(path, error.to_string()))?;
    write_json(&run_dir.join(SUMMARY_JSON), &Vec::<crate::analysis::SummaryRow>::new())
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), ReportError> {
    let fail = |error: String| ReportError::Write(path.to_path_buf(), error);
    let text = serde_json::to_string_pretty(value).map_err(|error| fail(error.to_string()))?;
    std::fs::write(path, text).map_err(|error| fail(error.to_string()))
}

fn write_csv(path: &Path, analysis: &Analysis) -> Result<(), ReportError> {
    let fail = |error: csv::Error| ReportError::Write(path.to_path_buf(), error.to_string());
    let mut writer = csv::Writer::from_path(path).map_err(fail)?;
    for row in &analysis.rows {
        writer.serialize(row).map_err(fail)?;
    }
    writer.flush().map_err(|error| ReportError::Write(path.to_path_buf(), error.to_string()))
}

/// A fixed-width table of the per-point results, for the terminal.
pub fn text_table(analysis: &Analysis) -> String {
    let summaries = summarize(&analysis.rows);
    let mut table = String::new();
    let parameter = summaries.first().map(|summary| summary.parameter.as_str()).unwrap_or("value");
    // As wide as the longest bucket's name (`pg-first-update-wins`), at least 11.
    let width = summaries.iter().map(|summary| summary.strategy.len()).max().unwrap_or(0).max(11);
    let _ = writeln!(
        table,
        "{parameter:>10}  {:<width$} {:>7} {:>8} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "strategy", "acked", "dropped", "causality", "realtime", "concurrent", "siblings", "diverged"
    );
    for summary in &summaries {
        let _ = writeln!(
            table,
            "{:>10}  {:<width$} {:>7} {:>7.2}% {:>9} {:>9} {:>10} {:>9} {:>9}",
            summary.value,
            summary.strategy,
            summary.acked,
            summary.dropped_percent_mean,
            summary.dropped_causality,
            summary.dropped_realtime,
            summary.dropped_concurrent,
            summary.siblings,
            summary.diverged_keys
        );
    }
    table
}
