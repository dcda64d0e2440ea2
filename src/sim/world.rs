//! The simulated world: replicas, the network between them, and the
//! workload's clients, moved forward one event at a time.
//!
//! Every handler mirrors a piece of the real system and says which: the
//! replica's HTTP handlers (`replica::server`), its peer tasks
//! (`replica::replication`), the worker (`replica::worker`, in
//! [`super::node`]) and the workload's clients (`experiment::workload`, in
//! [`super::client`]). What they decide is decided by the same code: the
//! [`ReplicaCore`](crate::replica::core::ReplicaCore), the
//! [`PeerPolicy`](crate::replica::peer_policy::PeerPolicy), the offset
//! monitor and the clock models. Only time, sockets and disks are
//! simulated.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::SimOptions;
use super::client::{Answered, Client, Failure, Next, Request};
use super::lease::{Effect as LeaseEffect, LeaseHost, LeaseStep};
use super::node::{Answer, Asker, Job, Life, Node, PeerStep, PushId, RequestId};
use super::queue::Agenda;
use crate::clock::Nanos;
use crate::clock::dots::{DotSet, ReplicaId};
use crate::clock::physical::ManualTrueTime;
use crate::experiment::stop::{Stop, Stopped};
use crate::replica::core::checkpoint::Checkpoint;
use crate::replica::core::{CoreError, WriteReply};
use crate::replica::offsets::Sample;
use crate::replica::peer_policy::{Pause, Shipping, Transmission};
use crate::strategy::plugin::Lineup;
use crate::strategy::{Strategy, Write};

/// A message arriving at a replica.
pub enum Inbound {
    Client { request: RequestId, sent_at: Nanos, body: Request },
    Push { push: PushId, sent_at: Nanos, writes: Vec<Arc<Write>> },
}

/// Something that happens at one moment of true time.
pub enum Event {
    /// A message reaches replica `to`.
    Arrive { to: ReplicaId, message: Inbound },
    /// A replica's batch has committed.
    Committed { replica: ReplicaId, incarnation: u64 },
    /// A peer task's timer fires.
    PeerTimer { replica: ReplicaId, peer: ReplicaId, incarnation: u64, token: u64 },
    /// A push leaves its sender, once the link's delay (a sleep in the
    /// sender's peer task) is over.
    PushDepart {
        replica: ReplicaId,
        peer: ReplicaId,
        incarnation: u64,
        push: PushId,
        writes: Vec<Arc<Write>>,
    },
    /// A push's answer (or its failure) reaches the sender's peer task.
    PushAnswer {
        replica: ReplicaId,
        peer: ReplicaId,
        incarnation: u64,
        token: u64,
        answer: Option<(DotSet, Nanos, Nanos)>,
    },
    /// A write in its commit wait checks the clock again.
    CommitWait { replica: ReplicaId, incarnation: u64, request: RequestId, reply: WriteReply },
    /// A client's next operation is due.
    ClientStart { client: usize },
    /// An answer reaches a client.
    ClientAnswer { request: RequestId, answer: Answered },
    /// A client gives up waiting.
    ClientTimeout { request: RequestId },
    /// Something for the lease workers or their lock service (`sim::lease`).
    Lease(LeaseStep),
}

impl Event {
    /// The replica this event happens on, if it is one that a pause holds
    /// back and a crash discards.
    fn on_replica(&self) -> Option<(ReplicaId, Option<u64>)> {
        match self {
            Event::Arrive { to, .. } => Some((*to, None)),
            Event::Committed { replica, incarnation }
            | Event::PeerTimer { replica, incarnation, .. }
            | Event::PushDepart { replica, incarnation, .. }
            | Event::PushAnswer { replica, incarnation, .. }
            | Event::CommitWait { replica, incarnation, .. } => Some((*replica, Some(*incarnation))),
            Event::ClientStart { .. }
            | Event::ClientAnswer { .. }
            | Event::ClientTimeout { .. }
            | Event::Lease(_) => None,
        }
    }
}

/// How far behind its original a duplicated push leaves, ns.
const DUPLICATE_LAG_NS: Nanos = 1_000_000;

