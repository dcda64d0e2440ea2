//! Network faults between a replica and each of its peers.
//!
//! Everything a replica sends to or accepts from a peer goes through that
//! peer's [`LinkSettings`], so the lab can break the network as DDIA chapter
//! 8 ("Unreliable Networks") describes, one link at a time:
//!
//! - `cut`: no traffic in the given direction. `"both"` is a partition;
//!   `"out"` or `"in"` alone is a one-way cut, the kind a misconfigured
//!   firewall makes.
//! - `delay_ms`: `[MIN, MAX]`, each message to the peer waits a uniform
//!   random time in that range (a single number is a fixed delay).
//! - `loss`: each message to the peer is lost with this probability.
//! - `duplicate`: each message to the peer is sent twice with this
//!   probability, the copy after the original's answer.
//! - `reorder`: with this probability a message's writes go out in reverse
//!   order, so the peer receives later writes before earlier ones.
//!
//! "At least once, in any order" is what replication must survive; these
//! two make it happen on purpose. Delay, loss, duplication and reordering
//! act on what this replica *sends*; a cut acts on both
//! directions as named. Set both ends for a symmetric fault.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::clock::dots::ReplicaId;

/// The longest delay a link accepts, in ms (one hour).
pub const MAX_DELAY_MS: f64 = 3_600_000.0;

/// Which directions of a link are cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cut {
    #[default]
    None,
    Both,
    /// This replica accepts nothing from the peer.
    In,
    /// This replica sends nothing to the peer.
    Out,
}

/// A delay: one number, or a `[MIN, MAX]` range, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DelaySpec {
    Fixed(f64),
    Range([f64; 2]),
}

/// The faults on one link, as `GET /admin/status` and `PUT /admin/links` show them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkSettings {
    pub cut: Cut,
    pub delay_ms: [f64; 2],
    pub loss: f64,
    #[serde(default)]
    pub duplicate: f64,
    #[serde(default)]
    pub reorder: f64,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self { cut: Cut::None, delay_ms: [0.0, 0.0], loss: 0.0, duplicate: 0.0, reorder: 0.0 }
    }
}

impl LinkSettings {
    pub fn sends(&self) -> bool {
        matches!(self.cut, Cut::None | Cut::In)
    }

    pub fn accepts(&self) -> bool {
        matches!(self.cut, Cut::None | Cut::Out)
    }

    /// Draws one message's delay.
    pub fn sample_delay(&self, rng: &mut impl rand::Rng) -> Duration {
        let [min, max] = self.delay_ms;
        let ms = if max > min { rng.random_range(min..=max) } else { min };
        Duration::from_secs_f64(ms / 1000.0)
    }

    /// Draws whether one message is lost.
    pub fn sample_loss(&self, rng: &mut impl rand::Rng) -> bool {
        self.loss > 0.0 && rng.random_bool(self.loss)
    }

    /// Draws whether one message is sent twice.
    pub fn sample_duplicate(&self, rng: &mut impl rand::Rng) -> bool {
        self.duplicate > 0.0 && rng.random_bool(self.duplicate)
    }

    /// Draws whether one message's writes go out in reverse order.
    pub fn sample_reorder(&self, rng: &mut impl rand::Rng) -> bool {
        self.reorder > 0.0 && rng.random_bool(self.reorder)
    }
}

/// `PUT /admin/links`: fields left out keep their value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkUpdate {
    pub peer: ReplicaId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<Cut>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<DelaySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
}

impl LinkUpdate {
    /// Only a cut (or, with [`Cut::None`], a heal) of the link to `peer`.
    pub fn cut(peer: ReplicaId, cut: Cut) -> Self {
        Self { peer, cut: Some(cut), delay_ms: None, loss: None, duplicate: None, reorder: None }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkError {
    #[error("replica {0} is not a peer of this replica")]
    UnknownPeer(ReplicaId),
    #[error("delay_ms must be MS or [MIN, MAX] with 0 <= MIN <= MAX <= {MAX_DELAY_MS}")]
    BadDelay,
    #[error("loss must be a probability between 0 and 1")]
    BadLoss,
    #[error("duplicate and reorder must be probabilities between 0 and 1")]
    BadProbability,
}

/// The links to every peer.
#[derive(Debug, Default)]
pub struct Links {
    peers: Mutex<HashMap<ReplicaId, LinkSettings>>,
}

impl Links {
    pub fn new(peers: impl IntoIterator<Item = ReplicaId>) -> Self {
        let peers = peers.into_iter().map(|peer| (peer, LinkSettings::default())).collect();
        Self { peers: Mutex::new(peers) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ReplicaId, LinkSettings>> {
        // The map is always consistent, so a panic elsewhere cannot poison it
        // into something unusable.
        self.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The settings of the link to `peer` (defaults for an unknown peer).
    pub fn get(&self, peer: ReplicaId) -> LinkSettings {
        self.lock().get(&peer).copied().unwrap_or_default()
    }

    /// Every link, by peer.
    pub fn all(&self) -> HashMap<ReplicaId, LinkSettings> {
        self.lock().clone()
    }

    /// Applies an update whole, or refuses it whole.
    pub fn update(&self, update: &LinkUpdate) -> Result<LinkSettings, LinkError> {
        let delay = match update.delay_ms {
            None => None,
            Some(DelaySpec::Fixed(ms)) => Some([ms, ms]),
            Some(DelaySpec::Range(range)) => Some(range),
        };
        if let Some([min, max]) = delay
            && !(min.is_finite() && max.is_finite() && 0.0 <= min && min <= max && max <= MAX_DELAY_MS)
        {
            return Err(LinkError::BadDelay);
        }
        if let Some(loss) = update.loss
            && !(0.0..=1.0).contains(&loss)
        {
            return Err(LinkError::BadLoss);
        }
        if [update.duplicate, update.reorder].into_iter().flatten().any(|p| !(0.0..=1.0).contains(&p)) {
            return Err(LinkError::BadProbability);
        }
        let mut peers = self.lock();
        let link = peers.get_mut(&update.peer).ok_or(LinkError::UnknownPeer(update.peer))?;
        if let Some(cut) = update.cut {
            link.cut = cut;
        }
        if let Some(delay) = delay {
            link.delay_ms = delay;
        }
        if let Some(duplicate) = update.duplicate {
            link.duplicate = duplicate;
        }
        if let Some(reorder) = update.reorder {
            link.reorder = reorder;
        }
        if let Some(loss) = update.loss {
            link.loss = loss;
        }
        Ok(*link)
    }
}
