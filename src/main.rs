use std::process::ExitCode;

use clap::Parser;
use clocklab::cli::{
    AnalyzeArgs, CheckArgs, Cli, Command, DashboardArgs, ExperimentArgs, ExploreArgs, LeaseWorkerArgs,
    MergeArgs, ReplicaArgs, StrategyCommand, ValidateArgs,
};
use tracing_subscriber::EnvFilter;

/// How long the command waits, once it has its answer, for work left on
/// the runtime's threads before it exits anyway.
const LEFTOVER_WORK_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// How often a long search says how far it has got within one level.
const EXPLORE_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// What a command ends with when it fails: the error itself, with its
/// sources, said on stderr as one line ([`said`]).
type Failure = Box<dyn std::error::Error>;

/// A listener that could not be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}")]
struct CannotListen {
    addr: std::net::SocketAddr,
    #[source]
    error: std::io::Error,
}

/// An error and each of its sources, as one line: a source whose words
/// the message already holds is not said twice.
fn said(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// mimalloc: replicas allocate many small, short-lived objects (JSON values,
/// requests), where it beats the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    clocklab::memory::use_small_pages();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Replica(args) => runtime.block_on(replica(args)),
        Command::LeaseWorker(args) => runtime.block_on(lease_worker(args)),
        Command::Experiment(args) => runtime.block_on(experiment(args)),
        Command::Analyze(args) => analyze(args),
        Command::Merge(args) => merge(&args),
        Command::Dashboard(args) => runtime.block_on(dashboard(args)),
        Command::Validate(args) => runtime.block_on(validate(args)),
        Command::Strategy(StrategyCommand::Check(args)) => check(&args),
        Command::Explore(args) => explore(&args),
    };
    // Work still on a thread of its own (an interrupted run's oracle) is
    // not waited for: the command has said what it had to.
    runtime.shutdown_timeout(LEFTOVER_WORK_WAIT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", said(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Checks a strategy's promises; fails (exit 1) with its counterexample.
fn check(args: &CheckArgs) -> Result<(), Failure> {
    if args.exhaustive {
        let search = search(args.lineup(), &args.bounds.bounds(), clocklab::explore::Target::BrokenPromise)?;
        println!("{search}");
        return match search.verdict {
            clocklab::explore::Verdict::NoneWithin => Ok(()),
            clocklab::explore::Verdict::Found { .. } => {
                Err(format!("{} does not keep its promises", search.strategy).into())
            }
            clocklab::explore::Verdict::GaveUp => Err("the search gave up before it was done".into()),
        };
    }
    let report = clocklab::conformance::check(&args.lineup(), &args.options())?;
    println!("{report}");
    if report.passed() {
        Ok(())
    } else {
        Err(format!("{} does not keep its promises", report.strategy).into())
    }
}

/// Searches every story within the bounds, shortest first, saying how far
/// it has got on stderr.
fn search(
    mut lineup: clocklab::strategy::plugin::Lineup,
    bounds: &clocklab::explore::Bounds,
    target: clocklab::explore::Target,
) -> Result<clocklab::explore::Search, Failure> {
    clocklab::strategy::plugin::describe_all(&mut lineup.plugins)?;
    bounds.check()?;
    let (strategy, _) = clocklab::explore::strategy_of(&lineup)?;
    eprintln!(
        "searching every story within {}, shortest first, for one in which {strategy} {}",
        bounds.describe(),
        target.describe()
    );
    let started = std::time::Instant::now();
    let mut said = started;
    let search = clocklab::explore::search(&lineup, bounds, target, |effort, level_done| {
        let seconds = started.elapsed().as_secs_f64();
        if level_done {
            eprintln!(
                "  every story of {} step(s) tried: {} states explored, {seconds:.1} s",
                effort.depth, effort.explored
            );
        } else if said.elapsed() >= EXPLORE_PROGRESS_EVERY {
            eprintln!(
                "  stories of {} steps: {} states explored so far, {seconds:.1} s",
                effort.depth, effort.explored
            );
        } else {
            return;
        }
        said = std::time::Instant::now();
    })?;
    eprintln!("{} states explored in {:.1} s", search.effort.explored, started.elapsed().as_secs_f64());
    Ok(search)
}

/// `clocklab explore`: the smallest story, printed and saved as a scenario.
fn explore(args: &ExploreArgs) -> Result<(), Failure> {
    let search = search(args.lineup(), &args.bounds.bounds(), args.cause)?;
    println!("{search}");
    match &search.verdict {
        clocklab::explore::Verdict::Found { story } => {
            std::fs::create_dir_all(&args.out)
                .map_err(|error| format!("cannot create {}: {error}", args.out.display()))?;
            for (extension, text) in [("toml", story.toml.clone()), ("golden", story.golden.clone())] {
                let path = args.out.join(format!("{}.{extension}", story.name));
                std::fs::write(&path, text)
                    .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
                println!("wrote {}", path.display());
            }
            println!(
                "To play it in the dashboard's step-through, copy the .toml into experiments/scenarios/ \
                 (or press \"Find the smallest story\" on the dashboard's scenarios page)."
            );
            Ok(())
        }
        clocklab::explore::Verdict::NoneWithin => Ok(()),
        clocklab::explore::Verdict::GaveUp => Err("the search gave up before it was done".into()),
    }
}

/// Starts a replica. The ready line goes out only once the store is open,
/// the log replayed and the listener bound, so whoever reads it can rely on
/// the replica being up; a failure before that prints no ready line.
async fn replica(args: ReplicaArgs) -> Result<(), Failure> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let options = args.options(seed)?;
    let id = options.id;
    // The port first: peers were told it, so it should be held at once.
    let listener =
        listen(args.listen, args.reuse_port).map_err(|error| CannotListen { addr: args.listen, error })?;
    let replica = clocklab::replica::Replica::open(options).await?;
    let addr = listener.local_addr()?;
    tracing::info!(id, %addr, seed, log_len = replica.log_len(), "replica ready");
    let ready = clocklab::replica::Ready { id, addr };
    announce(&serde_json::to_string(&ready)?)?;
    Ok(replica.serve(listener, shutdown_signal()).await?)
}

