//! The destination policy through the API: every non-public form of a
//! webhook URL, a workflow webhook URL or a Facebook `graph_url` is refused
//! with 422 and the reason; `allow_private_destinations` lets them through;
//! a name that resolves to loopback is refused when sending; redirects are
//! never followed. And workflow webhook secrets: masked, kept on update.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value as Json, json};

use crate::common::Server;
use crate::facebook_fake::{TOKEN, wait_job};

/// Every form the issue listed, and the reason each answer must give.
const REFUSED: [(&str, &str); 22] = [
    ("http://127.0.0.1:9/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    (
        "http://metadata.google.internal/computeMetadata/v1/",
        "private network",
    ),
    ("http://10.0.0.8/hook", "private"),
    ("http://172.20.1.1/hook", "private"),
    ("http://192.168.0.10/hook", "private"),
    ("http://100.100.100.200/hook", "carrier-grade NAT"),
    ("http://2130706433/hook", "loopback"),
    ("http://0x7f000001/hook", "loopback"),
    ("http://127.1/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[fd12:3456::1]/hook", "unique local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://224.0.0.251/hook", "multicast"),
    ("http://255.255.255.255/hook", "broadcast"),
    ("http://198.51.100.7/hook", "documentation"),
    ("http://localhost:8080/hook", "this machine"),
    ("http://app.localhost/hook", "this machine"),
    ("http://user:pw@example.com/hook", "user name or password"),
    ("http://user:pw@127.0.0.1/hook", "user name or password"),
];

fn strict() -> Server {
    Server::with(|config| config.allow_private_destinations = false)
}

fn refused_with(answer: &Json, field: &str, reason: &str, url: &str) {
    assert_eq!(
        answer["error"]["code"], "validation_failed",
        "{url}: {answer:#}"
    );
    assert_eq!(
        answer["error"]["details"]["field"], field,
        "{url}: {answer:#}"
    );
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains(reason), "{url}: {message}");
}

