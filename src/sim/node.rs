//! One simulated replica: the real [`ReplicaCore`] and [`PeerPolicy`]s, with
//! a simulated worker and disk around them.
//!
//! The worker is modelled as the real one works (`replica::worker`): one
//! server that takes every job waiting (up to [`MAX_BATCH`]), runs them
//! against the core one after another, commits their new log entries in one
//! go, and only then answers. What a crash keeps is a [`Checkpoint`]: a
//! write is in it only once its batch's commit has finished, and a client
//! hears "ok" only after that, the same commit-before-acknowledge rule as
//! the SQLite store. Unlike that store, the checkpoint keeps each key's
//! state and the writes some peer may still lack, not every write: once
//! every peer has said it holds a write durably, the replica forgets it
//! ([`Node::forget_what_peers_hold`]), so a long trial's memory follows its
//! keys, not its length.

use crate::lease::Token;
use crate::lease::{Guard, WorkerId};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use super::SimOptions;
use crate::clock::Nanos;
use crate::clock::dots::{DotSet, ReplicaId};
use crate::clock::physical::{ManualTrueTime, PhysicalClock};
use crate::replica::core::checkpoint::{Checkpoint, Floor};
use crate::replica::core::{CoreError, ReadReply, ReplicaCore, WriteReply};
use crate::replica::links::Links;
use crate::replica::offsets::OffsetMonitor;
use crate::replica::peer_policy::ReplicationOptions;
use crate::replica::peer_policy::{PeerPolicy, Shipping};
use crate::replica::worker::MAX_BATCH;
use crate::strategy::{RawJson, Strategy, Write};

/// A request to a replica, named so that its answer finds who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestId {
    pub asker: Asker,
    pub number: u64,
}

/// Who sends requests to replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Asker {
    /// A workload client, by its index in the world.
    Client(usize),
    /// A lease worker's loop for one guard (`sim::lease`).
    Worker(WorkerId, Guard),
}

/// A push, named so that its answer finds the sending task (of the
/// sender's life it was sent in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PushId {
    pub from: ReplicaId,
    pub incarnation: u64,
    pub token: u64,
}

/// A job in a worker's queue, with who is waiting for its answer.
pub enum Job {
    Read {
        request: RequestId,
        bucket: String,
        key: String,
    },
    Write {
        request: RequestId,
        bucket: String,
        key: String,
        value: RawJson,
        context: Value,
        fence: Option<Token>,
    },
    /// A turn of the loop after a commit wait, to release the write; the
    /// client then gets `reply`.
    Release {
        request: RequestId,
        reply: WriteReply,
    },
    /// A push, which arrived when the clock read `received_ns`.
    Receive {
        push: PushId,
        writes: Vec<Arc<Write>>,
        received_ns: Nanos,
    },
    /// This replica's own peer task toward `peer` asks what the peer lacks.
    Missing {
        peer: ReplicaId,
        token: u64,
        view: DotSet,
        shipping: Shipping,
        limit: usize,
    },
}

/// What a job answers, sent once its batch has committed.
pub enum Answer {
    Read { request: RequestId, result: Result<ReadReply, CoreError> },
    Write { request: RequestId, result: Result<WriteReply, CoreError> },
    Received { push: PushId, result: Result<DotSet, CoreError>, received_ns: Nanos },
    Missing { peer: ReplicaId, token: u64, writes: Vec<Arc<Write>>, ours: DotSet },
}

/// Whether the replica's process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Up,
    /// SIGSTOP: nothing it would do happens until it resumes.
    Paused,
    /// Crashed, not yet restarted.
    Down,
}

/// Where a peer task is in its loop (`replica::replication::PeerTask::run`).
pub enum PeerStep {
    /// Asleep until a timer, or (if `for_writes`) a new commit.
    Waiting { for_writes: bool },
    /// Asked the worker what to send.
    Asking { delay: Nanos, lost_wait: Option<Nanos>, at: Nanos, reversed: bool, duplicated: bool },
    /// A push is on its way; `sent_ns` by our clock.
    Pushing { sent: usize, ours: DotSet, at: Nanos, sent_ns: Nanos },
}

/// The task that replicates to one peer.
pub struct PeerTask {
    pub policy: PeerPolicy,
    /// Bumped whenever the task moves on, so stale timers and answers are ignored.
    pub token: u64,
    /// The commit version the task last saw (a tokio `watch` receiver's mark).
    pub seen_version: u64,
    pub step: PeerStep,
}

/// One replica process.
pub struct Node {
    pub id: ReplicaId,
    pub life: Life,
    /// Bumped at every crash: events of an earlier life are dropped.
    pub incarnation: u64,
    pub core: ReplicaCore,
    /// What a crash keeps: what a restart starts from.
    pub durable: Checkpoint,
    /// Per origin, the writes forgotten so far: `1..=n`.
    forgotten: Floor,
    pub links: Links,
    pub offsets: OffsetMonitor,
    pub queue: VecDeque<Job>,
    /// The batch being committed, if any.
    pub batch: Option<Batch>,
    /// Whether the worker is sending a committed batch's answers: a job
    /// they cause waits for the next batch, as in the real worker's loop.
    pub answering: bool,
    /// Bumped at every commit that added or released writes (wakes peer tasks).
    pub version: u64,
    pub peers: BTreeMap<ReplicaId, PeerTask>,
    /// Client requests it has taken and not yet answered, with when each
    /// was sent: a crash leaves each without an answer, and a pause may
    /// hold one past its sender's timeout.
    pub open_requests: BTreeMap<RequestId, Nanos>,
    /// Pushes it has taken and not yet answered, with when each was sent.
    pub open_pushes: BTreeMap<PushId, Nanos>,
}

