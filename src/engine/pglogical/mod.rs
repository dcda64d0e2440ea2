//! The real database as an engine: PostgreSQL servers in a pglogical mesh
//! (`crate::pg`), told the same trial protocol as the lab's replicas.
//!
//! Each of the spec's `pg-*` buckets is one of pglogical's conflict
//! resolution modes, a database of its own on every server, so every mode
//! lives under the same clocks and the same faults. The spec's other
//! strategies run beside them on real `clocklab replica` processes
//! ([`Processes`]), which get every operation too: one schedule, one
//! history, one oracle for both.
//!
//! What each operation does to the servers:
//!
//! - a clock's offset or step rewrites the server's libfaketime file; the
//!   next reading of its clock (a commit timestamp, `now()`) sees it;
//! - a cut link disables the subscriptions that carry what the cut stops
//!   (replica 1 cut off from 2 both ways: `node1_from_node2` and
//!   `node2_from_node1`), a heal enables them; a disabled subscription
//!   keeps its place on the provider, so what was written meanwhile arrives
//!   at the heal, in order;
//! - what a real server cannot be given is refused when the spec is
//!   checked ([`refusal`]), with the reason: drift, a coarser clock tick, a
//!   strobe, wobble, jitter or leap second (libfaketime holds one offset per
//!   server), a link's delay, loss, duplication or reordering (pglogical
//!   streams over TCP on loopback), and pauses, crashes and restarts (not
//!   carried out on the servers yet).
//!
//! True time is the harness's own clock, never faked. "Converged" means
//! that every change made before the workload ended has reached every node
//! (marker rows, see [`PgCluster::settle`]), not that the nodes agree:
//! pglogical's nodes may disagree for good, and the oracle counts that as
//! the divergence it is.

pub mod client;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use self::client::{BucketClient, Connections, Sequences};
use super::processes::Processes;
use super::{
    AbortOnDrop, ClockSample, Engine, EngineError, RealTime, Refused, Workload, WorkloadRecords, Writes,
};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::system_now;
use crate::clock::update::ClockUpdate;
use crate::experiment::faults::timeline::Operation;
use crate::experiment::spec::{Contexts, Script, Spec};
use crate::experiment::workload::{Schedule, TrialSeed};
use crate::history::{EngineKind, TrialPlan, WriteRecord};
use crate::pg::PgError;
use crate::pg::cluster::{MARKER_PREFIX, PgCluster, Resolution};
use crate::pg::server::ClockFile;
use crate::replica::core::{ReadReply, Sibling, Snapshot};
use crate::replica::links::{Cut, DelaySpec, LinkUpdate};
use crate::strategy::RawJson;
use crate::write_id::WriteIds;

/// The most workload connections a server takes (clients times modes);
/// the cluster allows [`crate::pg::cluster::MAX_CONNECTIONS`] in all, the
/// rest for the lab's own and pglogical's.
pub const MAX_CLIENT_CONNECTIONS: usize = 240;

/// How long lab clients and database clients together may take to hand
/// back their records after the workload's time is up.
const FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// The real database, and the lab's replicas beside it if the spec names
/// any of the lab's strategies.
pub struct Pglogical {
    lab: Option<Processes>,
    /// The `pg-*` buckets, and the lab's.
    pg_buckets: Vec<String>,
    lab_buckets: Vec<String>,
    /// Each node's clock offset from true time, ms: the offset last set,
    /// and the sum of the steps since the start (kept apart, as the lab's
    /// clock model keeps them: a new offset leaves earlier steps in force).
    offsets: Arc<Mutex<Vec<Offset>>>,
    /// Each node's clock file.
    clocks: Vec<ClockFile>,
    /// Steps due later, on their timers; stopped with the engine.
    steps: Vec<AbortOnDrop<()>>,
    /// The cut of each link as the trial set it, by (replica, peer).
    cuts: BTreeMap<(ReplicaId, ReplicaId), Cut>,
    /// Subscriptions now disabled, as (subscriber, provider).
    disabled: BTreeSet<(ReplicaId, ReplicaId)>,
    /// Each workload client's connections, by (client, bucket), made before
    /// the workload starts so that it starts on time.
    connections: HashMap<(usize, String), Connections>,
    /// A connection to each node, to read its clock.
    admin: Vec<Arc<tokio_postgres::Client>>,
    clients: Option<AbortOnDrop<Vec<WriteRecord>>>,
    /// Settle rounds: the markers of the current round, once written.
    round: u64,
    markers_written: bool,
    /// A moment in true time and in the harness's monotonic clock.
    anchor: RealTime,
    /// The servers: last, so that everything connected to them (clients,
    /// timers, the lab's replicas) goes before they are killed and their
    /// files removed.
    cluster: PgCluster,
}

