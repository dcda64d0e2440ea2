//! `clocklab replica` says it is ready only when it is: a supervisor (or the
//! runner) that reads its ready line can rely on the replica being up. A
//! replica that cannot start prints no ready line, exits non-zero, and says
//! why in one line.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

/// Runs a replica on `data` and returns what it did (it exits at once if it
/// cannot start; the tests below only start replicas that cannot).
fn replica(data: &Path, listen: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["replica", "--id", "1", "--cluster-token", "t", "--listen", listen, "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run clocklab replica")
}

/// It failed, printed no ready line, and its one error line contains `named`.
fn refused(output: &Output, named: &[&str]) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it should have failed; stderr: {stderr}");
    assert_eq!(stdout, "", "no ready line");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for part in named {
        assert!(lines[0].contains(part), "{part:?} in {stderr}");
    }
}

#[test]
fn a_corrupt_sqlite_file_is_named_and_no_ready_line_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("replica.sqlite3");
    std::fs::write(&database, "this is not a SQLite database, only text pretending to be one ".repeat(80))
        .unwrap();
    let output = replica(dir.path(), "127.0.0.1:0");
    refused(&output, &[&database.display().to_string(), "not a database"]);
}

#[test]
fn a_data_path_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "a file").unwrap();
    let output = replica(&file, "127.0.0.1:0");
    refused(&output, &[&file.display().to_string(), "is a file, not a directory"]);
}

#[test]
fn a_port_in_use_is_refused() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = replica(&dir.path().join("data"), &address);
    refused(&output, &[&address]);
}

/// Starts a replica that can start, on `data` with `flags`, and returns it
/// with its ready line, and whether a connection to its address succeeded
/// right after that line (then the replica is killed).
fn start_healthy(
    data: &Path,
    flags: &[&str],
) -> (clocklab::replica::Ready, std::io::Result<std::net::TcpStream>) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_clocklab"))
        .args(["replica", "--id", "1", "--cluster-token", "t"])
        .args(flags)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start clocklab replica");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("a ready line");
    let ready: Result<clocklab::replica::Ready, _> = serde_json::from_str(&line);
    let answer = ready
        .as_ref()
        .map_err(|_| std::io::Error::other("no ready line"))
        .and_then(|ready| std::net::TcpStream::connect(ready.addr));
    let _ = child.kill();
    let _ = child.wait();
    (ready.expect("the ready line is JSON"), answer)
}

#[test]
fn a_healthy_replica_prints_its_ready_line_once_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (ready, answer) = start_healthy(dir.path(), &[]);
    assert_eq!(ready.id, 1);
    // Ready means ready: it answers at once, with no retry.
    assert!(answer.is_ok(), "the replica answered right after its ready line");
    assert!(dir.path().join("replica.sqlite3").is_file(), "its store was open");
}

/// The runner holds each replica's port for the cluster's life (see
/// `PortReservation`): no other socket can take it, a connection to it is
/// refused while no replica listens, and a replica started with
/// `--reuse-port` takes it over, again after a crash.
#[test]
fn a_reserved_port_is_held_for_its_replica_alone() {
    let reservation = clocklab::engine::processes::cluster::PortReservation::new().expect("a reservation");
    let address = reservation.addr().to_string();
    assert!(std::net::TcpStream::connect(&address).is_err(), "nobody listens yet, so it is refused");
    assert!(TcpListener::bind(&address).is_err(), "no other socket can take the port");
    let dir = tempfile::tempdir().unwrap();
    refused(&replica(dir.path(), &address), &[&address]);
    for start in ["first start", "restart after a crash"] {
        let (ready, answer) = start_healthy(dir.path(), &["--reuse-port", "--listen", &address]);
        assert_eq!(ready.addr, reservation.addr(), "{start}: on the reserved port");
        assert!(answer.is_ok(), "{start}: the replica answers on it");
        assert!(std::net::TcpStream::connect(&address).is_err(), "{start}: refused again once it is down");
    }
}
