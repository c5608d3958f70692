//! What every area shares: a server over a temporary data directory, the one
//! `send` helper that all requests go through, and `redact`, which replaces
//! what changes from run to run (ids, datetimes, timings) so that whole JSON
//! answers can be compared with a literal.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value as Json, json};
use sift_server::clock::{Clock, ManualClock};
use sift_server::{AppState, Config};
use tempfile::TempDir;
use tower::ServiceExt;

pub const ADMIN_KEY: &str = "admin-key-for-tests";

/// A server with one workspace ("Acme") and its first key.
pub struct Server {
    pub app: Router,
    pub state: AppState,
    pub key: String,
    pub workspace_id: String,
    pub dir: TempDir,
}

impl Server {
    pub fn new() -> Server {
        Server::with(|_| {})
    }

    /// A server whose config `configure` adjusts (e.g. `max_body_bytes`).
    pub fn with(configure: impl FnOnce(&mut Config)) -> Server {
        if let Some(nodes) = cluster_nodes() {
            return Server::on_cluster(nodes);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path(), Some(ADMIN_KEY.to_string()));
        // Receivers and fake Graph APIs listen on 127.0.0.1; the tests of
        // the destination policy turn this off again.
        config.allow_private_destinations = true;
        configure(&mut config);
        let state = AppState::open(config).unwrap();
        let (workspace_id, key) = state.create_workspace("Acme").unwrap();
        Server {
            app: sift_server::app(state.clone()),
            state,
            key,
            workspace_id,
            dir,
        }
    }

    /// A server on a manual clock (`clock.rs`), standing at the wall clock's
    /// present until the test moves it with [`Server::advance`]: business
    /// time passes without waiting for it.
    pub fn on_manual_clock(configure: impl FnOnce(&mut Config)) -> Server {
        Server::with(|config| {
            config.clock = ManualClock::starting_now().into();
            configure(config);
        })
    }

    /// The manual clock of a server made by [`Server::on_manual_clock`].
    pub fn manual_clock(&self) -> ManualClock {
        match &self.state.config.clock {
            Clock::Manual(manual) => manual.clone(),
            Clock::System => panic!("the server runs on the system clock"),
        }
    }

    /// Moves the manual clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        self.manual_clock().advance(by);
    }

    /// The server's clock, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.state.config.clock.now_ms()
    }

    /// Stops the server (every queued write committed) and opens its data
    /// directory again, as a restart of the process would.
    pub fn restart(self) -> Server {
        self.restart_with(|_| {})
    }

    /// [`Server::restart`] with its config adjusted by `configure`.
    pub fn restart_with(self, configure: impl FnOnce(&mut Config)) -> Server {
        self.state.close();
        let mut config = self.state.config.clone();
        configure(&mut config);
        drop(self.app);
        drop(self.state);
        let state = AppState::open(config).unwrap();
        Server {
            app: sift_server::app(state.clone()),
            state,
            key: self.key,
            workspace_id: self.workspace_id,
            dir: self.dir,
        }
    }

    /// Stops the server, moves its manual clock `by` while it is down, then
    /// opens its data directory again: time passes for its timers while it
    /// is down, without the test waiting for it.
    pub fn restart_advanced(self, by: std::time::Duration) -> Server {
        self.state.close();
        self.advance(by);
        self.restart()
    }

    /// Posts events (one object, or `{"events": [...]}`) and answers the body.
    pub async fn events(&self, body: Json) -> Json {
        self.expect(StatusCode::OK, "POST", "/v1/events", Some(body))
            .await
    }

    /// Sends with this server's workspace key.
    pub async fn send(&self, method: &str, path: &str, body: Option<Json>) -> (StatusCode, Json) {
        send(&self.app, method, path, Some(&self.key), body).await
    }

    /// A request that must answer `expected`; returns the body.
    pub async fn expect(
        &self,
        expected: StatusCode,
        method: &str,
        path: &str,
        body: Option<Json>,
    ) -> Json {
        let (status, json) = self.send(method, path, body).await;
        assert_eq!(status, expected, "{method} {path} answered {json:#}");
        json
    }

    pub async fn get(&self, path: &str) -> Json {
        self.expect(StatusCode::OK, "GET", path, None).await
    }

    /// Upserts a contact and answers it.
    pub async fn put_contact(&self, id: &str, properties: Json) -> Json {
        let path = format!("/v1/contacts/{id}");
        self.expect(
            StatusCode::OK,
            "PUT",
            &path,
            Some(json!({"properties": properties})),
        )
        .await
    }

    /// Creates a dynamic segment from text and answers its id.
    pub async fn segment(&self, name: &str, condition: &str) -> String {
        let body = json!({"name": name, "kind": "dynamic", "condition": condition});
        let created = self
            .expect(StatusCode::CREATED, "POST", "/v1/segments", Some(body))
            .await;
        created["id"].as_str().unwrap().to_string()
    }

    /// Creates a static segment and answers its id.
    pub async fn static_segment(&self, name: &str) -> String {
        let body = json!({"name": name, "kind": "static"});
        let created = self
            .expect(StatusCode::CREATED, "POST", "/v1/segments", Some(body))
            .await;
        created["id"].as_str().unwrap().to_string()
    }

    /// Every change of a segment, following `next_cursor`.
    pub async fn changes(&self, segment_id: &str) -> Vec<Json> {
        let mut all = Vec::new();
        let mut after: Option<u64> = None;
        loop {
            let path = match after {
                Some(seq) => format!("/v1/segments/{segment_id}/changes?after={seq}&limit=1000"),
                None => format!("/v1/segments/{segment_id}/changes?limit=1000"),
            };
            let page = self.get(&path).await;
            all.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => after = Some(next.parse().unwrap()),
                None => return all,
            }
        }
    }

    /// The ids of a segment's members, walking every page of `limit`.
    pub async fn members(&self, segment_id: &str, limit: usize) -> Vec<String> {
        let base = format!("/v1/segments/{segment_id}/contacts?limit={limit}");
        walk(self, &base).await
    }
}