/// Checks `spec` for the pglogical engine: every operation its trials
/// would need (on the servers and on the lab's replicas beside them), and
/// a workload the servers can run.
pub fn check(spec: &Spec) -> Result<(), Refused> {
    let engine = EngineKind::Pglogical.name();
    if spec.lease.is_some() {
        let reason = "the lease workers write to the lab's replicas, not to a database".to_string();
        return Err(Refused::Workload { engine, what: "run lease workers".into(), reason });
    }
    for (plan, slice) in spec.plans() {
        let workload = slice.sweep.parameter.workload_for(&slice.workload, plan.value);
        let modes = slice.pg_buckets().count();
        if workload.script.is_some() && workload.clients < 2 {
            let reason = format!(
                "Figure 8-3 needs two clients, and sweep point {} has {}",
                plan.point, workload.clients
            );
            return Err(Refused::Workload { engine, what: "tell the script".into(), reason });
        }
        if workload.clients * modes > MAX_CLIENT_CONNECTIONS {
            let reason = format!(
                "each server takes one connection per client and mode, at most {MAX_CLIENT_CONNECTIONS}; \
                 sweep point {} asks {} clients in {modes} modes",
                plan.point, workload.clients
            );
            return Err(Refused::Workload { engine, what: "connect so many clients".into(), reason });
        }
    }
    if spec.workload.contexts == Contexts::Stale {
        let reason = "a transaction reads the row it writes; there is no older context to write with".into();
        return Err(Refused::Workload { engine, what: "write with stale contexts".into(), reason });
    }
    super::check_with::<Pglogical>(spec)
}

/// Why the servers cannot be given `operation`, if they cannot.
pub fn refusal(operation: &Operation) -> Option<String> {
    match operation {
        Operation::SetClock { update, .. } => clock_refusal(update),
        Operation::SetLink { update, .. } => link_refusal(update),
        Operation::Pause { .. }
        | Operation::Resume { .. }
        | Operation::Crash { .. }
        | Operation::Restart { .. } => {
            Some("the lab does not pause, crash or restart PostgreSQL servers (yet)".into())
        }
        Operation::PauseWorker { .. } | Operation::ResumeWorker { .. } | Operation::SetWorkerClock { .. } => {
            Some("there are no lease workers beside a database".into())
        }
    }
}

fn clock_refusal(update: &ClockUpdate) -> Option<String> {
    let nonzero = |value: Option<f64>| value.is_some_and(|value| value != 0.0);
    if nonzero(update.drift_ppm) {
        return Some(
            "libfaketime's rate counts from the server's start, not from a moment the lab chooses, so a \
             drift cannot be set while a server runs"
                .into(),
        );
    }
    if nonzero(update.resolution_ms) {
        return Some(
            "PostgreSQL reads its clock in microseconds; libfaketime cannot make the tick coarser".into(),
        );
    }
    let shaped = [
        (update.strobe.is_some(), "a strobe"),
        (update.wobble.is_some(), "a wobble"),
        (update.jitter.is_some(), "jitter"),
        (update.leap.is_some(), "a leap second"),
    ];
    shaped.iter().find(|(set, _)| *set).map(|(_, what)| {
        format!("libfaketime holds one offset per server, changed by the lab; {what} would need the lab to rewrite it continuously")
    })
}

fn link_refusal(update: &LinkUpdate) -> Option<String> {
    let delayed = match update.delay_ms {
        Some(DelaySpec::Fixed(ms)) => ms != 0.0,
        Some(DelaySpec::Range([low, high])) => low != 0.0 || high != 0.0,
        None => false,
    };
    if delayed {
        return Some(
            "pglogical streams changes over loopback TCP at its own pace; the lab cannot delay them (set \
             [network] delay_ms = 0)"
                .into(),
        );
    }
    let nonzero = |value: Option<f64>| value.is_some_and(|value| value != 0.0);
    if nonzero(update.loss) || nonzero(update.duplicate) || nonzero(update.reorder) {
        return Some("a TCP stream neither loses, duplicates nor reorders what it carries".into());
    }
    None
}

