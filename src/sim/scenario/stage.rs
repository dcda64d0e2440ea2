//! Where a story's steps happen: a [`Stage`].
//!
//! A step (a client's read or write at a replica, one replication, one
//! clock change) means the same wherever it is played, so the
//! [`Player`](super::Player) that carries steps out is written once, over a
//! stage. Stateright makes the same cut: one actor API, run by its model
//! checker or on a real network.
//!
//! - [`ScriptedWorld`] is the step-through's stage: the simulator's nodes,
//!   workers and peer tasks, every request a message through them.
//! - [`Cores`] is the bare replica cores and nothing else: a write is
//!   `ReplicaCore::write`, a replication is `missing` then `receive`. It is
//!   cheap to clone, so a search over histories
//!   ([`crate::explore`]) branches from it, thousands of times a second;
//!   whatever it finds is played again on a scripted world, and must end
//!   the same way there.

use std::sync::Arc;

use serde_json::Value;

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ManualTrueTime, PhysicalClock, TrueTime};
use crate::clock::update::ClockUpdate;
use crate::replica::core::{ReadReply, ReplicaCore, WriteReply};
use crate::sim::script::ScriptedWorld;
use crate::strategy::plugin::{Lineup, PluginFailure};
use crate::strategy::{RawJson, Write};

/// What a story's steps are played on. Errors are sentences for the
/// person who wrote the step.
pub trait Stage {
    /// True time now, ns.
    fn now(&self) -> Nanos;
    /// Moves true time on to `at`.
    fn advance_to(&mut self, at: Nanos) -> Result<(), String>;
    /// A client's read of `key` in `bucket` on `replica`.
    fn read(&mut self, replica: ReplicaId, bucket: &str, key: &str) -> Result<ReadReply, String>;
    /// A client's write, with the context of its last read (`null`: blind),
    /// returned once acknowledged: after its commit wait, if its strategy
    /// makes one, so true time may have moved on.
    fn write(
        &mut self,
        replica: ReplicaId,
        bucket: &str,
        key: &str,
        value: RawJson,
        context: &Value,
    ) -> Result<WriteReply, String>;
    /// Delivers what `to` lacks from `from`; returns the writes carried.
    fn replicate(&mut self, from: ReplicaId, to: ReplicaId) -> Result<Vec<Arc<Write>>, String>;
    /// Changes `replica`'s clock.
    fn update_clock(&mut self, replica: ReplicaId, update: &ClockUpdate) -> Result<(), String>;
    /// The replicas' cores in id order, to look at.
    fn cores(&self) -> Vec<&ReplicaCore>;
}

impl Stage for ScriptedWorld {
    fn now(&self) -> Nanos {
        ScriptedWorld::now(self)
    }

    fn advance_to(&mut self, at: Nanos) -> Result<(), String> {
        ScriptedWorld::advance_to(self, at).map_err(|error| error.to_string())
    }

    fn read(&mut self, replica: ReplicaId, bucket: &str, key: &str) -> Result<ReadReply, String> {
        ScriptedWorld::read(self, replica, bucket, key).map_err(|error| error.to_string())
    }

    fn write(
        &mut self,
        replica: ReplicaId,
        bucket: &str,
        key: &str,
        value: RawJson,
        context: &Value,
    ) -> Result<WriteReply, String> {
        ScriptedWorld::write(self, replica, bucket, key, value, context).map_err(|error| error.to_string())
    }

    fn replicate(&mut self, from: ReplicaId, to: ReplicaId) -> Result<Vec<Arc<Write>>, String> {
        ScriptedWorld::replicate(self, from, to).map_err(|error| error.to_string())
    }

    fn update_clock(&mut self, replica: ReplicaId, update: &ClockUpdate) -> Result<(), String> {
        ScriptedWorld::update_clock(self, replica, update).map_err(|error| error.to_string())
    }

    fn cores(&self) -> Vec<&ReplicaCore> {
        ScriptedWorld::cores(self).collect()
    }
}

/// Replica cores and a true time of their own, nothing else: a stage to
/// branch from. A clone keeps time on its own, so clones can be played on
/// many threads at once.
pub struct Cores {
    cores: Vec<ReplicaCore>,
    /// True time, read by every core's clock: the stage's own.
    time: Arc<ManualTrueTime>,
}

impl Clone for Cores {
    fn clone(&self) -> Self {
        let time = ManualTrueTime::new(self.now());
        let mut cores = self.cores.clone();
        for core in &mut cores {
            core.set_true_time(time.clone());
        }
        Self { cores, time }
    }
}

impl Cores {
    /// `replicas` replicas running `lineup`'s strategies, at true time
    /// `start_ns`, every clock exact. A plugin that cannot start is an error.
    pub fn new(start_ns: Nanos, replicas: usize, lineup: &Lineup) -> Result<Self, PluginFailure> {
        let time = ManualTrueTime::new(start_ns);
        let ids: Vec<ReplicaId> = (1..=replicas as ReplicaId).collect();
        let cores = ids
            .iter()
            .map(|&id| {
                let clock = PhysicalClock::modelled(time.clone());
                Ok(ReplicaCore::with_strategies(id, clock, lineup.for_replica(id, &ids)?))
            })
            .collect::<Result<_, PluginFailure>>()?;
        Ok(Self { cores, time })
    }

