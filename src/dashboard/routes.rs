//! The dashboard's routes: thin handlers that parse a request, ask
//! [`results`](super::results), [`lab`](super::lab),
//! [`scenario`](crate::sim::scenario) or [`smallest`](super::smallest), and
//! answer JSON.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_stream::wrappers::BroadcastStream;
use tower_http::services::ServeDir;

use super::guard::{self, Guard};
use super::jobs::JobView;
use super::lab::{LabEvent, LabView, preset};
use super::{AppState, DashboardError};
use crate::clock::dots::ReplicaId;
use crate::clock::update::ClockUpdate;
use crate::replica::core::Status;
use crate::sim::scenario;

type Shared = State<Arc<AppState>>;
type Answer<T> = Result<Json<T>, DashboardError>;

pub(super) fn router(state: Arc<AppState>, guard: Guard) -> Router {
    let results = ServeDir::new(&state.options.results_dir);
    let routes = Router::new()
        .route("/api/experiments", get(experiments))
        .route("/api/runs/{experiment}/{run}", get(run_page))
        .route("/api/runs/{experiment}/{run}/drops", get(drops))
        .route("/api/runs/{experiment}/{run}/drops/{index}", get(drop_detail))
        .route("/api/runs/{experiment}/{run}/plots/{file}", get(run_plot))
        .route("/api/compare/{experiment}/{first}/{second}", get(compare))
        .route("/api/compare/{experiment}/{first}/{second}/plot.svg", get(compare_plot))
        .route("/api/quiz/{experiment}", get(quiz))
        .route("/api/quiz/{experiment}/answer", post(quiz_answer))
        .route("/api/jobs", get(jobs).post(job_start))
        .route("/api/jobs/{id}", get(job_view))
        .route("/api/jobs/{id}/events", get(job_events))
        .route("/api/jobs/{id}/cancel", post(job_cancel))
        .route("/api/scenarios", get(scenarios))
        .route("/api/scenarios/{name}", get(scenario_trace))
        .route("/api/scenarios/{name}/timeline.svg", get(lease_story_timeline))
        .route("/api/explore", get(explore_options))
        .route("/api/explore/{strategy}", get(explore))
        .route("/api/lab", get(lab_view))
        .route("/api/lab/start", post(lab_start))
        .route("/api/lab/stop", post(lab_stop))
        .route("/api/lab/replicas/{id}/clock", put(lab_clock))
        .route("/api/lab/replicas/{id}/pause", post(lab_pause))
        .route("/api/lab/replicas/{id}/resume", post(lab_resume))
        .route("/api/lab/lease/start", post(lab_lease_start))
        .route("/api/lab/workers/{id}/pause", post(lab_worker_pause))
        .route("/api/lab/workers/{id}/resume", post(lab_worker_resume))
        .route("/api/lab/links", put(lab_links))
        .route("/api/lab/partition", put(lab_partition))
        .route("/api/lab/heal", post(lab_heal))
        .route("/api/lab/write", post(lab_write))
        .route("/api/lab/keys/{key}", get(lab_key))
        .route("/api/lab/workload", put(lab_workload))
        .route("/api/lab/events", get(lab_events))
        .route("/api/presets", get(presets))
        .route("/api/lab/presets/{name}/steps/{index}", post(preset_step))
        .route("/api/{*rest}", get(no_such_api).post(no_such_api).put(no_such_api).delete(no_such_api))
        .nest_service("/results", results);
    let routes = routes.method_not_allowed_fallback(method_not_allowed);
    let routes = match state.options.web.disk_path() {
        Some(dir) => routes.fallback_service(ServeDir::new(dir)),
        None => routes.fallback(builtin_page),
    };
    routes.with_state(state).layer(middleware::from_fn_with_state(guard, guard::check))
}

/// A file of the built-in page; `/` is `index.html`.
async fn builtin_page(State(state): Shared, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path =
        if path.is_empty() || path.ends_with('/') { format!("{path}index.html") } else { path.to_string() };
    match state.options.web.read(&path) {
        Some(contents) => {
            let mime = mime_guess::from_path(&path).first_or_octet_stream();
            ([(header::CONTENT_TYPE, mime.essence_str().to_string())], contents).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no page {}", uri.path())).into_response(),
    }
}

/// Parses a JSON body so that even malformed JSON gets a JSON error.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, DashboardError> {
    serde_json::from_slice(bytes)
        .map_err(|error| DashboardError::BadRequest(format!("bad request body: {error}")))
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DashboardError> + Send + 'static,
) -> Answer<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| DashboardError::Internal(error.to_string()))?
        .map(Json)
}

async fn method_not_allowed() -> Response {
    let error = json!({ "error": "method not allowed on this endpoint" });
    (StatusCode::METHOD_NOT_ALLOWED, Json(error)).into_response()
}

