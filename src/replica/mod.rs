//! A replica: one process of the multi-leader cluster.
//!
//! ```text
//!   HTTP clients ──► server ──┐                         ┌──► SQLite (store)
//!                             ├─► worker ─► core ───────┤
//!   peers' pushes ─► server ──┘   (group     (pure       └──► peer tasks ──► peers
//!                                  commit)    state)          (replication)
//! ```
//!
//! - [`core`]: the pure state machine; every decision lives there.
//! - [`client`]: the typed client of the HTTP API, for everyone outside.
//! - [`store`]: the replication log in SQLite, WAL mode.
//! - [`worker`]: the one thread that owns both, batching commits.
//! - [`server`]: the HTTP API (docs/design.md).
//! - [`peer_policy`]: what to push to a peer and when, as a pure state
//!   machine with an injected clock.
//! - [`replication`]: one task per peer, the I/O around its policy:
//!   pushing what the peer lacks.
//! - [`links`]: per-peer network faults (cut, delay, loss).
//! - [`offsets`]: each peer's clock offset, estimated from the replication
//!   round trips as NTP does; optionally, refusing writes when our own clock
//!   is the odd one out.
//!
//! [`Replica::open`] does everything that can fail at start-up (opening the
//! store, replaying its log, checking the options); [`Replica::serve`] then
//! assembles the rest on a bound listener until a shutdown future completes,
//! so tests can bind port 0 and stop a replica when they like. `clocklab
//! replica` announces itself between the two, so that a supervisor reading
//! its ready line knows the replica is really up. [`run`] does both.

pub mod client;
pub mod core;
pub mod links;
pub mod offsets;
pub mod peer_policy;
pub mod replication;
pub mod server;
pub mod store;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use self::core::{CoreError, ReplicaCore};
use self::links::Links;
use self::offsets::OffsetMonitor;
use self::peer_policy::ReplicationOptions;
use self::replication::{Peer, PeerTask};
use self::server::ServerState;
use self::store::{Store, StoreError};
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{PhysicalClock, SystemTrueTime};
use crate::clock::update::ClockUpdate;

/// The line `clocklab replica` prints on stdout, as JSON, once it is ready:
/// its store open, its log replayed, its listener bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    pub id: ReplicaId,
    pub addr: SocketAddr,
}

/// How long shutdown waits for open requests and the last commit.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Which physical clock a replica reads.
#[derive(Debug, Clone, PartialEq)]
pub enum ClockChoice {
    /// The operating system's clock, unmodelled.
    System,
    /// True time through a model, starting with these settings.
    Model(Box<ClockUpdate>),
}

