//! The player: a scenario's steps carried out on a scripted world, every
//! bucket at once, and what the trace shows after each.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::history::{self, PlayedWrite};
use super::{Action, START_NS, Step, TraceClock, TraceWrite};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::update::ClockUpdate;
use crate::replica::core::Sibling;
use crate::sim::script::ScriptedWorld;
use crate::strategy;
use crate::write_id::{WriteId, WriteIds};

/// The story so far: the simulated world it is played in, and the writes
/// made, as its history needs them.
pub(super) struct Player {
    world: ScriptedWorld,
    /// Each bucket's kind, as its strategy declares it.
    kinds: BTreeMap<String, strategy::Kind>,
    buckets: Vec<String>,
    /// Which step made each write.
    step_of_write: HashMap<WriteId, usize>,
    /// Per (bucket, client): the context and write ids of its last read.
    clients: HashMap<(String, String), (Value, Vec<WriteIds>)>,
    /// Every acknowledged write, in the order made.
    played: Vec<PlayedWrite>,
}

impl Player {
    pub fn new(world: ScriptedWorld, kinds: BTreeMap<String, strategy::Kind>, buckets: Vec<String>) -> Self {
        Self {
            world,
            kinds,
            buckets,
            step_of_write: HashMap::new(),
            clients: HashMap::new(),
            played: Vec::new(),
        }
    }

    pub fn advance_to(&mut self, at: Nanos) -> Result<(), String> {
        self.world.advance_to(at).map_err(|error| error.to_string())
    }

    /// Carries out step `index` on every bucket; returns the writes it made
    /// and, for a replication, the earlier steps whose writes it delivered.
    pub fn apply(&mut self, index: usize, step: &Step) -> Result<(Vec<TraceWrite>, Vec<usize>), String> {
        match &step.action {
            Action::Write { replica, key, value, client } => {
                self.write(index, step, *replica, key, Some(value), client.as_deref())
            }
            Action::Increment { replica, key, client } => {
                self.write(index, step, *replica, key, None, client.as_deref())
            }
            Action::Replicate { from, to } => {
                let carried = self.world.replicate(*from, *to).map_err(|error| error.to_string())?;
                let mut delivered: Vec<usize> = carried
                    .iter()
                    .filter_map(|write| self.step_of_write.get(&write.write_id()).copied())
                    .collect();
                delivered.sort_unstable();
                delivered.dedup();
                Ok((Vec::new(), delivered))
            }
            Action::Clock { replica, offset_ms } => {
                let update = ClockUpdate { offset_ms: Some(*offset_ms), ..Default::default() };
                self.world.update_clock(*replica, &update).map_err(|error| error.to_string())?;
                Ok((Vec::new(), Vec::new()))
            }
            Action::Repeat { .. } => Err("a repeat is played out before the scenario starts".into()),
        }
    }

    /// A write of `value` (an increment, without one) to `key` on `replica`
    /// in every bucket, by `client` if one is named.
    fn write(
        &mut self,
        index: usize,
        step: &Step,
        replica: ReplicaId,
        key: &str,
        value: Option<&Value>,
        client: Option<&str>,
    ) -> Result<(Vec<TraceWrite>, Vec<usize>), String> {
        let mut writes = Vec::new();
        for bucket in self.buckets.clone() {
            let remembered = client.map(|client| (bucket.clone(), client.to_string()));
            let last_read = remembered.as_ref().and_then(|client| self.clients.get(client)).cloned();
            let (value, context, read) = match value {
                Some(value) => match last_read {
                    Some((context, read)) => (value.clone(), context, read),
                    None => (value.clone(), Value::Null, Vec::new()),
                },
                None => {
                    let reply = self.world.read(replica, &bucket, key).map_err(|error| error.to_string())?;
                    let largest = reply.siblings.iter().filter_map(|s| s.value.parse().as_i64()).max();
                    let read = reply.siblings.iter().map(|sibling| sibling.write_id.clone()).collect();
                    (Value::from(largest.unwrap_or(0) + 1), reply.context, read)
                }
            };
            let write = self
                .world
                .write(replica, &bucket, key, (&value).into(), &context)
                .map_err(|error| error.to_string())?;
            if let Some(client) = remembered {
                // The client hears the new state with its answer.
                let reply = self.world.read(replica, &bucket, key).map_err(|error| error.to_string())?;
                let ids = reply.siblings.iter().map(|sibling| sibling.write_id.clone()).collect();
                self.clients.insert(client, (reply.context, ids));
            }
            self.step_of_write.insert(write.write_id, index);
            self.played.push(PlayedWrite {
                bucket: bucket.clone(),
                key: key.to_string(),
                replica,
                write_id: write.write_id,
                stamp: write.stamp.parse(),
                value: value.clone(),
                read: read.clone(),
                at_ns: START_NS + (step.at_ms * 1e6) as Nanos,
            });
            writes.push(TraceWrite {
                bucket,
                write_id: write.write_id,
                stamp: write.stamp.parse(),
                value,
                read,
            });
        }
        Ok((writes, Vec::new()))
    }

    /// Every replica's clocks now.
    pub fn clocks(&self) -> Vec<TraceClock> {
        self.world
            .cores()
            .map(|core| {
                let status = core.status();
                TraceClock {
                    replica: core.id(),
                    physical_ms: (status.physical_ns - START_NS) as f64 / 1e6,
                    offset_ms: status.offset_ns as f64 / 1e6,
                    hlc: status.hlc,
                }
            })
            .collect()
    }

    /// Per bucket, per replica, the siblings it holds of `key`.
    pub fn state(&self, key: &str) -> BTreeMap<String, BTreeMap<ReplicaId, Vec<Sibling>>> {
        self.buckets
            .iter()
            .map(|bucket| {
                let replicas = self
                    .world
                    .cores()
                    .map(|core| {
                        (core.id(), core.read(bucket, key).map(|reply| reply.siblings).unwrap_or_default())
                    })
                    .collect();
                (bucket.clone(), replicas)
            })
            .collect()
    }

    /// The story so far as an experiment's history.
    pub fn history(&self) -> Vec<crate::history::Record> {
        history::of_play(&self.kinds, &self.played, self.world.cores())
    }

    /// Per bucket, the acknowledged writes lost so far, as the oracle
    /// judges the story's history up to now.
    pub fn lost(&self) -> BTreeMap<String, Vec<WriteId>> {
        let analysis = crate::analysis::analyze(&self.history());
        let mut lost: BTreeMap<String, Vec<WriteId>> = BTreeMap::new();
        for write in &self.played {
            lost.entry(write.bucket.clone()).or_default();
        }
        for drop in &analysis.drops {
            if let Some(victim) = drop.victim.write_id.as_ref().and_then(WriteIds::single) {
                lost.entry(drop.bucket.to_string()).or_default().push(victim);
            }
        }
        // In the order the writes were made, as the story tells them.
        let made: HashMap<(&str, WriteId), usize> = self
            .played
            .iter()
            .enumerate()
            .map(|(order, write)| ((write.bucket.as_str(), write.write_id), order))
            .collect();
        for (bucket, victims) in &mut lost {
            victims
                .sort_by_key(|victim| made.get(&(bucket.as_str(), *victim)).copied().unwrap_or(usize::MAX));
        }
        lost
    }
}