/// A lease worker process: listens, says where, and serves until stopped.
async fn lease_worker(args: LeaseWorkerArgs) -> Result<(), Failure> {
    let options = args.options()?;
    let worker = options.id;
    let listener = listen(args.listen, false).map_err(|error| CannotListen { addr: args.listen, error })?;
    let addr = listener.local_addr()?;
    let ready = clocklab::leaseholder::api::WorkerReady { worker, addr };
    announce(&serde_json::to_string(&ready)?)?;
    Ok(clocklab::leaseholder::serve(options, listener, shutdown_signal()).await?)
}

/// Binds a replica's listener; `reuse_port` shares a port its supervisor
/// reserved (see [`clocklab::engine::processes::cluster::PortReservation`]).
fn listen(addr: std::net::SocketAddr, reuse_port: bool) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Connections the kernel queues for a replica before it accepts them (the
/// figure `tokio::net::TcpListener::bind` uses).
const LISTEN_BACKLOG: u32 = 1024;

/// Prints a ready line and makes sure it has left the process.
fn announce(line: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|error| format!("cannot write to stdout: {error}").into())
}

/// Runs an experiment; Ctrl-C or SIGTERM stops it, and its replicas with it.
async fn experiment(args: ExperimentArgs) -> Result<(), Failure> {
    if args.list {
        let folder = args.folder();
        println!("experiments in {folder}:");
        let experiments = clocklab::experiment::list(&folder);
        let width = experiments.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        for (name, description) in experiments {
            let description = description.unwrap_or_else(|error| format!("(cannot be read: {error})"));
            println!("  {name:<width$}  {description}");
        }
        return Ok(());
    }
    let options = args.options();
    clocklab::runner::run(&options, shutdown_signal()).await?;
    Ok(())
}

/// Runs an experiment in both engines and compares them; Ctrl-C stops it.
async fn validate(args: ValidateArgs) -> Result<(), Failure> {
    let report = clocklab::validate::validate(&args.options(), shutdown_signal()).await?;
    print!("{report}");
    Ok(())
}

/// Joins a run's parts into one run and judges it.
fn merge(args: &MergeArgs) -> Result<(), Failure> {
    let (run, analysis) = clocklab::merge::merge(&args.parts, &args.results)?;
    print!("{}", clocklab::report::text_table(&analysis));
    eprintln!("results in {}", run.path().display());
    Ok(())
}

fn analyze(args: AnalyzeArgs) -> Result<(), Failure> {
    let analysis = clocklab::run_dir::RunDir::open(&args.run_dir).reanalyze()?;
    print!("{}", clocklab::report::text_table(&analysis));
    Ok(())
}

/// Serves the dashboard until Ctrl-C or SIGTERM; its lab's replicas stop
/// with it. The URL is printed once the dashboard can serve.
async fn dashboard(args: DashboardArgs) -> Result<(), Failure> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| CannotListen { addr: address, error })?;
    let mut options = args.options();
    // Started once here, so a plugin that cannot start is an error now, not in class.
    clocklab::strategy::plugin::describe_all(&mut options.plugins)?;
    let dashboard = clocklab::dashboard::Dashboard::new(listener, options)?;
    announce(&format!("clocklab dashboard on {}/ (Ctrl-C stops it)", dashboard.url()))?;
    Ok(dashboard.serve(shutdown_signal()).await?)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return interrupt.await.unwrap_or(()),
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
