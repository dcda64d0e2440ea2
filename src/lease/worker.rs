//! A lease holder's loop, as a state machine with no I/O of its own.
//!
//! The loop is DDIA's (chapter 8, "Process Pauses"): each round, renew the
//! lease if little of it is left, check that it is still valid, and if so
//! read the protected value, work for a while, and write the value plus one.
//!
//! ```text
//!          +--- little left ---> renew --renewed--------+
//!          |                       |                    v
//!   round -+-----------------------|------------------> check --valid--> read -> work -> write
//!     ^    |                       | lost               |                                  |
//!     |    +--- no lease ---> acquire --granted---------+                                  |
//!     |                                                 | not valid                        |
//!     +-------------------- sleep <---------------------+----------------------------------+
//! ```
//!
//! "Little left" and "valid" are measured by the worker's [`Guard`]: the
//! service's expiry time against the worker's time-of-day clock, or the TTL
//! counted on its monotonic clock from before it asked. A time-of-day clock
//! that is behind (or stepped back) makes both look better than they are:
//! the worker renews too late, the lease ends at the service, and the
//! worker still finds it valid. A pause anywhere in `read -> work -> write`
//! (a GC, a SIGSTOP) defeats either measure: the check passed before it
//! and the write goes out after it, however long it lasted (Figure 8-4).
//!
//! The worker is driven by whoever hosts it (the simulator, or a real
//! process with HTTP clients): each [`Input`] with its two clocks' readings
//! comes back as the next [`Action`], and what it came to believe as
//! [`Note`]s for the history. So every engine runs the same decisions.

use super::service::Answer;
use super::{Guard, Token, WorkerId};
use crate::clock::Nanos;

/// A worker's timings, ns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// The least a lease must have left for the worker to act on it.
    pub margin_ns: Nanos,
    /// Renew when less than this is left.
    pub renew_ns: Nanos,
    /// The work between reading the value and writing it back.
    pub work_ns: Nanos,
    /// Between one round and the next.
    pub idle_ns: Nanos,
    /// After the lock was held by another, or a request failed, before
    /// trying again.
    pub retry_ns: Nanos,
}

/// The longest any of a worker's timings may be, ms: an hour.
pub const MAX_TIMING_MS: f64 = 3_600_000.0;

/// Whether `value` ms is a timing a worker can take (0 to
/// [`MAX_TIMING_MS`]); if not, why, naming it `name`.
pub fn check_ms(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && (0.0..=MAX_TIMING_MS).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} must be 0 to 3,600,000 ms, got {value}"))
    }
}

/// A worker's timings as people write them, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingMs {
    pub margin: f64,
    pub renew: f64,
    pub work: f64,
    pub idle: f64,
    pub retry: f64,
}

impl TimingMs {
    /// The timings in ns, each checked; a wrong one is named as `spelled`
    /// spells it (`margin` as `margin_ms` in a spec, `--margin-ms` on the
    /// command line).
    pub fn checked(self, spelled: impl Fn(&str) -> String) -> Result<Timing, String> {
        for (name, value) in [
            ("margin", self.margin),
            ("renew", self.renew),
            ("work", self.work),
            ("idle", self.idle),
            ("retry", self.retry),
        ] {
            check_ms(&spelled(name), value)?;
        }
        Ok(self.in_ns())
    }

    /// The timings in ns, as they are (for timings already checked).
    pub fn in_ns(self) -> Timing {
        let ns = crate::clock::millis_to_nanos;
        Timing {
            margin_ns: ns(self.margin),
            renew_ns: ns(self.renew),
            work_ns: ns(self.work),
            idle_ns: ns(self.idle),
            retry_ns: ns(self.retry),
        }
    }
}

/// A worker's two clocks, read at one moment: its time-of-day clock (which
/// may be skewed, drift or be stepped) and its monotonic clock (which only
/// counts elapsed time, pauses included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readings {
    pub wall_ns: Nanos,
    pub mono_ns: Nanos,
}

/// What the worker asks its host to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask the lock service for the lock.
    Acquire,
    /// Ask the lock service to extend the lease with this token.
    Renew(Token),
    /// Read the protected value from storage.
    Read,
    /// Write `value` to storage, with the lease's token if the worker fences.
    Write { value: u64, fence: Option<Token> },
    /// Wake the worker after this long, on its monotonic clock.
    Sleep(Nanos),
}

