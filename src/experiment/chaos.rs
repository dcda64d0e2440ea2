//! A random nemesis: faults drawn from a seeded schedule.
//!
//! The fault experiments each schedule one kind of fault at a chosen time,
//! which shows what that fault does but finds nothing nobody thought to
//! try. Jepsen's answer is a *nemesis* that mixes faults at random: a
//! partition, then a clock bump, then a pause, in whatever order and on
//! whatever node the dice say. A spec's `[chaos]` table asks for one:
//!
//! ```toml
//! [chaos]
//! every_ms = 400      # mean quiet time between two faults
//! longest_ms = 600    # the longest a fault lasts
//! kinds = ["step", "strobe", "cut", "partition", "link", "pause", "crash"]   # the default
//! # also: "wobble", "jitter", "leap"
//! ```
//!
//! Each fault's kind is dealt from a shuffled deck of the kinds asked for,
//! dealt anew once every kind has come up, so even a short run mixes many.
//! The schedule is drawn once per trial from the spec's seed and the
//! trial's place in the sweep ([`schedule`]), so the same seed gives the
//! same faults, in either engine, and a run that finds something can be
//! replayed exactly. The faults are ordinary [`FaultSpec`]s: they go through
//! the same timeline, and are logged as `fault` records like any other.
//! They come one after another, never overlapping (one fault's end before
//! the next one's start), so each is undone (healed, resumed, restarted)
//! before the next is applied; clock steps are never undone, as NTP's are
//! not, so they add up over a trial.
//!
//! In a lease run (`[lease]`), a pause or a clock step lands on a lease
//! worker as often as on a replica, each of the replicas and workers as
//! likely as the next: the nemesis then stops lease holders mid-round and
//! bends their clocks, as well as the storage's.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::faults::{
    CRASH_DOWN_TIME, CutDirection, FaultKind, FaultSpec, LinkFault, PartitionFault, PartitionShape, Split,
};
use crate::clock::dots::ReplicaId;
use crate::clock::update::LeapMode;
use crate::history::TrialPlan;
use crate::lease::WorkerId;

/// The default mean quiet time between faults, ms.
pub const DEFAULT_EVERY_MS: f64 = 400.0;
/// The default longest fault, ms.
pub const DEFAULT_LONGEST_MS: f64 = 600.0;
/// The shortest fault, as a share of the longest.
pub const SHORTEST_SHARE: f64 = 0.2;
/// Clock steps and strobes are between these sizes, ms, forward or back.
pub const STEP_MS: [f64; 2] = [50.0, 500.0];
/// A strobe flips the clock every this many ms.
pub const STROBE_PERIOD_MS: [f64; 2] = [20.0, 100.0];
/// Jitter bounds, ms either way.
pub const JITTER_MS: [f64; 2] = [1.0, 50.0];
/// A link fault delays each message by 1 ms up to this much, ms.
pub const LINK_DELAY_MS: [f64; 2] = [5.0, 100.0];
/// A link fault's largest loss, duplication and reordering probabilities.
pub const LINK_MOST_LOSS: f64 = 0.3;
pub const LINK_MOST_DUPLICATE: f64 = 0.5;
pub const LINK_MOST_REORDER: f64 = 0.5;
/// No fault starts in the last this many ms of a trial, so the last one
/// ends while the workload still runs.
pub const QUIET_END_MS: f64 = 200.0;
/// Mixed into the seed, so that the nemesis's dice differ from the workload's.
const SALT: u64 = 0x6e65_6d65_7369_7321;

/// `[chaos]`: how often faults come, how long they last, which kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosSpec {
    #[serde(default = "default_every_ms")]
    pub every_ms: f64,
    #[serde(default = "default_longest_ms")]
    pub longest_ms: f64,
    #[serde(default = "every_kind")]
    pub kinds: Vec<FaultKind>,
}

fn default_every_ms() -> f64 {
    DEFAULT_EVERY_MS
}
fn default_longest_ms() -> f64 {
    DEFAULT_LONGEST_MS
}
fn every_kind() -> Vec<FaultKind> {
    vec![
        FaultKind::Step,
        FaultKind::Strobe,
        FaultKind::Cut,
        FaultKind::Partition,
        FaultKind::Link,
        FaultKind::Pause,
        FaultKind::Crash,
    ]
}

impl ChaosSpec {
    /// What a spec cannot ask of a nemesis.
    pub fn check(&self, replicas: usize) -> Result<(), String> {
        if !(self.every_ms.is_finite() && self.every_ms > 0.0) {
            return Err(format!("every_ms is a positive number of ms, not {}", self.every_ms));
        }
        let shortest = CRASH_DOWN_TIME.as_secs_f64() * 1e3;
        if !(self.longest_ms.is_finite() && self.longest_ms >= shortest) {
            return Err(format!(
                "longest_ms is at least {shortest} ms (a crash's down time), not {}",
                self.longest_ms
            ));
        }
        if self.kinds.is_empty() {
            return Err("kinds names at least one fault kind".into());
        }
        if self.kinds.contains(&FaultKind::Partition) && replicas < 3 {
            return Err("a nemesis that partitions needs at least 3 replicas".into());
        }
        Ok(())
    }

