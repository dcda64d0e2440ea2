//! A run's directory, and the one type that reads and writes its files.
//!
//! Every run lives in `results/EXPERIMENT/RUN-ID/` (see
//! [`run_id`](crate::experiment::run_id)) and holds:
//!
//! - `spec.toml`: the spec as run, every default and override spelled out;
//! - `history.jsonl` (or `history.jsonl.gz`): everything that happened
//!   (`crate::history`), the oracle's only input;
//! - `summary.json`, `summary.csv`, `drops.json`, `report.md` and the plots,
//!   written from the oracle's analysis (`crate::report`), `summary.json`
//!   last: its presence marks the run as finished;
//! - `REFERENCE`, if it is its experiment's reference run (the one the
//!   README quotes and the quiz grades).
//!
//! [`RunDir`] is the only code above the engines that knows these names:
//! the runner makes a run through it, `clocklab analyze` reads one back,
//! and the dashboard lists and shows them through it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::analysis::lease::LeaseRow;
use crate::analysis::{Analysis, DroppedWrite, SummaryRow, analyze};
use crate::experiment::shard::{SHARD_FILE, Shard};
use crate::experiment::spec::{Spec, SpecError};
use crate::experiment::{REFERENCE_FILE, SPEC_FILE, run_id};
use crate::history::{self, EngineKind, HistoryError, HistoryWriter, Record};
use crate::report::{self, DROPS_JSON, LEASE_JSON, REPORT_MD, ReportError, SUMMARY_JSON};

