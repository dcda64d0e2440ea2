//! Replication: anti-entropy between replicas, at least once, in any order.
//!
//! Every write lives in its origin's log with a sequence number, so "what
//! does a replica have?" is a set of `(origin, seq)` dots (see
//! [`crate::clock::dots`]). For each peer a replica runs one task that
//! repeats a *push*:
//!
//! 1. Ask the worker which logged writes the peer lacks, as far as the
//!    peer's last answer told us, at most [`ReplicationOptions::batch_limit`].
//! 2. Send them in one `POST /replication/push`, through the link's faults.
//! 3. The peer merges them, commits, and answers with everything it now has.
//!
//! With nothing to send, the task waits for new writes, or sends an empty
//! push every [`ReplicationOptions::idle_interval`] as a heartbeat that keeps
//! its view of the peer fresh. Batches make replication cheap: one request
//! and one commit carry many writes.
//!
//! A replica ships its own writes, and *relays* another origin's writes to a
//! peer that has stayed behind on that origin for
//! [`ReplicationOptions::relay_after`] (say, because the link between them is
//! cut). So writes get through partitions by any path, and duplicates are
//! harmless: the receiver skips dots it has. Nothing depends on order.
//!
//! The decisions (what to ship, what the link does, how long to wait) are a
//! pure state machine, [`super::peer_policy::PeerPolicy`]; this module is
//! the I/O around it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::links::Links;
use super::offsets::{OffsetMonitor, Sample};
use super::peer_policy::{Pause, PeerPolicy, ReplicationOptions, Transmission};
use super::worker::WorkerHandle;
use crate::clock::Nanos;
use crate::clock::dots::{DotSet, ReplicaId};
use crate::clock::physical::PhysicalClock;
use crate::strategy::Write;

/// The path peers push to.
pub const PUSH_PATH: &str = "/replication/push";
/// The header that carries the cluster token.
pub const TOKEN_HEADER: &str = "x-cluster-token";

/// The body of a push.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub from: ReplicaId,
    pub writes: Vec<Arc<Write>>,
    /// The sender's physical clock when it sent this (for offset monitoring).
    #[serde(default)]
    pub sent_ns: Option<Nanos>,
}

impl PushRequest {
    /// The request as JSON, in a buffer sized up front: a push can carry
    /// thousands of writes, and growing the buffer by doubling would copy
    /// it again and again.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        /// Field names, numbers and punctuation of one write, in bytes (about).
        const WRITE_OVERHEAD_BYTES: usize = 96;
        let estimate: usize = self
            .writes
            .iter()
            .map(|write| {
                let texts =
                    [&write.bucket, &write.key, write.value.text(), write.stamp.text(), write.context.text()];
                WRITE_OVERHEAD_BYTES + texts.iter().map(|text| text.len()).sum::<usize>()
            })
            .sum();
        let mut buffer = Vec::with_capacity(estimate + WRITE_OVERHEAD_BYTES);
        serde_json::to_writer(&mut buffer, self)?;
        Ok(buffer)
    }
}

/// The answer to a push: everything the receiver now has.
#[derive(Debug, Serialize, Deserialize)]
pub struct PushReply {
    pub have: DotSet,
    /// The receiver's physical clock when the push arrived, and when it answered.
    #[serde(default)]
    pub received_ns: Option<Nanos>,
    #[serde(default)]
    pub replied_ns: Option<Nanos>,
}

/// One peer, as `--peers` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub id: ReplicaId,
    pub addr: SocketAddr,
}

/// Everything a peer task needs.
pub struct PeerTask {
    pub me: ReplicaId,
    pub peer: Peer,
    pub worker: WorkerHandle,
    pub links: Arc<Links>,
    pub client: reqwest::Client,
    pub token: String,
    pub options: ReplicationOptions,
    pub log_len: watch::Receiver<usize>,
    pub seed: u64,
    /// The replica's physical clock, as the worker last published it.
    pub clock: watch::Receiver<PhysicalClock>,
    /// Where round-trip offset samples go.
    pub offsets: Arc<OffsetMonitor>,
}

