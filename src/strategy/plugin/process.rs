//! A plugin's process: spawned, spoken to over pipes, and never left behind.
//!
//! One request line goes to the plugin's stdin, one answer line comes back
//! on its stdout, with a timeout. The caller reads the answer itself,
//! waiting in `poll(2)` with the timeout: a round trip is then two context
//! switches (to the plugin and back), not four through a reader thread. Its stderr is kept (the last lines) for
//! error messages, so a student sees their own traceback.
//!
//! The process must never outlive its replica, however the replica ends:
//!
//! - dropped (the replica stops, a trial ends): the plugin is killed and
//!   reaped;
//! - killed itself (`kill -9`, a crash fault): on Linux the kernel kills the
//!   plugin too (`PR_SET_PDEATHSIG`). The kernel ties that signal to the
//!   *thread* that spawned the child, and a thread pool may end its threads
//!   when it likes, so each plugin is spawned by a small thread of its own
//!   that waits, parked, until the plugin is dropped;
//! - the plugin hangs: past the timeout it is killed.
//!
//! After any failure the process is finished: every later call fails at
//! once with the same failure, so a broken plugin costs one timeout, not one
//! per write.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{PluginFailure, Problem};

/// How many lines of a plugin's stderr an error message quotes.
pub const STDERR_LINES: usize = 12;

/// The longest answer line read, in bytes; a longer one is a failure (it
/// would otherwise grow without bound on a plugin that never ends a line).
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// How long a caller checks for the answer before it sleeps in `poll`:
/// a quick plugin answers within it, and the caller then never pays for
/// being woken (tens of microseconds on a virtual machine).
pub const SPIN: Duration = Duration::from_micros(100);

/// A running plugin process.
pub struct PluginProcess {
    /// The plugin as the user named it, for messages.
    plugin: String,
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Bytes read from stdout and not yet handed out as lines.
    unread: Vec<u8>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    failure: Option<PluginFailure>,
    /// Dropped with the process, which ends the thread that spawned it.
    _spawner: mpsc::Sender<()>,
}

impl PluginProcess {
    /// Starts `path` (with no arguments) with its stdin, stdout and stderr
    /// piped to us.
    pub fn spawn(path: &Path) -> Result<Self, PluginFailure> {
        let plugin = path.display().to_string();
        let fail = |problem: Problem| PluginFailure::new(&plugin, "init", "", problem, Vec::new());
        check_executable(path).map_err(|reason| fail(Problem::Start(reason)))?;
        let (started_sender, started) = mpsc::channel();
        let (spawner, parked) = mpsc::channel::<()>();
        let program = program_path(path);
        std::thread::Builder::new()
            .name(format!("plugin {plugin}"))
            .spawn(move || {
                let _ = started_sender.send(start(&program));
                // Parked until the process is dropped: see the module docs.
                let _ = parked.recv();
            })
            .map_err(|error| fail(Problem::Start(format!("cannot start its thread: {error}"))))?;
        let mut child = match started.recv() {
            Ok(Ok(child)) => child,
            Ok(Err(error)) => return Err(fail(Problem::Start(error.to_string()))),
            Err(_) => return Err(fail(Problem::Start("its thread ended".into()))),
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(Problem::Start("its pipes were not opened".into())));
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let kept = Arc::clone(&tail);
        // Draining stderr also keeps a chatty plugin from blocking on a full pipe.
        let _ = std::thread::Builder::new().name(format!("plugin {plugin} stderr")).spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if kept.len() == STDERR_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        Ok(Self {
            plugin,
            child,
            stdin,
            stdout,
            unread: Vec::new(),
            stderr: tail,
            failure: None,
            _spawner: spawner,
        })
    }