/// Why a run's file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, String),
    /// The spec as run cannot be written down (a number TOML cannot hold).
    #[error("cannot write the spec as run into {0}: {1}")]
    Spec(PathBuf, String),
    #[error(transparent)]
    SavedSpec(#[from] SpecError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// One run's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Makes a new, empty run directory for `experiment` under
    /// `results_dir`, named for when it starts and its seed.
    pub fn create(results_dir: &Path, experiment: &str, seed: u64) -> Result<Self, RunDirError> {
        let experiment_dir = results_dir.join(experiment);
        let (_, path) = run_id::create_run_dir(&experiment_dir, chrono::Utc::now(), seed)
            .map_err(|error| RunDirError::Write(experiment_dir, error))?;
        Ok(Self { path })
    }

    /// The run in `path`, made earlier.
    pub fn open(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run's id: its directory's name.
    pub fn id(&self) -> String {
        self.path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// The experiment it ran: the name of the directory it is in.
    pub fn experiment(&self) -> String {
        let path = self.path.canonicalize().unwrap_or_else(|_| self.path.clone());
        path.parent()
            .and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into())
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Saves the spec as run.
    pub fn write_spec(&self, spec: &Spec) -> Result<(), RunDirError> {
        let path = self.file(SPEC_FILE);
        let text =
            toml::to_string(spec).map_err(|error| RunDirError::Spec(path.clone(), error.to_string()))?;
        std::fs::write(&path, text).map_err(|error| RunDirError::Write(path, error))
    }

    /// Whether the run has a saved spec (a directory without one is not a run).
    pub fn has_spec(&self) -> bool {
        self.file(SPEC_FILE).exists()
    }

    /// The spec as run.
    pub fn spec(&self) -> Result<Spec, RunDirError> {
        Ok(Spec::load(&self.file(SPEC_FILE))?)
    }

    /// The spec as run, as its file says it.
    pub fn spec_text(&self) -> Result<String, RunDirError> {
        self.read_text(SPEC_FILE)
    }

    /// The engine the run ran on, as its saved spec says (a spec without
    /// `engine`, as every run before the simulator: real processes).
    pub fn engine(&self) -> EngineKind {
        #[derive(serde::Deserialize)]
        struct EngineOnly {
            #[serde(default)]
            engine: EngineKind,
        }
        self.spec_text()
            .ok()
            .and_then(|text| toml::from_str::<EngineOnly>(&text).ok())
            .map_or(EngineKind::Processes, |spec| spec.engine)
    }

    /// A writer of the run's history, from its first record; compressed
    /// as it goes (`history.jsonl.gz`) if `gzip`.
    pub fn history_writer(&self, gzip: bool) -> Result<HistoryWriter, RunDirError> {
        let name = if gzip { history::HISTORY_FILE_GZ } else { history::HISTORY_FILE };
        Ok(HistoryWriter::create(&self.file(name))?)
    }

    /// The run's whole history, plain or compressed.
    pub fn history(&self) -> Result<Vec<Record>, RunDirError> {
        Ok(history::read_run(&self.path)?)
    }

    /// Writes the summary, drops, plots and report of `analysis` (each
    /// file whole, `summary.json` last).
    /// Writes the report of `analysis`; its drops are `drops` if the run
    /// wrote them as it went, else `analysis.drops`.
    pub fn write_results(
        &self,
        spec: &Spec,
        records: &[Record],
        analysis: &Analysis,
        drops: Option<report::DropsWriter>,
    ) -> Result<(), RunDirError> {
        Ok(report::write_run(&self.path, &self.experiment(), spec, records, analysis, drops)?)
    }

    /// Runs the oracle again on the saved history and rewrites the results;
    /// returns the analysis (of its drops, those the report draws: every
    /// one is in the drops file).
    ///
    /// The history is read a line at a time and judged a trial at a time
    /// (`report::Judging`), so a soak's history need not fit in memory. A
    /// history whose trials are not each in one piece (written by hand,
    /// say) is read whole and judged whole instead.
    pub fn reanalyze(&self) -> Result<Analysis, RunDirError> {
        use std::io::BufRead as _;
        let spec = self.spec()?;
        let (path, lines) = history::open_run(&self.path)?;
        let compressed = path.extension().is_some_and(|extension| extension == "gz");
        let mut judging = report::Judging::new(&spec, &self.path, compressed)?;
        let mut reader = history::Lines::default();
        // The trial being read, and the trials judged.
        let (mut trial, mut place) = (Vec::new(), None);
        let mut judged = std::collections::HashSet::new();
        for (number, line) in lines.lines().enumerate() {
            let line = line.map_err(|error| HistoryError::Read(path.clone(), error))?;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |error| HistoryError::Parse { path: path.clone(), line: number + 1, error };
            let parsed = Record::parse(line.as_bytes()).map_err(bad)?;
            let here = history::place_of(&parsed.0);
            if here != place && !trial.is_empty() {
                judging.trial(std::mem::take(&mut trial), None)?;
            }
            place = here;
            match here {
                None => judging.point(parsed.0),
                Some(_) if !judged.insert(here) && trial.is_empty() => {
                    judging.discard()?;
                    return self.reanalyze_whole(&spec);
                }
                Some(_) => reader.push_parsed(parsed, &mut trial).map_err(bad)?,
            }
        }
        if !trial.is_empty() {
            judging.trial(trial, None)?;
        }
        let report::Judged { analysis, kept, drops } = judging.finish();
        self.write_results(&spec, &kept, &analysis, drops)?;
        Ok(analysis)
    }

    /// The same, the history read whole.
    fn reanalyze_whole(&self, spec: &Spec) -> Result<Analysis, RunDirError> {
        let records = self.history()?;
        let analysis = analyze(&records);
        self.write_results(spec, &records, &analysis, None)?;
        Ok(analysis)
    }

    /// Whether the run finished: its summary is written.
    pub fn is_finished(&self) -> bool {
        self.file(SUMMARY_JSON).exists()
    }

    /// The summary's rows: one per sweep point, trial and strategy.
    pub fn summary(&self) -> Result<Vec<SummaryRow>, RunDirError> {
        let text = self.read_text(SUMMARY_JSON)?;
        serde_json::from_str(&text)
            .map_err(|error| RunDirError::Read(self.file(SUMMARY_JSON), error.to_string()))
    }

    /// Every dropped write, with its killers and the rule that dropped it
    /// (none in a lease run, which has no key-value workload).
    pub fn drops(&self) -> Result<Vec<DroppedWrite>, RunDirError> {
        if self.is_lease_run() && !self.file(DROPS_JSON).exists() {
            return Ok(Vec::new());
        }
        let (path, text) = report::read_drops(&self.path)
            .map_err(|(path, error)| RunDirError::Read(path, error.to_string()))?;
        serde_json::from_str(&text).map_err(|error| RunDirError::Read(path, error.to_string()))
    }

    /// Whether it is a lease run: it has the lease oracle's verdicts.
    pub fn is_lease_run(&self) -> bool {
        self.file(LEASE_JSON).exists()
    }

    /// A lease run's verdicts, per sweep point and guard (`None`: not a lease run).
    pub fn lease_rows(&self) -> Result<Option<Vec<LeaseRow>>, RunDirError> {
        if !self.is_lease_run() {
            return Ok(None);
        }
        let text = self.read_text(LEASE_JSON)?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| RunDirError::Read(self.file(LEASE_JSON), error.to_string()))
    }

    /// `report.md`, if it is written.
    pub fn report(&self) -> Option<String> {
        std::fs::read_to_string(self.file(REPORT_MD)).ok()
    }

    /// Writes a file of the run's own (a comparison, a validation note).
    pub fn write_file(&self, name: &str, text: &str) -> Result<PathBuf, RunDirError> {
        let path = self.file(name);
        std::fs::write(&path, text).map_err(|error| RunDirError::Write(path.clone(), error))?;
        Ok(path)
    }

    /// Whether this is its experiment's reference run.
    pub fn is_reference(&self) -> bool {
        self.file(REFERENCE_FILE).exists()
    }

    /// Removes an unfinished run. A thread that was still working on it
    /// (the oracle, when the run was interrupted) may add a file while it
    /// goes, so it is tried a few times.
    pub fn remove(self) {
        for _ in 0..5 {
            if std::fs::remove_dir_all(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn read_text(&self, name: &str) -> Result<String, RunDirError> {
        let path = self.file(name);
        std::fs::read_to_string(&path).map_err(|error| RunDirError::Read(path, error.to_string()))
    }

    /// Writes the file `name` in the run's directory.
    pub fn write_text(&self, name: &str, text: &str) -> Result<(), RunDirError> {
        let path = self.file(name);
        std::fs::write(&path, text).map_err(|error| RunDirError::Write(path, error))
    }

    /// Which part of a run this directory holds, if it is one part
    /// (`--shard K/N`); `None` for a whole run.
    pub fn shard(&self) -> Option<Result<Shard, RunDirError>> {
        let path = self.file(SHARD_FILE);
        path.exists().then(|| {
            self.read_text(SHARD_FILE)?.parse().map_err(|error: String| RunDirError::Read(path, error))
        })
    }

    /// Whether this directory holds one part of a run, not a run.
    pub fn is_shard(&self) -> bool {
        self.file(SHARD_FILE).exists()
    }
}