impl Node {
    /// A replica starting with the given strategies (one per bucket) and
    /// checkpoint (empty on first start), a fresh clock over `time`, clean
    /// links and new peer tasks.
    pub fn start(
        id: ReplicaId,
        replicas: usize,
        strategies: Vec<Arc<dyn Strategy>>,
        time: &Arc<ManualTrueTime>,
        mut durable: Checkpoint,
        incarnation: u64,
        seed: u64,
    ) -> Self {
        let clock = PhysicalClock::modelled(time.clone());
        let core = ReplicaCore::recover(id, clock, strategies, &mut durable);
        let peer_ids: Vec<ReplicaId> = (1..=replicas as ReplicaId).filter(|&peer| peer != id).collect();
        let seed =
            seed ^ u64::from(id).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ incarnation.wrapping_mul(0xA076_1D64);
        let peers = peer_ids
            .iter()
            .map(|&peer| {
                let policy = PeerPolicy::new(id, peer, ReplicationOptions::default(), seed);
                let task = PeerTask {
                    policy,
                    token: 0,
                    seen_version: 0,
                    step: PeerStep::Waiting { for_writes: false },
                };
                (peer, task)
            })
            .collect();
        Self {
            id,
            life: Life::Up,
            incarnation,
            core,
            durable,
            forgotten: Floor::new(),
            links: Links::new(peer_ids),
            offsets: OffsetMonitor::default(),
            queue: VecDeque::new(),
            batch: None,
            answering: false,
            version: 0,
            peers,
            open_requests: BTreeMap::new(),
            open_pushes: BTreeMap::new(),
        }
    }

    /// Runs every waiting job (up to [`MAX_BATCH`]) against the core, as
    /// one batch begun at true time `now`, and returns how long its work
    /// and commit take, in ns. Each job sees the clock as it reads after the
    /// jobs before it (`time` is moved on and set back). The answers wait in
    /// `batch` until [`Node::commit`].
    pub fn run_batch(&mut self, options: &SimOptions, time: &ManualTrueTime, now: Nanos) -> Nanos {
        // Writes whose commit wait is over become visible first.
        let released = self.core.release();
        let mut answers = Vec::new();
        let mut new_writes = Vec::new();
        let mut work = 0;
        while answers.len() < MAX_BATCH {
            let Some(job) = self.queue.pop_front() else { break };
            time.set(now + work);
            work += options.service_per_job_ns;
            answers.push(self.handle(job, &mut new_writes, &mut work, options));
        }
        time.set(now);
        let commit = if new_writes.is_empty() { 0 } else { options.commit_ns };
        self.batch = Some(Batch { answers, new_writes, released });
        work + commit
    }

    fn handle(
        &mut self,
        job: Job,
        new_writes: &mut Vec<Arc<Write>>,
        work: &mut Nanos,
        options: &SimOptions,
    ) -> Answer {
        match job {
            Job::Read { request, bucket, key } => {
                Answer::Read { request, result: self.core.read(&bucket, &key) }
            }
            Job::Write { request, bucket, key, value, context, fence } => {
                let result = self.core.write_fenced(&bucket, &key, value, &context, fence).map(|accepted| {
                    let reply = accepted.reply();
                    new_writes.push(accepted.write);
                    reply
                });
                Answer::Write { request, result }
            }
            // The wait is over; `run_batch` released the write.
            Job::Release { request, reply } => {
                Answer::Write { request, result: Ok(WriteReply { acknowledge_at: None, ..reply }) }
            }
            Job::Receive { push, writes, received_ns } => {
                *work += options.service_per_write_ns * writes.len() as Nanos;
                let result = self.core.receive(writes).map(|new| {
                    new_writes.extend(new);
                    self.core.have().clone()
                });
                Answer::Received { push, result, received_ns }
            }
            Job::Missing { peer, token, view, shipping, limit } => {
                let writes = self.core.missing(&view, |origin| shipping.allows(origin), limit);
                *work += options.service_per_write_ns * writes.len() as Nanos;
                Answer::Missing { peer, token, writes, ours: self.core.have().clone() }
            }
        }
    }

    /// The batch's commit has finished: its writes are durable. Returns its
    /// answers, to be sent, and whether the log changed (new writes, or
    /// writes released from their commit wait), which wakes the peer tasks.
    pub fn commit(&mut self) -> (Vec<Answer>, bool) {
        let Some(Batch { answers, new_writes, released }) = self.batch.take() else {
            return (Vec::new(), false);
        };
        let changed = !released.is_empty() || !new_writes.is_empty();
        self.durable.commit(&self.core, &new_writes, &released);
        if changed {
            self.version += 1;
        }
        (answers, changed)
    }
}

impl Node {
    /// Forgets, from the log and the checkpoint, the writes every peer has
    /// said (in its answers to pushes, sent after its commit) that it holds
    /// durably: none of them will ask for those again. A peer that has not
    /// answered yet, or is down, holds the floor where it was.
    pub fn forget_what_peers_hold(&mut self) {
        let mut floor = Floor::new();
        for &origin in self.core.have().vector().keys() {
            let held = self.peers.values().map(|task| task.policy.view().contiguous(origin)).min();
            let forgotten = self.forgotten.entry(origin).or_default();
            if let Some(held) = held.filter(|&held| held > *forgotten) {
                *forgotten = held;
                floor.insert(origin, held);
            }
        }
        if !floor.is_empty() {
            self.core.forget(&floor);
            self.durable.forget(&floor);
        }
    }
}

/// A batch being committed: its answers, its new writes, and the writes
/// it released from their commit wait.
pub struct Batch {
    answers: Vec<Answer>,
    new_writes: Vec<Arc<Write>>,
    released: Vec<Arc<Write>>,
}