/// How a write to storage ended, as the worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome {
    /// Acknowledged.
    Ok,
    /// Refused by the storage: a larger token was already seen.
    Fenced,
    /// Refused for another reason, or no answer.
    Failed,
}

/// What comes back to the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The worker starts.
    Start,
    /// A sleep ended.
    Woke,
    /// The lock service answered.
    Service(Answer),
    /// The storage answered a read: the protected value (0 if never written).
    Value(u64),
    /// The storage answered a write.
    Written(WriteOutcome),
    /// A request got no usable answer.
    Failed,
}

/// Something the worker came to believe, for the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// It holds a new lease, ending when the service's clock reads `expires_ns`.
    Acquired { token: Token, expires_ns: Nanos, ttl_ns: Nanos },
    /// It checked its lease; it acts only on a valid one.
    Checked { token: Token, valid: bool },
    /// The service refused its renewal: the lease was over.
    Lost { token: Token },
}

/// What the worker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    token: Token,
    /// The service's clock reading at which the lease ends (as granted or
    /// last renewed).
    expires_ns: Nanos,
    /// The monotonic reading at which it ends at the latest: when the
    /// worker asked, plus the TTL.
    ends_mono_ns: Nanos,
}

/// Where the worker is in its round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Asleep, or not started; on waking it starts a round.
    Idle,
    Acquiring {
        asked_mono_ns: Nanos,
    },
    Renewing {
        asked_mono_ns: Nanos,
    },
    Reading,
    Working {
        value: u64,
    },
    Writing,
}

/// One lease holder.
#[derive(Debug, Clone)]
pub struct Worker {
    id: WorkerId,
    guard: Guard,
    timing: Timing,
    phase: Phase,
    held: Option<Held>,
}

/// What one step gives back: the next action, and what the worker noted.
pub type Stepped = (Action, Vec<Note>);

impl Worker {
    pub fn new(id: WorkerId, guard: Guard, timing: Timing) -> Self {
        Self { id, guard, timing, phase: Phase::Idle, held: None }
    }

    pub fn id(&self) -> WorkerId {
        self.id
    }

    pub fn guard(&self) -> Guard {
        self.guard
    }

    /// The token of the lease it believes it holds, if any.
    pub fn token(&self) -> Option<Token> {
        self.held.map(|held| held.token)
    }

    /// Takes one input at `now`; returns what to do next and anything noted.
    pub fn step(&mut self, input: Input, now: Readings) -> Stepped {
        match (input, self.phase) {
            (Input::Start | Input::Woke, Phase::Idle) => self.round(now),
            (Input::Woke, Phase::Working { value }) => {
                self.phase = Phase::Writing;
                let fence = self.held.filter(|_| self.guard.fences()).map(|held| held.token);
                (Action::Write { value: value + 1, fence }, Vec::new())
            }
            (
                Input::Service(answer),
                Phase::Acquiring { asked_mono_ns } | Phase::Renewing { asked_mono_ns },
            ) => self.answered(answer, asked_mono_ns, now),
            (Input::Value(value), Phase::Reading) => {
                self.phase = Phase::Working { value };
                (Action::Sleep(self.timing.work_ns), Vec::new())
            }
            (Input::Written(_) | Input::Failed, Phase::Writing | Phase::Reading) => {
                self.sleep(self.timing.idle_ns)
            }
            // The service did not answer, or an input came out of turn (a
            // host's bug): wait, then start a round again.
            _ => self.sleep(self.timing.retry_ns),
        }
    }

    fn sleep(&mut self, for_ns: Nanos) -> Stepped {
        self.phase = Phase::Idle;
        (Action::Sleep(for_ns), Vec::new())
    }

    /// What is left of the lease, by the guard's measure.
    fn left_ns(&self, held: Held, now: Readings) -> Nanos {
        match self.guard {
            // DDIA's code: the service's expiry against our time of day.
            Guard::WallClock => held.expires_ns - now.wall_ns,
            Guard::Monotonic | Guard::Fenced => held.ends_mono_ns - now.mono_ns,
        }
    }

    /// A round begins: acquire, renew, or check.
    fn round(&mut self, now: Readings) -> Stepped {
        match self.held {
            None => (self.acquire(now), Vec::new()),
            Some(held) if self.left_ns(held, now) < self.timing.renew_ns => {
                self.phase = Phase::Renewing { asked_mono_ns: now.mono_ns };
                (Action::Renew(held.token), Vec::new())
            }
            Some(held) => self.check(held, now),
        }
    }

