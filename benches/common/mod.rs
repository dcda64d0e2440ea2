//! What the whole-command benchmarks share: running the release binary as
//! a user does and measuring it from outside.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The release binary, built beforehand (`cargo build --release`).
pub fn binary() -> PathBuf {
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/clocklab");
    assert!(binary.is_file(), "build the release binary first: cargo build --release");
    binary
}

/// One run of the binary, as measured from outside.
pub struct Measured {
    pub wall_s: f64,
    /// The process's maximum resident set, MB (from `wait4`).
    pub peak_mb: f64,
    pub stderr: String,
}

impl Measured {
    /// The acknowledged writes the run's last lines count.
    pub fn acknowledged(&self) -> u64 {
        self.stderr
            .lines()
            .find_map(|line| line.split_once(" writes acknowledged").map(|(count, _)| count))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Runs `clocklab ARGS` to the end, its progress lines shown as they come
/// when `show` (a long run), and measures it; panics if it fails.
pub fn run_clocklab<S: AsRef<OsStr>>(args: &[S], show: bool) -> Measured {
    let started = Instant::now();
    #[expect(clippy::zombie_processes, reason = "reaped by wait4 below, which also tells its peak memory")]
    let child = Command::new(binary())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start clocklab");
    let pid = child.id() as libc::pid_t;
    let stderr = child.stderr.map(|stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
                if show && !line.contains(" simulated") {
                    eprintln!("  {line}");
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        })
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers.
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall_s = started.elapsed().as_secs_f64();
    let stderr = stderr.and_then(|thread| thread.join().ok()).unwrap_or_default();
    assert!(status == 0, "the run failed: {stderr}");
    Measured { wall_s, peak_mb: usage.ru_maxrss as f64 / 1024.0, stderr }
}