/// Everything in a simulated trial.
pub struct World {
    pub now: Nanos,
    /// True time, shared by every replica's clock.
    pub time: Arc<ManualTrueTime>,
    pub agenda: Agenda<Event>,
    pub nodes: Vec<Node>,
    pub clients: Vec<Client>,
    pub options: SimOptions,
    /// Events held back while their replica is paused, by replica.
    held: Vec<Vec<Event>>,
    random: StdRng,
    strategies: Lineup,
    seed: u64,
    /// `--max-peer-offset-ms`: write admission by the offset monitor.
    pub max_peer_offset_ms: Option<f64>,
    /// How many events have been handled.
    pub handled: u64,
    /// How many clients have finished their workload.
    finished_clients: usize,
    /// True time when the world began: the timers' ticks count from it.
    started: Nanos,
    /// Set in a world a script drives (see [`super::script`]).
    pub(super) script: Option<ScriptLog>,
    /// Asked to stop (Ctrl-C, a cancelled job): [`World::run_until`] gives up.
    pub stop: Stop,
    /// Lease workers and their lock service, in a lease trial.
    pub lease: Option<LeaseHost>,
}

/// How many events the world handles between two looks at its [`Stop`]:
/// about a millisecond of computing.
pub const EVENTS_BETWEEN_STOP_CHECKS: u64 = 4096;

/// What a scripted world keeps for its script. Nothing in such a world
/// moves by itself: there are no workload clients, and a peer task pushes
/// only when the script asks it to.
#[derive(Default)]
pub(super) struct ScriptLog {
    /// The answers to the script's requests, as they arrived.
    pub answers: BTreeMap<RequestId, Answered>,
    /// The writes of every push that reached its receiver, in order.
    pub delivered: Vec<Arc<Write>>,
}

impl World {
    pub fn new(start_ns: Nanos, replicas: usize, strategies: Lineup, options: SimOptions, seed: u64) -> Self {
        let per_replica = (1..=replicas as ReplicaId).map(|id| replica_strategies(&strategies, id, replicas));
        Self::with_strategies(start_ns, per_replica.collect(), strategies, options, seed, None)
    }

    /// A world that moves only when a script says (see [`super::script`]),
    /// with replica `i + 1`'s strategies given as `per_replica[i]`.
    pub(super) fn scripted(
        start_ns: Nanos,
        per_replica: Vec<Vec<Arc<dyn Strategy>>>,
        strategies: Lineup,
        options: SimOptions,
    ) -> Self {
        Self::with_strategies(start_ns, per_replica, strategies, options, 0, Some(ScriptLog::default()))
    }

    fn with_strategies(
        start_ns: Nanos,
        per_replica: Vec<Vec<Arc<dyn Strategy>>>,
        strategies: Lineup,
        options: SimOptions,
        seed: u64,
        script: Option<ScriptLog>,
    ) -> Self {
        let time = ManualTrueTime::new(start_ns);
        let replicas = per_replica.len();
        let nodes = (1..=replicas as ReplicaId)
            .zip(per_replica)
            .map(|(id, strategies)| {
                Node::start(id, replicas, strategies, &time, Checkpoint::default(), 0, seed)
            })
            .collect();
        let mut world = Self {
            now: start_ns,
            time,
            agenda: Agenda::default(),
            nodes,
            clients: Vec::new(),
            options,
            held: (0..replicas).map(|_| Vec::new()).collect(),
            random: StdRng::seed_from_u64(seed ^ 0x5151_7A7E_0F0F_1234),
            strategies,
            seed,
            max_peer_offset_ms: None,
            handled: 0,
            finished_clients: 0,
            started: start_ns,
            script,
            stop: Stop::default(),
            lease: None,
        };
        for id in 1..=replicas as ReplicaId {
            world.start_peer_tasks(id);
        }
        world
    }

    pub fn node(&self, id: ReplicaId) -> &Node {
        &self.nodes[id as usize - 1]
    }

