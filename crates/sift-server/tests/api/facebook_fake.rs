//! A fake Graph API for the Facebook export tests: an axum server on
//! 127.0.0.1:0 that records every request to `/{version}/{audience}/users`
//! and answers from a script (errors first, then success), plus the
//! helpers the tests share. It also keeps an ad account's Custom Audiences:
//! `GET /{version}/act_{id}/customaudiences` lists them a page at a time
//! (`limit`, `after` cursors, as Facebook pages) and `POST` creates one,
//! which the list then shows; both take the token from the
//! `Authorization: Bearer` header and refuse any but the valid ones as
//! Facebook does (code 190).

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
    pub(crate) query: Option<String>,
    pub(crate) authorization: Option<String>,
    pub(crate) body: Json,
}

#[derive(Default)]
pub(crate) struct FakeState {
    pub(crate) calls: Vec<Call>,
    /// Answers to give before succeeding again: (status, body).
    pub(crate) script: Vec<(u16, Json)>,
    /// The ad account's audiences, oldest first, as Facebook lists them.
    pub(crate) audiences: Vec<Json>,
    /// The ad account (digits) and the tokens Facebook accepts for it.
    pub(crate) account: String,
    pub(crate) tokens: Vec<String>,
}

/// The fake's ad account.
pub(crate) const ACCOUNT: &str = "1234567890";

/// `n` audiences named "Audience 1"…, with sizes 1000·i.
pub(crate) fn some_audiences(n: u64) -> Vec<Json> {
    (1..=n)
        .map(|i| {
            json!({"id": format!("2385000000000{i:04}"), "name": format!("Audience {i}"),
                   "approximate_count_lower_bound": 1000 * i, "approximate_count_upper_bound": 1200 * i})
        })
        .collect()
}

/// What the fake answers to a request on the account's `customaudiences`.
fn audiences_edge(state: &mut FakeState, method: &Method, uri: &Uri, body: &Json) -> (u16, Json) {
    let token = state
        .calls
        .last()
        .and_then(|c| c.authorization.clone())
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string));
    if !token.is_some_and(|t| state.tokens.contains(&t)) {
        return (
            400,
            json!({"error": {"message": "Invalid OAuth access token - Cannot parse access token", "type": "OAuthException", "code": 190}}),
        );
    }
    if !uri
        .path()
        .ends_with(&format!("/act_{}/customaudiences", state.account))
    {
        return (
            400,
            json!({"error": {"message": "Unsupported get request. Object with ID 'act_0' does not exist", "type": "GraphMethodException", "code": 100}}),
        );
    }
    if *method == Method::POST {
        let n = state.audiences.len() + 1;
        let id = format!("2386{n:013}");
        state.audiences.push(
            json!({"id": id, "name": body["name"], "description": body["description"],
            "subtype": body["subtype"], "customer_file_source": body["customer_file_source"],
            "approximate_count_lower_bound": -1, "approximate_count_upper_bound": -1}),
        );
        return (200, json!({"id": id}));
    }
    let query: std::collections::HashMap<String, String> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25);
    let start: usize = match query.get("after") {
        None => 0,
        Some(cursor) => match cursor.strip_prefix("QVFI").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                return (
                    400,
                    json!({"error": {"message": "Invalid cursor", "type": "GraphMethodException", "code": 100}}),
                );
            }
        },
    };
    let end = (start + limit).min(state.audiences.len());
    let data: Vec<Json> = state.audiences[start.min(end)..end].to_vec();
    let mut paging =
        json!({"cursors": {"before": format!("QVFI{start}"), "after": format!("QVFI{end}")}});
    if end < state.audiences.len() {
        paging["next"] = json!(format!("https://graph.example/next?after=QVFI{end}"));
    }
    (200, json!({"data": data, "paging": paging}))
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
            audiences: Vec::new(),
            account: ACCOUNT.to_string(),
            tokens: vec![TOKEN.to_string()],
        }));
        let shared = state.clone();
        let handler = move |method: Method,
                            uri: Uri,
                            headers: axum::http::HeaderMap,
                            body: axum::body::Bytes| {
            let shared = shared.clone();
            async move {
                let body: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
                let rows = body["payload"]["data"].as_array().map_or(0, Vec::len);
                let mut state = shared.lock().unwrap();
                state.calls.push(Call {
                    method: method.to_string(),
                    path: uri.path().to_string(),
                    query: uri.query().map(str::to_string),
                    authorization: headers
                        .get(axum::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                    body: body.clone(),
                });
                let (status, answer) = if !state.script.is_empty() {
                    state.script.remove(0)
                } else if uri.path().ends_with("/customaudiences") {
                    audiences_edge(&mut state, &method, &uri, &body)
                } else {
                    (
                        200,
                        json!({"audience_id": "123", "session_id": 9, "num_received": rows, "num_invalid_entries": 0, "invalid_entry_samples": {}}),
                    )
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
