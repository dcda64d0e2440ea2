//! clocklab: a lab for the trouble with clocks in replicated databases.
//!
//! Real replica processes store writes in SQLite and replicate them to each
//! other (multi-leader). Each bucket settles conflicting writes with its own
//! strategy, and the lab measures which acknowledged writes each strategy
//! silently drops when the replicas' clocks lie (DDIA chapter 8).
//!
//! A map of the modules, from the ideas to the machinery:
//!
//! - [`clock`]: what the lab is about. Physical clock models (offset, drift,
//!   steps, resync, resolution, strobes, leaps) and the updates that bend
//!   them, hybrid logical clocks, and the dot sets behind version vectors.
//! - [`lease`]: chapter 8's second clock story, pure: a lock service
//!   granting leases with fencing tokens, and lease holders checking them
//!   by wall clock or monotonic clock (DDIA Figures 8-4 and 8-5).
//! - [`leaseholder`]: `clocklab lease-worker`, a lease worker as a real
//!   process: its loops over real sockets, its clock bendable, its pauses
//!   real SIGSTOPs.
//! - [`write_id`]: a write's name, `origin:seq`, and a merged read's list
//!   of them: one type each, parsed in one place.
//! - [`strategy`]: conflict resolution, one file per strategy, each
//!   declaring its kind: last-write-wins on wall, hybrid logical, Lamport or
//!   TrueTime clocks (with commit wait, all four one implementation over
//!   their stamps), dotted and per-server version vectors, and set union;
//!   and plugins, strategies in any language speaking JSON lines.
//! - [`replica`]: one replica process. A pure core with an injected clock
//!   (which can forget what every peer holds, keeping a checkpoint),
//!   a SQLite store, a worker that group-commits, an HTTP server,
//!   replication with per-link faults, and NTP-style monitoring of its
//!   peers' clock offsets.
//! - [`history`]: the contract between the engines and the oracle: every
//!   record a run writes, one JSON object per line, fault names and all;
//!   each write's value compact (the write it extends, plus what it adds);
//!   a long trial's writes spilled to disk as it runs.
//! - [`experiment`]: what a run is asked to do. Specs, the faults and the
//!   timeline of typed operations they become, the random nemesis, the
//!   read-modify-write workload, limits, run ids.
//! - [`analysis`]: the oracle. From the history alone, which acknowledged
//!   writes each strategy silently dropped, and why; a trial at a time, a
//!   long one a range of keys at a time.
//! - [`sim`]: the deterministic simulator: the same replica cores, peer
//!   policies and clock models under simulated time, network and disks;
//!   scripted worlds and the step-through's scenarios, judged by the oracle.
//! - [`explore`]: `clocklab explore`, a breadth-first search over every
//!   story within bounds (replicas, writes, keys, clock offsets) for the
//!   smallest one in which a strategy loses a write, told as a scenario.
//! - [`engine`]: the one trial protocol (the scene, faults and clock
//!   samples in true-time order, the heal, convergence, the records) and
//!   the engines that carry out its operations: real processes, the
//!   simulator, and a real database (PostgreSQL with pglogical, beside
//!   real processes).
//! - [`pg`]: a real database under the same clocks: PostgreSQL servers in
//!   a pglogical mesh, each under its own libfaketime clock, a database
//!   per conflict resolution mode.
//! - [`merge`]: a run's parts (`--shard K/N`, run anywhere) joined into one
//!   run, in the run's order, then judged as a whole.
//! - [`report`]: summaries (JSON, CSV), plots (SVG, PNG) against the sweep
//!   on numeric axes and over time, one colour per strategy everywhere, and
//!   `report.md`.
//! - [`run_dir`]: a run's directory and every file in it, read and written
//!   in one place.
//! - [`runner`]: an experiment end to end: trials on an engine into the
//!   history, each judged by the oracle as it is written, then the report,
//!   with progress shown.
//! - [`validate`]: one experiment in both engines, compared point by point.
//! - [`conformance`]: `clocklab strategy check`, the promises every strategy
//!   (built-in or plugin, see [`strategy::plugin`]) must keep, tested on
//!   random histories with shrunk counterexamples.
//! - [`dashboard`]: the browser side, made for a projector. An overview of
//!   every experiment (with a lesson mode that hides the answers), a quiz
//!   graded on a named run, results and why each write was dropped, plots
//!   drawn at the width they are shown, comparisons, experiments run from
//!   the page (through [`runner`]), a live lab cluster driven by clicks or
//!   by presets that tell known stories (and check their last line against
//!   the oracle), and the simulator's scenarios (DDIA Figure 8-3) played
//!   step by step.
//! - [`builtin`]: what the binary carries (experiment specs, scenarios,
//!   presets, the dashboard's page) and where files on disk take over.
//! - [`cli`]: the `clocklab` command line; [`memory`]: how the process
//!   takes memory from the kernel.

pub mod analysis;
pub mod builtin;
pub mod cli;
pub mod clock;
pub mod conformance;
pub mod dashboard;
pub mod engine;
pub mod experiment;
pub mod explore;
pub mod history;
pub mod lease;
pub mod leaseholder;
pub mod memory;
pub mod merge;
pub mod pg;
pub mod replica;
pub mod report;
pub mod run_dir;
pub mod runner;
pub mod sim;
pub mod strategy;
pub mod validate;
pub mod write_id;
