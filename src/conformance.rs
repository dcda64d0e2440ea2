//! `clocklab strategy check`: does a strategy keep the promises replicas
//! need to converge?
//!
//! Replicas converge only if a strategy's `apply` gives the same state
//! whatever order writes arrive in and however often (idempotent and
//! commutative: the conditions on a state-based CRDT's merge in Shapiro et
//! al., 2011, and what DDIA chapter 5 asks of any conflict resolution). Each
//! kind adds its own promise: a last-write-wins strategy must order its
//! stamps totally (of any two writes, one wins, the same one everywhere, and
//! no three go round in a circle); a siblings or merge strategy must never
//! lose an acknowledged write.
//!
//! The check tests these the way property-testing tools do. Each case makes
//! a small random history on real replica cores running the strategy (a few
//! replicas, clocks a little apart, read-modify-writes of the lab's own
//! workload: a set of items read, plus one new item), delivering some
//! writes between others so that some writes read others and some are
//! concurrent. Then it replays the case's writes through the strategy's
//! `apply` in two random orders, with repeats, and compares. A violation is
//! shrunk, as QuickCheck and proptest shrink failures: writes and repeats are
//! removed for as long as the violation stays, and what is left is printed
//! as the counterexample: the writes, the two orders, and what each gave.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{ManualTrueTime, PhysicalClock};
use crate::clock::update::ClockUpdate;
use crate::replica::core::ReplicaCore;
use crate::strategy::plugin::Lineup;
use crate::strategy::{KeyState, Kind, RawJson, Strategy, StrategyError, Write};

/// What to check, and how hard.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Random histories to try.
    pub cases: usize,
    /// Seeds the histories; printed, so a failure can be replayed.
    pub seed: u64,
    /// Replicas per history.
    pub replicas: usize,
    /// Writes per history, at most.
    pub max_writes: usize,
    /// How far apart the replicas' clocks are, at most, in ms.
    pub max_skew_ms: f64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self { cases: DEFAULT_CASES, seed: 1, replicas: 3, max_writes: 8, max_skew_ms: 20.0 }
    }
}

/// Histories tried by default: enough to find an order-dependent rule in
/// its first few cases, few enough to run in seconds through a plugin.
pub const DEFAULT_CASES: usize = 200;

/// The true time every history starts at, ns (any will do).
const START_NS: Nanos = 1_800_000_000_000_000_000;

/// Why the check could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Plugin(#[from] crate::strategy::plugin::PluginFailure),
    #[error("the strategy failed while the check ran: {0}")]
    Strategy(StrategyError),
    #[error("a replica refused the check's history: {0}")]
    Core(crate::replica::core::CoreError),
    #[error("the lineup holds no strategy to check")]
    Empty,
}

/// The promise a counterexample breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promise {
    /// The same writes, in two orders (with repeats), gave two states.
    Converges,
    /// A last-write-wins strategy kept more or fewer than one write, or its
    /// winners go round in a circle.
    TotalOrder,
    /// A siblings or merge strategy lost an item a write had written.
    KeepsWrites,
}

impl Promise {
    fn describe(&self) -> &'static str {
        match self {
            Self::Converges => {
                "applying the same writes in two orders (repeats allowed) gives two different states, \
                 so replicas that receive them in these orders never converge"
            }
            Self::TotalOrder => {
                "a last-write-wins strategy must keep exactly one write, chosen by a total order of stamps"
            }
            Self::KeepsWrites => {
                "a siblings or merge strategy lost an item an acknowledged write had written"
            }
        }
    }
}

/// A broken promise, shrunk: the writes and the orders that show it.
#[derive(Debug, Clone)]
pub struct Counterexample {
    pub promise: Promise,
    /// The writes, all to one key.
    pub writes: Vec<Arc<Write>>,
    /// Deliveries, as indexes into `writes`, and what each gave.
    pub orders: Vec<(Vec<usize>, String)>,
    /// The case that found it.
    pub case: usize,
}