    pub fn node_mut(&mut self, id: ReplicaId) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    /// Handles every event due by `until`, then sets the time to `until`;
    /// gives up, part way, if the world is asked to stop.
    pub fn run_until(&mut self, until: Nanos) -> Result<(), Stopped> {
        while let Some((at, event)) = self.agenda.pop_until(until) {
            self.set_time(at);
            self.handled += 1;
            self.handle(event);
            if self.handled.is_multiple_of(EVENTS_BETWEEN_STOP_CHECKS) {
                self.stop.check()?;
            }
        }
        self.set_time(until.max(self.now));
        self.stop.check()
    }

    /// When the next event is due, if any is.
    pub fn next_event_at(&self) -> Option<Nanos> {
        self.agenda.next_at()
    }

    fn set_time(&mut self, at: Nanos) {
        self.now = at;
        self.time.set(at);
    }

    /// When a sleep of `after` ns begun at `from` ends: at the first tick of
    /// the timer at or after its deadline (tokio's timers fire on a wheel of
    /// millisecond ticks, so a 1.2 ms sleep lasts 2 ms or so). No sleep
    /// (`after` 0) ends at once.
    fn timer(&self, from: Nanos, after: Nanos) -> Nanos {
        let deadline = from + after.max(0);
        let tick = self.options.timer_tick_ns;
        if after <= 0 && deadline <= self.now || tick <= 1 {
            return deadline.max(self.now);
        }
        let since = deadline - self.started;
        self.started + (since + tick - 1).div_euclid(tick) * tick
    }

    /// A one-way trip between a client and a replica, or between
    /// replicas, for a message of `writes` writes.
    fn one_way(&mut self, writes: usize) -> Nanos {
        let jitter = self.random.random_range(0..=self.options.one_way_jitter_ns);
        self.options.one_way_ns + jitter + self.options.per_write_on_wire_ns * writes as Nanos
    }

    fn handle(&mut self, event: Event) {
        if let Some((replica, incarnation)) = event.on_replica() {
            let node = self.node(replica);
            if incarnation.is_some_and(|incarnation| incarnation != node.incarnation) {
                return; // from a life before a crash
            }
            match node.life {
                Life::Paused => {
                    self.hold(replica, event);
                    return;
                }
                Life::Down if incarnation.is_some() => return,
                _ => {}
            }
        }
        match event {
            Event::Arrive { to, message } => self.arrive(to, message),
            Event::Committed { replica, .. } => self.committed(replica),
            Event::PeerTimer { replica, peer, token, .. } => {
                if self.node(replica).peers[&peer].token == token {
                    self.peer_turn(replica, peer);
                }
            }
            Event::PushDepart { peer, push, writes, .. } => {
                let trip = self.one_way(writes.len());
                let message = Inbound::Push { push, sent_at: self.now, writes };
                self.agenda.schedule(self.now + trip, Event::Arrive { to: peer, message });
            }
            Event::PushAnswer { replica, peer, token, answer, .. } => {
                self.push_answered(replica, peer, token, answer)
            }
            Event::CommitWait { replica, request, reply, .. } => self.commit_wait(replica, request, reply),
            Event::ClientStart { client } => self.client_start(client),
            Event::ClientAnswer { request, answer } => self.client_answered(request, answer),
            Event::ClientTimeout { request } => {
                self.client_answered(request, Answered::Failed(Failure::NoAnswer))
            }
            Event::Lease(step) => {
                if let Some(host) = &mut self.lease {
                    let effects = host.handle(self.now, step);
                    self.apply_lease(effects);
                }
            }
        }
    }

    // --- The replica's socket and HTTP handlers (`replica::server`) ---

    fn arrive(&mut self, to: ReplicaId, message: Inbound) {
        let back = self.one_way(0);
        if self.node(to).life == Life::Down {
            // Nothing listens: the connection is refused.
            match message {
                Inbound::Client { request, .. } => {
                    self.answer_client(request, Answered::Failed(Failure::Unreachable), back)
                }
                Inbound::Push { push, .. } => self.answer_push(push, to, None, back),
            }
            return;
        }
        match message {
            Inbound::Client { request, sent_at, body } => self.client_request(to, request, sent_at, body),
            Inbound::Push { push, sent_at, writes } => {
                let node = self.node_mut(to);
                let received_ns = node.core.clock().now();
                if !node.links.get(push.from).accepts() {
                    self.answer_push(push, to, None, back);
                    return;
                }
                node.open_pushes.insert(push, sent_at);
                if let Some(script) = &mut self.script {
                    script.delivered.extend(writes.iter().cloned());
                }
                self.enqueue(to, Job::Receive { push, writes, received_ns });
            }
        }
    }

