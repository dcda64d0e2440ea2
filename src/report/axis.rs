//! The x axis of a sweep plot: the swept values where their numbers put them.
//!
//! Sweeps are roughly geometric (0, 50, 250, 1000 ms), so evenly spaced
//! categories would make every curve look straight. Here each value sits at
//! its number:
//!
//! - on a linear scale when the values are close (0 and 800 ms);
//! - on a log scale when the positive values span a factor of
//!   [`LOG_SPAN`] or more, with a real 0 set one decade to the left of the
//!   smallest value (a log scale has no 0, but a sweep that starts with "no
//!   skew" must show it);
//! - on a log scale either side of 0 when values are negative too (a clock
//!   stepped back 1 s, 500 ms, 100 ms, not at all, and forward);
//! - and where a parameter's 0 means "not at all" at the *other* end of the
//!   scale (a resync interval of 0 is never; `Parameter::zero_means`), that
//!   value sits one step beyond the largest and is labelled with its word.
//!
//! The axis runs in the sweep's own direction: a spec that sweeps from
//! mild to severe by going down (keys 64, 16, 4, 1; resync never, 1000,
//! 500 ms) is drawn with the axis reversed, so severity still grows to the
//! right as the spec's author ordered it, and the description says so.
//! Every sweep value is labelled where it sits; labels that would overlap
//! at the plot's width are thinned, never drawn on top of each other.

use crate::experiment::spec::{Parameter, shown_number};

/// Positive values spanning this factor or more go on a log scale.
pub const LOG_SPAN: f64 = 20.0;

/// How the values are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
    /// Log scale either side of 0.
    SymmetricLog,
}

/// A sweep's x axis: where each value sits, and how it is labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    /// Each sweep value's place, in the sweep's order.
    places: Vec<f64>,
    labels: Vec<String>,
    pub scale: Scale,
    /// Drawn from the largest value on the left to the smallest on the right.
    pub reversed: bool,
    /// A 0 set a decade apart from the rest on a log scale.
    zero_apart: bool,
}

impl SweepAxis {
    /// The axis for `values` of `parameter` (`None`: a parameter this
    /// build does not know, whose 0 is taken to be 0).
    pub fn new(parameter: Option<Parameter>, values: &[f64]) -> SweepAxis {
        let zero_means = parameter.and_then(Parameter::zero_means);
        let infinite = |value: f64| value == 0.0 && zero_means.is_some();
        let finite: Vec<f64> = values.iter().copied().filter(|&value| !infinite(value)).collect();
        let nonzero: Vec<f64> = finite.iter().map(|value| value.abs()).filter(|&value| value > 0.0).collect();
        let smallest = nonzero.iter().copied().fold(f64::INFINITY, f64::min);
        let largest = nonzero.iter().copied().fold(0.0, f64::max);
        let spans_decades = nonzero.len() >= 2 && largest / smallest >= LOG_SPAN;
        let scale = match (spans_decades, finite.iter().any(|&value| value < 0.0)) {
            (false, _) => Scale::Linear,
            (true, false) => Scale::Log,
            (true, true) => Scale::SymmetricLog,
        };
        // A log place: decades above the smallest nonzero value, plus one,
        // so that 0 sits a decade to the left of it.
        let log_place = |value: f64| {
            if value == 0.0 { 0.0 } else { value.signum() * ((value.abs() / smallest).log10() + 1.0) }
        };
        let finite_place = |value: f64| match scale {
            Scale::Linear => value,
            Scale::Log | Scale::SymmetricLog => log_place(value),
        };
        let highest_finite = finite.iter().copied().map(finite_place).fold(f64::NEG_INFINITY, f64::max);
        let lowest_finite = finite.iter().copied().map(finite_place).fold(f64::INFINITY, f64::min);
        // "Never" sits one step beyond the largest finite place.
        let beyond = if finite.is_empty() {
            0.0
        } else {
            let step = match scale {
                Scale::Linear => (highest_finite - lowest_finite).max(highest_finite.abs() * 0.5).max(1.0),
                Scale::Log | Scale::SymmetricLog => 1.0,
            };
            highest_finite + step
        };
        let mut places: Vec<f64> =
            values.iter().map(|&value| if infinite(value) { beyond } else { finite_place(value) }).collect();
        let descending = places.len() >= 2 && places.windows(2).all(|pair| pair[1] < pair[0]);
        if descending {
            places.iter_mut().for_each(|place| *place = -*place);
        }
        let labels = values
            .iter()
            .map(|&value| match zero_means {
                Some(word) if value == 0.0 => word.to_string(),
                _ => shown_number(value),
            })
            .collect();
        let zero_apart = scale == Scale::Log && values.iter().any(|&value| value == 0.0 && !infinite(value));
        SweepAxis { places, labels, scale, reversed: descending, zero_apart }
    }

    /// Where the sweep's `index`-th value sits.
    pub fn place(&self, index: usize) -> f64 {
        self.places.get(index).copied().unwrap_or(0.0)
    }

    /// The range the axis spans: every value, with a margin.
    pub fn range(&self) -> std::ops::Range<f64> {
        let low = self.places.iter().copied().fold(f64::INFINITY, f64::min);
        let high = self.places.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !low.is_finite() {
            return -1.0..1.0;
        }
        // Room for a bar drawn about each value, and for its marker.
        let ticks = self.ticks();
        let closest = ticks.windows(2).map(|pair| pair[1] - pair[0]).fold(high - low, f64::min);
        let margin = if high > low { ((high - low) * 0.08).max(closest * 0.45) } else { 1.0 };
        (low - margin)..(high + margin)
    }

    /// The places to put a tick and a label at: every value's.
    pub fn ticks(&self) -> Vec<f64> {
        let mut ticks = self.places.clone();
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        ticks
    }

