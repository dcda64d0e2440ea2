//! The oracle on hand-built histories, each a small story.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::history::{FinalSibling, Outcome, PointRecord};

/// Builds one trial's history of key `x`, in true-time milliseconds.
struct Story {
    bucket: &'static str,
    records: Vec<Record>,
}

impl Story {
    fn new(bucket: &'static str) -> Self {
        let mut params = serde_json::Map::new();
        params.insert("parameter".into(), json!("skew_ms"));
        params.insert("skew_ms".into(), json!(100));
        Self {
            bucket,
            records: vec![Record::Point(PointRecord {
                point: 0,
                params,
                kinds: Default::default(),
                stamps: Default::default(),
            })],
        }
    }

    /// A client on `replica` read `read`, wrote `item`, between `from` and `to` ms.
    #[allow(clippy::too_many_arguments)]
    fn write(
        mut self,
        write_id: &str,
        replica: ReplicaId,
        item: u64,
        read: &[u64],
        stamp: Value,
        (from, to): (i64, i64),
        outcome: Outcome,
    ) -> Self {
        let mut value: Vec<u64> = read.to_vec();
        value.push(item);
        value.sort_unstable();
        let acked = outcome == Outcome::Ok;
        self.records.push(Record::Write(WriteRecord {
            point: 0,
            trial: 0,
            bucket: self.bucket.into(),
            key: "x".into(),
            replica,
            item,
            value,
            read_siblings: usize::from(!read.is_empty()),
            stamp: acked.then(|| stamp.into()),
            write_id: acked.then(|| write_id.parse().expect("a write id")),
            metadata_bytes: None,
            invoke_ns: from * 1_000_000,
            complete_ns: to * 1_000_000,
            outcome,
        }));
        self
    }

    fn acked(
        self,
        write_id: &str,
        replica: ReplicaId,
        item: u64,
        read: &[u64],
        stamp: Value,
        at: (i64, i64),
    ) -> Self {
        self.write(write_id, replica, item, read, stamp, at, Outcome::Ok)
    }

    /// Every replica of `replicas` ends with these siblings (write id, value, stamp).
    fn all_end_with(mut self, replicas: &[ReplicaId], siblings: &[(&str, &[u64], Value)]) -> Self {
        for &replica in replicas {
            self = self.ends_with(replica, siblings);
        }
        self
    }

    fn ends_with(mut self, replica: ReplicaId, siblings: &[(&str, &[u64], Value)]) -> Self {
        self.records.push(Record::Final(FinalRecord {
            point: 0,
            trial: 0,
            bucket: self.bucket.into(),
            key: "x".into(),
            replica,
            siblings: siblings
                .iter()
                .map(|(write_id, value, stamp)| FinalSibling {
                    value: value.to_vec(),
                    stamp: stamp.clone().into(),
                    write_id: write_id.parse().expect("write ids"),
                })
                .collect(),
        }));
        self
    }

    fn analyze(&self) -> Analysis {
        analyze(&self.records)
    }
}

fn row(analysis: &Analysis) -> &SummaryRow {
    assert_eq!(analysis.rows.len(), 1, "{:?}", analysis.rows);
    &analysis.rows[0]
}

// DDIA Figure 8-3 itself is told once, in experiments/scenarios/figure-8-3.toml;
// its golden transcript holds the oracle's verdict on it (dashboard::scenario).

#[test]
fn an_increment_that_loses_to_the_write_it_read_is_a_causality_violation() {
    // Replica 1's clock is ahead: its write at true time 1000 ms is stamped
    // 1100. A client reads it on replica 3 and writes [1, 2] at true time
    // 1050, stamped 1050 by replica 3's slower clock.
    let analysis = Story::new("lww-wall")
        .acked("1:1", 1, 1, &[], json!([1_100, 1]), (1_000, 1_001))
        .acked("3:1", 3, 2, &[1], json!([1_050, 3]), (1_050, 1_051))
        .all_end_with(&[1, 2, 3], &[("1:1", &[1], json!([1_100, 1]))])
        .analyze();
    let row = row(&analysis);
    assert_eq!((row.acked, row.dropped, row.dropped_causality), (2, 1, 1));
    assert_eq!((row.parameter.as_str(), row.value), ("skew_ms", 100.0));
    let drop = &analysis.drops[0];
    assert_eq!(drop.victim.write_id.as_ref().map(ToString::to_string).as_deref(), Some("3:1"));
    assert_eq!(drop.cause, Cause::Causality);
    assert!(drop.killers[0].read_by_victim);
    assert!(drop.rule().contains("Figure 8-3"), "{}", drop.rule());
    assert!(analysis.lww_final_mismatches.is_empty());
}