/// Everything needed to start a replica.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    pub id: ReplicaId,
    /// Directory of the replica's SQLite file (created if missing).
    pub data_dir: PathBuf,
    pub peers: Vec<Peer>,
    pub cluster_token: String,
    pub clock: ClockChoice,
    /// Seeds the link faults' randomness (delays, losses).
    pub seed: u64,
    pub replication: ReplicationOptions,
    /// Refuse client writes while most peers' clocks are estimated to be
    /// more than this many ms from ours (see [`offsets`]).
    pub max_peer_offset_ms: Option<f64>,
    /// The strategies' parameters (`truetime`'s `epsilon_ms`).
    pub strategy_parameters: crate::strategy::Parameters,
    /// Plugin strategies: each runs as this replica's child process.
    pub plugins: Vec<crate::strategy::plugin::PluginSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("bad clock settings: {0}")]
    Clock(CoreError),
    #[error("the log in the data directory cannot be replayed: {0}")]
    Replay(CoreError),
    #[error("HTTP server: {0}")]
    Serve(#[from] std::io::Error),
    #[error("the worker thread panicked")]
    WorkerPanicked,
    #[error("a peer id is this replica's own id ({0})")]
    SelfPeer(ReplicaId),
    #[error("strategy parameters: {0}")]
    Parameters(#[from] crate::strategy::ParameterError),
    #[error(transparent)]
    Plugin(#[from] crate::strategy::plugin::PluginFailure),
}

/// A replica whose store is open and whose log is replayed, ready to serve.
pub struct Replica {
    options: ReplicaOptions,
    core: ReplicaCore,
    store: Store,
}

/// Runs a replica on `listener` until `shutdown` completes, or until its
/// storage fails: [`Replica::open`], then [`Replica::serve`].
pub async fn run(
    options: ReplicaOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReplicaError> {
    Replica::open(options).await?.serve(listener, shutdown).await
}

impl Replica {
    /// Checks the options, opens the store and replays its log: everything
    /// that can stop a replica from starting.
    pub async fn open(options: ReplicaOptions) -> Result<Self, ReplicaError> {
        if options.peers.iter().any(|peer| peer.id == options.id) {
            return Err(ReplicaError::SelfPeer(options.id));
        }
        let clock = match &options.clock {
            ClockChoice::System => PhysicalClock::system(),
            ClockChoice::Model(_) => PhysicalClock::modelled(Arc::new(SystemTrueTime)),
        };
        let lineup = crate::strategy::plugin::Lineup {
            builtins: crate::strategy::registry_with(&options.strategy_parameters)?,
            plugins: options.plugins.clone(),
        };
        let mut replicas: Vec<ReplicaId> = options.peers.iter().map(|peer| peer.id).collect();
        replicas.push(options.id);
        replicas.sort_unstable();
        let strategies = lineup.for_replica(options.id, &replicas)?;
        let mut core = ReplicaCore::with_strategies(options.id, clock, strategies);
        if let ClockChoice::Model(update) = &options.clock {
            core.update_clock(update).map_err(ReplicaError::Clock)?;
        }
        let data_dir = options.data_dir.clone();
        let id = options.id;
        let (core, store) = tokio::task::spawn_blocking(move || -> Result<_, ReplicaError> {
            let store = Store::open(&data_dir, id)?;
            for write in store.load()? {
                core.restore(write).map_err(ReplicaError::Replay)?;
            }
            Ok((core, store))
        })
        .await
        .map_err(|_| ReplicaError::WorkerPanicked)??;
        tracing::debug!(id, log_len = core.log_len(), "replica log replayed");
        Ok(Self { options, core, store })
    }

    /// How many writes the replayed log holds.
    pub fn log_len(&self) -> usize {
        self.core.log_len()
    }

    /// Serves on `listener` until `shutdown` completes, or until storage fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ReplicaError> {
        let Self { options, core, store } = self;
        let (worker, commands) = worker::channel();
        let (log_len, log_changes) = watch::channel(core.log_len());
        // The worker owns the clock; everyone else reads a copy it republishes
        // on every change, so peer tasks can time round trips without asking it.
        let (clock_changes, clock) = watch::channel(core.clock().clone());
        let mut worker_thread =
            tokio::task::spawn_blocking(move || worker::run(core, store, commands, log_len, clock_changes));
        let offsets = Arc::new(OffsetMonitor::default());

        let links = Arc::new(Links::new(options.peers.iter().map(|peer| peer.id)));
        let client = reqwest::Client::new();
        let mut peer_tasks = JoinSet::new();
        for &peer in &options.peers {
            let task = PeerTask {
                me: options.id,
                peer,
                worker: worker.clone(),
                links: Arc::clone(&links),
                client: client.clone(),
                token: options.cluster_token.clone(),
                options: options.replication.clone(),
                log_len: log_changes.clone(),
                seed: options.seed,
                clock: clock.clone(),
                offsets: Arc::clone(&offsets),
            };
            peer_tasks.spawn(task.run());
        }

        let state = ServerState {
            worker,
            links,
            token: Arc::from(options.cluster_token.as_str()),
            clock,
            offsets,
            max_peer_offset_ms: options.max_peer_offset_ms,
            peers: options.peers.len(),
        };
        let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut server = tokio::spawn(server::serve(listener, state, async {
            let _ = server_stopped.await;
        }));
        tokio::pin!(shutdown);
        let result = tokio::select! {
            () = &mut shutdown => Ok(()),
            served = &mut server => match served {
                Ok(served) => served.map_err(ReplicaError::from),
                Err(_) => Err(ReplicaError::WorkerPanicked),
            },
            finished = &mut worker_thread => match finished {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(ReplicaError::Store(error)),
                Err(_) => Err(ReplicaError::WorkerPanicked),
            },
        };
        // Stop taking requests, stop replicating; the worker ends when the last
        // handle to it is dropped.
        let _ = stop_server.send(());
        peer_tasks.shutdown().await;
        if !server.is_finished() {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
        }
        if !worker_thread.is_finished() {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, worker_thread).await;
        }
        result
    }
}
