//! The live lab: a cluster of real replica processes, driven from the page.
//!
//! The lab starts 3 to 5 `clocklab replica` processes (the engine of real
//! [`Processes`] the experiment runner uses), and lets a class do to them,
//! through the same operations (`experiment::faults::timeline`), what the
//! experiments do in bulk: skew, drift or step a replica's clock,
//! cut and heal links, pause a replica with SIGSTOP and resume it with
//! SIGCONT, write by hand or turn on a background workload. Every write is
//! the runner's mirrored read-modify-write, so the same operation lands on
//! every strategy's bucket at once and the strategies can be compared side
//! by side.
//!
//! What happens streams to the page as [`LabEvent`]s (server-sent events):
//! each replica's clocks every [`STATUS_INTERVAL`], each write, replication
//! progress (high-water marks moving), and each drop the live oracle
//! ([`settle`]) has made sure of. Stopping the lab, or the dashboard, kills
//! the replicas; they also die with the dashboard's process if it is killed.
//!
//! Lease workers ([`lease`]) can join the cluster: a lock service and two
//! real lease-holder processes for the class to pause (Figures 8-4, 8-5).
//!
//! A [`preset`] plays a known story (Figure 8-3, concurrent writes, an NTP
//! step back, a partition) on the cluster through these same operations,
//! one step at a time, with a line for the teacher at each.

pub mod lease;
pub mod preset;
mod settle;
pub mod verdict;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use self::settle::KeyActivity;
use super::DashboardError;
use crate::analysis::DroppedWrite;
use crate::clock::dots::ReplicaId;
use crate::clock::hlc::HlcTimestamp;
use crate::clock::physical::ModelDescription;
use crate::clock::update::ClockUpdate;
use crate::engine::processes::Processes;
use crate::engine::processes::cluster::{Cluster, ClusterClient, ClusterError, ClusterOptions};
use crate::engine::{Engine, EngineError};
use crate::experiment::faults::timeline::{self, Operation};
use crate::experiment::faults::{PartitionFault, PartitionShape, Split};
use crate::experiment::keys::{DEFAULT_WRITES_PER_KEY, retired_name};
use crate::experiment::workload::{ClientOperation, mirrored};
use crate::history::WriteRecord;
use crate::replica::client::ClientError;
use crate::replica::core::Status;
use crate::replica::links::{Cut, LinkUpdate};
use crate::strategy;

/// How many replicas a lab may have.
pub const MIN_REPLICAS: usize = 3;
pub const MAX_REPLICAS: usize = 5;
/// How often each replica's clocks and high-water marks are read.
pub const STATUS_INTERVAL: Duration = Duration::from_millis(250);
/// How often the live oracle looks for settled keys, in status intervals.
pub const ORACLE_EVERY: u64 = 4;
/// The keys the background workload writes: few, so that writes collide.
pub const WORKLOAD_KEYS: [&str; 4] = ["x", "y", "z", "w"];
/// Background workload rates, in operations per second.
pub const DEFAULT_WORKLOAD_RATE: f64 = 4.0;
pub const MAX_WORKLOAD_RATE: f64 = 50.0;
/// The steps a page offers the rate in (the lab takes any rate above 0),
/// operations per second.
pub const WORKLOAD_RATE_STEP: f64 = 0.5;
/// Events kept for a slow page before it misses some.
pub const EVENT_BUFFER: usize = 4096;
/// The most delay the page may put on a link, in ms: enough for a slow
/// node to look dead to a client that gives up sooner.
pub const MAX_LINK_DELAY_MS: f64 = 10_000.0;

impl From<EngineError> for DashboardError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Cluster(error) => error.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A replica's refusal is the page's bad request; anything else is the lab's fault.
impl From<ClusterError> for DashboardError {
    fn from(error: ClusterError) -> Self {
        match &error {
            ClusterError::Request(_, ClientError::Refused { status: 409, message, .. }) => {
                Self::Conflict(message.clone())
            }
            ClusterError::Request(_, ClientError::Refused { status: 400..=499, message, .. }) => {
                Self::BadRequest(message.clone())
            }
            _ => Self::Internal(error.to_string()),
        }
    }
}