impl PeerTask {
    /// Runs until the worker stops (the task is also aborted on shutdown).
    /// Every decision is the [`PeerPolicy`]'s; this only does the I/O.
    pub async fn run(mut self) {
        let url = format!("http://{}{}", self.peer.addr, PUSH_PATH);
        let started = Instant::now();
        let now = move || started.elapsed().as_nanos() as Nanos;
        let mut policy = PeerPolicy::new(self.me, self.peer.id, self.options.clone(), self.seed);
        loop {
            let at = now();
            let (delay, lost, reversed, duplicated) = match policy.transmit(&self.links.get(self.peer.id)) {
                Transmission::Held { wait } => {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Transmission::Send { delay, reversed, duplicated } => (delay, None, reversed, duplicated),
                Transmission::Lost { delay, wait } => (delay, Some(wait), false, false),
            };
            let shipping = policy.ships(at);
            let missing = self.worker.missing(
                policy.view().clone(),
                move |origin| shipping.allows(origin),
                policy.batch_limit(),
            );
            let Ok((mut writes, ours)) = missing.await else {
                return;
            };
            if reversed {
                writes.reverse();
            }
            let copy = duplicated.then(|| writes.clone());
            let sent = writes.len();
            // The link's delay is part of the round trip, as a network's would be.
            let sent_ns = self.clock.borrow().now();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if let Some(wait) = lost {
                tokio::time::sleep(wait).await;
                continue;
            }
            let Some(reply) =
                self.push(&url, PushRequest { from: self.me, writes, sent_ns: Some(sent_ns) }).await
            else {
                self.pause(policy.after_failure()).await;
                continue;
            };
            if let (Some(received), Some(replied)) = (reply.received_ns, reply.replied_ns) {
                let answered = self.clock.borrow().now();
                self.offsets
                    .record(self.peer.id, Sample::from_round_trip(sent_ns, received, replied, answered));
            }
            policy.on_reply(reply.have, &ours, at);
            if let Some(writes) = copy {
                // The network delivers it again; the peer must change nothing.
                let _ = self.push(&url, PushRequest { from: self.me, writes, sent_ns: Some(sent_ns) }).await;
            }
            self.pause(policy.after_push(sent)).await;
        }
    }

    /// Sends one push; the peer's answer, or `None` if there was none.
    async fn push(&self, url: &str, request: PushRequest) -> Option<PushReply> {
        let body = match request.to_json() {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(peer = self.peer.id, %error, "cannot encode a push");
                return None;
            }
        };
        let answer = self
            .client
            .post(url)
            .header(TOKEN_HEADER, &self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(self.options.request_timeout)
            .body(body)
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => response.json::<PushReply>().await.ok(),
            Ok(response) => {
                tracing::debug!(peer = self.peer.id, status = %response.status(), "push refused");
                None
            }
            Err(error) => {
                tracing::debug!(peer = self.peer.id, %error, "push failed");
                None
            }
        }
    }

    /// Waits as the policy says.
    async fn pause(&mut self, pause: Pause) {
        match pause {
            Pause::UntilWrites { heartbeat } => {
                let _ = tokio::time::timeout(heartbeat, self.log_len.changed()).await;
            }
            Pause::Linger(wait) | Pause::Retry(wait) => tokio::time::sleep(wait).await,
            Pause::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::RawJson;

    #[test]
    fn a_push_reads_back_as_sent() {
        let write = |seq: u64, context: RawJson| {
            Arc::new(Write {
                origin: 2,
                seq,
                bucket: "vv".into(),
                key: format!("key \"{seq}\" ✓"),
                value: (&serde_json::json!({ "items": [seq, "x"] })).into(),
                stamp: RawJson::of(&[2, seq]),
                context,
                fence: None,
            })
        };
        let context = RawJson::from_text(r#"{"vv":{"1":3},"dots":[[2,5]]}"#.into()).unwrap();
        let request = PushRequest {
            from: 2,
            writes: vec![write(1, RawJson::null()), write(2, context)],
            sent_ns: Some(7),
        };
        let body = request.to_json().unwrap();
        let read: PushRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!((read.from, read.sent_ns), (2, Some(7)));
        assert_eq!(read.writes, request.writes);
    }
}
