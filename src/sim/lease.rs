//! Lease workers and their lock service in the simulated world.
//!
//! The decisions are `crate::lease`'s: the service is a
//! [`LockService`] per guard, judging by its own modelled clock; each
//! worker is one process running a [`Worker`] loop per guard, reading its
//! time-of-day clock from its own modelled clock and its monotonic clock
//! from true time (a pause stops the process, never the monotonic clock).
//! What is simulated is only the trip: a request to the service or to a
//! storage replica takes the world's one-way time each way, and the
//! storage is the world's replicas, their cores checking fencing tokens.
//!
//! A paused worker is what SIGSTOP makes of a process: its timers and the
//! answers sent to it wait, and happen in order when it resumes. So a pause
//! that falls between a worker's check and its write delays the write, and
//! the write goes out, stale, on waking (DDIA Figure 8-4).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::client::{Answered, Request};
use super::node::{Asker, RequestId};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ManualTrueTime, PhysicalClock};
use crate::clock::update::ClockUpdate;
use crate::experiment::lease::LeaseSpec;
use crate::history::{LeaseEvent, LeaseRecord, TrialPlan};
use crate::lease::service::{Answer, LockService};
use crate::lease::worker::{Action, Input, Note, Readings, Worker, WriteOutcome};
use crate::lease::{Guard, Token, WorkerId, key_of};
use crate::strategy::RawJson;

/// A request to the lock service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Acquire,
    Renew(Token),
}

/// Something that happens to a lease worker or the lock service.
#[derive(Clone)]
pub enum LeaseStep {
    /// A worker's loop starts.
    Start { worker: WorkerId, guard: Guard },
    /// A loop's sleep ends (if it is still that sleep).
    Wake { worker: WorkerId, guard: Guard, sleep: u64 },
    /// A request reaches the service.
    AtService { worker: WorkerId, guard: Guard, ask: Ask },
    /// The service's answer reaches the worker.
    FromService { worker: WorkerId, guard: Guard, answer: Answer },
    /// A storage replica's answer reaches the worker.
    FromStorage { worker: WorkerId, guard: Guard, request: u64, answer: Arc<Answered> },
}

impl LeaseStep {
    fn worker(&self) -> Option<WorkerId> {
        match self {
            Self::Start { worker, .. }
            | Self::Wake { worker, .. }
            | Self::FromService { worker, .. }
            | Self::FromStorage { worker, .. } => Some(*worker),
            Self::AtService { .. } => None,
        }
    }
}

/// What the lease side asks of the world: the world owns the network's
/// times and the agenda, so the lease side says what should happen and the
/// world (`World::apply_lease`) makes it so.
pub enum Effect {
    /// `step` at true time `at`.
    At(Nanos, LeaseStep),
    /// `step` one network trip from now.
    AfterTrip(LeaseStep),
    /// `step` when a sleep of this many ns begun now ends.
    AfterSleep(Nanos, LeaseStep),
    /// A request to a storage replica.
    Request { to: ReplicaId, request: RequestId, body: Request },
}

/// The effects of handling one event at true time `now`.
struct Out {
    now: Nanos,
    effects: Vec<Effect>,
}

impl Out {
    fn new(now: Nanos) -> Self {
        Self { now, effects: Vec::new() }
    }
}

/// What a loop waits for from storage.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Read,
    Write { invoke_ns: Nanos, value: u64, fenced: bool },
}

/// One guard's loop on one worker.
struct Loop {
    worker: Worker,
    /// The current sleep's number: an older sleep's wake is ignored.
    sleep: u64,
    /// The storage request in flight, by number.
    pending: Option<(u64, Pending)>,
    requests: u64,
    /// The workload is over and the loop has stopped.
    done: bool,
}

/// One worker process.
struct WorkerNode {
    id: WorkerId,
    /// Its time-of-day clock.
    clock: PhysicalClock,
    loops: BTreeMap<Guard, Loop>,
    storage: ReplicaId,
    paused: bool,
    /// What reached it while it was paused, in order.
    held: Vec<LeaseStep>,
}

/// The lease side of a simulated trial.
pub struct LeaseHost {
    plan: TrialPlan,
    bucket: String,
    /// How far apart the workers start, ns: worker 1 first.
    stagger_ns: Nanos,
    services: BTreeMap<Guard, LockService>,
    service_clock: PhysicalClock,
    workers: Vec<WorkerNode>,
    /// When the workload ends: loops finish the round in flight, then stop.
    until_ns: Nanos,
    records: Vec<LeaseRecord>,
}