impl Pglogical {
    /// Starts `spec`'s servers for trial `plan`, meshed, with a database
    /// per `pg-*` bucket, and the lab's replicas beside them (data under
    /// `data_dir`) if the spec names any of the lab's strategies; connects
    /// every workload client.
    pub async fn start(
        spec: &Spec,
        plan: TrialPlan,
        data_dir: &Path,
        token: &str,
        http: reqwest::Client,
        executable: Option<&Path>,
    ) -> Result<Self, EngineError> {
        let (pg_buckets, lab_buckets): (Vec<String>, Vec<String>) =
            spec.strategies.iter().cloned().partition(|bucket| Resolution::of_bucket(bucket).is_some());
        let resolutions: Vec<Resolution> =
            pg_buckets.iter().filter_map(|bucket| Resolution::of_bucket(bucket)).collect();
        let cluster = PgCluster::start(spec.replicas, &resolutions).await?;
        let lab = match lab_buckets.is_empty() {
            true => None,
            false => Some(Processes::start(spec, plan, data_dir, token, http, executable).await?),
        };
        let workload = spec.sweep.parameter.workload_for(&spec.workload, plan.value);
        let mut wanted = Vec::new();
        let servers = &cluster.servers;
        for number in 0..workload.clients {
            for (bucket, resolution) in pg_buckets.iter().zip(&resolutions) {
                wanted.push(async move {
                    let mut connections = Connections::new();
                    for server in servers {
                        connections.push(server.connect_to(resolution.database()).await?);
                    }
                    Ok::<_, PgError>(((number, bucket.clone()), connections))
                });
            }
        }
        let connections = futures::future::join_all(wanted).await.into_iter().collect::<Result<_, _>>()?;
        let mut admin = Vec::new();
        for server in &cluster.servers {
            admin.push(Arc::new(server.connect().await?));
        }
        let clocks = cluster.servers.iter().map(|server| server.clock()).collect();
        Ok(Self {
            offsets: Arc::new(Mutex::new(vec![Offset::default(); spec.replicas])),
            clocks,
            cluster,
            lab,
            pg_buckets,
            lab_buckets,
            steps: Vec::new(),
            cuts: BTreeMap::new(),
            disabled: BTreeSet::new(),
            connections,
            admin,
            clients: None,
            round: 0,
            markers_written: false,
            anchor: RealTime::anchored(tokio::time::Instant::now()),
        })
    }

    /// The servers, while the engine runs.
    pub fn cluster(&self) -> &PgCluster {
        &self.cluster
    }

    /// Stops the lab's replicas and every server, and waits for them.
    pub async fn stop(self) {
        let Self { cluster, lab, clients, steps, .. } = self;
        drop((clients, steps));
        if let Some(lab) = lab {
            lab.stop().await;
        }
        cluster.stop().await;
    }

