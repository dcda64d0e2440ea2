//! Predict, then reveal: a class chooses a strategy, and a run says whether
//! the choice was right.
//!
//! An experiment's spec states its question and the fact of a run that
//! answers it (`experiment::quiz`). Grading computes that fact for every
//! strategy from the run's summary rows alone, and accepts every strategy
//! that has it:
//!
//! - **most dropped**: each strategy's drop rate at its worst sweep point
//!   (dropped over acknowledged writes, over the point's trials). The
//!   strategy with the highest is right, and so is any other whose rate
//!   this run cannot tell apart from it: the same rule that decides
//!   whether two runs agree (`analysis::compare`), within 2 percentage
//!   points or three standard errors of the difference. A class is never
//!   marked wrong on noise: 24.1% against 24.3% is a tie.
//! - **drops none**: every strategy that dropped no acknowledged write in
//!   the whole run is right (a count, not an estimate: no tie rule).
//! - **most siblings**: the most siblings one read or final state held;
//!   the largest is right, and so is any within a tenth of it.
//! - **no clock drops**: every strategy with no causality and no real-time
//!   violation at the sweep values the question names is right.
//!
//! Which run answers is the teacher's to say; by default the experiment's
//! reference run, the one the README quotes (see `dashboard::quiz`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::SummaryRow;
use crate::analysis::compare::{AGREEMENT_ERRORS, AGREEMENT_FLOOR, Rate, rate_of};
use crate::analysis::lease::LeaseRow;
use crate::dashboard::words::row_words;
use crate::experiment::quiz::QuizSpec;
use crate::experiment::spec::shown_number;
use crate::lease::Guard;

/// Counts of siblings this close to the most (a fraction of it) tie with it.
pub const SIBLINGS_TIE: f64 = 0.1;

/// One strategy's graded fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    pub strategy: String,
    /// The fact in words, as a sentence goes on after the strategy's name:
    /// "dropped 51.5% of its acknowledged writes with clocks 1,000 ms apart".
    pub words: String,
}

/// How a run answers a quiz.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grading {
    /// The strategies that are a right answer, in the run's order.
    pub accepted: Vec<String>,
    /// Every strategy's fact, in the run's order.
    pub facts: Vec<Fact>,
}

/// The verdict on one choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub choice: String,
    pub correct: bool,
    pub accepted: Vec<String>,
    /// What to say: whether the choice is right, and the facts that make it so.
    pub sentence: String,
    pub facts: Vec<Fact>,
}

/// The strategies of a run: the built-ins in the registry's order, then any
/// other (plugins) in the order its rows name them.
pub fn strategies(rows: &[SummaryRow]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for row in rows {
        if !names.contains(&row.strategy) {
            names.push(row.strategy.clone());
        }
    }
    let place = |name: &String| {
        crate::strategy::NAMES.iter().position(|builtin| builtin == name).unwrap_or(usize::MAX)
    };
    names.sort_by_key(place);
    names
}

/// Per strategy, per sweep point: its rows.
fn points_of<'a>(rows: &'a [SummaryRow], strategy: &str) -> Vec<Vec<&'a SummaryRow>> {
    let mut points: BTreeMap<usize, Vec<&SummaryRow>> = BTreeMap::new();
    for row in rows.iter().filter(|row| row.strategy == strategy) {
        points.entry(row.point).or_default().push(row);
    }
    points.into_values().collect()
}

/// A strategy's worst sweep point: its drop rate there, and one of its rows.
fn worst_point<'a>(rows: &'a [SummaryRow], strategy: &str) -> Option<(Rate, &'a SummaryRow)> {
    points_of(rows, strategy)
        .into_iter()
        .map(|point| (rate_of(&point), point[0]))
        .max_by(|a, b| a.0.rate.total_cmp(&b.0.rate))
}

/// A strategy's drops over a whole run.
struct Totals<'a> {
    name: String,
    acked: usize,
    dropped: usize,
    worst: Option<(Rate, &'a SummaryRow)>,
}

/// Whether two drop rates are closer than a run can tell apart.
fn tied(a: &Rate, b: &Rate) -> bool {
    let error = (a.standard_error.powi(2) + b.standard_error.powi(2)).sqrt();
    (a.rate - b.rate).abs() <= AGREEMENT_FLOOR.max(AGREEMENT_ERRORS * error)
}

