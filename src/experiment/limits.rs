//! How much work a spec may ask for, and why.
//!
//! A spec is a program: `clients = 100000`, `rate_per_client = 1000000`
//! asks the simulator for a hundred billion operations a second, and
//! `trials = 100000` with `duration_ms = 100000` asks real processes for
//! a run of years. Both are refused when the spec is checked, before any
//! replica starts, with the numbers, rather than discovered as an aborted
//! allocation or a terminal that never comes back.
//!
//! Each limit is set an order of magnitude or more above anything an
//! experiment of this lab needs, and below what this kind of machine (2
//! cores, 24 GiB) can do in a sitting:
//!
//! - [`MAX_CLIENTS`]: 1,000 concurrent clients. Jepsen's tests use tens; a
//!   thousand clients on one key space measure contention the lab's
//!   experiments reach with 8 to 40.
//! - [`MAX_RATE_PER_CLIENT`]: 10,000 operations a second per client. A real
//!   replica commits about 3,000 writes a second on this machine (the write
//!   path benchmark), so a single client faster than that only queues.
//! - [`FLAT_OUT_RATE`]: a client with rate 0 ("as fast as replies come")
//!   is counted at 2,000 operations a second when the work is added up: a
//!   simulated operation takes half a millisecond or more.
//! - [`MAX_DURATION_MS`]: an hour per trial.
//! - [`MAX_TRIALS`]: 10,000 trials per point, and [`MAX_POINTS`], 1,000
//!   sweep points (both parameters' values multiplied).
//! - [`MAX_OPERATIONS_PER_TRIAL`]: 2,000,000 scheduled operations in one
//!   trial (clients × rate × duration). The simulator does about 50,000
//!   operations a second per core (each a write in every bucket), so such a
//!   trial is half a minute to a minute of computing, and its history (every
//!   write of every bucket) a few gigabytes while values grow.
//! - [`MAX_OPERATIONS_PER_RUN`]: 20,000,000 over the whole run: ten such
//!   trials, a few minutes in the simulator.
//! - [`MAX_WORKLOAD_MS_PER_RUN`]: a day of workload time over the whole run
//!   (points × trials × duration): what real processes take in wall time.
//! - [`MAX_FAULTS_PER_TRIAL`]: 1,000 faults a trial from a nemesis (the
//!   trial's length over its `every_ms`).

/// The most clients a spec may have.
pub const MAX_CLIENTS: usize = 1_000;
/// The fastest a client may be asked to go, operations per second.
pub const MAX_RATE_PER_CLIENT: f64 = 10_000.0;
/// What a flat-out client (rate 0) is counted as, operations per second.
pub const FLAT_OUT_RATE: f64 = 2_000.0;
/// The longest trial, ms.
pub const MAX_DURATION_MS: u64 = 3_600_000;
/// The most trials per sweep point.
pub const MAX_TRIALS: usize = 10_000;
/// The most sweep points (first parameter's values times the second's).
pub const MAX_POINTS: usize = 1_000;
/// The most keys the clients may share.
pub const MAX_KEYS: usize = 10_000_000;
/// The most operations one trial may schedule.
pub const MAX_OPERATIONS_PER_TRIAL: f64 = 2_000_000.0;
/// The most operations a whole run may schedule.
pub const MAX_OPERATIONS_PER_RUN: f64 = 20_000_000.0;
/// The most workload time a whole run may ask for, ms (a day).
pub const MAX_WORKLOAD_MS_PER_RUN: f64 = 86_400_000.0;
/// The most faults a nemesis may draw in one trial.
pub const MAX_FAULTS_PER_TRIAL: f64 = 1_000.0;

/// A number as a refusal shows it: `100,000,000`, or `1.0e300` when it has
/// too many digits to read.
pub fn readable(number: f64) -> String {
    if number.abs() >= 1e15 { format!("{number:.1e}") } else { super::spec::shown_number(number.round()) }
}

use std::path::Path;

use super::spec::{Parameter, Spec, SpecError};

/// One point's workload: its value(s) and the operations a trial schedules.
fn operations_per_trial(spec: &Spec, rate_per_client: f64) -> f64 {
    let rate = if rate_per_client > 0.0 { rate_per_client } else { FLAT_OUT_RATE };
    spec.workload.clients as f64 * rate * spec.duration_ms as f64 / 1e3
}