    /// Sets node `replica`'s clock as `update` says: its offset now, and a
    /// step now or on a timer.
    fn set_clock(&mut self, replica: ReplicaId, update: &ClockUpdate) -> Result<(), PgError> {
        let index = replica as usize - 1;
        let mut offsets = self.offsets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(offset_ms) = update.offset_ms {
            offsets[index].set = offset_ms;
        }
        match update.step {
            Some(step) if step.after_ms > 0.0 => {
                let (offsets, clock) = (Arc::clone(&self.offsets), self.clocks[index].clone());
                let after = Duration::from_secs_f64(step.after_ms / 1e3);
                self.steps.push(AbortOnDrop(tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let mut offsets = offsets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    offsets[index].stepped += step.by_ms;
                    if let Err(error) = clock.set_offset_ms(offsets[index].ms()) {
                        tracing::error!(%error, replica, "a step due later could not be made");
                    }
                })));
            }
            Some(step) => offsets[index].stepped += step.by_ms,
            None => {}
        }
        self.clocks[index].set_offset_ms(offsets[index].ms())
    }

    /// Cuts or heals the link `update` names, by disabling or enabling the
    /// subscriptions whose traffic the cuts on both its ends stop.
    async fn set_link(&mut self, replica: ReplicaId, update: &LinkUpdate) -> Result<(), PgError> {
        let Some(cut) = update.cut else { return Ok(()) };
        self.cuts.insert((replica, update.peer), cut);
        for (subscriber, provider) in [(replica, update.peer), (update.peer, replica)] {
            // The subscriber hears nothing from the provider if it refuses
            // what comes in, or the provider sends it nothing.
            let deaf = matches!(self.cuts.get(&(subscriber, provider)), Some(Cut::In | Cut::Both));
            let mute = matches!(self.cuts.get(&(provider, subscriber)), Some(Cut::Out | Cut::Both));
            let disable = deaf || mute;
            if disable != self.disabled.contains(&(subscriber, provider)) {
                self.cluster.set_subscription(subscriber as usize, provider as usize, !disable).await?;
                match disable {
                    true => self.disabled.insert((subscriber, provider)),
                    false => self.disabled.remove(&(subscriber, provider)),
                };
            }
        }
        Ok(())
    }

    /// Everything node `replica` holds, in every mode's database, as the
    /// lab's replicas report it: each row one sibling, its stamp the
    /// commit timestamp the node keeps for it and the node that wrote it.
    async fn pg_state(&self, replica: ReplicaId) -> Result<Snapshot, PgError> {
        let mut snapshot = Snapshot::new();
        for bucket in &self.pg_buckets {
            let Some(resolution) = Resolution::of_bucket(bucket) else { continue };
            let client = self.cluster.link(replica as usize, resolution)?;
            let rows = client
                .query(
                    "SELECT key, items::text, write_id, \
                     (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::int8 \
                     FROM kv WHERE key NOT LIKE $1",
                    &[&format!("{MARKER_PREFIX}%")],
                )
                .await
                .map_err(|error| PgError::Sql(format!("node {replica}: reading {bucket}'s rows: {error}")))?;
            let keys = snapshot.entry(bucket.clone()).or_default();
            for row in rows {
                let (key, items, write_id): (String, String, String) = (row.get(0), row.get(1), row.get(2));
                let commit_us: Option<i64> = row.get(3);
                let Ok(write_id) = write_id.parse::<WriteIds>() else { continue };
                let origin = write_id.first().origin;
                let sibling = Sibling {
                    value: RawJson::from_text(items).unwrap_or_else(|_| RawJson::of(&json!([]))),
                    stamp: RawJson::of(&json!([commit_us.unwrap_or_default() * 1000, origin])),
                    write_id,
                };
                keys.insert(key, ReadReply { siblings: vec![sibling], context: serde_json::Value::Null });
            }
        }
        Ok(snapshot)
    }
}

/// A node's clock offset from true time, ms.
#[derive(Debug, Clone, Copy, Default)]
struct Offset {
    set: f64,
    stepped: f64,
}

impl Offset {
    fn ms(self) -> f64 {
        self.set + self.stepped
    }
}

/// How many of its conflict lines each node's log gives a trial's notes,
/// per mode: enough to quote, few enough for a history.
pub const NOTES_PER_NODE_AND_MODE: usize = 2;

/// A server's log lines on the conflicts it resolved: each `CONFLICT` line
/// with the `DETAIL` line after it (the rows and their commit timestamps),
/// at most [`NOTES_PER_NODE_AND_MODE`] per mode, each prefixed with the node.
pub fn conflict_notes(node: usize, log: &str, databases: &[&str]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    let lines: Vec<&str> = log.lines().collect();
    for (at, line) in lines.iter().enumerate() {
        if !line.contains("CONFLICT:") {
            continue;
        }
        // The prefix is `time [pid] database `: find the mode's database.
        let Some(database) = databases.iter().find(|database| line.contains(&format!("] {database} ")))
        else {
            continue;
        };
        let count = taken.entry(database).or_default();
        if *count == NOTES_PER_NODE_AND_MODE {
            continue;
        }
        *count += 1;
        let mut note = format!("node {node}: {}", line.trim());
        if let Some(detail) = lines.get(at + 1).filter(|next| next.contains("DETAIL:")) {
            note.push_str(" | ");
            note.push_str(detail.trim());
        }
        notes.push(note);
    }
    notes
}