    /// The faults of one trial of `duration_ms` on `replicas` replicas:
    /// the same for the same seed and plan, whichever engine runs it.
    ///
    /// With `workers` lease workers, each pause and clock step goes to one
    /// of the replicas and workers, drawn evenly (with none, the draws are
    /// exactly those of a run without leases).
    pub fn schedule(
        &self,
        seed: u64,
        plan: TrialPlan,
        replicas: usize,
        workers: u32,
        duration_ms: f64,
    ) -> Vec<FaultSpec> {
        let trial_seed = seed ^ SALT ^ ((plan.point as u64) << 32) ^ plan.trial as u64;
        let mut dice = StdRng::seed_from_u64(trial_seed);
        let mut faults = Vec::new();
        let quiet = |dice: &mut StdRng| dice.random_range(0.5 * self.every_ms..=1.5 * self.every_ms);
        let mut at = quiet(&mut dice);
        // Kinds are drawn as cards from a shuffled deck, dealt anew when it
        // runs out: a short run still sees many different faults.
        let mut deck: Vec<FaultKind> = Vec::new();
        while at < duration_ms - QUIET_END_MS {
            if deck.is_empty() {
                deck = self.kinds.clone();
                deck.shuffle(&mut dice);
            }
            let kind = deck.pop().unwrap_or(FaultKind::Step);
            let replica: ReplicaId = dice.random_range(1..=replicas as ReplicaId);
            let lasting = dice.random_range(SHORTEST_SHARE * self.longest_ms..=self.longest_ms);
            let at_ms = at.round();
            let signed = |dice: &mut StdRng| {
                let size = dice.random_range(STEP_MS[0]..=STEP_MS[1]).round();
                if dice.random_bool(0.5) { size } else { -size }
            };
            // A pause or a step may land on a lease worker instead.
            let worker = match kind {
                FaultKind::Pause | FaultKind::Step if workers > 0 => {
                    let target = dice.random_range(1..=replicas as u32 + workers);
                    (target > replicas as u32).then(|| WorkerId(target - replicas as u32))
                }
                _ => None,
            };
            let fault = match (kind, worker) {
                (FaultKind::Step, Some(worker)) => {
                    FaultSpec::StepWorker { at_ms, worker, step_ms: signed(&mut dice) }
                }
                (FaultKind::Pause, Some(worker)) => {
                    FaultSpec::PauseWorker { at_ms, worker, duration_ms: lasting.round() }
                }
                _ => self.replica_fault(kind, at_ms, replica, lasting, &mut dice),
            };
            let busy = match kind {
                FaultKind::Crash => CRASH_DOWN_TIME.as_secs_f64() * 1e3,
                _ => fault.duration_ms(),
            };
            faults.push(fault);
            at += busy + quiet(&mut dice);
        }
        faults
    }

