//! DDIA Figures 8-4 and 8-5 in the step-through: the lease stories of
//! `experiments/lease-stories/`, played in the simulator when asked for.
//!
//! A lease story is a lease spec, not a scripted scenario: its worker is
//! paused by a fault on schedule and the rest follows from the code under
//! test. So the step-through plays it as the golden transcript tells it
//! (`report::lease::story`), a line a step, and beside each step the lease
//! timeline drawn up to that moment (`LeaseTimeline::upto`): the bars grow
//! as the class steps, and the moment the paused holder's lease runs out
//! at the service, with nobody told, is a step of its own.

use serde::Serialize;

use super::DashboardError;
use crate::builtin::Folder;
use crate::engine::sim::run_trial;
use crate::experiment::spec::Spec;
use crate::experiment::stop::Stop;
use crate::experiment::workload::Counters;
use crate::history::{Record, TrialPlan};
use crate::report::figures::Figure;
use crate::report::lease::{LeaseStory, timeline};
use crate::sim::SimOptions;

/// What the step-through shows of a lease story.
#[derive(Debug, Serialize)]
pub struct LeaseTrace {
    /// Tells the page which step-through this is.
    pub kind: &'static str,
    pub name: String,
    #[serde(flatten)]
    pub story: LeaseStory,
    /// The timeline, drawn on request: add `?width=W&upto_ms=T`.
    pub timeline: String,
    /// Each guard's colour, and a line on what it does.
    pub key: std::collections::BTreeMap<String, crate::report::palette::StrategyKey>,
}

/// The stories in `folder`: name and title.
pub fn list(folder: &Folder) -> Vec<(String, String)> {
    folder
        .toml_stems()
        .into_iter()
        .filter_map(|name| Some((name.clone(), load(folder, &name).ok()?.description)))
        .collect()
}

fn load(folder: &Folder, name: &str) -> Result<Spec, DashboardError> {
    if !folder.toml_stems().iter().any(|known| known == name) {
        return Err(DashboardError::NotFound(format!("no scenario or lease story {name:?}")));
    }
    let file = format!("{name}.toml");
    let text = folder.read_to_string(&file).map_err(DashboardError::Internal)?;
    let spec = Spec::parse(&text, std::path::Path::new(&folder.describe_file(&file)))
        .map_err(|error| DashboardError::BadRequest(error.to_string()))?;
    if spec.lease.is_none() {
        return Err(DashboardError::BadRequest(format!(
            "{} has no [lease] table",
            folder.describe_file(&file)
        )));
    }
    Ok(spec)
}

/// Plays story `name`'s first trial in the simulator.
fn play(folder: &Folder, name: &str) -> Result<(Spec, Vec<Record>), DashboardError> {
    let spec = load(folder, name)?;
    let value = spec.sweep.values.first().copied().unwrap_or_default();
    let plan = TrialPlan { point: 0, trial: 0, value };
    let (outcome, _) = run_trial(
        &spec,
        plan,
        std::sync::Arc::new(Counters::default()),
        &SimOptions::default(),
        &Stop::default(),
    )
    .map_err(|error| DashboardError::Internal(format!("{name}: {error}")))?;
    Ok((spec, outcome.records))
}

/// Story `name`, told.
pub fn trace(folder: &Folder, name: &str) -> Result<LeaseTrace, DashboardError> {
    let (spec, records) = play(folder, name)?;
    let guards = spec.lease.as_ref().map(|lease| lease.guards.clone()).unwrap_or_default();
    let colours = crate::report::palette::guard_colours();
    Ok(LeaseTrace {
        kind: "lease",
        name: name.to_string(),
        story: crate::report::lease::story(&spec, &records),
        timeline: format!("/api/scenarios/{name}/timeline.svg"),
        key: guards
            .into_iter()
            .map(|guard| {
                let colour = colours.get(guard.as_str()).cloned().unwrap_or_default();
                (guard.to_string(), crate::report::palette::StrategyKey { colour, about: guard.about() })
            })
            .collect(),
    })
}

/// Story `name`'s timeline up to `upto_ms` after its workload started, as
/// SVG `width` pixels wide.
pub fn timeline_svg(
    folder: &Folder,
    name: &str,
    upto_ms: Option<f64>,
    width: u32,
) -> Result<String, DashboardError> {
    let (spec, records) = play(folder, name)?;
    let drawn = timeline::build(&spec.description, &records, 0)
        .ok_or_else(|| DashboardError::Internal(format!("{name}: its trial left no lease records")))?;
    let drawn = match upto_ms {
        Some(upto) if upto.is_finite() => drawn.upto(upto),
        _ => drawn,
    };
    Figure::LeaseTimeline(&drawn).svg(width).map_err(|error| DashboardError::Internal(error.to_string()))
}
