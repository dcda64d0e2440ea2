//! A cluster of real replica processes, spawned and owned by the runner.
//!
//! Each replica is `clocklab replica` started from this same binary, on a
//! loopback port, with a fresh SQLite directory and a model clock the runner
//! sets over the admin API. The cluster owns the processes: dropping it kills
//! them, and on Linux each child also asks the kernel to kill it if the
//! runner itself dies (`PR_SET_PDEATHSIG`), so not even a `kill -9` of the
//! runner leaves replicas behind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::clock::dots::ReplicaId;
use crate::clock::update::ClockUpdate;
use crate::replica::Ready;
use crate::replica::client::{ClientError, ReplicaClient};
use crate::replica::core::{Snapshot, Status};
use crate::replica::links::LinkUpdate;
use crate::replica::server::LinkReply;

/// How long a replica may take to announce that it is ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no free loopback port: {0}")]
    Port(std::io::Error),
    #[error("cannot start replica {0}: {1}")]
    Spawn(ReplicaId, std::io::Error),
    #[error("replica {0} did not announce that it is ready: {1}")]
    Announce(ReplicaId, String),
    #[error("cannot signal replica {0}: {1}")]
    Signal(ReplicaId, std::io::Error),
    #[error("replica {0}: {1}")]
    Request(ReplicaId, ClientError),
}

/// What cluster to start.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// How many replicas; their ids are `1..=replicas`.
    pub replicas: usize,
    /// The shared secret for admin and replication requests.
    pub token: String,
    /// The `clocklab` binary to run; `None`: this process's own executable.
    pub executable: Option<PathBuf>,
    /// More `clocklab replica` flags for every replica (e.g. `--clock model`).
    pub replica_args: Vec<String>,
    /// More flags for one replica: entry `i` is for replica `i + 1`.
    pub args_per_replica: Vec<Vec<String>>,
}

/// One running replica process.
struct Process {
    id: ReplicaId,
    child: Child,
}

/// A signal the runner sends a replica, as a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGSTOP: the process is paused, mid-instruction, until SIGCONT.
    Pause,
    /// SIGCONT.
    Resume,
}

/// A running cluster. Replica ids are `1..=n`.
pub struct Cluster {
    clients: ClusterClient,
    processes: Vec<Process>,
    /// Held until the cluster is dropped, after its processes.
    _ports: Vec<PortReservation>,
    /// Replica `i` keeps its SQLite file in `data_dir/replica-i`.
    data_dir: PathBuf,
    options: ClusterOptions,
}

/// A [`ReplicaClient`] for every replica of a cluster. Cheap to clone, so
/// background tasks can hold one while the [`Cluster`] itself, which owns
/// the processes, stays with whoever will stop it.
#[derive(Debug, Clone)]
pub struct ClusterClient {
    replicas: Arc<[ReplicaClient]>,
}

