//! A real database under the lab's clocks: PostgreSQL servers replicating
//! multi-master with pglogical.
//!
//! Everything else the lab measures runs on replicas it wrote itself. Here
//! the same question is put to a real, widely deployed system: N PostgreSQL
//! servers in a pglogical full mesh, each under its own libfaketime clock,
//! each resolving conflicting incoming changes by
//! `pglogical.conflict_resolution`. With `last_update_wins` the commit
//! timestamps decide, and they come from each server's wall clock, so a
//! server whose clock is behind loses its writes to earlier ones: DDIA's
//! Figure 8-3. pglogical resolves only incoming changes and never revisits
//! a local row, so the node that wrote the losing change keeps it: the
//! nodes disagree for good.
//!
//! - [`install`]: finding PostgreSQL, pglogical and libfaketime, or saying
//!   exactly what to install;
//! - [`server`]: one server, loopback only, its clock a file the lab rewrites;
//! - [`cluster`]: the servers, their mesh, and settling by marker rows.

pub mod cluster;
pub mod install;
pub mod server;

/// What can go wrong with the real database.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// Something to install (the message names it); nothing was started.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Sql(String),
}
