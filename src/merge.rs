//! Joining a run's parts (`experiment --shard K/N`) into one run.
//!
//! Every part holds the same spec, a `SHARD` file saying which part it is,
//! and the history lines of its trials, each trial's lines after its
//! point's `point` line. Merging checks that the directories are exactly
//! the `N` parts of one run (one spec, every part once, every trial of the
//! sweep once), then writes the history in the run's order, point by
//! point and trial by trial, copying each line as its part wrote it: a
//! simulated run merged is byte for byte the history the unsplit run
//! writes. The oracle and the report then run on the whole, as for any run.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::analysis::{Analysis, analyze};
use crate::experiment::shard::Shard;
use crate::history::{self, Record};
use crate::run_dir::{RunDir, RunDirError};

/// Why parts could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error("{0} is not a part of a sharded run (it has no SHARD file)")]
    NotAPart(PathBuf),
    #[error("the parts are not of one run: {0}")]
    Mismatch(String),
    #[error("{path}, line {line}: {error}")]
    BadLine { path: PathBuf, line: usize, error: String },
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

/// One part, read.
struct Part {
    dir: PathBuf,
    shard: Shard,
    spec_text: String,
    experiment: String,
    lines: Vec<String>,
}

fn read_part(dir: &Path) -> Result<Part, MergeError> {
    let run = RunDir::open(dir);
    let shard = run.shard().ok_or_else(|| MergeError::NotAPart(dir.to_path_buf()))??;
    let spec_text = run.spec_text()?;
    // Its history, plain or compressed (a part run with `--gzip`).
    let (file, text) = history::open_run(dir).map_err(RunDirError::from)?;
    let lines: Result<Vec<String>, _> = std::io::BufRead::lines(text).collect();
    let lines = lines.map_err(|error| RunDirError::Read(file, error.to_string()))?;
    Ok(Part { dir: dir.to_path_buf(), shard, spec_text, experiment: run.experiment(), lines })
}

/// Merges the parts in `dirs` into a new run under `results_dir`; returns
/// it and the oracle's analysis of it.
pub fn merge(dirs: &[PathBuf], results_dir: &Path) -> Result<(RunDir, Analysis), MergeError> {
    let parts = dirs.iter().map(|dir| read_part(dir)).collect::<Result<Vec<_>, _>>()?;
    let Some(first) = parts.first() else { return Err(MergeError::Mismatch("no parts given".into())) };
    let count = first.shard.count;
    for part in &parts {
        if part.shard.count != count {
            return Err(MergeError::Mismatch(format!(
                "{} is part {} but {} is part {}",
                first.dir.display(),
                first.shard,
                part.dir.display(),
                part.shard
            )));
        }
        if part.spec_text != first.spec_text || part.experiment != first.experiment {
            return Err(MergeError::Mismatch(format!(
                "{} and {} ran different specs",
                first.dir.display(),
                part.dir.display()
            )));
        }
    }
    let mut indexes: Vec<usize> = parts.iter().map(|part| part.shard.index).collect();
    indexes.sort_unstable();
    if indexes != (1..=count).collect::<Vec<_>>() {
        return Err(MergeError::Mismatch(format!(
            "a run cut into {count} parts needs each of parts 1 to {count} once; given {indexes:?}"
        )));
    }

    // Each point's line, and each trial's lines in the order its part wrote them.
    let mut points: BTreeMap<usize, String> = BTreeMap::new();
    let mut trials: BTreeMap<(usize, usize), (usize, Vec<String>)> = BTreeMap::new();
    for part in &parts {
        for (number, line) in part.lines.iter().enumerate() {
            let bad = |error: String| MergeError::BadLine {
                path: history::file_of_run(&part.dir),
                line: number + 1,
                error,
            };
            let (record, _) = Record::parse(line.as_bytes()).map_err(|error| bad(error.to_string()))?;
            let Some((point, trial)) = history::place_of(&record) else {
                let Record::Point(point) = &record else { continue };
                match points.get(&point.point) {
                    Some(seen) if seen != line => {
                        return Err(bad(format!("point {} differs between parts", point.point)));
                    }
                    _ => points.insert(point.point, line.clone()),
                };
                continue;
            };
            let (owner, lines) =
                trials.entry((point, trial)).or_insert_with(|| (part.shard.index, Vec::new()));
            if *owner != part.shard.index {
                return Err(bad(format!(
                    "trial {trial} of point {point} is in parts {owner} and {}",
                    part.shard.index
                )));
            }
            lines.push(line.clone());
        }
    }

    // Every trial of the sweep, once.
    let spec = RunDir::open(&first.dir).spec()?;
    let expected: Vec<(usize, usize)> =
        spec.plans().iter().map(|(plan, _)| (plan.point, plan.trial)).collect();
    let found: Vec<(usize, usize)> = trials.keys().copied().collect();
    if found != expected {
        let missing: Vec<String> = expected
            .iter()
            .filter(|place| !trials.contains_key(place))
            .map(|(point, trial)| format!("point {point} trial {trial}"))
            .collect();
        return Err(MergeError::Mismatch(format!(
            "the parts do not hold the whole sweep; missing: {}",
            if missing.is_empty() {
                "nothing, but trials outside the spec".into()
            } else {
                missing.join(", ")
            }
        )));
    }

    let run = RunDir::create(results_dir, &first.experiment, spec.seed)?;
    run.write_text(crate::experiment::SPEC_FILE, &first.spec_text)?;
    let path = run.path().join(history::HISTORY_FILE);
    let file = std::fs::File::create(&path).map_err(|error| MergeError::Write(path.clone(), error))?;
    let mut out = std::io::BufWriter::new(file);
    let (mut records, mut reader) = (Vec::new(), history::Lines::default());
    for (point, line) in &points {
        let in_point = trials.range((*point, 0)..=(*point, usize::MAX)).flat_map(|(_, (_, lines))| lines);
        for line in std::iter::once(line).chain(in_point) {
            writeln!(out, "{line}").map_err(|error| MergeError::Write(path.clone(), error))?;
            reader.push(line, &mut records).map_err(|error| MergeError::Mismatch(error.to_string()))?;
        }
    }
    out.flush().map_err(|error| MergeError::Write(path.clone(), error))?;
    let analysis = analyze(&records);
    run.write_results(&spec, &records, &analysis, None)?;
    Ok((run, analysis))
}
