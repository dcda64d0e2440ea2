//! The simulator's agenda: events in true-time order.
//!
//! Two events due at the same nanosecond come out in the order they were
//! scheduled, so a run depends on nothing but its seed: not on a hash
//! map's order, not on the machine, not on the wall clock.
//!
//! The heap orders small entries (time, order, slot); the events
//! themselves, some of them large, wait in slots and never move.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::clock::Nanos;

/// Events waiting for their time.
pub struct Agenda<E> {
    heap: BinaryHeap<Due>,
    /// The events, by slot; `None` is a free slot.
    slots: Vec<Option<E>>,
    free: Vec<usize>,
    scheduled: u64,
}

#[derive(PartialEq, Eq)]
struct Due {
    at: Nanos,
    order: u64,
    slot: usize,
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    /// Reversed, so that the max-heap gives the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl<E> Default for Agenda<E> {
    fn default() -> Self {
        Self { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), scheduled: 0 }
    }
}

impl<E> Agenda<E> {
    /// Schedules `event` at true time `at`.
    pub fn schedule(&mut self, at: Nanos, event: E) {
        self.scheduled += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                self.slots.len() - 1
            }
        };
        self.heap.push(Due { at, order: self.scheduled, slot });
    }

    /// The earliest event, if it is due by `until`.
    pub fn pop_until(&mut self, until: Nanos) -> Option<(Nanos, E)> {
        if self.heap.peek()?.at > until {
            return None;
        }
        let due = self.heap.pop()?;
        self.free.push(due.slot);
        self.slots[due.slot].take().map(|event| (due.at, event))
    }

    /// When the earliest event is due, if any is.
    pub fn next_at(&self) -> Option<Nanos> {
        self.heap.peek().map(|due| due.at)
    }

    /// How many events have ever been scheduled.
    pub fn scheduled(&self) -> u64 {
        self.scheduled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_in_the_order_they_were_scheduled() {
        let mut agenda = Agenda::default();
        agenda.schedule(20, "c");
        agenda.schedule(10, "a");
        agenda.schedule(10, "b");
        agenda.schedule(30, "d");
        let mut seen = Vec::new();
        while let Some((at, event)) = agenda.pop_until(25) {
            seen.push((at, event));
        }
        assert_eq!(seen, vec![(10, "a"), (10, "b"), (20, "c")]);
        assert_eq!(agenda.pop_until(30), Some((30, "d")));
        assert_eq!(agenda.scheduled(), 4);
    }
}
