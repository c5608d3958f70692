//! A fake Graph API for the Facebook export tests: an axum server on
//! 127.0.0.1:0 that records every request to `/{version}/{audience}/users`
//! and answers from a script (errors first, then success), plus the
//! helpers the tests share.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode, Uri};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::common::Server;

#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) body: Json,
}

#[derive(Default)]
pub(crate) struct FakeState {
    pub(crate) calls: Vec<Call>,
    /// Answers to give before succeeding again: (status, body).
    pub(crate) script: Vec<(u16, Json)>,
}

pub(crate) struct FakeGraph {
    pub(crate) url: String,
    pub(crate) state: Arc<Mutex<FakeState>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeGraph {
    pub(crate) async fn start(script: Vec<(u16, Json)>) -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        FakeGraph::start_on(listener, script)
    }

    /// [`FakeGraph::start`] on a listener the test bound itself, so that a
    /// fake can appear at an address a job already uses.
    pub(crate) fn start_on(
        listener: tokio::net::TcpListener,
        script: Vec<(u16, Json)>,
    ) -> FakeGraph {
        let state = Arc::new(Mutex::new(FakeState {
            calls: Vec::new(),
            script,
        }));
        let shared = state.clone();
        let handler = move |method: Method, uri: Uri, body: axum::body::Bytes| {
            let shared = shared.clone();
            async move {
                let body: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
                let rows = body["payload"]["data"].as_array().map_or(0, Vec::len);
                let mut state = shared.lock().unwrap();
                state.calls.push(Call {
                    method: method.to_string(),
                    path: uri.path().to_string(),
                    body,
                });
                let (status, answer) = if state.script.is_empty() {
                    (
                        200,
                        json!({"audience_id": "123", "session_id": 9, "num_received": rows, "num_invalid_entries": 0, "invalid_entry_samples": {}}),
                    )
                } else {
                    state.script.remove(0)
                };
                (StatusCode::from_u16(status).unwrap(), axum::Json(answer))
            }
        };
        let app = axum::Router::new().fallback(handler);
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeGraph {
            url,
            state,
            _stop: stop,
        }
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }
}

pub(crate) fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A server whose Facebook retries and sync debounce are fast.
pub(crate) fn server() -> Server {
    Server::with(|config| {
        config.facebook.retry_base_ms = 5;
        config.facebook.retry_max_ms = 50;
        config.facebook.debounce_ms = 50;
    })
}

/// Polls the job until `done` holds (or fails the test after 60 s).
pub(crate) async fn wait_job(server: &Server, id: &str, done: impl Fn(&Json) -> bool) -> Json {
    let started = Instant::now();
    loop {
        let job = server.get(&format!("/v1/exports/{id}")).await;
        if done(&job) {
            return job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job never got there: {job:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn finished(job: &Json) -> bool {
    matches!(job["state"].as_str(), Some("done" | "failed"))
}

/// Waits until the fake has had `n` calls.
pub(crate) async fn wait_calls(fake: &FakeGraph, n: usize) -> Vec<Call> {
    let started = Instant::now();
    loop {
        let calls = fake.calls();
        if calls.len() >= n {
            return calls;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the fake got {} calls, not {n}: {calls:#?}",
            calls.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) const TOKEN: &str = "EAAB-test-token-that-must-stay-secret";

pub(crate) fn export_body(fake: &FakeGraph, identifiers: Json, sync: bool) -> Json {
    json!({"audience_id": "23850000000000001", "access_token": TOKEN,
           "identifiers": identifiers, "sync": sync,
           "graph_url": fake.url, "version": "v21.0"})
}

/// One contact with an email in a segment, exported by EMAIL; the job once
/// finished.
pub(crate) async fn one_member_export(script: Vec<(u16, Json)>) -> (Server, FakeGraph, Json) {
    let server = server();
    server
        .put_contact("ana", json!({"email": "ana@example.com"}))
        .await;
    let segment = server.segment("All", "email is set").await;
    let fake = FakeGraph::start(script).await;
    let job = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/segments/{segment}/exports/facebook"),
            Some(export_body(&fake, json!(["EMAIL"]), false)),
        )
        .await;
    let job = wait_job(&server, job["id"].as_str().unwrap(), finished).await;
    (server, fake, job)
}

/// Starts a syncing export of EMAIL and EXTERN_ID to `fake` and waits for
/// its initial upload to end; answers the job id and the job then.
pub(crate) async fn start_sync(server: &Server, segment: &str, fake: &FakeGraph) -> (String, Json) {
    let job = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/segments/{segment}/exports/facebook"),
            Some(export_body(fake, json!(["EMAIL", "EXTERN_ID"]), true)),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    let job = wait_job(server, &id, |j| j["phase"] == "syncing").await;
    (id, job)
}
