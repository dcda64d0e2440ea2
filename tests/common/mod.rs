//! A cluster of real `clocklab replica` processes for integration tests.
//!
//! It is the runner's own [`clocklab::engine::processes::cluster::Cluster`] (the
//! same spawning, the same ready line, the same kill-on-drop), started from
//! the `clocklab` binary cargo built, and spoken to through the typed
//! [`clocklab::replica::client::ReplicaClient`]. Each replica has its own
//! SQLite directory in a temporary directory; dropping the [`Cluster`] kills
//! every process.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clocklab::engine::processes::cluster::{self, ClusterClient, ClusterOptions};
use clocklab::replica::client::ClientError;
use clocklab::replica::core::{ReadReply, Snapshot, WriteReply};
use clocklab::replica::links::{Cut, LinkUpdate};
use clocklab::strategy::RawJson;
use serde_json::Value;

pub const TOKEN: &str = "test-token";
pub const BUCKETS: [&str; 3] = ["lww-wall", "lww-hlc", "vv"];
/// How long one client request in a test may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Cluster {
    cluster: tokio::sync::Mutex<cluster::Cluster>,
    client: ClusterClient,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts replicas 1..=n; `flags[i]` are extra flags for replica i+1.
    pub async fn start(flags: &[&[&str]]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = ClusterOptions {
            replicas: flags.len(),
            token: TOKEN.to_string(),
            executable: Some(PathBuf::from(env!("CARGO_BIN_EXE_clocklab"))),
            replica_args: vec!["--seed".into(), "7".into()],
            args_per_replica: flags
                .iter()
                .map(|own| own.iter().map(|flag| flag.to_string()).collect())
                .collect(),
        };
        let cluster = cluster::Cluster::start(options, dir.path(), reqwest::Client::new())
            .await
            .expect("the replicas start");
        Self { client: cluster.client(), cluster: tokio::sync::Mutex::new(cluster), _dir: dir }
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + use<> {
        self.client.ids()
    }

    /// `GET /kv/{bucket}/{key}` on a replica.
    pub async fn get(&self, replica: u32, bucket: &str, key: &str) -> ReadReply {
        let read = self.client.replica(replica).read(bucket, key, REQUEST_TIMEOUT).await;
        read.unwrap_or_else(|error| panic!("GET failed: {error}"))
    }

    /// `PUT /kv/{bucket}/{key}` on a replica, as it went.
    pub async fn try_put(
        &self,
        replica: u32,
        bucket: &str,
        key: &str,
        value: Value,
        context: Value,
    ) -> Result<WriteReply, ClientError> {
        let value = RawJson::of(&value);
        self.client.replica(replica).write(bucket, key, value, context, REQUEST_TIMEOUT).await
    }

    /// `PUT /kv/{bucket}/{key}` that must succeed; returns the reply.
    pub async fn put(
        &self,
        replica: u32,
        bucket: &str,
        key: &str,
        value: Value,
        context: Value,
    ) -> WriteReply {
        let write = self.try_put(replica, bucket, key, value, context).await;
        write.unwrap_or_else(|error| panic!("PUT failed: {error}"))
    }

    /// Sets one replica's side of the link to a peer.
    pub async fn link(&self, replica: u32, peer: u32, cut: Cut) {
        let update = LinkUpdate::cut(peer, cut);
        self.client.set_link(replica, &update).await.unwrap_or_else(|error| panic!("link: {error}"));
    }

    /// Cuts (or heals, with [`Cut::None`]) both ends of the link between a and b.
    pub async fn partition(&self, a: u32, b: u32, cut: Cut) {
        self.link(a, b, cut).await;
        self.link(b, a, cut).await;
    }

    /// Every key of every bucket on a replica (`GET /admin/state`).
    pub async fn state(&self, replica: u32) -> Snapshot {
        self.client.state(replica).await.unwrap_or_else(|error| panic!("state: {error}"))
    }

    /// Waits until every replica holds the same state, and returns it.
    pub async fn converged(&self, timeout: Duration) -> Snapshot {
        let deadline = Instant::now() + timeout;
        loop {
            let mut states = Vec::new();
            for id in self.ids() {
                states.push(self.state(id).await);
            }
            if states.windows(2).all(|pair| pair[0] == pair[1]) {
                return states.swap_remove(0);
            }
            assert!(Instant::now() < deadline, "replicas did not converge: {states:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a replica's read of a key satisfies `done`.
    pub async fn wait_for(
        &self,
        replica: u32,
        bucket: &str,
        key: &str,
        done: impl Fn(&ReadReply) -> bool,
    ) -> ReadReply {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let read = self.get(replica, bucket, key).await;
            if done(&read) {
                return read;
            }
            assert!(Instant::now() < deadline, "replica {replica} never got there: {read:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILLs a replica and waits for it to die.
    pub async fn kill(&self, replica: u32) {
        self.cluster.lock().await.crash(replica).await.expect("kill the replica");
    }

    /// Restarts a killed replica on the same address and data directory.
    pub async fn restart(&self, replica: u32) {
        self.cluster.lock().await.restart(replica).await.expect("restart the replica");
    }

    /// The process ids of the running replicas.
    pub async fn pids(&self) -> Vec<u32> {
        self.cluster.lock().await.pids()
    }
}

/// The values of a read's siblings.
pub fn values(read: &ReadReply) -> Vec<Value> {
    read.siblings.iter().map(|sibling| sibling.value.parse()).collect()
}

/// The values of one key's siblings in a state (none if it has no such key).
pub fn values_in(state: &Snapshot, bucket: &str, key: &str) -> Vec<Value> {
    state.get(bucket).and_then(|keys| keys.get(key)).map(values).unwrap_or_default()
}