    /// A fault of `kind` on replica `replica`, its sizes drawn with `dice`.
    fn replica_fault(
        &self,
        kind: FaultKind,
        at_ms: f64,
        replica: ReplicaId,
        lasting: f64,
        dice: &mut StdRng,
    ) -> FaultSpec {
        let signed = |dice: &mut StdRng| {
            let size = dice.random_range(STEP_MS[0]..=STEP_MS[1]).round();
            if dice.random_bool(0.5) { size } else { -size }
        };
        match kind {
            FaultKind::Step => FaultSpec::Step { at_ms, replica, step_ms: signed(dice) },
            FaultKind::Strobe => {
                let step_ms = signed(dice);
                let period_ms = dice.random_range(STROBE_PERIOD_MS[0]..=STROBE_PERIOD_MS[1]).round();
                FaultSpec::Strobe { at_ms, replica, step_ms, period_ms, duration_ms: lasting.round() }
            }
            FaultKind::Wobble => {
                let step_ms = dice.random_range(STEP_MS[0]..=STEP_MS[1]).round();
                let period_ms = (lasting / 2.0).round().max(1.0);
                FaultSpec::Wobble { at_ms, replica, step_ms, period_ms, duration_ms: lasting.round() }
            }
            FaultKind::Jitter => {
                let step_ms = dice.random_range(JITTER_MS[0]..=JITTER_MS[1]).round();
                FaultSpec::Jitter { at_ms, replica, step_ms, duration_ms: lasting.round() }
            }
            FaultKind::Leap => {
                let smeared = dice.random_bool(0.5);
                let leap = if smeared { LeapMode::Smear } else { LeapMode::Step };
                let duration_ms = if smeared { lasting.round() } else { 0.0 };
                FaultSpec::Leap { at_ms, replica, leap, duration_ms }
            }
            FaultKind::Cut => {
                let cut = [CutDirection::Both, CutDirection::In, CutDirection::Out][dice.random_range(0..3)];
                FaultSpec::Cut { at_ms, replica, cut, duration_ms: lasting.round() }
            }
            FaultKind::Partition => {
                let shapes = [
                    PartitionShape::Isolate,
                    PartitionShape::Halves,
                    PartitionShape::Ring,
                    PartitionShape::Bridge,
                ];
                let shape = shapes[dice.random_range(0..shapes.len())];
                let one_way = dice.random_bool(0.25);
                FaultSpec::Partition(PartitionFault {
                    at_ms,
                    split: Split::Shape { shape, replica },
                    one_way,
                    duration_ms: lasting.round(),
                })
            }
            FaultKind::Link => {
                let slowest = dice.random_range(LINK_DELAY_MS[0]..=LINK_DELAY_MS[1]).round();
                let link = LinkFault {
                    delay_ms: [1.0, slowest],
                    loss: dice.random_range(0.0..=LINK_MOST_LOSS),
                    duplicate: dice.random_range(0.0..=LINK_MOST_DUPLICATE),
                    reorder: dice.random_range(0.0..=LINK_MOST_REORDER),
                };
                FaultSpec::Link { at_ms, replica, link, duration_ms: lasting.round() }
            }
            FaultKind::Pause => FaultSpec::Pause { at_ms, replica, duration_ms: lasting.round() },
            FaultKind::Crash => FaultSpec::Crash { at_ms, replica, every_ms: 0.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chaos() -> ChaosSpec {
        ChaosSpec { every_ms: default_every_ms(), longest_ms: default_longest_ms(), kinds: every_kind() }
    }

    const PLAN: TrialPlan = TrialPlan { point: 0, trial: 0, value: 0.0 };

    #[test]
    fn one_seed_one_schedule_and_another_seed_another() {
        let schedule = chaos().schedule(7, PLAN, 5, 0, 20_000.0);
        assert_eq!(schedule, chaos().schedule(7, PLAN, 5, 0, 20_000.0));
        assert_ne!(schedule, chaos().schedule(8, PLAN, 5, 0, 20_000.0));
        assert_ne!(schedule, chaos().schedule(7, TrialPlan { trial: 1, ..PLAN }, 5, 0, 20_000.0));
    }

    #[test]
    fn faults_of_every_kind_come_one_after_another_and_are_valid() {
        let schedule = chaos().schedule(3, PLAN, 5, 0, 60_000.0);
        for kind in every_kind() {
            assert!(schedule.iter().any(|fault| fault.kind() == kind), "{kind:?} drawn in a minute");
        }
        for pair in schedule.windows(2) {
            let ends = pair[0].at_ms()
                + pair[0].duration_ms().max(if pair[0].kind() == FaultKind::Crash { 100.0 } else { 0.0 });
            assert!(ends < pair[1].at_ms(), "{:?} then {:?}", pair[0], pair[1]);
        }
        for fault in &schedule {
            fault.check(5).unwrap_or_else(|problem| panic!("{fault:?}: {problem}"));
            assert!(fault.is_active(), "{fault:?}");
            assert!(fault.at_ms() < 60_000.0 - QUIET_END_MS);
        }
    }

    #[test]
    fn in_a_lease_run_pauses_and_steps_land_on_workers_too_and_without_workers_nothing_changes() {
        let with = chaos().schedule(3, PLAN, 3, 2, 60_000.0);
        let on_workers: Vec<&FaultSpec> = with.iter().filter(|fault| fault.worker().is_some()).collect();
        assert!(on_workers.iter().any(|fault| matches!(fault, FaultSpec::PauseWorker { .. })), "{with:?}");
        assert!(on_workers.iter().any(|fault| matches!(fault, FaultSpec::StepWorker { .. })), "{with:?}");
        assert!(
            on_workers.iter().all(|fault| fault.worker().is_some_and(|worker| (1..=2).contains(&worker.0))),
            "only the workers there are: {on_workers:?}"
        );
        // Other kinds stay on replicas.
        assert!(with.iter().any(|fault| matches!(fault, FaultSpec::Pause { .. } | FaultSpec::Step { .. })));
        assert_eq!(
            chaos().schedule(3, PLAN, 3, 0, 60_000.0).iter().filter(|f| f.worker().is_some()).count(),
            0
        );
    }

    #[test]
    fn a_nemesis_is_checked() {
        assert!(chaos().check(5).is_ok());
        assert!(ChaosSpec { kinds: vec![], ..chaos() }.check(5).is_err());
        assert!(ChaosSpec { every_ms: 0.0, ..chaos() }.check(5).is_err());
        assert!(ChaosSpec { longest_ms: 10.0, ..chaos() }.check(5).is_err());
        assert!(chaos().check(2).unwrap_err().contains("3 replicas"));
    }
}
