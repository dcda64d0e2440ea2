//! Partitions: who still hears whom.
//!
//! A partition splits the cluster as Jepsen's nemeses do. Two replicas keep
//! their link if some group holds both; every other link is cut, both ways
//! (or, with `one_way`, only toward the first group: its replicas hear
//! nothing from the rest, who still hear them). Groups may overlap, so
//! Jepsen's shapes are groups too ([`PartitionShape`]).

use serde::{Deserialize, Serialize};

use crate::clock::dots::ReplicaId;
use crate::replica::links::Cut;

/// A `partition` fault: groups or a shape, for `duration_ms` from `at_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionFault {
    pub at_ms: f64,
    pub split: Split,
    /// Cut only the links toward the first group.
    pub one_way: bool,
    pub duration_ms: f64,
}

/// How a partition divides the replicas.
#[derive(Debug, Clone, PartialEq)]
pub enum Split {
    /// These groups; two replicas in some group together still hear each other.
    Groups(Vec<Vec<ReplicaId>>),
    /// One of Jepsen's shapes, drawn around `replica` (only `isolate` looks at it).
    Shape { shape: PartitionShape, replica: ReplicaId },
}

impl Split {
    /// A split as a spec's table (or the lab's request) says it: `groups`,
    /// or a `shape` drawn around `replica` (1 unless said; with groups, a
    /// replica is not looked at, as older specs name one anyway).
    pub fn new(
        groups: Vec<Vec<ReplicaId>>,
        shape: Option<PartitionShape>,
        replica: Option<ReplicaId>,
    ) -> Result<Self, String> {
        match (groups.is_empty(), shape) {
            (false, None) => Ok(Self::Groups(groups)),
            (true, Some(shape)) => Ok(Self::Shape { shape, replica: replica.unwrap_or(1) }),
            _ => Err("a partition has either groups or a shape".into()),
        }
    }
}

impl PartitionFault {
    /// Checks the split against a cluster of `replicas`.
    pub fn check(&self, replicas: usize) -> Result<(), String> {
        match &self.split {
            Split::Shape { replica, .. } if *replica == 0 || *replica as usize > replicas => {
                Err(format!("replica {replica} does not exist (replicas are 1 to {replicas})"))
            }
            Split::Shape { .. } if replicas < 3 => Err("a partition shape needs at least 3 replicas".into()),
            Split::Shape { .. } => Ok(()),
            Split::Groups(groups) => {
                if let Some(member) =
                    groups.iter().flatten().find(|&&member| member == 0 || member as usize > replicas)
                {
                    return Err(format!(
                        "group member {member} does not exist (replicas are 1 to {replicas})"
                    ));
                }
                if groups.iter().any(Vec::is_empty) {
                    return Err("a partition's group is never empty".into());
                }
                Ok(())
            }
        }
    }

    /// The groups among `replicas` replicas.
    pub fn groups(&self, replicas: usize) -> Vec<Vec<ReplicaId>> {
        match &self.split {
            Split::Groups(groups) => groups.clone(),
            Split::Shape { shape, replica } => shape.groups(replicas, *replica),
        }
    }
}

/// Jepsen's partition shapes, as groups of the replicas 1 to N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionShape {
    /// `replica` alone, against the rest.
    Isolate,
    /// The first N/2 replicas (rounded down) against the others: a
    /// minority and a majority.
    Halves,
    /// Each replica with its two neighbours, around a ring (Jepsen's
    /// majorities ring: with five, everyone sees a majority, no two the same).
    Ring,
    /// Two halves that share their middle replica.
    Bridge,
}

impl PartitionShape {
    /// The shape's groups among `replicas` replicas.
    pub fn groups(self, replicas: usize, replica: ReplicaId) -> Vec<Vec<ReplicaId>> {
        let all: Vec<ReplicaId> = (1..=replicas as ReplicaId).collect();
        match self {
            Self::Isolate => vec![vec![replica], all.into_iter().filter(|&other| other != replica).collect()],
            Self::Halves => {
                let (minority, majority) = all.split_at(replicas / 2);
                vec![minority.to_vec(), majority.to_vec()]
            }
            Self::Ring => all.iter().map(|&id| vec![id, id % replicas as ReplicaId + 1]).collect(),
            Self::Bridge => {
                let middle = replicas.div_ceil(2);
                vec![all[..middle].to_vec(), all[middle - 1..].to_vec()]
            }
        }
    }
}

