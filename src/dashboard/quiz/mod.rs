//! Predict, then reveal: a class chooses a strategy, and a run says whether
//! the choice was right.
//!
//! [`grade`] computes the right answers from a run's summary rows, by the
//! fact the spec's quiz asks about; this module serves the quiz to the page
//! (`GET /api/quiz/{experiment}`, never with its answer) and grades a choice
//! (`POST /api/quiz/{experiment}/answer`) on the run the teacher chose, by
//! default the experiment's reference run, the one the README quotes.

pub mod grade;

use std::collections::BTreeMap;

use serde::Serialize;

use super::DashboardError;
use super::overview::{self, RunSize};
use super::results::{ExperimentListing, ResultsStore, RunListing, check_name, plots_url, summary_rows};
use crate::analysis::summarize;
use crate::builtin::Folder;
use crate::experiment::quiz::QuizSpec;
use crate::history::EngineKind;
use crate::lease::Guard;

pub use self::grade::{Fact, Grading, Verdict};

/// The quiz of an experiment, as the page asks it: never its answer.
#[derive(Debug, Serialize)]
pub struct QuizView {
    pub experiment: String,
    pub question: String,
    /// The README's setup for the class (its *Predict.* paragraph).
    pub setup: Option<String>,
    /// The strategies to choose from: the graded run's (in a lease run,
    /// its guards).
    pub choices: Vec<String>,
    /// What the choices are, for the page's words: "strategies" or "guards".
    pub choosing: &'static str,
    pub colours: BTreeMap<String, String>,
    /// What each strategy does, in a line, for the page's key.
    pub key: BTreeMap<String, crate::report::palette::StrategyKey>,
    /// The run that grades the answer, and how the page names it.
    pub run: String,
    pub run_label: String,
    /// Every finished run it could be graded against, the reference run first.
    pub runs: Vec<QuizRun>,
}

#[derive(Debug, Serialize)]
pub struct QuizRun {
    pub id: String,
    pub label: String,
    pub reference: bool,
}

/// The verdict on a class's choice, and what to show with it.
#[derive(Debug, Serialize)]
pub struct QuizAnswer {
    #[serde(flatten)]
    pub verdict: Verdict,
    pub run: String,
    pub run_label: String,
    /// The run's main plot (add `?width=W`) and headline.
    pub plot: String,
    pub headline: String,
    /// The README's explanation (its *Why.*).
    pub why: Option<String>,
}

impl ResultsStore {
    /// The run a quiz is graded on: `run` if given, else the experiment's
    /// reference run, else its newest finished run; and how to name it.
    fn quiz_run(
        &self,
        listing: &ExperimentListing,
        run: Option<&str>,
    ) -> Result<(String, String), DashboardError> {
        let finished: Vec<&RunListing> = listing.runs.iter().filter(|run| run.finished).collect();
        let chosen = match run {
            Some(id) => {
                finished.iter().find(|listed| listed.id == id).copied().ok_or_else(|| {
                    DashboardError::NotFound(format!("no finished run {}/{id}", listing.name))
                })?
            }
            None => {
                finished.iter().find(|run| run.reference).or_else(|| finished.first()).copied().ok_or_else(
                    || DashboardError::NotFound(format!("{} has no finished run yet", listing.name)),
                )?
            }
        };
        Ok((chosen.id.clone(), quiz_run_label(listing, chosen)))
    }

    /// `experiment`'s quiz, graded on `run` (default: the reference run, else the newest).
    pub fn quiz(
        &self,
        experiments: &Folder,
        experiment: &str,
        run: Option<&str>,
    ) -> Result<QuizView, DashboardError> {
        let (listing, quiz) = self.quiz_of(experiments, experiment)?;
        let (id, run_label) = self.quiz_run(&listing, run)?;
        let graded = self.graded(experiment, &id, &quiz)?;
        let choices = graded.choices;
        let mut runs: Vec<QuizRun> = listing
            .runs
            .iter()
            .filter(|run| run.finished)
            .map(|run| QuizRun {
                id: run.id.clone(),
                label: quiz_run_label(&listing, run),
                reference: run.reference,
            })
            .collect();
        runs.sort_by_key(|run| !run.reference);
        Ok(QuizView {
            experiment: experiment.to_string(),
            question: quiz.question().to_string(),
            setup: listing.lesson.predict.clone(),
            colours: graded.colours,
            key: graded.key,
            choosing: if quiz.is_about_leases() { "guards" } else { "strategies" },
            choices,
            run: id,
            run_label,
            runs,
        })
    }

