//! The runner: an experiment from its spec to its report.
//!
//! For every sweep point and trial it runs one [`trial`] on the spec's
//! engine (a fresh cluster of real replica processes, or a fresh simulated
//! world) and appends the records to the [`history`]; the oracle
//! ([`crate::analysis`]) judges each trial from its records alone as soon as
//! it is written, and the run keeps only the verdicts and the few records
//! the report reads besides (so a long sweep's memory does not grow with its
//! history); at the end [`crate::report`] writes the summary, plots and
//! `report.md` into the run's own directory (a [`RunDir`]). It hands back what it computed: the
//! directory and the oracle's analysis. Progress shows on the terminal: a bar
//! with trials done and writes acknowledged so far, or a line per trial when
//! stderr is not a terminal. A caller that shows progress elsewhere (the
//! dashboard, for a run started from its page) passes a [`RunProgress`]
//! and reads the same figures from it.
//!
//! It sits above `experiment`, `analysis` and `report`, which never import
//! it, so the history stays the one contract between the engine that makes
//! it and the oracle that reads it.
//!
//! [`trial`]: crate::engine::trial
//! [`history`]: crate::history

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::analysis::Analysis;
use crate::engine::{self, EngineError, Refused};
use crate::experiment::shard::{SHARD_FILE, Shard};
use crate::experiment::spec::Spec;
use crate::experiment::stop::Stop;
use crate::experiment::workload::Counters;
use crate::experiment::{LookupError, Wanted, load_spec};
use crate::history::{EngineKind, HistoryError, PointRecord, Record, TrialPlan};
use crate::report::keeping_up::FellBehind;
use crate::report::{Judged, Judging};
use crate::run_dir::{RunDir, RunDirError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error("cannot write {0}: {1}")]
    Output(PathBuf, std::io::Error),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("interrupted: the replicas were stopped and the unfinished run removed")]
    Interrupted,
    #[error("the simulator stopped before it finished its trials")]
    Simulator,
    /// The run finished and was written, but a plugin's bucket failed.
    #[error(
        "bucket {bucket} failed in {trials} trial(s) and was not judged there (run in {run_dir}); the first error: {error}"
    )]
    PluginFailed { bucket: String, trials: usize, run_dir: PathBuf, error: String },
}

/// What to run and where to put it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub wanted: Wanted,
    /// Runs go to `results_dir/EXPERIMENT/RUN-ID/`.
    pub results_dir: PathBuf,
    /// Where a watcher other than the terminal reads the run's progress; with
    /// one, no progress bar is drawn (lines still go to stderr).
    pub progress: Option<Arc<RunProgress>>,
    /// Only this part of the run's trials (`--shard K/N`); the part's
    /// directory is merged with the others' by [`crate::merge`].
    pub shard: Option<Shard>,
    /// Write the history compressed as it goes (`history.jsonl.gz`).
    pub gzip: bool,
    /// Writes a simulated trial holds before it spills them to disk
    /// (`--spill-after`; `history::spill::SPILL_AFTER_WRITES` unless set).
    pub spill_after_writes: usize,
}

/// How far a run has got, updated as it goes and readable from any thread.
#[derive(Debug, Default)]
pub struct RunProgress {
    /// Sweep points and trials in the whole run (0 until the spec is loaded).
    pub points: AtomicU64,
    pub trials: AtomicU64,
    /// Trials finished so far.
    pub trials_done: AtomicU64,
    /// Writes attempted and acknowledged so far, over every strategy's bucket.
    pub counters: Arc<Counters>,
    /// The run's directory, once it is made.
    pub run_dir: OnceLock<PathBuf>,
}

impl RunProgress {
    /// Points whose every trial is done (trials finish in order on real
    /// processes; in the simulator, where they run at once, this is a floor).
    pub fn points_done(&self) -> u64 {
        let (points, trials) = (self.points.load(Ordering::Relaxed), self.trials.load(Ordering::Relaxed));
        match trials / points.max(1) {
            0 => 0,
            per_point => self.trials_done.load(Ordering::Relaxed) / per_point,
        }
    }
}

/// A finished run: where it is, and what the oracle made of it.
pub struct FinishedRun {
    pub dir: RunDir,
    /// The oracle's verdicts; of its drops, only those the report draws
    /// (every drop is in the run's `drops.json`, `RunDir::drops`).
    pub analysis: Analysis,
    /// Whether its clients fell behind their schedule (see `report::keeping_up`).
    pub fell_behind: Option<FellBehind>,
}

