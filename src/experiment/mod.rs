//! Experiments: sweep a clock or network fault, drive a workload, keep the history.
//!
//! An experiment is a TOML [`spec`]: a cluster size, strategies, a
//! read-modify-write [`workload`], clocks and network faults, and one swept
//! parameter (for `skew`, how far apart the replicas' clocks are). For every
//! sweep point and every trial the runner starts a fresh [`cluster`] of real
//! replica processes, runs one [`trial`], and appends what happened to the
//! [`history`]. At the end the oracle (`analysis`) reads the history alone and
//! counts what each strategy silently dropped; `report` writes the summary,
//! plots and `report.md`.
//!
//! The runner owns its child processes: they die with the cluster on
//! success, on error and on Ctrl-C (see [`cluster`]).

pub mod cluster;
pub mod faults;
pub mod history;
pub mod spec;
pub mod trial;
pub mod workload;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use self::cluster::ClusterError;
use self::history::{HistoryError, HistoryWriter, PointRecord, Record};
use self::spec::{Spec, SpecError};
use self::trial::TrialPlan;
use self::workload::Counters;

/// The spec as run, saved beside its results.
pub const SPEC_FILE: &str = "spec.toml";

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("no experiment {name:?}: {path} does not exist (experiments: {known})")]
    UnknownExperiment { name: String, path: PathBuf, known: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("cannot write {0}: {1}")]
    Output(PathBuf, std::io::Error),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("interrupted: the replicas were stopped and the unfinished run removed")]
    Interrupted,
}

/// What to run and where to put it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// An experiment name (`skew`, looked up in `experiments_dir`) or a path
    /// to a spec file.
    pub experiment: String,
    pub experiments_dir: PathBuf,
    pub results_dir: PathBuf,
    /// Use the spec's `[quick]` overrides.
    pub quick: bool,
    /// Overrides the spec's seed.
    pub seed: Option<u64>,
}

/// Finds and loads the spec `options` names, with its overrides applied.
/// Returns the experiment's name and the spec.
pub fn load_spec(options: &RunOptions) -> Result<(String, Spec), ExperimentError> {
    let given = Path::new(&options.experiment);
    let path =
        if given.extension().is_some_and(|extension| extension == "toml") || given.components().count() > 1 {
            given.to_path_buf()
        } else {
            options.experiments_dir.join(format!("{}.toml", options.experiment))
        };
    if !path.exists() {
        return Err(ExperimentError::UnknownExperiment {
            name: options.experiment.clone(),
            path,
            known: toml_stems(&options.experiments_dir).join(", "),
        });
    }
    let name = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let mut spec = Spec::load(&path)?;
    if options.quick {
        spec = spec.quick();
    }
    if let Some(seed) = options.seed {
        spec.seed = seed;
    }
    Ok((name, spec))
}

/// The names (file stems) of the `.toml` files in `dir`, sorted.
pub fn toml_stems(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            if path.extension()? != "toml" {
                return None;
            }
            Some(path.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// Runs an experiment end to end and returns the directory of its results.
/// If `interrupt` completes first, the run stops, its replicas are killed
/// and its unfinished directory is removed.
pub async fn run(
    options: &RunOptions,
    interrupt: impl Future<Output = ()>,
) -> Result<PathBuf, ExperimentError> {
    let started = Instant::now();
    let (name, spec) = load_spec(options)?;
    let run_id = format!("{}-seed{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"), spec.seed);
    let run_dir = options.results_dir.join(&name).join(&run_id);
    std::fs::create_dir_all(&run_dir).map_err(|error| ExperimentError::Output(run_dir.clone(), error))?;
    let result = tokio::select! {
        result = run_into(&name, &spec, &run_dir, options.quick) => result,
        () = interrupt => Err(ExperimentError::Interrupted),
    };
    if result.is_err() {
        // A run that did not finish would look like a result; remove it.
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    result?;
    eprintln!("results in {}", run_dir.display());
    eprintln!("wall time {:.1} s", started.elapsed().as_secs_f64());
    Ok(run_dir)
}

async fn run_into(name: &str, spec: &Spec, run_dir: &Path, quick: bool) -> Result<(), ExperimentError> {
    let spec_text = toml::to_string(spec).unwrap_or_default();
    let spec_path = run_dir.join(SPEC_FILE);
    std::fs::write(&spec_path, spec_text).map_err(|error| ExperimentError::Output(spec_path, error))?;
    let points = spec.sweep.values.len();
    eprintln!(
        "experiment {name}{}: {} = {:?}, {} trial(s) of {} ms, {} replicas, seed {}",
        if quick { " (quick)" } else { "" },
        spec.sweep.parameter.name(),
        spec.sweep.values,
        spec.trials,
        spec.duration_ms,
        spec.replicas,
        spec.seed
    );

    let mut history = HistoryWriter::create(&run_dir.join(history::HISTORY_FILE))?;
    let mut records = Vec::new();
    let counters = Arc::new(Counters::default());
    let mut progress = Progress::new((points * spec.trials) as u64, counters.clone());
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap_or_default();
    let token = format!("clocklab-{}-{}", std::process::id(), spec.seed);
    for (point, &value) in spec.sweep.values.iter().enumerate() {
        let parameter = spec.sweep.parameter.name();
        let mut params = serde_json::Map::new();
        params.insert("parameter".into(), json!(parameter));
        params.insert(parameter.into(), json!(value));
        let record = Record::Point(PointRecord { point, params });
        history.append(&record)?;
        records.push(record);
        for trial in 0..spec.trials {
            progress.start_trial(parameter, value, trial, spec.trials);
            let data =
                tempfile::tempdir().map_err(|error| ExperimentError::Output(std::env::temp_dir(), error))?;
            let plan = TrialPlan { point, trial, value };
            let outcome =
                trial::run(spec, plan, data.path(), &token, client.clone(), counters.clone()).await?;
            if !outcome.converged {
                progress.println(format!("point {point} trial {trial}: replicas did not converge"));
            }
            for record in outcome.records {
                history.append(&record)?;
                records.push(record);
            }
            history.flush()?;
            progress.finish_trial();
        }
    }
    progress.finish();

    let analysis = crate::analysis::analyze(&records);
    crate::report::write_run(run_dir, name, spec, &records, &analysis)?;
    eprint!("{}", crate::report::text_table(&analysis));
    eprintln!(
        "{} writes acknowledged, {} attempted",
        counters.acked.load(Ordering::Relaxed),
        counters.attempted.load(Ordering::Relaxed)
    );
    Ok(())
}

/// The progress display: a bar on a terminal, a line per trial otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    counters: Arc<Counters>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn new(trials: u64, counters: Arc<Counters>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { bar: None, counters, ticker: None };
        }
        let bar = ProgressBar::new(trials);
        let style = ProgressStyle::with_template("{elapsed:>4} [{bar:30}] trial {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar: Some(bar), counters, ticker: None }
    }

    fn start_trial(&mut self, parameter: &str, value: f64, trial: usize, trials: usize) {
        let label = format!("{parameter} = {value}, trial {}/{trials}", trial + 1);
        match &self.bar {
            Some(bar) => {
                let (bar, counters) = (bar.clone(), self.counters.clone());
                if let Some(ticker) = self.ticker.take() {
                    ticker.abort();
                }
                self.ticker = Some(tokio::spawn(async move {
                    loop {
                        let acked = counters.acked.load(Ordering::Relaxed);
                        bar.set_message(format!("{label}: {acked} writes acked"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }));
            }
            None => eprintln!("{label}"),
        }
    }

    fn finish_trial(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn println(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}
