//! The dashboard: results, why each write was dropped, a live lab, and
//! DDIA Figure 8-3 step by step, in a browser.
//!
//! `clocklab dashboard` serves `web/` (plain HTML, CSS and JavaScript, no
//! build step, nothing fetched from elsewhere, so it works offline; built
//! into the binary, or from disk, see [`crate::builtin`]) and a JSON API, on
//! 127.0.0.1 only: the lab starts processes and sends signals, which is
//! nothing to offer the network. For the same reason the [`guard`] answers
//! only requests addressed to the dashboard itself, and lets only its own
//! pages change anything.
//!
//! The API, one module per page:
//!
//! - [`results`]: `GET /api/experiments`, `GET /api/runs/{experiment}/{run}`,
//!   `GET /api/runs/{experiment}/{run}/drops?strategy=&offset=&limit=`,
//!   `GET /api/runs/{experiment}/{run}/drops/{index}`,
//!   `GET /api/runs/{experiment}/{run}/plots/{name}.svg?width=W` (a plot
//!   drawn at the width the page shows it); the run files themselves under
//!   `/results/`. What the pages say in words is [`words`].
//! - [`quiz`]: `GET /api/quiz/{experiment}?run=` and
//!   `POST /api/quiz/{experiment}/answer` `{"choice":"lww-wall"}`: predict,
//!   then reveal, graded on the reference run unless the page names another.
//! - [`lab`]: `GET /api/lab`, `POST /api/lab/start` `{"replicas":N}`,
//!   `POST /api/lab/stop`, `PUT /api/lab/replicas/{id}/clock` (the body of
//!   a replica's `PUT /admin/clock`), `POST /api/lab/replicas/{id}/pause`
//!   and `/resume`, `PUT /api/lab/links` `{"a":1,"b":2,"cut":true}` (or
//!   `{"a":1,"b":2,"delay_ms":2000,"loss":0.5}`: a slow, lossy link),
//!   `PUT /api/lab/partition` `{"shape":"halves"}` (or `"groups"`, and
//!   `"one_way"`), `POST /api/lab/heal` (every link),
//!   `POST /api/lab/write` `{"replica":1,"key":"x"}`, `GET /api/lab/keys/{key}`
//!   (what every replica holds of a key), `PUT /api/lab/workload`
//!   `{"rate":4}` (or `null` for off), `GET /api/lab/events`, the
//!   server-sent event stream, and the [`lab::preset`]s: `GET /api/presets`
//!   and `POST /api/lab/presets/{name}/steps/{index}`, which plays one step.
//! - [`jobs`]: `POST /api/jobs` `{"experiment":"skew","size":"quick",
//!   "seed":1,"engine":"processes"}` starts a run of an experiment (seed and
//!   engine may be left out), `GET /api/jobs`, `GET /api/jobs/{id}`,
//!   `GET /api/jobs/{id}/events` (its progress, as server-sent events) and
//!   `POST /api/jobs/{id}/cancel`.
//! - scenarios (played by [`crate::sim::scenario`]): `GET /api/scenarios`,
//!   `GET /api/scenarios/{name}`, the step-through's trace with each
//!   strategy's colour and key.
//!
//! Errors are `{"error": "..."}` with a 4xx status, as the replicas' are.
//! Like the replica server, a [`Dashboard`] takes its listener, and
//! [`Dashboard::serve`] a shutdown future; on shutdown it cancels its jobs
//! and stops the lab's replicas before returning.

pub mod guard;
pub mod jobs;
pub mod lab;
pub mod lease_story;
pub mod lesson;
pub mod overview;
pub mod quiz;
pub mod results;
pub mod smallest;
pub mod words;

mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::net::TcpListener;

use self::guard::Guard;
use self::jobs::Jobs;
use self::lab::Lab;
use self::results::ResultsStore;
use crate::builtin::Folder;

/// The port `clocklab dashboard` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7070;

/// Where the dashboard finds what it serves.
#[derive(Debug, Clone)]
pub struct DashboardOptions {
    /// The static page: `web/`, on disk or built in.
    pub web: Folder,
    /// Runs, as `results/EXPERIMENT/RUN-ID/`.
    pub results_dir: PathBuf,
    /// Scenario scripts: `experiments/scenarios/`, on disk or built in.
    pub scenarios: Folder,
    /// The live lab's presets: `experiments/presets/`, on disk or built in.
    pub presets: Folder,
    /// DDIA Figures 8-4 and 8-5 as lease specs: `experiments/lease-stories/`.
    pub lease_stories: Folder,
    /// The experiment specs the overview shows, on disk or built in.
    pub experiments: Folder,
    /// Plugin strategies (`--strategy`), described: the live lab, the
    /// step-through and experiments run from the page add their buckets.
    pub plugins: Vec<crate::strategy::plugin::PluginSpec>,
}

impl Default for DashboardOptions {
    /// What `clocklab dashboard` uses in the working directory.
    fn default() -> Self {
        Self {
            web: Folder::web(None),
            results_dir: "results".into(),
            scenarios: Folder::scenarios(None),
            presets: Folder::presets(None),
            lease_stories: Folder::lease_stories(None),
            experiments: Folder::experiments(None),
            plugins: Vec::new(),
        }
    }
}

/// An API error; sent as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// What the handlers share.
pub(crate) struct AppState {
    options: DashboardOptions,
    results: ResultsStore,
    lab: Lab,
    jobs: Jobs,
    /// Turns true when the dashboard shuts down, to end event streams,
    /// which would otherwise hold the graceful shutdown open.
    closing: tokio::sync::watch::Receiver<bool>,
}

/// A dashboard that has checked what it serves and holds its listener:
/// [`Dashboard::new`] fails if it could not serve, so its URL is printed
/// only once it can.
pub struct Dashboard {
    listener: TcpListener,
    address: SocketAddr,
    options: DashboardOptions,
}

impl Dashboard {
    pub fn new(listener: TcpListener, options: DashboardOptions) -> std::io::Result<Self> {
        if !options.web.has("index.html") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} has no index.html; pass --web with the dashboard's page, or leave it out to use the built-in one",
                    options.web
                ),
            ));
        }
        let address = listener.local_addr()?;
        Ok(Self { listener, address, options })
    }

    /// Where the dashboard answers: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Serves until `shutdown` completes, then cancels the running jobs and
    /// stops the lab's replicas.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let (close, closing) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState {
            results: ResultsStore::new(self.options.results_dir.clone()),
            jobs: Jobs::new(
                self.options.experiments.clone(),
                self.options.results_dir.clone(),
                self.options.plugins.iter().map(|plugin| plugin.path.clone()).collect(),
            ),
            lab: Lab::new(self.options.plugins.clone()),
            options: self.options,
            closing,
        });
        let app = routes::router(Arc::clone(&state), Guard { port: self.address.port() });
        let shutdown = async move {
            shutdown.await;
            let _ = close.send(true);
        };
        let served = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        state.jobs.stop_all().await;
        state.lab.stop().await;
        served
    }
}
