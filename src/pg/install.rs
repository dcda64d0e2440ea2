//! Where PostgreSQL, pglogical and libfaketime are on this machine, or
//! exactly what to install.
//!
//! Nothing is started until all three are found: a user without them gets
//! one message naming the Debian packages, and nothing left behind.

use std::path::{Path, PathBuf};

use super::PgError;

/// The Debian packages the real-database engine needs.
pub const PACKAGES: &str = "postgresql-15 postgresql-15-pglogical libfaketime";

/// PostgreSQL's major versions tried, newest first.
const VERSIONS: [u32; 3] = [17, 16, 15];

/// What the engine runs.
#[derive(Debug, Clone)]
pub struct Installation {
    /// `initdb` and `postgres`.
    pub bin: PathBuf,
    /// libfaketime's multi-threaded library, preloaded into each server only.
    pub faketime: PathBuf,
}

impl Installation {
    /// Finds PostgreSQL with pglogical, and libfaketime.
    pub fn find() -> Result<Installation, PgError> {
        let mut missing = Vec::new();
        let servers: Vec<PathBuf> = VERSIONS
            .iter()
            .map(|version| PathBuf::from(format!("/usr/lib/postgresql/{version}")))
            .filter(|root| root.join("bin/postgres").is_file() && root.join("bin/initdb").is_file())
            .collect();
        // The newest with pglogical; else the newest, to name what it lacks.
        let server = servers
            .iter()
            .find(|root| root.join("lib/pglogical.so").is_file())
            .or_else(|| servers.first())
            .cloned();
        match &server {
            None => missing.push("PostgreSQL (initdb and postgres)".to_string()),
            Some(root) if !root.join("lib/pglogical.so").is_file() => {
                missing.push(format!("pglogical for {}", root.display()))
            }
            Some(_) => {}
        }
        let faketime = faketime_library();
        if faketime.is_none() {
            missing.push("libfaketime (libfaketimeMT.so.1)".to_string());
        }
        match (server, faketime) {
            (Some(root), Some(faketime)) if missing.is_empty() => {
                Ok(Installation { bin: root.join("bin"), faketime })
            }
            _ => Err(PgError::Missing(format!(
                "the real-database engine needs {}; on Debian or Ubuntu: apt-get install {PACKAGES}",
                missing.join(", ")
            ))),
        }
    }

    pub fn initdb(&self) -> PathBuf {
        self.bin.join("initdb")
    }

    pub fn postgres(&self) -> PathBuf {
        self.bin.join("postgres")
    }
}

/// libfaketimeMT in any architecture's library directory.
fn faketime_library() -> Option<PathBuf> {
    let lib = Path::new("/usr/lib");
    let mut places = vec![lib.join("faketime/libfaketimeMT.so.1")];
    if let Ok(entries) = std::fs::read_dir(lib) {
        places.extend(entries.flatten().map(|entry| entry.path().join("faketime/libfaketimeMT.so.1")));
    }
    places.into_iter().find(|path| path.is_file())
}
