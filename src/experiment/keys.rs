//! Retired keys: no value grows without bound.
//!
//! Every write in the workload writes back the whole set it read plus one
//! item, so a key's value grows with every write to it, and so does every
//! record of a write to it: a run's cost would grow with the square of its
//! length. Jepsen's Elle meets the same problem with its list-append
//! workload and bounds it by retiring a key after a fixed number of writes
//! and moving on to a fresh one. So does the lab: the workload's `keys` are
//! slots, and slot 7's key is `k7` for its first `writes_per_key` writes,
//! then `k7-1` for the next as many, then `k7-2`, and so on. As many keys are
//! live at once as the spec says, so the contention an experiment measures
//! stays what it was, and a value never holds more than `writes_per_key`
//! items.
//!
//! Which write is a slot's how-manyth is decided by the trial's item
//! numbers, not by when writes happen: item `g` is client `(g - 1) mod
//! clients`'s operation number `(g - 1) div clients`, and every client's
//! draws come from a seed everyone can compute. So each client replays all
//! clients' draws of slots ([`Generations`]) and knows, for each of its own
//! operations, how many operations with smaller items chose the same slot.
//! The answer is the same in every bucket, on every engine, whatever the
//! timing, and exactly `writes_per_key` operations share a key.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::spec::{ReplicaChoice, WorkloadSpec};
use crate::clock::dots::ReplicaId;

/// Writes a key takes before it is retired, by default. 128 keeps a value
/// (and each write record) under about a kilobyte of item ids, and is above
/// what any key of a shipped experiment's quick sweep takes per trial (at
/// most 120, in `siblings`), so their histories are what they were before
/// keys were retired.
pub const DEFAULT_WRITES_PER_KEY: u64 = 128;

/// One operation's draws from a client's generator: the slot, then the
/// replica (only when it is chosen at random). The one place they are drawn,
/// so that a replay draws exactly what the client does.
pub fn draw(random: &mut StdRng, spec: &WorkloadSpec, number: usize, replicas: usize) -> (usize, ReplicaId) {
    let slot = random.random_range(0..spec.keys);
    let replica = match spec.replica_choice {
        ReplicaChoice::Random => random.random_range(1..=replicas as ReplicaId),
        ReplicaChoice::Sticky => (number % replicas) as ReplicaId + 1,
    };
    (slot, replica)
}

/// A client's generator, positioned where its first operation is drawn
/// (after the draw of its first start).
pub fn generator(seed: u64) -> StdRng {
    let mut random = StdRng::seed_from_u64(seed);
    let _first_start: f64 = random.random();
    random
}

/// The name of slot `slot`'s key in generation `generation`.
pub fn key_name(slot: usize, generation: u64) -> String {
    retired_name(&format!("k{slot}"), generation)
}

/// The name of the key that takes over from `base` after `generation`
/// retirements: `base` itself, then `base-1`, `base-2`, ... (letters,
/// digits and `-`, as every key the lab accepts).
pub fn retired_name(base: &str, generation: u64) -> String {
    match generation {
        0 => base.to_string(),
        _ => format!("{base}-{generation}"),
    }
}

/// Every client's draws replayed in item order, to tell each operation's
/// generation. `None` when keys are never retired.
pub struct Generations {
    spec: WorkloadSpec,
    replicas: usize,
    /// Each client's generator, replaying its draws.
    replays: Vec<StdRng>,
    /// Operations so far per slot, over items before `next_item`.
    counts: Vec<u64>,
    next_item: u64,
}

impl Generations {
    /// For `spec`'s clients, client `n` drawing from `seed_of(n)`; `None`
    /// when keys are never retired (`writes_per_key = 0`).
    pub fn new(spec: &WorkloadSpec, replicas: usize, seed_of: impl Fn(usize) -> u64) -> Option<Self> {
        (spec.writes_per_key > 0).then(|| Self {
            spec: spec.clone(),
            replicas,
            replays: (0..spec.clients).map(|number| generator(seed_of(number))).collect(),
            counts: vec![0; spec.keys],
            next_item: 1,
        })
    }

    /// The generation of item `item`'s key. Items must be asked in
    /// increasing order (a schedule's own items are).
    pub fn of(&mut self, item: u64) -> u64 {
        let clients = self.spec.clients as u64;
        let mut generation = 0;
        while self.next_item <= item {
            let number = ((self.next_item - 1) % clients) as usize;
            let (slot, _) = draw(&mut self.replays[number], &self.spec, number, self.replicas);
            generation = self.counts[slot] / self.spec.writes_per_key;
            self.counts[slot] += 1;
            self.next_item += 1;
        }
        generation
    }
}
