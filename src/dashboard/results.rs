//! Results, read back for the dashboard: every run under `results/`, its
//! table, plots, spec and report, and every write the oracle found dropped.
//!
//! Nothing here runs the oracle or trusts a replica: a run's directory
//! already holds what the oracle concluded (`summary.json`, `drops.json`),
//! and its `history.jsonl` holds the clock settings the runner applied, from
//! which "the clock offsets at the time" of a drop are computed again with
//! the same clock model the replicas ran.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use pulldown_cmark::{Event, Options, Parser, Tag};
use serde::Serialize;
use serde_json::Value;

use super::DashboardError;
use super::overview::{self, RunSize};
use super::words::{clock_words, params_words, point_label, row_words};
use crate::analysis::lease::LeaseRow;
use crate::analysis::{Cause, DroppedWrite, PointSummary, SummaryRow, summarize};
use crate::builtin::Folder;
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ClockEvent, replay_offsets};
use crate::experiment::run_id::{RunId, sort_runs};
use crate::experiment::spec::{Parameter, Spec};
use crate::history::{self, EngineKind, FaultName, FaultRecord, PointRecord, Record};
use crate::report::figures::{PLOTS, RunFigures};
use crate::report::offsets::OFFSETS;
use crate::report::timeline::TIMELINE;
use crate::run_dir::RunDir;

/// At most this many drops are listed per page.
pub const MAX_DROPS_PER_PAGE: usize = 500;

/// One experiment as the overview's card shows it (see `overview`), and
/// its runs, newest first.
#[derive(Debug, Serialize)]
pub struct ExperimentListing {
    pub name: String,
    /// What it asks: the first sentence of its shipped spec's description
    /// (none for runs of a spec that is not shipped).
    pub question: Option<String>,
    /// The README's question for the class, and its explanation (see `lesson`).
    #[serde(flatten)]
    pub lesson: super::lesson::Lesson,
    /// The quiz's question, if the shipped spec has one (see `quiz`).
    pub quiz_question: Option<String>,
    /// Its newest finished run's main plot and headline numbers.
    pub latest: Option<LatestRun>,
    pub runs: Vec<RunListing>,
}

/// Two runs of one experiment side by side.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub experiment: String,
    pub first: String,
    pub second: String,
    /// The swept parameter.
    pub parameter: String,
    /// Where both drop curves are drawn in one plot (SVG).
    pub plot: String,
    /// Per sweep value both have and strategy: both rates, their
    /// difference, and whether they agree.
    pub rows: Vec<crate::analysis::compare::Agreement>,
    /// The swept parameter, short, with its unit.
    pub parameter_label: String,
    pub colours: BTreeMap<String, String>,
}

/// The newest finished run of an experiment, at a glance.
#[derive(Debug, Serialize)]
pub struct LatestRun {
    pub id: String,
    /// The URL of its main plot (SVG; add `?width=W`).
    pub plot: Option<String>,
    /// One sentence of its numbers, from its summary.
    pub headline: String,
}

/// One run directory.
#[derive(Debug, Serialize)]
pub struct RunListing {
    pub id: String,
    /// When it started (from its id), as `2026-12-02 03:16:35 UTC`, and its seed.
    pub started: Option<String>,
    pub seed: Option<u64>,
    /// The quick sweep, the full one, or another.
    pub size: RunSize,
    /// What ran it: real processes or the simulator.
    pub engine: EngineKind,
    /// Whether the run wrote its summary (an interrupted run is removed, but
    /// one still running is listed as unfinished).
    pub finished: bool,
    /// Whether it is the experiment's reference run, the one the README
    /// quotes (it holds a `REFERENCE` file).
    pub reference: bool,
}

