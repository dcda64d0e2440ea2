//! A story's verdict: what its last line says each strategy did, checked
//! against what the live oracle found.
//!
//! A preset's last step ends with a line for the teacher to say, such as
//! "lww-wall dropped B's write: a causality violation". A line can be
//! wrong (a story written for three last-write-wins strategies, told with
//! four), so the step also states, per strategy, what the line claims, as
//! data: nothing dropped, or drops of a cause. Loading checks the line
//! against the claims (it names every strategy it says drops, and every
//! cause it claims), and after the step the lab checks the claims against
//! the oracle's drops, so a screen never says what did not happen.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::{Cause, DroppedWrite};

/// What a story says a strategy did: dropped nothing, or dropped writes
/// of one cause, or of any of several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Claim {
    One(ClaimWord),
    /// At least one drop, each of one of these causes.
    AnyOf(Vec<Cause>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimWord {
    /// No acknowledged write dropped.
    None,
    /// At least one drop, each a causality violation.
    Causality,
    /// At least one drop, each a real-time violation.
    Realtime,
    /// At least one drop, each a concurrent overwrite.
    Concurrent,
}

impl Claim {
    /// The causes the claim allows, and whether it says there are drops.
    fn causes(&self) -> Option<Vec<Cause>> {
        match self {
            Claim::One(ClaimWord::None) => None,
            Claim::One(ClaimWord::Causality) => Some(vec![Cause::Causality]),
            Claim::One(ClaimWord::Realtime) => Some(vec![Cause::Realtime]),
            Claim::One(ClaimWord::Concurrent) => Some(vec![Cause::Concurrent]),
            Claim::AnyOf(causes) => Some(causes.clone()),
        }
    }

    /// The claim in words: "drops nothing", "drops writes: causality violations".
    pub fn words(&self) -> String {
        match self.causes() {
            None => "drops nothing".into(),
            Some(causes) => format!(
                "drops writes, each a {}",
                causes.iter().map(|cause| cause.label()).collect::<Vec<_>>().join(" or a ")
            ),
        }
    }

    /// Whether `causes` (the causes of the drops the oracle found) bear it out.
    pub fn holds(&self, found: &[Cause]) -> bool {
        match self.causes() {
            None => found.is_empty(),
            Some(allowed) => !found.is_empty() && found.iter().all(|cause| allowed.contains(cause)),
        }
    }
}

/// One strategy: what the story said, what the oracle found, whether they agree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimCheck {
    pub bucket: String,
    pub claimed: String,
    pub found: String,
    pub holds: bool,
}

/// Checks a story's `verdict` against the drops the oracle found.
pub fn check_claims(verdict: &BTreeMap<String, Claim>, drops: &[DroppedWrite]) -> Vec<ClaimCheck> {
    verdict
        .iter()
        .map(|(bucket, claim)| {
            let found: Vec<Cause> =
                drops.iter().filter(|drop| &*drop.bucket == bucket).map(|drop| drop.cause).collect();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for cause in &found {
                *counts.entry(cause.label()).or_default() += 1;
            }
            let found_words = if found.is_empty() {
                "dropped nothing".to_string()
            } else {
                let parts: Vec<String> = counts
                    .iter()
                    .map(|(label, count)| format!("{count} {label}{}", if *count == 1 { "" } else { "s" }))
                    .collect();
                format!("dropped {}", parts.join(", "))
            };
            ClaimCheck {
                bucket: bucket.clone(),
                claimed: claim.words(),
                found: found_words,
                holds: claim.holds(&found),
            }
        })
        .collect()
}

