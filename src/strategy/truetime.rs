//! `truetime`: last write wins on an interval clock, with commit wait.
//!
//! Spanner (Corbett et al., "Spanner: Google's Globally-Distributed
//! Database", OSDI 2012) does not pretend its clocks agree. TrueTime reads
//! as an interval `[now - epsilon, now + epsilon]` that is guaranteed to
//! contain true time, with epsilon typically 1 to 7 ms there (GPS and atomic
//! clocks in every data centre). A write is stamped with the interval's
//! latest bound, `now + epsilon`, and is acknowledged only once the
//! interval's *earliest* bound has passed that stamp: the replica waits
//! about `2 * epsilon` before it answers (*commit wait*). By then the stamp
//! is certainly in the past on every clock, so any write that truly comes
//! later, because its client read this one or began after it was
//! acknowledged, is stamped above it, whatever replica takes it (DDIA
//! chapter 8, "Synchronized clocks for global snapshots").
//!
//! The guarantee rests on the bound. Here `epsilon_ms` is a parameter (the
//! spec's `[parameters.truetime]`), not a measurement, so an experiment can
//! set it below the replicas' true offsets: the interval then lies, and
//! clock-caused drops come back. Set it above them and they are gone, at a
//! price every write pays: `2 * epsilon` of latency. Concurrent writes are
//! still last-write-wins: one of two writes that never saw each other is
//! dropped, as under every LWW strategy.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lww::LwwStamps;
use super::{Clocks, ParameterError, StampKind};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;

/// The clock uncertainty assumed when a spec sets none, in ms (Spanner's
/// typical upper end).
pub const DEFAULT_EPSILON_MS: f64 = 7.0;
/// The largest uncertainty accepted, in ms (a minute): commit wait holds
/// every write for twice this.
pub const MAX_EPSILON_MS: f64 = 60_000.0;

/// `[latest_ns, replica_id]`: the interval's latest bound when the write
/// was made, compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntervalStamp(pub Nanos, pub ReplicaId);

pub struct TrueTime {
    /// Half the width of the clock's interval, in ns.
    epsilon_ns: Nanos,
}

impl TrueTime {
    /// A TrueTime strategy assuming the clock is within `epsilon_ms` of true time.
    pub fn new(epsilon_ms: f64) -> Self {
        Self { epsilon_ns: (epsilon_ms * 1e6).round() as Nanos }
    }

    /// Builds it from `{"epsilon_ms": MS}` (or `{}` for the default).
    pub fn from_parameters(parameters: &serde_json::Map<String, Value>) -> Result<Self, ParameterError> {
        let mut epsilon_ms = DEFAULT_EPSILON_MS;
        for (name, value) in parameters {
            match name.as_str() {
                "epsilon_ms" => {
                    epsilon_ms =
                        value.as_f64().filter(|ms| (0.0..=MAX_EPSILON_MS).contains(ms)).ok_or_else(|| {
                            ParameterError::Invalid {
                                strategy: "truetime",
                                name: "epsilon_ms",
                                expected: "a number of ms from 0 to 60000",
                                value: value.clone(),
                            }
                        })?;
                }
                other => {
                    return Err(ParameterError::Unknown {
                        strategy: "truetime",
                        name: other.to_string(),
                        takes: "epsilon_ms",
                    });
                }
            }
        }
        Ok(Self::new(epsilon_ms))
    }
}

impl LwwStamps for TrueTime {
    type Stamp = IntervalStamp;
    const NAME: &'static str = "truetime";
    const STAMP_KIND: StampKind = StampKind::ClockInterval;

    /// The interval's latest bound, acknowledged once its earliest bound
    /// has passed it. What the client read is checked but not used: the
    /// wait, not the context, orders a write after the one its client read.
    fn make(&self, _read: Option<IntervalStamp>, clocks: &mut Clocks) -> (IntervalStamp, Option<Nanos>) {
        let latest = clocks.physical_now.saturating_add(self.epsilon_ns);
        // The earliest bound, now - epsilon, passes the stamp once the
        // clock reads latest + epsilon.
        (IntervalStamp(latest, clocks.replica), Some(latest.saturating_add(self.epsilon_ns)))
    }

