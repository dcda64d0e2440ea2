//! Last write wins: the rule every LWW strategy shares.
//!
//! Each write carries a stamp; of all writes to a key, the one with the
//! greatest stamp survives and the rest are discarded (DDIA chapter 5,
//! "Last write wins (discarding concurrent writes)"). Taking the maximum is
//! idempotent and commutative, so replicas converge whatever the delivery
//! order. Whether the survivor is the write a human would call "last"
//! depends entirely on the stamps: `lww-wall`, `lww-hlc`, `lww-lamport` and
//! `truetime` differ only in how they make them. Each says so by
//! implementing [`LwwStamps`]; the [`Strategy`] around it is written once,
//! here.
//!
//! Stamps end in the replica id, so two replicas never tie. A replica with a
//! coarse clock can give two of its own writes the same wall-clock stamp; the
//! one later in its log (greater `seq`) then wins, so the order stays total.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    Clocks, KeyState, Kind, RawJson, StampKind, Stamped, Strategy, StrategyError, Write, parse_stamp,
};
use crate::clock::Nanos;

/// How one last-write-wins strategy makes its stamps: all that sets it
/// apart from the others.
pub trait LwwStamps: Send + Sync {
    /// A stamp, compared as a whole; its last field is the replica's id.
    type Stamp: Ord + Serialize + DeserializeOwned;
    /// The strategy's name, as buckets and specs name it.
    const NAME: &'static str;
    /// What its stamps are made of, for the words that explain a drop.
    const STAMP_KIND: StampKind;

    /// A new write's stamp, given the stamp its client read (if any), and
    /// the reading of the replica's clock at which it may be acknowledged
    /// (`None`: as soon as it is durable).
    fn make(&self, read: Option<Self::Stamp>, clocks: &mut Clocks) -> (Self::Stamp, Option<Nanos>);

    /// Learns from a replicated write's stamp (a logical clock catches up).
    fn learn_from(&self, _stamp: &Self::Stamp, _clocks: &mut Clocks) {}

    /// Whether its writes wait for the clock before they are acknowledged.
    fn commit_waits(&self) -> bool {
        false
    }
}

impl<S: LwwStamps> Strategy for S {
    fn name(&self) -> &str {
        S::NAME
    }

    fn kind(&self) -> Kind {
        Kind::LastWriteWins
    }

    fn stamp_kind(&self) -> StampKind {
        S::STAMP_KIND
    }

    fn stamp(
        &self,
        _: &KeyState,
        client_context: &Value,
        clocks: &mut Clocks,
    ) -> Result<Stamped, StrategyError> {
        let read = parse_context::<S::Stamp>(client_context)?;
        let (stamp, acknowledge_at) = self.make(read, clocks);
        Ok(Stamped { stamp: RawJson::of(&stamp), context: RawJson::null(), acknowledge_at })
    }

    fn check(&self, write: &Write) -> Result<(), StrategyError> {
        parse_stamp::<S::Stamp>(&write.stamp).map(drop)
    }

    fn observe(&self, write: &Write, clocks: &mut Clocks) -> Result<(), StrategyError> {
        if let Ok(stamp) = parse_stamp::<S::Stamp>(&write.stamp) {
            self.learn_from(&stamp, clocks);
        }
        Ok(())
    }

    fn apply(&self, state: &mut KeyState, write: &Arc<Write>) -> Result<(), StrategyError> {
        apply_max::<S::Stamp>(state, write);
        Ok(())
    }

    fn read_context(&self, state: &KeyState) -> Result<Value, StrategyError> {
        Ok(read_context(state))
    }

    fn waits_for_clock(&self) -> bool {
        self.commit_waits()
    }
}

/// Keeps whichever of the current sibling and `write` has the greater
/// `(stamp, origin, seq)`. Stamps must have been checked by the caller.
pub fn apply_max<S: Ord + DeserializeOwned>(state: &mut KeyState, write: &Arc<Write>) {
    let order = |write: &Write| -> Result<(S, u32, u64), StrategyError> {
        Ok((parse_stamp::<S>(&write.stamp)?, write.origin, write.seq))
    };
    let Ok(incoming) = order(write) else { return };
    let wins = match state.siblings.first() {
        None => true,
        Some(current) => match order(current) {
            Ok(current) => incoming > current,
            Err(_) => true,
        },
    };
    if wins {
        state.siblings = vec![Arc::clone(write)];
    }
}

/// The context an LWW read returns: the surviving stamp, or `null`.
pub fn read_context(state: &KeyState) -> Value {
    state.siblings.first().map_or(Value::Null, |write| write.stamp.parse())
}

/// Checks a client context for an LWW bucket: `null` or a stamp of type `S`.
pub fn parse_context<S: DeserializeOwned>(context: &Value) -> Result<Option<S>, StrategyError> {
    if context.is_null() {
        return Ok(None);
    }
    S::deserialize(context)
        .map(Some)
        .map_err(|error| StrategyError::MalformedContext(format!("expected null or a stamp: {error}")))
}