/// A settle step's line against its verdict: the verdict names every
/// built-in strategy (the story commits to each), and the line names
/// every strategy the verdict says drops writes, and the name of each cause
/// it claims, so the line cannot say what the checked verdict does not.
pub(super) fn check_story(say: &str, verdict: &BTreeMap<String, Claim>) -> Result<(), String> {
    if verdict.is_empty() {
        return Ok(());
    }
    if let Some(missing) = crate::strategy::NAMES.iter().find(|name| !verdict.contains_key(**name)) {
        return Err(format!("the verdict says nothing of {missing}; a story's verdict names every strategy"));
    }
    let said = say.to_lowercase();
    for (bucket, claim) in verdict {
        let Some(causes) = claim.causes() else { continue };
        if !said.contains(bucket.as_str()) {
            return Err(format!(
                "the verdict says {bucket} {}, but the line does not name {bucket}",
                claim.words()
            ));
        }
        let word = |cause: &Cause| match cause {
            Cause::Causality => "causality",
            Cause::Realtime => "real-time",
            Cause::Concurrent => "concurrent",
        };
        if let Some(cause) = causes.iter().find(|cause| !said.contains(word(cause))) {
            return Err(format!(
                "the verdict claims {} drops, but the line never says \"{}\"",
                cause.label(),
                word(cause)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verdict naming every built-in strategy: `lww-wall` with `claim`,
    /// the others with "none".
    fn verdict(claim: &str) -> BTreeMap<String, Claim> {
        let mut table = String::new();
        for name in crate::strategy::NAMES {
            let claim = if name == "lww-wall" { claim } else { "\"none\"" };
            table.push_str(&format!("\"{name}\" = {claim}\n"));
        }
        toml::from_str(&table).expect("a verdict")
    }

    #[test]
    fn a_closing_line_that_says_more_than_its_verdict_is_refused() {
        assert!(
            check_story("lww-wall dropped it: a causality violation.", &verdict("\"causality\"")).is_ok()
        );
        let error = check_story("Something was dropped: a causality violation.", &verdict("\"causality\""))
            .unwrap_err();
        assert!(error.contains("does not name lww-wall"), "{error}");
        let error =
            check_story("lww-wall dropped it.", &verdict("[\"concurrent\", \"realtime\"]")).unwrap_err();
        assert!(error.contains("never says"), "{error}");
        let partial: BTreeMap<String, Claim> = toml::from_str("\"vv\" = \"none\"").unwrap();
        assert!(check_story("x", &partial).unwrap_err().contains("says nothing of lww-wall"));
        assert!(toml::from_str::<BTreeMap<String, Claim>>("\"vv\" = \"lost\"").is_err(), "an unknown claim");
    }

    #[test]
    fn a_claim_holds_only_when_the_oracle_found_what_it_says() {
        let none = Claim::One(ClaimWord::None);
        let causality = Claim::One(ClaimWord::Causality);
        let either = Claim::AnyOf(vec![Cause::Concurrent, Cause::Realtime]);
        assert!(none.holds(&[]) && !none.holds(&[Cause::Concurrent]));
        assert!(causality.holds(&[Cause::Causality, Cause::Causality]));
        assert!(!causality.holds(&[]), "a claim of drops needs one");
        assert!(!causality.holds(&[Cause::Causality, Cause::Concurrent]));
        assert!(either.holds(&[Cause::Concurrent]) && either.holds(&[Cause::Realtime, Cause::Concurrent]));
        assert_eq!(either.words(), "drops writes, each a concurrent overwrite or a real-time violation");
    }
}

/// What a lease story says a guard's workers came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseClaim {
    /// At least one acknowledged increment lost.
    Lost,
    /// At least one write refused by fencing, and no increment lost.
    Refused,
    /// No increment lost and nothing refused.
    Kept,
}

impl LeaseClaim {
    pub fn words(self) -> &'static str {
        match self {
            LeaseClaim::Lost => "loses an increment",
            LeaseClaim::Refused => "has a write refused by fencing, and loses nothing",
            LeaseClaim::Kept => "loses nothing, and nothing is refused",
        }
    }
}

/// Each guard's claim against what the lab's lease oracle found.
pub fn check_lease_claims(
    verdict: &BTreeMap<crate::lease::Guard, LeaseClaim>,
    found: &[super::lease::GuardView],
) -> Vec<ClaimCheck> {
    verdict
        .iter()
        .map(|(guard, claim)| {
            let view = found.iter().find(|view| view.guard == *guard);
            let (lost, refused) = view.map_or((0, 0), |view| (view.lost_updates, view.fenced));
            let holds = view.is_some()
                && match claim {
                    LeaseClaim::Lost => lost > 0,
                    LeaseClaim::Refused => refused > 0 && lost == 0,
                    LeaseClaim::Kept => lost == 0 && refused == 0,
                };
            ClaimCheck {
                bucket: guard.to_string(),
                claimed: claim.words().to_string(),
                found: match view {
                    Some(_) => format!("{lost} increment(s) lost, {refused} write(s) refused"),
                    None => "no such guard in the lab".to_string(),
                },
                holds,
            }
        })
        .collect()
}

/// Whether a lease story's line names every guard it makes a claim about.
pub fn check_lease_story(
    say: &str,
    verdict: &BTreeMap<crate::lease::Guard, LeaseClaim>,
) -> Result<(), String> {
    if verdict.is_empty() {
        return Err("a lease verdict names at least one guard".into());
    }
    match verdict.keys().find(|guard| !say.contains(guard.as_str())) {
        Some(guard) => Err(format!("the line claims something of {guard} without naming it")),
        None => Ok(()),
    }
}