    /// Holds an event of a paused replica until it resumes. Senders stop
    /// waiting at their timeouts: only a pause can hold an answer back that
    /// long, so only then are time-outs scheduled.
    fn hold(&mut self, replica: ReplicaId, event: Event) {
        if let Event::Arrive { message, .. } = &event {
            match *message {
                Inbound::Client { request, sent_at, .. } => self.time_out_client(request, sent_at),
                Inbound::Push { push, sent_at, .. } => self.time_out_push(push, replica, sent_at),
            }
        }
        self.held[replica as usize - 1].push(event);
    }

    fn time_out_client(&mut self, request: RequestId, sent_at: Nanos) {
        let at = (sent_at + self.options.request_timeout_ns).max(self.now);
        self.agenda.schedule(at, Event::ClientTimeout { request });
    }

    fn time_out_push(&mut self, push: PushId, receiver: ReplicaId, sent_at: Nanos) {
        let at = (sent_at + self.options.push_timeout_ns).max(self.now);
        let PushId { from, incarnation, token } = push;
        self.agenda.schedule(
            at,
            Event::PushAnswer { replica: from, peer: receiver, incarnation, token, answer: None },
        );
    }

    fn client_request(&mut self, to: ReplicaId, request: RequestId, sent_at: Nanos, body: Request) {
        let job = match body {
            Request::Read { bucket, key } => Job::Read { request, bucket, key },
            Request::Write { bucket, key, value, context, fence } => {
                // Write admission, as `put_key` does it.
                let node = self.node(to);
                let peers = node.peers.len();
                if let Some(bound) = self.max_peer_offset_ms
                    && let Some(reason) = node.offsets.out_of_bounds(bound, peers)
                {
                    let back = self.one_way(0);
                    self.answer_client(request, Answered::Refused(reason), back);
                    return;
                }
                Job::Write { request, bucket, key, value, context, fence }
            }
        };
        self.node_mut(to).open_requests.insert(request, sent_at);
        self.enqueue(to, job);
    }

    /// Holds a write's answer until the replica's clock reads its
    /// `acknowledge_at`, re-reading the clock after each sleep (as
    /// `replica::server::commit_wait` does), then has the worker release it.
    fn commit_wait(&mut self, replica: ReplicaId, request: RequestId, reply: WriteReply) {
        let until = reply.acknowledge_at.unwrap_or(Nanos::MIN);
        let now = self.node(replica).core.clock().now();
        if now >= until {
            self.enqueue(replica, Job::Release { request, reply });
        } else {
            // A wait past the client's deadline: it gives up first.
            if let Some(&sent_at) = self.node(replica).open_requests.get(&request)
                && self.now + (until - now) > sent_at + self.options.request_timeout_ns
            {
                self.time_out_client(request, sent_at);
            }
            let incarnation = self.node(replica).incarnation;
            self.agenda.schedule(
                self.timer(self.now, until - now),
                Event::CommitWait { replica, incarnation, request, reply },
            );
        }
    }

    // --- The worker (`replica::worker`) ---

    fn enqueue(&mut self, replica: ReplicaId, job: Job) {
        let node = self.node_mut(replica);
        node.queue.push_back(job);
        if node.batch.is_none() && !node.answering {
            self.start_batch(replica);
        }
    }

    fn start_batch(&mut self, replica: ReplicaId) {
        let (options, time, now) = (self.options.clone(), self.time.clone(), self.now);
        let node = self.node_mut(replica);
        let cost = node.run_batch(&options, &time, now);
        let incarnation = node.incarnation;
        self.agenda.schedule(self.now + cost, Event::Committed { replica, incarnation });
    }

