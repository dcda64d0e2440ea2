//! One trial: a fresh cluster, its clocks and faults, the workload, and the
//! final state once the replicas have converged.
//!
//! The steps (docs/design.md, "Experiments and runs"): start replicas on empty data directories; set
//! each replica's clock and the network faults (recording each as a `fault`
//! record with the true time it took effect); run the workload, with the
//! spec's scheduled [`faults`] happening meanwhile; heal the
//! network; wait until every replica holds every write; read every replica's
//! state as `final` records; stop the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::cluster::{Cluster, ClusterClient, ClusterError, ClusterOptions};
use super::faults::{self, FaultSpec};
use super::spec::{NetworkSpec, Spec};
use super::workload::{self, Counters, Target};
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ClockUpdate, system_now};
use crate::history::{
    Engine, FaultRecord, FinalRecord, FinalSibling, Record, SampleRecord, Stamp, TrialPlan, TrialRecord,
};
use crate::replica::core::{Sibling, Snapshot};
use crate::replica::links::{Cut, DelaySpec, LinkUpdate};

/// How long replicas may take to converge after the faults stop.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often convergence is checked.
pub const CONVERGE_POLL: Duration = Duration::from_millis(20);

/// How often the runner samples every replica's clock and offset estimates.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// What a trial produced, in history order.
pub struct TrialOutcome {
    pub records: Vec<Record>,
    /// Whether the replicas converged before [`CONVERGE_TIMEOUT`].
    pub converged: bool,
    /// How long convergence took after the heal.
    pub converge_time: Duration,
}

/// Runs one trial. Replica data goes under `data_dir`, which must be empty.
/// `executable` is the `clocklab` binary the replicas run (`None`: this
/// process's own).
pub async fn run(
    spec: &Spec,
    plan: TrialPlan,
    data_dir: &Path,
    token: &str,
    client: reqwest::Client,
    counters: Arc<Counters>,
    executable: Option<&Path>,
) -> Result<TrialOutcome, ClusterError> {
    let bound = spec.sweep.parameter.offset_bound(spec.max_peer_offset_ms, plan.value);
    let mut replica_args = vec!["--clock".to_string(), "model".to_string()];
    if let Some(ms) = bound {
        replica_args.extend(["--max-peer-offset-ms".to_string(), ms.to_string()]);
    }
    let parameters = spec.sweep.parameter.parameters_for(&spec.parameters, plan.value);
    if !parameters.is_empty() {
        let json = serde_json::to_string(&parameters).unwrap_or_else(|_| "{}".into());
        replica_args.extend(["--strategy-parameters".to_string(), json]);
    }
    for plugin in &spec.plugins {
        let json = serde_json::to_string(plugin).unwrap_or_else(|_| "{}".into());
        replica_args.extend(["--plugin".to_string(), json]);
    }
    let options = ClusterOptions {
        replicas: spec.replicas,
        token: token.to_string(),
        executable: executable.map(Path::to_path_buf),
        replica_args,
        ..Default::default()
    };
    let mut cluster = Cluster::start(options, data_dir, client.clone()).await?;
    let mut records = Vec::new();
    for id in cluster.ids() {
        let clock = clock_settings(spec, plan, id);
        cluster.set_clock(id, &clock).await?;
        records.push(FaultRecord::now(plan, id, "clock", &clock));
    }
    let network = &spec.network;
    let faulty_link = |peer| network_link(network, peer);
    if network.is_faulty() {
        records.extend(set_every_link(&cluster, plan, "links", faulty_link).await?);
    }

    let target = Arc::new(Target {
        point: plan.point,
        trial: plan.trial,
        replicas: cluster.ids().map(|id| cluster.replica(id).clone()).collect(),
        buckets: spec.strategies.clone(),
        duration: Duration::from_millis(spec.duration_ms),
        seed: spec.seed,
    });
    // The workload runs while the faults happen on schedule.
    let faults: Vec<FaultSpec> = spec.faults_of(plan);
    let clock_of = |id| clock_settings(spec, plan, id);
    let links_of = |peer| network.is_faulty().then(|| faulty_link(peer));
    let restore = faults::Restore { clock: &clock_of, links: &links_of };
    let workload_start_ns = system_now();
    let started = tokio::time::Instant::now();
    let until = started + Duration::from_millis(spec.duration_ms);
    let admin = cluster.client();
    let workload = spec.sweep.parameter.workload_for(&spec.workload, plan.value);
    let (writes, fault_records, samples) = tokio::join!(
        workload::run(&workload, target, counters),
        faults::run(&mut cluster, &faults, plan, started, spec.duration_ms as f64, &restore),
        sample_clocks(admin, plan, until),
    );
    records.extend(samples);
    let workload_end_ns = system_now();
    let keys: BTreeSet<String> = writes.iter().map(|write| write.key.to_string()).collect();
    records.extend(fault_records?);
    records.extend(writes.into_iter().map(Record::Write));

    // Faults stop; the replicas must now converge.
    if network.is_faulty() {
        records.extend(set_every_link(&cluster, plan, "heal", |peer| healed_link(network, peer)).await?);
    }
    let healed = tokio::time::Instant::now();
    let converged = wait_for_convergence(&cluster).await?;
    let converge_time = healed.elapsed();
    if !converged {
        tracing::warn!(point = plan.point, trial = plan.trial, "replicas did not converge in time");
    }
    let mut failures = Vec::new();
    for id in cluster.ids() {
        failures.push((id, cluster.status(id).await?.failed_buckets));
    }
    let failed_buckets = first_failures(failures);
    records.push(Record::Trial(TrialRecord {
        point: plan.point,
        trial: plan.trial,
        workload_start_ns,
        workload_end_ns,
        converged,
        converge_ms: converge_time.as_micros() as f64 / 1e3,
        engine: Engine::Processes,
        failed_buckets: failed_buckets.clone(),
    }));
    let judged = judged_buckets(spec, &failed_buckets);
    records.extend(final_records(&cluster, &judged, plan, &keys).await?);
    cluster.stop().await;
    Ok(TrialOutcome { records, converged, converge_time })
}