/// What the page hears, as server-sent events named by `type`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LabEvent {
    /// The whole picture; sent first to every new listener and on changes.
    Snapshot(Box<LabView>),
    /// Every replica's clocks and marks.
    Status { replicas: Vec<ReplicaView> },
    /// One write on one bucket, as the client saw it.
    Write(Box<WriteRecord>),
    /// `replica` now has every write of `origin` up to `through`.
    Replicated { replica: ReplicaId, origin: ReplicaId, through: u64 },
    /// An acknowledged write the live oracle found dropped for good.
    Drop(Box<DroppedWrite>),
    /// Running totals per strategy.
    Counts(Counts),
    /// The lease workers: who holds each lease, who believes it does, and
    /// what their writes did.
    Lease(Box<lease::LeaseView>),
}

/// One replica as the page shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplicaView {
    pub id: ReplicaId,
    pub pid: Option<u32>,
    pub paused: bool,
    /// Whether its last status request was answered.
    pub reachable: bool,
    pub true_ns: i64,
    pub physical_ns: i64,
    /// Physical clock minus true time, in ms.
    pub offset_ms: f64,
    pub hlc: HlcTimestamp,
    pub model: Option<ModelDescription>,
    pub high_water: BTreeMap<ReplicaId, u64>,
}

/// A link with delay or loss on it, both ways.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowLink {
    pub a: ReplicaId,
    pub b: ReplicaId,
    /// Every push waits this long, ms.
    pub delay_ms: f64,
    /// The share of pushes lost, 0 to 1.
    pub loss: f64,
}

/// One bucket's siblings of a key on each replica that answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyState {
    pub key: String,
    /// Per bucket, per replica: what it holds (a paused replica is left out).
    pub buckets: BTreeMap<String, BTreeMap<ReplicaId, Vec<crate::replica::core::Sibling>>>,
    /// Replicas not read: paused, or not answering.
    pub unread: Vec<ReplicaId>,
    /// When the replicas were read, true time in ns.
    pub read_ns: i64,
}

/// Running totals of one strategy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StrategyCounts {
    pub acked: usize,
    pub dropped: usize,
    pub causality: usize,
    pub realtime: usize,
    pub concurrent: usize,
    /// Reads that returned more than one sibling.
    pub siblings: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub strategies: BTreeMap<String, StrategyCounts>,
    /// (bucket, key) pairs the oracle cannot judge yet.
    pub unsettled: usize,
    /// Why the oracle is waiting, if it is (e.g. a paused replica).
    pub waiting: Option<String>,
}

/// What the lab accepts, for the page to offer exactly that (never a copy
/// of these numbers in JavaScript).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabLimits {
    pub min_replicas: usize,
    pub max_replicas: usize,
    /// Operations per second.
    pub default_workload_rate: f64,
    pub max_workload_rate: f64,
    pub workload_rate_step: f64,
    /// Link delay, ms.
    pub max_link_delay_ms: f64,
}

impl Default for LabLimits {
    fn default() -> Self {
        Self {
            min_replicas: MIN_REPLICAS,
            max_replicas: MAX_REPLICAS,
            default_workload_rate: DEFAULT_WORKLOAD_RATE,
            max_workload_rate: MAX_WORKLOAD_RATE,
            workload_rate_step: WORKLOAD_RATE_STEP,
            max_link_delay_ms: MAX_LINK_DELAY_MS,
        }
    }
}

/// Everything `GET /api/lab` returns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LabView {
    pub limits: LabLimits,
    pub running: bool,
    pub replicas: Vec<ReplicaView>,
    pub buckets: Vec<String>,
    /// Each bucket's colour, as every plot and page gives it.
    pub colours: BTreeMap<String, String>,
    /// What each strategy does, in a line, for the page's key.
    pub key: BTreeMap<String, crate::report::palette::StrategyKey>,
    /// Cut links, as `[a, b]` with `a < b`.
    pub cuts: BTreeSet<(ReplicaId, ReplicaId)>,
    /// Links made slow or lossy (both ways), `a < b`.
    pub slow_links: Vec<SlowLink>,
    /// Operations per second, if the background workload is on.
    pub workload_rate: Option<f64>,
    pub counts: Counts,
    pub drops: Vec<DroppedWrite>,
    /// After a preset's last step: what its story said of each strategy,
    /// against what the live oracle found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub story_check: Vec<verdict::ClaimCheck>,
    /// The lease workers, once started (`POST /api/lab/lease/start`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<lease::LeaseView>,
}

