//! What a replica decides about one peer, with no I/O: the replication
//! policy as a pure state machine.
//!
//! [`super::replication`]'s peer task does the talking (asks the worker
//! what the peer lacks, sends the push, reads the answer, sleeps); every
//! decision it makes is asked of a [`PeerPolicy`], which is driven by the
//! caller's clock (`now`, monotonic ns) and seeded randomness, like
//! [`super::core::ReplicaCore`]. The same policy can so be driven by a
//! simulated clock and network as well as by tokio's.
//!
//! The decisions, one push at a time:
//!
//! 1. [`PeerPolicy::ships`]: which origins' writes to send. Our own always;
//!    another origin's only once the peer has lagged behind us on it for
//!    [`ReplicationOptions::relay_after`]: that is how writes route around a
//!    cut link.
//! 2. [`PeerPolicy::transmit`]: what the link does to this push (a cut
//!    holds it, a delay is drawn, a loss is drawn).
//! 3. [`PeerPolicy::on_reply`]: the peer's answer says what it has; which
//!    origins it now lags on starts or stops their relay clocks.
//! 4. [`PeerPolicy::after_push`]: how long to wait before the next push.

use std::collections::HashMap;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::links::LinkSettings;
use crate::clock::Nanos;
use crate::clock::dots::{DotSet, ReplicaId};

/// Tunables of the replication loop.
#[derive(Debug, Clone)]
pub struct ReplicationOptions {
    /// Most writes in one push.
    pub batch_limit: usize,
    /// With nothing to send, push an empty heartbeat this often.
    pub idle_interval: Duration,
    /// After a failed or lost push, wait this long before trying again.
    pub retry_interval: Duration,
    /// Relay another origin's writes to a peer behind on it for this long.
    pub relay_after: Duration,
    /// Give up on a push that has had no answer for this long.
    pub request_timeout: Duration,
    /// After a push that was not full, wait this long for more writes to
    /// gather, so that a busy replica sends fewer, larger batches.
    pub linger: Duration,
}

impl Default for ReplicationOptions {
    fn default() -> Self {
        Self {
            batch_limit: 1024,
            idle_interval: Duration::from_millis(100),
            retry_interval: Duration::from_millis(50),
            relay_after: Duration::from_millis(500),
            request_timeout: Duration::from_secs(5),
            linger: Duration::from_millis(5),
        }
    }
}

/// Which origins' writes go to the peer in this push.
#[derive(Debug, Clone, PartialEq)]
pub enum Shipping {
    /// The continuous push: our own writes, and those of the origins in
    /// `relayed` (never the peer's own).
    Own { me: ReplicaId, peer: ReplicaId, relayed: Vec<ReplicaId> },
    /// Everything we have that the peer lacks, whoever wrote it: an
    /// anti-entropy exchange, as a scripted `replicate` step asks for.
    Everything,
}

impl Shipping {
    /// Whether writes of `origin` are sent.
    pub fn allows(&self, origin: ReplicaId) -> bool {
        match self {
            Shipping::Own { me, peer, relayed } => {
                origin == *me || (origin != *peer && relayed.contains(&origin))
            }
            Shipping::Everything => true,
        }
    }
}

/// What the link does to one push.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transmission {
    /// The link sends nothing (cut): try again after `wait`.
    Held { wait: Duration },
    /// The push goes out after `delay`; with `reversed` its writes in
    /// reverse order, with `duplicated` once more after its answer.
    Send { delay: Duration, reversed: bool, duplicated: bool },
    /// The push is lost after `delay`; try again `wait` later.
    Lost { delay: Duration, wait: Duration },
}

/// How long to wait before the next push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Nothing was sent: wait for a new write, or `heartbeat` at most.
    UntilWrites { heartbeat: Duration },
    /// A push that was not full: let more writes gather for `linger`.
    Linger(Duration),
    /// A full push: there is more to send at once.
    None,
    /// A push that failed or got no answer: retry after this long.
    Retry(Duration),
}

/// The policy toward one peer. See the module docs.
#[derive(Debug)]
pub struct PeerPolicy {
    me: ReplicaId,
    peer: ReplicaId,
    options: ReplicationOptions,
    /// What the peer has, as of its last answer.
    view: DotSet,
    /// Since when (our `now`) the peer has lagged behind us on each origin.
    behind_since: HashMap<ReplicaId, Nanos>,
    random: StdRng,
}

