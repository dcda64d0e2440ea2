//! An experiment's question for a class, and how a run answers it.
//!
//! The dashboard's "predict, then reveal" asks the class to choose a
//! strategy before it shows anything of a run. What counts as the right
//! choice must be a fact of the run, computed the same way every time, and
//! about what the question asks: a question about siblings is graded on
//! siblings, not on drops. A spec says which fact with `answer`:
//!
//! ```toml
//! [quiz]
//! question = "Which strategy will silently drop the largest share of its acknowledged writes?"
//! answer = "most_dropped"
//! ```
//!
//! The grading itself (with its rule for ties) is
//! `dashboard::quiz`'s; here is only what a spec can say.

use serde::{Deserialize, Serialize};

/// What the class is asked, and which fact of a run answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case", deny_unknown_fields)]
pub enum QuizSpec {
    /// The strategy that drops the largest share of its acknowledged
    /// writes, at its worst sweep point.
    MostDropped { question: String },
    /// A strategy that drops no acknowledged write anywhere in the run.
    DropsNone { question: String },
    /// The strategy whose reads hand back the most siblings at once.
    MostSiblings { question: String },
    /// A strategy that loses no write to a clock (no causality or
    /// real-time violation) at any sweep value of `from` or more.
    NoClockDrops { question: String, from: f64 },
    /// In a lease run, where the choices are guards, not strategies: the
    /// guard that lost the fewest increments over the whole run.
    FewestLost { question: String },
}

impl QuizSpec {
    /// Whether it asks about a lease run's guards.
    pub fn is_about_leases(&self) -> bool {
        matches!(self, QuizSpec::FewestLost { .. })
    }

    pub fn question(&self) -> &str {
        match self {
            QuizSpec::MostDropped { question }
            | QuizSpec::DropsNone { question }
            | QuizSpec::MostSiblings { question }
            | QuizSpec::NoClockDrops { question, .. }
            | QuizSpec::FewestLost { question } => question,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiz_names_its_fact_and_a_field_another_fact_needs_is_refused() {
        let quiz: QuizSpec =
            toml::from_str("question = 'Which?'\nanswer = 'no_clock_drops'\nfrom = 50").unwrap();
        assert_eq!(quiz, QuizSpec::NoClockDrops { question: "Which?".into(), from: 50.0 });
        assert!(
            toml::from_str::<QuizSpec>("question = 'Which?'\nanswer = 'most_dropped'\nfrom = 50").is_err()
        );
        assert!(toml::from_str::<QuizSpec>("question = 'Which?'\nanswer = 'fastest'").is_err());
        assert!(toml::from_str::<QuizSpec>("question = 'Which?'\nanswer = 'no_clock_drops'").is_err());
    }
}
