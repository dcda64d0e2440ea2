//! The lab's watcher: reads every replica's clocks and marks, and judges.
//!
//! Every [`STATUS_INTERVAL`] it asks each running replica for
//! `GET /admin/status` (a paused replica cannot answer, so it is skipped)
//! and tells the page each replica's true time, physical clock, offset and
//! HLC, and how far replication has come. Every [`ORACLE_EVERY`] intervals
//! it reads every replica's state and runs the live oracle ([`super::settle`])
//! on the keys that have settled.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::settle::{Observed, settled_history};
use super::{Counts, LabEvent, ORACLE_EVERY, STATUS_INTERVAL, Shared, StrategyCounts, lock};
use crate::analysis::{Cause, analyze};
use crate::clock::dots::ReplicaId;
use crate::engine::processes::cluster::{ClusterClient, ClusterError};
use crate::history::Outcome;
use crate::replica::core::{Snapshot, Status};

type Marks = BTreeMap<ReplicaId, BTreeMap<ReplicaId, u64>>;

/// How often the lease workers are read, in status intervals.
const LEASE_EVERY: u64 = 2;

pub(super) async fn run(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(STATUS_INTERVAL);
    let mut marks = Marks::new();
    let mut reported: HashSet<(String, u64)> = HashSet::new();
    for tick in 1u64.. {
        ticks.tick().await;
        let paused = lock(&shared.journal).paused.clone();
        let statuses = read_all(&shared, |id| !paused.contains(&id), ClusterClient::status).await;
        let fresh = observe_statuses(&shared, &statuses, &mut marks);
        for (replica, origin, through) in fresh {
            shared.emit(LabEvent::Replicated { replica, origin, through });
        }
        let replicas = lock(&shared.view).replicas.clone();
        shared.emit(LabEvent::Status { replicas });
        if tick % LEASE_EVERY == 0
            && let Some(lease) = shared.lease.lock().await.as_mut()
        {
            let view = lease.refresh(&shared.admin).await;
            lock(&shared.view).lease = Some(view.clone());
            shared.emit(LabEvent::Lease(Box::new(view)));
        }
        if tick % ORACLE_EVERY == 0 {
            let counts = judge(&shared, &marks, &mut reported).await;
            lock(&shared.view).counts = counts.clone();
            shared.emit(LabEvent::Counts(counts));
        }
    }
}

/// Asks every replica `wanted` admits with `ask`; `None` where none answered.
async fn read_all<'a, T, F>(
    shared: &'a Shared,
    wanted: impl Fn(ReplicaId) -> bool,
    ask: impl Fn(&'a ClusterClient, ReplicaId) -> F,
) -> BTreeMap<ReplicaId, Option<T>>
where
    F: Future<Output = Result<T, ClusterError>>,
{
    let requests = shared.admin.ids().filter(|&id| wanted(id)).map(|id| {
        let answer = ask(&shared.admin, id);
        async move { (id, answer.await) }
    });
    let answers = futures::future::join_all(requests).await;
    answers
        .into_iter()
        .map(|(id, answer)| {
            if let Err(error) = &answer {
                tracing::debug!(%error, "lab replica did not answer");
            }
            (id, answer.ok())
        })
        .collect()
}

/// Updates the replicas' views from their statuses; returns each
/// `(replica, origin, through)` whose high-water mark moved.
fn observe_statuses(
    shared: &Shared,
    statuses: &BTreeMap<ReplicaId, Option<Status>>,
    marks: &mut Marks,
) -> Vec<(ReplicaId, ReplicaId, u64)> {
    let mut moved = Vec::new();
    let mut view = lock(&shared.view);
    for replica in &mut view.replicas {
        let Some(answer) = statuses.get(&replica.id) else {
            // A paused replica cannot say what time it is; true time is the
            // same for every process on the machine, so the card's goes on.
            replica.true_ns = crate::clock::physical::TrueTime::now(&crate::clock::physical::SystemTrueTime);
            continue;
        };
        replica.reachable = answer.is_some();
        let Some(status) = answer else { continue };
        replica.true_ns = status.true_ns;
        replica.physical_ns = status.physical_ns;
        replica.offset_ms = status.offset_ns as f64 / 1e6;
        replica.hlc = status.hlc;
        replica.model = status.model.clone();
        let high_water = status.high_water.clone();
        let known = marks.entry(replica.id).or_default();
        for (&origin, &through) in &high_water {
            if known.get(&origin).is_none_or(|&before| before < through) {
                moved.push((replica.id, origin, through));
            }
        }
        *known = high_water.clone();
        replica.high_water = high_water;
    }
    moved
}

/// Runs the live oracle once; reports new drops and returns the totals.
async fn judge(shared: &Shared, marks: &Marks, reported: &mut HashSet<(String, u64)>) -> Counts {
    let (writes, before, paused) = {
        let journal = lock(&shared.journal);
        (journal.writes.clone(), journal.activity.clone(), journal.paused.clone())
    };
    let mut counts = Counts {
        strategies: shared.buckets.iter().map(|bucket| (bucket.clone(), StrategyCounts::default())).collect(),
        ..Default::default()
    };
    for write in &writes {
        if let Some(totals) = counts.strategies.get_mut(write.bucket.as_str()) {
            totals.acked += usize::from(write.outcome == Outcome::Ok);
            totals.siblings += usize::from(write.read_siblings > 1);
        }
    }
    for drop in &lock(&shared.view).drops {
        if let Some(totals) = counts.strategies.get_mut(&*drop.bucket) {
            add_drop(totals, drop.cause);
        }
    }
    let answers = read_all(shared, |id| !paused.contains(&id), ClusterClient::state).await;
    let states: BTreeMap<ReplicaId, Snapshot> =
        answers.into_iter().filter_map(|(id, state)| Some((id, state?))).collect();
    *lock(&shared.states) =
        (states.clone(), crate::clock::physical::TrueTime::now(&crate::clock::physical::SystemTrueTime));
    if let Some(id) = paused.first() {
        counts.waiting = Some(format!("replica {id} is paused: no key can be judged until it resumes"));
        return counts;
    }
    if states.len() < shared.admin.ids().count() || marks.len() < states.len() {
        counts.waiting = Some("a replica did not answer: no key can be judged".into());
        return counts;
    }
    let after = lock(&shared.journal).activity.clone();
    let observed = Observed { high_water: marks, states: &states };
    let (records, unsettled) = settled_history(&writes, &before, &after, &observed);
    counts.unsettled = unsettled;
    for drop in analyze(&records).drops {
        let item = drop.victim.item.unwrap_or_default();
        if !reported.insert((drop.bucket.to_string(), item)) {
            continue;
        }
        if let Some(totals) = counts.strategies.get_mut(&*drop.bucket) {
            add_drop(totals, drop.cause);
        }
        lock(&shared.view).drops.push(drop.clone());
        shared.emit(LabEvent::Drop(Box::new(drop)));
    }
    counts
}

fn add_drop(totals: &mut StrategyCounts, cause: Cause) {
    totals.dropped += 1;
    match cause {
        Cause::Causality => totals.causality += 1,
        Cause::Realtime => totals.realtime += 1,
        Cause::Concurrent => totals.concurrent += 1,
    }
}