    /// A batch has committed: send its answers, wake the peer tasks if the
    /// log changed, and take the next batch if jobs are waiting.
    fn committed(&mut self, replica: ReplicaId) {
        let (answers, changed) = self.node_mut(replica).commit();
        self.node_mut(replica).answering = true;
        for answer in answers {
            self.send_answer(replica, answer);
        }
        self.node_mut(replica).answering = false;
        if changed {
            self.wake_writers(replica);
        }
        let node = self.node(replica);
        if node.batch.is_none() && !node.queue.is_empty() {
            self.start_batch(replica);
        }
    }

    fn send_answer(&mut self, replica: ReplicaId, answer: Answer) {
        match answer {
            Answer::Read { request, result } => {
                self.node_mut(replica).open_requests.remove(&request);
                let answered = match result {
                    Ok(read) => Answered::Read(read),
                    Err(error) => Answered::Refused(error.to_string()),
                };
                let back = self.one_way(0);
                self.answer_client(request, answered, back);
            }
            Answer::Write { request, result } => match result {
                // Acknowledged only after the commit wait.
                Ok(reply) if reply.acknowledge_at.is_some() => self.commit_wait(replica, request, reply),
                result => {
                    self.node_mut(replica).open_requests.remove(&request);
                    let answered = match result {
                        Ok(reply) => Answered::Written(reply),
                        Err(error @ CoreError::Fenced { .. }) => Answered::Fenced(error.to_string()),
                        Err(error) => Answered::Refused(error.to_string()),
                    };
                    let back = self.one_way(0);
                    self.answer_client(request, answered, back);
                }
            },
            Answer::Received { push, result, received_ns } => {
                self.node_mut(replica).open_pushes.remove(&push);
                let back = self.one_way(0);
                let replied_ns = self.node(replica).core.clock().now();
                let answer = result.ok().map(|have| (have, received_ns, replied_ns));
                self.answer_push(push, replica, answer, back);
            }
            Answer::Missing { peer, token, writes, ours } => {
                self.missing_answered(replica, peer, token, writes, ours)
            }
        }
    }

    fn answer_client(&mut self, request: RequestId, answer: Answered, after: Nanos) {
        self.agenda.schedule(self.now + after, Event::ClientAnswer { request, answer });
    }

    /// Sends `push`'s answer (`None`: it failed) from `receiver` back to its sender.
    fn answer_push(
        &mut self,
        push: PushId,
        receiver: ReplicaId,
        answer: Option<(DotSet, Nanos, Nanos)>,
        after: Nanos,
    ) {
        let PushId { from, incarnation, token } = push;
        let event = Event::PushAnswer { replica: from, peer: receiver, incarnation, token, answer };
        self.agenda.schedule(self.now + after, event);
    }

    // --- Peer tasks (`replica::replication::PeerTask::run`) ---

    fn start_peer_tasks(&mut self, id: ReplicaId) {
        let peers: Vec<ReplicaId> = self.node(id).peers.keys().copied().collect();
        for peer in peers {
            self.continue_peer(id, peer, 0);
        }
    }

    /// Moves the task on and runs its next turn `after` ns from now.
    fn continue_peer(&mut self, replica: ReplicaId, peer: ReplicaId, after: Nanos) {
        let node = self.node_mut(replica);
        let incarnation = node.incarnation;
        let task = node.peers.get_mut(&peer).expect("a peer task per peer");
        task.token += 1;
        task.step = PeerStep::Waiting { for_writes: false };
        let token = task.token;
        if self.script.is_some() {
            return; // it waits for the script's next `replicate`
        }
        let at = self.timer(self.now, after);
        self.agenda.schedule(at, Event::PeerTimer { replica, peer, incarnation, token });
    }

