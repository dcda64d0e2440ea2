//! The workload on PostgreSQL: the lab's read-modify-write, one
//! transaction per operation.
//!
//! A client works through the same [`Schedule`] as on the lab's replicas
//! (same keys, same nodes, same items, same moments), in each mode's
//! database on its own, so every mode sees the operations the lab's
//! strategies see. One operation is one transaction on one node:
//!
//! ```sql
//! BEGIN;
//! SELECT items FROM kv WHERE key = $1;                       -- the read
//! INSERT INTO kv VALUES ($1, $2, $3) ON CONFLICT (key)
//!   DO UPDATE SET items = EXCLUDED.items, ...;               -- read + 1 item
//! COMMIT;                                                    -- acknowledged
//! ```
//!
//! A committed transaction is an acknowledged write. Its stamp is what
//! `last_update_wins` compares: the commit timestamp (from the node's own,
//! bent, clock, as `pg_xact_commit_timestamp` gives it) and the node,
//! `[commit_ns, node]`, a wall-clock stamp as `lww-wall`'s is. The write's
//! id `node:seq` is the client's, counted per node and mode, and travels
//! in the row so the final state says which write each node kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use tokio::time::Instant;

use crate::clock::dots::ReplicaId;
use crate::clock::physical::system_now;
use crate::experiment::workload::{Counters, Planned, REQUEST_TIMEOUT, Remembered, Schedule};
use crate::history::{Outcome, Stamp, WriteRecord};
use crate::write_id::WriteId;

/// One client's connections in one mode's database: node `i` at index `i - 1`.
pub type Connections = Vec<tokio_postgres::Client>;

/// The next write id's sequence number, per node, in one mode's database.
#[derive(Debug, Default)]
pub struct Sequences(Vec<AtomicU64>);

impl Sequences {
    pub fn new(nodes: usize) -> Self {
        Self((0..nodes).map(|_| AtomicU64::new(0)).collect())
    }

    fn next(&self, node: ReplicaId) -> WriteId {
        let seq = self.0[node as usize - 1].fetch_add(1, Ordering::Relaxed) + 1;
        WriteId::new(node, seq)
    }
}

/// One client's work in one mode's database.
pub struct BucketClient {
    pub point: usize,
    pub trial: usize,
    pub bucket: String,
    pub schedule: Schedule,
    pub connections: Connections,
    pub sequences: Arc<Sequences>,
    pub counters: Arc<Counters>,
}

impl BucketClient {
    /// Works through the schedule from `started` until `stop_at`, as the
    /// lab's clients do: on schedule, or when the previous operation has
    /// finished if that is later, with no catching up.
    pub async fn run(mut self, started: Instant, stop_at: Instant) -> Vec<WriteRecord> {
        let interval = self.schedule.interval();
        let mut scheduled = started + self.schedule.first_start();
        let mut writes = Vec::new();
        loop {
            let planned = self.schedule.next_operation();
            let start = scheduled.max(Instant::now());
            if start >= stop_at {
                break;
            }
            tokio::time::sleep_until(start).await;
            writes.push(self.read_modify_write(planned).await);
            scheduled = match interval {
                Some(every) => (scheduled + every).max(Instant::now()),
                None => Instant::now(),
            };
        }
        writes
    }

    /// One operation, recorded whatever happens.
    pub async fn read_modify_write(&mut self, Planned { key, replica, item }: Planned) -> WriteRecord {
        let invoke_ns = system_now();
        let mut record =
            WriteRecord::started(self.point, self.trial, &self.bucket, &key, replica, item, invoke_ns);
        let write_id = self.sequences.next(replica);
        let connection = &mut self.connections[replica as usize - 1];
        let outcome =
            match tokio::time::timeout(REQUEST_TIMEOUT, transact(connection, &key, write_id, &mut record))
                .await
            {
                Ok(Ok(stamp)) => {
                    record.write_id = Some(write_id);
                    record.stamp =
                        stamp.map(|commit_us| Stamp::from_value(json!([commit_us * 1000, replica])));
                    Outcome::Ok
                }
                Ok(Err(Failed::Before)) => Outcome::Fail,
                // The commit was sent and no answer came: it may have happened.
                Ok(Err(Failed::AtCommit)) | Err(_) => Outcome::Unknown,
            };
        record.complete_ns = system_now();
        record.outcome = outcome;
        self.counters.attempted.fetch_add(1, Ordering::Relaxed);
        if outcome == Outcome::Ok {
            self.counters.acked.fetch_add(1, Ordering::Relaxed);
        }
        record
    }
}

/// Where a transaction failed.
enum Failed {
    /// Before COMMIT was sent: nothing was written.
    Before,
    /// At COMMIT: whether it was written is not known.
    AtCommit,
}

/// The transaction; returns the commit timestamp in µs, if it could be
/// read back (a write committed is acknowledged even if it could not).
async fn transact(
    connection: &mut tokio_postgres::Client,
    key: &str,
    write_id: WriteId,
    record: &mut WriteRecord,
) -> Result<Option<i64>, Failed> {
    let transaction = connection.transaction().await.map_err(|_| Failed::Before)?;
    let row = transaction
        .query_opt("SELECT items FROM kv WHERE key = $1", &[&key])
        .await
        .map_err(|_| Failed::Before)?;
    let mut remembered = Remembered::nothing();
    if let Some(row) = row {
        let items: serde_json::Value = row.get(0);
        remembered.items = serde_json::from_value(items).unwrap_or_default();
        remembered.items.sort_unstable();
        remembered.items.dedup();
        remembered.siblings = 1;
    }
    record.writing(&remembered);
    let xid: String = transaction
        .query_one(
            "INSERT INTO kv (key, items, write_id) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET items = EXCLUDED.items, write_id = EXCLUDED.write_id \
             RETURNING pg_current_xact_id()::text",
            &[&key, &json!(record.value), &write_id.to_string()],
        )
        .await
        .map_err(|_| Failed::Before)?
        .get(0);
    transaction.commit().await.map_err(|_| Failed::AtCommit)?;
    let commit = connection
        .query_one(
            "SELECT (extract(epoch FROM pg_xact_commit_timestamp($1::text::xid)) * 1000000)::int8",
            &[&xid],
        )
        .await;
    Ok(commit.ok().and_then(|row| row.get::<_, Option<i64>>(0)))
}

/// How long client B waits for A's write to reach node 3.
const ARRIVAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// DDIA Figure 8-3 in one mode's database: client `a` adds item 1 to `x`
/// on node 1; once node 3 holds A's write, client `b` reads `x` there and
/// adds item 2. B's write truly comes after A's and has read it.
pub async fn figure_8_3(mut a: BucketClient, mut b: BucketClient) -> Vec<WriteRecord> {
    let first = a.read_modify_write(Planned { key: "x".into(), replica: 1, item: 1 }).await;
    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    while Instant::now() < deadline {
        let arrived = b.connections[2].query_opt("SELECT 1 FROM kv WHERE key = 'x'", &[]).await;
        if matches!(arrived, Ok(Some(_))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let second = b.read_modify_write(Planned { key: "x".into(), replica: 3, item: 2 }).await;
    vec![first, second]
}
