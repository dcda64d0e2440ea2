//! Hybrid logical clocks (Kulkarni, Demirbas et al., "Logical Physical
//! Clocks and Consistent Snapshots in Globally Distributed Databases", 2014).
//!
//! A Lamport clock orders events by causality but its numbers mean nothing to
//! a human; a physical clock means something but, as DDIA chapter 8 shows in
//! Figure 8-3, can order a write before the write it read. An HLC timestamp
//! `(l, c)` is both:
//!
//! - `l` is the largest physical reading this node has *heard of*: its own
//!   clock, or a timestamp that reached it in a message. So `l` never goes
//!   backward, even when the physical clock is stepped back, and it stays
//!   within the clock skew ε of the local physical clock (`l - pt <= ε`).
//! - `c` counts events that share the same `l`, so two causally ordered
//!   events never get equal timestamps.
//!
//! The rules, straight from the paper. On a local or send event:
//!
//! ```text
//! l' = l;  l = max(l', pt);  c = if l == l' { c + 1 } else { 0 }
//! ```
//!
//! On receiving a message stamped `(lm, cm)`:
//!
//! ```text
//! l' = l;  l = max(l', lm, pt)
//! c = if l == l' == lm { max(c, cm) + 1 }
//!     else if l == l'  { c + 1 }
//!     else if l == lm  { cm + 1 }
//!     else             { 0 }
//! ```
//!
//! If event e happened before f, then `hlc(e) < hlc(f)`: the increment that
//! read `x = 1` is stamped after the write of `x = 1`, whatever the clocks
//! say. What HLC cannot do is tell concurrent writes apart; that takes
//! version vectors.

use serde::{Deserialize, Serialize};

use super::Nanos;

/// One HLC reading, ordered first by `l`, then by `c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct HlcTimestamp {
    /// The logical part that tracks physical time, in ns.
    pub l: Nanos,
    /// Events seen with this same `l`.
    pub c: u64,
}

/// One node's hybrid logical clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hlc {
    latest: HlcTimestamp,
}

impl Hlc {
    /// The last timestamp this clock handed out or observed.
    pub fn latest(&self) -> HlcTimestamp {
        self.latest
    }

    /// Stamps a local or send event, given the physical clock's reading `pt`.
    pub fn tick(&mut self, pt: Nanos) -> HlcTimestamp {
        let previous = self.latest;
        let l = previous.l.max(pt);
        let c = if l == previous.l { previous.c + 1 } else { 0 };
        self.latest = HlcTimestamp { l, c };
        self.latest
    }

    /// Stamps the receipt of a message that carried `received`.
    pub fn receive(&mut self, received: HlcTimestamp, pt: Nanos) -> HlcTimestamp {
        let previous = self.latest;
        let l = previous.l.max(received.l).max(pt);
        let c = if l == previous.l && l == received.l {
            previous.c.max(received.c) + 1
        } else if l == previous.l {
            previous.c + 1
        } else if l == received.l {
            received.c + 1
        } else {
            0
        };
        self.latest = HlcTimestamp { l, c };
        self.latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_stepped_back_clock_still_moves_forward() {
        let mut hlc = Hlc::default();
        let before = hlc.tick(1_000);
        let after = hlc.tick(400); // NTP stepped the clock back
        assert!(after > before);
        assert_eq!(after, HlcTimestamp { l: 1_000, c: 1 });
    }

    #[test]
    fn receiving_a_stamp_from_a_clock_that_is_ahead() {
        let mut hlc = Hlc::default();
        let got = hlc.receive(HlcTimestamp { l: 5_000, c: 3 }, 1_000);
        assert_eq!(got, HlcTimestamp { l: 5_000, c: 4 });
        // The local clock catches up: back to counting from zero.
        assert_eq!(hlc.tick(6_000), HlcTimestamp { l: 6_000, c: 0 });
    }

    /// One step of a little simulated cluster.
    #[derive(Debug, Clone)]
    enum Event {
        /// True time passes, in ns.
        Wait(u16),
        /// Node `n` makes a local event and sends its stamp to node `to`.
        Send { node: usize, to: usize },
        /// Node `n` delivers the oldest message waiting for it.
        Deliver { node: usize },
        /// Node `n`'s clock is stepped by this many ns (possibly back).
        Step { node: usize, by: i32 },
    }

    const NODES: usize = 3;

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            any::<u16>().prop_map(Event::Wait),
            (0..NODES, 0..NODES).prop_map(|(node, to)| Event::Send { node, to }),
            (0..NODES).prop_map(|node| Event::Deliver { node }),
            (0..NODES, -50_000..50_000i32).prop_map(|(node, by)| Event::Step { node, by }),
        ]
    }

    proptest! {
        /// Every timestamp a node hands out is larger than everything it
        /// handed out or received before, whatever its clock does.
        #[test]
        fn timestamps_only_grow_and_exceed_what_was_received(
            events in prop::collection::vec(event(), 1..200),
        ) {
            let mut now: Nanos = 1_000_000;
            let mut offsets = [0i64; NODES];
            let mut clocks = [Hlc::default(); NODES];
            let mut inboxes: Vec<Vec<HlcTimestamp>> = vec![Vec::new(); NODES];
            for event in events {
                match event {
                    Event::Wait(ns) => now += Nanos::from(ns),
                    Event::Step { node, by } => offsets[node] += i64::from(by),
                    Event::Send { node, to } => {
                        let before = clocks[node].latest();
                        let sent = clocks[node].tick(now + offsets[node]);
                        prop_assert!(sent > before);
                        inboxes[to].push(sent);
                    }
                    Event::Deliver { node } => {
                        if inboxes[node].is_empty() { continue; }
                        let message = inboxes[node].remove(0);
                        let before = clocks[node].latest();
                        let got = clocks[node].receive(message, now + offsets[node]);
                        prop_assert!(got > message, "{got:?} does not exceed received {message:?}");
                        prop_assert!(got > before);
                    }
                }
            }
        }

        /// With every physical clock within [0, ε] of true time (no steps),
        /// `l` never runs more than ε ahead of the local physical clock.
        #[test]
        fn l_stays_within_epsilon_of_the_physical_clock(
            offsets in prop::array::uniform3(0..10_000i64),
            events in prop::collection::vec(event(), 1..200),
        ) {
            let epsilon = offsets.iter().max().unwrap() - offsets.iter().min().unwrap();
            let mut now: Nanos = 1_000_000;
            let mut clocks = [Hlc::default(); NODES];
            let mut inboxes: Vec<Vec<HlcTimestamp>> = vec![Vec::new(); NODES];
            for event in events {
                match event {
                    Event::Wait(ns) => now += Nanos::from(ns),
                    Event::Step { .. } => {}
                    Event::Send { node, to } => {
                        let pt = now + offsets[node];
                        let sent = clocks[node].tick(pt);
                        prop_assert!(sent.l - pt <= epsilon);
                        inboxes[to].push(sent);
                    }
                    Event::Deliver { node } => {
                        if inboxes[node].is_empty() { continue; }
                        let message = inboxes[node].remove(0);
                        let pt = now + offsets[node];
                        let got = clocks[node].receive(message, pt);
                        prop_assert!(got.l - pt <= epsilon, "l - pt = {} > ε = {epsilon}", got.l - pt);
                    }
                }
            }
        }
    }
}
