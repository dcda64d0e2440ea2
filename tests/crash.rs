//! A replica is SIGKILLed while writes stream to it, then restarted on the
//! same SQLite file. Every write it acknowledged must still be there, on it
//! and on every peer, and the cluster must converge.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{BUCKETS, Cluster, values_in};
use serde_json::{Value, json};

/// Clients writing at once.
const WRITERS: usize = 16;
/// Acknowledged writes to wait for before the kill: enough that some are
/// surely still being replicated when it lands.
const ACKED_BEFORE_KILL: usize = 200;
/// How long those may take on a busy machine before the test gives up.
const ACK_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write() {
    let cluster = Arc::new(Cluster::start(&[&[], &[], &[]]).await);
    let acked: Arc<Mutex<Vec<(String, String, clocklab::write_id::WriteId)>>> = Arc::default();

    // Writers put distinct keys on replica 1 until it dies, and remember
    // every write it acknowledged.
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (cluster, acked) = (Arc::clone(&cluster), Arc::clone(&acked));
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let bucket = BUCKETS[n % BUCKETS.len()];
                let key = format!("w{writer}-{n}");
                match cluster.try_put(1, bucket, &key, json!(n), Value::Null).await {
                    Ok(reply) => acked.lock().unwrap().push((bucket.to_string(), key, reply.write_id)),
                    // The replica is gone: this write's fate is unknown.
                    _ => return,
                }
            }
        }));
    }
    // Kill once enough writes are acknowledged, however slow the machine.
    let deadline = tokio::time::Instant::now() + ACK_DEADLINE;
    while acked.lock().unwrap().len() < ACKED_BEFORE_KILL {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes were not acknowledged within {ACK_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.kill(1).await;
    for writer in writers {
        writer.await.expect("writer task");
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!("{} writes acknowledged before the SIGKILL", acked.len());
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    cluster.restart(1).await;
    let state = cluster.converged(Duration::from_secs(20)).await;
    for (bucket, key, write_id) in &acked {
        let read = state.get(bucket.as_str()).and_then(|keys| keys.get(key));
        let kept =
            read.is_some_and(|read| read.siblings.iter().any(|sibling| sibling.write_id.contains(*write_id)));
        assert!(kept, "acknowledged write {write_id} to {bucket}/{key} is gone");
    }

    // The restarted replica takes new writes and replicates them.
    cluster.put(1, "vv", "after", json!("restart"), Value::Null).await;
    let state = cluster.converged(Duration::from_secs(10)).await;
    assert_eq!(values_in(&state, "vv", "after"), vec![json!("restart")]);
}
