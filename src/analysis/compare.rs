//! Two runs of one experiment side by side: do their drop rates agree?
//!
//! Used to cross-validate the simulator against real processes (`clocklab
//! validate`), and good for any two runs of one spec (two seeds, say). Per
//! sweep point and strategy it puts each run's drop rate (dropped over
//! acknowledged writes, as a fraction) beside the other's, with a standard
//! error for each:
//!
//! - from the trials, when a run has two or more there: the sample standard
//!   deviation of the per-trial rates over the square root of their number
//!   (trials are independent; the writes of one trial are not, since one
//!   clock fault hits many of them at once);
//! - otherwise from the writes alone, as if each were an independent coin
//!   (`sqrt(p (1 - p) / n)`), which understates the error but is all one
//!   trial can tell.
//!
//! The two runs **agree** at a point when their rates differ by at most
//! [`AGREEMENT_FLOOR`] (2 percentage points) or three standard errors of
//! the difference (`sqrt(se_a^2 + se_b^2)`), whichever is larger.

use std::collections::BTreeMap;

use serde::Serialize;

use super::SummaryRow;

/// Rates closer than this (a fraction: 2 percentage points) always agree.
pub const AGREEMENT_FLOOR: f64 = 0.02;
/// How many standard errors of the difference two rates may differ by.
pub const AGREEMENT_ERRORS: f64 = 3.0;

/// One run's drop rate at one point, for one strategy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Dropped over acknowledged writes, over all trials (a fraction).
    pub rate: f64,
    /// Its standard error (see the module docs).
    pub standard_error: f64,
    pub trials: usize,
    pub acked: usize,
}

/// Two runs at one point, for one strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    pub point: usize,
    pub value: f64,
    pub strategy: String,
    pub first: Rate,
    pub second: Rate,
    /// `second.rate - first.rate`.
    pub difference: f64,
    /// The largest difference that still agrees.
    pub allowed: f64,
    pub agrees: bool,
}

/// The drop rate of `rows` (one point, one strategy, any number of trials).
pub fn rate_of(rows: &[&SummaryRow]) -> Rate {
    let acked: usize = rows.iter().map(|row| row.acked).sum();
    let dropped: usize = rows.iter().map(|row| row.dropped).sum();
    let rate = if acked == 0 { 0.0 } else { dropped as f64 / acked as f64 };
    let per_trial: Vec<f64> =
        rows.iter().filter(|row| row.acked > 0).map(|row| row.dropped as f64 / row.acked as f64).collect();
    let standard_error = if per_trial.len() >= 2 {
        let n = per_trial.len() as f64;
        let mean = per_trial.iter().sum::<f64>() / n;
        let variance = per_trial.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (variance / n).sqrt()
    } else if acked > 0 {
        (rate * (1.0 - rate) / acked as f64).sqrt()
    } else {
        0.0
    };
    Rate { rate, standard_error, trials: rows.len(), acked }
}

/// Every sweep value and strategy both runs have, in the first run's point
/// then strategy order. Points are matched by their values (both of a
/// two-parameter sweep's), not their indices, so a quick run compares with
/// a full one where their sweeps meet.
pub fn compare(first: &[SummaryRow], second: &[SummaryRow]) -> Vec<Agreement> {
    type Place = (usize, f64, Option<f64>, String);
    let group = |rows: &[SummaryRow]| {
        let mut groups: BTreeMap<(usize, String), Vec<SummaryRow>> = BTreeMap::new();
        for row in rows {
            groups.entry((row.point, row.strategy.clone())).or_default().push(row.clone());
        }
        groups
            .into_iter()
            .map(|((point, strategy), rows)| ((point, rows[0].value, rows[0].across_value, strategy), rows))
            .collect::<Vec<(Place, Vec<SummaryRow>)>>()
    };
    let (a, b) = (group(first), group(second));
    a.iter()
        .filter_map(|((point, value, across_value, strategy), a_rows)| {
            let (_, b_rows) = b.iter().find(|((_, b_value, b_across, b_strategy), _)| {
                b_value == value && b_across == across_value && b_strategy == strategy
            })?;
            let first = rate_of(&a_rows.iter().collect::<Vec<_>>());
            let second = rate_of(&b_rows.iter().collect::<Vec<_>>());
            let difference = second.rate - first.rate;
            let error = (first.standard_error.powi(2) + second.standard_error.powi(2)).sqrt();
            let allowed = AGREEMENT_FLOOR.max(AGREEMENT_ERRORS * error);
            Some(Agreement {
                point: *point,
                value: *value,
                strategy: strategy.clone(),
                first,
                second,
                difference,
                allowed,
                agrees: difference.abs() <= allowed,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of point `point`, whose swept value is the point's number.
    fn row(point: usize, trial: usize, strategy: &str, acked: usize, dropped: usize) -> SummaryRow {
        let value = point as f64;
        SummaryRow { point, trial, value, strategy: strategy.into(), acked, dropped, ..SummaryRow::default() }
    }

    #[test]
    fn the_error_comes_from_the_trials_when_there_are_several() {
        let rows = [row(0, 0, "lww-wall", 100, 10), row(0, 1, "lww-wall", 100, 30)];
        let rate = rate_of(&rows.iter().collect::<Vec<_>>());
        assert!((rate.rate - 0.2).abs() < 1e-12);
        // Per-trial rates 0.1 and 0.3: sd 0.1414, over sqrt(2): 0.1.
        assert!((rate.standard_error - 0.1).abs() < 1e-9, "{rate:?}");
        let single = rate_of(&[&row(0, 0, "lww-wall", 100, 20)]);
        assert!((single.standard_error - 0.04).abs() < 1e-9, "binomial: sqrt(0.2 * 0.8 / 100)");
    }

    #[test]
    fn rates_agree_within_the_floor_or_three_errors_and_not_beyond() {
        let real = [row(0, 0, "lww-wall", 10_000, 1_000), row(1, 0, "lww-wall", 10_000, 1_000)];
        // Point 0: 1.5 points apart, inside the 2-point floor. Point 1: 5
        // points apart, while three errors are about 1.3 points.
        let sim = [row(0, 0, "lww-wall", 10_000, 1_150), row(1, 0, "lww-wall", 10_000, 1_500)];
        let agreements = compare(&real, &sim);
        assert_eq!(agreements.len(), 2);
        assert!(agreements[0].agrees, "{:?}", agreements[0]);
        assert!(!agreements[1].agrees, "{:?}", agreements[1]);
        assert!((agreements[1].difference - 0.05).abs() < 1e-12);
        // A strategy only one run has is not compared.
        assert!(compare(&real, &[row(0, 0, "vv", 10, 0)]).is_empty());
    }

    #[test]
    fn points_are_matched_by_their_values_not_their_places_in_the_sweep() {
        let at = |point: usize, value: f64, dropped: usize| SummaryRow {
            value,
            ..row(point, 0, "lww-wall", 100, dropped)
        };
        // A full sweep 0, 10, 50 against a quick one 0, 50.
        let full = [at(0, 0.0, 5), at(1, 10.0, 8), at(2, 50.0, 14)];
        let quick = [at(0, 0.0, 6), at(1, 50.0, 15)];
        let agreements = compare(&full, &quick);
        let pairs: Vec<(f64, f64, f64)> =
            agreements.iter().map(|row| (row.value, row.first.rate, row.second.rate)).collect();
        assert_eq!(pairs, [(0.0, 0.05, 0.06), (50.0, 0.14, 0.15)]);
    }
}