/// Grades `rows` (one run's summary) by `quiz`.
pub fn grade(quiz: &QuizSpec, rows: &[SummaryRow]) -> Grading {
    let names = strategies(rows);
    match quiz {
        QuizSpec::MostDropped { .. } => {
            // Each strategy's worst point: its rate there, and the point.
            let worst: Vec<(String, Rate, &SummaryRow)> = names
                .iter()
                .filter_map(|name| worst_point(rows, name).map(|(rate, row)| (name.clone(), rate, row)))
                .collect();
            let leader = worst.iter().max_by(|a, b| a.1.rate.total_cmp(&b.1.rate)).map(|(_, rate, _)| *rate);
            let accepted = worst
                .iter()
                .filter(|(_, rate, _)| leader.is_some_and(|leader| rate.acked > 0 && tied(rate, &leader)))
                .map(|(name, _, _)| name.clone())
                .collect();
            let facts = worst
                .iter()
                .map(|(name, rate, row)| Fact {
                    strategy: name.clone(),
                    words: if rate.rate == 0.0 {
                        "dropped none of its acknowledged writes anywhere".into()
                    } else {
                        format!(
                            "dropped {:.1}% of its acknowledged writes at worst, {}",
                            100.0 * rate.rate,
                            row_words(row)
                        )
                    },
                })
                .collect();
            Grading { accepted, facts }
        }
        QuizSpec::DropsNone { .. } => {
            // Each strategy's drops over the run, and its worst point's share.
            let totals: Vec<Totals> = names
                .iter()
                .map(|name| {
                    let mine = rows.iter().filter(|row| &row.strategy == name);
                    let (acked, dropped) =
                        mine.fold((0, 0), |(acked, dropped), row| (acked + row.acked, dropped + row.dropped));
                    Totals { name: name.clone(), acked, dropped, worst: worst_point(rows, name) }
                })
                .collect();
            Grading {
                accepted: totals
                    .iter()
                    .filter(|totals| totals.acked > 0 && totals.dropped == 0)
                    .map(|totals| totals.name.clone())
                    .collect(),
                facts: totals
                    .iter()
                    .map(|totals| Fact {
                        strategy: totals.name.clone(),
                        words: if totals.dropped == 0 {
                            format!(
                                "dropped none of its {} acknowledged writes",
                                shown_number(totals.acked as f64)
                            )
                        } else {
                            let at = totals.worst.as_ref().map_or_else(String::new, |(rate, row)| {
                                format!(", up to {:.1}% {}", 100.0 * rate.rate, row_words(row))
                            });
                            format!(
                                "dropped {} of its {} acknowledged writes over the run{at}",
                                shown_number(totals.dropped as f64),
                                shown_number(totals.acked as f64),
                            )
                        },
                    })
                    .collect(),
            }
        }
        QuizSpec::MostSiblings { .. } => {
            let most: Vec<(String, usize)> = names
                .iter()
                .map(|name| {
                    let most =
                        rows.iter().filter(|row| &row.strategy == name).map(|row| row.max_siblings).max();
                    (name.clone(), most.unwrap_or(0))
                })
                .collect();
            let top = most.iter().map(|(_, count)| *count).max().unwrap_or(0);
            let close =
                |count: usize| top > 1 && (top - count) as f64 <= (top as f64 * SIBLINGS_TIE).max(1.0);
            Grading {
                accepted: most
                    .iter()
                    .filter(|(_, count)| close(*count))
                    .map(|(name, _)| name.clone())
                    .collect(),
                facts: most
                    .iter()
                    .map(|(name, count)| Fact {
                        strategy: name.clone(),
                        words: if *count <= 1 {
                            "never handed back more than one value".into()
                        } else {
                            format!("handed back up to {count} siblings at once")
                        },
                    })
                    .collect(),
            }
        }
        // A lease quiz on a run with no lease verdicts: nothing is an answer.
        QuizSpec::FewestLost { .. } => Grading { accepted: Vec::new(), facts: Vec::new() },
        QuizSpec::NoClockDrops { from, .. } => {
            // Per strategy, at the values asked about: drops a clock caused,
            // and drops no clock could have prevented.
            let counted: Vec<(String, usize, usize, Option<&SummaryRow>)> = names
                .iter()
                .map(|name| {
                    let there: Vec<&SummaryRow> =
                        rows.iter().filter(|row| &row.strategy == name && row.value >= *from).collect();
                    let lost = there.iter().map(|row| row.dropped_causality + row.dropped_realtime).sum();
                    let concurrent = there.iter().map(|row| row.dropped_concurrent).sum();
                    (name.clone(), lost, concurrent, there.first().copied())
                })
                .collect();
            let from_words = counted
                .iter()
                .find_map(|(.., row)| *row)
                .map(|row| {
                    let mut first = row.clone();
                    first.value = *from;
                    format!("{} or more", row_words(&first))
                })
                .unwrap_or_default();
            let concurrent_words = |concurrent: usize| {
                if concurrent == 0 {
                    String::new()
                } else {
                    format!(
                        "; the {} writes it did drop there were concurrent overwrites, which no clock could have saved",
                        shown_number(concurrent as f64)
                    )
                }
            };
            Grading {
                accepted: counted
                    .iter()
                    .filter(|(_, lost, _, row)| row.is_some() && *lost == 0)
                    .map(|(name, ..)| name.clone())
                    .collect(),
                facts: counted
                    .iter()
                    .map(|(name, lost, concurrent, _)| Fact {
                        strategy: name.clone(),
                        words: if *lost == 0 {
                            format!("lost no write to a clock {from_words}{}", concurrent_words(*concurrent))
                        } else {
                            format!(
                                "lost {} writes to a clock {from_words} (causality or real-time violations)",
                                shown_number(*lost as f64)
                            )
                        },
                    })
                    .collect(),
            }
        }
    }
}