/// The lab's journal of writes, shared by the tasks that write and the
/// watcher that judges them.
#[derive(Default)]
struct Journal {
    writes: Vec<WriteRecord>,
    activity: KeyActivity,
    next_item: u64,
    /// The background workload's writes so far, per slot of [`WORKLOAD_KEYS`].
    workload_writes: [u64; WORKLOAD_KEYS.len()],
    paused: BTreeSet<ReplicaId>,
}

/// What the lab's tasks share.
struct Shared {
    admin: ClusterClient,
    buckets: Vec<String>,
    journal: Mutex<Journal>,
    view: Arc<Mutex<LabView>>,
    events: broadcast::Sender<LabEvent>,
    /// Every replica's state as last read, and when (true time, ns).
    states: Mutex<(BTreeMap<ReplicaId, crate::replica::core::Snapshot>, i64)>,
    /// The lease workers, once started; stopped (killed) when dropped.
    lease: tokio::sync::Mutex<Option<lease::LabLease>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Shared {
    fn emit(&self, event: LabEvent) {
        // No listener is fine: the page may not be open.
        let _ = self.events.send(event);
    }

    /// One mirrored read-modify-write of a new item on `key` at `replica`.
    async fn operate(&self, replica: ReplicaId, key: &str) -> Vec<WriteRecord> {
        let item = {
            let mut journal = lock(&self.journal);
            journal.next_item += 1;
            *journal.activity.in_flight.entry(key.to_string()).or_default() += 1;
            *journal.activity.started.entry(key.to_string()).or_default() += 1;
            journal.next_item
        };
        let operation =
            ClientOperation { point: 0, trial: 0, client: self.admin.replica(replica), replica, key, item };
        let writes = mirrored(&operation, &self.buckets).await;
        {
            let mut journal = lock(&self.journal);
            if let Some(count) = journal.activity.in_flight.get_mut(key) {
                *count -= 1;
            }
            journal.writes.extend(writes.iter().cloned());
        }
        for write in &writes {
            self.emit(LabEvent::Write(Box::new(write.clone())));
        }
        writes
    }
}

/// A running lab cluster and its tasks.
struct Running {
    engine: Processes,
    shared: Arc<Shared>,
    watcher: JoinHandle<()>,
    workload: Option<JoinHandle<()>>,
    _data: tempfile::TempDir,
}

/// The lab: at most one running cluster.
pub struct Lab {
    /// Plugin strategies every lab cluster hosts beside the built-ins.
    plugins: Vec<strategy::plugin::PluginSpec>,
    running: tokio::sync::Mutex<Option<Running>>,
    view: Arc<Mutex<LabView>>,
    events: broadcast::Sender<LabEvent>,
    http: reqwest::Client,
}

/// `POST /api/lab/start`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    pub replicas: usize,
}

/// `PUT /api/lab/links`: on the link between `a` and `b`, both ways, cut
/// it (`true`) or heal it, and/or set its delay (ms) and loss (0 to 1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub a: ReplicaId,
    pub b: ReplicaId,
    #[serde(default)]
    pub cut: Option<bool>,
    #[serde(default)]
    pub delay_ms: Option<f64>,
    #[serde(default)]
    pub loss: Option<f64>,
}

/// `PUT /api/lab/partition`: split the cluster by `groups`, or by a Jepsen
/// `shape` (`isolate` cuts off `replica`, default 1); `one_way` cuts only
/// the links toward the first group.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRequest {
    #[serde(default)]
    pub groups: Vec<Vec<ReplicaId>>,
    #[serde(default)]
    pub shape: Option<PartitionShape>,
    #[serde(default)]
    pub replica: Option<ReplicaId>,
    #[serde(default)]
    pub one_way: bool,
}

/// The peer of a link operation (the replica itself for any other).
fn link_peer(operation: &Operation) -> Option<ReplicaId> {
    match operation {
        Operation::SetLink { update, .. } => Some(update.peer),
        other => other.replica(),
    }
}

