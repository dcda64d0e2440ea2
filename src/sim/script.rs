//! A world played by a script: the engine under the step-through.
//!
//! A classroom story such as DDIA Figure 8-3 needs every event at an exact
//! moment: "at 42.004 s by node 1's clock, client A writes x = 1". The
//! simulator's [`World`] already runs the replicas' real logic under a
//! hand-wound true time; a [`ScriptedWorld`] is that world with its own
//! initiative taken away. There are no workload clients, no peer task wakes
//! on a timer of its own, and the machinery costs no time
//! ([`SimOptions::instant`]). Each step the script takes is then one
//! request through the same paths as in a simulated trial, finished at the
//! instant it was made:
//!
//! - a read or a write arrives at the replica over the (instant) network,
//!   the worker runs it against the [`ReplicaCore`], commits, and answers
//!   (a write in `truetime`'s commit wait once the replica's clock has
//!   passed its time: the one step that moves true time on);
//! - a `replicate` is one turn of the sender's peer task: the worker
//!   collects what the receiver lacks, the push travels, the receiver's
//!   worker merges it, and the answer goes back to the sender's policy;
//! - a clock change is what `PUT /admin/clock` does to the replica's
//!   clock model.
//!
//! What the story shows about each replica (its clocks, its siblings) is
//! read straight from the cores between steps, as a debugger would.

use std::sync::Arc;

use serde_json::Value;

use super::SimOptions;
use super::client::{Answered, Failure, Request};
use super::node::{Asker, RequestId};
use super::world::World;
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::update::ClockUpdate;
use crate::replica::core::{CoreError, ReadReply, ReplicaCore, WriteReply};
use crate::strategy::plugin::{Lineup, PluginFailure};
use crate::strategy::{RawJson, Write};

