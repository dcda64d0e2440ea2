//! DDIA Figure 8-3, played on three real replica processes.
//!
//! The story is told once, in `experiments/scenarios/figure-8-3.toml`: node
//! 1's clock is ahead of node 3's, client A writes x = 1 on node 1, the
//! write reaches node 3, client B reads it there and writes x = 2, and both
//! writes then reach every node. The step-through plays it on replica cores
//! and its golden transcript says what each replica holds after each step.
//! This test plays the same steps on real processes, over HTTP, with real
//! SQLite stores and replication, and checks after every step that each
//! replica holds exactly what the transcript says: the same write ids and
//! values, for every strategy. So the real path loses the same increment.
//!
//! One thing differs, and must: the scenario's steps are a millisecond
//! apart in its hand-wound time, while a real step (a request, or a push
//! waited for) takes milliseconds of real time. The clocks' offsets are
//! therefore stretched by [`STRETCH`], so that the stamps come out in the
//! same order as in the story (B's wall-clock stamp still below A's), and
//! the test fails with that reason if the replay ever takes longer than the
//! stretched offset.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use clocklab::builtin::Folder;
use clocklab::replica::core::Sibling;
use clocklab::replica::links::Cut;
use clocklab::sim::scenario::{self, Action, Trace};
use clocklab::write_id::WriteIds;
use common::{Cluster, values};
use serde_json::{Value, json};

/// How much larger the replay's clock offsets are than the scenario's: its
/// 3 ms become 3 s, far more than the real steps between the write and the
/// increment take, even on a busy machine.
const STRETCH: f64 = 1000.0;
/// How long a replication step may take to arrive.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

fn golden_story() -> (scenario::Scenario, Trace) {
    let folder = Folder::Disk(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/scenarios"));
    let story = scenario::load(&folder, "figure-8-3").expect("the scenario loads");
    let trace = scenario::play("figure-8-3", &story, &[]).expect("the scenario plays");
    (story, trace)
}

/// Write ids and values, as the transcript compares them.
fn shown(siblings: &[Sibling]) -> Vec<(WriteIds, Value)> {
    siblings.iter().map(|sibling| (sibling.write_id.clone(), sibling.value.parse())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figure_8_3_on_real_processes_holds_what_its_golden_transcript_says_at_every_step() {
    let (story, trace) = golden_story();
    let offsets: Vec<String> = (0..story.replicas)
        .map(|index| (story.clock_offsets_ms.get(index).copied().unwrap_or(0.0) * STRETCH).to_string())
        .collect();
    let flags: Vec<Vec<&str>> =
        offsets.iter().map(|offset| vec!["--clock", "model", "--offset-ms", offset.as_str()]).collect();
    let flags: Vec<&[&str]> = flags.iter().map(Vec::as_slice).collect();
    let cluster = Cluster::start(&flags).await;
    // The story holds only while the real steps take less than the
    // stretched offset; the replay says so plainly if they did not.
    let largest_offset = story.clock_offsets_ms.iter().fold(0.0_f64, |most, offset| most.max(offset.abs()));
    let started = Instant::now();
    let ids: Vec<u32> = cluster.ids().collect();
    // Every link cut: writes move only where a `replicate` step says.
    for &a in &ids {
        for &b in ids.iter().filter(|&&b| b > a) {
            cluster.partition(a, b, Cut::Both).await;
        }
    }

    for traced in &trace.steps {
        let (step, number) = (&traced.step, traced.index + 1);
        let key = step.action.key().unwrap_or("x");
        match &step.action {
            Action::Write { replica, value, client, .. } => {
                assert!(client.is_none(), "this replay plays blind writes only");
                for bucket in &trace.buckets {
                    cluster.put(*replica, bucket, key, value.clone(), Value::Null).await;
                }
            }
            &Action::Increment { replica, .. } => {
                for bucket in &trace.buckets {
                    let read = cluster.get(replica, bucket, key).await;
                    let largest = values(&read).iter().filter_map(Value::as_i64).max().unwrap_or(0);
                    cluster.put(replica, bucket, key, json!(largest + 1), read.context).await;
                }
            }
            &Action::Replicate { from, to } => {
                // One way only: `from` sends, `to` receives.
                cluster.link(from, to, Cut::In).await;
                cluster.link(to, from, Cut::Out).await;
                let deadline = Instant::now() + DELIVERY_TIMEOUT;
                for bucket in &trace.buckets {
                    let want = shown(&traced.state[bucket][&to]);
                    loop {
                        let got = shown(&cluster.get(to, bucket, key).await.siblings);
                        if got == want {
                            break;
                        }
                        assert!(
                            Instant::now() < deadline,
                            "step {number}: {bucket} on {to} holds {got:?}, not {want:?}"
                        );
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                cluster.partition(from, to, Cut::Both).await;
            }
            other => panic!("step {number}: this replay does not play {other:?}"),
        }
        // Only writes are stamped, so only they need the time to be short.
        let stamped = matches!(step.action, Action::Write { .. } | Action::Increment { .. });
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        assert!(
            !stamped || elapsed_ms < largest_offset * STRETCH,
            "step {number}: the replay took {elapsed_ms:.0} ms, more than the stretched clock offset of \
             {} ms, so its stamps no longer tell the story",
            largest_offset * STRETCH
        );
        // After every step, every replica holds what the transcript says.
        for bucket in &trace.buckets {
            for (&replica, siblings) in &traced.state[bucket] {
                let got = shown(&cluster.get(replica, bucket, key).await.siblings);
                assert_eq!(got, shown(siblings), "step {number}: {bucket} on replica {replica}");
            }
        }
    }

    // The story's ending, said plainly: under wall-clock last-write-wins
    // every replica kept x = 1 and the acknowledged increment is gone; the
    // other strategies kept it.
    for &replica in &ids {
        let x = async |bucket: &str| values(&cluster.get(replica, bucket, "x").await);
        assert_eq!(x("lww-wall").await, vec![json!(1)], "replica {replica}: the increment was dropped");
        assert_eq!(x("lww-hlc").await, vec![json!(2)], "replica {replica}");
        assert_eq!(x("vv").await, vec![json!(2)], "replica {replica}");
    }
}
