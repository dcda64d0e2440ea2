//! A cluster of real replica processes, spawned and owned by the runner.
//!
//! Each replica is `clocklab replica` started from this same binary, on a
//! loopback port, with a fresh SQLite directory and a model clock the runner
//! sets over the admin API. The cluster owns the processes: dropping it kills
//! them, and on Linux each child also asks the kernel to kill it if the
//! runner itself dies (`PR_SET_PDEATHSIG`), so not even a `kill -9` of the
//! runner leaves replicas behind.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::clock::dots::ReplicaId;
use crate::replica::replication::TOKEN_HEADER;

/// How long a replica may take to announce that it listens.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one admin request may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no free loopback port: {0}")]
    Port(std::io::Error),
    #[error("cannot start replica {0}: {1}")]
    Spawn(ReplicaId, std::io::Error),
    #[error("replica {0} did not announce its address: {1}")]
    Announce(ReplicaId, String),
    #[error("cannot signal replica {0}: {1}")]
    Signal(ReplicaId, std::io::Error),
    #[error("admin request {what} to replica {replica} failed: {error}")]
    Admin { replica: ReplicaId, what: String, error: String },
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
    admin: AdminClient,
    processes: Vec<Process>,
    /// Replica `i` keeps its SQLite file in `data_dir/replica-i`.
    data_dir: std::path::PathBuf,
    /// More `clocklab replica` flags for every replica.
    replica_args: Vec<String>,
}

/// Talks to a cluster's admin API. Cheap to clone, so background tasks can
/// hold one while the [`Cluster`] itself, which owns the processes, stays
/// with whoever will stop it.
#[derive(Clone)]
pub struct AdminClient {
    addrs: Arc<[SocketAddr]>,
    token: Arc<str>,
    client: reqwest::Client,
}

fn free_port() -> Result<SocketAddr, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(ClusterError::Port)?;
    listener.local_addr().map_err(ClusterError::Port)
}

impl Cluster {
    /// Starts `replicas` replica processes with data under `data_dir`.
    pub async fn start(
        replicas: usize,
        data_dir: &Path,
        token: &str,
        client: reqwest::Client,
        replica_args: Vec<String>,
    ) -> Result<Self, ClusterError> {
        // Peers must know each other's addresses at start, so ports are
        // picked up front (a port could be taken in between; then the
        // replica fails to bind and says so).
        let addrs = (0..replicas).map(|_| free_port()).collect::<Result<Vec<_>, _>>()?;
        let admin = AdminClient { addrs: addrs.into(), token: token.into(), client };
        let mut cluster =
            Self { admin, processes: Vec::new(), data_dir: data_dir.to_path_buf(), replica_args };
        for index in 0..replicas {
            let id = index as ReplicaId + 1;
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
        let data = data.as_path();
        let peers: Vec<String> =
            self.ids().filter(|&peer| peer != id).map(|peer| format!("{peer}={}", self.addr(peer))).collect();
        let executable = std::env::current_exe().map_err(|error| ClusterError::Spawn(id, error))?;
        let mut command = Command::new(executable);
        command
            .args(["replica", "--id", &id.to_string(), "--listen", &self.addr(id).to_string()])
            .arg("--data")
            .arg(data)
            .args(["--peers", &peers.join(","), "--clock", "model"])
            .args(&self.replica_args)
            .env("CLOCKLAB_CLUSTER_TOKEN", &*self.admin.token)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches no memory of ours;
        // it runs in the child between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
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
        let announced: Value =
            serde_json::from_str(&line).map_err(|error| ClusterError::Announce(id, error.to_string()))?;
        if announced["id"] != json!(id) {
            return Err(ClusterError::Announce(id, format!("unexpected announcement {line:?}")));
        }
        Ok(Process { id, child })
    }

    pub fn ids(&self) -> impl Iterator<Item = ReplicaId> + use<> {
        self.admin.ids()
    }

    pub fn addr(&self, id: ReplicaId) -> SocketAddr {
        self.admin.addr(id)
    }

    /// The OS process ids of the running replicas.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().filter_map(|process| process.child.id()).collect()
    }

    /// The OS process id of one replica, while it runs.
    pub fn pid(&self, id: ReplicaId) -> Option<u32> {
        self.processes.iter().find(|process| process.id == id).and_then(|process| process.child.id())
    }

    /// A handle on the admin API that outlives borrows of the cluster.
    pub fn admin_client(&self) -> AdminClient {
        self.admin.clone()
    }

    /// Sends an admin request and returns its JSON answer.
    pub async fn admin(
        &self,
        id: ReplicaId,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClusterError> {
        self.admin.request(id, method, path, body).await
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

impl AdminClient {
    pub fn ids(&self) -> impl Iterator<Item = ReplicaId> + use<> {
        1..=self.addrs.len() as ReplicaId
    }

    pub fn addr(&self, id: ReplicaId) -> SocketAddr {
        self.addrs[id as usize - 1]
    }

    /// Sends an admin request to replica `id` and returns its JSON answer.
    pub async fn request(
        &self,
        id: ReplicaId,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClusterError> {
        let what = format!("{method} {path}");
        let fail = |error: String| ClusterError::Admin { replica: id, what: what.clone(), error };
        let mut request = self
            .client
            .request(method.clone(), format!("http://{}{path}", self.addr(id)))
            .header(TOKEN_HEADER, &*self.token)
            .timeout(ADMIN_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|error| fail(error.to_string()))?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|error| fail(error.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("{status}: {answer}")));
        }
        Ok(answer)
    }
}