    /// One turn of the loop: what the link does, then what to send.
    fn peer_turn(&mut self, replica: ReplicaId, peer: ReplicaId) {
        let now = self.now;
        let node = self.node_mut(replica);
        let link = node.links.get(peer);
        let task = node.peers.get_mut(&peer).expect("a peer task per peer");
        let (delay, lost_wait, reversed, duplicated) = match task.policy.transmit(&link) {
            Transmission::Held { wait } => {
                self.continue_peer(replica, peer, wait.as_nanos() as Nanos);
                return;
            }
            Transmission::Send { delay, reversed, duplicated } => (delay, None, reversed, duplicated),
            Transmission::Lost { delay, wait } => (delay, Some(wait.as_nanos() as Nanos), false, false),
        };
        let shipping = task.policy.ships(now);
        task.token += 1;
        task.step =
            PeerStep::Asking { delay: delay.as_nanos() as Nanos, lost_wait, at: now, reversed, duplicated };
        let job = Job::Missing {
            peer,
            token: task.token,
            view: task.policy.view().clone(),
            shipping,
            limit: task.policy.batch_limit(),
        };
        self.enqueue(replica, job);
    }

    /// A push from `replica` to `peer` now, of everything `peer` lacks,
    /// whoever wrote it: a scripted `replicate`, an anti-entropy exchange
    /// in which the sender first learns exactly what the peer has. It is a
    /// turn of the peer task without the link's sampling (the script's
    /// links are clean), so the push and its answer take the same path as
    /// any other.
    pub(super) fn push_on_request(&mut self, replica: ReplicaId, peer: ReplicaId) {
        let view = self.node(peer).core.have().clone();
        let now = self.now;
        let task = self.node_mut(replica).peers.get_mut(&peer).expect("a peer task per peer");
        task.token += 1;
        task.step =
            PeerStep::Asking { delay: 0, lost_wait: None, at: now, reversed: false, duplicated: false };
        let job =
            Job::Missing { peer, token: task.token, view, shipping: Shipping::Everything, limit: usize::MAX };
        self.enqueue(replica, job);
    }

    fn missing_answered(
        &mut self,
        replica: ReplicaId,
        peer: ReplicaId,
        token: u64,
        mut writes: Vec<Arc<Write>>,
        ours: DotSet,
    ) {
        let node = self.node_mut(replica);
        let sent_ns = node.core.clock().now();
        let incarnation = node.incarnation;
        let task = node.peers.get_mut(&peer).expect("a peer task per peer");
        let PeerStep::Asking { delay, lost_wait, at, reversed, duplicated } = task.step else { return };
        if task.token != token {
            return;
        }
        // The link's delay is a sleep before the push goes out.
        let departs = self.timer(self.now, delay);
        if let Some(wait) = lost_wait {
            let retry = self.timer(departs, wait);
            self.continue_peer(replica, peer, retry - self.now);
            return;
        }
        if reversed {
            writes.reverse();
        }
        let sent = writes.len();
        let task = self.node_mut(replica).peers.get_mut(&peer).expect("a peer task per peer");
        task.step = PeerStep::Pushing { sent, ours, at, sent_ns };
        let push = PushId { from: replica, incarnation, token };
        if duplicated {
            // The copy trails the original by a little, as a retransmission would.
            let copy = Event::PushDepart { replica, peer, incarnation, push, writes: writes.clone() };
            self.agenda.schedule(departs + DUPLICATE_LAG_NS, copy);
        }
        self.agenda.schedule(departs, Event::PushDepart { replica, peer, incarnation, push, writes });
    }

    fn push_answered(
        &mut self,
        replica: ReplicaId,
        peer: ReplicaId,
        token: u64,
        answer: Option<(DotSet, Nanos, Nanos)>,
    ) {
        let node = self.node_mut(replica);
        let answered_ns = node.core.clock().now();
        let Some(task) = node.peers.get_mut(&peer) else { return };
        if task.token != token {
            return;
        }
        let PeerStep::Pushing { sent, ref ours, at, sent_ns } = task.step else { return };
        let pause = match answer {
            None => task.policy.after_failure(),
            Some((have, received_ns, replied_ns)) => {
                let ours = ours.clone();
                task.policy.on_reply(have, &ours, at);
                let pause = task.policy.after_push(sent);
                node.offsets
                    .record(peer, Sample::from_round_trip(sent_ns, received_ns, replied_ns, answered_ns));
                node.forget_what_peers_hold();
                pause
            }
        };
        self.pause(replica, peer, pause);
    }