/// `PUT /api/lab/workload`: a rate in operations per second, or off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadRequest {
    pub rate: Option<f64>,
    /// Seeds the workload's choices of key and replica.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// `POST /api/lab/write`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    pub replica: ReplicaId,
    pub key: String,
}

impl LinkRequest {
    /// Only a cut (`true`) or a heal of the link between `a` and `b`.
    pub fn cut(a: ReplicaId, b: ReplicaId, cut: bool) -> Self {
        Self { a, b, cut: Some(cut), delay_ms: None, loss: None }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Lab {
    pub fn new(plugins: Vec<strategy::plugin::PluginSpec>) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            plugins,
            running: tokio::sync::Mutex::new(None),
            view: Arc::new(Mutex::new(LabView::default())),
            events,
            http: reqwest::Client::new(),
        }
    }

    pub fn view(&self) -> LabView {
        lock(&self.view).clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LabEvent> {
        self.events.subscribe()
    }

    fn snapshot(&self) {
        let _ = self.events.send(LabEvent::Snapshot(Box::new(self.view())));
    }

    /// Starts a cluster; refused if one runs.
    pub async fn start(&self, request: StartRequest) -> Result<LabView, DashboardError> {
        if !(MIN_REPLICAS..=MAX_REPLICAS).contains(&request.replicas) {
            return Err(DashboardError::BadRequest(format!(
                "a lab has {MIN_REPLICAS} to {MAX_REPLICAS} replicas, not {}",
                request.replicas
            )));
        }
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Err(DashboardError::Conflict("a lab cluster is already running; stop it first".into()));
        }
        let data = tempfile::Builder::new()
            .prefix("clocklab-lab-")
            .tempdir()
            .map_err(|error| DashboardError::Internal(format!("cannot make a data directory: {error}")))?;
        let token = format!("clocklab-lab-{}", std::process::id());
        let mut replica_args: Vec<String> = vec!["--clock".into(), "model".into()];
        for plugin in &self.plugins {
            replica_args.extend(["--plugin".to_string(), serde_json::to_string(plugin).unwrap_or_default()]);
        }
        let options =
            ClusterOptions { replicas: request.replicas, token, replica_args, ..Default::default() };
        let engine = Processes::of(Cluster::start(options, data.path(), self.http.clone()).await?);
        let cluster = engine.cluster();
        let mut buckets: Vec<String> = strategy::registry().iter().map(|s| s.name().to_string()).collect();
        buckets.extend(self.plugins.iter().filter_map(|plugin| plugin.name.clone()));
        *lock(&self.view) = LabView {
            running: true,
            replicas: cluster
                .ids()
                .map(|id| ReplicaView { id, pid: cluster.pid(id), reachable: true, ..Default::default() })
                .collect(),
            counts: Counts {
                strategies: buckets.iter().map(|b| (b.clone(), StrategyCounts::default())).collect(),
                ..Default::default()
            },
            colours: crate::report::palette::colours(buckets.iter().map(String::as_str)),
            key: crate::report::palette::key(buckets.iter().map(String::as_str)),
            buckets: buckets.clone(),
            ..Default::default()
        };
        let shared = Arc::new(Shared {
            admin: cluster.client(),
            buckets,
            journal: Mutex::new(Journal::default()),
            view: Arc::clone(&self.view),
            events: self.events.clone(),
            states: Mutex::new((BTreeMap::new(), 0)),
            lease: tokio::sync::Mutex::new(None),
        });
        let watcher = tokio::spawn(watch::run(Arc::clone(&shared)));
        *running = Some(Running { engine, shared, watcher, workload: None, _data: data });
        drop(running);
        self.snapshot();
        Ok(self.view())
    }

    /// Stops the cluster, if one runs, and waits for its replicas to exit.
    pub async fn stop(&self) -> LabView {
        if let Some(running) = self.running.lock().await.take() {
            running.watcher.abort();
            // The workers go before the replicas they write to.
            drop(running.shared.lease.lock().await.take());
            if let Some(workload) = running.workload {
                workload.abort();
            }
            running.engine.stop().await;
            *lock(&self.view) = LabView::default();
            self.snapshot();
        }
        self.view()
    }

