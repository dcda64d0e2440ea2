//! Shards: a sweep split into parts that run anywhere, then merged.
//!
//! A sweep's trials are independent: each starts a fresh cluster (or a
//! fresh simulated world) from the spec, its point and its trial number,
//! and nothing else. So a run can be cut into `N` parts, run on as many
//! machines (a Kubernetes Indexed Job, a Slurm job array, GNU parallel),
//! and joined again. `--shard K/N` runs the trials whose place in the
//! run's order (point by point, trial by trial, from 0) leaves `K - 1`
//! when divided by `N`: every `N`-th trial, so that every part gets some of
//! every sweep point, cheap and dear alike. A shard's directory holds the
//! spec, its part of the history and a `SHARD` file saying which part it
//! is; it is not analysed. `clocklab merge` takes the `N` directories,
//! checks that they are the parts of one run, puts their history lines
//! back in the run's order (byte for byte the lines each part wrote, so a
//! simulated run merged equals the unsplit run's history exactly) and
//! runs the oracle and the report on the whole.

use std::fmt;
use std::str::FromStr;

/// The file in a shard's directory that says which part it is (`K/N`).
pub const SHARD_FILE: &str = "SHARD";

/// The most parts a run may be cut into.
pub const MAX_SHARDS: usize = 10_000;

/// Part `index` (from 1) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether this part runs the trial at `place` in the run's order (from 0).
    pub fn runs(self, place: usize) -> bool {
        place % self.count == self.index - 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wrong = || format!("a shard is K/N with 1 <= K <= N <= {MAX_SHARDS} (e.g. 2/8), not {text:?}");
        let (index, count) = text.trim().split_once('/').ok_or_else(wrong)?;
        let index: usize = index.trim().parse().map_err(|_| wrong())?;
        let count: usize = count.trim().parse().map_err(|_| wrong())?;
        if index == 0 || index > count || count > MAX_SHARDS {
            return Err(wrong());
        }
        Ok(Self { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_of_a_run_share_its_trials_out_every_nth_and_each_exactly_once() {
        let parts: Vec<Shard> = (1..=3).map(|index| Shard { index, count: 3 }).collect();
        for place in 0..20 {
            assert_eq!(parts.iter().filter(|part| part.runs(place)).count(), 1, "trial {place}");
        }
        assert!(parts[0].runs(0) && parts[1].runs(1) && parts[2].runs(2) && parts[0].runs(3));
    }

    #[test]
    fn a_shard_is_read_as_k_of_n_and_nothing_else() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard { index: 2, count: 8 }));
        assert_eq!(Shard { index: 2, count: 8 }.to_string(), "2/8");
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "1/10001", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
