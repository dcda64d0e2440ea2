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
//! Because every bucket gets the same operations, on the same schedule, from
//! the same replicas, the strategies are compared on one history.
//!
//! With `contexts = "stale"` a client writes first, with what its previous
//! read of the key returned, and reads after: every write carries a context
//! that may be one or more writes behind, as in the dotted version vectors
//! paper's example (see `strategy::vv_server`). That is where version
//! vectors without dots pile up siblings.
//!
//! **Fair to slow strategies.** A client's operations (when each starts,
//! which key, which replica) are drawn once, from its seed, and every bucket
//! works through that same schedule on its own. A strategy that makes its
//! writes wait (`truetime`'s commit wait) delays only its own bucket's next
//! operation: the others keep the schedule, so what one strategy costs never
//! changes the workload another sees. A bucket that falls behind does fewer
//! operations in the trial; its latency says why.
//!
//! Every write is recorded with true times taken here, in the runner, before
//! the read and after the write's answer: the oracle orders writes by these,
//! never by a replica's clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use super::keys::{self, Generations};
use super::spec::{Contexts, WorkloadSpec};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::system_now;
use crate::history::{Outcome, Stamp, WriteRecord};
use crate::replica::client::{ClientError, ReplicaClient};
use crate::replica::core::{ReadReply, WriteReply};
use crate::strategy::RawJson;

