//! The webhook tests' receiver (an axum server on 127.0.0.1:0 that records
//! every request and can fail or hang) and the helpers they share.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value as Json, json};

use crate::common::Server;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Attempt {
    pub(crate) delivery_id: String,
    pub(crate) signature: String,
    pub(crate) attempt: u32,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
    /// Whether the receiver answered 2xx.
    pub(crate) accepted: bool,
}

#[derive(Default)]
pub(crate) struct ReceiverState {
    pub(crate) attempts: Vec<Attempt>,
    /// Requests still to answer 500.
    pub(crate) fail_next: usize,
    /// Answer nothing (until the client gives up).
    pub(crate) hang: bool,
    /// With `Some(n)`: accept `n` more requests, then refuse every one.
    pub(crate) accept_only: Option<usize>,
}

/// A webhook endpoint: an axum server on 127.0.0.1:0 that records every
/// request and can fail or hang.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) state: Arc<Mutex<ReceiverState>>,
    pub(crate) _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    pub(crate) async fn start(fail_next: usize) -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState {
            fail_next,
            ..ReceiverState::default()
        }));
        let shared = state.clone();
        let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
            let shared = shared.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let (status, hang) = {
                    let mut state = shared.lock().unwrap();
                    let mut failing = state.fail_next > 0;
                    if failing {
                        state.fail_next -= 1;
                    }
                    match &mut state.accept_only {
                        Some(0) => failing = true,
                        Some(n) => *n -= 1,
                        None => {}
                    }
                    let hang = state.hang;
                    state.attempts.push(Attempt {
                        delivery_id: header("sift-delivery"),
                        signature: header("sift-signature"),
                        attempt: header("sift-attempt").parse().unwrap_or(0),
                        content_type: header("content-type"),
                        body: body.to_vec(),
                        accepted: !failing && !hang,
                    });
                    let status = if failing {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    (status, hang)
                };
                if hang {
                    std::future::pending::<()>().await;
                }
                (status, "thanks")
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            url,
            state,
            _stop: stop,
        }
    }

    pub(crate) fn attempts(&self) -> Vec<Attempt> {
        self.state.lock().unwrap().attempts.clone()
    }

    pub(crate) fn set(&self, f: impl FnOnce(&mut ReceiverState)) {
        f(&mut self.state.lock().unwrap());
    }

    /// What a receiver that dedupes by delivery id processes: the first
    /// accepted body of each id, in arrival order. Every attempt of an id
    /// must carry the same bytes.
    pub(crate) fn deliveries(&self) -> Vec<Json> {
        let attempts = self.attempts();
        let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut out = Vec::new();
        for attempt in &attempts {
            let first = bodies
                .entry(attempt.delivery_id.clone())
                .or_insert_with(|| attempt.body.clone());
            assert_eq!(
                *first, attempt.body,
                "a delivery id came back with another body"
            );
        }
        let mut seen = BTreeSet::new();
        for attempt in attempts.iter().filter(|a| a.accepted) {
            if seen.insert(attempt.delivery_id.clone()) {
                out.push(serde_json::from_slice(&attempt.body).unwrap());
            }
        }
        out
    }

    /// Every change the deduped deliveries carried, in arrival order.
    pub(crate) fn changes(&self) -> Vec<Json> {
        self.deliveries()
            .iter()
            .flat_map(|d| d["changes"].as_array().unwrap().clone())
            .collect()
    }
}

pub(crate) fn verify(secret: &str, attempt: &Attempt) {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&attempt.body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(attempt.signature, format!("sha256={hex}"));
}

/// A server whose webhooks retry after 10-20 ms, 40-80 ms... (at most 200 ms).
pub(crate) fn server() -> Server {
    Server::with(|config| {
        config.webhook_retry_base_ms = 20;
        config.webhook_retry_max_ms = 200;
        config.webhook_timeout_ms = 2_000;
    })
}

pub(crate) async fn subscribe(server: &Server, body: Json) -> String {
    let created = server
        .expect(StatusCode::CREATED, "POST", "/v1/webhooks", Some(body))
        .await;
    created["id"].as_str().unwrap().to_string()
}

/// Polls every 10 ms until `done` holds; fails after 10 s.
pub(crate) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the webhook has nothing left to send.
pub(crate) async fn caught_up(server: &Server, id: &str) -> Json {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hook = server.get(&format!("/v1/webhooks/{id}")).await;
        let delivery = &hook["delivery"];
        if delivery["status"] == "idle" && delivery["lag_seqs"] == 0 && delivery["lag_events"] == 0
        {
            return hook;
        }
        assert!(Instant::now() < deadline, "not caught up: {hook:#}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every change in the log, by seq, as the API's pages answer them.
pub(crate) async fn log(server: &Server, segments: &[&str]) -> Vec<Json> {
    let mut all = Vec::new();
    for segment in segments {
        all.extend(server.changes(segment).await);
    }
    all.sort_by_key(|c| c["seq"].as_u64().unwrap());
    all
}

pub(crate) fn seqs(changes: &[Json]) -> Vec<u64> {
    changes.iter().map(|c| c["seq"].as_u64().unwrap()).collect()
}

/// Writes that enter and leave two segments.
pub(crate) async fn churn(server: &Server, prefix: &str, n: usize) {
    for i in 0..n {
        let id = format!("{prefix}{i}");
        server
            .put_contact(&id, json!({"country": "ES", "lead": i % 3}))
            .await;
        if i % 2 == 0 {
            server.put_contact(&id, json!({"country": "FR"})).await;
        }
    }
}

pub(crate) async fn two_segments(server: &Server) -> (String, String) {
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let france = server.segment("France", "country = \"FR\"").await;
    (spain, france)
}
