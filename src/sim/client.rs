//! A simulated workload client on one bucket: the same operations, drawn
//! from the same [`Schedule`], as `experiment::workload` runs against real
//! replicas, written as a state machine that the world steps with each
//! answer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::node::{Asker, RequestId};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::experiment::spec::Contexts;
use crate::experiment::workload::{Counters, Planned, Remembered, Schedule};
use crate::history::{Outcome, WriteRecord};
use crate::lease::Token;
use crate::replica::core::{ReadReply, WriteReply};
use crate::strategy::RawJson;

/// What a client asks a replica.
pub enum Request {
    Read { bucket: String, key: String },
    Write { bucket: String, key: String, value: RawJson, context: Value, fence: Option<Token> },
}

/// Why a request got no good answer, as the real client tells them apart
/// (`replica::client::ClientError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listened: refused before anything was sent.
    Unreachable,
    /// Sent, but no answer came (the replica crashed, or the client gave up).
    NoAnswer,
}

/// What a client hears back.
pub enum Answered {
    Read(ReadReply),
    Written(WriteReply),
    /// A 4xx or 5xx answer, with the reason the replica gave.
    Refused(String),
    /// A fenced write refused for its old token (409), with the reason.
    Fenced(String),
    Failed(Failure),
}

/// What the client does next.
pub enum Next {
    Send(ReplicaId, RequestId, Request),
    /// Its next operation is due then.
    StartAt(Nanos),
    /// The workload is over for it.
    Done,
}

/// Where the client is in its operation.
enum Phase {
    Idle,
    /// Fresh contexts: the read before the write.
    Reading,
    /// The write; with stale contexts, with what the client remembered.
    Writing {
        remembered: Option<Remembered>,
    },
    /// Stale contexts: the read after the write, for next time.
    ReadingAfter {
        remembered: Option<Remembered>,
    },
}

/// One client's operations on one bucket.
pub struct Client {
    point: usize,
    trial: usize,
    bucket: String,
    contexts: Contexts,
    schedule: Schedule,
    interval: Option<Nanos>,
    /// When the next operation is due.
    scheduled: Nanos,
    stop_at: Nanos,
    /// Stale contexts: what the client last read of each key.
    memory: BTreeMap<String, Remembered>,
    /// The operation drawn and waiting for its time.
    planned: Option<Planned>,
    phase: Phase,
    record: Option<WriteRecord>,
    requests: u64,
    awaiting: Option<u64>,
    counters: Arc<Counters>,
    /// The records of its operations that have ended, oldest first, until
    /// the engine takes them (see [`Client::earliest_next`]).
    pub writes: VecDeque<WriteRecord>,
}