#[test]
fn two_overlapping_writes_are_a_concurrent_overwrite() {
    // Neither read the other and their true times overlap.
    let analysis = Story::new("lww-wall")
        .acked("1:1", 1, 1, &[], json!([1_010, 1]), (1_000, 1_020))
        .acked("2:1", 2, 2, &[], json!([1_005, 2]), (1_002, 1_015))
        .all_end_with(&[1, 2], &[("1:1", &[1], json!([1_010, 1]))])
        .analyze();
    let row = row(&analysis);
    assert_eq!((row.dropped, row.dropped_concurrent), (1, 1));
    assert!(analysis.drops[0].rule().contains("overlapped"));
}

#[test]
fn losing_to_a_write_finished_before_it_began_is_real_time() {
    // K finished at 1001; W began at 1200 on a replica that had not heard of
    // K, so W did not read it, and W's lagging clock stamped it lower.
    let analysis = Story::new("lww-wall")
        .acked("1:1", 1, 1, &[], json!([1_500, 1]), (1_000, 1_001))
        .acked("3:1", 3, 2, &[], json!([1_200, 3]), (1_200, 1_201))
        .all_end_with(&[1, 3], &[("1:1", &[1], json!([1_500, 1]))])
        .analyze();
    let row = row(&analysis);
    assert_eq!((row.dropped, row.dropped_realtime, row.dropped_causality), (1, 1, 0));
    assert!(analysis.drops[0].killers[0].finished_before_victim);
}

#[test]
fn a_killer_that_only_carried_an_earlier_win_does_not_make_a_drop_concurrent() {
    // K (1:1) beat W (3:1) by clock. Later 1:2 read K, never saw W (K hid
    // it), and was written after W finished. The root killer is K alone.
    let analysis = Story::new("lww-wall")
        .acked("1:1", 1, 1, &[], json!([1_900, 1]), (1_000, 1_001))
        .acked("3:1", 3, 2, &[1], json!([1_050, 3]), (1_050, 1_051))
        .acked("1:2", 1, 3, &[1], json!([2_000, 1]), (1_100, 1_101))
        .all_end_with(&[1, 3], &[("1:2", &[1, 3], json!([2_000, 1]))])
        .analyze();
    let drop = &analysis.drops[0];
    assert_eq!((drop.cause, drop.killer_count, drop.root_killer_count), (Cause::Causality, 2, 1));
    assert_eq!(drop.killers[0].write.write_id.as_ref().map(ToString::to_string).as_deref(), Some("1:1"));
}

#[test]
fn version_vector_siblings_are_kept_not_dropped() {
    let analysis = Story::new("vv")
        .acked("1:1", 1, 1, &[], json!([1, 1]), (1_000, 1_020))
        .acked("2:1", 2, 2, &[], json!([2, 1]), (1_002, 1_015))
        .all_end_with(&[1, 2], &[("1:1", &[1], json!([1, 1])), ("2:1", &[2], json!([2, 1]))])
        .analyze();
    let row = row(&analysis);
    assert_eq!((row.dropped, row.max_siblings, row.diverged_keys), (0, 2, 0));
}

#[test]
fn a_version_vector_drop_is_caught_as_a_bug() {
    let analysis = Story::new("vv")
        .acked("1:1", 1, 1, &[], json!([1, 1]), (1_000, 1_020))
        .acked("2:1", 2, 2, &[], json!([2, 1]), (1_002, 1_015))
        .all_end_with(&[1, 2], &[("1:1", &[1], json!([1, 1]))])
        .analyze();
    assert_eq!(row(&analysis).dropped, 1);
    assert!(analysis.drops[0].rule().contains("bug"), "{}", analysis.drops[0].rule());
}