    /// Sends one request line and waits up to `timeout` for the answer line.
    /// `request` names the request's type, for messages.
    pub fn call(&mut self, request: &str, line: &str, timeout: Duration) -> Result<String, PluginFailure> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let sent = self.stdin.write_all(line.as_bytes()).and_then(|()| self.stdin.write_all(b"\n"));
        let answer = match sent.and_then(|()| self.stdin.flush()) {
            Err(_) => Err(self.ended()),
            Ok(()) => match self.read_line(Instant::now() + timeout) {
                Ok(Some(answer)) => Ok(answer),
                Ok(None) => Err(self.ended()),
                Err(Unanswered::TimedOut) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    Err(Problem::TimedOut(timeout))
                }
                Err(Unanswered::Unreadable(problem)) => Err(Problem::Unreadable(problem)),
            },
        };
        answer.map_err(|problem| self.fail(request, line, problem))
    }

    /// The next line on stdout, waiting until `deadline`; `None` if stdout
    /// closed first.
    fn read_line(&mut self, deadline: Instant) -> Result<Option<String>, Unanswered> {
        use std::io::Read as _;
        use std::os::fd::AsRawFd as _;
        let mut searched = 0;
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.unread[searched..]) {
                let rest = self.unread.split_off(searched + end + 1);
                let mut line = std::mem::replace(&mut self.unread, rest);
                line.truncate(line.len() - 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let text =
                    String::from_utf8(line).map_err(|_| "it sent a line that is not UTF-8".to_string());
                return text.map(Some).map_err(Unanswered::Unreadable);
            }
            searched = self.unread.len();
            if self.unread.len() > MAX_ANSWER_BYTES {
                return Err(Unanswered::Unreadable(format!(
                    "it sent a line longer than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let mut watched = libc::pollfd { fd: self.stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let millis = left.as_millis().min(i32::MAX as u128) as i32
                + i32::from(!left.subsec_nanos().is_multiple_of(1_000_000));
            let spin_until = Instant::now() + SPIN;
            let mut ready = 0;
            while Instant::now() < spin_until {
                // SAFETY: one valid pollfd, for the duration of the call.
                ready = unsafe { libc::poll(&mut watched, 1, 0) };
                if ready != 0 {
                    break;
                }
                std::hint::spin_loop();
            }
            if ready == 0 {
                // SAFETY: as above.
                ready = unsafe { libc::poll(&mut watched, 1, millis) };
            }
            if ready == 0 {
                return Err(Unanswered::TimedOut);
            }
            if ready < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Unanswered::Unreadable(format!("its stdout could not be watched: {error}")));
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stdout.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(read) => self.unread.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(Unanswered::Unreadable(format!("its stdout could not be read: {error}")));
                }
            }
        }
    }

    /// Records a failure found in an answer (malformed for its request):
    /// the process is finished, and killed.
    pub fn reject(&mut self, request: &str, line: &str, problem: Problem) -> PluginFailure {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.fail(request, line, problem)
    }

    fn fail(&mut self, request: &str, line: &str, problem: Problem) -> PluginFailure {
        // Let the stderr thread catch the last lines of a dying plugin.
        let deadline = std::time::Instant::now() + Duration::from_millis(200);
        while self.child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stderr =
            self.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect();
        let failure = PluginFailure::new(&self.plugin, request, line, problem, stderr);
        self.failure = Some(failure.clone());
        failure
    }

    /// The problem when the plugin stopped talking: how it exited, if it has.
    fn ended(&mut self) -> Problem {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Problem::Exited(format!("exited ({status})")),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Problem::Exited("closed its pipes, and was killed,".into());
                }
            }
        }
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why `path` cannot be run, in words a student can act on.
fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|error| format!("cannot read it: {error}"))?;
    if !metadata.is_file() {
        return Err("it is not a file".into());
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err("it is not executable (give it a #! line and `chmod +x` it)".into());
    }
    Ok(())
}

/// A path `Command` runs as a file, never looked up on `PATH`.
fn program_path(path: &Path) -> PathBuf {
    if path.components().count() == 1 { Path::new(".").join(path) } else { path.to_path_buf() }
}

/// For a child between fork and exec (a `pre_exec` hook): asks the kernel
/// to SIGKILL it when the thread that spawned it ends, so that not even a
/// `kill -9` of its parent leaves it behind. Used for replicas and plugins.
///
/// # Safety
/// It runs in the forked child, so it may only make async-signal-safe
/// calls: it makes one, `prctl(2)`, and touches no memory of the parent's.
#[cfg(target_os = "linux")]
pub fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: prctl with these arguments reads and writes no memory.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Why no answer line came.
enum Unanswered {
    TimedOut,
    Unreadable(String),
}

/// Spawns the plugin with its three pipes, asking the kernel to kill it
/// when the spawning thread ends.
fn start(program: &Path) -> std::io::Result<Child> {
    let mut command = Command::new(program);
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: see `die_with_parent`.
        unsafe {
            command.pre_exec(die_with_parent);
        }
    }
    command.spawn()
}
