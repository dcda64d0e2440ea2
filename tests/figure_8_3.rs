//! DDIA Figure 8-3, played on three real replica processes.
//!
//! Client A writes x = 1 on node 1, whose clock is ahead of node 3's. The
//! write is replicated to node 3. Client B reads x = 1 on node 3 and writes
//! x = 2 there. Both writes then reach node 2. The increment clearly
//! happened after the write it read, yet under last-write-wins on wall
//! clocks node 3's lagging clock stamps it *earlier*, and every replica keeps
//! x = 1: the increment is acknowledged and silently lost.

mod common;

use std::time::Duration;

use clocklab::replica::links::Cut;
use common::{BUCKETS, Cluster, values, values_in};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure_8_3_wall_clock_lww_loses_the_increment_hlc_and_vv_keep_it() {
    // Node 1's clock runs half a second ahead of node 3's.
    let cluster = Cluster::start(&[
        &["--clock", "model", "--offset-ms", "500"],
        &["--clock", "model"],
        &["--clock", "model"],
    ])
    .await;
    // Node 2 hears nothing until the end, so both writes reach it together.
    cluster.partition(1, 2, Cut::Both).await;
    cluster.partition(3, 2, Cut::Both).await;

    for bucket in BUCKETS {
        // Client A writes x = 1 on node 1.
        let write_a = cluster.put(1, bucket, "x", json!(1), Value::Null).await;

        // The write is replicated to node 3.
        let read = cluster
            .wait_for(3, bucket, "x", |read| {
                read.siblings.iter().any(|sibling| sibling.write_id == write_a.write_id)
            })
            .await;

        // Client B reads x on node 3 and writes x + 1 there, with the
        // context of its read.
        let x = values(&read)[0].as_i64().expect("x is a number");
        let write_b = cluster.put(3, bucket, "x", json!(x + 1), read.context).await;
        assert!(write_b.write_id.starts_with("3:"), "the increment was acknowledged by node 3");
    }

    // Both writes reach node 2.
    cluster.partition(1, 2, Cut::None).await;
    cluster.partition(3, 2, Cut::None).await;
    let state = cluster.converged(Duration::from_secs(10)).await;
    let x = |bucket: &str| values_in(&state, bucket, "x");

    assert_eq!(x("lww-wall"), vec![json!(1)], "wall-clock LWW silently dropped the acknowledged increment");
    assert_eq!(x("lww-hlc"), vec![json!(2)], "the HLC stamped the increment after the write it read");
    assert_eq!(x("vv"), vec![json!(2)], "the increment's context superseded x = 1: no siblings");
    for id in cluster.ids() {
        assert_eq!(values(&cluster.get(id, "lww-wall", "x").await), vec![json!(1)], "node {id}");
    }
}