#[test]
fn unanswered_writes_are_not_drops_but_are_seen_when_applied() {
    let analysis = Story::new("lww-wall")
        .acked("1:1", 1, 1, &[], json!([1_000, 1]), (1_000, 1_001))
        .write("2:1", 2, 2, &[1], Value::Null, (1_100, 6_100), Outcome::Unknown)
        .write("3:1", 3, 3, &[1], Value::Null, (1_200, 1_201), Outcome::Fail)
        .all_end_with(&[1, 2, 3], &[("2:1", &[1, 2], json!([1_100, 2]))])
        .analyze();
    let row = row(&analysis);
    assert_eq!((row.writes, row.acked, row.dropped, row.unacked_applied), (3, 1, 0, 1));
    assert!(analysis.lww_final_mismatches.is_empty(), "the applied unanswered write is the max");
}

#[test]
fn replicas_agree_when_they_hold_the_same_writes_in_any_order() {
    // Each replica's final siblings, by write id.
    let diverged = |finals: &[&[&str]]| {
        let mut story = Story::new("vv").acked("1:1", 1, 1, &[], json!([1, 1]), (1_000, 1_001)).acked(
            "2:1",
            2,
            2,
            &[],
            json!([2, 1]),
            (1_000, 1_001),
        );
        for (replica, ids) in finals.iter().enumerate() {
            let siblings: Vec<(&str, &[u64], Value)> = ids
                .iter()
                .map(|&id| {
                    if id == "1:1" {
                        (id, &[1u64][..], json!([1, 1]))
                    } else {
                        (id, &[2u64][..], json!([2, 1]))
                    }
                })
                .collect();
            story = story.ends_with(replica as ReplicaId + 1, &siblings);
        }
        row(&story.analyze()).diverged_keys
    };
    assert_eq!(diverged(&[&["1:1"], &["1:1"], &["1:1"]]), 0);
    assert_eq!(diverged(&[&["1:1"], &["1:1"], &[]]), 1, "one replica holds nothing");
    assert_eq!(diverged(&[&["1:1"], &["1:1", "2:1"]]), 1, "one holds more");
    assert_eq!(diverged(&[&["1:1", "2:1"], &["2:1", "1:1"]]), 0, "the order is no matter");
    assert_eq!(diverged(&[&["1:1"], &["1:1", "1:1"]]), 0, "a repeat is the same write");
    assert_eq!(diverged(&[&[], &[]]), 0);
    assert_eq!(diverged(&[&[], &["2:1"]]), 1);
}

#[test]
fn replicas_that_disagree_are_counted_as_diverged() {
    let analysis = Story::new("lww-wall")
        .acked("1:1", 1, 1, &[], json!([1_000, 1]), (1_000, 1_001))
        .acked("2:1", 2, 2, &[1], json!([1_100, 2]), (1_100, 1_101))
        .ends_with(1, &[("2:1", &[1, 2], json!([1_100, 2]))])
        .ends_with(2, &[("1:1", &[1], json!([1_000, 1]))])
        .analyze();
    assert_eq!(row(&analysis).diverged_keys, 1);
    assert_eq!(row(&analysis).final_not_max, 1, "replica 2 did not end on the max");
}

#[test]
fn a_final_value_other_than_the_highest_stamp_is_reported() {
    let analysis = Story::new("lww-hlc")
        .acked("1:1", 1, 1, &[], json!([1_000, 0, 1]), (1_000, 1_001))
        .acked("2:1", 2, 2, &[], json!([1_100, 0, 2]), (1_100, 1_101))
        .all_end_with(&[1, 2], &[("1:1", &[1], json!([1_000, 0, 1]))])
        .analyze();
    assert_eq!(row(&analysis).final_not_max, 1);
    assert_eq!(analysis.lww_final_mismatches[0].max_write_id.to_string(), "2:1");
}