    /// The verdict on `choice` in `experiment`'s quiz, graded on `run`.
    pub fn answer(
        &self,
        experiments: &Folder,
        experiment: &str,
        run: Option<&str>,
        choice: &str,
    ) -> Result<QuizAnswer, DashboardError> {
        let (listing, quiz) = self.quiz_of(experiments, experiment)?;
        let (id, run_label) = self.quiz_run(&listing, run)?;
        let graded = self.graded(experiment, &id, &quiz)?;
        let names = graded.choices;
        let verdict = grade::verdict(&quiz, graded.grading, choice).ok_or_else(|| {
            DashboardError::BadRequest(format!(
                "{choice:?} is not one of run {id}'s choices ({})",
                names.join(", ")
            ))
        })?;
        Ok(QuizAnswer {
            verdict,
            plot: format!("{}{}.svg", plots_url(experiment, &id), graded.plot),
            headline: graded.headline,
            run: id,
            run_label,
            why: listing.lesson.why.clone(),
        })
    }

    /// Run `id` of `experiment` graded by `quiz`: on its guards' verdicts
    /// if it is a lease run, else on its strategies' summary.
    fn graded(&self, experiment: &str, id: &str, quiz: &QuizSpec) -> Result<Graded, DashboardError> {
        let dir = self.run_dir(experiment, id)?;
        let lease = crate::run_dir::RunDir::open(&dir)
            .lease_rows()
            .map_err(|error| DashboardError::Internal(error.to_string()))?;
        if let Some(rows) = lease {
            let grading = grade::grade_lease(&rows);
            let guards: Vec<Guard> = rows.iter().filter_map(|row| row.guard).collect();
            let colours = crate::report::palette::guard_colours();
            let key = guards
                .iter()
                .map(|guard| {
                    let colour = colours.get(guard.as_str()).cloned().unwrap_or_default();
                    (guard.to_string(), crate::report::palette::StrategyKey { colour, about: guard.about() })
                })
                .collect();
            return Ok(Graded {
                choices: grading.facts.iter().map(|fact| fact.strategy.clone()).collect(),
                grading,
                colours,
                key,
                plot: crate::report::lease::LEASE_HARM,
                headline: crate::report::lease::headline(&rows),
            });
        }
        let rows = summary_rows(&dir, experiment, id)?;
        let choices = grade::strategies(&rows);
        Ok(Graded {
            grading: grade::grade(quiz, &rows),
            choices: choices.clone(),
            colours: crate::report::palette::colours(choices.iter().map(String::as_str)),
            key: crate::report::palette::key(choices.iter().map(String::as_str)),
            plot: crate::report::sweep::DROPPED,
            headline: overview::headline(&summarize(&rows)),
        })
    }

    /// An experiment's listing and its shipped spec's quiz.
    fn quiz_of(
        &self,
        experiments: &Folder,
        experiment: &str,
    ) -> Result<(ExperimentListing, crate::experiment::quiz::QuizSpec), DashboardError> {
        check_name("experiment", experiment)?;
        let quiz = crate::experiment::specs(experiments)
            .into_iter()
            .find(|(name, _)| name == experiment)
            .and_then(|(_, spec)| spec.ok()?.quiz)
            .ok_or_else(|| DashboardError::NotFound(format!("experiment {experiment:?} has no quiz")))?;
        let listing = self
            .list(experiments)
            .into_iter()
            .find(|listing| listing.name == experiment)
            .ok_or_else(|| DashboardError::NotFound(format!("no experiment {experiment:?}")))?;
        Ok((listing, quiz))
    }
}

/// A run graded, with how its choices and result are shown.
struct Graded {
    grading: Grading,
    /// What the class chooses between: the run's strategies, or its guards.
    choices: Vec<String>,
    colours: BTreeMap<String, String>,
    key: BTreeMap<String, crate::report::palette::StrategyKey>,
    /// Its main plot's name.
    plot: &'static str,
    headline: String,
}

/// How the quiz names a run of `listing`: "the reference run of
/// 2026-12-01 21:26:32 UTC (quick, real processes, seed 1)", or, where the
/// experiment has no reference run, whether it is the newest.
fn quiz_run_label(listing: &ExperimentListing, run: &RunListing) -> String {
    let no_reference = !listing.runs.iter().any(|run| run.reference);
    let newest = listing.runs.iter().find(|run| run.finished).is_some_and(|first| first.id == run.id);
    let what = match (run.reference, no_reference && newest) {
        (true, _) => "the reference run",
        (false, true) => "the newest run (there is no reference run here)",
        (false, false) => "the run",
    };
    let size = match run.size {
        RunSize::Quick => "quick",
        RunSize::Full => "full sweep",
        RunSize::Custom => "custom",
    };
    let engine = match run.engine {
        EngineKind::Sim => "simulator",
        EngineKind::Processes => "real processes",
        EngineKind::Pglogical => "PostgreSQL with pglogical",
    };
    format!(
        "{what} of {} ({size}, {engine}, seed {})",
        run.started.as_deref().unwrap_or(&run.id),
        run.seed.unwrap_or_default()
    )
}
