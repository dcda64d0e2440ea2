//! The replica's single writer: one thread that owns the core and the store.
//!
//! Every request that reads or changes replica state becomes a [`Command`]
//! on a channel. The worker takes whatever commands are waiting (up to
//! [`MAX_BATCH`]), runs them against the core one after another, writes all
//! the new log entries in **one** SQLite transaction, and only then answers
//! them. This is *group commit*: 32 clients writing at once cost one commit,
//! not 32, yet no client hears "ok" before its write is durable, and no read
//! or replication batch sees a write that might still be lost.
//!
//! If a commit fails, the in-memory core no longer matches the disk, so the
//! worker stops and the replica exits (fail-stop); a restart rebuilds the
//! core from what was committed.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::core::{CoreError, ReadReply, ReplicaCore, Status, WriteReply};
use super::store::{Store, StoreError};
use crate::clock::dots::{DotSet, ReplicaId};
use crate::clock::physical::PhysicalClock;
use crate::clock::update::ClockUpdate;
use crate::lease::Token;
use crate::strategy::{RawJson, Write};

/// The most commands handled in one batch (one transaction).
pub const MAX_BATCH: usize = 256;
/// Commands that may wait for the worker before senders are slowed down.
pub const QUEUE_DEPTH: usize = 4096;

/// The worker is gone: the replica is shutting down or its storage failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the replica is stopping")]
pub struct Stopped;

type Reply<T> = oneshot::Sender<T>;

/// A request to the worker, carrying where to send its answer.
pub enum Command {
    Read {
        bucket: String,
        key: String,
        reply: Reply<Result<ReadReply, CoreError>>,
    },
    /// Nothing but a turn of the loop, which releases writes whose commit
    /// wait is over (sent when a wait ends).
    Release {
        reply: Reply<()>,
    },
    Write {
        bucket: String,
        key: String,
        value: RawJson,
        context: Value,
        fence: Option<Token>,
        reply: Reply<Result<WriteReply, CoreError>>,
    },
    Receive {
        writes: Vec<Arc<Write>>,
        reply: Reply<Result<DotSet, CoreError>>,
    },
    Missing {
        peer_has: DotSet,
        relay: Box<dyn Fn(ReplicaId) -> bool + Send>,
        limit: usize,
        reply: Reply<(Vec<Arc<Write>>, DotSet)>,
    },
    Status {
        reply: Reply<Status>,
    },
    UpdateClock {
        update: ClockUpdate,
        reply: Reply<Result<Status, CoreError>>,
    },
    Snapshot {
        reply: Reply<Value>,
    },
}

/// A cheap, cloneable way to send commands to the worker.
#[derive(Clone)]
pub struct WorkerHandle {
    commands: mpsc::Sender<Command>,
}

impl WorkerHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    pub async fn read(&self, bucket: String, key: String) -> Result<Result<ReadReply, CoreError>, Stopped> {
        self.call(|reply| Command::Read { bucket, key, reply }).await
    }

    pub async fn write(
        &self,
        bucket: String,
        key: String,
        value: RawJson,
        context: Value,
        fence: Option<Token>,
    ) -> Result<Result<WriteReply, CoreError>, Stopped> {
        self.call(|reply| Command::Write { bucket, key, value, context, fence, reply }).await
    }

    /// Makes visible the writes whose commit wait is over.
    pub async fn release(&self) -> Result<(), Stopped> {
        self.call(|reply| Command::Release { reply }).await
    }

    /// Merges writes from a peer; answers with everything this replica has.
    pub async fn receive(&self, writes: Vec<Arc<Write>>) -> Result<Result<DotSet, CoreError>, Stopped> {
        self.call(|reply| Command::Receive { writes, reply }).await
    }

    /// What a peer lacks (see [`ReplicaCore::missing`]), and what we have.
    pub async fn missing(
        &self,
        peer_has: DotSet,
        relay: impl Fn(ReplicaId) -> bool + Send + 'static,
        limit: usize,
    ) -> Result<(Vec<Arc<Write>>, DotSet), Stopped> {
        self.call(|reply| Command::Missing { peer_has, relay: Box::new(relay), limit, reply }).await
    }

    pub async fn status(&self) -> Result<Status, Stopped> {
        self.call(|reply| Command::Status { reply }).await
    }

    pub async fn update_clock(&self, update: ClockUpdate) -> Result<Result<Status, CoreError>, Stopped> {
        self.call(|reply| Command::UpdateClock { update, reply }).await
    }

    pub async fn snapshot(&self) -> Result<Value, Stopped> {
        self.call(|reply| Command::Snapshot { reply }).await
    }
}