    fn commit_waits(&self) -> bool {
        self.epsilon_ns > 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::hlc::Hlc;
    use crate::strategy::{KeyState, RawJson, Strategy, Write, parse_stamp};
    use proptest::prelude::{prop, prop_assert, prop_assert_eq, proptest};

    fn stamp(strategy: &TrueTime, replica: ReplicaId, physical_now: Nanos) -> (IntervalStamp, Nanos) {
        let mut hlc = Hlc::default();
        let mut clocks = Clocks { replica, physical_now, hlc: &mut hlc, lamport: &mut 0 };
        let stamped = strategy.stamp(&KeyState::default(), &Value::Null, &mut clocks).unwrap();
        (parse_stamp(&stamped.stamp).unwrap(), stamped.acknowledge_at.unwrap())
    }

    fn write(origin: ReplicaId, seq: u64, stamp: IntervalStamp) -> Arc<Write> {
        Arc::new(Write {
            origin,
            seq,
            bucket: "truetime".into(),
            key: "x".into(),
            value: RawJson::of(&seq),
            stamp: RawJson::of(&stamp),
            context: RawJson::null(),
            fence: None,
        })
    }

    #[test]
    fn parameters_are_checked() {
        let parameters = |value: Value| value.as_object().cloned().unwrap();
        assert_eq!(
            TrueTime::from_parameters(&parameters(serde_json::json!({}))).unwrap().epsilon_ns,
            7_000_000
        );
        let twenty = TrueTime::from_parameters(&parameters(serde_json::json!({"epsilon_ms": 20}))).unwrap();
        assert_eq!(twenty.epsilon_ns, 20_000_000);
        for bad in [
            serde_json::json!({"epsilon_ms": -1}),
            serde_json::json!({"epsilon_ms": "7"}),
            serde_json::json!({"epsilon": 7}),
        ] {
            assert!(TrueTime::from_parameters(&parameters(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_write_after_an_acknowledged_one_is_stamped_above_it_while_the_bound_holds() {
        // Replica 1 runs 4 ms ahead of true time, replica 3 4 ms behind;
        // epsilon 5 ms covers both.
        let strategy = TrueTime::new(5.0);
        let true_start = 1_000_000_000;
        let (first, acknowledged_at) = stamp(&strategy, 1, true_start + 4_000_000);
        // The acknowledgement leaves replica 1 when its clock reads
        // `acknowledged_at`, which is true time `acknowledged_at - 4 ms`.
        let true_ack = acknowledged_at - 4_000_000;
        let (second, _) = stamp(&strategy, 3, true_ack - 4_000_000);
        assert!(second > first, "{second:?} > {first:?}");
        // With epsilon 2 ms the bound lies and the later write loses.
        let tight = TrueTime::new(2.0);
        let (first, acknowledged_at) = stamp(&tight, 1, true_start + 4_000_000);
        let (second, _) = stamp(&tight, 3, acknowledged_at - 8_000_000);
        assert!(second < first, "{second:?} < {first:?}: the interval lied");
    }

    proptest! {
        /// Commit wait: a write is acknowledged no earlier than its stamp
        /// plus epsilon, by the replica's own clock.
        #[test]
        fn acknowledged_no_earlier_than_stamp_plus_epsilon(epsilon_ms in 0.0f64..1000.0, now in 0i64..i64::MAX / 4) {
            let strategy = TrueTime::new(epsilon_ms);
            let (stamp, acknowledge_at) = stamp(&strategy, 1, now);
            prop_assert!(acknowledge_at >= stamp.0 + strategy.epsilon_ns);
            prop_assert_eq!(acknowledge_at - now, 2 * strategy.epsilon_ns);
        }

        /// Any delivery order, with repeats, keeps the same write.
        #[test]
        fn the_greatest_stamp_wins_in_any_order(
            stamps in prop::collection::vec((0i64..20, 1u32..4), 1..12),
            order in prop::collection::vec(0usize..100, 1..30),
        ) {
            let writes: Vec<Arc<Write>> = stamps
                .iter()
                .enumerate()
                .map(|(seq, &(t, r))| write(r, seq as u64 + 1, IntervalStamp(t, r)))
                .collect();
            let mut forward = KeyState::default();
            for write in &writes {
                TrueTime::new(1.0).apply(&mut forward, write).unwrap();
            }
            let mut shuffled = KeyState::default();
            for &index in &order {
                TrueTime::new(1.0).apply(&mut shuffled, &writes[index % writes.len()]).unwrap();
            }
            for write in &writes {
                TrueTime::new(1.0).apply(&mut shuffled, write).unwrap();
            }
            prop_assert_eq!(forward, shuffled);
        }
    }
}