impl Client {
    /// A client on `bucket`, working through `schedule`, starting at `started` and stopping at
    /// `stop_at` (true times).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        point: usize,
        trial: usize,
        bucket: &str,
        contexts: Contexts,
        mut schedule: Schedule,
        started: Nanos,
        stop_at: Nanos,
        counters: Arc<Counters>,
    ) -> Self {
        let first = schedule.first_start().as_nanos() as Nanos;
        let interval = schedule.interval().map(|every| every.as_nanos() as Nanos);
        Self {
            point,
            trial,
            bucket: bucket.to_string(),
            contexts,
            schedule,
            interval,
            scheduled: started + first,
            stop_at,
            memory: BTreeMap::new(),
            planned: None,
            phase: Phase::Idle,
            record: None,
            requests: 0,
            awaiting: None,
            counters,
            writes: VecDeque::new(),
        }
    }

    /// The earliest invocation time any record it has yet to finish can
    /// have, at true time `now`: the operation in flight's, else its next
    /// one's (none begins before it is scheduled, nor in the past).
    pub fn earliest_next(&self, now: Nanos) -> Nanos {
        match &self.record {
            Some(record) => record.invoke_ns,
            None => self.scheduled.max(now),
        }
    }

    /// Its next operation is due (or was drawn and now is due).
    pub fn begin(&mut self, index: usize, now: Nanos) -> Next {
        let planned = self.planned.take().unwrap_or_else(|| self.schedule.next_operation());
        let start = self.scheduled.max(now);
        if start >= self.stop_at {
            return Next::Done;
        }
        if start > now {
            self.planned = Some(planned);
            return Next::StartAt(start);
        }
        let Planned { key, replica, item } = planned;
        let mut record = WriteRecord::started(self.point, self.trial, &self.bucket, &key, replica, item, now);
        let request = match self.contexts {
            Contexts::Fresh => {
                self.phase = Phase::Reading;
                Request::Read { bucket: self.bucket.clone(), key }
            }
            Contexts::Stale => {
                let remembered = self.memory.remove(&key);
                let known = remembered.clone().unwrap_or_else(Remembered::nothing);
                record.writing(&known);
                self.phase = Phase::Writing { remembered };
                Request::Write {
                    bucket: self.bucket.clone(),
                    key,
                    value: RawJson::of(&record.value),
                    context: known.context,
                    fence: None,
                }
            }
        };
        self.record = Some(record);
        self.send(index, replica, request)
    }

    fn send(&mut self, index: usize, replica: ReplicaId, request: Request) -> Next {
        self.requests += 1;
        self.awaiting = Some(self.requests);
        Next::Send(replica, RequestId { asker: Asker::Client(index), number: self.requests }, request)
    }

    /// An answer (or a time-out) came for `request`; `None` if it is one
    /// the client no longer waits for.
    pub fn answered(&mut self, request: RequestId, answer: Answered, now: Nanos) -> Option<Next> {
        let Asker::Client(index) = request.asker else { return None };
        if self.awaiting != Some(request.number) {
            return None;
        }
        self.awaiting = None;
        let record = self.record.as_mut()?;
        let (replica, key) = (record.replica, record.key.to_string());
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        Some(match (phase, answer) {
            (Phase::Reading, Answered::Read(read)) => {
                let remembered = Remembered::of(&read);
                record.writing(&remembered);
                let value = RawJson::of(&record.value);
                self.phase = Phase::Writing { remembered: None };
                let write = Request::Write {
                    bucket: self.bucket.clone(),
                    key,
                    value,
                    context: remembered.context,
                    fence: None,
                };
                self.send(index, replica, write)
            }
            (Phase::Reading, _) => self.finish(Outcome::Fail, now),
            (Phase::Writing { remembered }, answer) => {
                let outcome = match answer {
                    Answered::Written(reply) => {
                        record.acknowledged(&reply);
                        Outcome::Ok
                    }
                    Answered::Failed(Failure::NoAnswer) => Outcome::Unknown,
                    _ => Outcome::Fail,
                };
                record.complete_ns = now;
                record.outcome = outcome;
                match self.contexts {
                    Contexts::Fresh => self.done(now),
                    Contexts::Stale => {
                        self.phase = Phase::ReadingAfter { remembered };
                        self.send(index, replica, Request::Read { bucket: self.bucket.clone(), key })
                    }
                }
            }
            (Phase::ReadingAfter { remembered }, answer) => {
                let after = match answer {
                    Answered::Read(read) => Some(Remembered::of(&read)),
                    _ => remembered,
                };
                if let Some(after) = after {
                    self.memory.insert(key, after);
                }
                self.done(now)
            }
            (Phase::Idle, _) => return None,
        })
    }

    /// The trial is over and the operation in flight never ended: its
    /// outcome is unknown, as for a client that gave up.
    pub fn abandon(&mut self, now: Nanos) {
        if self.record.is_none() {
            return;
        }
        self.awaiting = None;
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            // The write had its answer; only the read after it is missing.
            Phase::ReadingAfter { .. } => {
                self.done(now);
            }
            _ => {
                self.finish(Outcome::Unknown, now);
            }
        }
    }

    fn finish(&mut self, outcome: Outcome, now: Nanos) -> Next {
        if let Some(record) = self.record.as_mut() {
            record.complete_ns = now;
            record.outcome = outcome;
        }
        self.done(now)
    }

    /// The operation is over: count it, and go on from now, with no burst
    /// to catch up if it was held up.
    fn done(&mut self, now: Nanos) -> Next {
        if let Some(record) = self.record.take() {
            self.counters.attempted.fetch_add(1, Ordering::Relaxed);
            if record.outcome == Outcome::Ok {
                self.counters.acked.fetch_add(1, Ordering::Relaxed);
            }
            self.writes.push_back(record);
        }
        self.scheduled = match self.interval {
            Some(every) => (self.scheduled + every).max(now),
            None => now,
        };
        Next::StartAt(now)
    }
}