impl LeaseHost {
    /// The workers and service of `spec`, on true time `time`, working
    /// until `until_ns`.
    pub fn new(spec: &LeaseSpec, plan: TrialPlan, time: &Arc<ManualTrueTime>, until_ns: Nanos) -> Self {
        let ttl_ns = crate::clock::millis_to_nanos(spec.ttl_ms);
        let services = spec
            .guards
            .iter()
            .map(|&guard| (guard, LockService::new(ttl_ns, Token(spec.first_token))))
            .collect();
        let workers = spec
            .worker_ids()
            .map(|id| WorkerNode {
                id,
                clock: PhysicalClock::modelled(time.clone()),
                loops: spec
                    .guards
                    .iter()
                    .map(|&guard| {
                        let worker = Worker::new(id, guard, spec.timing());
                        (guard, Loop { worker, sleep: 0, pending: None, requests: 0, done: false })
                    })
                    .collect(),
                storage: spec.storage_of(id),
                paused: false,
                held: Vec::new(),
            })
            .collect();
        Self {
            plan,
            bucket: spec.bucket.clone(),
            stagger_ns: crate::clock::millis_to_nanos(spec.stagger_ms),
            services,
            service_clock: PhysicalClock::modelled(time.clone()),
            workers,
            until_ns,
            records: Vec::new(),
        }
    }

    /// Schedules every loop's start, worker by worker from `at`.
    pub fn start(&self, at: Nanos) -> Vec<Effect> {
        let mut effects = Vec::new();
        for (index, node) in self.workers.iter().enumerate() {
            for &guard in node.loops.keys() {
                let step = LeaseStep::Start { worker: node.id, guard };
                effects.push(Effect::At(at + index as Nanos * self.stagger_ns, step));
            }
        }
        effects
    }

    /// Whether every loop has stopped.
    pub fn done(&self) -> bool {
        self.workers.iter().all(|node| node.loops.values().all(|each| each.done))
    }

    /// The records so far, in true-time order.
    pub fn take_records(&mut self) -> Vec<LeaseRecord> {
        let mut records = std::mem::take(&mut self.records);
        records.sort_by_key(|record| record.true_ns);
        records
    }

    fn node(&mut self, worker: WorkerId) -> Option<&mut WorkerNode> {
        self.workers.iter_mut().find(|node| node.id == worker)
    }

    /// SIGSTOP of a worker's process.
    pub fn pause(&mut self, worker: WorkerId) {
        if let Some(node) = self.node(worker) {
            node.paused = true;
        }
    }

    /// SIGCONT: what reached it meanwhile happens now, in order.
    pub fn resume(&mut self, now: Nanos, worker: WorkerId) -> Vec<Effect> {
        let Some(node) = self.node(worker) else { return Vec::new() };
        node.paused = false;
        std::mem::take(&mut node.held).into_iter().map(|step| Effect::At(now, step)).collect()
    }

    /// Changes a worker's time-of-day clock.
    pub fn set_clock(&mut self, worker: WorkerId, update: &ClockUpdate) {
        if let Some(node) = self.node(worker) {
            // From a checked spec; a setting the model refuses changes nothing.
            let _ = node.clock.update(update);
        }
    }

    /// Handles one lease event at true time `now`.
    pub fn handle(&mut self, now: Nanos, step: LeaseStep) -> Vec<Effect> {
        let mut out = Out::new(now);
        self.step(&mut out, step);
        out.effects
    }

    fn step(&mut self, out: &mut Out, step: LeaseStep) {
        if let Some(worker) = step.worker()
            && let Some(node) = self.node(worker)
            && node.paused
        {
            node.held.push(step);
            return;
        }
        match step {
            LeaseStep::Start { worker, guard } => self.feed(out, worker, guard, Input::Start),
            LeaseStep::Wake { worker, guard, sleep } => {
                if self
                    .node(worker)
                    .and_then(|node| node.loops.get(&guard))
                    .is_some_and(|each| each.sleep == sleep)
                {
                    self.feed(out, worker, guard, Input::Woke);
                }
            }
            LeaseStep::AtService { worker, guard, ask } => self.at_service(out, worker, guard, ask),
            LeaseStep::FromService { worker, guard, answer } => {
                self.feed(out, worker, guard, Input::Service(answer))
            }
            LeaseStep::FromStorage { worker, guard, request, answer } => {
                self.storage_answer(out, worker, guard, request, &answer)
            }
        }
    }

    /// A storage replica answered a worker's request (or the request failed).
    pub fn storage_answered(&mut self, now: Nanos, request: RequestId, answer: Answered) -> Vec<Effect> {
        let Asker::Worker(worker, guard) = request.asker else { return Vec::new() };
        let step =
            LeaseStep::FromStorage { worker, guard, request: request.number, answer: Arc::new(answer) };
        self.handle(now, step)
    }

    fn at_service(&mut self, out: &mut Out, worker: WorkerId, guard: Guard, ask: Ask) {
        let now = self.service_clock.now();
        let Some(service) = self.services.get_mut(&guard) else { return };
        let answer = match ask {
            Ask::Acquire => service.acquire(worker, now),
            Ask::Renew(token) => service.renew(worker, token, now),
        };
        let (point, trial, true_ns) = (self.plan.point, self.plan.trial, out.now);
        let mut record = |token, event| {
            self.records.push(LeaseRecord { point, trial, true_ns, worker, guard, token, event });
        };
        match answer {
            Answer::Granted { lease, ttl_ns } => {
                record(lease.token, LeaseEvent::Granted { ttl_ms: ttl_ns as f64 / 1e6 })
            }
            Answer::Renewed { lease, ttl_ns } => {
                record(lease.token, LeaseEvent::Renewed { ttl_ms: ttl_ns as f64 / 1e6 })
            }
            Answer::Held { .. } | Answer::Lost => {}
        }
        out.effects.push(Effect::AfterTrip(LeaseStep::FromService { worker, guard, answer }));
    }