    async fn with_running<T>(
        &self,
        action: impl AsyncFnOnce(&mut Running) -> Result<T, DashboardError>,
    ) -> Result<T, DashboardError> {
        let mut running = self.running.lock().await;
        let running =
            running.as_mut().ok_or_else(|| DashboardError::Conflict("no lab cluster is running".into()))?;
        action(running).await
    }

    fn check_replica(running: &Running, id: ReplicaId) -> Result<(), DashboardError> {
        let count = running.engine.cluster().ids().count();
        if id == 0 || id as usize > count {
            return Err(DashboardError::BadRequest(format!("no replica {id}; replicas are 1 to {count}")));
        }
        Ok(())
    }

    /// Changes a replica's clock model (`PUT /admin/clock`'s body).
    pub async fn set_clock(&self, id: ReplicaId, update: ClockUpdate) -> Result<Status, DashboardError> {
        update.validate().map_err(|error| DashboardError::BadRequest(error.to_string()))?;
        self.with_running(async |running| {
            Self::check_replica(running, id)?;
            if lock(&running.shared.journal).paused.contains(&id) {
                return Err(DashboardError::Conflict(format!("replica {id} is paused; resume it first")));
            }
            running.engine.apply(&Operation::SetClock { replica: id, update }).await?;
            Ok(running.engine.cluster().status(id).await?)
        })
        .await
    }

    /// Cuts or heals the link between two replicas, both ways, and sets
    /// its delay and loss.
    pub async fn set_link(&self, request: LinkRequest) -> Result<LabView, DashboardError> {
        let LinkRequest { a, b, cut, delay_ms, loss } = request;
        if cut.is_none() && delay_ms.is_none() && loss.is_none() {
            return Err(DashboardError::BadRequest("say what to change: `cut`, `delay_ms` or `loss`".into()));
        }
        if let Some(delay) = delay_ms
            && !(0.0..=MAX_LINK_DELAY_MS).contains(&delay)
        {
            return Err(DashboardError::BadRequest(format!(
                "a link's delay is 0 to {MAX_LINK_DELAY_MS} ms, not {delay}"
            )));
        }
        if let Some(loss) = loss
            && !(0.0..=1.0).contains(&loss)
        {
            return Err(DashboardError::BadRequest(format!("a link's loss is 0 to 1, not {loss}")));
        }
        self.with_running(async |running| {
            Self::check_replica(running, a)?;
            Self::check_replica(running, b)?;
            if a == b {
                return Err(DashboardError::BadRequest("a link joins two different replicas".into()));
            }
            if let Some(paused) = lock(&running.shared.journal).paused.iter().find(|&&id| id == a || id == b)
            {
                return Err(DashboardError::Conflict(format!("replica {paused} is paused; resume it first")));
            }
            let update = |peer: ReplicaId| LinkUpdate {
                peer,
                cut: cut.map(|cut| if cut { Cut::Both } else { Cut::None }),
                delay_ms: delay_ms.map(crate::replica::links::DelaySpec::Fixed),
                loss,
                duplicate: None,
                reorder: None,
            };
            for (replica, peer) in [(a, b), (b, a)] {
                running.engine.apply(&Operation::SetLink { replica, update: update(peer) }).await?;
            }
            let mut view = lock(&self.view);
            let (low, high) = (a.min(b), a.max(b));
            match cut {
                Some(true) => {
                    view.cuts.insert((low, high));
                }
                Some(false) => {
                    view.cuts.remove(&(low, high));
                }
                None => {}
            }
            if delay_ms.is_some() || loss.is_some() {
                let before = view.slow_links.iter().find(|link| (link.a, link.b) == (low, high)).cloned();
                view.slow_links.retain(|link| (link.a, link.b) != (low, high));
                let link = SlowLink {
                    a: low,
                    b: high,
                    delay_ms: delay_ms.or(before.as_ref().map(|link| link.delay_ms)).unwrap_or(0.0),
                    loss: loss.or(before.as_ref().map(|link| link.loss)).unwrap_or(0.0),
                };
                if link.delay_ms > 0.0 || link.loss > 0.0 {
                    view.slow_links.push(link);
                    view.slow_links.sort_by_key(|link| (link.a, link.b));
                }
            }
            Ok(())
        })
        .await?;
        self.snapshot();
        Ok(self.view())
    }