    /// Waits as the policy says (`PeerTask::pause`).
    fn pause(&mut self, replica: ReplicaId, peer: ReplicaId, pause: Pause) {
        match pause {
            Pause::UntilWrites { heartbeat } => {
                let node = self.node_mut(replica);
                let version = node.version;
                let task = node.peers.get_mut(&peer).expect("a peer task per peer");
                if task.seen_version != version {
                    // A commit happened since the task last looked.
                    task.seen_version = version;
                    self.continue_peer(replica, peer, 0);
                } else {
                    self.continue_peer(replica, peer, heartbeat.as_nanos() as Nanos);
                    let task = self.node_mut(replica).peers.get_mut(&peer).expect("a peer task per peer");
                    task.step = PeerStep::Waiting { for_writes: true };
                }
            }
            Pause::Linger(wait) | Pause::Retry(wait) => {
                self.continue_peer(replica, peer, wait.as_nanos() as Nanos)
            }
            Pause::None => self.continue_peer(replica, peer, 0),
        }
    }

    /// A commit added writes: tasks waiting for writes go at once.
    fn wake_writers(&mut self, replica: ReplicaId) {
        let node = self.node_mut(replica);
        let version = node.version;
        let waiting: Vec<ReplicaId> = node
            .peers
            .iter()
            .filter(|(_, task)| matches!(task.step, PeerStep::Waiting { for_writes: true }))
            .map(|(&peer, _)| peer)
            .collect();
        for peer in waiting {
            self.node_mut(replica).peers.get_mut(&peer).expect("a peer task").seen_version = version;
            self.continue_peer(replica, peer, 0);
        }
    }

    // --- Process faults (`engine::processes::cluster`) ---

    /// SIGSTOP.
    pub fn pause_replica(&mut self, id: ReplicaId) {
        if self.node(id).life != Life::Up {
            return;
        }
        self.node_mut(id).life = Life::Paused;
        // Whoever waits on it now may give up before it wakes.
        let node = self.node(id);
        let requests: Vec<_> =
            node.open_requests.iter().map(|(&request, &sent_at)| (request, sent_at)).collect();
        let pushes: Vec<_> = node.open_pushes.iter().map(|(&push, &sent_at)| (push, sent_at)).collect();
        for (request, sent_at) in requests {
            self.time_out_client(request, sent_at);
        }
        for (push, sent_at) in pushes {
            self.time_out_push(push, id, sent_at);
        }
    }

    /// SIGCONT: what was held back happens now, in order.
    pub fn resume_replica(&mut self, id: ReplicaId) {
        if self.node(id).life == Life::Paused {
            self.node_mut(id).life = Life::Up;
            for event in std::mem::take(&mut self.held[id as usize - 1]) {
                self.agenda.schedule(self.now, event);
            }
        }
    }

    /// SIGKILL: everything not durable is gone; whoever waited on it hears
    /// the connection close.
    pub fn crash_replica(&mut self, id: ReplicaId) {
        // Connections waiting on a stopped process are reset when it dies.
        for event in std::mem::take(&mut self.held[id as usize - 1]) {
            if let Event::Arrive { message, .. } = event {
                let back = self.one_way(0);
                match message {
                    Inbound::Client { request, .. } => {
                        self.answer_client(request, Answered::Failed(Failure::NoAnswer), back)
                    }
                    Inbound::Push { push, .. } => self.answer_push(push, id, None, back),
                }
            }
        }
        let node = self.node_mut(id);
        node.life = Life::Down;
        node.incarnation += 1;
        node.queue.clear();
        node.batch = None;
        node.answering = false;
        let requests = std::mem::take(&mut node.open_requests);
        let pushes = std::mem::take(&mut node.open_pushes);
        for request in requests.into_keys() {
            let back = self.one_way(0);
            self.answer_client(request, Answered::Failed(Failure::NoAnswer), back);
        }
        for push in pushes.into_keys() {
            let back = self.one_way(0);
            self.answer_push(push, id, None, back);
        }
    }

