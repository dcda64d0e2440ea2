//! `clocklab lease-worker`: one lease worker as a real process.
//!
//! The process runs one [`Worker`] loop per guard (`crate::lease::worker`),
//! each a task that carries out what its loop asks over real sockets: the
//! lock service over HTTP, the protected value on a replica through
//! [`ReplicaClient`]. Its time-of-day clock is a modelled clock the runner
//! can bend (`PUT /admin/clock`); its monotonic clock is the kernel's,
//! which keeps counting while the process is stopped. So a SIGSTOP is a real
//! pause, landing wherever the process happens to be, between a check and a
//! write included (DDIA Figure 8-4).
//!
//! The runner starts the loops (`POST /admin/start`), and afterwards reads
//! what the worker recorded (`GET /admin/records`); every admin request
//! needs the cluster token, and the process listens on loopback only.

pub mod api;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::Value;

use self::api::{LockRequest, RecordsReply, StartBody, acquire_path, renew_path};
use crate::clock::Nanos;
use crate::clock::dots::ReplicaId;
use crate::clock::physical::{PhysicalClock, SystemTrueTime, system_now};
use crate::clock::update::ClockUpdate;
use crate::history::{LeaseEvent, LeaseRecord};
use crate::lease::service::Answer;
use crate::lease::worker::{Action, Input, Note, Readings, Timing, Worker, WriteOutcome};
use crate::lease::{Guard, Token, WorkerId, key_of};
use crate::replica::client::{ClientError, ReplicaClient};
use crate::replica::replication::TOKEN_HEADER;
use crate::strategy::RawJson;

/// How long a request to the service or the storage may take before it
/// counts as unanswered.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// What a worker process is told at start.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub id: WorkerId,
    pub service: SocketAddr,
    /// The replica it writes to, and where it listens.
    pub storage_id: ReplicaId,
    pub storage: SocketAddr,
    pub bucket: String,
    pub guards: Vec<Guard>,
    pub timing: Timing,
    /// The cluster token: asked of the runner, given to the service and the replica.
    pub token: String,
}

/// What the loops and the admin API share.
struct Shared {
    options: WorkerOptions,
    clock: Mutex<PhysicalClock>,
    /// The origin of the loops' monotonic readings.
    origin: Instant,
    records: Mutex<Vec<LeaseRecord>>,
    running: AtomicUsize,
    started: Mutex<bool>,
    http: reqwest::Client,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves a worker on `listener` until `shutdown` completes.
pub async fn serve(
    options: WorkerOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        options,
        clock: Mutex::new(PhysicalClock::modelled(Arc::new(SystemTrueTime))),
        origin: Instant::now(),
        records: Mutex::new(Vec::new()),
        running: AtomicUsize::new(0),
        started: Mutex::new(false),
        http: reqwest::Client::new(),
    });
    let router = Router::new()
        .route("/admin/clock", put(put_clock))
        .route("/admin/start", post(start))
        .route("/admin/records", get(records))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&shared), require_token))
        .with_state(shared);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

async fn require_token(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let given = request.headers().get(TOKEN_HEADER).and_then(|value| value.to_str().ok());
    if given == Some(shared.options.token.as_str()) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": format!("missing or wrong {TOKEN_HEADER} header")})),
        )
            .into_response()
    }
}

async fn put_clock(State(shared): State<Arc<Shared>>, Json(update): Json<ClockUpdate>) -> Response {
    match lock(&shared.clock).update(&update) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => {
            (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": error.to_string()}))).into_response()
        }
    }
}

async fn start(State(shared): State<Arc<Shared>>, Json(body): Json<StartBody>) -> Response {
    {
        let mut started = lock(&shared.started);
        if *started {
            let error = serde_json::json!({"error": "the loops have already started"});
            return (StatusCode::CONFLICT, Json(error)).into_response();
        }
        *started = true;
    }
    let until = Instant::now() + Duration::from_millis(body.for_ms);
    for &guard in &shared.options.guards {
        shared.running.fetch_add(1, Ordering::SeqCst);
        let (shared, body, after) =
            (Arc::clone(&shared), body.clone(), Duration::from_secs_f64(body.after_ms.max(0.0) / 1e3));
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            run_loop(shared, guard, body, until).await;
        });
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn records(State(shared): State<Arc<Shared>>) -> Json<RecordsReply> {
    let done = *lock(&shared.started) && shared.running.load(Ordering::SeqCst) == 0;
    Json(RecordsReply { done, records: lock(&shared.records).clone() })
}