    /// What every replica holds of `key`, per bucket, as last read (about
    /// once a second; a paused replica cannot be read).
    pub async fn key_state(&self, key: &str) -> Result<KeyState, DashboardError> {
        check_key(key)?;
        self.with_running(async |running| {
            let (states, read_ns) = &*lock(&running.shared.states);
            let buckets = running
                .shared
                .buckets
                .iter()
                .map(|bucket| {
                    let replicas = states
                        .iter()
                        .map(|(&id, snapshot)| {
                            let siblings = snapshot
                                .get(bucket)
                                .and_then(|keys| keys.get(key))
                                .map(|reply| reply.siblings.clone())
                                .unwrap_or_default();
                            (id, siblings)
                        })
                        .collect();
                    (bucket.clone(), replicas)
                })
                .collect();
            let unread = running.engine.cluster().ids().filter(|id| !states.contains_key(id)).collect();
            Ok(KeyState { key: key.to_string(), buckets, unread, read_ns: *read_ns })
        })
        .await
    }

    /// Splits the cluster as a `partition` fault does, or refuses a
    /// partition a spec would refuse; heal it with [`Lab::heal_all`].
    pub async fn partition(&self, request: PartitionRequest) -> Result<LabView, DashboardError> {
        let PartitionRequest { groups, shape, replica, one_way } = request;
        let split = Split::new(groups, shape, replica).map_err(DashboardError::BadRequest)?;
        self.with_running(async |running| {
            let replicas = running.engine.cluster().ids().count();
            let fault = PartitionFault { at_ms: 0.0, split, one_way, duration_ms: 1.0 };
            fault.check(replicas).map_err(DashboardError::BadRequest)?;
            if let Some(paused) = lock(&running.shared.journal).paused.first() {
                return Err(DashboardError::Conflict(format!("replica {paused} is paused; resume it first")));
            }
            let steps = timeline::partition(replicas, fault.groups(replicas), one_way);
            for step in &steps {
                running.engine.apply(&step.operation).await?;
            }
            let mut view = lock(&self.view);
            let cut = steps
                .iter()
                .filter_map(|step| Some((step.operation.replica()?, link_peer(&step.operation)?)));
            view.cuts.extend(cut.map(|(a, b)| (a.min(b), a.max(b))));
            Ok(())
        })
        .await?;
        self.snapshot();
        Ok(self.view())
    }

    /// Heals every link, both ways.
    pub async fn heal_all(&self) -> Result<LabView, DashboardError> {
        self.with_running(async |running| {
            for step in timeline::heal_all(running.engine.cluster().ids().count()) {
                running.engine.apply(&step.operation).await?;
            }
            lock(&self.view).cuts.clear();
            Ok(())
        })
        .await?;
        self.snapshot();
        Ok(self.view())
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) a replica's process.
    pub async fn set_paused(&self, id: ReplicaId, pause: bool) -> Result<LabView, DashboardError> {
        self.with_running(async |running| {
            Self::check_replica(running, id)?;
            let operation =
                if pause { Operation::Pause { replica: id } } else { Operation::Resume { replica: id } };
            running
                .engine
                .apply(&operation)
                .await
                .map_err(|error| DashboardError::Internal(error.to_string()))?;
            let mut journal = lock(&running.shared.journal);
            if pause {
                journal.paused.insert(id);
            } else {
                journal.paused.remove(&id);
            }
            if let Some(replica) = lock(&self.view).replicas.iter_mut().find(|replica| replica.id == id) {
                replica.paused = pause;
            }
            Ok(())
        })
        .await?;
        self.snapshot();
        Ok(self.view())
    }

    /// The running cluster's admin client.
    async fn admin(&self) -> Result<ClusterClient, DashboardError> {
        self.with_running(async |running| Ok(running.shared.admin.clone())).await
    }

    /// How many writes the lab has had acknowledged, over every bucket.
    async fn acknowledged(&self) -> Result<usize, DashboardError> {
        self.with_running(async |running| {
            let journal = lock(&running.shared.journal);
            Ok(journal.writes.iter().filter(|write| write.outcome == crate::history::Outcome::Ok).count())
        })
        .await
    }

