//! Experiments started from the page.
//!
//! A class should not need a terminal to ask the lab a question: the page
//! picks an experiment, quick or full, a seed and an engine, and the
//! dashboard runs it as a *job*. A job is [`runner::run`], the very code
//! `clocklab experiment` runs, into the dashboard's own results directory,
//! so its run directory is what the command would have written and the
//! overview lists it the moment it finishes. The runner counts its trials
//! and acknowledged writes into a [`RunProgress`]; the page hears them as
//! server-sent events every [`PROGRESS_INTERVAL`], and then one last event
//! that says how the job ended.
//!
//! Cancelling a job is Ctrl-C for the command: the runner's interrupt
//! completes, the trial's replica processes are killed with their cluster,
//! and the unfinished run directory is removed. So is every running job
//! when the dashboard shuts down, before it returns.
//!
//! Real processes share this machine's cores, and two runs of them at once
//! would each measure the other's load: at most one job on real processes
//! runs at a time, and a second is refused with the reason. Simulator jobs
//! are pure computation and finish in seconds; they may run beside it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::DashboardError;
use crate::builtin::Folder;
use crate::experiment::{Wanted, load_spec};
use crate::history::EngineKind;
use crate::runner::{self, RunOptions, RunProgress};

/// How often a job's progress is sent to the page.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Finished jobs remembered, so that a page that reconnects late still
/// hears how its job ended.
pub const FINISHED_KEPT: usize = 16;

/// `POST /api/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartJob {
    /// A shipped experiment's name (never a path).
    pub experiment: String,
    #[serde(default)]
    pub size: Size,
    /// The workload's seed; the spec's when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The engine; the spec's when absent.
    #[serde(default)]
    pub engine: Option<EngineKind>,
}

/// The spec as written, or its `[quick]` variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    #[default]
    Quick,
    Full,
}

/// How a job stands; the last event of its stream is one of the ended ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    Running,
    /// The run is complete in `results/EXPERIMENT/RUN`.
    Finished {
        run: String,
    },
    Failed {
        error: String,
    },
    /// Stopped on request; its replicas are gone and its directory removed.
    Cancelled,
}

impl JobState {
    pub fn ended(&self) -> bool {
        !matches!(self, Self::Running)
    }
}

/// A job as the page sees it: what runs, how far it got, how it stands.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: u64,
    pub experiment: String,
    pub size: Size,
    pub seed: u64,
    pub engine: EngineKind,
    pub seconds: f64,
    pub points: u64,
    pub points_done: u64,
    pub trials: u64,
    pub trials_done: u64,
    /// Writes acknowledged so far, over every strategy's bucket.
    pub acked: u64,
    #[serde(flatten)]
    pub state: JobState,
}

