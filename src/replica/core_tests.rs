//! The replica core with a hand-wound clock, with no process, socket or
//! real time involved. DDIA Figure 8-3 itself is told once, in
//! `experiments/scenarios/figure-8-3.toml`, and what the cores make of it,
//! stamp by stamp, is its golden transcript beside it (see
//! `dashboard::transcript`).

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::clock::physical::{ManualTrueTime, TrueTime};

/// 42 seconds past some minute, as in the figure.
const T42: Nanos = 1_700_000_042_000_000_000;
const MS: f64 = 1.0;

/// Three replicas over one true time; each clock offset in ms.
fn cluster(time: &Arc<ManualTrueTime>, offsets_ms: [f64; 3]) -> Vec<ReplicaCore> {
    (1..=3)
        .zip(offsets_ms)
        .map(|(id, offset)| {
            let mut clock = PhysicalClock::modelled(Arc::clone(time) as Arc<dyn TrueTime>);
            clock.update(&ClockUpdate { offset_ms: Some(offset), ..Default::default() }).unwrap();
            ReplicaCore::new(id, clock)
        })
        .collect()
}

/// Replicates every write `from` has that `to` lacks.
fn replicate(replicas: &mut [ReplicaCore], from: usize, to: usize) {
    let missing = replicas[from].missing(replicas[to].have(), |_| true, usize::MAX);
    replicas[to].receive(missing).unwrap();
}

fn values(replica: &ReplicaCore, bucket: &str) -> Vec<Value> {
    let read = replica.read(bucket, "x").unwrap();
    read.siblings.into_iter().map(|sibling| sibling.value.parse()).collect()
}

#[test]
fn truetime_hides_a_write_through_its_commit_wait_and_then_keeps_the_increment() {
    // Node 1 is 3 ms ahead; epsilon 5 ms covers it.
    let time = ManualTrueTime::new(T42);
    let [node_1, node_3] = [0, 2];
    let mut replicas: Vec<ReplicaCore> = (1..=3)
        .zip([3.0, 0.0, 0.0])
        .map(|(id, offset)| {
            let mut clock = PhysicalClock::modelled(Arc::clone(&time) as Arc<dyn TrueTime>);
            clock.update(&ClockUpdate { offset_ms: Some(offset), ..Default::default() }).unwrap();
            let parameters = json!({"truetime": {"epsilon_ms": 5}});
            let strategies = strategy::registry_with(&serde_json::from_value(parameters).unwrap()).unwrap();
            ReplicaCore::with_strategies(id, clock, strategies)
        })
        .collect();
    time.set(T42 + 1_000_000);
    let x1 = replicas[node_1].write("truetime", "x", (&json!(1)).into(), &Value::Null).unwrap();
    // Stamped 42.004 + 5 ms; acknowledged once node 1's clock reads 42.014.
    assert_eq!(x1.write.stamp.parse(), json!([T42 + 9_000_000, 1]));
    assert_eq!(x1.acknowledge_at, Some(T42 + 14_000_000));
    // Meanwhile nobody sees it: not a read on node 1, not replication.
    time.advance_ms(MS);
    assert!(replicas[node_1].release().is_empty());
    assert_eq!(values(&replicas[node_1], "truetime"), Vec::<Value>::new());
    assert!(replicas[node_1].missing(&DotSet::new(), |_| true, usize::MAX).is_empty());
    // At true time 42.011 node 1's clock reads 42.014: the wait is over.
    time.set(T42 + 11_000_000);
    assert!(!replicas[node_1].release().is_empty());
    replicate(&mut replicas, node_1, node_3);
    let read = replicas[node_3].read("truetime", "x").unwrap();
    assert_eq!(read.siblings.len(), 1);
    // Client B, who read x = 1 after it was acknowledged, writes x = 2 on
    // node 3, whose clock is exact: stamped 42.011 + 5 ms, above 42.009.
    let x2 = replicas[node_3].write("truetime", "x", (&json!(2)).into(), &read.context).unwrap();
    time.set(T42 + 30_000_000);
    replicas[node_3].release();
    replicate(&mut replicas, node_3, node_1);
    replicas[node_1].release();
    assert_eq!(values(&replicas[node_1], "truetime"), vec![json!(2)], "{:?}", x2.write.stamp);
}