/// Everything the run page shows.
#[derive(Debug, Serialize)]
pub struct RunPage {
    pub experiment: String,
    pub run: String,
    /// Per sweep point and strategy, added up over trials.
    pub summaries: Vec<PointSummary>,
    /// Plot names, main plot first: each drawn at any width under
    /// `plots_url` (`NAME.svg?width=W`), and as `.svg` and `.png` files under `files`.
    pub plots: Vec<String>,
    pub plots_url: String,
    /// Where the run's files are served from.
    pub files: String,
    pub spec: String,
    /// What ran it: real processes or the simulator.
    pub engine: EngineKind,
    /// `report.md`, rendered to HTML.
    pub report_html: String,
    pub drops: usize,
    /// Each strategy's colour, as every plot draws it.
    pub colours: BTreeMap<String, String>,
    /// The swept parameter, short, with its unit ("clock skew (ms)").
    pub parameter_label: String,
    /// Each sweep point in words ("with clocks 50 ms apart").
    pub point_words: BTreeMap<usize, String>,
    /// Each sweep point's value as a table shows it ("1,000", or "never"
    /// where 0 means never).
    pub point_labels: BTreeMap<usize, String>,
    /// A lease run's verdicts, per sweep point and guard (it then has no
    /// strategies' summaries and no drops).
    pub lease: Option<Vec<LeaseRow>>,
    /// Each guard's colour, as the lease plots draw it.
    pub guard_colours: BTreeMap<String, String>,
}

/// One line of the dropped-writes table.
#[derive(Debug, Serialize)]
pub struct DropRow {
    /// Its position in `drops.json`, which names it in the detail request.
    pub index: usize,
    pub point: usize,
    pub trial: usize,
    pub bucket: String,
    pub key: String,
    pub write_id: Option<String>,
    /// The client operation it belongs to: one number for all its buckets' writes.
    pub operation: Option<u64>,
    pub replica: Option<ReplicaId>,
    pub cause: Cause,
    /// The cause's one name for people.
    pub cause_label: &'static str,
    pub root_killers: usize,
    /// The sweep point in words.
    pub point_words: String,
}

/// A page of the dropped-writes table.
#[derive(Debug, Serialize)]
pub struct DropsPage {
    /// Drops matching the filter, on every page.
    pub total: usize,
    pub offset: usize,
    pub drops: Vec<DropRow>,
}

/// One replica's clock at a moment, as the runner had set it.
#[derive(Debug, Serialize)]
pub struct ClockAt {
    pub replica: ReplicaId,
    /// Physical clock minus true time, in ms.
    pub offset_ms: f64,
    /// The clock settings last applied before that moment.
    pub settings: Value,
    /// Those settings in words.
    pub described: String,
}

/// Everything "why was it dropped" shows for one drop.
#[derive(Debug, Serialize)]
pub struct DropDetail {
    pub index: usize,
    pub drop: DroppedWrite,
    /// The sweep point's parameters (e.g. `skew_ms`).
    pub params: Value,
    /// The sweep point in words.
    pub point_words: String,
    pub cause_label: &'static str,
    /// The dropped write's stamp and each shown killer's, in words.
    pub victim_stamp: String,
    pub killer_stamps: Vec<String>,
    /// Every replica's clock offset when the dropped write was invoked.
    pub clocks: Vec<ClockAt>,
}

/// A run's drops and the history's records other than writes and final
/// states, parsed once and kept; its figures, drawn from them on first use.
struct RunData {
    drops: Vec<DroppedWrite>,
    points: HashMap<usize, Value>,
    clock_faults: Vec<FaultRecord>,
    /// Point, fault, trial and sample records.
    records: Vec<Record>,
    figures: std::sync::OnceLock<Arc<RunFigures>>,
}

/// The results directory, with parsed runs cached.
pub struct ResultsStore {
    dir: PathBuf,
    cache: Mutex<HashMap<PathBuf, Arc<RunData>>>,
}

/// Refuses names that are not a single plain path component.
pub(super) fn check_name(kind: &str, name: &str) -> Result<(), DashboardError> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) if !name.contains(['/', '\\']) => Ok(()),
        _ => Err(DashboardError::BadRequest(format!("{kind} name {name:?} is not a plain name"))),
    }
}

