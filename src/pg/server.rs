//! One PostgreSQL server the lab starts, under a clock it bends.
//!
//! Each server gets a data directory of its own under the cluster's
//! temporary directory, listens on 127.0.0.1 only (no Unix socket), trusts
//! connections from there alone (initdb's `-A trust` writes only loopback
//! lines into `pg_hba.conf`), and has libfaketime preloaded with a clock
//! file the runner rewrites while it runs (`FAKETIME_NO_CACHE=1`, so every
//! reading looks at the file; the monotonic clock is left alone, or the
//! server's timers would stall). initdb refuses to run as root, so when
//! the lab is root the server runs as the `postgres` user.
//!
//! A server dies with the lab: it is killed when dropped, and
//! `PR_SET_PDEATHSIG` kills it if the lab's process dies; its backends
//! leave when they notice the postmaster gone.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::PgError;
use super::install::Installation;

/// How long a server may take to accept connections after it starts.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a server is started on a fresh port if it exits at once.
const START_ATTEMPTS: u32 = 3;
/// How long a fast shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// The role every connection uses (trusted, loopback only).
pub const ROLE: &str = "lab";
/// The database the lab administers the server from (each resolution mode
/// has a database of its own beside it, see `cluster`).
pub const DATABASE: &str = "postgres";

/// A server's clock: the file its libfaketime reads at every clock reading.
#[derive(Debug, Clone)]
pub struct ClockFile(PathBuf);

impl ClockFile {
    /// Sets the clock `offset_ms` from true time (positive: ahead), at once.
    pub fn set_offset_ms(&self, offset_ms: f64) -> Result<(), PgError> {
        write_offset(&self.0, offset_ms)
    }
}

/// Who the servers run as: the `postgres` user when the lab is root.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// `None` when the lab is not root (the servers run as the lab's user).
    pub fn for_servers() -> Result<Option<Owner>, PgError> {
        // SAFETY: geteuid has no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        let name = c"postgres";
        // SAFETY: getpwnam with a NUL-terminated name; the entry is read at once.
        let entry = unsafe { libc::getpwnam(name.as_ptr()) };
        if entry.is_null() {
            return Err(PgError::Missing(
                "PostgreSQL refuses to run as root, and there is no `postgres` user to run it as \
                 (the postgresql-15 package creates one)"
                    .into(),
            ));
        }
        // SAFETY: non-null, from getpwnam, read before any other call.
        let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
        Ok(Some(Owner { uid, gid }))
    }

    /// Gives `path` to the owner.
    pub fn take(&self, path: &Path) -> Result<(), PgError> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(|error| PgError::Setup(format!("cannot give {} to postgres: {error}", path.display())))
    }
}

/// Why a started server is not serving.
enum Unready {
    /// It exited (a port taken under it, a bad setting).
    Exited(String),
    /// It runs and does not answer.
    NotReady(String),
}
use Unready::{Exited, NotReady};

/// One running server.
pub struct PgServer {
    pub node: usize,
    pub addr: SocketAddr,
    clock_file: PathBuf,
    log_file: PathBuf,
    child: Child,
}