#[test]
fn summaries_average_over_trials_with_a_standard_deviation() {
    let rows = [(0, 10, 100), (1, 30, 100)].map(|(trial, dropped, acked)| SummaryRow {
        trial,
        strategy: "lww-wall".into(),
        dropped,
        acked,
        ..Default::default()
    });
    let summary = &summarize(&rows)[0];
    assert_eq!((summary.trials, summary.acked, summary.dropped), (2, 200, 40));
    assert!((summary.dropped_percent_mean - 20.0).abs() < 1e-9);
    assert!((summary.dropped_percent_deviation - 200.0_f64.sqrt()).abs() < 1e-9);
    // Two trials: t = 12.706 at one degree of freedom; sd sqrt(200), over sqrt(2): 10.
    assert!((summary.dropped_percent_interval - 127.06).abs() < 1e-6, "{}", summary.dropped_percent_interval);
    let one = &summarize(&rows[..1])[0];
    assert_eq!(one.dropped_percent_interval, 0.0, "one trial: no interval");
    assert_eq!(crate::analysis::student_t_975(1000), 1.96);
    assert!((crate::analysis::student_t_975(9) - 2.262).abs() < 1e-9);
}

#[test]
fn stamps_compare_as_number_arrays() {
    assert_eq!(compare_stamps(&json!([9, 1]), &json!([10, 0])), Ordering::Less);
    assert_eq!(compare_stamps(&json!([10, 0, 2]), &json!([10, 0, 1])), Ordering::Greater);
    let big = u64::MAX;
    assert_eq!(compare_stamps(&json!([big]), &json!([big - 1])), Ordering::Greater);
}

#[test]
fn a_coarse_clock_tie_is_broken_by_the_later_write_in_the_replicas_log() {
    // Replica 1's clock ticks every 100 ms: two writes 30 ms apart get the
    // same stamp. The strategy keeps 1:10, the later in its log, and the
    // oracle names it as the killer (not "dropped without a killer"). It had
    // not read 1:9, so perfect clocks would drop 1:9 too: concurrent.
    let analysis = Story::new("lww-wall")
        .acked("1:9", 1, 1, &[], json!([1_000, 1]), (1_000, 1_001))
        .acked("1:10", 1, 2, &[], json!([1_000, 1]), (1_030, 1_031))
        .all_end_with(&[1, 2], &[("1:10", &[2], json!([1_000, 1]))])
        .analyze();
    let row = row(&analysis);
    assert_eq!((row.dropped, row.dropped_concurrent, row.dropped_without_killer), (1, 1, 0));
    assert_eq!(analysis.drops[0].victim.write_id.as_ref().map(ToString::to_string).as_deref(), Some("1:9"));
    assert_eq!(
        analysis.drops[0].killers[0].write.write_id.as_ref().map(ToString::to_string).as_deref(),
        Some("1:10")
    );
    assert!(analysis.lww_final_mismatches.is_empty(), "1:10 is the maximum, not 1:9 (as text would sort)");
}

/// A little last-write-wins world: writes on random replicas with random
/// stamps, each reading some earlier items; the final value is the max.
fn random_history() -> impl Strategy<Value = Vec<Record>> {
    proptest::collection::vec((1u32..4, 0i64..50, 0u8..4, 1i64..20, any::<bool>()), 1..25).prop_map(|ops| {
        let mut story = Story::new("lww-wall");
        let mut written: Vec<(u64, Vec<u64>, Value, String)> = Vec::new();
        let mut now = 0;
        for (index, (replica, stamp, reads, length, acked)) in ops.into_iter().enumerate() {
            let item = index as u64 + 1;
            let read: Vec<u64> = written.iter().rev().take(reads as usize).map(|(item, ..)| *item).collect();
            let stamp = json!([stamp, replica]);
            let write_id = format!("{replica}:{item}");
            let outcome = if acked { Outcome::Ok } else { Outcome::Unknown };
            story = story.write(&write_id, replica, item, &read, stamp.clone(), (now, now + length), outcome);
            let mut value = read.clone();
            value.push(item);
            value.sort_unstable();
            written.push((item, value, stamp, write_id));
            now += length / 2;
        }
        let (_, value, stamp, write_id) = written
            .iter()
            .max_by(|a, b| compare_stamps(&a.2, &b.2).then_with(|| a.3.cmp(&b.3)))
            .cloned()
            .unwrap_or_default();
        story.all_end_with(&[1, 2, 3], &[(write_id.as_str(), value.as_slice(), stamp)]).records
    })
}