async fn no_such_api(Path(rest): Path<String>) -> DashboardError {
    DashboardError::NotFound(format!("no API /api/{rest}"))
}

async fn experiments(State(state): Shared) -> Answer<Value> {
    blocking(move || Ok(json!({ "experiments": state.results.list(&state.options.experiments) }))).await
}

/// `?run=ID`: the run a quiz is graded on (default: the reference run).
#[derive(Deserialize)]
struct QuizQuery {
    run: Option<String>,
}

async fn quiz(
    State(state): Shared,
    Path(experiment): Path<String>,
    Query(query): Query<QuizQuery>,
) -> Answer<Value> {
    blocking(move || {
        Ok(json!(state.results.quiz(&state.options.experiments, &experiment, query.run.as_deref())?))
    })
    .await
}

/// `POST /api/quiz/{experiment}/answer`: `{"choice": "lww-wall", "run"?: ID}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuizChoice {
    choice: String,
    #[serde(default)]
    run: Option<String>,
}

async fn quiz_answer(State(state): Shared, Path(experiment): Path<String>, bytes: Bytes) -> Answer<Value> {
    let choice: QuizChoice = body(&bytes)?;
    blocking(move || {
        Ok(json!(state.results.answer(
            &state.options.experiments,
            &experiment,
            choice.run.as_deref(),
            &choice.choice
        )?))
    })
    .await
}

async fn compare(
    State(state): Shared,
    Path((experiment, first, second)): Path<(String, String, String)>,
) -> Answer<Value> {
    blocking(move || Ok(json!(state.results.compare(&experiment, &first, &second)?))).await
}

/// `?width=W`: how wide to draw a plot, in pixels (the page asks for the
/// width it shows it at; clamped by the plot).
#[derive(Deserialize)]
struct PlotQuery {
    #[serde(default = "default_plot_width")]
    width: u32,
}

fn default_plot_width() -> u32 {
    crate::report::plots::PLOT_SIZE.0
}

/// An SVG answer, drawn off the async threads.
async fn svg_answer(
    draw: impl FnOnce() -> Result<String, DashboardError> + Send + 'static,
) -> Result<Response, DashboardError> {
    let svg = tokio::task::spawn_blocking(draw)
        .await
        .map_err(|error| DashboardError::Internal(error.to_string()))??;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-cache")], svg).into_response())
}

async fn compare_plot(
    State(state): Shared,
    Path((experiment, first, second)): Path<(String, String, String)>,
    Query(query): Query<PlotQuery>,
) -> Result<Response, DashboardError> {
    svg_answer(move || state.results.compare_plot(&experiment, &first, &second, query.width)).await
}

/// `?width=W&upto_ms=T`: a lease story's timeline up to `T` ms.
#[derive(Deserialize)]
struct StoryPlotQuery {
    #[serde(default = "default_plot_width")]
    width: u32,
    upto_ms: Option<f64>,
}

/// `GET /api/scenarios/{name}/timeline.svg?width=W&upto_ms=T`.
async fn lease_story_timeline(
    State(state): Shared,
    Path(name): Path<String>,
    Query(query): Query<StoryPlotQuery>,
) -> Result<Response, DashboardError> {
    super::results::check_name("scenario", &name)?;
    svg_answer(move || {
        super::lease_story::timeline_svg(&state.options.lease_stories, &name, query.upto_ms, query.width)
    })
    .await
}

/// `GET /api/runs/{experiment}/{run}/plots/{name}.svg?width=W`.
async fn run_plot(
    State(state): Shared,
    Path((experiment, run, file)): Path<(String, String, String)>,
    Query(query): Query<PlotQuery>,
) -> Result<Response, DashboardError> {
    let name = file
        .strip_suffix(".svg")
        .ok_or_else(|| DashboardError::NotFound(format!("plots are drawn as NAME.svg, not {file:?}")))?
        .to_string();
    svg_answer(move || state.results.plot(&experiment, &run, &name, query.width)).await
}

async fn run_page(State(state): Shared, Path((experiment, run)): Path<(String, String)>) -> Answer<Value> {
    blocking(move || Ok(json!(state.results.run_page(&experiment, &run)?))).await
}

