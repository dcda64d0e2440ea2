//! The dashboard's guard: only pages it served, on this machine, may use it.
//!
//! The dashboard listens on 127.0.0.1, but that alone does not keep other
//! web pages out: any page a teacher opens runs in the same browser, and the
//! browser will happily send requests to 127.0.0.1 on that page's behalf.
//! Two attacks matter, and the lab starts processes and sends signals, so
//! both would be real:
//!
//! - **Cross-site requests.** A page on `evil.example` can `POST` to
//!   `http://127.0.0.1:7070/api/lab/start` with `content-type: text/plain`,
//!   a "simple" request the browser sends without asking the server first.
//!   It cannot read the answer, but the replicas start all the same.
//! - **DNS rebinding.** `evil.example` can make its own name resolve to
//!   127.0.0.1; its page is then same-origin with the dashboard as far as
//!   the browser knows, and can read and drive the whole API. Only the
//!   `Host` header gives it away: it says `evil.example`.
//!
//! So, as Jupyter guards its local server: every request must name the
//! dashboard itself in `Host` (`127.0.0.1:PORT` or `localhost:PORT`), and a
//! request that may change anything (any method but `GET`, `HEAD` and
//! `OPTIONS`) must carry a JSON body (`content-type: application/json`, which a cross-site
//! page cannot send without a CORS preflight, which the dashboard never
//! grants) and, if the browser says where it comes from (`Origin`), come
//! from `http://` + that same host. Anything else gets 403 and changes
//! nothing.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The names the dashboard answers to, with its port.
const HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

/// What a request is checked against: the port the dashboard serves on.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    pub port: u16,
}

impl Guard {
    /// Why `method` with these headers is refused, or `None` if it may pass.
    pub fn refusal(&self, method: &Method, headers: &HeaderMap, authority: Option<&str>) -> Option<String> {
        let host = match headers.get(header::HOST) {
            Some(value) => Some(value.to_str().unwrap_or("(not text)")),
            None => authority,
        };
        let Some(host) = host.filter(|host| self.is_own_host(host)) else {
            return Some(format!(
                "this dashboard answers only to http://127.0.0.1:{port} and http://localhost:{port}, not Host {}",
                host.map_or_else(|| "(none)".to_string(), |host| format!("{host:?}")),
                port = self.port
            ));
        };
        if only_reads(method) {
            return None;
        }
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
        if !content_type.is_some_and(is_json) {
            return Some(format!(
                "a {method} request must have a JSON body (content-type: application/json)"
            ));
        }
        let origin = headers.get(header::ORIGIN).map(|value| value.to_str().unwrap_or("(not text)"));
        if let Some(origin) = origin
            && !origin.eq_ignore_ascii_case(&format!("http://{host}"))
        {
            return Some(format!(
                "a {method} request from {origin:?} is refused: only the dashboard's own pages may change the lab"
            ));
        }
        None
    }

    fn is_own_host(&self, host: &str) -> bool {
        // Browsers leave the port out of Host and Origin when it is 80.
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) => (name, port.parse().ok()),
            None => (host, Some(80)),
        };
        port == Some(self.port) && HOSTS.iter().any(|known| name.eq_ignore_ascii_case(known))
    }
}

/// The methods that change nothing: every other one needs a JSON body.
fn only_reads(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::OPTIONS].contains(method)
}

/// `application/json`, with or without parameters such as a charset.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The middleware: refuses with 403 and `{"error": ...}`, or passes the request on.
pub(super) async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let authority = request.uri().authority().map(|authority| authority.as_str().to_string());
    match guard.refusal(request.method(), request.headers(), authority.as_deref()) {
        None => next.run(request).await,
        Some(reason) => {
            tracing::warn!(%reason, "dashboard refused a request");
            (StatusCode::FORBIDDEN, Json(json!({ "error": reason }))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap())).collect()
    }

    #[test]
    fn only_the_dashboards_own_host_is_answered() {
        let guard = Guard { port: 7070 };
        for host in ["127.0.0.1:7070", "localhost:7070", "LOCALHOST:7070"] {
            assert_eq!(guard.refusal(&Method::GET, &headers(&[(header::HOST, host)]), None), None, "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:7070",
            "127.0.0.1:7071",
            "127.0.0.1",
            "[::1]:7070",
            "localhost.evil:7070",
        ] {
            assert!(guard.refusal(&Method::GET, &headers(&[(header::HOST, host)]), None).is_some(), "{host}");
        }
        assert!(guard.refusal(&Method::GET, &HeaderMap::new(), None).is_some(), "no Host at all");
        let unreadable = [(header::HOST, HeaderValue::from_bytes(b"127.0.0.1:7070\xff").unwrap())];
        let unreadable: HeaderMap = unreadable.into_iter().collect();
        assert!(
            guard.refusal(&Method::GET, &unreadable, Some("127.0.0.1:7070")).is_some(),
            "a Host that is not text"
        );
        // On port 80 browsers send the bare name.
        let guard_80 = Guard { port: 80 };
        assert_eq!(guard_80.refusal(&Method::GET, &headers(&[(header::HOST, "localhost")]), None), None);
        assert!(guard.refusal(&Method::GET, &headers(&[(header::HOST, "localhost")]), None).is_some());
        assert_eq!(guard.refusal(&Method::GET, &HeaderMap::new(), Some("localhost:7070")), None);
    }

    #[test]
    fn changes_need_a_json_body_from_the_dashboards_own_origin() {
        let guard = Guard { port: 7070 };
        let host = (header::HOST, "127.0.0.1:7070");
        let json = (header::CONTENT_TYPE, "application/json; charset=utf-8");
        let allowed = [
            headers(&[host.clone(), json.clone()]),
            headers(&[host.clone(), json.clone(), (header::ORIGIN, "http://127.0.0.1:7070")]),
        ];
        for allowed in &allowed {
            assert_eq!(guard.refusal(&Method::POST, allowed, None), None);
        }
        let refused = [
            headers(std::slice::from_ref(&host)),
            headers(&[host.clone(), (header::CONTENT_TYPE, "text/plain")]),
            headers(&[host.clone(), (header::CONTENT_TYPE, "application/x-www-form-urlencoded")]),
            headers(&[host.clone(), json.clone(), (header::ORIGIN, "http://evil.example")]),
            headers(&[host.clone(), json.clone(), (header::ORIGIN, "http://localhost:7070")]),
            headers(&[host.clone(), json.clone(), (header::ORIGIN, "null")]),
        ];
        for method in
            [Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::from_bytes(b"PURGE").unwrap()]
        {
            for refused in &refused {
                assert!(guard.refusal(&method, refused, None).is_some(), "{method} {refused:?}");
            }
        }
        // Reads need no body and may come from anywhere the Host allows.
        assert_eq!(
            guard.refusal(&Method::GET, &headers(&[host, (header::ORIGIN, "http://evil.example")]), None),
            None
        );
    }
}