#[test]
fn set_union_merges_the_figures_writes_and_refuses_a_number() {
    let time = ManualTrueTime::new(T42);
    let mut replicas = cluster(&time, [3.0, 0.0, 0.0]);
    let error = replicas[0].write("set-union", "x", (&json!(1)).into(), &Value::Null).unwrap_err();
    assert!(error.to_string().contains("JSON array"), "{error}");
    assert!(replicas[0].missing(&DotSet::new(), |_| true, usize::MAX).is_empty(), "nothing was stored");
    replicas[0].write("set-union", "x", (&json!([1])).into(), &Value::Null).unwrap();
    replicas[2].write("set-union", "x", (&json!([2])).into(), &Value::Null).unwrap();
    replicate(&mut replicas, 0, 2);
    replicate(&mut replicas, 2, 0);
    for replica in [&replicas[0], &replicas[2]] {
        let read = replica.read("set-union", "x").unwrap();
        assert_eq!(read.siblings.len(), 1, "one value, never siblings");
        assert_eq!(read.siblings[0].value.parse(), json!([1, 2]));
    }
}

#[test]
fn a_restarted_core_replays_its_log_to_the_same_state() {
    let time = ManualTrueTime::new(T42);
    let mut replicas = cluster(&time, [0.0, 0.0, 0.0]);
    for (n, bucket) in ["lww-wall", "lww-hlc", "vv", "vv"].iter().enumerate() {
        time.advance_ms(MS);
        replicas[n % 2].write(bucket, "x", (&json!(n)).into(), &Value::Null).unwrap();
    }
    replicate(&mut replicas, 1, 0);
    let log: Vec<Write> = replicas[0]
        .missing(&DotSet::new(), |_| true, usize::MAX)
        .iter()
        .map(|write| (**write).clone())
        .collect();
    let mut restarted = ReplicaCore::new(1, PhysicalClock::modelled(time.clone()));
    for write in log.into_iter().rev() {
        restarted.restore(write).unwrap(); // any order gives the same state
    }
    assert_eq!(restarted.snapshot(), replicas[0].snapshot());
    assert_eq!(restarted.status().hlc, replicas[0].status().hlc);
    // Its next write continues its own sequence.
    let next = restarted.write("vv", "y", (&json!(0)).into(), &Value::Null).unwrap();
    assert_eq!(next.write.seq, replicas[0].have().max_counter(1) + 1);
}

/// A plugin stand-in whose process fails on its second `apply`.
pub(super) struct BreaksOnSecondApply(pub(super) std::sync::atomic::AtomicUsize);

impl Strategy for BreaksOnSecondApply {
    fn name(&self) -> &str {
        "breaks"
    }

    fn kind(&self) -> strategy::Kind {
        strategy::Kind::LastWriteWins
    }

    fn stamp(
        &self,
        _: &KeyState,
        _: &Value,
        clocks: &mut Clocks,
    ) -> Result<strategy::Stamped, StrategyError> {
        Ok(strategy::Stamped::now(RawJson::of(&clocks.physical_now), RawJson::null()))
    }

    fn check(&self, _: &Write) -> Result<(), StrategyError> {
        Ok(())
    }

    fn apply(&self, state: &mut KeyState, write: &Arc<Write>) -> Result<(), StrategyError> {
        if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1 {
            let problem = strategy::plugin::Problem::Exited("exited (exit status: 1)".into());
            return Err(StrategyError::Plugin(PluginFailure::new(
                "./breaks.py",
                "apply",
                "{}",
                problem,
                Vec::new(),
            )));
        }
        state.siblings = vec![Arc::clone(write)];
        Ok(())
    }

    fn read_context(&self, _: &KeyState) -> Result<Value, StrategyError> {
        Ok(Value::Null)
    }
}