proptest! {
    #[test]
    fn causes_always_sum_to_the_drops_and_drops_are_acked_minus_kept(records in random_history()) {
        let analysis = analyze(&records);
        let row = &analysis.rows[0];
        prop_assert_eq!(row.dropped, row.dropped_causality + row.dropped_realtime + row.dropped_concurrent);
        let kept: std::collections::HashSet<u64> = records.iter().filter_map(|record| match record {
            Record::Final(last) => Some(last.siblings.iter().flat_map(|s| s.value.clone()).collect::<Vec<_>>()),
            _ => None,
        }).flatten().collect();
        let acked_lost = records.iter().filter(|record| matches!(record,
            Record::Write(write) if write.outcome == Outcome::Ok && !kept.contains(&write.item))).count();
        prop_assert_eq!(row.dropped, acked_lost);
        prop_assert_eq!(analysis.drops.len(), row.dropped);
    }

    /// Every drop's killers, root killers and cause are what the
    /// definition (docs/design.md, section 9) says, worked out here by brute
    /// force over every pair of writes, with none of the oracle's sorting.
    #[test]
    fn every_drops_cause_is_the_definitions(records in random_history()) {
        let analysis = analyze(&records);
        let writes: Vec<&WriteRecord> = records.iter().filter_map(|record| match record {
            Record::Write(write) => Some(write),
            _ => None,
        }).collect();
        // Candidates: acknowledged writes with a stamp, and final siblings
        // no acknowledged write accounts for (an unanswered write, known by its value).
        struct Candidate { id: WriteIds, stamp: Value, value: Vec<u64>, item: Option<u64>, completed: Option<i64> }
        let mut candidates: Vec<Candidate> = writes.iter()
            .filter(|write| write.outcome == Outcome::Ok)
            .map(|write| Candidate {
                id: write.write_id.expect("acknowledged").into(),
                stamp: write.stamp.as_ref().map_or(Value::Null, Stamp::to_value),
                value: write.value.clone(),
                item: Some(write.item),
                completed: Some(write.complete_ns),
            })
            .collect();
        for record in &records {
            let Record::Final(last) = record else { continue };
            for sibling in &last.siblings {
                if candidates.iter().all(|candidate| candidate.id != sibling.write_id) {
                    let unanswered = writes.iter().find(|write| write.outcome != Outcome::Ok && write.value == sibling.value);
                    candidates.push(Candidate {
                        id: sibling.write_id.clone(),
                        stamp: sibling.stamp.to_value(),
                        value: sibling.value.clone(),
                        item: unanswered.map(|write| write.item),
                        completed: None,
                    });
                }
            }
        }
        for drop in &analysis.drops {
            let victim = writes.iter().find(|write| write.write_id.map(WriteIds::from) == drop.victim.write_id && write.outcome == Outcome::Ok).unwrap();
            let victim_key = (&victim.stamp.as_ref().unwrap().to_value(), victim.write_id.unwrap());
            let killers: Vec<&Candidate> = candidates.iter()
                .filter(|candidate| compare_writes((&candidate.stamp, candidate.id.first()), (victim_key.0, victim_key.1)) == Ordering::Greater)
                .filter(|candidate| !candidate.value.contains(&victim.item))
                .collect();
            let roots: Vec<&&Candidate> = killers.iter()
                .filter(|killer| !killers.iter().any(|other| other.id != killer.id
                    && other.item.is_some_and(|item| Some(item) != killer.item && killer.value.contains(&item))))
                .collect();
            let read = |killer: &Candidate| killer.item.is_some_and(|item| victim.value.contains(&item));
            let before = |killer: &Candidate| read(killer) || killer.completed.is_some_and(|at| at < victim.invoke_ns);
            let cause = if roots.iter().all(|root| before(root)) {
                if roots.iter().any(|root| read(root)) { Cause::Causality } else { Cause::Realtime }
            } else {
                Cause::Concurrent
            };
            prop_assert_eq!(drop.killer_count, killers.len(), "killers of {:?}", drop.victim.write_id);
            prop_assert_eq!(drop.root_killer_count, roots.len(), "root killers of {:?}", drop.victim.write_id);
            prop_assert_eq!(drop.cause, cause, "cause of {:?}", drop.victim.write_id);
        }
    }
}