    fn acquire(&mut self, now: Readings) -> Action {
        self.phase = Phase::Acquiring { asked_mono_ns: now.mono_ns };
        Action::Acquire
    }

    fn answered(&mut self, answer: Answer, asked_mono_ns: Nanos, now: Readings) -> Stepped {
        match answer {
            Answer::Granted { lease, ttl_ns } => {
                let held = self.hold(lease.token, lease.expires_ns, ttl_ns, asked_mono_ns);
                let acquired = Note::Acquired { token: lease.token, expires_ns: lease.expires_ns, ttl_ns };
                let (action, mut notes) = self.check(held, now);
                notes.insert(0, acquired);
                (action, notes)
            }
            Answer::Renewed { lease, ttl_ns } => {
                let held = self.hold(lease.token, lease.expires_ns, ttl_ns, asked_mono_ns);
                self.check(held, now)
            }
            Answer::Held { .. } => {
                self.held = None;
                self.sleep(self.timing.retry_ns)
            }
            Answer::Lost => {
                let lost = self.held.take().map(|held| Note::Lost { token: held.token });
                (self.acquire(now), lost.into_iter().collect())
            }
        }
    }

    fn hold(&mut self, token: Token, expires_ns: Nanos, ttl_ns: Nanos, asked_mono_ns: Nanos) -> Held {
        let held = Held { token, expires_ns, ends_mono_ns: asked_mono_ns + ttl_ns };
        self.held = Some(held);
        held
    }

