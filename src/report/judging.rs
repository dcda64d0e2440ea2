//! A run judged as its trials come.
//!
//! The oracle judges each key within its trial, so a run can be judged a
//! trial at a time ([`crate::analysis::Judge`]) and need never hold its
//! whole history. [`Judging`] is that for a run directory: it takes the
//! point records and then each trial's records, in the order of the
//! history, writes each trial's drops to the run's drops file as they are
//! found ([`DropsWriter`]), and keeps only the verdicts and what the report
//! reads besides ([`super::reads`], [`super::shows`]). The runner feeds it as
//! trials finish; `clocklab analyze` feeds it a saved history line by line.

use std::path::Path;

use super::{DropsWriter, ReportError};
use crate::analysis::spilled::RANGE_WRITES;
use crate::analysis::{Analysis, DroppedWrite, Judge};
use crate::experiment::spec::Spec;
use crate::history::Record;
use crate::history::spill::SpilledWrites;

/// The oracle's verdicts on a run so far, and what its report will need.
pub struct Judging {
    spec: Spec,
    judge: Judge,
    /// Every drop goes here (none for a lease run, which has no key-value workload).
    drops: Option<DropsWriter>,
    /// The drops the report draws.
    shown: Vec<DroppedWrite>,
    /// The records the report reads besides the verdicts.
    kept: Vec<Record>,
}

/// A run judged to its end: its verdicts (of the drops, those the report
/// draws), the records its report reads, and its drops file, to finish.
pub struct Judged {
    pub analysis: Analysis,
    pub kept: Vec<Record>,
    pub drops: Option<DropsWriter>,
}

impl Judging {
    /// Judging a run of `spec` in `run_dir`, its drops file compressed or not.
    pub fn new(spec: &Spec, run_dir: &Path, compressed: bool) -> Result<Self, ReportError> {
        let drops = match spec.lease {
            None => Some(DropsWriter::create(run_dir, compressed)?),
            Some(_) => None,
        };
        Ok(Self { spec: spec.clone(), judge: Judge::default(), drops, shown: Vec::new(), kept: Vec::new() })
    }

    /// Takes a point's record, for the trials that follow it.
    pub fn point(&mut self, record: Record) {
        self.judge.point(&record);
        self.kept.push(record);
    }

    /// Judges one trial from all its records, its writes among them or,
    /// for a long simulated trial, `spilled` (judged a range of keys at a
    /// time, `analysis::spilled`).
    pub fn trial(&mut self, records: Vec<Record>, spilled: Option<SpilledWrites>) -> Result<(), ReportError> {
        let Self { spec, judge, drops, shown, kept } = self;
        let mut took = |judged: Vec<DroppedWrite>| -> Result<(), ReportError> {
            if let Some(drops) = drops {
                drops.append(&judged)?;
            }
            shown.extend(judged.into_iter().filter(|drop| super::shows(spec, drop)));
            Ok(())
        };
        match spilled {
            None => took(judge.trial(&records))?,
            Some(mut writes) => {
                let range = |judged| took(judged).map_err(std::io::Error::other);
                judge.trial_spilled(&records, &mut writes, RANGE_WRITES, range)?;
            }
        }
        kept.extend(records.into_iter().filter(|record| super::reads(spec, record)));
        Ok(())
    }

    /// Gives up: removes the drops file begun.
    pub fn discard(self) -> Result<(), ReportError> {
        self.drops.map_or(Ok(()), DropsWriter::discard)
    }

    pub fn finish(self) -> Judged {
        Judged { analysis: self.judge.finish(self.shown), kept: self.kept, drops: self.drops }
    }
}
