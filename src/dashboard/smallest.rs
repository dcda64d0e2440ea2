//! "Find the smallest story": the dashboard's door to [`crate::explore`].
//!
//! `GET /api/explore` lists what can be searched (each strategy the
//! dashboard knows, the kinds of loss, the bounds in words);
//! `GET /api/explore/{strategy}?cause=NAME` searches every story within the
//! default bounds and answers with the story found, as the step-through
//! draws a scenario, or with the bounds within which nothing was lost and
//! the number of states that shows it. Searches run one at a time, on
//! every core, and explore at most [`MAX_STATES`] states: a few seconds
//! for a built-in strategy (a plugin's calls are slower), so a class never
//! waits long for an answer; a search that runs out says it gave up.

use std::sync::Mutex;

use serde_json::{Value, json};

use super::DashboardError;
use crate::explore::{self, Bounds, Target, Verdict};
use crate::sim::scenario::Trace;
use crate::strategy::plugin::{Lineup, PluginSpec};

/// The most distinct states a search from the page explores: enough for
/// every built-in strategy's question at the default bounds (the largest,
/// lww-hlc and causality, explores 181,949), about ten seconds at most.
pub const MAX_STATES: usize = 300_000;

/// Held while a search runs.
static SEARCHING: Mutex<()> = Mutex::new(());

/// A played story as the step-through draws it: the trace, with every
/// strategy's colour and what it does.
pub fn trace_view(trace: &Trace) -> Value {
    let mut view = json!(trace);
    let buckets = trace.buckets.iter().map(String::as_str);
    view["colours"] = json!(crate::report::palette::colours(buckets.clone()));
    view["key"] = json!(crate::report::palette::key(buckets));
    view
}

/// The bounds a search from the page takes: the explorer's defaults, at
/// most [`MAX_STATES`] states.
fn bounds() -> Bounds {
    Bounds { max_states: MAX_STATES, ..Bounds::default() }
}

/// What can be searched: strategy names (built-ins, then described
/// plugins), the kinds of loss, and the bounds.
pub fn options(plugins: &[PluginSpec]) -> Value {
    let builtins = crate::strategy::NAMES.iter().map(|name| name.to_string());
    let strategies: Vec<String> =
        builtins.chain(plugins.iter().filter_map(|plugin| plugin.name.clone())).collect();
    let causes: Vec<Value> = Target::ALL
        .iter()
        .map(|target| json!({ "name": target.name(), "words": target.describe() }))
        .collect();
    json!({ "strategies": strategies, "causes": causes, "bounds": bounds().describe() })
}

/// Searches for the smallest story in which `strategy` (a built-in's name,
/// or a plugin the dashboard was started with) loses what `cause` names.
pub fn find(plugins: &[PluginSpec], strategy: &str, cause: &str) -> Result<Value, DashboardError> {
    let target = Target::parse(cause).map_err(|error| DashboardError::BadRequest(error.to_string()))?;
    let builtin = crate::strategy::registry().into_iter().find(|builtin| builtin.name() == strategy);
    let plugin = plugins.iter().find(|plugin| plugin.name.as_deref() == Some(strategy));
    let lineup = match (builtin, plugin) {
        (Some(builtin), _) => Lineup { builtins: vec![builtin], plugins: Vec::new() },
        (None, Some(plugin)) => Lineup { builtins: Vec::new(), plugins: vec![plugin.clone()] },
        (None, None) => {
            let known = options(plugins)["strategies"].clone();
            return Err(DashboardError::NotFound(format!("no strategy {strategy:?} (strategies: {known})")));
        }
    };
    let _one_at_a_time = SEARCHING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let search = explore::search(&lineup, &bounds(), target, |_, _| {})
        .map_err(|error| DashboardError::Internal(error.to_string()))?;
    let mut view = json!({
        "strategy": search.strategy,
        "cause": cause,
        "bounds": search.bounds.describe(),
        "effort": search.effort,
        "words": search.to_string(),
    });
    match &search.verdict {
        Verdict::Found { story } => {
            view["verdict"] = json!("found");
            view["finding"] = json!(story.finding);
            view["trace"] = trace_view(&story.trace);
        }
        Verdict::NoneWithin => view["verdict"] = json!("none_within"),
        Verdict::GaveUp => view["verdict"] = json!("gave_up"),
    }
    Ok(view)
}