    /// Replica `id`'s core, its finished commit waits released, ready to serve.
    fn core(&mut self, id: ReplicaId) -> Result<&mut ReplicaCore, String> {
        let replicas = self.cores.len();
        let core = self
            .cores
            .get_mut((id as usize).wrapping_sub(1))
            .ok_or_else(|| format!("replica {id} does not exist (replicas are 1 to {replicas})"))?;
        core.release();
        Ok(core)
    }
}

impl Stage for Cores {
    fn now(&self) -> Nanos {
        self.time.now()
    }

    fn advance_to(&mut self, at: Nanos) -> Result<(), String> {
        let now = self.now();
        if at < now {
            return Err(format!("true time only moves forward ({at} ns is before now, {now} ns)"));
        }
        self.time.set(at);
        Ok(())
    }

    fn read(&mut self, replica: ReplicaId, bucket: &str, key: &str) -> Result<ReadReply, String> {
        self.core(replica)?.read(bucket, key).map_err(|error| error.to_string())
    }

    fn write(
        &mut self,
        replica: ReplicaId,
        bucket: &str,
        key: &str,
        value: RawJson,
        context: &Value,
    ) -> Result<WriteReply, String> {
        self.core(replica)?;
        let core = &mut self.cores[replica as usize - 1];
        let accepted = core.write(bucket, key, value, context).map_err(|error| error.to_string())?;
        if let Some(until) = accepted.acknowledge_at {
            // Commit wait: true time moves on until the replica's clock
            // reads the write's time (re-read, as a sleeping server does).
            loop {
                let reading = core.clock().now();
                if reading >= until {
                    break;
                }
                self.time.set(self.time.now() + (until - reading));
            }
            core.release();
        }
        Ok(WriteReply { acknowledge_at: None, ..accepted.reply() })
    }

    fn replicate(&mut self, from: ReplicaId, to: ReplicaId) -> Result<Vec<Arc<Write>>, String> {
        if from == to {
            return Err(format!("replica {from} cannot replicate to itself"));
        }
        let receiver_has = self.core(to)?.have().clone();
        let carried = self.core(from)?.missing(&receiver_has, |_| true, usize::MAX);
        self.core(to)?.receive(carried.clone()).map_err(|error| error.to_string())?;
        Ok(carried)
    }

    fn update_clock(&mut self, replica: ReplicaId, update: &ClockUpdate) -> Result<(), String> {
        self.core(replica)?.update_clock(update).map_err(|error| error.to_string())
    }

    fn cores(&self) -> Vec<&ReplicaCore> {
        self.cores.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::*;
    use crate::sim::scenario::{Action, START_NS, Scenario, Step, play, play_on, transcript};

    /// A random story: three replicas with clocks a few ms off, and writes
    /// (adds), replications and clock changes, 30 ms apart (room for a
    /// commit wait), in every built-in strategy, `truetime` among them.
    fn story(random: &mut StdRng) -> Scenario {
        let replica = |random: &mut StdRng| random.random_range(1..=3);
        let steps = (1..=10)
            .map(|index| {
                let action = match random.random_range(0..10) {
                    0..5 => Action::Add {
                        replica: replica(random),
                        key: ["x", "y"][random.random_range(0..2)].into(),
                    },
                    5..9 => {
                        let from = replica(random);
                        Action::Replicate { from, to: from % 3 + 1 }
                    }
                    _ => Action::Clock {
                        replica: replica(random),
                        offset_ms: random.random_range(-9..=9) as f64,
                    },
                };
                Step { at_ms: index as f64 * 30.0, say: String::new(), action }
            })
            .collect();
        Scenario {
            title: "random".into(),
            summary: String::new(),
            replicas: 3,
            clock_offsets_ms: (0..3).map(|_| random.random_range(-5..=5) as f64).collect(),
            strategies: crate::strategy::NAMES.iter().map(|name| name.to_string()).collect(),
            steps,
        }
    }

    /// The search's stage and the step-through's world tell every story the
    /// same, stamp for stamp and loss for loss: what the search finds on
    /// bare cores is what the class will see.
    #[test]
    fn bare_cores_and_the_scripted_world_tell_every_story_alike() {
        let mut random = StdRng::seed_from_u64(8_3);
        for case in 0..60 {
            let scenario = story(&mut random);
            let world = play("random", &scenario, &[]).expect("the world plays it");
            let cores = play_on("random", &scenario, &[], |replicas, lineup| {
                Cores::new(START_NS, replicas, lineup).map_err(|error| error.to_string())
            })
            .expect("the cores play it");
            let (world, cores) = (transcript::transcript(&world), transcript::transcript(&cores));
            assert!(world == cores, "case {case} differs:\nworld:\n{world}\ncores:\n{cores}");
            assert!(world.contains("truetime"), "the commit wait was played");
        }
    }
}