    fn storage_answer(
        &mut self,
        out: &mut Out,
        worker: WorkerId,
        guard: Guard,
        number: u64,
        answer: &Answered,
    ) {
        let Some(each) = self.node(worker).and_then(|node| node.loops.get_mut(&guard)) else { return };
        let Some((pending_number, pending)) = each.pending else { return };
        if pending_number != number {
            return; // an answer after a time-out: the loop has moved on
        }
        each.pending = None;
        let token = each.worker.token();
        let input = match (pending, answer) {
            (Pending::Read, Answered::Read(read)) => Input::Value(protected_value(read)),
            (Pending::Read, _) => Input::Failed,
            (Pending::Write { invoke_ns, value, fenced }, answer) => {
                let outcome = match answer {
                    Answered::Written(_) => WriteOutcome::Ok,
                    Answered::Fenced(_) => WriteOutcome::Fenced,
                    _ => WriteOutcome::Failed,
                };
                let storage = self.node(worker).map_or(0, |node| node.storage);
                self.records.push(LeaseRecord {
                    point: self.plan.point,
                    trial: self.plan.trial,
                    true_ns: out.now,
                    worker,
                    guard,
                    token: token.unwrap_or(Token(0)),
                    event: LeaseEvent::Write {
                        invoke_ns,
                        replica: storage,
                        read: value - 1,
                        wrote: value,
                        fenced,
                        outcome,
                    },
                });
                Input::Written(outcome)
            }
        };
        self.feed(out, worker, guard, input);
    }

    /// Gives a loop one input and carries out what it asks next.
    fn feed(&mut self, out: &mut Out, worker: WorkerId, guard: Guard, input: Input) {
        let (plan, until_ns, bucket) = (self.plan, self.until_ns, self.bucket.clone());
        let Some(node) = self.node(worker) else { return };
        let storage = node.storage;
        let readings = Readings { wall_ns: node.clock.now(), mono_ns: out.now };
        let Some(each) = node.loops.get_mut(&guard) else { return };
        if each.done {
            return;
        }
        let (action, notes) = each.worker.step(input, readings);
        for note in notes {
            let (token, event) = match note {
                Note::Acquired { token, .. } => (token, LeaseEvent::Acquired),
                Note::Checked { token, valid } => (token, LeaseEvent::Checked { valid }),
                Note::Lost { token } => (token, LeaseEvent::Lost),
            };
            let record = LeaseRecord {
                point: plan.point,
                trial: plan.trial,
                true_ns: out.now,
                worker,
                guard,
                token,
                event,
            };
            self.records.push(record);
        }
        let Some(each) = self.node(worker).and_then(|node| node.loops.get_mut(&guard)) else { return };
        // After the workload, a loop finishes the round in flight (its
        // write and renewal) and starts nothing new.
        if out.now >= until_ns && matches!(action, Action::Acquire | Action::Sleep(_) | Action::Read) {
            each.done = true;
            return;
        }
        let key = key_of(guard);
        match action {
            Action::Acquire | Action::Renew(_) => {
                let ask = match action {
                    Action::Renew(token) => Ask::Renew(token),
                    _ => Ask::Acquire,
                };
                out.effects.push(Effect::AfterTrip(LeaseStep::AtService { worker, guard, ask }));
            }
            Action::Read => {
                each.requests += 1;
                each.pending = Some((each.requests, Pending::Read));
                let request = RequestId { asker: Asker::Worker(worker, guard), number: each.requests };
                out.effects.push(Effect::Request {
                    to: storage,
                    request,
                    body: Request::Read { bucket, key },
                });
            }
            Action::Write { value, fence } => {
                each.requests += 1;
                let pending = Pending::Write { invoke_ns: out.now, value, fenced: fence.is_some() };
                each.pending = Some((each.requests, pending));
                let request = RequestId { asker: Asker::Worker(worker, guard), number: each.requests };
                let body =
                    Request::Write { bucket, key, value: RawJson::of(&[value]), context: Value::Null, fence };
                out.effects.push(Effect::Request { to: storage, request, body });
            }
            Action::Sleep(for_ns) => {
                each.sleep += 1;
                let sleep = each.sleep;
                out.effects.push(Effect::AfterSleep(for_ns, LeaseStep::Wake { worker, guard, sleep }));
            }
        }
    }
}

/// The protected value a read found: the largest among its siblings, each
/// a one-item array `[n]`; 0 if the key was never written.
fn protected_value(read: &crate::replica::core::ReadReply) -> u64 {
    read.siblings
        .iter()
        .filter_map(|sibling| sibling.value.parse().get(0).and_then(Value::as_u64))
        .max()
        .unwrap_or(0)
}