/// A loopback port held for one replica for the cluster's whole life.
///
/// Peers must know each other's addresses before any of them starts, so the
/// runner picks the ports first. A port merely found free could be taken
/// before the replica binds it, or while a crashed replica is down (by
/// another program, or as the local port of any outgoing connection: both
/// draw from the same ephemeral range). So the runner keeps a socket bound
/// to each port, with `SO_REUSEPORT` and never listening, and the replica
/// binds the same port with `SO_REUSEPORT` too (`--reuse-port`). The kernel
/// lets only sockets of the same user that both asked for sharing bind the
/// port, and hands connections only to a listening socket, so while the
/// replica is down a connection is refused, as it would be on a real host.
pub struct PortReservation {
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl PortReservation {
    /// Reserves a free loopback port.
    pub fn new() -> std::io::Result<Self> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseport(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = socket.local_addr()?;
        Ok(Self { _socket: socket, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Cluster {
    /// Starts the replica processes `options` asks for, with data under
    /// `data_dir`, and waits until each has said it is ready.
    pub async fn start(
        options: ClusterOptions,
        data_dir: &Path,
        http: reqwest::Client,
    ) -> Result<Self, ClusterError> {
        let ports = (0..options.replicas)
            .map(|_| PortReservation::new())
            .collect::<Result<Vec<_>, _>>()
            .map_err(ClusterError::Port)?;
        let token: Arc<str> = Arc::from(options.token.as_str());
        let replicas = ports
            .iter()
            .map(|port| ReplicaClient::new(port.addr(), Some(Arc::clone(&token)), http.clone()))
            .collect();
        let mut cluster = Self {
            clients: ClusterClient { replicas },
            processes: Vec::new(),
            _ports: ports,
            data_dir: data_dir.to_path_buf(),
            options,
        };
        for id in cluster.ids() {
            let process = cluster.spawn(id).await?;
            cluster.processes.push(process);
        }
        Ok(cluster)
    }

    /// Sends a replica SIGSTOP or SIGCONT.
    pub fn signal(&self, id: ReplicaId, signal: Signal) -> Result<(), ClusterError> {
        let fail = |error: std::io::Error| ClusterError::Signal(id, error);
        let pid = self.pid(id).ok_or_else(|| fail(std::io::Error::other("it is not running")))?;
        let number = match signal {
            Signal::Pause => libc::SIGSTOP,
            Signal::Resume => libc::SIGCONT,
        };
        // SAFETY: kill(2) on a child we own and have not reaped.
        if unsafe { libc::kill(pid as libc::pid_t, number) } != 0 {
            return Err(fail(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Kills a replica with SIGKILL, as a crash, and waits for it to die.
    pub async fn crash(&mut self, id: ReplicaId) -> Result<(), ClusterError> {
        let process = self.processes.iter_mut().find(|process| process.id == id);
        let process =
            process.ok_or_else(|| ClusterError::Signal(id, std::io::Error::other("no such replica")))?;
        process.child.kill().await.map_err(|error| ClusterError::Signal(id, error))
    }

    /// Starts a crashed replica again, on its address and its SQLite file.
    pub async fn restart(&mut self, id: ReplicaId) -> Result<(), ClusterError> {
        let process = self.spawn(id).await?;
        if let Some(slot) = self.processes.iter_mut().find(|process| process.id == id) {
            *slot = process;
        }
        Ok(())
    }

    async fn spawn(&self, id: ReplicaId) -> Result<Process, ClusterError> {
        let data = self.data_dir.join(format!("replica-{id}"));
        let peers: Vec<String> =
            self.ids().filter(|&peer| peer != id).map(|peer| format!("{peer}={}", self.addr(peer))).collect();
        let executable = match &self.options.executable {
            Some(path) => path.clone(),
            None => std::env::current_exe().map_err(|error| ClusterError::Spawn(id, error))?,
        };
        let own_args =
            self.options.args_per_replica.get(id as usize - 1).map(Vec::as_slice).unwrap_or_default();
        let mut command = supervised(&executable, &self.options.token);
        command
            .args([
                "replica",
                "--id",
                &id.to_string(),
                "--listen",
                &self.addr(id).to_string(),
                "--reuse-port",
            ])
            .arg("--data")
            .arg(&data)
            .args(["--peers", &peers.join(",")])
            .args(&self.options.replica_args)
            .args(own_args);
        let mut child = command.spawn().map_err(|error| ClusterError::Spawn(id, error))?;
        let stdout = child.stdout.take().ok_or_else(|| ClusterError::Announce(id, "no stdout".into()))?;
        let mut line = String::new();
        let read = tokio::time::timeout(START_TIMEOUT, BufReader::new(stdout).read_line(&mut line)).await;
        match read {
            Ok(Ok(count)) if count > 0 => {}
            Ok(Ok(_)) => return Err(ClusterError::Announce(id, "it exited (see its error above)".into())),
            Ok(Err(error)) => return Err(ClusterError::Announce(id, error.to_string())),
            Err(_) => return Err(ClusterError::Announce(id, format!("no answer in {START_TIMEOUT:?}"))),
        }
        let ready: Ready = serde_json::from_str(&line)
            .map_err(|error| ClusterError::Announce(id, format!("{line:?}: {error}")))?;
        if ready.id != id || ready.addr != self.addr(id) {
            return Err(ClusterError::Announce(id, format!("unexpected announcement {line:?}")));
        }
        Ok(Process { id, child })
    }

    pub fn ids(&self) -> impl Iterator<Item = ReplicaId> + use<> {
        self.clients.ids()
    }

    /// The cluster's shared secret.
    pub fn token(&self) -> &str {
        &self.options.token
    }

    /// The `clocklab` binary its processes run.
    pub fn executable(&self) -> std::io::Result<PathBuf> {
        match &self.options.executable {
            Some(path) => Ok(path.clone()),
            None => std::env::current_exe(),
        }
    }

    pub fn addr(&self, id: ReplicaId) -> SocketAddr {
        self.clients.addr(id)
    }

    /// The OS process ids of the running replicas.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().filter_map(|process| process.child.id()).collect()
    }

    /// The OS process id of one replica, while it runs.
    pub fn pid(&self, id: ReplicaId) -> Option<u32> {
        self.processes.iter().find(|process| process.id == id).and_then(|process| process.child.id())
    }

    /// Clients of every replica, to keep beyond borrows of the cluster.
    pub fn client(&self) -> ClusterClient {
        self.clients.clone()
    }

    /// The client of replica `id`.
    pub fn replica(&self, id: ReplicaId) -> &ReplicaClient {
        self.clients.replica(id)
    }

    /// `PUT /admin/clock` on replica `id`.
    pub async fn set_clock(&self, id: ReplicaId, update: &ClockUpdate) -> Result<Status, ClusterError> {
        self.clients.set_clock(id, update).await
    }

    /// `PUT /admin/links` on replica `id`.
    pub async fn set_link(&self, id: ReplicaId, update: &LinkUpdate) -> Result<LinkReply, ClusterError> {
        self.clients.set_link(id, update).await
    }

    /// `GET /admin/status` of replica `id`.
    pub async fn status(&self, id: ReplicaId) -> Result<Status, ClusterError> {
        self.clients.status(id).await
    }

    /// `GET /admin/state` of replica `id`.
    pub async fn state(&self, id: ReplicaId) -> Result<Snapshot, ClusterError> {
        self.clients.state(id).await
    }

    /// Kills every replica (SIGKILL) and waits for each to exit. The runner
    /// has read what it needs; SQLite's WAL makes this safe for the files.
    pub async fn stop(mut self) {
        for process in &mut self.processes {
            if let Err(error) = process.child.kill().await {
                tracing::warn!(replica = process.id, %error, "could not stop replica");
            }
        }
    }
}

impl ClusterClient {
    pub fn ids(&self) -> impl Iterator<Item = ReplicaId> + use<> {
        1..=self.replicas.len() as ReplicaId
    }

    pub fn addr(&self, id: ReplicaId) -> SocketAddr {
        self.replica(id).addr()
    }

    /// The client of replica `id` (ids are `1..=n`).
    pub fn replica(&self, id: ReplicaId) -> &ReplicaClient {
        &self.replicas[id as usize - 1]
    }

    pub async fn set_clock(&self, id: ReplicaId, update: &ClockUpdate) -> Result<Status, ClusterError> {
        self.replica(id).set_clock(update).await.map_err(|error| ClusterError::Request(id, error))
    }

    pub async fn set_link(&self, id: ReplicaId, update: &LinkUpdate) -> Result<LinkReply, ClusterError> {
        self.replica(id).set_link(update).await.map_err(|error| ClusterError::Request(id, error))
    }

    pub async fn status(&self, id: ReplicaId) -> Result<Status, ClusterError> {
        self.status_within(id, crate::replica::client::ADMIN_TIMEOUT).await
    }

    /// `GET /admin/status` of replica `id`, if it answers within `timeout`.
    pub async fn status_within(&self, id: ReplicaId, timeout: Duration) -> Result<Status, ClusterError> {
        self.replica(id).status(timeout).await.map_err(|error| ClusterError::Request(id, error))
    }

    pub async fn state(&self, id: ReplicaId) -> Result<Snapshot, ClusterError> {
        self.replica(id).state().await.map_err(|error| ClusterError::Request(id, error))
    }
}

/// A `clocklab` child process as the runner keeps them: the cluster token
/// in its environment, its stdout piped for the ready line, its errors on
/// ours, killed when dropped and (on Linux) when the runner dies.
pub fn supervised(executable: &Path, token: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(executable);
    command
        .env("CLOCKLAB_CLUSTER_TOKEN", token)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: see `die_with_parent`: async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(crate::strategy::plugin::process::die_with_parent);
    }
    command
}