    /// One read-modify-write on every bucket, by hand.
    pub async fn write(&self, request: WriteRequest) -> Result<Vec<WriteRecord>, DashboardError> {
        let key = request.key.trim();
        check_key(key)?;
        let shared = self
            .with_running(async |running| {
                Self::check_replica(running, request.replica)?;
                if lock(&running.shared.journal).paused.contains(&request.replica) {
                    return Err(DashboardError::Conflict(format!(
                        "replica {} is paused (stopped with SIGSTOP): it cannot answer until it resumes, so a \
                         client writing there would wait and then give up",
                        request.replica
                    )));
                }
                Ok(Arc::clone(&running.shared))
            })
            .await?;
        // The lock is not held while the write waits on a replica, which
        // may be paused.
        Ok(shared.operate(request.replica, key).await)
    }

    /// Starts, changes or stops the background workload.
    pub async fn set_workload(&self, request: WorkloadRequest) -> Result<LabView, DashboardError> {
        if let Some(rate) = request.rate
            && !(rate > 0.0 && rate <= MAX_WORKLOAD_RATE)
        {
            return Err(DashboardError::BadRequest(format!(
                "the workload rate is above 0 and at most {MAX_WORKLOAD_RATE} operations per second, not {rate}"
            )));
        }
        self.with_running(async |running| {
            if let Some(workload) = running.workload.take() {
                workload.abort();
            }
            if let Some(rate) = request.rate {
                let seed = request.seed.unwrap_or_else(rand::random);
                tracing::info!(rate, seed, "lab workload on");
                running.workload = Some(tokio::spawn(workload(Arc::clone(&running.shared), rate, seed)));
            }
            lock(&self.view).workload_rate = request.rate;
            Ok(())
        })
        .await?;
        self.snapshot();
        Ok(self.view())
    }
}

/// Refuses a key a page should not send.
fn check_key(key: &str) -> Result<(), DashboardError> {
    if key.is_empty()
        || key.len() > 64
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(DashboardError::BadRequest("a key is 1 to 64 letters, digits, '-' or '_'".into()));
    }
    Ok(())
}

/// The key of the background workload's next write to slot `slot` of
/// [`WORKLOAD_KEYS`], given how many it has made to each: the slot's key
/// until it has taken [`DEFAULT_WRITES_PER_KEY`] writes, then the next.
fn workload_key(written: &mut [u64; WORKLOAD_KEYS.len()], slot: usize) -> String {
    let key = retired_name(WORKLOAD_KEYS[slot], written[slot] / DEFAULT_WRITES_PER_KEY);
    written[slot] += 1;
    key
}

/// The background workload: at `rate` operations per second, a random key
/// of [`WORKLOAD_KEYS`] on a random replica. Each operation runs on its own
/// task, so one stuck on a paused replica does not hold up the rest. As in
/// an experiment (`experiment::keys`), a key is retired after
/// [`DEFAULT_WRITES_PER_KEY`](crate::experiment::keys::DEFAULT_WRITES_PER_KEY)
/// of the workload's writes and the next takes over (`x`, `x-1`, `x-2`, ...),
/// so a lab left running through a lesson never grows a value without bound.
async fn workload(shared: Arc<Shared>, rate: f64, seed: u64) {
    let mut random = StdRng::seed_from_u64(seed);
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let replicas = shared.admin.ids().count() as ReplicaId;
    loop {
        ticks.tick().await;
        let slot = random.random_range(0..WORKLOAD_KEYS.len());
        // Counted in the journal, so a workload restarted at another rate goes on from there.
        let key = workload_key(&mut lock(&shared.journal).workload_writes, slot);
        let replica = random.random_range(1..=replicas);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move { shared.operate(replica, &key).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_background_workload_retires_a_key_after_its_writes_and_moves_on() {
        let mut written = [0; WORKLOAD_KEYS.len()];
        let first: Vec<String> = (0..DEFAULT_WRITES_PER_KEY).map(|_| workload_key(&mut written, 0)).collect();
        assert!(first.iter().all(|key| key == "x"), "x takes its writes");
        assert_eq!(workload_key(&mut written, 0), "x-1", "then x-1 takes over");
        assert_eq!(workload_key(&mut written, 1), "y", "each slot counts its own");
        assert!(check_key("x-1").is_ok(), "a key the lab accepts from a user too");
    }
}