/// What the check found.
#[derive(Debug, Clone)]
pub struct Report {
    pub strategy: String,
    pub kind: Kind,
    pub cases: usize,
    pub seed: u64,
    /// Writes made over every case.
    pub writes: usize,
    pub counterexample: Option<Counterexample>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.counterexample.is_none()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = serde_json::to_value(self.kind).ok().and_then(|kind| kind.as_str().map(str::to_string));
        let kind = kind.unwrap_or_default();
        let Some(example) = &self.counterexample else {
            writeln!(
                formatter,
                "{} ({kind}): passed {} random histories ({} writes, seed {}): the same writes in any order, \
                 with repeats, give the same state{}.",
                self.strategy,
                self.cases,
                self.writes,
                self.seed,
                match self.kind {
                    Kind::LastWriteWins => "; exactly one write survives, by a total order of stamps",
                    Kind::Siblings | Kind::Merge => "; no written item is ever lost",
                }
            )?;
            return Ok(());
        };
        writeln!(
            formatter,
            "{} ({kind}): FAILED in case {} (seed {}).",
            self.strategy, example.case, self.seed
        )?;
        writeln!(formatter, "Broken promise: {}.", example.promise.describe())?;
        writeln!(formatter, "Counterexample, shrunk to {} write(s) to one key:", example.writes.len())?;
        for write in &example.writes {
            writeln!(
                formatter,
                "  {:<6} value {}  stamp {}  context {}",
                write.write_id(),
                write.value,
                write.stamp,
                write.context
            )?;
        }
        for (order, outcome) in &example.orders {
            let names: Vec<String> =
                order.iter().map(|&index| example.writes[index].write_id().to_string()).collect();
            writeln!(formatter, "  applied in the order {}: {outcome}", names.join(", "))?;
        }
        write!(formatter, "Replay it with --seed {}.", self.seed)
    }
}

/// Checks the strategy `lineup` holds (its one plugin, or else its first
/// built-in) over `options.cases` random histories.
pub fn check(lineup: &Lineup, options: &CheckOptions) -> Result<Report, CheckError> {
    let replicas: Vec<ReplicaId> = (1..=options.replicas.max(2) as ReplicaId).collect();
    // One strategy per replica (a plugin: one process each); the first
    // replica's also judges the replays.
    let strategies: Vec<Arc<dyn Strategy>> = replicas
        .iter()
        .map(|&id| Ok(lineup.for_replica(id, &replicas)?.pop()))
        .collect::<Result<Option<Vec<_>>, CheckError>>()?
        .ok_or(CheckError::Empty)?;
    let judge = Arc::clone(&strategies[0]);
    let mut report = Report {
        strategy: judge.name().to_string(),
        kind: judge.kind(),
        cases: 0,
        seed: options.seed,
        writes: 0,
        counterexample: None,
    };
    let mut random = StdRng::seed_from_u64(options.seed);
    for case in 1..=options.cases {
        let writes = history(&strategies, &replicas, options, &mut random)?;
        report.cases = case;
        report.writes += writes.len();
        let mut by_key: BTreeMap<&str, Vec<Arc<Write>>> = BTreeMap::new();
        for write in &writes {
            by_key.entry(write.key.as_str()).or_default().push(Arc::clone(write));
        }
        for writes in by_key.values() {
            if let Some(mut example) = violation(judge.as_ref(), writes, &mut random)? {
                example.case = case;
                report.counterexample = Some(example);
                return Ok(report);
            }
        }
    }
    Ok(report)
}

