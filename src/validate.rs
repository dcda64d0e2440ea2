//! Cross-validation: the same experiment on real processes and in the
//! simulator, compared point by point.
//!
//! A simulator earns trust by agreeing with the real thing where both can
//! run. `clocklab validate NAME` runs the spec twice, as `clocklab
//! experiment` would (two ordinary runs in `results/NAME/`), the second in
//! the simulator with more trials (it can afford them), then puts each
//! point's and strategy's drop rates side by side with their standard
//! errors ([`crate::analysis::compare`]). The table and a plot with both
//! curves go into the real run's directory as `validation.md` and
//! `comparison.svg`/`.png`.

use std::path::PathBuf;

use futures::FutureExt;

use crate::analysis::compare::{self, Agreement};
use crate::experiment::{Wanted, load_spec};
use crate::history::EngineKind;
use crate::report::compare::Names;
use crate::run_dir::RunDir;
use crate::runner::{RunError, RunOptions};

/// The file the comparison is written to, in the real run's directory.
pub const VALIDATION_FILE: &str = "validation.md";

/// How many more trials the simulator runs than the real processes, unless told.
pub const SIM_TRIALS_FACTOR: usize = 10;

#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The experiment; its `engine` and `trials` apply to the real run.
    pub wanted: Wanted,
    /// Trials per point in the simulator (default: [`SIM_TRIALS_FACTOR`]
    /// times the real run's).
    pub sim_trials: Option<usize>,
    pub results_dir: PathBuf,
}

/// What a validation found.
pub struct Validation {
    pub real_run: RunDir,
    pub sim_run: RunDir,
    pub agreements: Vec<Agreement>,
    /// The comparison as Markdown (what `validation.md` holds).
    pub text: String,
}

impl std::fmt::Display for Validation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.text)
    }
}

/// Runs both engines and compares them. `interrupt` stops whichever run is
/// going, as Ctrl-C does for `clocklab experiment`.
pub async fn validate(
    options: &ValidateOptions,
    interrupt: impl Future<Output = ()>,
) -> Result<Validation, RunError> {
    let interrupt = interrupt.shared();
    let (name, spec) = load_spec(&options.wanted)?;
    let real = Wanted { engine: Some(EngineKind::Processes), ..options.wanted.clone() };
    let sim_trials = options.sim_trials.unwrap_or(spec.trials * SIM_TRIALS_FACTOR);
    let sim = Wanted { engine: Some(EngineKind::Sim), trials: Some(sim_trials), ..options.wanted.clone() };
    let results_dir = options.results_dir.clone();
    let real_run = crate::runner::run(
        &RunOptions {
            wanted: real,
            results_dir: results_dir.clone(),
            progress: None,
            shard: None,
            gzip: false,
            spill_after_writes: crate::history::spill::SPILL_AFTER_WRITES,
        },
        interrupt.clone(),
    )
    .await?;
    let sim_run = crate::runner::run(
        &RunOptions {
            wanted: sim,
            results_dir,
            progress: None,
            shard: None,
            gzip: false,
            spill_after_writes: crate::history::spill::SPILL_AFTER_WRITES,
        },
        interrupt,
    )
    .await?;
    let agreements = compare::compare(&real_run.analysis.rows, &sim_run.analysis.rows);
    let (real_run, sim_run) = (real_run.dir, sim_run.dir);
    let names = Names {
        experiment: &name,
        parameter: spec.sweep.parameter.name(),
        first: "real processes",
        second: "simulator",
    };
    crate::report::figures::Figure::Comparison(&names, &agreements)
        .write(real_run.path())
        .map_err(crate::report::ReportError::from)?;
    let text = format!(
        "# {name}: real processes against the simulator\n\n\
         Real processes: `{}` ({} trial(s) per point). Simulator: `{}` ({sim_trials} trial(s) per point). \
         Same spec, same seed. Error bars in `comparison.svg` are two standard errors.\n\n{}",
        real_run.path().display(),
        spec.trials,
        sim_run.path().display(),
        crate::report::compare::table(&names, &agreements)
    );
    real_run.write_file(VALIDATION_FILE, &text)?;
    Ok(Validation { real_run, sim_run, agreements, text })
}
