//! The lock service of a lease trial on real processes: an HTTP server on
//! loopback inside the runner, one [`LockService`] per guard behind it.
//!
//! The workers are separate processes that the runner pauses and bends;
//! the service is the one party whose word is law, so it lives with the
//! runner, on a socket of its own, judging expiry by its own modelled
//! clock. It records every grant and renewal as it makes them, in true
//! time, for the history. Requests need the cluster token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use tokio::sync::oneshot;

use crate::clock::physical::{PhysicalClock, SystemTrueTime, system_now};
use crate::clock::update::ClockUpdate;
use crate::history::{LeaseEvent, LeaseRecord, TrialPlan};
use crate::lease::service::{Answer, LockService};
use crate::lease::{Guard, Token};
use crate::leaseholder::api::LockRequest;
use crate::replica::replication::TOKEN_HEADER;

struct Shared {
    locks: Mutex<BTreeMap<Guard, LockService>>,
    clock: Mutex<PhysicalClock>,
    records: Mutex<Vec<LeaseRecord>>,
    plan: TrialPlan,
    token: String,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running lock service; stopped when dropped.
pub struct LockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl LockServer {
    /// Starts a service for `guards`, leases of `ttl_ns` from `first_token`,
    /// on a free loopback port.
    pub async fn start(
        guards: &[Guard],
        ttl_ns: i64,
        first_token: Token,
        plan: TrialPlan,
        token: &str,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            locks: Mutex::new(
                guards.iter().map(|&guard| (guard, LockService::new(ttl_ns, first_token))).collect(),
            ),
            clock: Mutex::new(PhysicalClock::modelled(Arc::new(SystemTrueTime))),
            records: Mutex::new(Vec::new()),
            plan,
            token: token.to_string(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = Router::new().route("/lock/{guard}/{verb}", post(ask)).with_state(Arc::clone(&shared));
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self { addr, shared, shutdown: Some(shutdown) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the service's clock (from a checked spec).
    pub fn set_clock(&self, update: &ClockUpdate) {
        let _ = lock(&self.shared.clock).update(update);
    }

    /// Every grant and renewal so far.
    pub fn records(&self) -> Vec<LeaseRecord> {
        lock(&self.shared.records).clone()
    }
}

impl Drop for LockServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn refuse(status: StatusCode, error: String) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}

async fn ask(
    State(shared): State<Arc<Shared>>,
    Path((guard, verb)): Path<(String, String)>,
    headers: HeaderMap,
    Json(request): Json<LockRequest>,
) -> Response {
    if headers.get(TOKEN_HEADER).and_then(|value| value.to_str().ok()) != Some(shared.token.as_str()) {
        return refuse(StatusCode::UNAUTHORIZED, format!("missing or wrong {TOKEN_HEADER} header"));
    }
    let guard: Guard = match guard.parse() {
        Ok(guard) => guard,
        Err(error) => return refuse(StatusCode::NOT_FOUND, error),
    };
    let now = lock(&shared.clock).now();
    let answer = {
        let mut locks = lock(&shared.locks);
        let Some(service) = locks.get_mut(&guard) else {
            return refuse(StatusCode::NOT_FOUND, format!("no lock for {guard} in this trial"));
        };
        match (verb.as_str(), request.token) {
            ("acquire", _) => service.acquire(request.worker, now),
            ("renew", Some(token)) => service.renew(request.worker, token, now),
            ("renew", None) => return refuse(StatusCode::BAD_REQUEST, "a renewal names its token".into()),
            _ => return refuse(StatusCode::NOT_FOUND, format!("no such verb {verb:?}: acquire or renew")),
        }
    };
    let event = match answer {
        Answer::Granted { lease, ttl_ns } => {
            Some((lease.token, LeaseEvent::Granted { ttl_ms: ttl_ns as f64 / 1e6 }))
        }
        Answer::Renewed { lease, ttl_ns } => {
            Some((lease.token, LeaseEvent::Renewed { ttl_ms: ttl_ns as f64 / 1e6 }))
        }
        Answer::Held { .. } | Answer::Lost => None,
    };
    if let Some((token, event)) = event {
        lock(&shared.records).push(LeaseRecord {
            point: shared.plan.point,
            trial: shared.plan.trial,
            true_ns: system_now(),
            worker: request.worker,
            guard,
            token,
            event,
        });
    }
    Json(answer).into_response()
}
