//! Dots and dot sets: the bookkeeping of version vectors.
//!
//! A *dot* `(replica, n)` names one event: the n-th write that replica
//! coordinated (for a key, in the `vv` strategy; in the whole replication
//! log, for high-water marks). A *dot set* is the set of events a party has
//! seen. Written out in full it grows with every write, so it is kept as a
//! version vector `{replica: n}` meaning "dots 1..=n of that replica", plus
//! the few dots that arrived out of order and sit beyond a gap.
//!
//! Why the extra dots? A plain version vector cannot say "I have seen write
//! 5 of replica A but not write 4". Delivery in a multi-leader system is in
//! no guaranteed order, and rounding 5 up to "1..=5" would claim write 4 as
//! seen, so it would be wrongly discarded when it finally arrived. This
//! "version vector plus dot cloud" is the causal context of Almeida et al.'s
//! delta-state CRDTs, and the client context of dotted version vectors
//! (Preguiça et al. 2012).
//!
//! On the wire: `{"vv": {"1": 3}, "dots": [[2, 5]]}` (counters start at 1).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Names a replica. Small integers, as in DDIA's "node 1, node 2, node 3";
/// also the tiebreak of last-write-wins stamps.
pub type ReplicaId = u32;

/// One event: the `counter`-th of `replica`. Counters start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot(pub ReplicaId, pub u64);

impl Dot {
    pub fn replica(&self) -> ReplicaId {
        self.0
    }
    pub fn counter(&self) -> u64 {
        self.1
    }
}

/// A set of dots: a version vector plus the dots beyond its gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DotSetWire")]
pub struct DotSet {
    /// `vv[r] = n`: every dot `(r, 1..=n)` is in the set.
    vv: BTreeMap<ReplicaId, u64>,
    /// Dots in the set that are not next to their replica's range.
    dots: BTreeSet<Dot>,
}

/// The JSON form as received: checked and normalised into a [`DotSet`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DotSetWire {
    #[serde(default)]
    vv: BTreeMap<ReplicaId, u64>,
    #[serde(default)]
    dots: Vec<Dot>,
}

impl TryFrom<DotSetWire> for DotSet {
    type Error = String;

    fn try_from(wire: DotSetWire) -> Result<Self, String> {
        let mut set = DotSet::default();
        for (replica, counter) in wire.vv {
            if counter > 0 {
                set.vv.insert(replica, counter);
            }
        }
        for dot in wire.dots {
            if dot.counter() == 0 {
                return Err(format!("dot {dot:?}: counters start at 1"));
            }
            set.insert(dot);
        }
        Ok(set)
    }
}