/// Runs an experiment end to end; returns its directory and its analysis.
/// If `interrupt` completes first, the run stops, its replicas are killed
/// and its unfinished directory is removed.
pub async fn run(options: &RunOptions, interrupt: impl Future<Output = ()>) -> Result<FinishedRun, RunError> {
    let started = Instant::now();
    let (name, spec) = load_spec(&options.wanted)?;
    engine::check(&spec, spec.engine)?;
    if spec.engine == EngineKind::Pglogical {
        // What to install, before anything is made or started.
        crate::pg::install::Installation::find().map_err(EngineError::from)?;
    }
    let run_dir = RunDir::create(&options.results_dir, &name, spec.seed)?;
    let watched = options.progress.is_some();
    let progress = options.progress.clone().unwrap_or_default();
    let _ = progress.run_dir.set(run_dir.path().to_path_buf());
    let stop = Stop::default();
    let result = tokio::select! {
        result = run_into(&name, &spec, &run_dir, options, &progress, watched, &stop) => result,
        () = interrupt => {
            // Real processes stopped as their futures were dropped; the
            // simulator and the oracle, on threads of their own, stop at
            // their next look.
            stop.stop();
            Err(RunError::Interrupted)
        }
    };
    let (analysis, fell_behind) = match result {
        Ok(finished) => finished,
        // A run whose plugin failed did finish: its other buckets are judged.
        Err(error @ RunError::PluginFailed { .. }) => return Err(error),
        Err(error) => {
            // A run that did not finish would look like a result; remove it.
            run_dir.remove();
            return Err(error);
        }
    };
    eprintln!("results in {}", run_dir.path().display());
    eprintln!("wall time {:.1} s", started.elapsed().as_secs_f64());
    Ok(FinishedRun { dir: run_dir, analysis, fell_behind })
}

