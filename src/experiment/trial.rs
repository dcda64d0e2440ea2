//! One trial: a fresh cluster, its clocks and faults, the workload, and the
//! final state once the replicas have converged.
//!
//! The steps follow DESIGN.md: start replicas on empty data directories; set
//! each replica's clock and the network faults (recording each as a `fault`
//! record with the true time it took effect); run the workload, with the
//! spec's scheduled [`faults`] happening meanwhile; heal the
//! network; wait until every replica holds every write; read every replica's
//! state as `final` records; stop the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::cluster::{AdminClient, Cluster, ClusterError};
use super::faults::{self, FaultSpec};
use super::history::{FaultRecord, FinalRecord, FinalSibling, Record, SampleRecord, TrialRecord};
use super::spec::Spec;
use super::workload::{self, Counters, Target};
use crate::clock::dots::ReplicaId;
use crate::clock::physical::system_now;

/// How long replicas may take to converge after the faults stop.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often convergence is checked.
pub const CONVERGE_POLL: Duration = Duration::from_millis(20);

/// How often the runner samples every replica's clock and offset estimates.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Which trial of which point, and the swept value there.
#[derive(Debug, Clone, Copy)]
pub struct TrialPlan {
    pub point: usize,
    pub trial: usize,
    pub value: f64,
}

/// What a trial produced, in history order.
pub struct TrialOutcome {
    pub records: Vec<Record>,
    /// Whether the replicas converged before [`CONVERGE_TIMEOUT`].
    pub converged: bool,
    /// How long convergence took after the heal.
    pub converge_time: Duration,
}

/// Runs one trial. Replica data goes under `data_dir`, which must be empty.
pub async fn run(
    spec: &Spec,
    plan: TrialPlan,
    data_dir: &Path,
    token: &str,
    client: reqwest::Client,
    counters: Arc<Counters>,
) -> Result<TrialOutcome, ClusterError> {
    let bound = spec.sweep.parameter.offset_bound(spec.max_peer_offset_ms, plan.value);
    let replica_args =
        bound.map(|ms| vec!["--max-peer-offset-ms".to_string(), ms.to_string()]).unwrap_or_default();
    let mut cluster = Cluster::start(spec.replicas, data_dir, token, client.clone(), replica_args).await?;
    let mut records = Vec::new();
    for id in cluster.ids() {
        let settings = clock_settings(spec, plan, id);
        cluster.admin(id, Method::PUT, "/admin/clock", Some(&settings)).await?;
        records.push(fault_record(plan, id, "clock", settings));
    }
    let network = &spec.network;
    if network.is_faulty() {
        let settings = |peer| json!({ "peer": peer, "delay_ms": network.delay_ms, "loss": network.loss });
        records.extend(set_every_link(&cluster, plan, "links", settings).await?);
    }

    let target = Arc::new(Target {
        point: plan.point,
        trial: plan.trial,
        replicas: cluster.ids().map(|id| cluster.addr(id)).collect(),
        buckets: spec.strategies.clone(),
        duration: Duration::from_millis(spec.duration_ms),
        seed: spec.seed,
    });
    // The workload runs while the faults happen on schedule.
    let faults: Vec<FaultSpec> =
        spec.faults.iter().filter_map(|fault| spec.sweep.parameter.apply(fault, plan.value)).collect();
    let clock_of = |id| clock_settings(spec, plan, id);
    let links_of =
        |_peer| network.is_faulty().then(|| json!({ "delay_ms": network.delay_ms, "loss": network.loss }));
    let restore = faults::Restore { clock: &clock_of, links: &links_of };
    let workload_start_ns = system_now();
    let started = tokio::time::Instant::now();
    let until = started + Duration::from_millis(spec.duration_ms);
    let admin = cluster.admin_client();
    let (writes, fault_records, samples) = tokio::join!(
        workload::run(&spec.workload, target, client, counters),
        faults::run(&mut cluster, &faults, plan, started, spec.duration_ms as f64, &restore),
        sample_clocks(admin, plan, until),
    );
    records.extend(samples);
    let workload_end_ns = system_now();
    let keys: BTreeSet<String> = writes.iter().map(|write| write.key.clone()).collect();
    records.extend(fault_records?);
    records.extend(writes.into_iter().map(Record::Write));

    // Faults stop; the replicas must now converge.
    if network.is_faulty() {
        let settings = |peer| json!({ "peer": peer, "cut": "none", "delay_ms": 0, "loss": 0 });
        records.extend(set_every_link(&cluster, plan, "heal", settings).await?);
    }
    let healed = tokio::time::Instant::now();
    let converged = wait_for_convergence(&cluster).await?;
    let converge_time = healed.elapsed();
    if !converged {
        tracing::warn!(point = plan.point, trial = plan.trial, "replicas did not converge in time");
    }
    records.push(Record::Trial(TrialRecord {
        point: plan.point,
        trial: plan.trial,
        workload_start_ns,
        workload_end_ns,
        converged,
        converge_ms: converge_time.as_micros() as f64 / 1e3,
    }));
    records.extend(final_records(&cluster, spec, plan, &keys).await?);
    cluster.stop().await;
    Ok(TrialOutcome { records, converged, converge_time })
}