impl Engine for Pglogical {
    const KIND: EngineKind = EngineKind::Pglogical;

    fn refusal(operation: &Operation) -> Option<String> {
        refusal(operation).or_else(|| Processes::refusal(operation))
    }

    fn lease_refusal() -> Option<String> {
        Some("the lease workers write to the lab's replicas, not to a database".into())
    }

    fn now(&self) -> Nanos {
        system_now()
    }

    async fn run_until(&mut self, at: Nanos) -> Result<(), EngineError> {
        self.anchor.sleep_until(at).await;
        Ok(())
    }

    async fn apply(&mut self, operation: &Operation) -> Result<(), EngineError> {
        if let Some(lab) = &mut self.lab {
            lab.apply(operation).await?;
        }
        match operation {
            Operation::SetClock { replica, update } => self.set_clock(*replica, update)?,
            Operation::SetLink { replica, update } => self.set_link(*replica, update).await?,
            other => {
                let reason = refusal(other).unwrap_or_default();
                return Err(EngineError::Workload(format!("cannot {}: {reason}", other.in_words())));
            }
        }
        Ok(())
    }

    async fn start_workload(&mut self, workload: Workload) -> Result<(), EngineError> {
        let started = tokio::time::Instant::now();
        let stop_at = started + Duration::from_millis(workload.duration_ms);
        if let Some(lab) = &mut self.lab {
            lab.start_workload(Workload { buckets: self.lab_buckets.clone(), ..workload.clone() }).await?;
        }
        let nodes = self.cluster.servers.len();
        if let Some(Script::Figure83) = workload.spec.script {
            let scripts = self.pg_buckets.iter().map(|bucket| {
                let mut take = |number: usize| {
                    // Two clients at least: checked with the spec (`check`).
                    let connections = self.connections.remove(&(number, bucket.clone())).unwrap_or_default();
                    let seeds = TrialSeed { seed: 0, point: workload.plan.point, trial: workload.plan.trial };
                    let schedule = Schedule::new(&workload.spec, number, nodes, seeds);
                    BucketClient {
                        point: workload.plan.point,
                        trial: workload.plan.trial,
                        bucket: bucket.clone(),
                        schedule,
                        connections,
                        sequences: Arc::new(Sequences::new(nodes)),
                        counters: Arc::clone(&workload.counters),
                    }
                };
                let (a, b) = (take(0), take(1));
                // One write-id sequence per bucket, as the clients share it.
                let b = BucketClient { sequences: Arc::clone(&a.sequences), ..b };
                client::figure_8_3(a, b)
            });
            let scripts: Vec<_> = scripts.collect();
            let task = tokio::spawn(async move {
                let mut writes: Vec<WriteRecord> =
                    futures::future::join_all(scripts).await.into_iter().flatten().collect();
                writes.sort_by_key(|write| write.invoke_ns);
                writes
            });
            self.clients = Some(AbortOnDrop(task));
            return Ok(());
        }
        let mut clients = Vec::new();
        let seeds = TrialSeed { seed: workload.seed, point: workload.plan.point, trial: workload.plan.trial };
        for bucket in &self.pg_buckets {
            let sequences = Arc::new(Sequences::new(nodes));
            for number in 0..workload.spec.clients {
                let connections = self.connections.remove(&(number, bucket.clone())).ok_or_else(|| {
                    EngineError::Workload(format!("client {number} has no connections to {bucket}"))
                })?;
                clients.push(BucketClient {
                    point: workload.plan.point,
                    trial: workload.plan.trial,
                    bucket: bucket.clone(),
                    schedule: Schedule::new(&workload.spec, number, nodes, seeds),
                    connections,
                    sequences: Arc::clone(&sequences),
                    counters: Arc::clone(&workload.counters),
                });
            }
        }
        let task = tokio::spawn(async move {
            let runs = clients.into_iter().map(|client| client.run(started, stop_at));
            let mut writes: Vec<WriteRecord> =
                futures::future::join_all(runs).await.into_iter().flatten().collect();
            writes.sort_by_key(|write| write.invoke_ns);
            writes
        });
        self.clients = Some(AbortOnDrop(task));
        Ok(())
    }

