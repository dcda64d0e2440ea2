//! The lock service: one named lock, granted for a TTL with a fencing token.
//!
//! The service is the judge of expiry, and it judges by its own clock: a
//! lease granted when its clock read `t` ends when its clock reads `t +
//! TTL`, whatever any holder's clock says. A grant always carries a new,
//! larger token; a renewal by the holder, before expiry, extends the same
//! lease and keeps its token. A renewal that comes too late is refused: the
//! lease is over, even if nobody has taken it since, and the holder must
//! acquire again (and gets a new token). So "the truth is defined by the
//! majority" in miniature: a holder's belief counts for nothing here.

use serde::{Deserialize, Serialize};

use super::{Token, WorkerId};
use crate::clock::Nanos;

/// One grant of the lock, as the service sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: WorkerId,
    pub token: Token,
    /// The service's clock reading at which it ends, ns.
    pub expires_ns: Nanos,
}

/// The service's answer to an acquire or a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// A new lease, with a new token.
    Granted { lease: Lease, ttl_ns: Nanos },
    /// The holder's lease, extended.
    Renewed { lease: Lease, ttl_ns: Nanos },
    /// Someone else holds it, until `lease.expires_ns`.
    Held { lease: Lease },
    /// The renewed lease had already ended.
    Lost,
}

/// The lock service's state.
#[derive(Debug, Clone)]
pub struct LockService {
    ttl_ns: Nanos,
    next_token: Token,
    lease: Option<Lease>,
}

impl LockService {
    /// A service granting leases of `ttl_ns`, the first with `first_token`.
    pub fn new(ttl_ns: Nanos, first_token: Token) -> Self {
        Self { ttl_ns, next_token: first_token, lease: None }
    }

    pub fn ttl_ns(&self) -> Nanos {
        self.ttl_ns
    }

    /// The lease in force when the service's clock reads `now`, if any.
    pub fn holder(&self, now: Nanos) -> Option<Lease> {
        self.lease.filter(|lease| now < lease.expires_ns)
    }

    /// `worker` asks for the lock when the service's clock reads `now`.
    /// The current holder asking again renews.
    pub fn acquire(&mut self, worker: WorkerId, now: Nanos) -> Answer {
        match self.holder(now) {
            Some(lease) if lease.holder == worker => self.renew(worker, lease.token, now),
            Some(lease) => Answer::Held { lease },
            None => {
                let lease = Lease { holder: worker, token: self.next_token, expires_ns: now + self.ttl_ns };
                self.next_token = Token(self.next_token.0 + 1);
                self.lease = Some(lease);
                Answer::Granted { lease, ttl_ns: self.ttl_ns }
            }
        }
    }

    /// `worker` renews the lease with `token` when the service's clock
    /// reads `now`: extended if it is still theirs and in force, else lost.
    pub fn renew(&mut self, worker: WorkerId, token: Token, now: Nanos) -> Answer {
        match self.holder(now) {
            Some(lease) if lease.holder == worker && lease.token == token => {
                let lease = Lease { expires_ns: now + self.ttl_ns, ..lease };
                self.lease = Some(lease);
                Answer::Renewed { lease, ttl_ns: self.ttl_ns }
            }
            _ => Answer::Lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Nanos = 1_000_000_000;

    #[test]
    fn one_holder_at_a_time_and_every_grant_a_larger_token() {
        let mut service = LockService::new(10 * SECOND, Token(33));
        let Answer::Granted { lease: first, .. } = service.acquire(WorkerId(1), 0) else { panic!("granted") };
        assert_eq!((first.token, first.expires_ns), (Token(33), 10 * SECOND));
        assert_eq!(service.acquire(WorkerId(2), 5 * SECOND), Answer::Held { lease: first });
        // Renewed before expiry: the same token, a later end.
        let Answer::Renewed { lease, .. } = service.renew(WorkerId(1), Token(33), 8 * SECOND) else {
            panic!("renewed")
        };
        assert_eq!((lease.token, lease.expires_ns), (Token(33), 18 * SECOND));
        // Expired by the service's clock: the next asker gets it, with 34.
        let Answer::Granted { lease: second, .. } = service.acquire(WorkerId(2), 18 * SECOND) else {
            panic!("granted")
        };
        assert_eq!(second.token, Token(34));
        // The paused holder's renewal comes too late.
        assert_eq!(service.renew(WorkerId(1), Token(33), 19 * SECOND), Answer::Lost);
    }

    #[test]
    fn a_late_renewal_is_lost_even_if_nobody_took_the_lease() {
        let mut service = LockService::new(SECOND, Token(1));
        service.acquire(WorkerId(1), 0);
        assert_eq!(service.renew(WorkerId(1), Token(1), SECOND), Answer::Lost);
        let Answer::Granted { lease, .. } = service.acquire(WorkerId(1), SECOND) else { panic!("granted") };
        assert_eq!(lease.token, Token(2), "acquired again: a new token");
    }
}