/// `names` as a sentence lists them: "a", "a and b", "a, b and c".
fn listed(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Grades a lease run's verdict rows: the guards that lost the fewest
/// increments (a count: no tie rule) are right.
pub fn grade_lease(rows: &[LeaseRow]) -> Grading {
    let mut guards: Vec<Guard> = rows.iter().filter_map(|row| row.guard).collect();
    guards.sort();
    guards.dedup();
    let lost = |guard: Guard| -> (u64, u64, u64) {
        rows.iter().filter(|row| row.guard == Some(guard)).fold((0, 0, 0), |(lost, stale, fenced), row| {
            (lost + row.lost_updates, stale + row.stale_acked, fenced + row.fenced)
        })
    };
    let fewest = guards.iter().map(|&guard| lost(guard).0).min();
    let plural =
        |count: u64, one: &str, many: &str| format!("{count} {}", if count == 1 { one } else { many });
    Grading {
        accepted: guards
            .iter()
            .filter(|&&guard| Some(lost(guard).0) == fewest)
            .map(|guard| guard.to_string())
            .collect(),
        facts: guards
            .iter()
            .map(|&guard| {
                let (lost, stale, fenced) = lost(guard);
                let lost_words = match lost {
                    0 => "lost no increment".to_string(),
                    lost => format!("lost {} over the run", plural(lost, "increment", "increments")),
                };
                let how = match (stale, fenced) {
                    (0, 0) => String::new(),
                    (stale, 0) => format!(
                        " (it let {} from an expired lease through)",
                        plural(stale, "write", "writes")
                    ),
                    (0, fenced) => {
                        format!(" (fencing refused {})", plural(fenced, "stale write", "stale writes"))
                    }
                    (stale, fenced) => format!(
                        " (it let {} from an expired lease through; fencing refused {})",
                        plural(stale, "write", "writes"),
                        fenced
                    ),
                };
                Fact { strategy: guard.to_string(), words: format!("{lost_words}{how}") }
            })
            .collect(),
    }
}

/// The verdict on `choice` in a run graded as `grading`; `None` if the run
/// has no such strategy (or guard).
pub fn verdict(quiz: &QuizSpec, grading: Grading, choice: &str) -> Option<Verdict> {
    let fact =
        |name: &str| grading.facts.iter().find(|fact| fact.strategy == name).map(|fact| fact.words.clone());
    let chosen = fact(choice)?;
    let correct = grading.accepted.iter().any(|name| name == choice);
    let others: Vec<&str> =
        grading.accepted.iter().map(String::as_str).filter(|name| *name != choice).collect();
    let sentence = match (correct, quiz) {
        (true, QuizSpec::MostDropped { .. } | QuizSpec::MostSiblings { .. }) if !others.is_empty() => {
            format!(
                "Yes: {choice} {chosen}. {}: too close to tell apart in this run, so either answer is right.",
                others
                    .iter()
                    .map(|name| format!("{name} {}", fact(name).unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
        (true, _) if !others.is_empty() => {
            format!("Yes: {choice} {chosen}. So did {}.", listed(&others))
        }
        (true, _) => format!("Yes: {choice} {chosen}."),
        (false, _) if grading.accepted.is_empty() => {
            format!("No strategy of this run is an answer: {choice} {chosen}.")
        }
        (false, _) => format!(
            "Not {choice}: it {chosen}. {}.",
            grading
                .accepted
                .iter()
                .map(|name| format!("{name} {}", fact(name).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    Some(Verdict {
        choice: choice.to_string(),
        correct,
        accepted: grading.accepted,
        sentence,
        facts: grading.facts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        point: usize,
        trial: usize,
        value: f64,
        strategy: &str,
        acked: usize,
        dropped: usize,
    ) -> SummaryRow {
        SummaryRow {
            point,
            trial,
            parameter: "skew_ms".into(),
            value,
            strategy: strategy.into(),
            acked,
            dropped,
            ..SummaryRow::default()
        }
    }

    fn most_dropped() -> QuizSpec {
        QuizSpec::MostDropped { question: "Which drops most?".into() }
    }

    #[test]
    fn the_strategy_that_drops_most_is_right_and_the_sentence_says_where() {
        let rows = [
            row(0, 0, 0.0, "lww-wall", 1000, 65),
            row(1, 0, 1000.0, "lww-wall", 1000, 515),
            row(0, 0, 0.0, "lww-hlc", 1000, 60),
            row(1, 0, 1000.0, "lww-hlc", 1000, 73),
            row(0, 0, 0.0, "vv", 1000, 0),
            row(1, 0, 1000.0, "vv", 1000, 0),
        ];
        let right = verdict(&most_dropped(), grade(&most_dropped(), &rows), "lww-wall").unwrap();
        assert!(right.correct);
        assert_eq!(right.accepted, ["lww-wall"]);
        assert_eq!(
            right.sentence,
            "Yes: lww-wall dropped 51.5% of its acknowledged writes at worst, with clocks 1,000 ms apart."
        );
        let wrong = verdict(&most_dropped(), grade(&most_dropped(), &rows), "vv").unwrap();
        assert!(!wrong.correct);
        assert!(wrong.sentence.starts_with("Not vv: it dropped none"), "{}", wrong.sentence);
        assert!(verdict(&most_dropped(), grade(&most_dropped(), &rows), "nobody").is_none());
    }

    #[test]
    fn two_rates_this_run_cannot_tell_apart_are_a_tie_that_accepts_either() {
        // partition's reference run: 24.1% against 24.3% of about 1,200 writes.
        let rows = [
            row(0, 0, 500.0, "lww-wall", 1212, 292),
            row(0, 0, 500.0, "lww-hlc", 1210, 294),
            row(0, 0, 500.0, "vv", 1210, 0),
        ];
        let grading = grade(&most_dropped(), &rows);
        assert_eq!(grading.accepted, ["lww-wall", "lww-hlc"]);
        let verdict = verdict(&most_dropped(), grade(&most_dropped(), &rows), "lww-wall").unwrap();
        assert!(
            verdict.correct && verdict.sentence.contains("too close to tell apart"),
            "{}",
            verdict.sentence
        );
        // Several trials: the spread between them sets the error. Two
        // strategies 5 points apart, with trials that scatter by 10, tie;
        // with trials that agree, they do not.
        let scattered = [
            row(0, 0, 0.0, "a", 1000, 100),
            row(0, 1, 0.0, "a", 1000, 300),
            row(0, 0, 0.0, "b", 1000, 150),
            row(0, 1, 0.0, "b", 1000, 350),
        ];
        assert_eq!(grade(&most_dropped(), &scattered).accepted, ["a", "b"]);
        let steady = [
            row(0, 0, 0.0, "a", 10000, 2000),
            row(0, 1, 0.0, "a", 10000, 2010),
            row(0, 0, 0.0, "b", 10000, 2500),
            row(0, 1, 0.0, "b", 10000, 2510),
        ];
        assert_eq!(grade(&most_dropped(), &steady).accepted, ["b"]);
    }

    #[test]
    fn a_question_about_siblings_is_graded_on_siblings_not_on_drops() {
        let quiz = QuizSpec::MostSiblings { question: "Which hands back the most siblings?".into() };
        let sibling = |strategy: &str, most: usize| SummaryRow {
            max_siblings: most,
            ..row(0, 0, 1.0, strategy, 500, 0)
        };
        let rows = [sibling("vv", 6), sibling("vv-server", 120)];
        let right = verdict(&quiz, grade(&quiz, &rows), "vv-server").unwrap();
        assert!(right.correct, "{}", right.sentence);
        assert_eq!(right.sentence, "Yes: vv-server handed back up to 120 siblings at once.");
        assert!(
            !verdict(&quiz, grade(&quiz, &rows), "vv").unwrap().correct,
            "both drop nothing: drops do not decide"
        );
        // Within a tenth of the most is a tie.
        assert_eq!(
            grade(&quiz, &[sibling("vv", 110), sibling("vv-server", 120)]).accepted,
            ["vv", "vv-server"]
        );
    }

    #[test]
    fn drops_none_accepts_every_strategy_that_dropped_nothing_and_clock_drops_count_only_where_asked() {
        let quiz = QuizSpec::DropsNone { question: "Which loses nothing?".into() };
        let rows = [
            row(0, 0, 0.0, "lww-wall", 100, 3),
            row(0, 0, 0.0, "vv", 100, 0),
            row(0, 0, 0.0, "set-union", 100, 0),
        ];
        assert_eq!(grade(&quiz, &rows).accepted, ["vv", "set-union"]);
        assert_eq!(
            verdict(&quiz, grade(&quiz, &rows), "vv").unwrap().sentence,
            "Yes: vv dropped none of its 100 acknowledged writes. So did set-union."
        );
        let quiz = QuizSpec::NoClockDrops { question: "Which loses none to a clock?".into(), from: 50.0 };
        let clocked = |point: usize, value: f64, strategy: &str, causality: usize| SummaryRow {
            parameter: "epsilon_ms".into(),
            dropped_causality: causality,
            dropped: causality + 10,
            ..row(point, 0, value, strategy, 1000, 0)
        };
        let rows = [
            clocked(0, 0.0, "truetime", 98),
            clocked(1, 50.0, "truetime", 0),
            clocked(0, 0.0, "lww-wall", 98),
            clocked(1, 50.0, "lww-wall", 95),
        ];
        let verdict = verdict(&quiz, grade(&quiz, &rows), "truetime").unwrap();
        assert_eq!(verdict.accepted, ["truetime"], "its drops at epsilon 0 are not asked about");
        assert_eq!(verdict.sentence, "Yes: truetime lost no write to a clock with epsilon 50 ms or more.");
    }
}

#[cfg(test)]
mod lease_tests {
    use super::*;

    fn row(point: usize, guard: Guard, stale_acked: u64, fenced: u64, lost_updates: u64) -> LeaseRow {
        LeaseRow {
            point,
            guard: Some(guard),
            trials: 1,
            stale_acked,
            fenced,
            lost_updates,
            ..LeaseRow::default()
        }
    }

    #[test]
    fn the_guard_that_lost_fewest_increments_is_right_and_ties_all_are() {
        let quiz = QuizSpec::FewestLost { question: "Which?".into() };
        let rows = [
            row(0, Guard::WallClock, 2, 0, 5),
            row(1, Guard::WallClock, 1, 0, 1),
            row(0, Guard::Monotonic, 0, 0, 0),
            row(0, Guard::Fenced, 0, 3, 0),
        ];
        let right = verdict(&quiz, grade_lease(&rows), "fenced").unwrap();
        assert!(right.correct, "{}", right.sentence);
        assert_eq!(right.accepted, ["monotonic", "fenced"]);
        assert_eq!(
            right.sentence,
            "Yes: fenced lost no increment (fencing refused 3 stale writes). So did monotonic."
        );
        let wrong = verdict(&quiz, grade_lease(&rows), "wall-clock").unwrap();
        assert!(!wrong.correct);
        assert!(
            wrong.sentence.starts_with("Not wall-clock: it lost 6 increments over the run (it let 3 writes"),
            "{}",
            wrong.sentence
        );
        assert!(verdict(&quiz, grade_lease(&rows), "lww-wall").is_none(), "not a guard of the run");
    }
}