/// The base URLs of a running cluster's nodes (docs/cluster.md), from
/// `SIFT_TEST_CLUSTER_NODES` (comma-separated): when set, each test's
/// workspace is created in that cluster and its requests go to the nodes in
/// turn (scripts/cluster-api-test.sh). The cluster's admin key must be
/// [`ADMIN_KEY`].
fn cluster_nodes() -> Option<Vec<String>> {
    let nodes = std::env::var("SIFT_TEST_CLUSTER_NODES").ok()?;
    let nodes: Vec<String> = nodes
        .split(',')
        .map(|n| n.trim().trim_end_matches('/').to_string())
        .filter(|n| !n.is_empty())
        .collect();
    (!nodes.is_empty()).then_some(nodes)
}

/// A router that passes every request to the next of `nodes`.
fn round_robin(nodes: Vec<String>) -> Router {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let next = Arc::new(AtomicUsize::new(0));
    let nodes = Arc::new(nodes);
    Router::new().fallback(move |request: Request<Body>| {
        let (client, next, nodes) = (client.clone(), next.clone(), nodes.clone());
        async move {
            let node = &nodes[next.fetch_add(1, Ordering::Relaxed) % nodes.len()];
            let (mut parts, body) = request.into_parts();
            let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri = format!("{node}{target}").parse().unwrap();
            let response = client
                .request(Request::from_parts(parts, body))
                .await
                .unwrap_or_else(|e| panic!("the cluster node {node} did not answer: {e}"));
            response.map(Body::new)
        }
    })
}

impl Server {
    /// A workspace ("Acme") in the running cluster of
    /// `SIFT_TEST_CLUSTER_NODES`. `state` is a local stand-in that nothing
    /// is written to: tests that read the server's insides do not run
    /// against a cluster (scripts/cluster-api-test.sh skips them).
    fn on_cluster(nodes: Vec<String>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let state = AppState::open(Config::new(dir.path(), Some(ADMIN_KEY.to_string()))).unwrap();
        let creating = nodes.clone();
        // Its own runtime: this is called from inside a test's runtime.
        let created = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                send(
                    &round_robin(creating),
                    "POST",
                    "/v1/workspaces",
                    Some(ADMIN_KEY),
                    Some(json!({"name": "Acme"})),
                )
                .await
            })
        })
        .join()
        .unwrap();
        assert_eq!(
            created.0,
            StatusCode::CREATED,
            "creating a workspace in the cluster: {}",
            created.1
        );
        Server {
            app: round_robin(nodes),
            state,
            key: created.1["key"].as_str().unwrap().to_string(),
            workspace_id: created.1["id"].as_str().unwrap().to_string(),
            dir,
        }
    }
}