impl Spec {
    /// Checks the work the spec asks for against the limits above; the
    /// refusal names the field and gives the numbers. [`Spec::parse`] calls
    /// it, and so does whoever changes a checked spec (`--quick`,
    /// `--trials`).
    pub fn check_work(&self, path: &Path) -> Result<(), SpecError> {
        let invalid = |field: &'static str, problem: String| SpecError::Invalid {
            path: path.to_path_buf(),
            field,
            problem,
        };
        // A count over its limit: "100,000 clients is more than the limit of 1,000".
        let at_most = |field: &'static str, what: &str, value: f64, limit: f64| {
            if value > limit {
                Err(invalid(
                    field,
                    format!("{} {what} is more than the limit of {}", readable(value), readable(limit)),
                ))
            } else {
                Ok(())
            }
        };
        let workload = &self.workload;
        at_most("workload.clients", "clients", workload.clients as f64, MAX_CLIENTS as f64)?;
        let rates = std::iter::once(workload.rate_per_client).chain(self.swept(Parameter::RatePerClient));
        let fastest = rates.clone().fold(0.0, f64::max);
        at_most("workload.rate_per_client", "operations a second per client", fastest, MAX_RATE_PER_CLIENT)?;
        let keys =
            std::iter::once(workload.keys as f64).chain(self.swept(Parameter::Keys)).fold(0.0, f64::max);
        at_most("workload.keys", "keys", keys, MAX_KEYS as f64)?;
        if self.duration_ms > MAX_DURATION_MS {
            return Err(invalid(
                "duration_ms",
                format!(
                    "a trial of {} ms is longer than the limit of {} ms (an hour)",
                    readable(self.duration_ms as f64),
                    readable(MAX_DURATION_MS as f64)
                ),
            ));
        }
        at_most("trials", "trials", self.trials as f64, MAX_TRIALS as f64)?;
        let across = self.sweep.across.as_ref().map_or(1, |across| across.values.len());
        let points = self.sweep.values.len().saturating_mul(across);
        at_most("sweep.values", "sweep points", points as f64, MAX_POINTS as f64)?;
        // The busiest trial, and the whole run.
        let per_trial = rates.map(|rate| operations_per_trial(self, rate)).fold(0.0, f64::max);
        if per_trial > MAX_OPERATIONS_PER_TRIAL {
            return Err(invalid(
                "workload",
                format!(
                    "this spec asks for {} operations in a trial ({} clients for {} ms at {}); the limit is {}",
                    readable(per_trial),
                    readable(workload.clients as f64),
                    readable(self.duration_ms as f64),
                    if workload.rate_per_client > 0.0 {
                        format!("{} a second each", readable(workload.rate_per_client))
                    } else {
                        format!("flat out, counted as {} a second each", readable(FLAT_OUT_RATE))
                    },
                    readable(MAX_OPERATIONS_PER_TRIAL)
                ),
            ));
        }
        let trials = points as f64 * self.trials as f64;
        let per_run = per_trial * trials;
        if per_run > MAX_OPERATIONS_PER_RUN {
            return Err(invalid(
                "trials",
                format!(
                    "this spec asks for {} operations in all ({} points × {} trials × up to {} each); the limit is {}",
                    readable(per_run),
                    readable(points as f64),
                    readable(self.trials as f64),
                    readable(per_trial),
                    readable(MAX_OPERATIONS_PER_RUN)
                ),
            ));
        }
        let workload_ms = trials * self.duration_ms as f64;
        if workload_ms > MAX_WORKLOAD_MS_PER_RUN {
            return Err(invalid(
                "trials",
                format!(
                    "this spec asks for {} hours of workload ({} points × {} trials × {} ms); the limit is a day",
                    readable(workload_ms / 3_600_000.0),
                    readable(points as f64),
                    readable(self.trials as f64),
                    readable(self.duration_ms as f64)
                ),
            ));
        }
        if let Some(chaos) = &self.chaos {
            let faults = self.duration_ms as f64 / chaos.every_ms;
            if faults > MAX_FAULTS_PER_TRIAL {
                return Err(invalid(
                    "chaos.every_ms",
                    format!(
                        "a fault every {} ms in a {} ms trial is {} faults; the limit is {} a trial",
                        chaos.every_ms,
                        readable(self.duration_ms as f64),
                        readable(faults),
                        readable(MAX_FAULTS_PER_TRIAL)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The values `parameter` takes in this spec's sweep, if it is swept.
    fn swept(&self, parameter: Parameter) -> impl Iterator<Item = f64> + Clone + '_ {
        let first = (self.sweep.parameter == parameter).then_some(&self.sweep.values);
        let second = self
            .sweep
            .across
            .as_ref()
            .filter(|across| across.parameter == parameter)
            .map(|across| &across.values);
        first.into_iter().chain(second).flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Result<Spec, String> {
        let text = format!("{extra}\n[sweep]\nparameter = \"skew_ms\"\nvalues = [0]\n");
        Spec::parse(&text, Path::new("hostile.toml")).map_err(|error| error.to_string())
    }

    #[test]
    fn work_over_a_limit_is_refused_with_the_numbers() {
        let refused = |extra: &str, expected: &str| {
            let error = spec(extra).expect_err(extra);
            assert!(error.starts_with("hostile.toml: field `"), "{error}");
            assert!(error.contains(expected), "{extra}: {error}");
        };
        refused(
            "[workload]\nclients = 100000\nrate_per_client = 1000000",
            "100,000 clients is more than the limit of 1,000",
        );
        refused("[workload]\nclients = 1000\nrate_per_client = 100000", "operations a second per client");
        refused(
            "duration_ms = 100000\n[workload]\nclients = 1000\nrate_per_client = 1000",
            "this spec asks for 100,000,000 operations in a trial",
        );
        refused("trials = 100000\nduration_ms = 100000", "100,000 trials is more than the limit of 10,000");
        refused(
            "trials = 10000\nduration_ms = 100000\n[workload]\nclients = 1\nrate_per_client = 1",
            "278 hours of workload",
        );
        refused("duration_ms = 100000000", "longer than the limit");
        // A flat-out client counts at its assumed rate.
        refused("duration_ms = 3600000\n[workload]\nclients = 1000\nrate_per_client = 0", "flat out");
        assert!(spec("").is_ok(), "the defaults are well within the limits");
    }

    #[test]
    fn every_shipped_spec_and_its_quick_sweep_is_within_the_limits() {
        let folder = crate::builtin::Folder::builtin_experiments();
        for (name, spec) in crate::experiment::specs(&folder) {
            let spec = spec.unwrap_or_else(|error| panic!("{name}: {error}"));
            spec.clone().quick().check_work(Path::new(&name)).unwrap_or_else(|error| panic!("{error}"));
        }
        assert!(readable(1e300).contains("e300"), "{}", readable(1e300));
    }
}