struct Job {
    id: u64,
    experiment: String,
    size: Size,
    seed: u64,
    engine: EngineKind,
    started: Instant,
    progress: Arc<RunProgress>,
    state: watch::Receiver<JobState>,
    cancel: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Job {
    fn view(&self) -> JobView {
        let progress = &self.progress;
        JobView {
            id: self.id,
            experiment: self.experiment.clone(),
            size: self.size,
            seed: self.seed,
            engine: self.engine,
            seconds: self.started.elapsed().as_secs_f64(),
            points: progress.points.load(Ordering::Relaxed),
            points_done: progress.points_done(),
            trials: progress.trials.load(Ordering::Relaxed),
            trials_done: progress.trials_done.load(Ordering::Relaxed),
            acked: progress.counters.acked.load(Ordering::Relaxed),
            state: self.state.borrow().clone(),
        }
    }
}

/// The dashboard's jobs, running and recently ended.
pub struct Jobs {
    experiments: Folder,
    results_dir: PathBuf,
    /// Plugin strategies every job runs beside its spec's (`--strategy`).
    plugins: Vec<PathBuf>,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Jobs {
    pub fn new(experiments: Folder, results_dir: PathBuf, plugins: Vec<PathBuf>) -> Self {
        Self { experiments, results_dir, plugins, jobs: Mutex::new(BTreeMap::new()) }
    }

    /// Every job remembered, the newest first.
    pub fn list(&self) -> Vec<JobView> {
        lock(&self.jobs).values().rev().map(|job| job.view()).collect()
    }

    pub fn view(&self, id: u64) -> Result<JobView, DashboardError> {
        Ok(self.job(id)?.view())
    }

    fn job(&self, id: u64) -> Result<Arc<Job>, DashboardError> {
        lock(&self.jobs).get(&id).cloned().ok_or_else(|| DashboardError::NotFound(format!("no job {id}")))
    }

    /// Starts a job, or says why not: an experiment that is not shipped, or
    /// a second job on real processes.
    pub fn start(&self, request: StartJob) -> Result<JobView, DashboardError> {
        let known = self.experiments.toml_stems();
        if !known.contains(&request.experiment) {
            return Err(DashboardError::NotFound(format!(
                "no experiment {:?}; experiments: {}",
                request.experiment,
                known.join(", ")
            )));
        }
        let wanted = Wanted {
            experiment: request.experiment.clone(),
            experiments: self.experiments.clone(),
            quick: request.size == Size::Quick,
            seed: request.seed,
            engine: request.engine,
            trials: None,
            plugins: self.plugins.clone(),
        };
        // Loaded here for the engine and seed the run will have, and
        // refused here if it does not load; the runner loads it again.
        let (_, spec) = load_spec(&wanted).map_err(|error| DashboardError::BadRequest(error.to_string()))?;
        let mut jobs = lock(&self.jobs);
        if spec.engine != EngineKind::Sim
            && let Some(busy) =
                jobs.values().find(|job| job.engine == EngineKind::Processes && !job.state.borrow().ended())
        {
            return Err(DashboardError::Conflict(format!(
                "job {} ({}) is running on real processes; this machine runs one such job at a time, so wait \
                 for it or cancel it (simulator jobs may run beside it)",
                busy.id, busy.experiment
            )));
        }
        let id = jobs.keys().next_back().map_or(1, |last| last + 1);
        let progress = Arc::new(RunProgress::default());
        let (set_state, state) = watch::channel(JobState::Running);
        let (cancel, mut cancelled) = watch::channel(false);
        let options = RunOptions {
            wanted,
            results_dir: self.results_dir.clone(),
            progress: Some(Arc::clone(&progress)),
            shard: None,
            gzip: false,
            spill_after_writes: crate::history::spill::SPILL_AFTER_WRITES,
        };
        let job = Arc::new(Job {
            id,
            experiment: request.experiment,
            size: request.size,
            seed: spec.seed,
            engine: spec.engine,
            started: Instant::now(),
            progress,
            state,
            cancel,
            task: Mutex::new(None),
        });
        tracing::info!(id, experiment = %job.experiment, seed = job.seed, engine = ?job.engine, "job started");
        let task = tokio::spawn(async move {
            let interrupt = async move {
                let _ = cancelled.wait_for(|cancelled| *cancelled).await;
            };
            let ended = match runner::run(&options, interrupt).await {
                Ok(finished) => JobState::Finished { run: finished.dir.id() },
                Err(runner::RunError::Interrupted) => JobState::Cancelled,
                Err(error) => JobState::Failed { error: error.to_string() },
            };
            tracing::info!(?ended, "job ended");
            let _ = set_state.send(ended);
        });
        *lock(&job.task) = Some(task);
        jobs.insert(id, Arc::clone(&job));
        // Forget the oldest ended jobs beyond the few kept.
        let ended: Vec<u64> =
            jobs.values().filter(|job| job.state.borrow().ended()).map(|job| job.id).collect();
        for old in ended.iter().take(ended.len().saturating_sub(FINISHED_KEPT)) {
            jobs.remove(old);
        }
        Ok(job.view())
    }

    /// Cancels a job and waits until it has stopped: its replicas killed,
    /// its unfinished directory removed. A job that has ended stays as it is.
    pub async fn cancel(&self, id: u64) -> Result<JobView, DashboardError> {
        let job = self.job(id)?;
        Self::stop(&job).await;
        Ok(job.view())
    }

    async fn stop(job: &Job) {
        let _ = job.cancel.send(true);
        let task = lock(&job.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Cancels every running job and waits for each (on shutdown).
    pub async fn stop_all(&self) {
        let running: Vec<Arc<Job>> = lock(&self.jobs).values().cloned().collect();
        for job in running {
            Self::stop(&job).await;
        }
    }

    /// The job's progress every [`PROGRESS_INTERVAL`] while it runs, then
    /// its ended state, then nothing: the stream ends.
    pub fn watch(&self, id: u64) -> Result<impl futures::Stream<Item = JobView> + use<>, DashboardError> {
        let job = self.job(id)?;
        let state = job.state.clone();
        Ok(futures::stream::unfold((job, state, false), |(job, mut state, done)| async move {
            if done {
                return None;
            }
            if !state.borrow().ended() {
                let _ = tokio::time::timeout(PROGRESS_INTERVAL, state.wait_for(JobState::ended)).await;
            }
            let view = job.view();
            let done = view.state.ended();
            Some((view, (job, state, done)))
        }))
    }
}
