//! The workflow `webhook` action against a local receiver: the body
//! `{workflow_id, run, contact, trigger}`, its HMAC signature, retries with
//! backoff until the receiver accepts, delivery state on the run, and
//! pending deliveries surviving a restart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value as Json, json};
use sha2::Sha256;

use crate::common::Server;

/// What the receiver saw: headers and body of every request.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Requests to refuse with a 500 before accepting.
    fail_first: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Receiver, String) {
        let receiver = Receiver {
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            ..Receiver::default()
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state.seen.lock().unwrap().push((headers, body));
                    let left = state.fail_first.load(Ordering::SeqCst);
                    if left > 0 {
                        state.fail_first.store(left - 1, Ordering::SeqCst);
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn requests(&self) -> Vec<(HeaderMap, String)> {
        self.seen.lock().unwrap().clone()
    }
}

fn hmac_hex(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The run's webhook delivery once it reaches `state`.
async fn delivery_in(server: &Server, wf: &str, state: &str) -> (Json, Json) {
    for _ in 0..400 {
        let page = server.get(&format!("/v1/workflows/{wf}/runs")).await;
        if let Some(run) = page["items"].as_array().unwrap().first() {
            let delivery = &run["actions"][0]["delivery"];
            if delivery["state"] == state {
                return (run.clone(), delivery.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no delivery reached {state}");
}

async fn hook_workflow(server: &Server, url: &str, secret: Option<&str>) -> (String, String) {
    crate::workflows::orders_field(server).await;
    let vip = server.segment("VIP", "orders >= 5").await;
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/workflows",
            Some(json!({
                "name": "Tell the CRM", "status": "active",
                "trigger": {"type": "segment_entered", "segment": vip},
                "actions": [{"type": "webhook", "url": url, "secret": secret}]
            })),
        )
        .await;
    (vip, created["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_signed_webhook_is_retried_until_the_receiver_accepts_it() {
    let (receiver, url) = Receiver::start(3).await;
    let server = Server::with(|config| config.action_retry_base = Duration::from_millis(20));
    let (vip, wf) = hook_workflow(&server, &url, Some("s3cret")).await;
    server
        .put_contact("ana", json!({"orders": 9, "email": "ana@example.com"}))
        .await;
    let (run, delivery) = delivery_in(&server, &wf, "delivered").await;
    assert_eq!(run["actions"][0]["result"], "queued");
    assert_eq!(delivery["attempts"], 4);
    assert_eq!(
        delivery["last_error"],
        "the endpoint answered 500 Internal Server Error"
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4);
    let (headers, body) = &requests[3];
    // Every attempt carries the same body, id and signature.
    for (h, b) in &requests {
        assert_eq!(b, body);
        assert_eq!(h["sift-delivery"], headers["sift-delivery"]);
    }
    let signature = headers["sift-signature"].to_str().unwrap();
    assert_eq!(signature, format!("sha256={}", hmac_hex("s3cret", body)));
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["sift-delivery"].to_str().unwrap(),
        delivery["id"].as_str().unwrap()
    );
    let body: Json = serde_json::from_str(body).unwrap();
    assert_eq!(body["workflow_id"], json!(wf));
    assert_eq!(body["run"]["id"], run["id"]);
    assert_eq!(body["run"]["mode"], "active");
    assert_eq!(body["contact"]["id"], "ana");
    assert_eq!(body["contact"]["properties"]["email"], "ana@example.com");
    assert_eq!(body["contact"]["segments"][0]["id"], json!(vip));
    assert_eq!(body["trigger"]["type"], "segment_entered");
    assert_eq!(body["trigger"]["segment"], json!(vip));
    assert_eq!(body["trigger"]["seq"], run["trigger"]["seq"]);
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart_and_unsigned_ones_have_no_signature() {
    let (receiver, url) = Receiver::start(usize::MAX).await;
    let server = Server::with(|config| config.action_retry_base = Duration::from_millis(20));
    let (_, wf) = hook_workflow(&server, &url, None).await;
    for id in ["a", "b", "c"] {
        server.put_contact(id, json!({"orders": 9})).await;
    }
    // Failing: at least one attempt each, none delivered.
    for _ in 0..200 {
        if receiver.requests().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server = server.restart();
    receiver.fail_first.store(0, Ordering::SeqCst);
    for _ in 0..400 {
        let page = server.get(&format!("/v1/workflows/{wf}/runs")).await;
        let states: Vec<Json> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["actions"][0]["delivery"]["state"].clone())
            .collect();
        if states.len() == 3 && states.iter().all(|s| s == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let requests = receiver.requests();
    let accepted: Vec<String> = {
        // Each delivery id's last request is the accepted one.
        let mut ids: Vec<String> = requests
            .iter()
            .map(|(h, _)| h["sift-delivery"].to_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    assert_eq!(accepted.len(), 3, "{accepted:?}");
    assert!(
        requests
            .iter()
            .all(|(h, _)| !h.contains_key("sift-signature"))
    );
    let (_, delivery) = delivery_in(&server, &wf, "delivered").await;
    assert!(delivery["attempts"].as_u64().unwrap() >= 2, "{delivery}");
}
