use std::process::ExitCode;

use clap::Parser;
use clocklab::cli::{AnalyzeArgs, Cli, Command, DashboardArgs, ExperimentArgs, ReplicaArgs};
use tracing_subscriber::EnvFilter;

/// mimalloc: replicas allocate many small, short-lived objects (JSON values,
/// requests), where it beats the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
        Command::Experiment(args) => runtime.block_on(experiment(args)),
        Command::Analyze(args) => analyze(args),
        Command::Dashboard(args) => runtime.block_on(dashboard(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn replica(args: ReplicaArgs) -> Result<(), String> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let options = args.options(seed)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    let addr = listener.local_addr().map_err(|error| error.to_string())?;
    tracing::info!(id = options.id, %addr, seed, "replica listening");
    println!("{}", serde_json::json!({ "id": options.id, "addr": addr.to_string() }));
    clocklab::replica::run(options, listener, shutdown_signal()).await.map_err(|error| error.to_string())
}

/// Runs an experiment; Ctrl-C or SIGTERM stops it, and its replicas with it.
async fn experiment(args: ExperimentArgs) -> Result<(), String> {
    let options = args.options();
    clocklab::experiment::run(&options, shutdown_signal())
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

fn analyze(args: AnalyzeArgs) -> Result<(), String> {
    let table = clocklab::report::reanalyze(&args.run_dir).map_err(|error| error.to_string())?;
    print!("{table}");
    Ok(())
}

/// Serves the dashboard until Ctrl-C or SIGTERM; its lab's replicas stop with it.
async fn dashboard(args: DashboardArgs) -> Result<(), String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    println!("clocklab dashboard on http://{address}/ (Ctrl-C stops it)");
    clocklab::dashboard::serve(listener, args.options(), shutdown_signal())
        .await
        .map_err(|error| error.to_string())
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
