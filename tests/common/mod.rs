//! A cluster of real `clocklab replica` processes for integration tests.
//!
//! Each replica is a child process with its own SQLite directory, on a
//! loopback port picked up front (peers must know each other's addresses at
//! start). Dropping the [`Cluster`] kills every process.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const TOKEN: &str = "test-token";
pub const BUCKETS: [&str; 3] = ["lww-wall", "lww-hlc", "vv"];

struct Process {
    id: u32,
    addr: SocketAddr,
    data: PathBuf,
    peers: String,
    clock_args: Vec<String>,
    child: Option<Child>,
}

pub struct Cluster {
    addrs: Vec<SocketAddr>,
    processes: Mutex<Vec<Process>>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

impl Process {
    fn spawn(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clocklab"))
            .args(["replica", "--id", &self.id.to_string(), "--listen", &self.addr.to_string()])
            .arg("--data")
            .arg(&self.data)
            .args(["--peers", &self.peers, "--cluster-token", TOKEN, "--seed", "7"])
            .args(&self.clock_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn clocklab replica");
        // The replica announces itself with one JSON line once it listens.
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the announcement");
        let announced: Value = serde_json::from_str(&line).expect("announcement is JSON");
        assert_eq!(announced["id"], json!(self.id));
        assert_eq!(announced["addr"], json!(self.addr.to_string()));
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in self.lock().iter_mut() {
            process.kill();
        }
    }
}

impl Cluster {
    /// Starts replicas 1..=n; `clocks[i]` are extra flags for replica i+1.
    pub fn start(clocks: &[&[&str]]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let addrs: Vec<SocketAddr> = clocks.iter().map(|_| free_port()).collect();
        let mut processes = Vec::new();
        for (index, clock) in clocks.iter().enumerate() {
            let id = index as u32 + 1;
            let peers: Vec<String> = addrs
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .map(|(other, addr)| format!("{}={addr}", other + 1))
                .collect();
            let mut process = Process {
                id,
                addr: addrs[index],
                data: dir.path().join(format!("replica-{id}")),
                peers: peers.join(","),
                clock_args: clock.iter().map(|arg| arg.to_string()).collect(),
                child: None,
            };
            process.spawn();
            processes.push(process);
        }
        Self { addrs, processes: Mutex::new(processes), client: reqwest::Client::new(), _dir: dir }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Process>> {
        self.processes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + use<> {
        1..=self.addrs.len() as u32
    }

    fn url(&self, replica: u32, path: &str) -> String {
        format!("http://{}{path}", self.addrs[replica as usize - 1])
    }

    /// `GET /kv/{bucket}/{key}` on a replica.
    pub async fn get(&self, replica: u32, bucket: &str, key: &str) -> Value {
        let response = self.client.get(self.url(replica, &format!("/kv/{bucket}/{key}"))).send().await;
        let response = response.expect("GET reaches the replica");
        assert!(response.status().is_success(), "GET failed: {}", response.status());
        response.json().await.expect("GET answers JSON")
    }

    /// `PUT /kv/{bucket}/{key}` on a replica; returns the raw response.
    pub async fn try_put(
        &self,
        replica: u32,
        bucket: &str,
        key: &str,
        value: Value,
        context: Value,
    ) -> reqwest::Result<reqwest::Response> {
        let body = json!({ "value": value, "context": context });
        self.client.put(self.url(replica, &format!("/kv/{bucket}/{key}"))).json(&body).send().await
    }

    /// `PUT /kv/{bucket}/{key}` that must succeed; returns the reply.
    pub async fn put(&self, replica: u32, bucket: &str, key: &str, value: Value, context: Value) -> Value {
        let response =
            self.try_put(replica, bucket, key, value, context).await.expect("PUT reaches the replica");
        assert!(response.status().is_success(), "PUT failed: {}", response.status());
        response.json().await.expect("PUT answers JSON")
    }

    /// An admin request with the cluster token.
    pub async fn admin(&self, replica: u32, method: reqwest::Method, path: &str, body: Value) -> Value {
        let request = self.client.request(method, self.url(replica, path)).header("x-cluster-token", TOKEN);
        let request = if body.is_null() { request } else { request.json(&body) };
        let response = request.send().await.expect("admin request reaches the replica");
        assert!(response.status().is_success(), "admin {path} failed: {}", response.status());
        response.json().await.expect("admin answers JSON")
    }

    /// Sets one replica's side of the link to a peer.
    pub async fn link(&self, replica: u32, peer: u32, cut: &str) {
        let body = json!({ "peer": peer, "cut": cut });
        self.admin(replica, reqwest::Method::PUT, "/admin/links", body).await;
    }

    /// Cuts (or heals, with `"none"`) both ends of the link between a and b.
    pub async fn partition(&self, a: u32, b: u32, cut: &str) {
        self.link(a, b, cut).await;
        self.link(b, a, cut).await;
    }

    /// Every key of every bucket on a replica (`GET /admin/state`).
    pub async fn state(&self, replica: u32) -> Value {
        self.admin(replica, reqwest::Method::GET, "/admin/state", Value::Null).await
    }

    /// Waits until every replica holds the same state, and returns it.
    pub async fn converged(&self, timeout: Duration) -> Value {
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
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let read = self.get(replica, bucket, key).await;
            if done(&read) {
                return read;
            }
            assert!(Instant::now() < deadline, "replica {replica} never got there: {read}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILLs a replica.
    pub fn kill(&self, replica: u32) {
        self.lock()[replica as usize - 1].kill();
    }

    /// Restarts a killed replica on the same address and data directory.
    pub fn restart(&self, replica: u32) {
        self.lock()[replica as usize - 1].spawn();
    }

    /// The process ids of the running replicas.
    pub fn pids(&self) -> Vec<u32> {
        self.lock().iter().filter_map(|p| p.child.as_ref().map(Child::id)).collect()
    }
}

/// The values of a read's siblings.
pub fn values(read: &Value) -> Vec<Value> {
    read["siblings"].as_array().map(|s| s.iter().map(|s| s["value"].clone()).collect()).unwrap_or_default()
}