impl Story {
    /// Declares the bucket's kind in the point record, as the runner does.
    fn declared(mut self, kind: crate::strategy::Kind) -> Self {
        if let Some(Record::Point(point)) = self.records.first_mut() {
            point.kinds.insert(self.bucket.to_string(), kind);
        }
        self
    }
}

#[test]
fn buckets_are_judged_by_their_declared_kind_never_by_name() {
    use crate::strategy::Kind;
    // The same lost increment, under a name that says nothing...
    let figure = |bucket: &'static str| {
        Story::new(bucket)
            .acked("1:1", 1, 1, &[], json!([1_100, 1]), (1_000, 1_001))
            .acked("3:1", 3, 2, &[1], json!([1_050, 3]), (1_050, 1_051))
            .all_end_with(&[1, 2, 3], &[("1:1", &[1], json!([1_100, 1]))])
    };
    let declared_lww = figure("my-rule").declared(Kind::LastWriteWins).analyze();
    assert_eq!(row(&declared_lww).dropped_causality, 1, "declared last-write-wins: a causality violation");
    assert!(declared_lww.drops[0].rule().starts_with("Last write wins kept write"));
    // ...and under a name that lies: an "lww" bucket declared as keeping
    // siblings is held to that promise, so its drop is a bug.
    let declared_siblings = figure("lww-but-not").declared(Kind::Siblings).analyze();
    assert_eq!(row(&declared_siblings).dropped, 1);
    assert!(
        declared_siblings.drops[0].rule().contains("should never do this"),
        "{}",
        declared_siblings.drops[0].rule()
    );
    assert_eq!(declared_siblings.kinds["lww-but-not"], Kind::Siblings);
    // An old history, with no kinds, falls back to the strategy of that name.
    assert_eq!(figure("lww-wall").analyze().kinds["lww-wall"], Kind::LastWriteWins);
    assert_eq!(figure("set-union").analyze().kinds["set-union"], Kind::Merge);
}

#[test]
fn costs_come_from_the_history_alone() {
    let mut story = Story::new("vv")
        .acked("1:1", 1, 1, &[], json!([1, 1]), (1_000, 1_002))
        .acked("2:1", 2, 2, &[], json!([2, 1]), (1_000, 1_010))
        .write("3:1", 3, 3, &[], json!(null), (1_000, 1_004), Outcome::Fail)
        .all_end_with(&[1, 2, 3], &[("1:1", &[1], json!([1, 1])), ("2:1", &[2], json!([2, 1]))]);
    for (record, bytes) in story
        .records
        .iter_mut()
        .filter_map(|record| match record {
            Record::Write(write) if write.outcome == Outcome::Ok => Some(write),
            _ => None,
        })
        .zip([20, 40])
    {
        record.metadata_bytes = Some(bytes);
    }
    let analysis = story.analyze();
    let row = row(&analysis);
    assert_eq!((row.acked, row.failed), (2, 1));
    assert_eq!((row.latency_p50_ms, row.latency_p99_ms), (2.0, 10.0));
    assert_eq!(row.metadata_bytes, 30.0);
}

proptest! {
    #[test]
    fn a_quantile_is_the_value_a_sort_puts_at_its_nearest_rank(
        values in prop::collection::vec(-1e3f64..1e3, 0..60),
        q in prop_oneof![Just(0.0), Just(0.5), Just(0.99), Just(1.0), 0.0f64..1.0],
    ) {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let expected = if sorted.is_empty() {
            0.0
        } else {
            sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
        };
        prop_assert_eq!(quantile(&mut values.clone(), q), expected);
    }
}
