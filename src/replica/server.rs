//! The replica's HTTP API (docs/design.md, "The replica's HTTP API").
//!
//! Clients: `GET` and `PUT /kv/{bucket}/{key}`. Admin (needs the cluster
//! token in `x-cluster-token`): `PUT /admin/clock`, `PUT /admin/links`,
//! `GET /admin/status`, and `GET /admin/state` (every key of every bucket,
//! for the runner's final read). Peers: `POST /replication/push`.
//!
//! Handlers only translate: they parse and check the request, hand it to
//! the worker, and turn the answer into JSON. Every refusal is a 4xx with
//! `{"error": "..."}`; bodies are parsed by hand so that even malformed
//! JSON gets that shape, not a framework's plain-text message. The answers'
//! types ([`Status`], [`LinkReply`], [`Snapshot`], and the core's
//! `ReadReply` and `WriteReply`) are the ones [`super::client`] reads back.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::core::{CoreError, Status};
use super::links::{LinkError, LinkSettings, LinkUpdate, Links};
use super::offsets::OffsetMonitor;
use super::replication::{PUSH_PATH, PushReply, PushRequest, TOKEN_HEADER};
use super::worker::{Stopped, WorkerHandle};
use crate::clock::dots::ReplicaId;
use crate::clock::physical::PhysicalClock;
use crate::clock::update::{ClockError, ClockUpdate};
use crate::lease::Token;
use crate::strategy::{RawJson, StrategyError};

/// The largest client or admin request body, in bytes (64 KiB).
pub const MAX_CLIENT_BODY_BYTES: usize = 64 * 1024;
/// The largest replication push, in bytes (64 MiB).
pub const MAX_PUSH_BODY_BYTES: usize = 64 * 1024 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct ServerState {
    pub worker: WorkerHandle,
    pub links: Arc<Links>,
    pub token: Arc<str>,
    /// The replica's physical clock, as the worker last published it.
    pub clock: watch::Receiver<PhysicalClock>,
    pub offsets: Arc<OffsetMonitor>,
    /// Refuse client writes while the clock is this far off from most peers.
    pub max_peer_offset_ms: Option<f64>,
    pub peers: usize,
}

/// An HTTP error: a status and a sentence, sent as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        let status = match &error {
            CoreError::UnknownBucket(..) => StatusCode::NOT_FOUND,
            CoreError::Strategy(StrategyError::ContextAhead)
            | CoreError::Clock(ClockError::SystemClock)
            | CoreError::Fenced { .. } => StatusCode::CONFLICT,
            // Not the request's fault: the bucket's plugin broke.
            CoreError::BucketFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, error.to_string())
    }
}

impl From<Stopped> for ApiError {
    fn from(error: Stopped) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
    }
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> Self {
        let status = match error {
            LinkError::UnknownPeer(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, error.to_string())
    }
}

/// Parses a JSON body, turning every failure into a JSON 4xx.
fn parse_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    serde_json::from_slice(&body).map_err(|error| {
        let problem = match error.classify() {
            // Well-formed JSON that says something the API refuses.
            serde_json::error::Category::Data => format!("refused: {error}"),
            _ => format!("malformed JSON body: {error}"),
        };
        ApiError::new(StatusCode::BAD_REQUEST, problem)
    })
}

type ApiResult = Result<Response, ApiError>;

/// The body of `PUT /kv/{bucket}/{key}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    pub value: RawJson,
    #[serde(default)]
    pub context: Value,
    /// The writer's fencing token, if it fences (DDIA Figure 8-5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<Token>,
}

/// The answer to `PUT /admin/links`: the link to `peer` as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkReply {
    pub peer: ReplicaId,
    pub link: LinkSettings,
}

pub use super::core::Snapshot;

async fn get_key(State(state): State<ServerState>, Path((bucket, key)): Path<(String, String)>) -> ApiResult {
    let reply = state.worker.read(bucket, key).await??;
    Ok(Json(reply).into_response())
}

async fn put_key(
    State(state): State<ServerState>,
    Path((bucket, key)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body: PutBody = parse_body(body)?;
    if let Some(bound) = state.max_peer_offset_ms
        && let Some(reason) = state.offsets.out_of_bounds(bound, state.peers)
    {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason));
    }
    let reply = state.worker.write(bucket, key, body.value, body.context, body.fence).await??;
    if let Some(acknowledge_at) = reply.acknowledge_at {
        commit_wait(&state.clock, acknowledge_at).await;
        state.worker.release().await?;
    }
    Ok(Json(reply).into_response())
}

/// Holds an acknowledgement until the replica's physical clock reads
/// `until` (`truetime`'s commit wait). The clock is read again after each
/// sleep, since a clock model may drift or be stepped meanwhile.
async fn commit_wait(clock: &watch::Receiver<PhysicalClock>, until: crate::clock::Nanos) {
    loop {
        let now = clock.borrow().now();
        if now >= until {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_nanos((until - now) as u64)).await;
    }
}

async fn put_clock(State(state): State<ServerState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let update: ClockUpdate = parse_body(body)?;
    let status = state.worker.update_clock(update).await??;
    Ok(Json(with_links(&state, status)).into_response())
}

async fn put_links(State(state): State<ServerState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let update: LinkUpdate = parse_body(body)?;
    let link = state.links.update(&update)?;
    Ok(Json(LinkReply { peer: update.peer, link }).into_response())
}

async fn get_status(State(state): State<ServerState>) -> ApiResult {
    let status = state.worker.status().await?;
    Ok(Json(with_links(&state, status)).into_response())
}

/// The core's status with what only the server knows: links and peer offsets.
fn with_links(state: &ServerState, mut status: Status) -> Status {
    status.links = state.links.all().into_iter().collect();
    status.peer_offsets = state.offsets.estimates();
    status
}

async fn get_state(State(state): State<ServerState>) -> ApiResult {
    Ok(Json(state.worker.snapshot().await?).into_response())
}

async fn push(State(state): State<ServerState>, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let request: PushRequest = parse_body(body)?;
    let received_ns = state.clock.borrow().now();
    if !state.links.get(request.from).accepts() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the link from replica {} is cut", request.from),
        ));
    }
    let have = state.worker.receive(request.writes).await??;
    let replied_ns = Some(state.clock.borrow().now());
    Ok(Json(PushReply { have, received_ns: Some(received_ns), replied_ns }).into_response())
}

/// Refuses admin and replication requests without the cluster token.
async fn require_token(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let given = request.headers().get(TOKEN_HEADER).and_then(|value| value.to_str().ok());
    if given == Some(&*state.token) {
        next.run(request).await
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, format!("missing or wrong {TOKEN_HEADER} header"))
            .into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; docs/design.md lists the API")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint")
}

/// The replica's routes.
pub fn router(state: ServerState) -> Router {
    let client = Router::new()
        .route("/kv/{bucket}/{key}", get(get_key).put(put_key))
        .layer(DefaultBodyLimit::max(MAX_CLIENT_BODY_BYTES));
    let admin = Router::new()
        .route("/admin/clock", put(put_clock))
        .route("/admin/links", put(put_links))
        .route("/admin/status", get(get_status))
        .route("/admin/state", get(get_state))
        .layer(DefaultBodyLimit::max(MAX_CLIENT_BODY_BYTES));
    let replication =
        Router::new().route(PUSH_PATH, post(push)).layer(DefaultBodyLimit::max(MAX_PUSH_BODY_BYTES));
    let protected =
        admin.merge(replication).route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    client
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
