//! The workload: clients doing read-modify-write, mirrored on every bucket.
//!
//! Each key holds a set of item ids. One client operation picks a key and a
//! replica, then on every bucket at the same moment: reads the key, takes
//! the union of the sets in all siblings it got, adds one new item, and
//! writes that back with the context it read. This is the lost-update
//! pattern of DDIA Figure 8-3 (a counter incremented by read, add, write)
//! made checkable: a write's item either survives in the final state or it
//! was dropped, and a write that read an item has *seen* that write.
//!
//! Because every bucket gets the same operation at the same moment from the
//! same replica, the strategies are compared on one history.
//!
//! Every write is recorded with true times taken here, in the runner, before
//! the read and after the write's answer: the oracle orders writes by these,
//! never by a replica's clock.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::history::{Outcome, WriteRecord};
use super::spec::{ReplicaChoice, WorkloadSpec};
use crate::clock::dots::ReplicaId;
use crate::clock::physical::system_now;

/// How long a client waits for one request before calling it unknown.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and what the clients of one trial write.
pub struct Target {
    pub point: usize,
    pub trial: usize,
    pub replicas: Vec<SocketAddr>,
    pub buckets: Vec<String>,
    pub duration: Duration,
    /// Seeds the clients' choices; mixed with point, trial and client.
    pub seed: u64,
}

/// Counters the progress display reads while clients run.
#[derive(Debug, Default)]
pub struct Counters {
    pub acked: AtomicU64,
    pub attempted: AtomicU64,
}