/// One random history on real replica cores: the writes it made.
fn history(
    strategies: &[Arc<dyn Strategy>],
    replicas: &[ReplicaId],
    options: &CheckOptions,
    random: &mut StdRng,
) -> Result<Vec<Arc<Write>>, CheckError> {
    let time = ManualTrueTime::new(START_NS);
    let mut cores: Vec<ReplicaCore> = replicas
        .iter()
        .zip(strategies)
        .map(|(&id, strategy)| {
            let mut core = ReplicaCore::with_strategies(
                id,
                PhysicalClock::modelled(time.clone()),
                vec![Arc::clone(strategy)],
            );
            let offset = random.random_range(-options.max_skew_ms..=options.max_skew_ms);
            // A fixed offset is always a valid model setting.
            let _ = core.update_clock(&ClockUpdate { offset_ms: Some(offset), ..Default::default() });
            core
        })
        .collect();
    let bucket = strategies[0].name().to_string();
    let count = random.random_range(2..=options.max_writes.max(2));
    let keys = ["x", "y"];
    let mut writes: Vec<Arc<Write>> = Vec::new();
    for item in 1..=count as u64 {
        time.advance_ms(random.random_range(0.0..3.0));
        let at = random.random_range(0..cores.len());
        let key = keys[random.random_range(0..keys.len())];
        // The lab's workload: read, then write what was read plus one item.
        let read = cores[at].read(&bucket, key).map_err(core_error)?;
        let mut items: BTreeSet<u64> = BTreeSet::new();
        for sibling in &read.siblings {
            items.extend(serde_json::from_str::<Vec<u64>>(sibling.value.text()).unwrap_or_default());
        }
        items.insert(item);
        let value = RawJson::of(&items);
        let accepted = match cores[at].write(&bucket, key, value, &read.context) {
            Ok(accepted) => accepted,
            // A refusal (a context from the future, say) is the strategy's right.
            Err(crate::replica::core::CoreError::Strategy(_)) => continue,
            Err(error) => return Err(core_error(error)),
        };
        if let Some(at_ns) = accepted.acknowledge_at {
            // Commit wait: let the clock pass the write's time, then release it.
            let wait = at_ns - cores[at].clock().now();
            time.advance_ms(wait.max(0) as f64 / 1e6 + 0.001);
            for core in &mut cores {
                core.release();
            }
        }
        writes.push(accepted.write);
        // Some writes reach some replicas now; the rest later, or never in
        // this history: so some writes read others, and some are concurrent.
        for core in &mut cores {
            if random.random_bool(0.5) {
                let known: Vec<Arc<Write>> =
                    writes.iter().filter(|_| random.random_bool(0.7)).cloned().collect();
                core.receive(known).map_err(core_error)?;
            }
        }
        if let Some(failure) = cores.iter().flat_map(|core| core.failures().into_values()).next() {
            return Err(CheckError::Plugin(failure));
        }
    }
    Ok(writes)
}

fn core_error(error: crate::replica::core::CoreError) -> CheckError {
    match error {
        crate::replica::core::CoreError::BucketFailed { failure, .. } => CheckError::Plugin(failure),
        other => CheckError::Core(other),
    }
}

/// What a delivery order leaves: the surviving write ids and what a read
/// returns, as text to compare and print.
fn outcome(
    strategy: &dyn Strategy,
    writes: &[Arc<Write>],
    order: &[usize],
) -> Result<(KeyState, String), CheckError> {
    let mut state = KeyState::default();
    for &index in order {
        strategy.apply(&mut state, &writes[index]).map_err(CheckError::Strategy)?;
    }
    let kept: Vec<String> = state.siblings.iter().map(|write| write.write_id().to_string()).collect();
    let (merged, context) = strategy.read(&state).map_err(CheckError::Strategy)?;
    let mut text = format!("keeps [{}]", kept.join(", "));
    if let Some(merged) = merged {
        let _ = write!(text, ", reads {}", merged.value);
    }
    let _ = write!(text, ", read context {context}");
    Ok((state, text))
}

/// The items a state holds: every item of every sibling's value.
fn items_of(state: &KeyState) -> BTreeSet<u64> {
    state
        .siblings
        .iter()
        .flat_map(|write| serde_json::from_str::<Vec<u64>>(write.value.text()).unwrap_or_default())
        .collect()
}

/// A random delivery of every write at least once, some twice.
fn delivery(count: usize, random: &mut StdRng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    order.extend((0..count).filter(|_| random.random_bool(0.3)));
    order.shuffle(random);
    order
}

/// The first broken promise among one key's `writes`, shrunk.
fn violation(
    strategy: &dyn Strategy,
    writes: &[Arc<Write>],
    random: &mut StdRng,
) -> Result<Option<Counterexample>, CheckError> {
    // Convergence: two deliveries, the same state.
    for _ in 0..4 {
        let (first, second) = (delivery(writes.len(), random), delivery(writes.len(), random));
        if diverges(strategy, writes, &first, &second)? {
            return shrink_divergence(strategy, writes.to_vec(), first, second).map(Some);
        }
    }
    match strategy.kind() {
        Kind::LastWriteWins => {
            // Exactly one survivor, and the same winner of every pair in
            // either order (orders of two: shrinking is done).
            for a in 0..writes.len() {
                for b in a + 1..writes.len() {
                    let pair = vec![Arc::clone(&writes[a]), Arc::clone(&writes[b])];
                    let (one, one_text) = outcome(strategy, &pair, &[0, 1])?;
                    let (other, other_text) = outcome(strategy, &pair, &[1, 0])?;
                    let single = one.siblings.len() == 1 && other.siblings.len() == 1;
                    if !single || one.siblings != other.siblings {
                        let promise = if single { Promise::Converges } else { Promise::TotalOrder };
                        let orders = vec![(vec![0, 1], one_text), (vec![1, 0], other_text)];
                        return Ok(Some(Counterexample { promise, writes: pair, orders, case: 0 }));
                    }
                }
            }
            // No circle: the winner of all is the winner of each pair it is in.
            let all: Vec<usize> = (0..writes.len()).collect();
            let (state, text) = outcome(strategy, writes, &all)?;
            if let Some(winner) = state.siblings.first()
                && let Some(index) = writes.iter().position(|write| write.write_id() == winner.write_id())
            {
                for other in (0..writes.len()).filter(|&other| other != index) {
                    let pair = vec![Arc::clone(&writes[index]), Arc::clone(&writes[other])];
                    let (duel, duel_text) = outcome(strategy, &pair, &[0, 1])?;
                    if duel.siblings.first().map(|write| write.write_id()) != Some(winner.write_id()) {
                        let orders = vec![(all, text), (vec![index, other], duel_text)];
                        return Ok(Some(Counterexample {
                            promise: Promise::TotalOrder,
                            writes: writes.to_vec(),
                            orders,
                            case: 0,
                        }));
                    }
                }
            }
        }
        Kind::Siblings | Kind::Merge => {
            let order = delivery(writes.len(), random);
            if loses(strategy, writes, &order)? {
                return shrink_loss(strategy, writes.to_vec(), order).map(Some);
            }
        }
    }
    Ok(None)
}