impl DotSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The set of dots `1..=n` of each replica in `vector`: what a plain
    /// version vector says.
    pub fn from_vector(vector: &BTreeMap<ReplicaId, u64>) -> Self {
        let vv = vector.iter().filter(|&(_, &n)| n > 0).map(|(&replica, &n)| (replica, n)).collect();
        Self { vv, dots: BTreeSet::new() }
    }

    pub fn contains(&self, dot: Dot) -> bool {
        dot.counter() <= self.contiguous(dot.replica()) || self.dots.contains(&dot)
    }

    /// The `n` such that dots `1..=n` of `replica` are all in the set.
    pub fn contiguous(&self, replica: ReplicaId) -> u64 {
        self.vv.get(&replica).copied().unwrap_or(0)
    }

    /// The largest counter of `replica` in the set, gaps or not.
    pub fn max_counter(&self, replica: ReplicaId) -> u64 {
        let beyond = self.dots.range(Dot(replica, 0)..=Dot(replica, u64::MAX)).next_back();
        beyond.map_or(self.contiguous(replica), |dot| dot.counter())
    }

    /// Adds a dot; returns false if it was already there.
    pub fn insert(&mut self, dot: Dot) -> bool {
        if self.contains(dot) {
            return false;
        }
        let replica = dot.replica();
        if dot.counter() == self.contiguous(replica) + 1 {
            let mut top = dot.counter();
            // The new dot may close a gap: pull in the dots that follow it.
            while self.dots.remove(&Dot(replica, top + 1)) {
                top += 1;
            }
            self.vv.insert(replica, top);
        } else {
            self.dots.insert(dot);
        }
        true
    }

    /// Adds every dot of `other`.
    pub fn merge(&mut self, other: &DotSet) {
        for (&replica, &counter) in &other.vv {
            let mine = self.contiguous(replica);
            if counter > mine {
                self.vv.insert(replica, counter);
                // Out-of-order dots now inside the range are no longer extra.
                let covered: Vec<Dot> =
                    self.dots.range(Dot(replica, 0)..=Dot(replica, counter)).copied().collect();
                for dot in covered {
                    self.dots.remove(&dot);
                }
                let mut top = counter;
                while self.dots.remove(&Dot(replica, top + 1)) {
                    top += 1;
                }
                self.vv.insert(replica, top);
            }
        }
        for &dot in &other.dots {
            self.insert(dot);
        }
    }

    /// True if every dot of `other` is in this set.
    pub fn includes(&self, other: &DotSet) -> bool {
        other.vv.iter().all(|(&replica, &counter)| {
            let mine = self.contiguous(replica);
            counter <= mine || (mine + 1..=counter).all(|n| self.dots.contains(&Dot(replica, n)))
        }) && other.dots.iter().all(|&dot| self.contains(dot))
    }

    /// The version-vector part: `replica -> n` for dots `1..=n`.
    pub fn vector(&self) -> &BTreeMap<ReplicaId, u64> {
        &self.vv
    }

    /// The dots beyond the gaps.
    pub fn extra_dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.dots.iter().copied()
    }

    /// The replicas with at least one dot in the set.
    pub fn replicas(&self) -> BTreeSet<ReplicaId> {
        self.vv.keys().copied().chain(self.dots.iter().map(|dot| dot.replica())).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.vv.is_empty() && self.dots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dots() -> impl Strategy<Value = Vec<Dot>> {
        prop::collection::vec((1..4u32, 1..12u64).prop_map(|(r, n)| Dot(r, n)), 0..30)
    }

    fn set_of(dots: &[Dot]) -> DotSet {
        let mut set = DotSet::new();
        for &dot in dots {
            set.insert(dot);
        }
        set
    }

    #[test]
    fn out_of_order_dots_wait_beyond_the_gap() {
        let mut set = DotSet::new();
        set.insert(Dot(1, 1));
        set.insert(Dot(1, 3));
        assert!(!set.contains(Dot(1, 2)), "a gap is not rounded up");
        assert_eq!(set.contiguous(1), 1);
        assert_eq!(set.max_counter(1), 3);
        set.insert(Dot(1, 2));
        assert_eq!(set.contiguous(1), 3, "the gap closed");
        assert_eq!(set.extra_dots().count(), 0);
    }

    #[test]
    fn json_form_is_normalised_and_checked() {
        let set: DotSet = serde_json::from_str(r#"{"vv":{"1":2},"dots":[[1,3],[2,4]]}"#).unwrap();
        assert_eq!(set.contiguous(1), 3);
        assert!(set.contains(Dot(2, 4)) && !set.contains(Dot(2, 3)));
        assert!(serde_json::from_str::<DotSet>(r#"{"dots":[[1,0]]}"#).is_err());
        assert!(serde_json::from_str::<DotSet>(r#"{"vv":{"x":1}}"#).is_err());
        assert!(serde_json::from_str::<DotSet>(r#"{"vv":{},"extra":1}"#).is_err());
        let round: DotSet = serde_json::from_value(serde_json::to_value(&set).unwrap()).unwrap();
        assert_eq!(round, set);
    }

    proptest! {
        #[test]
        fn a_set_holds_exactly_the_dots_inserted(inserted in dots()) {
            let set = set_of(&inserted);
            for r in 1..4u32 {
                for n in 1..14u64 {
                    prop_assert_eq!(set.contains(Dot(r, n)), inserted.contains(&Dot(r, n)));
                }
            }
        }

        #[test]
        fn merge_is_union_and_includes_is_subset(a in dots(), b in dots()) {
            let mut merged = set_of(&a);
            merged.merge(&set_of(&b));
            let union: Vec<Dot> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(&merged, &set_of(&union));
            prop_assert!(merged.includes(&set_of(&a)) && merged.includes(&set_of(&b)));
            let a_in_b = a.iter().all(|dot| b.contains(dot));
            prop_assert_eq!(set_of(&b).includes(&set_of(&a)), a_in_b);
        }
    }
}
