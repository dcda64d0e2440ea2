//! The player: a scenario's steps carried out on a [`Stage`], every bucket
//! at once, and what the trace shows after each.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::history::{self, PlayedWrite};
use super::stage::Stage;
use super::{Action, START_NS, Step, TraceClock, TraceWrite};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::update::ClockUpdate;
use crate::replica::core::Sibling;
use crate::strategy;
use crate::write_id::{WriteId, WriteIds};

/// The story so far: the stage it is played on, and the writes made, as
/// its history needs them. A player on a stage that clones clones with it:
/// a search over stories branches from one.
#[derive(Clone)]
pub struct Player<S> {
    stage: S,
    /// Each bucket's kind, as its strategy declares it.
    kinds: BTreeMap<String, strategy::Kind>,
    buckets: Vec<String>,
    /// Which step made each write.
    step_of_write: HashMap<WriteId, usize>,
    /// Per (bucket, client): the context and write ids of its last read.
    clients: HashMap<(String, String), (Value, Vec<WriteIds>)>,
    /// Every acknowledged write, in the order made.
    played: Vec<PlayedWrite>,
    /// `add` steps so far: the next one adds the item after this.
    adds: u64,
}

impl<S: Stage> Player<S> {
    /// A story about to start on `stage`, in `buckets` (each with its
    /// strategy's declared kind, which is how the oracle judges it).
    pub fn new(stage: S, kinds: BTreeMap<String, strategy::Kind>, buckets: Vec<String>) -> Self {
        Self {
            stage,
            kinds,
            buckets,
            step_of_write: HashMap::new(),
            clients: HashMap::new(),
            played: Vec::new(),
            adds: 0,
        }
    }

    /// True time now, ns.
    pub fn now(&self) -> Nanos {
        self.stage.now()
    }

    pub fn advance_to(&mut self, at: Nanos) -> Result<(), String> {
        self.stage.advance_to(at)
    }

    /// Changes `replica`'s clock outside any step (a story's starting offsets).
    pub fn update_clock(&mut self, replica: ReplicaId, update: &ClockUpdate) -> Result<(), String> {
        self.stage.update_clock(replica, update)
    }

    /// Whether `from` holds a write `to` lacks (a replication would carry it).
    pub fn lacks(&self, from: ReplicaId, to: ReplicaId) -> bool {
        let cores = self.stage.cores();
        let (Some(from), Some(to)) = (cores.get(from as usize - 1), cores.get(to as usize - 1)) else {
            return false;
        };
        !from.missing(to.have(), |_| true, 1).is_empty()
    }

    /// Feeds `hasher` all that decides how the story can go on: true time,
    /// every replica's state ([`ReplicaCore::fingerprint`]), and the writes
    /// made, with their stamps, values and what each read (which the
    /// oracle's verdict rests on).
    ///
    /// [`ReplicaCore::fingerprint`]: crate::replica::core::ReplicaCore::fingerprint
    pub fn fingerprint(&self, hasher: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        self.stage.now().hash(hasher);
        for core in self.stage.cores() {
            core.fingerprint(hasher);
        }
        for write in &self.played {
            (&write.bucket, &write.key, write.replica, write.write_id).hash(hasher);
            (write.stamp.to_string(), write.value.to_string(), write.invoked_ns, write.acknowledged_ns)
                .hash(hasher);
            write.read.hash(hasher);
        }
        let mut clients: Vec<_> =
            self.clients.iter().map(|(who, (context, read))| (who, context.to_string(), read)).collect();
        clients.sort();
        clients.hash(hasher);
    }

    /// Carries out step `index` on every bucket; returns the writes it made
    /// and, for a replication, the earlier steps whose writes it delivered.
    pub fn apply(&mut self, index: usize, step: &Step) -> Result<(Vec<TraceWrite>, Vec<usize>), String> {
        match &step.action {
            Action::Write { replica, key, value, client } => {
                self.write(index, *replica, key, Made::Given(value), client.as_deref())
            }
            Action::Increment { replica, key, client } => {
                self.write(index, *replica, key, Made::Increment, client.as_deref())
            }
            Action::Add { replica, key } => {
                self.adds += 1;
                self.write(index, *replica, key, Made::Add(self.adds), None)
            }
            Action::Replicate { from, to } => {
                let carried = self.stage.replicate(*from, *to)?;
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
                self.stage.update_clock(*replica, &update)?;
                Ok((Vec::new(), Vec::new()))
            }
            Action::Repeat { .. } => Err("a repeat is played out before the scenario starts".into()),
        }
    }

    /// A write to `key` on `replica` in every bucket, of the value `made`
    /// says, by `client` if one is named.
    fn write(
        &mut self,
        index: usize,
        replica: ReplicaId,
        key: &str,
        made: Made,
        client: Option<&str>,
    ) -> Result<(Vec<TraceWrite>, Vec<usize>), String> {
        let mut writes = Vec::new();
        for bucket in self.buckets.clone() {
            let remembered = client.map(|client| (bucket.clone(), client.to_string()));
            let last_read = remembered.as_ref().and_then(|client| self.clients.get(client)).cloned();
            let (value, context, read) = match made {
                Made::Given(value) => match last_read {
                    Some((context, read)) => (value.clone(), context, read),
                    None => (value.clone(), Value::Null, Vec::new()),
                },
                Made::Increment | Made::Add(_) => {
                    let reply = self.stage.read(replica, &bucket, key)?;
                    let values = reply.siblings.iter().map(|sibling| sibling.value.parse());
                    let value = match made {
                        Made::Add(item) => {
                            let mut items: Vec<u64> =
                                values.flat_map(|value| items_of(&value)).chain([item]).collect();
                            items.sort_unstable();
                            items.dedup();
                            Value::from(items)
                        }
                        _ => Value::from(values.filter_map(|value| value.as_i64()).max().unwrap_or(0) + 1),
                    };
                    let read = reply.siblings.iter().map(|sibling| sibling.write_id.clone()).collect();
                    (value, reply.context, read)
                }
            };
            let invoked_ns = self.stage.now();
            let write = self.stage.write(replica, &bucket, key, (&value).into(), &context)?;
            if let Some(client) = remembered {
                // The client hears the new state with its answer.
                let reply = self.stage.read(replica, &bucket, key)?;
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
                invoked_ns,
                acknowledged_ns: self.stage.now(),
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
        self.stage
            .cores()
            .into_iter()
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
                    .stage
                    .cores()
                    .into_iter()
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
        history::of_play(&self.kinds, &self.played, self.stage.cores().into_iter())
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

/// Where a step's written value comes from.
#[derive(Clone, Copy)]
enum Made<'a> {
    /// Given by the step.
    Given(&'a Value),
    /// The largest number read, plus one.
    Increment,
    /// The items read (from every sibling), plus this new one: the lab's
    /// own read-modify-write.
    Add(u64),
}

/// The items of a set-valued value (nothing, for any other value).
fn items_of(value: &Value) -> Vec<u64> {
    value.as_array().map(|items| items.iter().filter_map(Value::as_u64).collect()).unwrap_or_default()
}