async fn run_into(
    name: &str,
    spec: &Spec,
    run_dir: &RunDir,
    options: &RunOptions,
    watch: &Arc<RunProgress>,
    watched: bool,
    stop: &Stop,
) -> Result<(Analysis, Option<FellBehind>), RunError> {
    let (quick, shard) = (options.wanted.quick, options.shard);
    // Whether this run (or its part) runs the trial at `place` in the run's order.
    let runs = |place: usize| shard.is_none_or(|shard| shard.runs(place));
    run_dir.write_spec(spec)?;
    let slices = spec.slices();
    let points = spec.sweep.values.len() * slices.len();
    let across = match &spec.sweep.across {
        Some(across) => format!(" across {} = {:?}", across.parameter.name(), across.values),
        None => String::new(),
    };
    eprintln!(
        "experiment {name}{}{}{}: {} = {:?}{across}, {} trial(s) of {} ms, {} replicas, seed {}",
        if quick { " (quick)" } else { "" },
        shard.map(|shard| format!(", part {shard}")).unwrap_or_default(),
        match spec.engine {
            EngineKind::Sim => " in the simulator",
            EngineKind::Pglogical => " on PostgreSQL with pglogical",
            EngineKind::Processes => "",
        },
        spec.sweep.parameter.name(),
        spec.sweep.values,
        spec.trials,
        spec.duration_ms,
        spec.replicas,
        spec.seed
    );

    let mut history = run_dir.history_writer(options.gzip)?;
    // The oracle, a trial at a time (a part of a sharded run is not judged
    // alone: the merge judges the whole).
    let mut judging = match shard {
        None => Some(Judging::new(spec, run_dir.path(), options.gzip)?),
        Some(_) => None,
    };
    watch.points.store(points as u64, Ordering::Relaxed);
    let trials = (0..points * spec.trials).filter(|&place| runs(place)).count();
    watch.trials.store(trials as u64, Ordering::Relaxed);
    let counters = Arc::clone(&watch.counters);
    let mut progress = Progress::new(watch, !watched);
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap_or_default();
    let token = format!("clocklab-{}-{}", std::process::id(), spec.seed);
    // The simulator's trials are pure computation, independent of each
    // other: they run a few at once, spread over the cores, and come here
    // in order to be written and judged.
    let mut simulated = match spec.engine {
        EngineKind::Processes | EngineKind::Pglogical => None,
        EngineKind::Sim => {
            Some(simulate(spec, shard, options.spill_after_writes, &counters, &progress, stop))
        }
    };
    for slice in &slices {
        for (index, &value) in slice.spec.sweep.values.iter().enumerate() {
            let point = slice.offset + index;
            if !(0..spec.trials).any(|trial| runs(point * spec.trials + trial)) {
                continue;
            }
            let parameter = spec.sweep.parameter.name();
            let mut params = serde_json::Map::new();
            params.insert("parameter".into(), json!(parameter));
            params.insert(parameter.into(), json!(value));
            if let Some((across, across_value)) = slice.across {
                params.insert("across".into(), json!(across.name()));
                params.insert(across.name().into(), json!(across_value));
            }
            // Each strategy's kind, as the strategy built for this point declares it.
            let kinds = slice.spec.kinds_at(value);
            let stamps = slice.spec.stamps_at(value);
            let record = Record::Point(PointRecord { point, params, kinds, stamps });
            history.append(&record)?;
            if let Some(judging) = &mut judging {
                judging.point(record);
            }
            for trial in (0..spec.trials).filter(|trial| runs(point * spec.trials + trial)) {
                if spec.engine != EngineKind::Sim {
                    progress.start_trial(parameter, value, trial, spec.trials);
                }
                let plan = TrialPlan { point, trial, value };
                let mut outcome = match spec.engine {
                    EngineKind::Processes | EngineKind::Pglogical => {
                        // A fresh data directory per trial: the replicas' or servers' files.
                        let data = tempfile::tempdir()
                            .map_err(|error| RunError::Output(std::env::temp_dir(), error))?;
                        let (token, client, counters) = (token.as_str(), client.clone(), counters.clone());
                        let (trial_spec, dir) = (&slice.spec, data.path());
                        match spec.engine {
                            EngineKind::Pglogical => {
                                engine::pglogical::run_trial(trial_spec, plan, dir, token, client, counters)
                                    .await?
                            }
                            _ => {
                                let executable = None;
                                engine::processes::run_trial(
                                    trial_spec, plan, dir, token, client, counters, executable,
                                )
                                .await?
                            }
                        }
                    }
                    EngineKind::Sim => match simulated.as_mut() {
                        Some(trials) => trials.recv().await.ok_or(RunError::Simulator)??,
                        None => return Err(RunError::Simulator),
                    },
                };
                if !outcome.converged {
                    progress.println(format!("point {point} trial {trial}: replicas did not converge"));
                }
                let at = outcome.spilled.as_ref().map_or(outcome.records.len(), |spilled| spilled.at);
                for record in &outcome.records[..at] {
                    history.append(record)?;
                }
                if let Some(spilled) = &mut outcome.spilled {
                    history.append_lines(|out| spilled.writes.copy_to(out))?;
                }
                for record in &outcome.records[at..] {
                    history.append(record)?;
                }
                history.flush()?;
                if let Some(judging) = &mut judging {
                    judging.trial(outcome.records, outcome.spilled.map(|spilled| spilled.writes))?;
                }
                if spec.engine != EngineKind::Sim {
                    progress.finish_trial();
                }
            }
        }
    }
    progress.finish();
    history.finish()?;
    let Some(judging) = judging else {
        // A part is not judged alone: the oracle runs on the merged whole.
        let shard = shard.ok_or(RunError::Simulator)?;
        run_dir.write_text(SHARD_FILE, &format!("{shard}\n"))?;
        eprintln!(
            "part {shard} of {name}: {trials} trial(s); once every part has run, join them with \
             `clocklab merge` and the {} part directories",
            shard.count
        );
        return Ok((Analysis::default(), None));
    };

    // The report is long work for a long run: on a thread of its own, so
    // that an interrupt is heard while it works.
    let Judged { analysis, kept, drops } = judging.finish();
    let (spec_owned, dir_owned, stop_owned) = (spec.clone(), run_dir.clone(), stop.clone());
    let (analysis, behind, lease_rows) = tokio::task::spawn_blocking(move || -> Result<_, RunError> {
        if stop_owned.is_stopped() {
            return Err(RunError::Interrupted);
        }
        dir_owned.write_results(&spec_owned, &kept, &analysis, drops)?;
        let lease_rows = spec_owned.lease.is_some().then(|| crate::analysis::lease::judge_run(&kept));
        let behind = crate::report::keeping_up::fell_behind(&spec_owned, &kept, &analysis.rows);
        Ok((analysis, behind, lease_rows))
    })
    .await
    .map_err(|_| RunError::Simulator)??;
    match &lease_rows {
        // A lease run's clients are its workers: their verdicts are what it measured.
        Some(rows) => eprint!("{}", crate::report::lease::text_table(rows, spec)),
        None => eprint!("{}", crate::report::text_table(&analysis)),
    }
    if let Some(behind) = &behind {
        eprintln!("warning: {}", behind.sentence());
    }
    match &lease_rows {
        Some(rows) => eprintln!(
            "{} writes of protected values acknowledged",
            rows.iter().map(|row| row.acked).sum::<u64>()
        ),
        None => eprintln!(
            "{} writes acknowledged, {} attempted",
            counters.acked.load(Ordering::Relaxed),
            counters.attempted.load(Ordering::Relaxed)
        ),
    }
    if let Some(first) = analysis.failed_buckets.first() {
        let trials = analysis.failed_buckets.iter().filter(|failed| failed.bucket == first.bucket).count();
        return Err(RunError::PluginFailed {
            bucket: first.bucket.clone(),
            trials,
            run_dir: run_dir.path().to_path_buf(),
            error: first.error.clone(),
        });
    }
    Ok((analysis, behind))
}

