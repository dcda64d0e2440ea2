//! Concurrent writes on both sides of a partition.
//!
//! Replica 1 is cut off; a client writes x = "left" on replica 1 and another
//! writes x = "right" on replica 2, neither knowing of the other. After the
//! partition heals, last-write-wins keeps exactly one of them (the same one
//! everywhere); version vectors keep both as siblings, until a client reads
//! them and writes a merge with the context of that read. And partitions of
//! Jepsen's shapes: a ring, where relays still carry every write around.

mod common;

use std::time::Duration;

use clocklab::experiment::faults::{PartitionShape, partition_links};
use clocklab::replica::links::Cut;
use common::{BUCKETS, Cluster, values, values_in};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_in_a_partition_become_siblings_only_under_vv() {
    let cluster = Cluster::start(&[&[], &[], &[]]).await;
    cluster.partition(1, 2, Cut::Both).await;
    cluster.partition(1, 3, Cut::Both).await;

    for bucket in BUCKETS {
        cluster.put(1, bucket, "x", json!("left"), Value::Null).await;
        cluster.put(2, bucket, "x", json!("right"), Value::Null).await;
    }
    // While cut, replica 1 has heard nothing of "right".
    assert_eq!(values(&cluster.get(1, "vv", "x").await), vec![json!("left")]);

    cluster.partition(1, 2, Cut::None).await;
    cluster.partition(1, 3, Cut::None).await;
    let state = cluster.converged(Duration::from_secs(10)).await;

    for bucket in ["lww-wall", "lww-hlc"] {
        let kept = values_in(&state, bucket, "x");
        assert_eq!(kept.len(), 1, "{bucket} keeps exactly one write: {kept:?}");
        assert!(kept[0] == json!("left") || kept[0] == json!("right"));
    }
    let mut siblings = values_in(&state, "vv", "x");
    siblings.sort_by_key(|value| value.to_string());
    assert_eq!(siblings, vec![json!("left"), json!("right")], "vv keeps both as siblings");

    // A client reads both siblings on replica 3 and writes their merge.
    let read = cluster.get(3, "vv", "x").await;
    cluster.put(3, "vv", "x", json!("left+right"), read.context).await;
    let state = cluster.converged(Duration::from_secs(10)).await;
    assert_eq!(values_in(&state, "vv", "x"), vec![json!("left+right")], "the merge superseded both");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_cut_is_routed_around_by_relaying() {
    let cluster = Cluster::start(&[&[], &[], &[]]).await;
    // Replica 1 can send nothing to replica 2, but replica 3 can relay.
    cluster.link(1, 2, Cut::Out).await;
    cluster.put(1, "vv", "y", json!(1), Value::Null).await;
    let read = cluster.wait_for(2, "vv", "y", |read| !read.siblings.is_empty()).await;
    assert_eq!(values(&read), vec![json!(1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_ring_partition_every_write_still_reaches_everyone_through_relays() {
    // Jepsen's majorities ring on five replicas: each hears only its two
    // neighbours. Links are cut as the partition fault cuts them.
    let cluster = Cluster::start(&[&[], &[], &[], &[], &[]]).await;
    let groups = PartitionShape::Ring.groups(5, 1);
    for (replica, peer, cut) in partition_links(&groups, 5, false) {
        cluster.link(replica, peer, cut).await;
    }
    // Replica 1 hears 2 and 5 only; a write on it must still reach 3 and 4
    // while the ring stands, relayed by its neighbours.
    for (writer, value) in [(1, "from 1"), (3, "from 3")] {
        cluster.put(writer, "vv", &format!("k{writer}"), json!(value), Value::Null).await;
    }
    for replica in 1..=5 {
        for (writer, value) in [(1, "from 1"), (3, "from 3")] {
            let read = cluster
                .wait_for(replica, "vv", &format!("k{writer}"), |read| !read.siblings.is_empty())
                .await;
            assert_eq!(values(&read), vec![json!(value)], "replica {replica} has replica {writer}'s write");
        }
    }
}