/// Runs every client for the target's duration and returns all their writes.
pub async fn run(
    spec: &WorkloadSpec,
    target: Arc<Target>,
    client: reqwest::Client,
    counters: Arc<Counters>,
) -> Vec<WriteRecord> {
    let next_item = Arc::new(AtomicU64::new(1));
    let mut clients = tokio::task::JoinSet::new();
    for number in 0..spec.clients {
        let seed = target.seed
            ^ (target.point as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (target.trial as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ (number as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
        let state = ClientState {
            number,
            spec: spec.clone(),
            target: target.clone(),
            http: client.clone(),
            random: StdRng::seed_from_u64(seed),
            next_item: next_item.clone(),
            counters: counters.clone(),
        };
        clients.spawn(state.run());
    }
    let mut writes = Vec::new();
    while let Some(result) = clients.join_next().await {
        match result {
            Ok(client_writes) => writes.extend(client_writes),
            Err(error) => tracing::error!(%error, "a workload client failed"),
        }
    }
    writes.sort_by_key(|write| write.invoke_ns);
    writes
}

struct ClientState {
    number: usize,
    spec: WorkloadSpec,
    target: Arc<Target>,
    http: reqwest::Client,
    random: StdRng,
    next_item: Arc<AtomicU64>,
    counters: Arc<Counters>,
}

impl ClientState {
    async fn run(mut self) -> Vec<WriteRecord> {
        let started = Instant::now();
        let stop_at = started + self.target.duration;
        let interval = (self.spec.rate_per_client > 0.0)
            .then(|| Duration::from_secs_f64(1.0 / self.spec.rate_per_client));
        // Clients start spread over one interval, not all at once.
        let mut next_start =
            started + interval.map_or(Duration::ZERO, |every| every.mul_f64(self.random.random::<f64>()));
        let mut writes = Vec::new();
        while next_start < stop_at {
            tokio::time::sleep_until(next_start).await;
            let key = format!("k{}", self.random.random_range(0..self.spec.keys));
            let replica = match self.spec.replica_choice {
                ReplicaChoice::Random => {
                    self.random.random_range(1..=self.target.replicas.len() as ReplicaId)
                }
                ReplicaChoice::Sticky => (self.number % self.target.replicas.len()) as ReplicaId + 1,
            };
            let operation = Operation {
                point: self.target.point,
                trial: self.target.trial,
                addr: self.target.replicas[replica as usize - 1],
                replica,
                key: &key,
                item: self.next_item.fetch_add(1, Ordering::Relaxed),
            };
            for write in mirrored(&self.http, &operation, &self.target.buckets).await {
                self.counters.attempted.fetch_add(1, Ordering::Relaxed);
                if write.outcome == Outcome::Ok {
                    self.counters.acked.fetch_add(1, Ordering::Relaxed);
                }
                writes.push(write);
            }
            next_start = match interval {
                Some(every) => (next_start + every).max(Instant::now()),
                None => Instant::now(),
            };
        }
        writes
    }
}

#[derive(Deserialize)]
struct ReadAnswer {
    siblings: Vec<SiblingAnswer>,
    context: Value,
}

#[derive(Deserialize)]
struct SiblingAnswer {
    value: Value,
}

#[derive(Deserialize)]
struct WriteAnswer {
    stamp: Value,
    write_id: String,
}

/// One client operation: add `item` to `key` on one replica.
pub struct Operation<'a> {
    pub point: usize,
    pub trial: usize,
    /// The replica's address, and its id.
    pub addr: SocketAddr,
    pub replica: ReplicaId,
    pub key: &'a str,
    /// The new item; unique within a trial.
    pub item: u64,
}

/// One operation on every bucket at the same moment; a record per bucket.
pub async fn mirrored(
    http: &reqwest::Client,
    operation: &Operation<'_>,
    buckets: &[String],
) -> Vec<WriteRecord> {
    let writes = buckets.iter().map(|bucket| read_modify_write(http, operation, bucket));
    futures::future::join_all(writes).await
}

/// One read-modify-write on one bucket, recorded whatever happens.
pub async fn read_modify_write(
    http: &reqwest::Client,
    operation: &Operation<'_>,
    bucket: &str,
) -> WriteRecord {
    let Operation { point, trial, addr, replica, key, item } = *operation;
    let url = format!("http://{addr}/kv/{bucket}/{key}");
    let invoke_ns = system_now();
    let mut record = WriteRecord {
        point,
        trial,
        bucket: bucket.to_string(),
        key: key.to_string(),
        replica,
        item,
        value: vec![item],
        read_siblings: 0,
        stamp: None,
        write_id: None,
        invoke_ns,
        complete_ns: invoke_ns,
        outcome: Outcome::Fail,
    };
    // The read. If it fails nothing was written: the operation failed.
    let read =
        async { http.get(&url).timeout(REQUEST_TIMEOUT).send().await?.error_for_status()?.json().await };
    let answer: ReadAnswer = match read.await {
        Ok(answer) => answer,
        Err(_) => return finish(record, Outcome::Fail),
    };
    let mut items = BTreeSet::from([item]);
    for sibling in &answer.siblings {
        // Values this workload did not write (a hand-written string, say)
        // hold no items.
        if let Ok(read_items) = serde_json::from_value::<Vec<u64>>(sibling.value.clone()) {
            items.extend(read_items);
        }
    }
    record.read_siblings = answer.siblings.len();
    record.value = items.into_iter().collect();
    // The write, with the context the read returned.
    let body = json!({ "value": record.value, "context": answer.context });
    let outcome = match http.put(&url).timeout(REQUEST_TIMEOUT).json(&body).send().await {
        // Refused before sending: certainly not applied.
        Err(error) if error.is_connect() => Outcome::Fail,
        // Sent, but no answer: it may have been applied.
        Err(_) => Outcome::Unknown,
        Ok(response) if response.status().is_success() => match response.json::<WriteAnswer>().await {
            Ok(answer) => {
                record.stamp = Some(answer.stamp);
                record.write_id = Some(answer.write_id);
                Outcome::Ok
            }
            Err(_) => Outcome::Unknown,
        },
        // A 4xx or 5xx answer: the replica applied nothing.
        Ok(_) => Outcome::Fail,
    };
    finish(record, outcome)
}

fn finish(mut record: WriteRecord, outcome: Outcome) -> WriteRecord {
    record.complete_ns = system_now();
    record.outcome = outcome;
    record
}