impl PeerPolicy {
    /// The policy of replica `me` toward `peer`, with its link faults drawn
    /// from `seed` (mixed with the peer's id, so each link differs).
    pub fn new(me: ReplicaId, peer: ReplicaId, options: ReplicationOptions, seed: u64) -> Self {
        let random = StdRng::seed_from_u64(seed ^ u64::from(peer).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Self { me, peer, options, view: DotSet::new(), behind_since: HashMap::new(), random }
    }

    /// What the peer has, as far as we know.
    pub fn view(&self) -> &DotSet {
        &self.view
    }

    /// Most writes in one push.
    pub fn batch_limit(&self) -> usize {
        self.options.batch_limit
    }

    /// Which origins' writes to send now.
    pub fn ships(&self, now: Nanos) -> Shipping {
        let relay_after = self.options.relay_after.as_nanos() as Nanos;
        let relayed = self
            .behind_since
            .iter()
            .filter(|(_, since)| now - **since >= relay_after)
            .map(|(&origin, _)| origin)
            .collect();
        Shipping::Own { me: self.me, peer: self.peer, relayed }
    }

    /// What the link does to the next push.
    pub fn transmit(&mut self, link: &LinkSettings) -> Transmission {
        if !link.sends() {
            return Transmission::Held { wait: self.options.idle_interval };
        }
        let delay = link.sample_delay(&mut self.random);
        if link.sample_loss(&mut self.random) {
            return Transmission::Lost { delay, wait: self.options.retry_interval };
        }
        let reversed = link.sample_reorder(&mut self.random);
        let duplicated = link.sample_duplicate(&mut self.random);
        Transmission::Send { delay, reversed, duplicated }
    }

    /// The peer answered that it has `have`; we have `ours`.
    pub fn on_reply(&mut self, have: DotSet, ours: &DotSet, now: Nanos) {
        for origin in ours.replicas() {
            let lags = ours.contiguous(origin) > have.contiguous(origin)
                || ours.max_counter(origin) > have.max_counter(origin);
            if lags {
                self.behind_since.entry(origin).or_insert(now);
            } else {
                self.behind_since.remove(&origin);
            }
        }
        self.view = have;
    }

    /// How long to wait after a push of `sent` writes that was answered.
    pub fn after_push(&self, sent: usize) -> Pause {
        if sent == 0 {
            Pause::UntilWrites { heartbeat: self.options.idle_interval }
        } else if sent < self.options.batch_limit {
            Pause::Linger(self.options.linger)
        } else {
            Pause::None
        }
    }

    /// How long to wait after a push that failed or got no answer.
    pub fn after_failure(&self) -> Pause {
        Pause::Retry(self.options.retry_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::dots::Dot;
    use crate::replica::links::Cut;

    const MS: Nanos = 1_000_000;

    fn dots(list: &[(ReplicaId, u64)]) -> DotSet {
        let mut set = DotSet::new();
        for &(replica, counter) in list {
            set.insert(Dot(replica, counter));
        }
        set
    }

    #[test]
    fn another_origin_is_relayed_only_after_the_peer_lagged_on_it_long_enough() {
        let mut policy = PeerPolicy::new(1, 2, ReplicationOptions::default(), 7);
        assert!(policy.ships(0).allows(1), "our own writes, always");
        assert!(!policy.ships(0).allows(3));
        // We have replica 3's first write; the peer does not.
        policy.on_reply(DotSet::new(), &dots(&[(3, 1)]), 10 * MS);
        assert!(!policy.ships(10 * MS + 499 * MS).allows(3), "not yet: 500 ms by default");
        assert!(policy.ships(10 * MS + 500 * MS).allows(3), "the peer lagged for 500 ms");
        assert!(!policy.ships(10 * MS + 500 * MS).allows(2), "never the peer's own writes");
        // Once it has caught up, relaying stops.
        policy.on_reply(dots(&[(3, 1)]), &dots(&[(3, 1)]), 600 * MS);
        assert!(!policy.ships(2_000 * MS).allows(3));
        assert_eq!(policy.view(), &dots(&[(3, 1)]));
    }

    #[test]
    fn the_link_holds_delays_or_loses_a_push() {
        let options = ReplicationOptions::default();
        let mut policy = PeerPolicy::new(1, 2, options.clone(), 7);
        let cut = LinkSettings { cut: Cut::Out, ..LinkSettings::default() };
        assert_eq!(policy.transmit(&cut), Transmission::Held { wait: options.idle_interval });
        let slow = LinkSettings { delay_ms: [5.0, 5.0], ..LinkSettings::default() };
        assert_eq!(
            policy.transmit(&slow),
            Transmission::Send { delay: Duration::from_millis(5), reversed: false, duplicated: false }
        );
        let unruly = LinkSettings { duplicate: 1.0, reorder: 1.0, ..LinkSettings::default() };
        assert_eq!(
            policy.transmit(&unruly),
            Transmission::Send { delay: Duration::ZERO, reversed: true, duplicated: true }
        );
        let lossy = LinkSettings { loss: 1.0, ..LinkSettings::default() };
        assert!(matches!(policy.transmit(&lossy), Transmission::Lost { .. }));
        // The same seed draws the same faults.
        let half = LinkSettings { loss: 0.5, delay_ms: [0.0, 10.0], ..LinkSettings::default() };
        let draws = |seed| {
            let mut policy = PeerPolicy::new(1, 2, ReplicationOptions::default(), seed);
            (0..20).map(|_| policy.transmit(&half)).collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
    }

    #[test]
    fn the_pause_after_a_push_follows_how_full_it_was() {
        let options = ReplicationOptions::default();
        let policy = PeerPolicy::new(1, 2, options.clone(), 7);
        assert_eq!(policy.after_push(0), Pause::UntilWrites { heartbeat: options.idle_interval });
        assert_eq!(policy.after_push(1), Pause::Linger(options.linger));
        assert_eq!(policy.after_push(options.batch_limit), Pause::None);
        assert_eq!(policy.after_failure(), Pause::Retry(options.retry_interval));
    }
}