/// Why a script's step could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("replica {replica} does not exist (replicas are 1 to {replicas})")]
    NoReplica { replica: ReplicaId, replicas: usize },
    #[error("replica {0} cannot replicate to itself")]
    ToItself(ReplicaId),
    #[error("true time only moves forward ({at} ns is before now, {now} ns)")]
    Backwards { at: Nanos, now: Nanos },
    /// The replica answered with an error.
    #[error("{0}")]
    Refused(String),
    /// No answer: nothing left to happen could bring one, or the wait
    /// outlasted the client's patience.
    #[error("no answer to the request (nothing more happened, or the client gave up waiting)")]
    NoAnswerYet,
    #[error(transparent)]
    Plugin(#[from] PluginFailure),
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The world was asked to stop (nothing asks a scripted world to).
    #[error(transparent)]
    Stopped(#[from] crate::experiment::stop::Stopped),
}

/// The most due events a request waits through for its answer (a commit
/// wait's re-reads of the clock take one or two).
const MAX_WAITS_FOR_AN_ANSWER: usize = 100;

/// A simulated world that moves only when its script says.
pub struct ScriptedWorld {
    world: World,
    /// Requests sent so far: the next one's number.
    requests: u64,
}

impl ScriptedWorld {
    /// `replicas` replicas with every strategy in `lineup`, at true time
    /// `start_ns`, every clock exact. A plugin that cannot start is an error.
    pub fn new(start_ns: Nanos, replicas: usize, lineup: Lineup) -> Result<Self, ScriptError> {
        let ids: Vec<ReplicaId> = (1..=replicas as ReplicaId).collect();
        let per_replica = ids.iter().map(|&id| lineup.for_replica(id, &ids)).collect::<Result<_, _>>()?;
        let world = World::scripted(start_ns, per_replica, lineup, SimOptions::instant());
        Ok(Self { world, requests: 0 })
    }

    /// True time now, ns.
    pub fn now(&self) -> Nanos {
        self.world.now
    }

    /// Moves true time on to `at`.
    pub fn advance_to(&mut self, at: Nanos) -> Result<(), ScriptError> {
        if at < self.world.now {
            return Err(ScriptError::Backwards { at, now: self.world.now });
        }
        self.world.run_until(at)?;
        Ok(())
    }

    /// The replicas' cores, in id order, to look at.
    pub fn cores(&self) -> impl Iterator<Item = &ReplicaCore> {
        self.world.nodes.iter().map(|node| &node.core)
    }

    /// A client's read of `key` in `bucket` on `replica`.
    pub fn read(&mut self, replica: ReplicaId, bucket: &str, key: &str) -> Result<ReadReply, ScriptError> {
        let body = Request::Read { bucket: bucket.to_string(), key: key.to_string() };
        match self.ask(replica, body)? {
            Answered::Read(reply) => Ok(reply),
            other => Err(failed(other)),
        }
    }

    /// A client's write of `value` to `key` in `bucket` on `replica`, with
    /// the context of its last read (`null`: blind).
    pub fn write(
        &mut self,
        replica: ReplicaId,
        bucket: &str,
        key: &str,
        value: RawJson,
        context: &Value,
    ) -> Result<WriteReply, ScriptError> {
        let body = Request::Write {
            bucket: bucket.to_string(),
            key: key.to_string(),
            value,
            context: context.clone(),
            fence: None,
        };
        match self.ask(replica, body)? {
            Answered::Written(reply) => Ok(reply),
            other => Err(failed(other)),
        }
    }

    /// One push from `from` to `to` of everything `to` lacks; returns the
    /// writes it carried.
    pub fn replicate(&mut self, from: ReplicaId, to: ReplicaId) -> Result<Vec<Arc<Write>>, ScriptError> {
        self.check(from)?;
        self.check(to)?;
        if from == to {
            return Err(ScriptError::ToItself(from));
        }
        self.world.push_on_request(from, to);
        self.world.run_until(self.world.now)?;
        Ok(std::mem::take(&mut self.log().delivered))
    }

    /// Changes `replica`'s clock, as `PUT /admin/clock` does.
    pub fn update_clock(&mut self, replica: ReplicaId, update: &ClockUpdate) -> Result<(), ScriptError> {
        self.check(replica)?;
        Ok(self.world.node_mut(replica).core.update_clock(update)?)
    }

    fn check(&self, replica: ReplicaId) -> Result<(), ScriptError> {
        let replicas = self.world.nodes.len();
        if (1..=replicas).contains(&(replica as usize)) {
            Ok(())
        } else {
            Err(ScriptError::NoReplica { replica, replicas })
        }
    }

    /// Sends a request and plays out the instant; returns its answer.
    fn ask(&mut self, replica: ReplicaId, body: Request) -> Result<Answered, ScriptError> {
        self.check(replica)?;
        self.requests += 1;
        let request = RequestId { asker: Asker::Client(0), number: self.requests };
        self.world.send_request(replica, request, body);
        self.world.run_until(self.world.now)?;
        // A write in its commit wait (`truetime`) is answered once its
        // replica's clock has passed the write's time: true time moves on
        // to then, one due event at a time (nothing else is scheduled).
        let mut waits = 0;
        while !self.log().answers.contains_key(&request) && waits < MAX_WAITS_FOR_AN_ANSWER {
            let Some(at) = self.world.next_event_at() else { break };
            self.world.run_until(at)?;
            waits += 1;
        }
        self.log().answers.remove(&request).ok_or(ScriptError::NoAnswerYet)
    }

    fn log(&mut self) -> &mut super::world::ScriptLog {
        self.world.script.as_mut().expect("a scripted world keeps its log")
    }
}

fn failed(answer: Answered) -> ScriptError {
    match answer {
        Answered::Refused(reason) | Answered::Fenced(reason) => ScriptError::Refused(reason),
        Answered::Failed(Failure::Unreachable) => ScriptError::Refused("the replica is down".into()),
        Answered::Failed(Failure::NoAnswer) | Answered::Read(_) | Answered::Written(_) => {
            ScriptError::NoAnswerYet
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy;

    const START: Nanos = 1_000_000_000_000;
    const MS: Nanos = 1_000_000;

    fn world(replicas: usize) -> ScriptedWorld {
        let lineup = Lineup { builtins: strategy::registry(), plugins: Vec::new() };
        ScriptedWorld::new(START, replicas, lineup).expect("built-ins start")
    }

    fn values(reply: &ReadReply) -> Vec<Value> {
        reply.siblings.iter().map(|sibling| sibling.value.parse()).collect()
    }

    #[test]
    fn nothing_replicates_until_the_script_says_and_then_exactly_what_was_missing() {
        let mut world = world(3);
        world.write(1, "lww-wall", "x", (&Value::from(1)).into(), &Value::Null).expect("written");
        world.write(2, "lww-wall", "y", (&Value::from(2)).into(), &Value::Null).expect("written");
        world.advance_to(START + 10_000 * MS).expect("forward");
        assert!(values(&world.read(3, "lww-wall", "x").expect("read")).is_empty(), "no timer pushed it");

        let carried = world.replicate(1, 3).expect("replicated");
        assert_eq!(carried.iter().map(|write| write.write_id().to_string()).collect::<Vec<_>>(), vec!["1:1"]);
        assert_eq!(values(&world.read(3, "lww-wall", "x").expect("read")), vec![Value::from(1)]);
        // 2's write reaches 1 through 3 only once 3 has it: a scripted push
        // relays whatever the receiver lacks.
        world.replicate(2, 3).expect("replicated");
        let relayed = world.replicate(3, 1).expect("replicated");
        assert_eq!(relayed.iter().map(|write| write.write_id().to_string()).collect::<Vec<_>>(), vec!["2:1"]);
        assert!(world.replicate(3, 1).expect("replicated").is_empty(), "nothing left to send");
    }

    #[test]
    fn every_step_happens_at_the_instant_the_script_names() {
        let mut world = world(2);
        world.update_clock(2, &ClockUpdate { offset_ms: Some(-5.0), ..Default::default() }).expect("clock");
        world.advance_to(START + 7 * MS).expect("forward");
        let written = world.write(2, "lww-wall", "x", (&Value::from(1)).into(), &Value::Null).expect("ok");
        assert_eq!(world.now(), START + 7 * MS, "the write took no time");
        // Replica 2 reads true time less its 5 ms.
        let stamp = written.stamp.parse();
        assert_eq!(stamp[0].as_i64(), Some(START + 2 * MS), "{stamp}");
    }

    #[test]
    fn bad_steps_are_refused_with_their_reason() {
        let mut world = world(2);
        let no_replica = world.read(3, "lww-wall", "x").expect_err("no replica 3");
        assert!(no_replica.to_string().contains("replica 3 does not exist"), "{no_replica}");
        assert!(matches!(world.replicate(1, 1), Err(ScriptError::ToItself(1))));
        let unknown = world.read(1, "no-such-bucket", "x").expect_err("no bucket");
        assert!(unknown.to_string().contains("unknown bucket"), "{unknown}");
        world.advance_to(START + MS).expect("forward");
        assert!(matches!(world.advance_to(START), Err(ScriptError::Backwards { .. })));
    }
}
