//! Last write wins: the rule both LWW strategies share.
//!
//! Each write carries a stamp; of all writes to a key, the one with the
//! greatest stamp survives and the rest are discarded (DDIA chapter 5,
//! "Last write wins (discarding concurrent writes)"). Taking the maximum is
//! idempotent and commutative, so replicas converge whatever the delivery
//! order. Whether the survivor is the write a human would call "last"
//! depends entirely on the stamps: `lww-wall` and `lww-hlc` differ only in
//! how they make them.
//!
//! Stamps end in the replica id, so two replicas never tie. A replica with a
//! coarse clock can give two of its own writes the same wall-clock stamp; the
//! one later in its log (greater `seq`) then wins, so the order stays total.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{KeyState, StrategyError, Write, parse_stamp};

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