/// Samples every replica's clock and offset estimates until `until`. A
/// replica that does not answer within the interval (paused, crashed) is
/// skipped that time.
async fn sample_clocks(admin: ClusterClient, plan: TrialPlan, until: tokio::time::Instant) -> Vec<Record> {
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    let mut records = Vec::new();
    loop {
        ticks.tick().await;
        if tokio::time::Instant::now() >= until {
            return records;
        }
        let requests = admin.ids().map(|id| {
            let admin = admin.clone();
            async move { (id, admin.status_within(id, SAMPLE_INTERVAL).await) }
        });
        for (replica, answer) in futures::future::join_all(requests).await {
            let Ok(status) = answer else { continue };
            records.push(Record::Sample(SampleRecord {
                point: plan.point,
                trial: plan.trial,
                true_ns: status.true_ns,
                replica,
                offset_ns: status.offset_ns,
                peer_offsets: serde_json::to_value(&status.peer_offsets).unwrap_or(Value::Null),
            }));
        }
    }
}

/// Replica `id`'s clock settings at this trial's sweep value, as the admin API takes them.
pub fn clock_settings(spec: &Spec, plan: TrialPlan, id: ReplicaId) -> ClockUpdate {
    spec.sweep.parameter.clock_for(&spec.clocks, plan.value, id, spec.replicas).update()
}

/// The spec's network faults, on one replica's link to `peer`.
pub fn network_link(network: &NetworkSpec, peer: ReplicaId) -> LinkUpdate {
    LinkUpdate {
        peer,
        cut: None,
        delay_ms: Some(DelaySpec::Range(network.delay_ms)),
        loss: Some(network.loss),
        // Named only when set, so the records of specs without them stay as they were.
        duplicate: (network.duplicate > 0.0).then_some(network.duplicate),
        reorder: (network.reorder > 0.0).then_some(network.reorder),
    }
}

/// A link to `peer` with every fault of `network` gone, as after the workload.
pub fn healed_link(network: &NetworkSpec, peer: ReplicaId) -> LinkUpdate {
    LinkUpdate {
        peer,
        cut: Some(Cut::None),
        delay_ms: Some(DelaySpec::Fixed(0.0)),
        loss: Some(0.0),
        duplicate: (network.duplicate > 0.0).then_some(0.0),
        reorder: (network.reorder > 0.0).then_some(0.0),
    }
}