fn subdirectories(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

impl ResultsStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, cache: Mutex::new(HashMap::new()) }
    }

    /// Every shipped experiment in `experiments`, in name order, then any
    /// other experiment with runs; each with its question, its newest
    /// finished run's plot and headline, and its runs newest first (run
    /// ids start with their UTC start time, so they sort by time; see
    /// [`crate::experiment::run_id`]).
    pub fn list(&self, experiments: &Folder) -> Vec<ExperimentListing> {
        let shipped: Vec<(String, Option<Spec>)> =
            crate::experiment::specs(experiments).into_iter().map(|(name, spec)| (name, spec.ok())).collect();
        let mut names: Vec<String> = shipped.iter().map(|(name, _)| name.clone()).collect();
        let others: Vec<String> =
            subdirectories(&self.dir).into_iter().filter(|name| !names.contains(name)).collect();
        names.extend(others);
        names
            .into_iter()
            .map(|name| {
                let spec =
                    shipped.iter().find(|(shipped, _)| *shipped == name).and_then(|(_, spec)| spec.as_ref());
                let dir = self.dir.join(&name);
                let mut ids = subdirectories(&dir);
                sort_runs(&mut ids);
                let runs: Vec<RunListing> = ids
                    .into_iter()
                    .rev()
                    // One part of a sharded run is not a run until merged.
                    .filter(|run| {
                        RunDir::open(dir.join(run)).has_spec() && !RunDir::open(dir.join(run)).is_shard()
                    })
                    .map(|run| {
                        let run_dir = RunDir::open(dir.join(&run));
                        let parsed: Option<RunId> = run.parse().ok();
                        RunListing {
                            started: parsed.as_ref().and_then(overview::started_at),
                            seed: parsed.map(|id| id.seed),
                            size: run_dir.spec().map_or(RunSize::Custom, |ran| RunSize::of(&ran, spec)),
                            finished: run_dir.is_finished(),
                            engine: run_dir.engine(),
                            reference: run_dir.is_reference(),
                            id: run,
                        }
                    })
                    .collect();
                let latest = runs.iter().find(|run| run.finished).and_then(|run| self.latest(&name, &run.id));
                ExperimentListing {
                    question: spec.map(|spec| crate::experiment::first_sentence(&spec.description)),
                    quiz_question: spec
                        .and_then(|spec| spec.quiz.as_ref())
                        .map(|quiz| quiz.question().to_string()),
                    lesson: super::lesson::lesson(super::lesson::README, &name),
                    name,
                    latest,
                    runs,
                }
            })
            .filter(|listing| listing.question.is_some() || !listing.runs.is_empty())
            .collect()
    }

    /// Two finished runs of one experiment, point by point and strategy by
    /// strategy (`analysis::compare`), and the URL of their plot.
    pub fn compare(&self, experiment: &str, first: &str, second: &str) -> Result<Comparison, DashboardError> {
        let rows = |run: &str| summary_rows(&self.run_dir(experiment, run)?, experiment, run);
        let (first_rows, second_rows) = (rows(first)?, rows(second)?);
        let parameter = first_rows.first().map(|row| row.parameter.clone()).unwrap_or_default();
        Ok(Comparison {
            experiment: experiment.to_string(),
            first: first.to_string(),
            second: second.to_string(),
            plot: format!("/api/compare/{experiment}/{first}/{second}/plot.svg"),
            rows: crate::analysis::compare::compare(&first_rows, &second_rows),
            parameter_label: Parameter::from_name(&parameter)
                .map_or(parameter.clone(), |p| p.short_label().into()),
            colours: crate::report::palette::colours(first_rows.iter().map(|row| row.strategy.as_str())),
            parameter,
        })
    }

    /// The comparison's plot, as SVG.
    pub fn compare_plot(
        &self,
        experiment: &str,
        first: &str,
        second: &str,
        width: u32,
    ) -> Result<String, DashboardError> {
        let comparison = self.compare(experiment, first, second)?;
        let names =
            crate::report::compare::Names { experiment, parameter: &comparison.parameter, first, second };
        crate::report::figures::Figure::Comparison(&names, &comparison.rows)
            .svg(width)
            .map_err(|error| DashboardError::Internal(error.to_string()))
    }

    /// A finished run at a glance: its main plot and its headline numbers.
    /// (Only its summary and plot names are read, not its drops or report.)
    fn latest(&self, experiment: &str, run: &str) -> Option<LatestRun> {
        let dir = self.run_dir(experiment, run).ok()?;
        if let Some(rows) = RunDir::open(&dir).lease_rows().ok()? {
            return Some(LatestRun {
                id: run.to_string(),
                plot: Some(format!("{}{}.svg", plots_url(experiment, run), crate::report::lease::LEASE_HARM)),
                headline: crate::report::lease::headline(&rows),
            });
        }
        let rows = summary_rows(&dir, experiment, run).ok()?;
        Some(LatestRun {
            id: run.to_string(),
            plot: Some(format!("{}{}.svg", plots_url(experiment, run), crate::report::sweep::DROPPED)),
            headline: overview::headline(&summarize(&rows)),
        })
    }

    pub(super) fn run_dir(&self, experiment: &str, run: &str) -> Result<PathBuf, DashboardError> {
        check_name("experiment", experiment)?;
        check_name("run", run)?;
        let dir = self.dir.join(experiment).join(run);
        if !RunDir::open(&dir).is_finished() {
            return Err(DashboardError::NotFound(format!("no finished run {experiment}/{run}")));
        }
        Ok(dir)
    }

    pub fn run_page(&self, experiment: &str, run: &str) -> Result<RunPage, DashboardError> {
        let dir = self.run_dir(experiment, run)?;
        let rows = summary_rows(&dir, experiment, run)?;
        let files = files_url(experiment, run);
        let report = RunDir::open(&dir).report().unwrap_or_default();
        let lease =
            RunDir::open(&dir).lease_rows().map_err(|error| DashboardError::Internal(error.to_string()))?;
        let spec = RunDir::open(&dir).spec().ok();

        Ok(RunPage {
            experiment: experiment.to_string(),
            run: run.to_string(),
            summaries: summarize(&rows),
            plots: self.figures(experiment, run)?.names().into_iter().map(str::to_string).collect(),
            plots_url: plots_url(experiment, run),
            spec: RunDir::open(&dir)
                .spec_text()
                .map_err(|error| DashboardError::Internal(error.to_string()))?,
            engine: RunDir::open(&dir).engine(),
            report_html: markdown_to_html(&report, &files, &plots_url(experiment, run)),
            colours: crate::report::palette::colours(rows.iter().map(|row| row.strategy.as_str())),
            point_words: match &spec {
                // A lease run's points come from its spec: it has no summary rows.
                Some(spec) if lease.is_some() => crate::report::lease::points(spec)
                    .map(|point| (point, crate::report::lease::point_phrase(spec, point)))
                    .collect(),
                _ => rows.iter().map(|row| (row.point, row_words(row))).collect(),
            },
            point_labels: match &spec {
                Some(spec) if lease.is_some() => crate::report::lease::points(spec)
                    .map(|point| (point, crate::report::lease::point_label(spec, point)))
                    .collect(),
                _ => rows.iter().map(|row| (row.point, point_label(row))).collect(),
            },
            parameter_label: match &spec {
                Some(spec) if lease.is_some() => spec.sweep.parameter.short_label().to_string(),
                _ => rows
                    .first()
                    .map(|row| {
                        Parameter::from_name(&row.parameter)
                            .map_or(row.parameter.clone(), |p| p.short_label().into())
                    })
                    .unwrap_or_default(),
            },
            guard_colours: crate::report::palette::guard_colours(),
            lease,
            drops: self.data(&dir)?.drops.len(),
            files,
        })
    }

    /// A page of drops, optionally of one strategy only.
    pub fn drops(
        &self,
        experiment: &str,
        run: &str,
        strategy: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<DropsPage, DashboardError> {
        let data = self.data(&self.run_dir(experiment, run)?)?;
        let matching =
            data.drops.iter().enumerate().filter(|(_, drop)| strategy.is_none_or(|s| &*drop.bucket == s));
        let total = matching.clone().count();
        let drops = matching
            .skip(offset)
            .take(limit.min(MAX_DROPS_PER_PAGE))
            .map(|(index, drop)| DropRow {
                index,
                point: drop.point,
                trial: drop.trial,
                bucket: drop.bucket.to_string(),
                key: drop.key.to_string(),
                write_id: drop.victim.write_id.as_ref().map(ToString::to_string),
                operation: drop.victim.item,
                replica: drop.victim.replica,
                cause: drop.cause,
                cause_label: drop.cause.label(),
                root_killers: drop.root_killer_count,
                point_words: data.points.get(&drop.point).map(params_words).unwrap_or_default(),
            })
            .collect();
        Ok(DropsPage { total, offset, drops })
    }

    pub fn drop_detail(
        &self,
        experiment: &str,
        run: &str,
        index: usize,
    ) -> Result<DropDetail, DashboardError> {
        let data = self.data(&self.run_dir(experiment, run)?)?;
        let drop = data.drops.get(index).cloned().ok_or_else(|| {
            DashboardError::NotFound(format!(
                "{experiment}/{run} has {} drops, no drop {index}",
                data.drops.len()
            ))
        })?;
        let at = drop.victim.invoke_ns.unwrap_or_default();
        let faults: Vec<&FaultRecord> = data
            .clock_faults
            .iter()
            .filter(|fault| fault.point == drop.point && fault.trial == drop.trial)
            .collect();
        let mut replicas: Vec<ReplicaId> = faults.iter().map(|fault| fault.replica).collect();
        replicas.sort_unstable();
        replicas.dedup();
        let clocks = replicas
            .into_iter()
            .filter_map(|replica| {
                let settings: Vec<&FaultRecord> =
                    faults.iter().copied().filter(|fault| fault.replica == replica).collect();
                clock_at(&settings, at)
            })
            .collect();
        let stamp_kind = match drop.stamp_kind {
            crate::strategy::StampKind::Opaque => {
                crate::strategy::stamp_kind_of(&drop.bucket).unwrap_or(crate::strategy::StampKind::Opaque)
            }
            declared => declared,
        };
        let words = |stamp| crate::analysis::stamp_words(stamp_kind, stamp);
        Ok(DropDetail {
            index,
            params: data.points.get(&drop.point).cloned().unwrap_or(Value::Null),
            point_words: data.points.get(&drop.point).map(params_words).unwrap_or_default(),
            cause_label: drop.cause.label(),
            victim_stamp: words(&drop.victim.stamp),
            killer_stamps: drop.killers.iter().map(|killer| words(&killer.write.stamp)).collect(),
            clocks,
            drop,
        })
    }

    /// Every plot of a finished run, drawn from its files (see
    /// [`RunFigures`]); made once per run and kept.
    fn figures(&self, experiment: &str, run: &str) -> Result<Arc<RunFigures>, DashboardError> {
        let dir = self.run_dir(experiment, run)?;
        let data = self.data(&dir)?;
        if let Some(figures) = data.figures.get() {
            return Ok(Arc::clone(figures));
        }
        let spec = RunDir::open(&dir)
            .spec()
            .map_err(|error| DashboardError::Internal(format!("{experiment}/{run}: {error}")))?;
        if let Some(lease) =
            RunDir::open(&dir).lease_rows().map_err(|error| DashboardError::Internal(error.to_string()))?
        {
            let figures = RunFigures::for_lease(experiment, &spec, &lease, &data.records);
            return Ok(Arc::clone(data.figures.get_or_init(|| Arc::new(figures))));
        }
        let rows = summary_rows(&dir, experiment, run)?;
        let mut kinds = std::collections::BTreeMap::new();
        for record in &data.records {
            if let Record::Point(point) = record {
                kinds.extend(point.kinds.iter().map(|(bucket, kind)| (bucket.clone(), *kind)));
            }
        }
        let figures =
            RunFigures::build(experiment, &spec, summarize(&rows), &kinds, &data.drops, &data.records);
        Ok(Arc::clone(data.figures.get_or_init(|| Arc::new(figures))))
    }

    /// Plot `name` of a run as SVG, `width` pixels wide.
    pub fn plot(
        &self,
        experiment: &str,
        run: &str,
        name: &str,
        width: u32,
    ) -> Result<String, DashboardError> {
        let figures = self.figures(experiment, run)?;
        let figure = figures
            .figure(name)
            .ok_or_else(|| DashboardError::NotFound(format!("{experiment}/{run} has no plot {name:?}")))?;
        figure.svg(width).map_err(|error| DashboardError::Internal(error.to_string()))
    }

    fn data(&self, dir: &Path) -> Result<Arc<RunData>, DashboardError> {
        if let Some(data) = self.cache.lock().unwrap_or_else(|poison| poison.into_inner()).get(dir) {
            return Ok(Arc::clone(data));
        }
        let drops = RunDir::open(dir).drops().map_err(|error| DashboardError::Internal(error.to_string()))?;
        let records = read_records(dir)?;
        let mut points = HashMap::new();
        let mut clock_faults = Vec::new();
        for record in &records {
            match record {
                Record::Point(PointRecord { point, params, .. }) => {
                    points.insert(*point, Value::Object(params.clone()));
                }
                Record::Fault(fault) if fault.clock_event().is_some() => clock_faults.push(fault.clone()),
                _ => {}
            }
        }
        clock_faults.sort_by_key(|fault| fault.true_ns);
        let data = Arc::new(RunData { drops, points, clock_faults, records, figures: Default::default() });
        self.cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(dir.to_path_buf(), Arc::clone(&data));
        Ok(data)
    }
}