#[tokio::test]
async fn every_non_public_destination_is_refused_with_the_reason() {
    let server = strict();
    let segment = server.segment("All", "email is set").await;
    for (url, reason) in REFUSED {
        let (status, answer) = server
            .send(
                "POST",
                "/v1/webhooks",
                Some(json!({"url": url, "secret": "a-long-enough-secret"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {answer}");
        refused_with(&answer, "url", reason, url);

        let (status, answer) = server
            .send(
                "POST",
                "/v1/workflows",
                Some(json!({
                    "name": format!("Hook {url}"), "status": "active",
                    "trigger": {"type": "segment_entered", "segment": segment},
                    "actions": [{"type": "add_score", "points": 1},
                                {"type": "webhook", "url": url}]
                })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {answer}");
        refused_with(&answer, "actions[1].url", reason, url);

        let graph_url = url.trim_end_matches("/hook");
        let (status, answer) = server
            .send(
                "POST",
                &format!("/v1/segments/{segment}/exports/facebook"),
                Some(json!({"audience_id": "1", "access_token": TOKEN, "graph_url": graph_url})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {answer}");
        refused_with(&answer, "graph_url", reason, graph_url);
    }
    // Nothing was created by any of them.
    assert_eq!(server.get("/v1/webhooks").await["items"], json!([]));
    assert_eq!(server.get("/v1/workflows").await["items"], json!([]));
    assert_eq!(
        server.get(&format!("/v1/segments/{segment}/exports")).await["items"],
        json!([])
    );
    // A public destination is fine, resolvable or not (no DNS when saving).
    server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/webhooks",
            Some(
                json!({"url": "https://hooks.example.com/sift", "secret": "a-long-enough-secret"}),
            ),
        )
        .await;
}

#[tokio::test]
async fn the_setting_allows_private_destinations() {
    let server = Server::new();
    for (url, reason) in REFUSED {
        let (status, answer) = server
            .send(
                "POST",
                "/v1/webhooks",
                Some(json!({"url": url, "secret": "a-long-enough-secret"})),
            )
            .await;
        if reason == "user name or password" {
            // Credentials in a URL are refused whatever the setting.
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {answer}");
        } else {
            assert_eq!(status, StatusCode::CREATED, "{url}: {answer}");
        }
    }
}

/// A receiver on 127.0.0.1 that answers every POST with `status` (and a
/// `Location` when given) and counts them.
async fn receiver(status: StatusCode, location: Option<String>) -> (String, Arc<Mutex<usize>>) {
    let hits = Arc::new(Mutex::new(0usize));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        let location = location.clone();
        async move {
            *counted.lock().unwrap() += 1;
            let mut headers = HeaderMap::new();
            if let Some(to) = location {
                headers.insert("location", to.parse().unwrap());
            }
            (status, headers)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("127.0.0.1:{port}"), hits)
}

async fn poll(server: &Server, path: &str, done: impl Fn(&Json) -> bool) -> Json {
    for _ in 0..400 {
        let answer = server.get(path).await;
        if done(&answer) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{path} never got there: {:#}", server.get(path).await);
}

/// A name that looks public but resolves to loopback when the delivery is
/// sent (DNS rebinding) is refused then, for webhooks and Facebook alike.
#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_delivery_time() {
    let (address, hits) = receiver(StatusCode::NO_CONTENT, None).await;
    let port = address.rsplit(':').next().unwrap().to_string();
    let server = Server::with(|config| {
        config.allow_private_destinations = false;
        config.webhook_retry_base_ms = 20;
        config.webhook_retry_max_ms = 100;
        config.facebook.retry_base_ms = 5;
        config.facebook.retry_max_ms = 20;
        config.destination_hosts = HashMap::from([(
            "hooks.example.com".to_string(),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        )]);
    });
    let url = format!("http://hooks.example.com:{port}/sift");
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "secret": "a-long-enough-secret"})),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    server
        .put_contact("ana", json!({"email": "ana@example.com"}))
        .await;
    let segment = server.segment("All", "email is set").await;
    let hook = poll(&server, &format!("/v1/webhooks/{id}"), |h| {
        h["delivery"]["last_error"].is_object()
    })
    .await;
    let message = hook["delivery"]["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("hooks.example.com resolves to 127.0.0.1, a loopback address"),
        "{message}"
    );
    assert_eq!(hook["delivery"]["status"], "retrying");

    // The Facebook token is not sent there either: the job fails, saying why.
    let job = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/segments/{segment}/exports/facebook"),
            Some(json!({"audience_id": "1", "access_token": TOKEN,
                        "graph_url": format!("http://hooks.example.com:{port}")})),
        )
        .await;
    let job = wait_job(&server, job["id"].as_str().unwrap(), |j| {
        j["state"] == "failed"
    })
    .await;
    let errors = job["errors"].to_string();
    assert!(errors.contains("resolves to 127.0.0.1"), "{errors}");
    assert_eq!(*hits.lock().unwrap(), 0, "nothing reached the local port");
}

/// Saved while private destinations were allowed, refused once they are
/// not: the check runs again before each attempt, for literal addresses too.
#[tokio::test]
async fn a_literal_loopback_url_saved_earlier_is_refused_when_sending() {
    let (address, hits) = receiver(StatusCode::NO_CONTENT, None).await;
    let server = Server::with(|config| {
        config.webhook_retry_base_ms = 20;
        config.webhook_retry_max_ms = 100;
    });
    let id = crate::webhook_receiver::subscribe(
        &server,
        json!({"url": format!("http://{address}/"), "secret": "a-long-enough-secret"}),
    )
    .await;
    let server = server.restart_with(|config| config.allow_private_destinations = false);
    server
        .put_contact("ana", json!({"email": "a@example.com"}))
        .await;
    server.segment("All", "email is set").await;
    let hook = poll(&server, &format!("/v1/webhooks/{id}"), |h| {
        h["delivery"]["last_error"].is_object()
    })
    .await;
    let message = hook["delivery"]["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("127.0.0.1, a loopback address"),
        "{message}"
    );
    assert_eq!(*hits.lock().unwrap(), 0);
}

/// A workflow webhook answered with 307 is a failed attempt; the body is
/// not re-sent to the `Location`.
#[tokio::test]
async fn the_outbox_does_not_follow_a_307() {
    let (target, target_hits) = receiver(StatusCode::NO_CONTENT, None).await;
    let (redirector, redirector_hits) = receiver(
        StatusCode::TEMPORARY_REDIRECT,
        Some(format!("http://{target}/elsewhere")),
    )
    .await;
    let server = Server::with(|config| config.action_retry_base = Duration::from_millis(20));
    crate::workflows::orders_field(&server).await;
    let vip = server.segment("VIP", "orders >= 5").await;
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/workflows",
            Some(json!({
                "name": "Tell the CRM", "status": "active",
                "trigger": {"type": "segment_entered", "segment": vip},
                "actions": [{"type": "webhook", "url": format!("http://{redirector}/hook"), "secret": "s3cret-s3cret"}]
            })),
        )
        .await;
    let wf = created["id"].as_str().unwrap();
    server.put_contact("ana", json!({"orders": 9})).await;
    let page = poll(&server, &format!("/v1/workflows/{wf}/runs"), |page| {
        page["items"][0]["actions"][0]["delivery"]["last_error"].is_string()
    })
    .await;
    let delivery = &page["items"][0]["actions"][0]["delivery"];
    let message = delivery["last_error"].as_str().unwrap();
    assert!(
        message.contains("307") && message.contains("redirects are not followed"),
        "{message}"
    );
    assert_ne!(delivery["state"], "delivered");
    assert!(*redirector_hits.lock().unwrap() >= 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*target_hits.lock().unwrap(), 0, "the redirect was followed");
}

/// A webhook's 3xx is a failed attempt too, with a message saying so.
#[tokio::test]
async fn a_webhook_redirect_is_a_failed_attempt() {
    let (target, target_hits) = receiver(StatusCode::NO_CONTENT, None).await;
    let (redirector, _) = receiver(StatusCode::FOUND, Some(format!("http://{target}/"))).await;
    let server = crate::webhook_receiver::server();
    let id = crate::webhook_receiver::subscribe(
        &server,
        json!({"url": format!("http://{redirector}/"), "secret": "a-long-enough-secret"}),
    )
    .await;
    server
        .put_contact("ana", json!({"email": "a@example.com"}))
        .await;
    server.segment("All", "email is set").await;
    let hook = poll(&server, &format!("/v1/webhooks/{id}"), |h| {
        h["delivery"]["last_error"].is_object()
    })
    .await;
    let error = &hook["delivery"]["last_error"];
    assert_eq!(error["status"], 302);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"),
        "{error}"
    );
    assert_eq!(*target_hits.lock().unwrap(), 0);
}

/// A workflow's webhook secret is shown as its end only; sending the
/// workflow back as read keeps it; `null` removes it; a new URL without a
/// secret is unsigned.
#[tokio::test]
async fn workflow_webhook_secrets_are_masked_and_kept_on_update() {
    let server = Server::new();
    crate::workflows::orders_field(&server).await;
    let vip = server.segment("VIP", "orders >= 5").await;
    let secret = "whsec-0123456789-abcd";
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/workflows",
            Some(json!({
                "name": "Tell the CRM", "status": "active",
                "trigger": {"type": "segment_entered", "segment": vip},
                "actions": [{"type": "webhook", "url": "https://crm.example.com/a", "secret": secret},
                            {"type": "webhook", "url": "https://crm.example.com/b", "secret": secret}]
            })),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let shown =
        json!({"type": "webhook", "url": "https://crm.example.com/a", "secret_hint": "…abcd"});
    assert_eq!(created["actions"][0], shown);
    for answer in [
        server.get("/v1/workflows").await,
        server.get(&format!("/v1/workflows/{id}")).await,
    ] {
        assert!(!answer.to_string().contains("0123456789"), "{answer}");
    }
    let read = server.get(&format!("/v1/workflows/{id}")).await;
    assert_eq!(read["actions"][0], shown);

    // The whole workflow as read, sent back: the secrets stay.
    let mut body = read.clone();
    for key in [
        "id",
        "filter_text",
        "queued",
        "dropped",
        "dropped_since",
        "last_dropped_at",
        "created_at",
        "updated_at",
    ] {
        body.as_object_mut().unwrap().remove(key);
    }
    body["name"] = json!("Tell the CRM (renamed)");
    let updated = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/workflows/{id}"),
            Some(body),
        )
        .await;
    assert_eq!(updated["actions"][0]["secret_hint"], "…abcd");
    assert_eq!(updated["actions"][1]["secret_hint"], "…abcd");

    // null removes; a new URL without a secret is unsigned.
    let updated = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/workflows/{id}"),
            Some(json!({"actions": [
                {"type": "webhook", "url": "https://crm.example.com/a", "secret": null},
                {"type": "webhook", "url": "https://crm.example.com/c"}]})),
        )
        .await;
    assert_eq!(updated["actions"][0]["secret_hint"], Json::Null);
    assert_eq!(updated["actions"][1]["secret_hint"], Json::Null);
}