    /// The check under test, then the read if it passed.
    fn check(&mut self, held: Held, now: Readings) -> Stepped {
        let valid = self.left_ns(held, now) > self.timing.margin_ns;
        let notes = vec![Note::Checked { token: held.token, valid }];
        if valid {
            self.phase = Phase::Reading;
            (Action::Read, notes)
        } else {
            // Not asked for again at once: a clock that runs ahead would
            // find every fresh grant expired, and ask again and again.
            self.held = None;
            let (action, _) = self.sleep(self.timing.retry_ns);
            (action, notes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::service::LockService;

    const MS: Nanos = 1_000_000;
    const TIMING: Timing = Timing {
        margin_ns: 100 * MS,
        renew_ns: 500 * MS,
        work_ns: 50 * MS,
        idle_ns: 100 * MS,
        retry_ns: 100 * MS,
    };

    fn at(wall_ms: i64, mono_ms: i64) -> Readings {
        Readings { wall_ns: wall_ms * MS, mono_ns: mono_ms * MS }
    }

    /// A worker granted a 1 s lease (token 33) at time 0, both clocks at 0,
    /// its first check passed.
    fn granted(guard: Guard) -> (Worker, LockService) {
        let mut service = LockService::new(1000 * MS, Token(33));
        let mut worker = Worker::new(WorkerId(1), guard, TIMING);
        assert_eq!(worker.step(Input::Start, at(0, 0)), (Action::Acquire, vec![]));
        let answer = service.acquire(WorkerId(1), 0);
        let (action, notes) = worker.step(Input::Service(answer), at(0, 0));
        assert_eq!(action, Action::Read);
        let acquired = Note::Acquired { token: Token(33), expires_ns: 1000 * MS, ttl_ns: 1000 * MS };
        assert_eq!(notes, [acquired, Note::Checked { token: Token(33), valid: true }]);
        (worker, service)
    }

    /// Reads `value`, works, writes; returns the write.
    fn read_work_write(worker: &mut Worker, value: u64, from_ms: i64) -> Action {
        assert_eq!(worker.step(Input::Value(value), at(from_ms, from_ms)).0, Action::Sleep(50 * MS));
        let write = worker.step(Input::Woke, at(from_ms + 50, from_ms + 50)).0;
        assert_eq!(
            worker.step(Input::Written(WriteOutcome::Ok), at(from_ms + 51, from_ms + 51)).0,
            Action::Sleep(100 * MS)
        );
        write
    }

    #[test]
    fn a_round_writes_the_value_plus_one_and_renews_only_when_little_is_left() {
        let (mut worker, _) = granted(Guard::Fenced);
        let write = read_work_write(&mut worker, 41, 1);
        assert_eq!(
            write,
            Action::Write { value: 42, fence: Some(Token(33)) },
            "fenced: the token goes along"
        );
        // 848 ms left: no renewal yet, straight to the check and the read.
        assert_eq!(worker.step(Input::Woke, at(152, 152)).0, Action::Read);
        read_work_write(&mut worker, 42, 153);
        // At 600 ms less than 500 ms is left: renew first.
        assert_eq!(worker.step(Input::Woke, at(600, 600)).0, Action::Renew(Token(33)));
    }

    #[test]
    fn a_pause_after_the_check_writes_on_a_lease_long_gone_and_learns_only_on_renewing() {
        for guard in Guard::ALL {
            let (mut worker, mut service) = granted(guard);
            assert_eq!(worker.step(Input::Value(7), at(1, 1)).0, Action::Sleep(50 * MS));
            // Paused for 5 s during the work: another worker takes the lock.
            assert!(matches!(service.acquire(WorkerId(2), 2000 * MS), Answer::Granted { .. }));
            let (write, _) = worker.step(Input::Woke, at(5051, 5051));
            assert!(matches!(write, Action::Write { value: 8, .. }), "{guard}: it writes anyway");
            worker.step(Input::Written(WriteOutcome::Ok), at(5052, 5052));
            // The next round: far too little left, so it renews, and learns.
            assert_eq!(worker.step(Input::Woke, at(5152, 5152)).0, Action::Renew(Token(33)), "{guard}");
            let renewal = service.renew(WorkerId(1), Token(33), 5152 * MS);
            let (action, notes) = worker.step(Input::Service(renewal), at(5152, 5152));
            assert_eq!((action, notes), (Action::Acquire, vec![Note::Lost { token: Token(33) }]), "{guard}");
        }
    }

    #[test]
    fn a_clock_stepped_back_fools_the_wall_clock_guard_into_acting_on_a_lease_gone_by() {
        for (guard, acts) in [(Guard::WallClock, true), (Guard::Monotonic, false)] {
            let (mut worker, _) = granted(guard);
            read_work_write(&mut worker, 0, 1);
            // 1.2 s later the lease is over at the service; the worker's
            // time of day was stepped back 2 s meanwhile, so by it 1.8 s is
            // left: no renewal, and the check passes.
            let (action, notes) = worker.step(Input::Woke, at(1200 - 2000, 1200));
            if acts {
                assert_eq!(action, Action::Read, "{guard}");
                assert_eq!(notes, [Note::Checked { token: Token(33), valid: true }], "{guard}");
            } else {
                assert_eq!(
                    (action, notes),
                    (Action::Renew(Token(33)), vec![]),
                    "{guard}: it renews, and will learn"
                );
            }
        }
    }

    #[test]
    fn a_held_lock_is_asked_for_again_after_the_retry() {
        let mut service = LockService::new(1000 * MS, Token(1));
        service.acquire(WorkerId(2), 0);
        let mut worker = Worker::new(WorkerId(1), Guard::Monotonic, TIMING);
        worker.step(Input::Start, at(0, 0));
        let answer = service.acquire(WorkerId(1), 10 * MS);
        assert_eq!(worker.step(Input::Service(answer), at(10, 10)), (Action::Sleep(100 * MS), vec![]));
        assert_eq!(worker.step(Input::Woke, at(110, 110)), (Action::Acquire, vec![]));
        assert_eq!(worker.token(), None);
    }

    /// A time-of-day clock far ahead finds every fresh grant already
    /// expired: the worker waits before it asks again, rather than asking
    /// the service again and again at once.
    #[test]
    fn a_grant_that_is_not_valid_is_asked_for_again_only_after_the_retry() {
        let mut service = LockService::new(1000 * MS, Token(33));
        let mut worker = Worker::new(WorkerId(1), Guard::WallClock, TIMING);
        worker.step(Input::Start, at(2000, 0));
        let answer = service.acquire(WorkerId(1), 0);
        let (action, notes) = worker.step(Input::Service(answer), at(2000, 0));
        assert_eq!(action, Action::Sleep(100 * MS));
        assert_eq!(notes.last(), Some(&Note::Checked { token: Token(33), valid: false }));
        assert_eq!(worker.token(), None, "it no longer believes");
        assert_eq!(worker.step(Input::Woke, at(2100, 100)), (Action::Acquire, vec![]));
    }
}
