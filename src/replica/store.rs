//! Durable storage: the replication log in one SQLite file per replica.
//!
//! The replica acknowledges a write only after the transaction holding it
//! has committed. The file is in WAL (write-ahead log) mode with
//! `synchronous = NORMAL`: a commit is an append to the WAL, which the
//! operating system holds even if the process is SIGKILLed, so a crash loses
//! no acknowledged write. (An operating-system crash or power cut could lose
//! the last few commits; `FULL` would fsync each one, at a large cost in
//! throughput. The lab kills processes, not machines.)
//!
//! Checkpoints (copying the WAL back into the main file, which fsyncs it)
//! run on a background thread with a second connection, so a client's
//! commit never waits behind several milliseconds of checkpoint I/O.
//!
//! Only the log is stored. Key states are derived from it by the core on
//! start-up, so there is one source of truth and no second table to keep
//! consistent with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::clock::dots::ReplicaId;
use crate::lease::Token;
use crate::strategy::{RawJson, Write};

/// The file name of a replica's database inside its data directory.
pub const DATABASE_FILE: &str = "replica.sqlite3";

/// SQLite's `synchronous` setting for every replica. See the module docs.
pub const SYNCHRONOUS: &str = "NORMAL";

/// How often the background thread checkpoints the WAL into the main file.
/// The WAL holds at most about this much time's worth of writes.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {0}: {1}")]
    CreateDir(PathBuf, std::io::Error),
    #[error("the data directory {0} is a file, not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot open {0}: {1}")]
    Open(PathBuf, rusqlite::Error),
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a logged write cannot be read back: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("{path} belongs to replica {found}, not {expected}")]
    WrongReplica { path: PathBuf, found: ReplicaId, expected: ReplicaId },
}

/// One replica's SQLite database.
pub struct Store {
    connection: Connection,
    checkpointer: Option<Checkpointer>,
}

impl Store {
    /// Opens (or creates) the database in `dir` for replica `id`.
    pub fn open(dir: &Path, id: ReplicaId) -> Result<Self, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|error| StoreError::CreateDir(dir.to_path_buf(), error))?;
        let path = dir.join(DATABASE_FILE);
        Self::open_file(&path, id).map_err(|error| match error {
            StoreError::Sqlite(error) => StoreError::Open(path, error),
            other => other,
        })
    }

    fn open_file(path: &Path, id: ReplicaId) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let connection = Connection::open(&path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", SYNCHRONOUS)?;
        // The checkpointer thread does this work; see the module docs.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS log (
                 origin INTEGER NOT NULL,
                 seq INTEGER NOT NULL,
                 bucket TEXT NOT NULL,
                 key TEXT NOT NULL,
                 value TEXT NOT NULL,
                 stamp TEXT NOT NULL,
                 context TEXT NOT NULL,
                 fence INTEGER,
                 PRIMARY KEY (origin, seq)
             ) WITHOUT ROWID;",
        )?;
        // A log made before writes carried fencing tokens gains the column.
        let has_fence: bool = connection.query_row(
            "SELECT count(*) FROM pragma_table_info('log') WHERE name = 'fence'",
            [],
            |row| row.get(0),
        )?;
        if !has_fence {
            connection.execute_batch("ALTER TABLE log ADD COLUMN fence INTEGER")?;
        }
        connection.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('replica_id', ?1)", [id])?;
        let found: ReplicaId =
            connection.query_row("SELECT value FROM meta WHERE name = 'replica_id'", [], |row| row.get(0))?;
        if found != id {
            return Err(StoreError::WrongReplica { path, found, expected: id });
        }
        let checkpointer = Checkpointer::start(&path)?;
        Ok(Self { connection, checkpointer: Some(checkpointer) })
    }

    /// Every logged write, in `(origin, seq)` order.
    pub fn load(&self) -> Result<Vec<Write>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT origin, seq, bucket, key, value, stamp, context, fence FROM log ORDER BY origin, seq",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, ReplicaId>(0)?,
                row.get::<_, u64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, Option<u64>>(7)?,
            ))
        })?;
        let mut writes = Vec::new();
        for row in rows {
            let (origin, seq, bucket, key, value, stamp, context, fence) = row?;
            writes.push(Write {
                origin,
                seq,
                bucket,
                key,
                value: RawJson::from_text(value)?,
                stamp: RawJson::from_text(stamp)?,
                context: RawJson::from_text(context)?,
                fence: fence.map(Token),
            });
        }
        Ok(writes)
    }

    /// Appends writes to the log in one transaction: all or none.
    pub fn append(&mut self, writes: &[Arc<Write>]) -> Result<(), StoreError> {
        let transaction = self.connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO log (origin, seq, bucket, key, value, stamp, context, fence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for write in writes {
                insert.execute(params![
                    write.origin,
                    write.seq,
                    write.bucket,
                    write.key,
                    write.value.text(),
                    write.stamp.text(),
                    write.context.text(),
                    write.fence.map(|token| token.0),
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop();
        }
    }
}

/// A thread with its own connection that checkpoints the WAL every
/// [`CHECKPOINT_INTERVAL`]. A `PASSIVE` checkpoint never blocks the writer;
/// if it falls behind, the next one continues where it stopped.
struct Checkpointer {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_INTERVAL) {
                let checkpoint = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                if let Err(error) = checkpoint {
                    // Not fatal: commits still land in the WAL, which grows
                    // until a later checkpoint succeeds.
                    tracing::warn!(%error, "WAL checkpoint failed");
                }
            }
        });
        Ok(Self { stop, thread })
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join(); // a panicked checkpointer has nothing left to undo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(seq: u64, fence: Option<Token>) -> Arc<Write> {
        Arc::new(Write {
            origin: 1,
            seq,
            bucket: "lww-hlc".into(),
            key: "x".into(),
            value: RawJson::of(&[seq]),
            stamp: RawJson::of(&[seq, 1]),
            context: RawJson::null(),
            fence,
        })
    }

    #[test]
    fn a_fencing_token_is_kept_with_its_write_and_an_older_log_gains_the_column() {
        let dir = tempfile::tempdir().expect("a directory");
        // A log as stores made it before writes carried tokens.
        let path = dir.path().join(DATABASE_FILE);
        let old = Connection::open(&path).expect("open");
        old.execute_batch(
            "CREATE TABLE log (origin INTEGER NOT NULL, seq INTEGER NOT NULL, bucket TEXT NOT NULL,
                 key TEXT NOT NULL, value TEXT NOT NULL, stamp TEXT NOT NULL, context TEXT NOT NULL,
                 PRIMARY KEY (origin, seq)) WITHOUT ROWID;
             INSERT INTO log VALUES (1, 1, 'lww-hlc', 'x', '[1]', '[1,1]', 'null');",
        )
        .expect("an old log");
        drop(old);
        let mut store = Store::open(dir.path(), 1).expect("opens the old log");
        store.append(&[write(2, Some(Token(34)))]).expect("append");
        let fences: Vec<Option<Token>> =
            store.load().expect("load").iter().map(|write| write.fence).collect();
        assert_eq!(fences, [None, Some(Token(34))]);
    }
}
