//! Clocks: the physical clocks that lie, and the logical clocks that don't.
//!
//! DDIA chapter 8 ("Unreliable Clocks") separates two kinds of clock:
//!
//! - A *physical* clock measures seconds with a quartz crystal. It drifts,
//!   NTP drags it back (sometimes with a jump), and it is read with limited
//!   resolution. [`physical`] models all of this on top of the host's real
//!   clock, which the lab calls *true time*.
//! - A *logical* clock counts events instead of seconds and so orders them by
//!   causality, not by a reading that may be wrong. [`hlc`] is a hybrid of the
//!   two (Kulkarni et al. 2014); [`dots`] is the bookkeeping that version
//!   vectors need (Preguiça et al. 2012).
//!
//! Every replica owns one [`physical::PhysicalClock`] and reads it only
//! through the replica core, which has it injected: tests drive the same code
//! with a hand-wound clock.

pub mod dots;
pub mod hlc;
pub mod physical;
pub mod update;

/// A point on a clock: nanoseconds since the Unix epoch. Signed, so that a
/// clock stepped back or an offset below zero is ordinary arithmetic.
pub type Nanos = i64;

/// Nanoseconds in one millisecond, for the `_ms` fields people type.
pub const NANOS_PER_MILLI: f64 = 1_000_000.0;

/// Converts a duration in (possibly fractional) milliseconds to nanoseconds.
pub fn millis_to_nanos(ms: f64) -> Nanos {
    (ms * NANOS_PER_MILLI).round() as Nanos
}

/// Converts nanoseconds to milliseconds, for reports.
pub fn nanos_to_millis(ns: Nanos) -> f64 {
    ns as f64 / NANOS_PER_MILLI
}