fn diverges(
    strategy: &dyn Strategy,
    writes: &[Arc<Write>],
    first: &[usize],
    second: &[usize],
) -> Result<bool, CheckError> {
    let (one, one_text) = outcome(strategy, writes, first)?;
    let (other, other_text) = outcome(strategy, writes, second)?;
    Ok(one.siblings != other.siblings || one_text != other_text)
}

fn loses(strategy: &dyn Strategy, writes: &[Arc<Write>], order: &[usize]) -> Result<bool, CheckError> {
    let (state, _) = outcome(strategy, writes, order)?;
    let written: BTreeSet<u64> = writes
        .iter()
        .flat_map(|write| serde_json::from_str::<Vec<u64>>(write.value.text()).unwrap_or_default())
        .collect();
    Ok(!written.is_subset(&items_of(&state)))
}

/// `order` without write `index`, the later indexes moved down by one.
fn without(order: &[usize], index: usize) -> Vec<usize> {
    order.iter().filter(|&&at| at != index).map(|&at| if at > index { at - 1 } else { at }).collect()
}

/// Removes writes, then repeats, while the two orders still disagree.
fn shrink_divergence(
    strategy: &dyn Strategy,
    mut writes: Vec<Arc<Write>>,
    mut first: Vec<usize>,
    mut second: Vec<usize>,
) -> Result<Counterexample, CheckError> {
    let mut index = 0;
    while index < writes.len() && writes.len() > 1 {
        let mut fewer = writes.clone();
        fewer.remove(index);
        let (a, b) = (without(&first, index), without(&second, index));
        if diverges(strategy, &fewer, &a, &b)? {
            (writes, first, second) = (fewer, a, b);
        } else {
            index += 1;
        }
    }
    // Then repeats, from each order, while every write is still delivered.
    for side in 0..2 {
        let mut at = 0;
        loop {
            let order = if side == 0 { &first } else { &second };
            if at >= order.len() {
                break;
            }
            let mut shorter = order.clone();
            let removed = shorter.remove(at);
            let (a, b) = if side == 0 { (&shorter, &second) } else { (&first, &shorter) };
            if shorter.contains(&removed) && diverges(strategy, &writes, a, b)? {
                if side == 0 {
                    first = shorter;
                } else {
                    second = shorter;
                }
            } else {
                at += 1;
            }
        }
    }
    let orders = vec![
        (first.clone(), outcome(strategy, &writes, &first)?.1),
        (second.clone(), outcome(strategy, &writes, &second)?.1),
    ];
    Ok(Counterexample { promise: Promise::Converges, writes, orders, case: 0 })
}