/// Puts `settings(peer)` on every replica's link to every peer; returns the
/// `fault` records, of kind `fault`.
async fn set_every_link(
    cluster: &Cluster,
    plan: TrialPlan,
    fault: &str,
    settings: impl Fn(ReplicaId) -> LinkUpdate,
) -> Result<Vec<Record>, ClusterError> {
    let mut records = Vec::new();
    for id in cluster.ids() {
        for peer in cluster.ids().filter(|&peer| peer != id) {
            let update = settings(peer);
            cluster.set_link(id, &update).await?;
            records.push(FaultRecord::now(plan, id, fault, &update));
        }
    }
    Ok(records)
}

/// Waits until every replica's high-water marks are the same.
async fn wait_for_convergence(cluster: &Cluster) -> Result<bool, ClusterError> {
    let deadline = tokio::time::Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let mut marks = Vec::new();
        for id in cluster.ids() {
            marks.push(cluster.status(id).await?.high_water);
        }
        if marks.windows(2).all(|pair| pair[0] == pair[1]) {
            return Ok(true);
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(CONVERGE_POLL).await;
    }
}

/// Every replica's state of every bucket and key, as `final` records. A key
/// some replica lacks gets an empty record there, so divergence shows.
async fn final_records(
    cluster: &Cluster,
    buckets: &[String],
    plan: TrialPlan,
    written: &BTreeSet<String>,
) -> Result<Vec<Record>, ClusterError> {
    let mut states = BTreeMap::new();
    for id in cluster.ids() {
        states.insert(id, cluster.state(id).await?);
    }
    Ok(final_records_of(&states, buckets, plan, written))
}

/// Each failed bucket with the first replica's error (`replica N: ...`),
/// from every replica's failed buckets, in replica order.
pub fn first_failures(
    per_replica: impl IntoIterator<Item = (ReplicaId, BTreeMap<String, String>)>,
) -> BTreeMap<String, String> {
    let mut first = BTreeMap::new();
    for (id, failed) in per_replica {
        for (bucket, error) in failed {
            first.entry(bucket).or_insert_with(|| format!("replica {id}: {error}"));
        }
    }
    first
}

/// The spec's buckets but those whose plugin failed: only these have final
/// states to judge.
pub fn judged_buckets(spec: &Spec, failed: &BTreeMap<String, String>) -> Vec<String> {
    spec.strategies.iter().filter(|bucket| !failed.contains_key(*bucket)).cloned().collect()
}

/// The `final` records of replicas' states: every bucket and key, on every
/// replica. A key some replica lacks gets an empty record there, so
/// divergence shows.
pub fn final_records_of(
    states: &BTreeMap<ReplicaId, Snapshot>,
    buckets: &[String],
    plan: TrialPlan,
    written: &BTreeSet<String>,
) -> Vec<Record> {
    let mut records = Vec::new();
    for bucket in buckets {
        let mut keys = written.clone();
        for state in states.values() {
            if let Some(bucket_keys) = state.get(bucket) {
                keys.extend(bucket_keys.keys().cloned());
            }
        }
        for key in &keys {
            for (&replica, state) in states {
                let siblings =
                    state.get(bucket).and_then(|keys| keys.get(key)).map(|read| read.siblings.as_slice());
                records.push(Record::Final(FinalRecord {
                    point: plan.point,
                    trial: plan.trial,
                    bucket: bucket.as_str().into(),
                    key: key.as_str().into(),
                    replica,
                    siblings: siblings.unwrap_or_default().iter().map(final_sibling).collect(),
                }));
            }
        }
    }
    records
}

/// One sibling of `GET /admin/state`, as the history keeps it.
pub fn final_sibling(sibling: &Sibling) -> FinalSibling {
    FinalSibling {
        // A value this workload did not write holds no items.
        value: serde_json::from_str(sibling.value.text()).unwrap_or_default(),
        stamp: Stamp::parse(sibling.stamp.text()),
        write_id: sibling.write_id.as_str().into(),
    }
}
