//! Asking long work to stop.
//!
//! A run on real processes stops when its future is dropped: the cluster
//! goes with it and kills its replicas. A simulated trial is different: it
//! is pure computation on a thread of its own, with no await point at
//! which a future could be dropped, so a Ctrl-C would wait for it to end
//! (a minute, or an hour). The simulator therefore looks at a [`Stop`]
//! every few thousand events, and gives up as soon as it is set: the
//! runner sets it when the run is interrupted (Ctrl-C, SIGTERM, or a
//! dashboard job cancelled).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag that asks work to stop soon; cheap to clone and to read.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

/// The work was asked to stop before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped before it finished")]
pub struct Stopped;

impl Stop {
    /// Asks every holder of this flag to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Stopped)` once stopping has been asked for.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.is_stopped() { Err(Stopped) } else { Ok(()) }
    }
}