/// One guard's loop, until `until`; then the round in flight ends and the
/// loop stops.
async fn run_loop(shared: Arc<Shared>, guard: Guard, start: StartBody, until: Instant) {
    let options = &shared.options;
    let storage =
        ReplicaClient::new(options.storage, Some(Arc::from(options.token.as_str())), shared.http.clone());
    let mut worker = Worker::new(options.id, guard, options.timing);
    let mut input = Input::Start;
    let key = key_of(guard);
    let record = |token: Token, event: LeaseEvent, true_ns: Nanos| {
        let record = LeaseRecord {
            point: start.point,
            trial: start.trial,
            true_ns,
            worker: options.id,
            guard,
            token,
            event,
        };
        lock(&shared.records).push(record);
    };
    loop {
        let readings = Readings {
            wall_ns: lock(&shared.clock).now(),
            mono_ns: shared.origin.elapsed().as_nanos() as Nanos,
        };
        let (action, notes) = worker.step(input, readings);
        let now = system_now();
        for note in notes {
            match note {
                Note::Acquired { token, .. } => record(token, LeaseEvent::Acquired, now),
                Note::Checked { token, valid } => record(token, LeaseEvent::Checked { valid }, now),
                Note::Lost { token } => record(token, LeaseEvent::Lost, now),
            }
        }
        if Instant::now() >= until && matches!(action, Action::Acquire | Action::Sleep(_) | Action::Read) {
            break;
        }
        input = match action {
            Action::Acquire => ask_service(&shared, &acquire_path(guard), None).await,
            Action::Renew(token) => ask_service(&shared, &renew_path(guard), Some(token)).await,
            Action::Read => match storage.read(&options.bucket, &key, REQUEST_TIMEOUT).await {
                Ok(read) => Input::Value(
                    read.siblings
                        .iter()
                        .filter_map(|sibling| sibling.value.parse().get(0)?.as_u64())
                        .max()
                        .unwrap_or(0),
                ),
                Err(_) => Input::Failed,
            },
            Action::Write { value, fence } => {
                let invoke_ns = system_now();
                let written = storage
                    .write_fenced(
                        &options.bucket,
                        &key,
                        RawJson::of(&[value]),
                        Value::Null,
                        fence,
                        REQUEST_TIMEOUT,
                    )
                    .await;
                let outcome = match written {
                    Ok(_) => WriteOutcome::Ok,
                    Err(ClientError::Refused { status: 409, message, .. })
                        if message.starts_with("fenced") =>
                    {
                        WriteOutcome::Fenced
                    }
                    Err(_) => WriteOutcome::Failed,
                };
                let token = worker.token().unwrap_or(Token(0));
                let event = LeaseEvent::Write {
                    invoke_ns,
                    replica: options.storage_id,
                    read: value - 1,
                    wrote: value,
                    fenced: fence.is_some(),
                    outcome,
                };
                record(token, event, system_now());
                Input::Written(outcome)
            }
            Action::Sleep(for_ns) => {
                tokio::time::sleep(Duration::from_nanos(for_ns.max(0) as u64)).await;
                Input::Woke
            }
        };
    }
    shared.running.fetch_sub(1, Ordering::SeqCst);
}

/// One request to the lock service; no usable answer is [`Input::Failed`].
async fn ask_service(shared: &Shared, path: &str, token: Option<Token>) -> Input {
    let url = format!("http://{}{path}", shared.options.service);
    let body = LockRequest { worker: shared.options.id, token };
    let sent = shared
        .http
        .post(url)
        .header(TOKEN_HEADER, &shared.options.token)
        .json(&body)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await;
    match sent {
        Ok(reply) if reply.status().is_success() => match reply.json::<Answer>().await {
            Ok(answer) => Input::Service(answer),
            Err(_) => Input::Failed,
        },
        _ => Input::Failed,
    }
}