/// Samples every replica's clock and offset estimates until `until`. A
/// replica that does not answer within the interval (paused, crashed) is
/// skipped that time.
async fn sample_clocks(admin: AdminClient, plan: TrialPlan, until: tokio::time::Instant) -> Vec<Record> {
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    let mut records = Vec::new();
    loop {
        ticks.tick().await;
        if tokio::time::Instant::now() >= until {
            return records;
        }
        let requests = admin.ids().map(|id| {
            let admin = admin.clone();
            async move {
                let status = admin.request(id, Method::GET, "/admin/status", None);
                (id, tokio::time::timeout(SAMPLE_INTERVAL, status).await)
            }
        });
        for (replica, answer) in futures::future::join_all(requests).await {
            let Ok(Ok(status)) = answer else { continue };
            records.push(Record::Sample(SampleRecord {
                point: plan.point,
                trial: plan.trial,
                true_ns: status["true_ns"].as_i64().unwrap_or_default(),
                replica,
                offset_ns: status["offset_ns"].as_i64().unwrap_or_default(),
                peer_offsets: status["peer_offsets"].clone(),
            }));
        }
    }
}

/// Replica `id`'s clock settings at this trial's sweep value, as the admin API takes them.
fn clock_settings(spec: &Spec, plan: TrialPlan, id: ReplicaId) -> Value {
    let clock = spec.sweep.parameter.clock_for(&spec.clocks, plan.value, id, spec.replicas);
    serde_json::to_value(&clock).unwrap_or(Value::Null)
}

/// A `fault` record: what was applied to `replica`, stamped with true time now.
pub(super) fn fault_record(plan: TrialPlan, replica: ReplicaId, fault: &str, settings: Value) -> Record {
    Record::Fault(FaultRecord {
        point: plan.point,
        trial: plan.trial,
        true_ns: system_now(),
        replica,
        fault: fault.to_string(),
        settings,
    })
}

/// Puts `settings(peer)` on every replica's link to every peer; returns the
/// `fault` records, of kind `fault`.
async fn set_every_link(
    cluster: &Cluster,
    plan: TrialPlan,
    fault: &str,
    settings: impl Fn(ReplicaId) -> Value,
) -> Result<Vec<Record>, ClusterError> {
    let mut records = Vec::new();
    for id in cluster.ids() {
        for peer in cluster.ids().filter(|&peer| peer != id) {
            let settings = settings(peer);
            cluster.admin(id, Method::PUT, "/admin/links", Some(&settings)).await?;
            records.push(fault_record(plan, id, fault, settings));
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
            let status = cluster.admin(id, Method::GET, "/admin/status", None).await?;
            marks.push(status["high_water"].clone());
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
    spec: &Spec,
    plan: TrialPlan,
    written: &BTreeSet<String>,
) -> Result<Vec<Record>, ClusterError> {
    let mut states = BTreeMap::new();
    for id in cluster.ids() {
        states.insert(id, cluster.admin(id, Method::GET, "/admin/state", None).await?);
    }
    let mut records = Vec::new();
    for bucket in &spec.strategies {
        let mut keys = written.clone();
        for state in states.values() {
            if let Some(bucket_keys) = state[bucket].as_object() {
                keys.extend(bucket_keys.keys().cloned());
            }
        }
        for key in &keys {
            for (&replica, state) in &states {
                let siblings =
                    state[bucket][key]["siblings"].as_array().map(Vec::as_slice).unwrap_or_default();
                records.push(Record::Final(FinalRecord {
                    point: plan.point,
                    trial: plan.trial,
                    bucket: bucket.clone(),
                    key: key.clone(),
                    replica,
                    siblings: siblings.iter().map(final_sibling).collect(),
                }));
            }
        }
    }
    Ok(records)
}

/// One sibling of `GET /admin/state`, as the history keeps it.
pub fn final_sibling(sibling: &Value) -> FinalSibling {
    FinalSibling {
        // A value this workload did not write holds no items.
        value: serde_json::from_value(sibling["value"].clone()).unwrap_or_default(),
        stamp: sibling["stamp"].clone(),
        write_id: sibling["write_id"].as_str().unwrap_or_default().to_string(),
    }
}
