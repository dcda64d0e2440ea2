//! A spec's checks: every value in range, every combination meaningful,
//! every replica's clock valid at every sweep value, the work within the
//! lab's limits. Each refusal names the file and the field.

use std::path::Path;

use super::{MAX_REPLICAS, Parameter, Spec, SpecError, default_strategies};
use crate::clock::dots::ReplicaId;
use crate::pg::cluster::Resolution;
use crate::strategy;

impl Spec {
    pub(super) fn check(&self, path: &Path) -> Result<(), SpecError> {
        let invalid = |field: &'static str, problem: String| SpecError::Invalid {
            path: path.to_path_buf(),
            field,
            problem,
        };
        if !(2..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(invalid("replicas", format!("must be 2 to {MAX_REPLICAS}, got {}", self.replicas)));
        }
        if self.strategies.is_empty() {
            return Err(invalid("strategies", "name at least one strategy".into()));
        }
        let pglogical = self.engine == crate::history::EngineKind::Pglogical;
        if !pglogical
            && let Some(bucket) = self.strategies.iter().find(|name| Resolution::of_bucket(name).is_some())
        {
            return Err(invalid(
                "strategies",
                format!(
                    "{bucket} is a PostgreSQL bucket: it runs with engine = \"pglogical\" (or --system pglogical)"
                ),
            ));
        }
        if self.workload.script.is_some() {
            let problem = if !pglogical {
                Some("a script is told on the real database: set engine = \"pglogical\"".to_string())
            } else if self.replicas < 3 || self.workload.clients < 2 {
                Some("Figure 8-3 needs 3 replicas and 2 clients".to_string())
            } else {
                self.strategies
                    .iter()
                    .find(|name| Resolution::of_bucket(name).is_none())
                    .map(|name| format!("a script drives the database's buckets only, not {name}"))
            };
            if let Some(problem) = problem {
                return Err(invalid("workload.script", problem));
            }
        }
        let mut known = default_strategies();
        if pglogical {
            known.extend(Resolution::ALL.iter().map(|mode| mode.bucket().to_string()));
        }
        known.extend(self.plugins.iter().filter_map(|plugin| plugin.name.clone()));
        if let Some(unknown) = self.strategies.iter().find(|name| !known.contains(name)) {
            return Err(invalid(
                "strategies",
                format!("unknown strategy {unknown:?}; known: {}", known.join(", ")),
            ));
        }
        let quick_values = self.quick.as_ref().and_then(|quick| quick.values.as_deref()).unwrap_or_default();
        for &value in self.sweep.values.iter().chain(quick_values) {
            let parameters = self.sweep.parameter.parameters_for(&self.parameters, value);
            strategy::registry_with(&parameters).map_err(|error| {
                let at = if parameters == self.parameters {
                    String::new()
                } else {
                    format!("at {} = {value}: ", self.sweep.parameter.name())
                };
                invalid("parameters", format!("{at}{error}"))
            })?;
        }
        if self.sweep.parameter == Parameter::Keys
            && let Some(bad) = self
                .sweep
                .values
                .iter()
                .chain(quick_values)
                .find(|keys| !(**keys >= 1.0 && keys.fract() == 0.0))
        {
            return Err(invalid(
                "sweep.values",
                format!("a number of keys is a whole number, 1 or more, not {bad}"),
            ));
        }
        if self.trials == 0 {
            return Err(invalid("trials", "must be at least 1".into()));
        }
        if let Some(quiz) = &self.quiz
            && quiz.is_about_leases() != self.lease.is_some()
        {
            return Err(invalid(
                "quiz.answer",
                match self.lease {
                    Some(_) => "a lease run's quiz is about its guards: answer = \"fewest_lost\"".into(),
                    None => "fewest_lost grades a lease run's guards, and this spec has no [lease]".into(),
                },
            ));
        }
        if self.lease.is_none() && self.sweep.parameter == Parameter::StorageReplicas {
            return Err(invalid(
                "sweep.parameter",
                "storage_replicas is where a [lease] table's workers write, and this spec has no [lease]"
                    .into(),
            ));
        }
        if let Some(lease) = &self.lease {
            if let Some(problem) = lease.problem(&self.strategies, self.replicas) {
                return Err(invalid("lease", problem));
            }
            for &value in &self.sweep.values {
                if self.sweep.parameter == Parameter::StorageReplicas
                    && !(value >= 1.0 && value.fract() == 0.0)
                {
                    return Err(invalid(
                        "sweep.values",
                        format!("a number of replicas is a whole number, 1 or more, not {value}"),
                    ));
                }
                if let Some(problem) = self
                    .sweep
                    .parameter
                    .lease_for(Some(lease), value)
                    .and_then(|lease| lease.problem(&self.strategies, self.replicas))
                {
                    return Err(invalid("sweep.values", problem));
                }
            }
        }
        if self.duration_ms == 0 {
            return Err(invalid("duration_ms", "must be more than 0".into()));
        }
        if self.workload.clients == 0 {
            return Err(invalid("workload.clients", "must be at least 1".into()));
        }
        if self.workload.keys == 0 {
            return Err(invalid("workload.keys", "must be at least 1".into()));
        }
        if !(self.workload.rate_per_client.is_finite() && self.workload.rate_per_client >= 0.0) {
            return Err(invalid("workload.rate_per_client", "must be 0 or more".into()));
        }
        let [min, max] = self.network.delay_ms;
        if !(min.is_finite() && max.is_finite() && 0.0 <= min && min <= max) {
            return Err(invalid("network.delay_ms", "must be MS or [MIN, MAX] with 0 <= MIN <= MAX".into()));
        }
        if !(0.0..=1.0).contains(&self.network.loss) {
            return Err(invalid("network.loss", "must be a probability between 0 and 1".into()));
        }
        if self.sweep.values.is_empty() {
            return Err(invalid("sweep.values", "name at least one value".into()));
        }
        if let Some(bad) = self.sweep.values.iter().find(|value| !value.is_finite()) {
            return Err(invalid("sweep.values", format!("{bad} is not a number")));
        }
        if let Some(bound) = self.max_peer_offset_ms
            && !(bound.is_finite() && bound >= 0.0)
        {
            return Err(invalid("max_peer_offset_ms", format!("must be 0 or more, got {bound}")));
        }
        for figure in &self.published {
            if !self.strategies.contains(&figure.strategy) {
                return Err(invalid(
                    "published",
                    format!("strategy {:?} is not one this spec runs", figure.strategy),
                ));
            }
            if !self.sweep.values.contains(&figure.value) {
                return Err(invalid(
                    "published",
                    format!("value {} is not one the sweep runs", figure.value),
                ));
            }
            if figure.lost > figure.acknowledged {
                return Err(invalid(
                    "published",
                    format!("{} lost of {} acknowledged", figure.lost, figure.acknowledged),
                ));
            }
        }
        if let Some(chaos) = &self.chaos {
            chaos.check(self.replicas).map_err(|problem| invalid("chaos", problem))?;
        }
        for fault in &self.faults {
            fault.check(self.replicas).map_err(|problem| invalid("fault", problem))?;
            if let Some(worker) = fault.worker() {
                let workers = self.lease.as_ref().map_or(0, |lease| lease.workers);
                if worker.0 == 0 || worker.0 > workers {
                    let problem = match workers {
                        0 => format!("{worker} does not exist: a spec without [lease] has no workers"),
                        _ => format!("{worker} does not exist (workers are 1 to {workers})"),
                    };
                    return Err(invalid("fault", problem));
                }
            }
            // The swept values set the faults' sizes: each must make sense.
            for &value in self.sweep.values.iter().chain(quick_values) {
                if let Some(swept) = self.sweep.parameter.apply(fault, value) {
                    swept.check(self.replicas).map_err(|problem| {
                        invalid("fault", format!("at {} = {value}: {problem}", self.sweep.parameter.name()))
                    })?;
                }
            }
        }
        if let Some(across) = &self.sweep.across {
            if across.parameter == self.sweep.parameter {
                return Err(invalid("sweep.across.parameter", "must differ from sweep.parameter".into()));
            }
            if across.values.is_empty() {
                return Err(invalid("sweep.across.values", "name at least one value".into()));
            }
            if let Some(bad) = across.values.iter().find(|value| !value.is_finite()) {
                return Err(invalid("sweep.across.values", format!("{bad} is not a number")));
            }
            // Each value of the second parameter makes a spec of its own,
            // which must hold up as any spec does.
            for slice in self.slices() {
                slice.spec.check(path)?;
            }
        }
        if let Some(quick) = &self.quick {
            if quick.trials == Some(0) {
                return Err(invalid("quick.trials", "must be at least 1".into()));
            }
            if quick.values.as_ref().is_some_and(Vec::is_empty) {
                return Err(invalid("quick.values", "name at least one value".into()));
            }
        }
        self.check_clocks(path)?;
        self.check_work(path)?;
        if self.quick.is_some() {
            self.clone().quick().check_work(path)?;
        }
        Ok(())
    }

    /// Every replica's clock at every sweep value must be one a replica
    /// takes (offsets within a year, and so on): a sweep value of `1e300`
    /// is refused here, not by an overflow mid-run.
    fn check_clocks(&self, path: &Path) -> Result<(), SpecError> {
        let quick_values = self.quick.as_ref().and_then(|quick| quick.values.as_deref()).unwrap_or_default();
        for &value in self.sweep.values.iter().chain(quick_values) {
            for id in 1..=self.replicas as ReplicaId {
                let clock = self.sweep.parameter.clock_for(&self.clocks, value, id, self.replicas).update();
                if let Err(error) = clock.validate() {
                    let field = if self
                        .sweep
                        .parameter
                        .clock_for(&self.clocks, 0.0, id, self.replicas)
                        .update()
                        .validate()
                        .is_ok()
                    {
                        "sweep.values"
                    } else {
                        "clocks"
                    };
                    return Err(SpecError::Invalid {
                        path: path.to_path_buf(),
                        field,
                        problem: format!(
                            "at {} = {value}, replica {id}'s clock: {error}",
                            self.sweep.parameter.name()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}