/// How many simulated trials run at once, per core: enough to keep the
/// cores busy while the runner writes and judges, few enough that the
/// trials waiting their turn hold little memory.
const SIMULATED_AHEAD_PER_CORE: usize = 2;

/// Runs every trial of `spec` (of `shard`, if one) in the simulator, a few
/// at a time in parallel, and hands back their outcomes in plan order
/// (point by point, trial by trial) as they are made.
fn simulate(
    spec: &Spec,
    shard: Option<Shard>,
    spill_after_writes: usize,
    counters: &Arc<Counters>,
    progress: &Progress,
    stop: &Stop,
) -> tokio::sync::mpsc::Receiver<Result<engine::TrialOutcome, RunError>> {
    let mut plans = spec.plans();
    if let Some(shard) = shard {
        let mut place = 0..;
        plans.retain(|_| place.next().is_some_and(|place| shard.runs(place)));
    }
    let ahead = SIMULATED_AHEAD_PER_CORE * rayon::current_num_threads();
    let (sender, receiver) = tokio::sync::mpsc::channel(ahead);
    let (spec, counters, stop) = (spec.clone(), counters.clone(), stop.clone());
    let (done, said) = (progress.trial_done(), progress.printer());
    tokio::task::spawn_blocking(move || {
        let parameter = spec.sweep.parameter.name();
        let (started, mut events) = (Instant::now(), 0);
        let options = crate::sim::SimOptions { spill_after_writes, ..Default::default() };
        for window in plans.chunks(ahead) {
            let made = engine::sim::run_trials(window, &counters, &options, &stop, &|plan: TrialPlan| {
                done(format!(
                    "{parameter} = {}, trial {}/{} simulated",
                    plan.value,
                    plan.trial + 1,
                    spec.trials
                ))
            })
            .map_err(|error| match error {
                EngineError::Stopped(_) => RunError::Interrupted,
                other => RunError::Engine(other),
            });
            let outcomes = match made {
                Ok(outcomes) => outcomes,
                Err(error) => {
                    let _ = sender.blocking_send(Err(error));
                    return;
                }
            };
            for (outcome, effort) in outcomes {
                events += effort.events;
                // The runner stopped taking them: it failed, or was interrupted.
                if sender.blocking_send(Ok(outcome)).is_err() {
                    return;
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        said(format!(
            "simulated {events} events in {seconds:.2} s ({:.0} events/s)",
            events as f64 / seconds.max(1e-9)
        ));
    });
    receiver
}

/// The progress display: a bar on a terminal, a line per trial otherwise;
/// either way the trials done are counted in the run's [`RunProgress`].
struct Progress {
    bar: Option<ProgressBar>,
    watch: Arc<RunProgress>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// A bar only if `bar` is wanted and stderr is a terminal.
    fn new(watch: &Arc<RunProgress>, bar: bool) -> Self {
        let watch = Arc::clone(watch);
        if !bar || !std::io::stderr().is_terminal() {
            return Self { bar: None, watch, ticker: None };
        }
        let bar = ProgressBar::new(watch.trials.load(Ordering::Relaxed));
        let style = ProgressStyle::with_template("{elapsed:>4} [{bar:30}] trial {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar: Some(bar), watch, ticker: None }
    }

    fn start_trial(&mut self, parameter: &str, value: f64, trial: usize, trials: usize) {
        let label = format!("{parameter} = {value}, trial {}/{trials}", trial + 1);
        match &self.bar {
            Some(bar) => {
                let (bar, watch) = (bar.clone(), Arc::clone(&self.watch));
                if let Some(ticker) = self.ticker.take() {
                    ticker.abort();
                }
                self.ticker = Some(tokio::spawn(async move {
                    loop {
                        let acked = watch.counters.acked.load(Ordering::Relaxed);
                        bar.set_message(format!("{label}: {acked} writes acked"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }));
            }
            None => eprintln!("{label}"),
        }
    }

    /// What to call, from any thread, as each of many trials running at
    /// once finishes: the count and the bar move on, or a line is printed.
    fn trial_done(&self) -> impl Fn(String) + Send + Sync + 'static {
        let (bar, watch) = (self.bar.clone(), Arc::clone(&self.watch));
        move |label| {
            watch.trials_done.fetch_add(1, Ordering::Relaxed);
            match &bar {
                Some(bar) => bar.inc(1),
                None => eprintln!("{label}"),
            }
        }
    }

    fn finish_trial(&self) {
        self.watch.trials_done.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn println(&self, line: String) {
        (self.printer())(line)
    }

    /// What to call, from any thread, to print a line above the bar.
    fn printer(&self) -> impl Fn(String) + Send + Sync + 'static {
        let bar = self.bar.clone();
        move |line| match &bar {
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
