//! A typed client of one replica's HTTP API.
//!
//! Everyone who talks to a replica from outside goes through here: the
//! experiment runner (its workload, clocks, faults and final reads), the
//! dashboard's live lab, and the integration tests. The answers are read
//! into the very types the server writes them from ([`ReadReply`],
//! [`WriteReply`], [`Status`], [`LinkReply`], [`Snapshot`]), so a field has
//! one name in one place, and a reply the client cannot read is an error,
//! not a silent `null`.
//!
//! Errors keep the distinction a history needs (DDIA chapter 8, "Timeouts
//! and unbounded delays"): a request that never reached the replica
//! certainly did nothing, but one that was sent and got no answer may have
//! been applied.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::core::{ReadReply, Status, WriteReply};
use super::links::LinkUpdate;
use super::replication::TOKEN_HEADER;
use super::server::{LinkReply, PutBody, Snapshot};
use crate::clock::update::ClockUpdate;
use crate::lease::Token;
use crate::strategy::RawJson;

/// How long an admin request may take before it counts as unanswered.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to a replica did not give an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// It never reached the replica (connection refused): nothing happened.
    #[error("{request} to {addr}: cannot connect: {reason}")]
    Unreachable { request: String, addr: SocketAddr, reason: String },
    /// It was sent, but no readable answer came (timeout, reset, garbled
    /// reply): it may or may not have taken effect.
    #[error("{request} to {addr}: no answer: {reason}")]
    NoAnswer { request: String, addr: SocketAddr, reason: String },
    /// The replica answered with an error status and changed nothing.
    #[error("{request} to {addr}: {status}: {message}")]
    Refused { request: String, addr: SocketAddr, status: u16, message: String },
}

/// A client of the replica at one address. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReplicaClient {
    addr: SocketAddr,
    /// The cluster token, for admin requests; clients' reads and writes need none.
    token: Option<Arc<str>>,
    http: reqwest::Client,
}

impl ReplicaClient {
    pub fn new(addr: SocketAddr, token: Option<Arc<str>>, http: reqwest::Client) -> Self {
        Self { addr, token, http }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /kv/{bucket}/{key}`, within `timeout`.
    pub async fn read(&self, bucket: &str, key: &str, timeout: Duration) -> Result<ReadReply, ClientError> {
        self.call(Method::GET, &format!("/kv/{bucket}/{key}"), None::<&()>, timeout, false).await
    }

    /// `PUT /kv/{bucket}/{key}` of `value` with the `context` a read gave,
    /// within `timeout`; answers once the write is durable.
    pub async fn write(
        &self,
        bucket: &str,
        key: &str,
        value: RawJson,
        context: Value,
        timeout: Duration,
    ) -> Result<WriteReply, ClientError> {
        self.write_fenced(bucket, key, value, context, None, timeout).await
    }

    /// [`write`](Self::write) from a writer holding fencing token `fence`:
    /// refused (409) if the replica has seen a larger token for the key.
    pub async fn write_fenced(
        &self,
        bucket: &str,
        key: &str,
        value: RawJson,
        context: Value,
        fence: Option<Token>,
        timeout: Duration,
    ) -> Result<WriteReply, ClientError> {
        let body = PutBody { value, context, fence };
        self.call(Method::PUT, &format!("/kv/{bucket}/{key}"), Some(&body), timeout, false).await
    }

    /// `PUT /admin/clock`: changes the clock model; answers the new status.
    pub async fn set_clock(&self, update: &ClockUpdate) -> Result<Status, ClientError> {
        self.call(Method::PUT, "/admin/clock", Some(update), ADMIN_TIMEOUT, true).await
    }

    /// `PUT /admin/links`: changes this replica's side of one link.
    pub async fn set_link(&self, update: &LinkUpdate) -> Result<LinkReply, ClientError> {
        self.call(Method::PUT, "/admin/links", Some(update), ADMIN_TIMEOUT, true).await
    }

    /// `GET /admin/status`, within `timeout`.
    pub async fn status(&self, timeout: Duration) -> Result<Status, ClientError> {
        self.call(Method::GET, "/admin/status", None::<&()>, timeout, true).await
    }

    /// `GET /admin/state`: every key of every bucket.
    pub async fn state(&self) -> Result<Snapshot, ClientError> {
        self.call(Method::GET, "/admin/state", None::<&()>, ADMIN_TIMEOUT, true).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
        admin: bool,
    ) -> Result<T, ClientError> {
        let request = format!("{method} {path}");
        let addr = self.addr;
        let no_answer = |reason: String| ClientError::NoAnswer { request: request.clone(), addr, reason };
        let mut builder = self.http.request(method.clone(), format!("http://{addr}{path}")).timeout(timeout);
        if admin && let Some(token) = &self.token {
            builder = builder.header(TOKEN_HEADER, &**token);
        }
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|error| {
            if error.is_connect() {
                ClientError::Unreachable { request: request.clone(), addr, reason: error.to_string() }
            } else {
                no_answer(error.to_string())
            }
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|error| no_answer(error.to_string()))?;
        if !status.is_success() {
            let answer: Option<Value> = serde_json::from_slice(&bytes).ok();
            let message = answer
                .as_ref()
                .and_then(|answer| answer["error"].as_str())
                .map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), str::to_string);
            return Err(ClientError::Refused { request, addr, status: status.as_u16(), message });
        }
        serde_json::from_slice(&bytes).map_err(|error| no_answer(format!("unreadable answer: {error}")))
    }
}
