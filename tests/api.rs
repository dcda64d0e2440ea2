//! The HTTP API's contract on bad input, against a replica run in-process:
//! every refusal is a 4xx with a JSON `{"error": ...}`, and a refused
//! request changes nothing.

use std::time::Duration;

use clocklab::replica::peer_policy::ReplicationOptions;
use clocklab::replica::{ClockChoice, ReplicaOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOKEN: &str = "secret";

struct Replica {
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Replica {
    /// Runs replica 1 (with one peer that never answers) on port 0.
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let options = ReplicaOptions {
            id: 1,
            data_dir: dir.path().to_path_buf(),
            peers: vec![clocklab::replica::replication::Peer { id: 2, addr: "127.0.0.1:9".parse().unwrap() }],
            cluster_token: TOKEN.into(),
            clock: ClockChoice::Model(Default::default()),
            seed: 1,
            replication: ReplicationOptions::default(),
            max_peer_offset_ms: None,
            strategy_parameters: Default::default(),
            plugins: Vec::new(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            clocklab::replica::run(options, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { base, client: reqwest::Client::new(), stop: Some(stop), task: Some(task), _dir: dir }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).body(body.to_string());
        if let Some(token) = token {
            request = request.header("x-cluster-token", token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?} ({status})"));
        (status, body)
    }

    async fn state(&self) -> Value {
        self.call(Method::GET, "/admin/state", Some(TOKEN), "").await.1
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task.take().unwrap()).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn bad_requests_get_a_json_4xx_and_change_nothing() {
    let replica = Replica::start().await;
    let (status, _) = replica.call(Method::PUT, "/kv/vv/x", None, r#"{"value": 1}"#).await;
    assert_eq!(status, StatusCode::OK);
    let before = replica.state().await;

    let oversized = format!(r#"{{"value": "{}"}}"#, "a".repeat(70 * 1024));
    let long_key = format!("/kv/vv/{}", "k".repeat(300));
    let cases: Vec<(Method, String, Option<&str>, String, StatusCode)> = vec![
        (Method::PUT, "/kv/vv/x".into(), None, r#"{"value": 1"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/kv/vv/x".into(), None, r#"{"valu": 1}"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/kv/vv/x".into(), None, "".into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/kv/nope/x".into(), None, r#"{"value": 1}"#.into(), StatusCode::NOT_FOUND),
        (Method::GET, "/kv/nope/x".into(), None, "".into(), StatusCode::NOT_FOUND),
        (Method::PUT, long_key, None, r#"{"value": 1}"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/kv/vv/x".into(), None, oversized, StatusCode::PAYLOAD_TOO_LARGE),
        (Method::PUT, "/kv/vv/x".into(), None, r#"{"value": 1, "context": [1]}"#.into(), StatusCode::BAD_REQUEST),
        (
            Method::PUT,
            "/kv/vv/x".into(),
            None,
            r#"{"value": 1, "context": {"vv": {"1": "many"}}}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (Method::PUT, "/kv/vv/x".into(), None, r#"{"value": 1, "context": {"vv": {"7": 3}}}"#.into(), StatusCode::CONFLICT),
        (Method::PUT, "/kv/lww-wall/x".into(), None, r#"{"value": 1, "context": {"a": 1}}"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/kv/lww-hlc/x".into(), None, r#"{"value": 1, "context": [1, 2]}"#.into(), StatusCode::BAD_REQUEST),
        (Method::DELETE, "/kv/vv/x".into(), None, "".into(), StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/no/such/thing".into(), None, "".into(), StatusCode::NOT_FOUND),
        (Method::GET, "/admin/status".into(), None, "".into(), StatusCode::UNAUTHORIZED),
        (Method::GET, "/admin/status".into(), Some("wrong"), "".into(), StatusCode::UNAUTHORIZED),
        (Method::POST, "/replication/push".into(), None, r#"{"from":2,"writes":[]}"#.into(), StatusCode::UNAUTHORIZED),
        (Method::PUT, "/admin/clock".into(), Some(TOKEN), r#"{"drift_ppm": "fast"}"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/admin/clock".into(), Some(TOKEN), r#"{"offset_ms": 1e300}"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/admin/clock".into(), Some(TOKEN), r#"{"skew": 5}"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/admin/clock".into(), Some(TOKEN), r#"{"strobe_ms": 200}"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/admin/links".into(), Some(TOKEN), r#"{"peer": 9, "cut": "both"}"#.into(), StatusCode::NOT_FOUND),
        (Method::PUT, "/admin/links".into(), Some(TOKEN), r#"{"peer": 2, "cut": "sideways"}"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/admin/links".into(), Some(TOKEN), r#"{"peer": 2, "loss": 2}"#.into(), StatusCode::BAD_REQUEST),
        (Method::PUT, "/admin/links".into(), Some(TOKEN), r#"{"peer": 2, "delay_ms": [5, 1]}"#.into(), StatusCode::BAD_REQUEST),
        // A push whose second write is malformed: the first must not land either.
        (
            Method::POST,
            "/replication/push".into(),
            Some(TOKEN),
            json!({"from": 2, "writes": [
                {"origin": 2, "seq": 1, "bucket": "vv", "key": "x", "value": 5, "stamp": [2, 1], "context": null},
                {"origin": 2, "seq": 2, "bucket": "lww-wall", "key": "x", "value": 6, "stamp": "late", "context": null},
            ]})
            .to_string(),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, path, token, body, expected) in cases {
        let (status, reply) = replica.call(method.clone(), &path, token, &body).await;
        assert_eq!(status, expected, "{method} {path} {body:.80} -> {reply}");
        assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()), "{method} {path}: {reply}");
    }
    assert_eq!(replica.state().await, before, "a refused request changed the state");

    // A bad clock update is refused whole: the good field in it is not applied.
    let (_, status) = replica.call(Method::GET, "/admin/status", Some(TOKEN), "").await;
    assert_eq!(status["model"]["offset_ms"], json!(0.0));
    let bad = r#"{"offset_ms": 50, "resolution_ms": -1}"#;
    assert_eq!(replica.call(Method::PUT, "/admin/clock", Some(TOKEN), bad).await.0, StatusCode::BAD_REQUEST);
    let (_, status) = replica.call(Method::GET, "/admin/status", Some(TOKEN), "").await;
    assert_eq!(status["model"]["offset_ms"], json!(0.0));
    replica.stop().await;
}

#[tokio::test]
async fn the_clock_can_be_set_live_and_status_reports_it() {
    let replica = Replica::start().await;
    let update = r#"{"offset_ms": -250, "drift_ppm": 200, "resolution_ms": 10}"#;
    let (status, reply) = replica.call(Method::PUT, "/admin/clock", Some(TOKEN), update).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (_, status) = replica.call(Method::GET, "/admin/status", Some(TOKEN), "").await;
    let offset_ms = status["offset_ns"].as_f64().unwrap() / 1e6;
    assert!((-261.0..=-239.0).contains(&offset_ms), "offset {offset_ms} ms");
    assert_eq!(status["physical_ns"].as_i64().unwrap() % 10_000_000, 0, "10 ms ticks");
    assert_eq!(status["model"]["drift_ppm"], json!(200.0));
    assert!(status["true_ns"].is_i64() && status["hlc"]["l"].is_i64());

    // An lww-hlc write moves the HLC to at least the physical clock.
    replica.call(Method::PUT, "/kv/lww-hlc/x", None, r#"{"value": 1}"#).await;
    let (_, status) = replica.call(Method::GET, "/admin/status", Some(TOKEN), "").await;
    assert!(status["hlc"]["l"].as_i64().unwrap() > 0);
    assert_eq!(status["high_water"]["1"], json!(1));
    replica.stop().await;
}