/// Where a run's files are served from.
fn files_url(experiment: &str, run: &str) -> String {
    format!("/results/{experiment}/{run}/")
}

/// Where a run's plots are drawn on request, at the width asked for:
/// `{plots_url}NAME.svg?width=W`.
pub(super) fn plots_url(experiment: &str, run: &str) -> String {
    format!("/api/runs/{experiment}/{run}/plots/")
}

/// A finished run's `summary.json` rows.
pub(super) fn summary_rows(
    dir: &Path,
    experiment: &str,
    run: &str,
) -> Result<Vec<SummaryRow>, DashboardError> {
    RunDir::open(dir)
        .summary()
        .map_err(|error| DashboardError::Internal(format!("{experiment}/{run}: {error}")))
}

/// A run's history without its writes and final states (most of the
/// file, and not needed to explain a drop or draw a plot).
fn read_records(run_dir: &Path) -> Result<Vec<Record>, DashboardError> {
    let (path, lines) =
        history::open_run(run_dir).map_err(|error| DashboardError::Internal(error.to_string()))?;
    let fail = |error: String| DashboardError::Internal(format!("{}: {error}", path.display()));
    let mut records = Vec::new();
    for line in lines.lines() {
        let line = line.map_err(|error| fail(error.to_string()))?;
        if line.contains(r#""type":"write""#) || line.contains(r#""type":"final""#) || line.trim().is_empty()
        {
            continue;
        }
        records.push(serde_json::from_str(&line).map_err(|error| fail(error.to_string()))?);
    }
    Ok(records)
}

/// Replays one replica's clock settings, steps and restarts, in order,
/// through the clock model, and reads its offset at true time `at`.
fn clock_at(faults: &[&FaultRecord], at: Nanos) -> Option<ClockAt> {
    let first = faults.first()?;
    let events: Vec<(Nanos, ClockEvent)> =
        faults.iter().filter_map(|fault| Some((fault.true_ns, fault.clock_event()?))).collect();
    let offset_ns = replay_offsets(&events, &[at]).first().copied()?;
    let settings = faults
        .iter()
        .take_while(|fault| fault.true_ns <= at)
        .filter(|fault| fault.fault == FaultName::Clock)
        .last();
    let settings = settings.unwrap_or(first).settings.clone();
    Some(ClockAt {
        replica: first.replica,
        offset_ms: offset_ns as f64 / 1e6,
        described: clock_words(&settings),
        settings,
    })
}

/// Renders `report.md` to HTML. Relative links and images point into the
/// run's files, except a plot's picture, which points where the plot is
/// drawn at the width the page shows it (`plots`); raw HTML in the
/// Markdown is shown as text, not run.
pub fn markdown_to_html(markdown: &str, files: &str, plots: &str) -> String {
    let relative = |url: &str| !(url.contains(':') || url.starts_with('/') || url.starts_with('#'));
    let plot = |url: &str| {
        url.strip_suffix(".svg").is_some_and(|name| {
            PLOTS.contains(&name) || [crate::report::heatmap::HEATMAP, TIMELINE, OFFSETS].contains(&name)
        })
    };
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|event| match event {
        Event::Start(Tag::Image { link_type, dest_url, title, id }) if plot(&dest_url) => {
            Event::Start(Tag::Image { link_type, dest_url: format!("{plots}{dest_url}").into(), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) if relative(&dest_url) => {
            Event::Start(Tag::Image { link_type, dest_url: format!("{files}{dest_url}").into(), title, id })
        }
        Event::Start(Tag::Link { link_type, dest_url, title, id }) if relative(&dest_url) => {
            Event::Start(Tag::Link { link_type, dest_url: format!("{files}{dest_url}").into(), title, id })
        }
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::FaultKind;
    use serde_json::json;

    #[test]
    fn names_with_paths_in_them_are_refused() {
        for bad in ["..", ".", "", "a/b", "../x", "/etc", "a\\b"] {
            assert!(check_name("run", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("run", "20261124-213120-seed1").is_ok());
    }

    #[test]
    fn report_images_point_into_the_run_and_raw_html_is_escaped() {
        let html = markdown_to_html(
            "![plot](dropped.svg)\n\n![other](photo.png)\n\n<script>x</script>\n",
            "/results/skew/r1/",
            "/api/runs/skew/r1/plots/",
        );
        assert!(html.contains(r#"src="/api/runs/skew/r1/plots/dropped.svg""#), "{html}");
        assert!(html.contains(r#"src="/results/skew/r1/photo.png""#), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn a_clock_offset_is_replayed_through_the_model() {
        let fault = |true_ns: Nanos, settings: Value| FaultRecord {
            point: 0,
            trial: 0,
            true_ns,
            replica: 1,
            fault: FaultName::Clock,
            settings,
            worker: None,
        };
        let set = fault(1_000_000_000, json!({"offset_ms": 250.0, "drift_ppm": 1000.0}));
        let later = fault(3_000_000_000, json!({"offset_ms": -40.0}));
        let step =
            FaultRecord { fault: FaultKind::Step.into(), ..fault(4_000_000_000, json!({"step_ms": -500.0})) };
        let restart = FaultRecord { fault: FaultName::Restart, ..fault(5_000_000_000, Value::Null) };
        // One second after the first setting: 250 ms plus 1000 ppm of a second.
        let at = clock_at(&[&set, &later], 2_000_000_000).expect("a clock");
        assert!((at.offset_ms - 251.0).abs() < 1e-6, "{}", at.offset_ms);
        assert_eq!(at.settings, set.settings);
        // The second setting replaces the fixed offset; the 2 ms that drift
        // built up over two seconds stay, as they do in a replica.
        let at = clock_at(&[&set, &later], 3_000_000_000).expect("a clock");
        assert!((at.offset_ms - -38.0).abs() < 1e-6, "{}", at.offset_ms);
        // A step back moves it by its size; a restart starts a true clock.
        let all = [&set, &later, &step, &restart];
        let at = clock_at(&all, 4_000_000_000).expect("a clock");
        assert!((at.offset_ms - -537.0).abs() < 1e-6, "{}", at.offset_ms);
        assert!(clock_at(&all, 5_000_000_000).expect("a clock").offset_ms.abs() < 1e-6);
    }
}