#[derive(Deserialize)]
struct DropsQuery {
    strategy: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

async fn drops(
    State(state): Shared,
    Path((experiment, run)): Path<(String, String)>,
    Query(query): Query<DropsQuery>,
) -> Answer<Value> {
    blocking(move || {
        let limit = query.limit.unwrap_or(super::results::MAX_DROPS_PER_PAGE);
        let page = state.results.drops(&experiment, &run, query.strategy.as_deref(), query.offset, limit)?;
        Ok(json!(page))
    })
    .await
}

async fn drop_detail(
    State(state): Shared,
    Path((experiment, run, index)): Path<(String, String, String)>,
) -> Answer<Value> {
    let index: usize = index
        .parse()
        .map_err(|_| DashboardError::BadRequest(format!("a drop is named by its number, not {index:?}")))?;
    blocking(move || Ok(json!(state.results.drop_detail(&experiment, &run, index)?))).await
}

async fn jobs(State(state): Shared) -> Json<Value> {
    Json(json!({ "jobs": state.jobs.list() }))
}

async fn job_start(State(state): Shared, bytes: Bytes) -> Result<Response, DashboardError> {
    let job = state.jobs.start(body(&bytes)?)?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// A job id from the path, refused as JSON if it is not one.
fn job_id(id: &str) -> Result<u64, DashboardError> {
    id.parse().map_err(|_| DashboardError::BadRequest(format!("a job is named by its number, not {id:?}")))
}

async fn job_view(State(state): Shared, Path(id): Path<String>) -> Answer<JobView> {
    Ok(Json(state.jobs.view(job_id(&id)?)?))
}

async fn job_cancel(State(state): Shared, Path(id): Path<String>) -> Answer<JobView> {
    Ok(Json(state.jobs.cancel(job_id(&id)?).await?))
}

/// A job's progress, `progress` events while it runs and one `ended` event
/// (its state: finished with its run, failed, or cancelled) to close.
async fn job_events(
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, DashboardError> {
    let views = state.jobs.watch(job_id(&id)?)?;
    let mut closing = state.closing.clone();
    let events = views
        .map(|view| {
            let name = if view.state.ended() { "ended" } else { "progress" };
            let data = serde_json::to_string(&view).unwrap_or_else(|_| "{}".into());
            Ok(Event::default().event(name).data(data))
        })
        .take_until(async move {
            let _ = closing.wait_for(|closing| *closing).await;
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

async fn scenarios(State(state): Shared) -> Answer<Value> {
    blocking(move || {
        // The scripted scenarios, then the lease stories (DDIA 8-4, 8-5).
        let mut list = scenario::list(&state.options.scenarios);
        let known: Vec<String> = list.iter().map(|(name, _)| name.clone()).collect();
        list.extend(
            super::lease_story::list(&state.options.lease_stories)
                .into_iter()
                .filter(|(name, _)| !known.contains(name)),
        );
        Ok(json!({ "scenarios": list.into_iter().map(|(name, title)| json!({"name": name, "title": title})).collect::<Vec<_>>() }))
    })
    .await
}

async fn scenario_trace(State(state): Shared, Path(name): Path<String>) -> Answer<Value> {
    blocking(move || {
        let scripted = scenario::list(&state.options.scenarios).iter().any(|(known, _)| *known == name);
        if !scripted
            && super::lease_story::list(&state.options.lease_stories).iter().any(|(known, _)| *known == name)
        {
            return Ok(json!(super::lease_story::trace(&state.options.lease_stories, &name)?));
        }
        let trace = scenario::play_named(&state.options.scenarios, &name, &state.options.plugins).map_err(
            |error| match error {
                scenario::ScenarioError::Unknown(..) => DashboardError::NotFound(error.to_string()),
                _ => DashboardError::BadRequest(error.to_string()),
            },
        )?;
        Ok(super::smallest::trace_view(&trace))
    })
    .await
}

async fn explore_options(State(state): Shared) -> Json<Value> {
    Json(super::smallest::options(&state.options.plugins))
}

/// `?cause=NAME`: which losses count (default: any).
#[derive(Deserialize)]
struct ExploreQuery {
    cause: Option<String>,
}

async fn explore(
    State(state): Shared,
    Path(strategy): Path<String>,
    Query(query): Query<ExploreQuery>,
) -> Answer<Value> {
    let cause = query.cause.unwrap_or_else(|| "any".to_string());
    blocking(move || super::smallest::find(&state.options.plugins, &strategy, &cause)).await
}

async fn lab_view(State(state): Shared) -> Json<LabView> {
    Json(state.lab.view())
}

async fn lab_start(State(state): Shared, bytes: Bytes) -> Answer<LabView> {
    Ok(Json(state.lab.start(body(&bytes)?).await?))
}

async fn lab_stop(State(state): Shared) -> Json<LabView> {
    Json(state.lab.stop().await)
}

/// A replica id from the path, refused as JSON if it is not one.
fn replica_id(id: &str) -> Result<ReplicaId, DashboardError> {
    id.parse()
        .map_err(|_| DashboardError::BadRequest(format!("a replica is named by its number, not {id:?}")))
}

async fn lab_clock(State(state): Shared, Path(id): Path<String>, bytes: Bytes) -> Answer<Status> {
    let id = replica_id(&id)?;
    let update: ClockUpdate = body(&bytes)?;
    Ok(Json(state.lab.set_clock(id, update).await?))
}

async fn lab_pause(State(state): Shared, Path(id): Path<String>) -> Answer<LabView> {
    let id = replica_id(&id)?;
    Ok(Json(state.lab.set_paused(id, true).await?))
}

async fn lab_resume(State(state): Shared, Path(id): Path<String>) -> Answer<LabView> {
    let id = replica_id(&id)?;
    Ok(Json(state.lab.set_paused(id, false).await?))
}

async fn lab_lease_start(State(state): Shared) -> Answer<LabView> {
    Ok(Json(state.lab.start_lease().await?))
}

/// A lease worker's number from the path.
fn worker_id(text: &str) -> Result<u32, DashboardError> {
    text.parse::<u32>()
        .ok()
        .filter(|&id| id >= 1)
        .ok_or_else(|| DashboardError::BadRequest(format!("a worker is a number from 1, not {text:?}")))
}

async fn lab_worker_pause(State(state): Shared, Path(id): Path<String>) -> Answer<LabView> {
    Ok(Json(state.lab.set_worker_paused(worker_id(&id)?, true).await?))
}

async fn lab_worker_resume(State(state): Shared, Path(id): Path<String>) -> Answer<LabView> {
    Ok(Json(state.lab.set_worker_paused(worker_id(&id)?, false).await?))
}

async fn lab_links(State(state): Shared, bytes: Bytes) -> Answer<LabView> {
    Ok(Json(state.lab.set_link(body(&bytes)?).await?))
}

async fn lab_partition(State(state): Shared, bytes: Bytes) -> Answer<LabView> {
    Ok(Json(state.lab.partition(body(&bytes)?).await?))
}

async fn lab_heal(State(state): Shared) -> Answer<LabView> {
    Ok(Json(state.lab.heal_all().await?))
}

async fn lab_write(State(state): Shared, bytes: Bytes) -> Answer<Value> {
    let writes = state.lab.write(body(&bytes)?).await?;
    Ok(Json(json!({ "writes": writes })))
}

async fn lab_key(State(state): Shared, Path(key): Path<String>) -> Answer<super::lab::KeyState> {
    Ok(Json(state.lab.key_state(&key).await?))
}

async fn lab_workload(State(state): Shared, bytes: Bytes) -> Answer<LabView> {
    Ok(Json(state.lab.set_workload(body(&bytes)?).await?))
}

async fn presets(State(state): Shared) -> Answer<Value> {
    blocking(move || {
        let presets: Vec<Value> = preset::list(&state.options.presets)
            .into_iter()
            .map(|(name, preset)| json!({ "name": name, "preset": preset }))
            .collect();
        Ok(json!({ "presets": presets, "pause_ms": preset::PAUSE_BETWEEN_STEPS.as_millis() as u64 }))
    })
    .await
}

/// Plays step `index` (from 0) of preset `name` on the live cluster.
async fn preset_step(State(state): Shared, Path((name, index)): Path<(String, String)>) -> Answer<LabView> {
    let index: usize = index
        .parse()
        .map_err(|_| DashboardError::BadRequest(format!("a step is named by its number, not {index:?}")))?;
    let folder = state.options.presets.clone();
    let preset = tokio::task::spawn_blocking(move || preset::load(&folder, &name))
        .await
        .map_err(|error| DashboardError::Internal(error.to_string()))??;
    let step = preset.steps.get(index).ok_or_else(|| {
        DashboardError::NotFound(format!("the preset has steps 0 to {}, not {index}", preset.steps.len() - 1))
    })?;
    state.lab.play(&preset, step).await?;
    Ok(Json(state.lab.view()))
}

/// The lab's events: a snapshot first, then everything as it happens, until
/// the dashboard shuts down.
async fn lab_events(State(state): Shared) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.lab.subscribe();
    let first = LabEvent::Snapshot(Box::new(state.lab.view()));
    let mut closing = state.closing.clone();
    let events = futures::stream::once(async move { Ok(first) })
        .chain(BroadcastStream::new(receiver))
        .filter_map(|event| async move { event.ok() })
        .map(|event| {
            let name = match &event {
                LabEvent::Snapshot(_) => "snapshot",
                LabEvent::Status { .. } => "status",
                LabEvent::Write(_) => "write",
                LabEvent::Replicated { .. } => "replicated",
                LabEvent::Drop(_) => "drop",
                LabEvent::Counts(_) => "counts",
                LabEvent::Lease(_) => "lease",
            };
            let data = serde_json::to_string(&event).unwrap_or_else(|_| "{}".into());
            Ok(Event::default().event(name).data(data))
        })
        .take_until(async move {
            let _ = closing.wait_for(|closing| *closing).await;
        });
    Sse::new(events).keep_alive(KeepAlive::default())
}