    /// A new process on the crashed one's checkpoint.
    pub fn restart_replica(&mut self, id: ReplicaId) {
        if self.node(id).life != Life::Down {
            // Starting a new process in its place kills the old one.
            self.crash_replica(id);
        }
        let old = self.node_mut(id);
        let (durable, incarnation) = (std::mem::take(&mut old.durable), old.incarnation);
        let replicas = self.nodes.len();
        let strategies = replica_strategies(&self.strategies, id, replicas);
        self.nodes[id as usize - 1] =
            Node::start(id, replicas, strategies, &self.time, durable, incarnation, self.seed);
        self.start_peer_tasks(id);
    }

    // --- Lease workers and their lock service (`sim::lease`) ---

    /// Carries out what the lease side asked for.
    pub fn apply_lease(&mut self, effects: Vec<LeaseEffect>) {
        for effect in effects {
            match effect {
                LeaseEffect::At(at, step) => self.agenda.schedule(at, Event::Lease(step)),
                LeaseEffect::AfterTrip(step) => {
                    let trip = self.one_way(0);
                    self.agenda.schedule(self.now + trip, Event::Lease(step));
                }
                LeaseEffect::AfterSleep(for_ns, step) => {
                    let at = self.timer(self.now, for_ns);
                    self.agenda.schedule(at, Event::Lease(step));
                }
                LeaseEffect::Request { to, request, body } => self.send_request(to, request, body),
            }
        }
    }

    // --- The workload's clients (`experiment::workload`) ---

    pub fn add_client(&mut self, client: Client, first_start: Nanos) {
        let index = self.clients.len();
        self.clients.push(client);
        self.agenda.schedule(first_start, Event::ClientStart { client: index });
    }

    fn client_start(&mut self, index: usize) {
        let next = self.clients[index].begin(index, self.now);
        self.client_next(index, next);
    }

    fn client_answered(&mut self, request: RequestId, answer: Answered) {
        if let Asker::Worker(..) = request.asker {
            if let Some(host) = &mut self.lease {
                let effects = host.storage_answered(self.now, request, answer);
                self.apply_lease(effects);
            }
            return;
        }
        if let Some(script) = &mut self.script {
            script.answers.insert(request, answer);
            return;
        }
        let Asker::Client(index) = request.asker else { return };
        if let Some(next) = self.clients[index].answered(request, answer, self.now) {
            self.client_next(index, next);
        }
    }

    fn client_next(&mut self, index: usize, next: Next) {
        match next {
            Next::Send(to, request, body) => self.send_request(to, request, body),
            Next::StartAt(at) => {
                let at = if at > self.now { self.timer(at, 0) } else { at };
                self.agenda.schedule(at, Event::ClientStart { client: index })
            }
            Next::Done => self.finished_clients += 1,
        }
    }

    /// Whether every client has finished its workload.
    pub fn clients_done(&self) -> bool {
        self.finished_clients == self.clients.len()
    }

    /// Whether every replica has every write any replica has: the same
    /// high-water marks everywhere, as the runner checks on processes.
    pub fn converged(&self) -> bool {
        let marks: Vec<_> = self.nodes.iter().map(|node| node.core.have().vector()).collect();
        marks.windows(2).all(|pair| pair[0] == pair[1])
    }

    pub(super) fn send_request(&mut self, to: ReplicaId, request: RequestId, body: Request) {
        let trip = self.one_way(0);
        let message = Inbound::Client { request, sent_at: self.now, body };
        self.agenda.schedule(self.now + trip, Event::Arrive { to, message });
    }
}

/// Replica `id`'s strategies, one per bucket. Plugins in a simulated spec
/// were described when it was loaded, so one that cannot start here
/// becomes a failed bucket, not an error.
fn replica_strategies(strategies: &Lineup, id: ReplicaId, replicas: usize) -> Vec<Arc<dyn Strategy>> {
    let replica_ids: Vec<ReplicaId> = (1..=replicas as ReplicaId).collect();
    strategies.for_replica(id, &replica_ids).unwrap_or_else(|_| strategies.builtins.clone())
}