/// Creates the channel; run [`run`] with the receiver on a blocking thread.
pub fn channel() -> (WorkerHandle, mpsc::Receiver<Command>) {
    let (commands, receiver) = mpsc::channel(QUEUE_DEPTH);
    (WorkerHandle { commands }, receiver)
}

/// The worker loop. Returns when every handle is dropped, or with an error
/// if storage fails. `log_len` is bumped after each commit that added writes,
/// to wake the replication tasks; `clock` gets the clock after each change.
pub fn run(
    mut core: ReplicaCore,
    mut store: Store,
    mut commands: mpsc::Receiver<Command>,
    log_len: watch::Sender<usize>,
    clock: watch::Sender<PhysicalClock>,
) -> Result<(), StoreError> {
    let mut answers: Vec<Box<dyn FnOnce() + Send>> = Vec::with_capacity(MAX_BATCH);
    let mut durable: Vec<Arc<Write>> = Vec::new();
    while let Some(first) = commands.blocking_recv() {
        // Writes whose commit wait is over become visible first, and the
        // replication tasks hear of them.
        let released = !core.release().is_empty();
        // Handle commands while more keep arriving: the time spent on one
        // lets the next ones queue up, so a busy replica commits larger
        // batches, and an idle one commits at once.
        answers.push(handle(&mut core, first, &mut durable, &clock));
        while answers.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => answers.push(handle(&mut core, command, &mut durable, &clock)),
                Err(_) => break,
            }
        }
        if !durable.is_empty() {
            store.append(&durable)?;
            durable.clear();
            log_len.send_replace(core.log_len());
        } else if released {
            log_len.send_replace(core.log_len());
        }
        for answer in answers.drain(..) {
            answer();
        }
    }
    Ok(())
}

/// Runs one command against the core. New log entries go to `durable`; the
/// answer is returned as a closure, to be sent once they are committed.
fn handle(
    core: &mut ReplicaCore,
    command: Command,
    durable: &mut Vec<Arc<Write>>,
    clock: &watch::Sender<PhysicalClock>,
) -> Box<dyn FnOnce() + Send> {
    fn answer<T: Send + 'static>(reply: Reply<T>, value: T) -> Box<dyn FnOnce() + Send> {
        Box::new(move || {
            let _ = reply.send(value); // the asker may have gone; that is fine
        })
    }
    match command {
        Command::Read { bucket, key, reply } => answer(reply, core.read(&bucket, &key)),
        Command::Release { reply } => answer(reply, ()),
        Command::Write { bucket, key, value, context, fence, reply } => {
            let result = core.write_fenced(&bucket, &key, value, &context, fence).map(|accepted| {
                let reply = accepted.reply();
                durable.push(accepted.write);
                reply
            });
            answer(reply, result)
        }
        Command::Receive { writes, reply } => {
            let result = core.receive(writes).map(|new| {
                durable.extend(new);
                core.have().clone()
            });
            answer(reply, result)
        }
        Command::Missing { peer_has, relay, limit, reply } => {
            let missing = core.missing(&peer_has, relay, limit);
            answer(reply, (missing, core.have().clone()))
        }
        Command::Status { reply } => answer(reply, core.status()),
        Command::UpdateClock { update, reply } => {
            let result = core.update_clock(&update).map(|()| {
                clock.send_replace(core.clock().clone());
                core.status()
            });
            answer(reply, result)
        }
        Command::Snapshot { reply } => answer(reply, serde_json::json!(core.snapshot())),
    }
}