    async fn finish_workload(&mut self) -> Result<WorkloadRecords, EngineError> {
        let mut records = match &mut self.lab {
            Some(lab) => lab.finish_workload().await?,
            None => WorkloadRecords::default(),
        };
        if let Some(mut clients) = self.clients.take() {
            let writes = tokio::time::timeout(FINISH_TIMEOUT, &mut clients.0)
                .await
                .map_err(|_| {
                    EngineError::Workload(format!(
                        "the database's clients did not finish in {FINISH_TIMEOUT:?}"
                    ))
                })?
                .map_err(|error| EngineError::Workload(error.to_string()))?;
            let Writes::Held(mut held) = std::mem::take(&mut records.writes) else {
                return Err(EngineError::Workload("the lab's replicas spilled their writes".into()));
            };
            held.extend(writes);
            held.sort_by_key(|write| write.invoke_ns);
            records.writes = Writes::Held(held);
        }
        Ok(records)
    }

    /// Reads every server's clock: its `clock_timestamp()` against the
    /// middle of the query's round trip on the harness's clock. (The lab's
    /// replicas beside it are set to the same offsets; their readings are
    /// not taken, so each replica has one line of samples.)
    fn sample_clocks(&mut self) -> BoxFuture<'static, Vec<ClockSample>> {
        let admin = self.admin.clone();
        let readings = tokio::spawn(async move {
            let reads = admin.iter().enumerate().map(|(index, client)| async move {
                let before = system_now();
                let row = tokio::time::timeout(
                    super::trial::SAMPLE_INTERVAL,
                    client.query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8", &[]),
                )
                .await
                .ok()?
                .ok()?;
                let after = system_now();
                let server_ns = row.get::<_, i64>(0) * 1000;
                let middle = before + (after - before) / 2;
                Some(ClockSample {
                    replica: index as ReplicaId + 1,
                    true_ns: middle,
                    offset_ns: server_ns - middle,
                    peer_offsets: json!({}),
                })
            });
            futures::future::join_all(reads).await.into_iter().flatten().collect()
        });
        Box::pin(async move { readings.await.unwrap_or_default() })
    }

    async fn converged(&mut self) -> Result<bool, EngineError> {
        if let Some(lab) = &mut self.lab
            && !lab.converged().await?
        {
            return Ok(false);
        }
        if !self.markers_written {
            self.round += 1;
            self.cluster.write_markers(self.round).await?;
            self.markers_written = true;
        }
        let arrived = self.cluster.markers_arrived(self.round).await?;
        if arrived {
            self.markers_written = false;
        }
        Ok(arrived)
    }

    fn notes(&mut self) -> Vec<String> {
        let logs: Vec<(usize, String)> =
            self.cluster.servers.iter().map(|server| (server.node, server.log())).collect();
        // Mode by mode, node by node.
        let modes = self.cluster.resolutions.iter().map(|mode| mode.database());
        modes
            .flat_map(|database| {
                logs.iter().flat_map(move |(node, log)| conflict_notes(*node, log, &[database]))
            })
            .collect()
    }

    async fn failed_buckets(&mut self, replica: ReplicaId) -> Result<BTreeMap<String, String>, EngineError> {
        match &mut self.lab {
            Some(lab) => lab.failed_buckets(replica).await,
            None => Ok(BTreeMap::new()),
        }
    }

    async fn state(&mut self, replica: ReplicaId) -> Result<Snapshot, EngineError> {
        let mut snapshot = match &mut self.lab {
            Some(lab) => lab.state(replica).await?,
            None => Snapshot::new(),
        };
        snapshot.extend(self.pg_state(replica).await?);
        Ok(snapshot)
    }
}

/// Runs one trial of `spec` on fresh servers (and the lab's replicas beside
/// them, with data under `data_dir`), and stops them.
pub async fn run_trial(
    spec: &Spec,
    plan: TrialPlan,
    data_dir: &Path,
    token: &str,
    http: reqwest::Client,
    counters: Arc<crate::experiment::workload::Counters>,
) -> Result<super::TrialOutcome, EngineError> {
    let mut engine = Pglogical::start(spec, plan, data_dir, token, http, None).await?;
    let outcome = super::run_trial(&mut engine, spec, plan, counters).await;
    engine.stop().await;
    outcome
}