    /// What to add to the axis's description.
    pub fn note(&self) -> &'static str {
        match (self.scale, self.reversed) {
            (Scale::Linear, false) => "",
            (Scale::Linear, true) => " (reversed)",
            (Scale::Log, false) if self.zero_apart => " (log scale; 0 set apart)",
            (Scale::Log, true) if self.zero_apart => " (log scale, reversed; 0 set apart)",
            (Scale::Log, false) => " (log scale)",
            (Scale::Log, true) => " (log scale, reversed)",
            (Scale::SymmetricLog, false) => " (log scale either side of 0)",
            (Scale::SymmetricLog, true) => " (log scale either side of 0, reversed)",
        }
    }

    /// The label to draw at `place`, if a value sits there and its label
    /// does not run into a neighbour's: labels `pixels_per_unit` apart at
    /// `text_px` are kept left to right, each at least its half-width plus
    /// its neighbour's (and a gap) from the last one kept.
    pub fn label_at(&self, place: f64, pixels_per_unit: f64, text_px: f64) -> String {
        let mut order: Vec<usize> = (0..self.places.len()).collect();
        order.sort_by(|&a, &b| self.places[a].total_cmp(&self.places[b]));
        let half_width = |index: usize| self.labels[index].chars().count() as f64 * text_px * 0.31 + 4.0;
        let mut last_kept: Option<usize> = None;
        for index in order {
            let keep = last_kept.is_none_or(|last| {
                (self.places[index] - self.places[last]) * pixels_per_unit
                    >= half_width(index) + half_width(last)
            });
            if keep {
                last_kept = Some(index);
            }
            if (self.places[index] - place).abs() < 1e-9 {
                return if keep { self.labels[index].clone() } else { String::new() };
            }
        }
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_over_decades_is_on_a_log_scale_with_its_zero_a_decade_to_the_left() {
        let axis = SweepAxis::new(Some(Parameter::SkewMs), &[0.0, 50.0, 250.0, 1000.0]);
        assert_eq!(axis.scale, Scale::Log);
        assert!(!axis.reversed);
        assert_eq!(axis.place(0), 0.0);
        assert!((axis.place(1) - 1.0).abs() < 1e-12, "the smallest value, one decade right of 0");
        assert!((axis.place(3) - (20f64.log10() + 1.0)).abs() < 1e-12);
        // Ratios, not differences, set the gaps: 50 to 250 is wider than 250 to 1000.
        assert!(axis.place(2) - axis.place(1) > axis.place(3) - axis.place(2));
        assert_eq!(axis.label_at(axis.place(2), 200.0, 16.0), "250");
        assert_eq!(axis.note(), " (log scale; 0 set apart)");
        assert_eq!(SweepAxis::new(Some(Parameter::SkewMs), &[10.0, 1000.0]).note(), " (log scale)");
    }

    #[test]
    fn close_values_stay_linear_and_negative_ones_get_a_log_scale_either_side_of_zero() {
        let axis = SweepAxis::new(Some(Parameter::PauseMs), &[0.0, 800.0]);
        assert_eq!((axis.scale, axis.place(0), axis.place(1)), (Scale::Linear, 0.0, 800.0));
        let steps = SweepAxis::new(Some(Parameter::StepMs), &[-1000.0, -100.0, -10.0, 0.0, 100.0, 1000.0]);
        assert_eq!(steps.scale, Scale::SymmetricLog);
        assert_eq!(steps.place(3), 0.0);
        assert_eq!(steps.place(1), -steps.place(4), "symmetric");
        assert!((steps.place(5) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_zero_that_means_never_sits_beyond_the_largest_value_and_a_falling_sweep_is_drawn_reversed() {
        let axis = SweepAxis::new(Some(Parameter::ResyncIntervalMs), &[0.0, 1000.0, 500.0, 100.0, 20.0]);
        assert!(axis.reversed, "the spec sweeps from never down to 20 ms");
        // Left to right in the spec's order.
        let places: Vec<f64> = (0..5).map(|index| axis.place(index)).collect();
        assert!(places.windows(2).all(|pair| pair[0] < pair[1]), "{places:?}");
        assert_eq!(axis.label_at(axis.place(0), 300.0, 16.0), "never");
        assert_eq!(SweepAxis::new(Some(Parameter::MaxPeerOffsetMs), &[0.0, 250.0]).labels[0], "no bound");
        let keys = SweepAxis::new(Some(Parameter::Keys), &[64.0, 16.0, 4.0, 1.0]);
        assert!(keys.reversed && keys.place(0) < keys.place(3));
        assert_eq!(keys.note(), " (log scale, reversed)");
    }

    #[test]
    fn labels_that_would_collide_are_thinned_left_to_right() {
        let axis =
            SweepAxis::new(Some(Parameter::SkewMs), &[0.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0]);
        // Far apart, every label shows; squeezed, 25 gives way to 10, its left neighbour.
        assert_eq!(axis.label_at(axis.place(2), 200.0, 16.0), "25");
        assert_eq!(axis.label_at(axis.place(2), 60.0, 16.0), "");
        assert_eq!(axis.label_at(axis.place(1), 60.0, 16.0), "10");
        assert_eq!(axis.label_at(axis.place(3), 60.0, 16.0), "50");
        let drift = SweepAxis::new(Some(Parameter::DriftPpm), &[0.0, 20000.0, 100000.0]);
        assert_eq!((drift.scale, drift.label_at(20000.0, 0.01, 16.0)), (Scale::Linear, "20,000".to_string()));
        assert_eq!(axis.label_at(12345.0, 60.0, 16.0), "", "no value there");
    }
}