/// The links a partition into `groups` cuts, as (replica, peer, what the
/// replica blocks on its link to the peer); links it keeps are left out.
pub fn partition_links(
    groups: &[Vec<ReplicaId>],
    replicas: usize,
    one_way: bool,
) -> Vec<(ReplicaId, ReplicaId, Cut)> {
    let together =
        |a: ReplicaId, b: ReplicaId| groups.iter().any(|group| group.contains(&a) && group.contains(&b));
    let deaf = |id: ReplicaId| one_way && groups.first().is_some_and(|first| first.contains(&id));
    let ids = 1..=replicas as ReplicaId;
    let mut links = Vec::new();
    for replica in ids.clone() {
        for peer in ids.clone().filter(|&peer| peer != replica && !together(replica, peer)) {
            let cut = match (one_way, deaf(replica), deaf(peer)) {
                (false, _, _) => Cut::Both,
                // The first group hears nothing from the others...
                (true, true, false) => Cut::In,
                // ...who still hear it, but send it nothing.
                (true, false, true) => Cut::Out,
                _ => Cut::Both,
            };
            links.push((replica, peer, cut));
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jepsens_shapes_are_groups_and_a_partition_cuts_the_links_between_them() {
        assert_eq!(PartitionShape::Halves.groups(5, 1), [vec![1, 2], vec![3, 4, 5]]);
        assert_eq!(PartitionShape::Isolate.groups(4, 2), [vec![2], vec![1, 3, 4]]);
        assert_eq!(PartitionShape::Ring.groups(5, 1), [[1, 2], [2, 3], [3, 4], [4, 5], [5, 1]]);
        assert_eq!(PartitionShape::Bridge.groups(5, 1), [vec![1, 2, 3], vec![3, 4, 5]]);
        let cut = |groups: &[Vec<ReplicaId>], one_way| {
            let mut pairs: Vec<(ReplicaId, ReplicaId, Cut)> = partition_links(groups, 5, one_way);
            pairs.sort_by_key(|&(a, b, _)| (a, b));
            pairs
        };
        // Halves: every link across, both ways; none within.
        let halves = cut(&PartitionShape::Halves.groups(5, 1), false);
        assert_eq!(halves.len(), 2 * 2 * 3);
        assert!(halves.iter().all(|&(a, b, cut)| (a <= 2) != (b <= 2) && cut == Cut::Both));
        // Ring: each replica keeps its two neighbours and loses the other two.
        let ring = cut(&PartitionShape::Ring.groups(5, 1), false);
        assert_eq!(ring.iter().filter(|&&(a, _, _)| a == 1).map(|&(_, b, _)| b).collect::<Vec<_>>(), [3, 4]);
        // Bridge: only the two outer pairs are cut from each other; 3 hears all.
        let bridge = cut(&PartitionShape::Bridge.groups(5, 1), false);
        assert!(bridge.iter().all(|&(a, b, _)| a != 3 && b != 3));
        assert_eq!(bridge.len(), 8);
        // One way: the first group hears nothing, the rest still hear it.
        let deaf = cut(&[vec![1], vec![2, 3, 4, 5]], true);
        assert!(deaf.iter().filter(|&&(a, _, _)| a == 1).all(|&(_, _, cut)| cut == Cut::In));
        assert!(deaf.iter().filter(|&&(_, b, _)| b == 1).all(|&(_, _, cut)| cut == Cut::Out));
    }

    fn parse(text: &str) -> Result<super::super::FaultSpec, String> {
        toml::from_str(&format!("kind = 'partition'\nat_ms = 0\nduration_ms = 5\n{text}"))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn a_partition_has_groups_of_real_replicas_or_a_shape() {
        assert!(parse("").unwrap_err().contains("either groups or a shape"));
        assert!(parse("groups = [[1]]\nshape = 'ring'").unwrap_err().contains("either groups or a shape"));
        let fault = |text| match parse(text) {
            Ok(super::super::FaultSpec::Partition(partition)) => partition,
            other => panic!("{other:?}"),
        };
        assert!(fault("groups = [[1], [6]]").check(5).unwrap_err().contains("member 6"));
        assert!(fault("groups = [[1], []]").check(5).unwrap_err().contains("never empty"));
        assert!(fault("shape = 'ring'").check(2).unwrap_err().contains("3 replicas"));
        let isolate = fault("shape = 'isolate'\nreplica = 2");
        assert!(isolate.check(5).is_ok());
        assert_eq!(isolate.groups(3), [vec![2], vec![1, 3]]);
    }
}