impl PgServer {
    /// Makes node `node`'s data directory under `root` and starts its
    /// server, its clock at true time; returns once it accepts connections.
    pub async fn start(
        install: &Installation,
        root: &Path,
        node: usize,
        owner: Option<Owner>,
        settings: &[(&str, String)],
    ) -> Result<PgServer, PgError> {
        let dir = root.join(format!("node-{node}"));
        let io = |what: &str, error: std::io::Error| PgError::Setup(format!("{what}: {error}"));
        std::fs::create_dir_all(&dir).map_err(|error| io("cannot make a node directory", error))?;
        let clock_file = dir.join("clock");
        write_offset(&clock_file, 0.0)?;
        if let Some(owner) = owner {
            owner.take(&dir)?;
        }
        let data = dir.join("data");
        let mut initdb = Command::new(install.initdb());
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", ROLE, "--no-sync", "-E", "UTF8", "--locale=C"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        as_owner(&mut initdb, owner);
        let made = initdb.output().await.map_err(|error| io("cannot run initdb", error))?;
        if !made.status.success() {
            return Err(PgError::Setup(format!(
                "initdb failed for node {node}: {}",
                String::from_utf8_lossy(&made.stderr).trim()
            )));
        }
        // A port free now may be taken before the server binds it (another
        // lab starting beside this one): then the server exits at once, and
        // it is started again on another.
        let mut attempt = 1;
        loop {
            let port = free_port().map_err(|error| io("cannot find a free port", error))?;
            let log_file = dir.join("server.log");
            let log = std::fs::File::create(&log_file)
                .map_err(|error| io("cannot make the server's log", error))?;
            let log_err = log.try_clone().map_err(|error| io("cannot share the server's log", error))?;
            let mut postgres = Command::new(install.postgres());
            postgres.arg("-D").arg(&data).args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
            ]);
            for (name, value) in settings {
                postgres.arg("-c").arg(format!("{name}={value}"));
            }
            postgres
                .env("LD_PRELOAD", &install.faketime)
                .env("FAKETIME_TIMESTAMP_FILE", &clock_file)
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .stdin(std::process::Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .kill_on_drop(true);
            as_owner(&mut postgres, owner);
            #[cfg(target_os = "linux")]
            // SAFETY: `die_with_parent` is async-signal-safe; it runs after the
            // uid change, so the death signal survives it.
            unsafe {
                postgres.pre_exec(crate::strategy::plugin::process::die_with_parent);
            }
            let child = postgres.spawn().map_err(|error| io("cannot start postgres", error))?;
            let mut server = PgServer {
                node,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                clock_file: clock_file.clone(),
                log_file,
                child,
            };
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(Exited(_)) if attempt < START_ATTEMPTS => attempt += 1,
                Err(Exited(why) | NotReady(why)) => return Err(PgError::Setup(why)),
            }
        }
    }

    /// The connection string of its database `database`.
    pub fn dsn(&self, database: &str) -> String {
        format!("host=127.0.0.1 port={} dbname={database} user={ROLE}", self.addr.port())
    }

    /// A connection to its administrative database ([`DATABASE`]).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, PgError> {
        self.connect_to(DATABASE).await
    }

    /// A connection to its database `database`; the connection's task runs
    /// until the client is dropped.
    pub async fn connect_to(&self, database: &str) -> Result<tokio_postgres::Client, PgError> {
        let (client, connection) =
            tokio_postgres::connect(&self.dsn(database), tokio_postgres::NoTls).await.map_err(|error| {
                PgError::Sql(format!("node {}: cannot connect to {database}: {error}", self.node))
            })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    async fn wait_ready(&mut self) -> Result<(), Unready> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if self.connect().await.is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Exited(format!(
                    "node {}'s server exited ({status}) as it started; its log: {}",
                    self.node,
                    self.log_tail()
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NotReady(format!(
                    "node {}'s server did not accept connections within {START_TIMEOUT:?}; its log: {}",
                    self.node,
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sets its clock `offset_ms` from true time (positive: ahead), at once.
    pub fn set_offset_ms(&self, offset_ms: f64) -> Result<(), PgError> {
        write_offset(&self.clock_file, offset_ms)
    }

    /// Its clock, to set from elsewhere (a step due later, say).
    pub fn clock(&self) -> ClockFile {
        ClockFile(self.clock_file.clone())
    }

    /// The last lines of its log, for an error message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
    }

    /// The last few `ERROR` and `FATAL` lines of its log, for an error message.
    pub fn log_errors(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> =
            text.lines().filter(|line| line.contains("ERROR:") || line.contains("FATAL:")).collect();
        match lines.len() {
            0 => format!("none; its log ends: {}", self.log_tail()),
            count => lines[count.saturating_sub(5)..].join(" / "),
        }
    }

    /// The process its log last named as holding a replication origin
    /// another process wanted ("... is already active for PID P").
    pub fn origin_holder(&self) -> Option<i32> {
        const HELD: &str = "is already active for PID ";
        let text = self.log();
        let line =
            text.lines().rev().find(|line| line.contains("replication origin") && line.contains(HELD))?;
        let after = &line[line.find(HELD)? + HELD.len()..];
        after.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    }

    /// Its whole log (pglogical's conflict lines are there).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A fast shutdown, then a kill if it takes too long.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        }
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// How long a dropped server has to pass an immediate shutdown on to its
/// backends before it is killed.
const QUIT_GRACE: Duration = Duration::from_millis(500);

impl Drop for PgServer {
    fn drop(&mut self) {
        // An immediate shutdown: the postmaster passes SIGQUIT on to its
        // backends and workers, given a moment to; then `kill_on_drop` makes
        // sure of the postmaster (children it had no time to tell leave as
        // soon as they notice it gone).
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGQUIT) };
            let deadline = std::time::Instant::now() + QUIT_GRACE;
            while std::time::Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// libfaketime's relative form: seconds, signed.
fn write_offset(clock_file: &Path, offset_ms: f64) -> Result<(), PgError> {
    let text = format!("{:+.3}\n", offset_ms / 1e3);
    // Written whole, then renamed: a server never reads half a line.
    let staging = clock_file.with_extension("new");
    std::fs::write(&staging, text)
        .and_then(|()| std::fs::rename(&staging, clock_file))
        .map_err(|error| PgError::Setup(format!("cannot set the clock in {}: {error}", clock_file.display())))
}

fn as_owner(command: &mut Command, owner: Option<Owner>) {
    if let Some(owner) = owner {
        command.uid(owner.uid).gid(owner.gid);
    }
}

/// A port free on 127.0.0.1 now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}
