//! Experiments: sweep a clock or network fault, drive a workload, keep the history.
//!
//! An experiment is a TOML [`spec`]: a cluster size, strategies, a
//! read-modify-write [`workload`], clocks and network [`faults`], and one
//! swept parameter (for `skew`, how far apart the replicas' clocks are).
//! This module says *what* an experiment does: the spec, checked against
//! [`limits`]; the workload's schedule; the faults and their
//! [`timeline`](faults::timeline) of typed operations and records. *How* a
//! trial is carried out is an engine's business (`crate::engine`: real
//! processes or the simulator, one protocol for both), and what it meant is
//! the oracle's (`analysis`) and the report's. The module `runner`, above
//! them all, strings them together; this one knows nothing of engines,
//! the oracle or the reports, so they can all read its types without a loop.

pub mod chaos;
pub mod faults;
#[cfg(test)]
mod hostile;
pub mod keys;
pub mod lease;
pub mod limits;
pub mod quiz;
pub mod run_id;
pub mod shard;
pub mod spec;
pub mod stop;
pub mod workload;

use std::path::{Path, PathBuf};

use self::spec::{Spec, SpecError};
use crate::builtin::Folder;

/// The spec as run, saved beside its results.
pub const SPEC_FILE: &str = "spec.toml";
/// Marks a run as its experiment's reference run: the one the README
/// quotes and the dashboard's quiz grades against (`just reference NAME`
/// writes it). Its text says so, for whoever finds it.
pub const REFERENCE_FILE: &str = "REFERENCE";

/// Why the spec an experiment names cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(
        "no experiment {name:?} in {folder} (experiments: {known}; `clocklab experiment --list` describes them)"
    )]
    UnknownExperiment { name: String, folder: String, known: String },
    #[error("no spec file {0}")]
    NoSpecFile(PathBuf),
    #[error("{0}")]
    UnreadableSpec(String),
    #[error(transparent)]
    Plugin(#[from] crate::strategy::plugin::PluginFailure),
}

/// Which experiment, and how.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// An experiment name (`skew`, looked up in `experiments`) or a path
    /// to a spec file.
    pub experiment: String,
    /// Where experiment names are looked up: a directory, or the built-in specs.
    pub experiments: Folder,
    /// Use the spec's `[quick]` overrides.
    pub quick: bool,
    /// Overrides the spec's seed.
    pub seed: Option<u64>,
    /// Overrides the spec's engine (`--sim`, `--system pglogical`).
    pub engine: Option<crate::history::EngineKind>,
    /// Overrides the number of trials per point (after `quick`).
    pub trials: Option<usize>,
    /// Plugin strategies to run beside the spec's (`--strategy`).
    pub plugins: Vec<PathBuf>,
}

/// Finds and loads the spec `wanted` names, with its overrides applied.
/// Returns the experiment's name and the spec.
pub fn load_spec(options: &Wanted) -> Result<(String, Spec), LookupError> {
    let given = Path::new(&options.experiment);
    let is_path =
        given.extension().is_some_and(|extension| extension == "toml") || given.components().count() > 1;
    let (name, source, mut spec) = if is_path {
        if !given.is_file() {
            return Err(LookupError::NoSpecFile(given.to_path_buf()));
        }
        let name = given.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        (name, given.to_path_buf(), Spec::load(given)?)
    } else {
        let file = format!("{}.toml", options.experiment);
        if !options.experiments.has(&file) {
            return Err(LookupError::UnknownExperiment {
                name: options.experiment.clone(),
                folder: options.experiments.to_string(),
                known: options.experiments.toml_stems().join(", "),
            });
        }
        let text = options.experiments.read_to_string(&file).map_err(LookupError::UnreadableSpec)?;
        let source = PathBuf::from(options.experiments.describe_file(&file));
        let spec = Spec::parse(&text, &source)?;
        (options.experiment.clone(), source, spec)
    };
    if options.quick {
        spec = spec.quick();
    }
    if let Some(seed) = options.seed {
        spec.seed = seed;
    }
    if let Some(engine) = options.engine {
        spec.engine = engine;
        // `--system pglogical` on a spec written for the lab: every mode
        // beside the lab's strategies.
        if engine == crate::history::EngineKind::Pglogical && spec.pg_buckets().next().is_none() {
            let modes = crate::pg::cluster::Resolution::ALL.iter().map(|mode| mode.bucket().to_string());
            spec.strategies.extend(modes);
        }
    }
    if let Some(trials) = options.trials {
        spec.trials = trials.max(1);
    }
    // What the overrides made of the spec must be within the limits too.
    spec.check_work(&source)?;
    spec.plugins.extend(options.plugins.iter().map(crate::strategy::plugin::PluginSpec::at));
    if !spec.plugins.is_empty() {
        spec.start_plugins()?;
    }
    Ok((name, spec))
}

/// Every experiment in `folder` with its one-line description (the first
/// sentence of the spec's `description`), or why its spec does not load.
pub fn list(folder: &Folder) -> Vec<(String, Result<String, String>)> {
    specs(folder)
        .into_iter()
        .map(|(name, spec)| (name, spec.map(|spec| first_sentence(&spec.description))))
        .collect()
}

/// Every experiment in `folder` with its spec, or why it does not load.
pub fn specs(folder: &Folder) -> Vec<(String, Result<Spec, String>)> {
    folder
        .toml_stems()
        .into_iter()
        .map(|name| {
            let file = format!("{name}.toml");
            let spec = folder.read_to_string(&file).and_then(|text| {
                Spec::parse(&text, Path::new(&folder.describe_file(&file))).map_err(|error| error.to_string())
            });
            (name, spec)
        })
        .collect()
}

/// The first sentence of `text`, on one line.
pub fn first_sentence(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.find(". ") {
        Some(end) => line[..=end].to_string(),
        None => line,
    }
}