/// Every contact id of a paged contact list, following `next_cursor`.
pub async fn walk(server: &Server, base: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let path = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.to_string(),
        };
        let page = server.get(&path).await;
        let items = page["items"].as_array().unwrap();
        ids.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(!items.is_empty(), "a page with a next cursor is empty");
                cursor = Some(next.to_string());
            }
            None => return ids,
        }
    }
    panic!("{base} never ends");
}

/// A request with an optional bearer key and a raw body.
pub fn request(method: &str, path: &str, key: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    builder.body(Body::from(body)).unwrap()
}

/// Sends raw bytes; answers the status and the body as JSON (a body that is
/// not JSON comes back as a JSON string, an empty one as null).
pub async fn send_bytes(
    app: &Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Json) {
    let response = app
        .clone()
        .oneshot(request(method, path, key, body))
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Json::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, json)
}

/// The one helper every request goes through.
pub async fn send(
    app: &Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Json>,
) -> (StatusCode, Json) {
    let bytes = body.map_or_else(Vec::new, |b| serde_json::to_vec(&b).unwrap());
    send_bytes(app, method, path, key, bytes).await
}

/// Asserts the error shape of docs/api.md and answers `error`.
pub fn error_of(status: StatusCode, body: &Json, expected: StatusCode, code: &str) -> Json {
    assert_eq!(status, expected, "answered {body:#}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "answered {body:#}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error needs a message: {body:#}"
    );
    assert!(
        error["details"].is_object(),
        "details must be an object: {body:#}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "an error answers only {{\"error\": ...}}: {body:#}"
    );
    error.clone()
}

fn is_datetime(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && text.ends_with('Z')
        && bytes[..4].iter().all(u8::is_ascii_digit)
}

/// Replaces each of `names`' ids by its name, RFC 3339 datetimes by
/// `"[datetime]"` and `took_ms` by `"[ms]"`.
pub fn redact(value: &Json, names: &[(&str, &str)]) -> Json {
    match value {
        Json::String(s) => {
            if let Some((_, name)) = names.iter().find(|(id, _)| id == s) {
                Json::String((*name).to_string())
            } else if is_datetime(s) {
                Json::String("[datetime]".into())
            } else {
                value.clone()
            }
        }
        Json::Array(items) => Json::Array(items.iter().map(|i| redact(i, names)).collect()),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if k == "took_ms" {
                        assert!(v.as_f64().is_some_and(|ms| ms >= 0.0), "took_ms: {v}");
                        Json::String("[ms]".into())
                    } else {
                        redact(v, names)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// The ids of a list answer's items.
pub fn ids(list: &Json) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// The wall clock, in ms since the epoch: the server's clock unless the
/// test gave it a manual one (then [`Server::now_ms`]).
pub fn now_ms() -> i64 {
    sift_server::clock::system_now_ms()
}

/// RFC 3339 text of `ms`, as the API writes datetimes.
pub fn iso(ms: i64) -> String {
    sift_engine::format_datetime(ms)
}

/// The instant of an RFC 3339 datetime the API answered.
pub fn ms_of(text: &Json) -> i64 {
    sift_engine::parse_datetime(text.as_str().unwrap()).unwrap()
}

/// Polls a segment's changes every 20 ms until `contact` has exited, or
/// until the wall clock passes `give_up_at` (ms). Answers the exit and the
/// wall clock at which it was first seen.
pub async fn wait_for_exit(
    server: &Server,
    segment_id: &str,
    contact: &str,
    give_up_at: i64,
) -> Option<(Json, i64)> {
    loop {
        let exit = server
            .changes(segment_id)
            .await
            .into_iter()
            .find(|c| c["contact_id"] == contact && c["change"] == "exited");
        let seen_at = now_ms();
        if let Some(exit) = exit {
            return Some((exit, seen_at));
        }
        if seen_at > give_up_at {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
