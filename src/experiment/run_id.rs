//! Run ids, and run directories that two runs can never share.
//!
//! A run lives in `results/EXPERIMENT/RUN-ID/`. Its id is the UTC second it
//! started and its seed, `20261124-213120-seed1`, so a listing sorted by id
//! is sorted by start time and a reader sees the seed at a glance. Two runs
//! can start in the same second with the same seed (a class starting the
//! same experiment, a script), so the directory is created *exclusively*
//! (`mkdir`, which fails if the directory exists), and a run that finds its
//! id taken takes the next free one: `...-seed1-2`, `...-seed1-3`. No two
//! runs ever write the same history.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// The layout of the start time in a run id.
pub const TIME_FORMAT: &str = "%Y%m%d-%H%M%S";

/// A run's id: when it started, its seed, and which run of that second and
/// seed it was (1 for the first).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId {
    /// The UTC start second, as [`TIME_FORMAT`].
    pub started: String,
    pub seed: u64,
    pub attempt: u32,
}

impl RunId {
    pub fn new(started: DateTime<Utc>, seed: u64) -> Self {
        Self { started: started.format(TIME_FORMAT).to_string(), seed, attempt: 1 }
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}-seed{}", self.started, self.seed)?;
        if self.attempt > 1 {
            write!(formatter, "-{}", self.attempt)?;
        }
        Ok(())
    }
}

impl FromStr for RunId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = || format!("{text:?} is not a run id (YYYYMMDD-HHMMSS-seedN[-K])");
        let (started, rest) = text.split_once("-seed").ok_or_else(fail)?;
        chrono::NaiveDateTime::parse_from_str(started, TIME_FORMAT).map_err(|_| fail())?;
        let (seed, attempt) = match rest.split_once('-') {
            Some((seed, attempt)) => (seed, attempt.parse::<u32>().ok().filter(|&n| n > 1).ok_or_else(fail)?),
            None => (rest, 1),
        };
        let seed = seed.parse().map_err(|_| fail())?;
        Ok(Self { started: started.to_string(), seed, attempt })
    }
}

impl Ord for RunId {
    /// By start time, then seed, then attempt: later runs sort after earlier
    /// ones, `-10` after `-9`.
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.started, self.seed, self.attempt).cmp(&(&other.started, other.seed, other.attempt))
    }
}

impl PartialOrd for RunId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Sorts directory names of runs by start time, oldest first: names that are
/// not run ids (by name) before every run id, run ids in [`RunId`] order.
pub fn sort_runs(names: &mut [String]) {
    names.sort_by_cached_key(|name| match name.parse::<RunId>() {
        Ok(id) => (1, Some(id), name.clone()),
        Err(_) => (0, None, name.clone()),
    });
}

/// Creates a fresh run directory in `experiment_dir` (made if missing) for a
/// run that starts now with `seed`; returns its id and path. The directory
/// is new: no other run has it, now or later.
pub fn create_run_dir(
    experiment_dir: &Path,
    started: DateTime<Utc>,
    seed: u64,
) -> std::io::Result<(RunId, PathBuf)> {
    std::fs::create_dir_all(experiment_dir)?;
    let mut id = RunId::new(started, seed);
    loop {
        let dir = experiment_dir.join(id.to_string());
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => id.attempt += 1,
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_as_written() {
        for text in ["20261124-213120-seed1", "20261124-213120-seed18446744073709551615-12"] {
            assert_eq!(text.parse::<RunId>().unwrap().to_string(), text);
        }
        for text in [
            "",
            "latest",
            "20261124-213120",
            "2026-seed1",
            "20261124-213120-seed1-1",
            "20261124-213120-seedx",
        ] {
            assert!(text.parse::<RunId>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn runs_sort_by_start_time_then_attempt() {
        let mut names: Vec<String> = [
            "20261124-213120-seed1-10",
            "zz-not-a-run",
            "20261124-213120-seed1-2",
            "20261124-213119-seed9",
            "20261124-213120-seed1",
        ]
        .map(String::from)
        .into();
        sort_runs(&mut names);
        assert_eq!(
            names,
            [
                "zz-not-a-run",
                "20261124-213119-seed9",
                "20261124-213120-seed1",
                "20261124-213120-seed1-2",
                "20261124-213120-seed1-10",
            ]
        );
    }

    #[test]
    fn a_taken_id_moves_to_the_next_attempt() {
        let results = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let ids: Vec<String> =
            (0..3).map(|_| create_run_dir(results.path(), now, 5).unwrap().0.to_string()).collect();
        let first = RunId::new(now, 5).to_string();
        assert_eq!(ids, [first.clone(), format!("{first}-2"), format!("{first}-3")]);
        assert!(results.path().join(&ids[2]).is_dir());
    }
}
