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
        Self::find_under(Path::new("/"))
    }

    /// The same, in a file system rooted at `root` (`/` but in tests).
    pub fn find_under(root: &Path) -> Result<Installation, PgError> {
        let mut missing = Vec::new();
        let servers: Vec<PathBuf> = VERSIONS
            .iter()
            .map(|version| root.join(format!("usr/lib/postgresql/{version}")))
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
        let faketime = faketime_library(&root.join("usr/lib"));
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
fn faketime_library(lib: &Path) -> Option<PathBuf> {
    let mut places = vec![lib.join("faketime/libfaketimeMT.so.1")];
    if let Ok(entries) = std::fs::read_dir(lib) {
        places.extend(entries.flatten().map(|entry| entry.path().join("faketime/libfaketimeMT.so.1")));
    }
    places.into_iter().find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }

    #[test]
    fn what_is_missing_is_named_with_the_packages_to_install() {
        let root = tempfile::tempdir().unwrap();
        let message = |root: &Path| match Installation::find_under(root) {
            Err(PgError::Missing(message)) => message,
            other => panic!("expected something missing, got {:?}", other.map(|found| found.bin)),
        };
        let nothing = message(root.path());
        assert!(nothing.contains("PostgreSQL") && nothing.contains("libfaketime"), "{nothing}");
        assert!(
            nothing.contains("apt-get install postgresql-15 postgresql-15-pglogical libfaketime"),
            "{nothing}"
        );
        // A server without pglogical, and libfaketime: pglogical alone is named.
        touch(&root.path().join("usr/lib/postgresql/16/bin/postgres"));
        touch(&root.path().join("usr/lib/postgresql/16/bin/initdb"));
        touch(&root.path().join("usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"));
        let no_pglogical = message(root.path());
        assert!(
            no_pglogical.contains("pglogical for") && !no_pglogical.contains("libfaketime ("),
            "{no_pglogical}"
        );
        // An older server with pglogical beside it is the one found.
        for file in ["bin/postgres", "bin/initdb", "lib/pglogical.so"] {
            touch(&root.path().join("usr/lib/postgresql/15").join(file));
        }
        let found = Installation::find_under(root.path()).expect("PostgreSQL 15 with pglogical");
        assert!(found.bin.ends_with("postgresql/15/bin"), "{}", found.bin.display());
    }
}