#[test]
fn a_failed_plugin_takes_only_its_own_bucket_out_of_service() {
    let time = ManualTrueTime::new(T42);
    let clock = || PhysicalClock::modelled(Arc::clone(&time) as Arc<dyn TrueTime>);
    let strategies = |breaks| -> Vec<Arc<dyn Strategy>> {
        vec![Arc::new(crate::strategy::lww_wall::LwwWall), Arc::new(BreaksOnSecondApply(breaks))]
    };
    let mut core =
        ReplicaCore::with_strategies(1, clock(), strategies(std::sync::atomic::AtomicUsize::new(0)));
    let mut peer =
        ReplicaCore::with_strategies(2, clock(), strategies(std::sync::atomic::AtomicUsize::new(0)));
    core.write("breaks", "x", RawJson::of(&json!([1])), &Value::Null).unwrap();
    // The second apply fails: the write is refused, not logged, not acknowledged.
    let refused = core.write("breaks", "x", RawJson::of(&json!([2])), &Value::Null).unwrap_err();
    assert!(matches!(&refused, CoreError::BucketFailed { bucket, .. } if bucket == "breaks"), "{refused}");
    assert_eq!(core.log_len(), 1);
    assert!(refused.to_string().contains("./breaks.py"), "{refused}");
    // From then on the bucket serves nothing, at once.
    assert!(matches!(core.read("breaks", "x"), Err(CoreError::BucketFailed { .. })));
    // Every other bucket goes on, and so does replication: a peer's batch
    // holding writes of both buckets is taken whole, the failed bucket's
    // write logged (so the log stays contiguous) but not applied.
    core.write("lww-wall", "x", RawJson::of(&json!([3])), &Value::Null).unwrap();
    peer.write("breaks", "y", RawJson::of(&json!([4])), &Value::Null).unwrap();
    peer.write("lww-wall", "y", RawJson::of(&json!([5])), &Value::Null).unwrap();
    let batch = peer.missing(core.have(), |_| true, usize::MAX);
    assert_eq!(core.receive(batch).unwrap().len(), 2);
    assert_eq!(values(&core, "lww-wall"), vec![json!([3])]);
    assert_eq!(core.read("lww-wall", "y").unwrap().siblings[0].value.parse(), json!([5]));
    assert_eq!(core.log_len(), 4);
    let snapshot = core.snapshot();
    assert!(snapshot.contains_key("lww-wall") && !snapshot.contains_key("breaks"), "{snapshot:?}");
    let status = core.status();
    assert!(
        status.failed_buckets["breaks"].contains("exited (exit status: 1)"),
        "{:?}",
        status.failed_buckets
    );
}

#[test]
fn fencing_refuses_an_older_token_here_and_after_a_newer_one_was_replicated_here() {
    use crate::lease::Token;
    let time = ManualTrueTime::new(T42);
    let mut replicas = cluster(&time, [0.0; 3]);
    let fenced = |replica: &mut ReplicaCore, value: u64, token: u64| {
        replica.write_fenced("lww-hlc", "x", (&json!([value])).into(), &Value::Null, Some(Token(token)))
    };
    fenced(&mut replicas[0], 1, 34).expect("the first token any replica sees");
    let refused = fenced(&mut replicas[0], 2, 33).expect_err("33 after 34");
    assert_eq!(refused, CoreError::Fenced { key: "x".into(), seen: Token(34), carried: Token(33) });
    assert!(refused.to_string().contains("has seen token 34, and this write carries token 33"), "{refused}");
    fenced(&mut replicas[0], 2, 34).expect("the same holder writes again");
    replicas[0]
        .write("lww-hlc", "x", (&json!([3])).into(), &Value::Null)
        .expect("an unfenced write is not checked");
    // Replica 2 has not seen 34 yet: the stale writer gets through there...
    fenced(&mut replicas[1], 9, 33).expect("replica 2 knows nothing newer");
    // ...until replication brings 34 along.
    replicate(&mut replicas, 0, 2);
    assert!(matches!(fenced(&mut replicas[2], 9, 33), Err(CoreError::Fenced { seen: Token(34), .. })));
}