/// How long a client waits for one request before calling it unknown.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and what the clients of one trial write.
pub struct Target {
    pub point: usize,
    pub trial: usize,
    /// A client of each replica, replica `i` at index `i - 1`.
    pub replicas: Vec<ReplicaClient>,
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
pub async fn run(spec: &WorkloadSpec, target: Arc<Target>, counters: Arc<Counters>) -> Vec<WriteRecord> {
    let mut clients = tokio::task::JoinSet::new();
    for number in 0..spec.clients {
        let state =
            ClientState { number, spec: spec.clone(), target: target.clone(), counters: counters.clone() };
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

/// Where a trial's clients get their seeds: the run's seed, the point and
/// the trial (see [`client_seed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrialSeed {
    pub seed: u64,
    pub point: usize,
    pub trial: usize,
}

impl TrialSeed {
    /// Client `number`'s seed.
    pub fn client(self, number: usize) -> u64 {
        client_seed(self.seed, self.point, self.trial, number)
    }
}

/// The seed of client `number`'s schedule in one trial: the run's seed
/// mixed with the point, the trial and the client.
pub fn client_seed(seed: u64, point: usize, trial: usize, number: usize) -> u64 {
    seed ^ (point as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (trial as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (number as u64).wrapping_mul(0x1656_67B1_9E37_79F9)
}

/// One client's operations, as drawn from its seed: when the first starts,
/// then for each, which key and which replica. Both engines (real processes
/// and the simulator) work through it, bucket by bucket, so that every
/// bucket, and every engine, sees the same operations.
pub struct Schedule {
    random: StdRng,
    spec: WorkloadSpec,
    number: usize,
    replicas: usize,
    interval: Option<Duration>,
    index: u64,
    /// Which generation of its slot each operation's key is (see
    /// `experiment::keys`); `None`: keys are never retired.
    generations: Option<Generations>,
}

/// One operation of a [`Schedule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub key: String,
    pub replica: ReplicaId,
    /// The new item; unique in the trial, and the same in every bucket.
    pub item: u64,
}

impl Schedule {
    /// Client `number`'s schedule in the trial `seeds` stands for.
    pub fn new(spec: &WorkloadSpec, number: usize, replicas: usize, seeds: TrialSeed) -> Self {
        let interval =
            (spec.rate_per_client > 0.0).then(|| Duration::from_secs_f64(1.0 / spec.rate_per_client));
        Self {
            random: StdRng::seed_from_u64(seeds.client(number)),
            spec: spec.clone(),
            number,
            replicas,
            interval,
            index: 0,
            generations: Generations::new(spec, replicas, |client| seeds.client(client)),
        }
    }

    /// Time between operations' scheduled starts; `None`: back to back.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// When the first operation starts, after the workload's start. Clients
    /// start spread over one interval, not all at once. Draw it first.
    pub fn first_start(&mut self) -> Duration {
        let spread = self.random.random::<f64>();
        self.interval.map_or(Duration::ZERO, |every| every.mul_f64(spread))
    }

    /// The next operation.
    pub fn next_operation(&mut self) -> Planned {
        let (slot, replica) = keys::draw(&mut self.random, &self.spec, self.number, self.replicas);
        let item = self.index * self.spec.clients as u64 + self.number as u64 + 1;
        self.index += 1;
        let generation = self.generations.as_mut().map_or(0, |generations| generations.of(item));
        Planned { key: keys::key_name(slot, generation), replica, item }
    }
}

struct ClientState {
    number: usize,
    spec: WorkloadSpec,
    target: Arc<Target>,
    counters: Arc<Counters>,
}

impl ClientState {
    /// Every bucket works through the client's schedule on its own.
    async fn run(self) -> Vec<WriteRecord> {
        let started = Instant::now();
        let buckets = self.target.buckets.iter().map(|bucket| self.run_bucket(bucket, started));
        futures::future::join_all(buckets).await.into_iter().flatten().collect()
    }

    /// The client's operations on one bucket: the same draws, from the same
    /// seed, as on every other bucket; each starts on schedule, or when the
    /// bucket's previous one has finished if that is later (with no catching
    /// up afterwards).
    async fn run_bucket(&self, bucket: &str, started: Instant) -> Vec<WriteRecord> {
        let seeds = TrialSeed { seed: self.target.seed, point: self.target.point, trial: self.target.trial };
        let mut schedule = Schedule::new(&self.spec, self.number, self.target.replicas.len(), seeds);
        let stop_at = started + self.target.duration;
        let interval = schedule.interval();
        let mut scheduled = started + schedule.first_start();
        let mut writes = Vec::new();
        // For stale contexts: what this client last read of each key.
        let mut memory: std::collections::HashMap<String, Remembered> = Default::default();
        loop {
            let Planned { key, replica, item } = schedule.next_operation();
            let start = scheduled.max(Instant::now());
            if start >= stop_at {
                break;
            }
            tokio::time::sleep_until(start).await;
            let operation = ClientOperation {
                point: self.target.point,
                trial: self.target.trial,
                client: &self.target.replicas[replica as usize - 1],
                replica,
                key: &key,
                item,
            };
            let write = match self.spec.contexts {
                Contexts::Fresh => read_modify_write(&operation, bucket).await,
                Contexts::Stale => {
                    let (write, after) = write_then_read(&operation, bucket, memory.remove(&key)).await;
                    if let Some(after) = after {
                        memory.insert(key.clone(), after);
                    }
                    write
                }
            };
            self.counters.attempted.fetch_add(1, Ordering::Relaxed);
            if write.outcome == Outcome::Ok {
                self.counters.acked.fetch_add(1, Ordering::Relaxed);
            }
            writes.push(write);
            // A client that was held up (a paused replica, a commit wait)
            // does not make up for lost time with a burst: it goes on from
            // now, and does fewer operations in the trial.
            scheduled = match interval {
                Some(every) => (scheduled + every).max(Instant::now()),
                None => Instant::now(),
            };
        }
        writes
    }
}

/// One client operation: add `item` to `key` on one replica.
pub struct ClientOperation<'a> {
    pub point: usize,
    pub trial: usize,
    /// The replica's client, and its id.
    pub client: &'a ReplicaClient,
    pub replica: ReplicaId,
    pub key: &'a str,
    /// The new item; unique within a trial.
    pub item: u64,
}

/// One operation on every bucket at the same moment; a record per bucket.
pub async fn mirrored(operation: &ClientOperation<'_>, buckets: &[String]) -> Vec<WriteRecord> {
    let writes = buckets.iter().map(|bucket| read_modify_write(operation, bucket));
    futures::future::join_all(writes).await
}

/// What a client learned from a read of one key: the items it held, how
/// many siblings held them, and the context to write back with.
#[derive(Debug, Clone)]
pub struct Remembered {
    /// Sorted, without repeats.
    pub items: Vec<u64>,
    pub siblings: usize,
    pub context: serde_json::Value,
}

impl Remembered {
    /// What a client knows of a key it has never read.
    pub fn nothing() -> Self {
        Self { items: Vec::new(), siblings: 0, context: serde_json::Value::Null }
    }
}

impl Remembered {
    /// What a read's answer tells the client. Values this workload did not
    /// write (a hand-written string, say) hold no items.
    pub fn of(read: &ReadReply) -> Self {
        let mut items: Vec<u64> = read
            .siblings
            .iter()
            .filter_map(|sibling| serde_json::from_str::<Vec<u64>>(sibling.value.text()).ok())
            .flatten()
            .collect();
        items.sort_unstable();
        items.dedup();
        Self { items, siblings: read.siblings.len(), context: read.context.clone() }
    }
}

/// Reads `key` and remembers what it held; `None` if the read failed.
async fn read(operation: &ClientOperation<'_>, bucket: &str) -> Option<Remembered> {
    let read = operation.client.read(bucket, operation.key, REQUEST_TIMEOUT).await.ok()?;
    Some(Remembered::of(&read))
}

/// One read-modify-write on one bucket, recorded whatever happens.
pub async fn read_modify_write(operation: &ClientOperation<'_>, bucket: &str) -> WriteRecord {
    let invoke_ns = system_now();
    // The read. If it fails nothing was written: the operation failed.
    let Some(remembered) = read(operation, bucket).await else {
        return finish(new_record(operation, bucket, invoke_ns), Outcome::Fail);
    };
    write(operation, bucket, remembered, invoke_ns).await
}

/// A write with what an *earlier* read remembered, then a read whose
/// context the next write will carry: the write-then-read client of the
/// dotted version vectors paper, always one read behind. Returns the write's
/// record and what the new read remembered (or the old memory, if it failed).
pub async fn write_then_read(
    operation: &ClientOperation<'_>,
    bucket: &str,
    remembered: Option<Remembered>,
) -> (WriteRecord, Option<Remembered>) {
    let invoke_ns = system_now();
    let record =
        write(operation, bucket, remembered.clone().unwrap_or_else(Remembered::nothing), invoke_ns).await;
    let after = read(operation, bucket).await.or(remembered);
    (record, after)
}

fn new_record(operation: &ClientOperation<'_>, bucket: &str, invoke_ns: Nanos) -> WriteRecord {
    let ClientOperation { point, trial, replica, key, item, .. } = *operation;
    WriteRecord::started(point, trial, bucket, key, replica, item, invoke_ns)
}

impl WriteRecord {
    /// The record of an operation just started, failed until it is known
    /// otherwise; the caller fills in the rest as it learns it.
    pub fn started(
        point: usize,
        trial: usize,
        bucket: &str,
        key: &str,
        replica: ReplicaId,
        item: u64,
        invoke_ns: Nanos,
    ) -> Self {
        WriteRecord {
            point,
            trial,
            bucket: bucket.into(),
            key: key.into(),
            replica,
            item,
            value: vec![item],
            read_siblings: 0,
            stamp: None,
            write_id: None,
            metadata_bytes: None,
            invoke_ns,
            complete_ns: invoke_ns,
            outcome: Outcome::Fail,
        }
    }

    /// Sets what is written: the items `remembered` held plus the new one.
    pub fn writing(&mut self, remembered: &Remembered) {
        let mut items = Vec::with_capacity(remembered.items.len() + 1);
        items.extend_from_slice(&remembered.items);
        if let Err(at) = items.binary_search(&self.item) {
            items.insert(at, self.item);
        }
        self.read_siblings = remembered.siblings;
        self.value = items;
    }

    /// The replica acknowledged the write with `answer`.
    pub fn acknowledged(&mut self, answer: &WriteReply) {
        self.metadata_bytes = Some(answer.stamp.text().len() + answer.context.text().len());
        self.stamp = Some(Stamp::parse(answer.stamp.text()));
        self.write_id = Some(answer.write_id);
    }
}

/// Writes the remembered items plus the operation's new one, with the
/// remembered context, and records what happened.
async fn write(
    operation: &ClientOperation<'_>,
    bucket: &str,
    remembered: Remembered,
    invoke_ns: Nanos,
) -> WriteRecord {
    let mut record = new_record(operation, bucket, invoke_ns);
    record.writing(&remembered);
    let value = RawJson::of(&record.value);
    let answer =
        operation.client.write(bucket, operation.key, value, remembered.context, REQUEST_TIMEOUT).await;
    let outcome = match answer {
        Ok(answer) => {
            record.acknowledged(&answer);
            Outcome::Ok
        }
        Err(error) => outcome_of_failure(&error),
    };
    finish(record, outcome)
}

/// What a failed write request means for whether it was applied.
pub fn outcome_of_failure(error: &ClientError) -> Outcome {
    match error {
        // Refused before sending: certainly not applied.
        ClientError::Unreachable { .. } => Outcome::Fail,
        // Sent, but no answer: it may have been applied.
        ClientError::NoAnswer { .. } => Outcome::Unknown,
        // A 4xx or 5xx answer: the replica applied nothing.
        ClientError::Refused { .. } => Outcome::Fail,
    }
}

fn finish(mut record: WriteRecord, outcome: Outcome) -> WriteRecord {
    record.complete_ns = system_now();
    record.outcome = outcome;
    record
}
