//! The network's own faults: what `[network]` in a spec sets on every
//! replication link for a whole trial (delay, loss, duplication,
//! reordering), as opposed to a `[[fault]]`, which comes and goes.

use serde::{Deserialize, Serialize};

/// Faults on every replication link for the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    /// Replication delay, ms: `[min, max]`, uniform.
    #[serde(deserialize_with = "delay_range")]
    pub delay_ms: [f64; 2],
    /// Probability that a replication message is lost.
    pub loss: f64,
    /// Probability that a replication message is delivered twice.
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicate: f64,
    /// Probability that a replication message's writes arrive in reverse order.
    #[serde(skip_serializing_if = "is_zero")]
    pub reorder: f64,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self { delay_ms: [0.0, 0.0], loss: 0.0, duplicate: 0.0, reorder: 0.0 }
    }
}

impl NetworkSpec {
    /// Whether the links need any fault set at all.
    pub fn is_faulty(&self) -> bool {
        self.delay_ms != [0.0, 0.0] || self.loss > 0.0 || self.duplicate > 0.0 || self.reorder > 0.0
    }
}

/// Accepts `5` or `[1, 5]`.
fn delay_range<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<[f64; 2], D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Delay {
        Fixed(f64),
        Range([f64; 2]),
    }
    Ok(match Delay::deserialize(deserializer)? {
        Delay::Fixed(ms) => [ms, ms],
        Delay::Range(range) => range,
    })
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}