/// Removes writes while the delivery still loses an item.
fn shrink_loss(
    strategy: &dyn Strategy,
    mut writes: Vec<Arc<Write>>,
    mut order: Vec<usize>,
) -> Result<Counterexample, CheckError> {
    let mut index = 0;
    while index < writes.len() && writes.len() > 1 {
        let mut fewer = writes.clone();
        fewer.remove(index);
        let shorter = without(&order, index);
        if loses(strategy, &fewer, &shorter)? {
            (writes, order) = (fewer, shorter);
        } else {
            index += 1;
        }
    }
    let text = outcome(strategy, &writes, &order)?.1;
    Ok(Counterexample { promise: Promise::KeepsWrites, writes, orders: vec![(order, text)], case: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::{Clocks, Stamped};
    use serde_json::Value;

    /// "Keep the larger value", ties to whichever write was there first: the
    /// broken example, in Rust, so the check's shrinking is tested without
    /// a Python process.
    struct KeepLarger;

    impl Strategy for KeepLarger {
        fn name(&self) -> &str {
            "keep-larger"
        }

        fn kind(&self) -> Kind {
            Kind::LastWriteWins
        }

        fn stamp(&self, _: &KeyState, _: &Value, _: &mut Clocks) -> Result<Stamped, StrategyError> {
            Ok(Stamped::now(RawJson::of(&0), RawJson::null()))
        }

        fn check(&self, _: &Write) -> Result<(), StrategyError> {
            Ok(())
        }

        fn apply(&self, state: &mut KeyState, write: &Arc<Write>) -> Result<(), StrategyError> {
            let size =
                |write: &Write| serde_json::from_str::<Vec<u64>>(write.value.text()).map_or(0, |v| v.len());
            if state.siblings.first().is_none_or(|current| size(current) < size(write)) {
                state.siblings = vec![Arc::clone(write)];
            }
            Ok(())
        }

        fn read_context(&self, _: &KeyState) -> Result<Value, StrategyError> {
            Ok(Value::Null)
        }
    }

    fn lineup(strategy: Arc<dyn Strategy>) -> Lineup {
        Lineup { builtins: vec![strategy], plugins: Vec::new() }
    }

    #[test]
    fn every_builtin_strategy_keeps_its_promises() {
        let options = CheckOptions { cases: 60, ..Default::default() };
        for strategy in crate::strategy::registry() {
            let report = check(&lineup(strategy), &options).unwrap();
            assert!(report.passed(), "{report}");
            assert_eq!(report.cases, 60);
        }
    }

    #[test]
    fn an_order_dependent_rule_is_caught_and_shrunk_to_two_writes() {
        let report = check(&lineup(Arc::new(KeepLarger)), &CheckOptions::default()).unwrap();
        let example = report.counterexample.as_ref().expect("a counterexample");
        assert_eq!(example.promise, Promise::Converges, "{report}");
        assert_eq!(example.writes.len(), 2, "{report}");
        // Two writes of the same size, each kept by the order that saw it first.
        let sizes: Vec<usize> =
            example.writes.iter().map(|write| write.value.parse().as_array().unwrap().len()).collect();
        assert_eq!(sizes[0], sizes[1], "{report}");
        assert_ne!(example.orders[0].1, example.orders[1].1, "{report}");
        let text = report.to_string();
        assert!(text.contains("applied in the order") && text.contains("--seed 1"), "{text}");
    }

    #[test]
    fn a_siblings_strategy_that_forgets_is_caught_losing_an_item() {
        /// Claims siblings, keeps only the newest write it was given.
        struct Forgets;
        impl Strategy for Forgets {
            fn name(&self) -> &str {
                "forgets"
            }
            fn kind(&self) -> Kind {
                Kind::Siblings
            }
            fn stamp(&self, _: &KeyState, _: &Value, _: &mut Clocks) -> Result<Stamped, StrategyError> {
                Ok(Stamped::now(RawJson::null(), RawJson::null()))
            }
            fn check(&self, _: &Write) -> Result<(), StrategyError> {
                Ok(())
            }
            fn apply(&self, state: &mut KeyState, write: &Arc<Write>) -> Result<(), StrategyError> {
                // Keeps the write with the greatest id: order-free, but lossy.
                state.siblings.push(Arc::clone(write));
                state.siblings.sort_by_key(|write| (write.origin, write.seq));
                state.siblings.dedup_by_key(|write| (write.origin, write.seq));
                state.siblings.drain(..state.siblings.len() - 1);
                Ok(())
            }
            fn read_context(&self, _: &KeyState) -> Result<Value, StrategyError> {
                Ok(Value::Null)
            }
        }
        let report = check(&lineup(Arc::new(Forgets)), &CheckOptions::default()).unwrap();
        let example = report.counterexample.as_ref().expect("a counterexample");
        assert_eq!(example.promise, Promise::KeepsWrites, "{report}");
        assert!(example.writes.len() <= 3, "shrunk: {report}");
    }
}
