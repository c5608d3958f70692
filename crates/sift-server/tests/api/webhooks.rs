//! Webhooks (docs/api.md `webhook`, docs/api.md "Webhooks") against a real HTTP
//! receiver on 127.0.0.1 started by each test: signatures verify (the HMAC
//! is recomputed here), batches arrive in seq order with gapless seqs, a
//! receiver that fails the first three attempts still gets everything once
//! per delivery id, a restart resumes from the last acknowledged seq under
//! the same delivery id, a down endpoint holds up neither writes nor other
//! webhooks, segment filters and events, the CRUD cycle, bad input, the UI.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of};
use crate::webhook_receiver::{
    Attempt, Receiver, caught_up, churn, log, seqs, server, subscribe, two_segments, until, verify,
};
#[tokio::test]
async fn deliveries_are_signed_in_seq_order_and_gapless() {
    let server = server();
    let receiver = Receiver::start(0).await;
    let (spain, france) = two_segments(&server).await;
    server.put_contact("before", json!({"country": "ES"})).await;
    let id = subscribe(
        &server,
        json!({"url": receiver.url, "secret": "a long shared secret"}),
    )
    .await;
    churn(&server, "c", 30).await;
    caught_up(&server, &id).await;

    let attempts = receiver.attempts();
    assert!(!attempts.is_empty());
    for attempt in &attempts {
        verify("a long shared secret", attempt);
        assert_eq!(attempt.content_type, "application/json");
        assert_eq!(attempt.attempt, 1);
        let body: Json = serde_json::from_slice(&attempt.body).unwrap();
        assert_eq!(body["delivery_id"], attempt.delivery_id.as_str());
        assert!(
            attempt.delivery_id.starts_with(&id),
            "{}",
            attempt.delivery_id
        );
        assert!(body.get("events").is_none(), "no events asked for");
        let text = String::from_utf8(attempt.body.clone()).unwrap();
        assert!(text.starts_with("{\"delivery_id\":"), "{text}");
    }
    // Everything after the subscription, nothing before, in order, no gaps,
    // each change exactly as the API's change log has it.
    let expected: Vec<Json> = log(&server, &[&spain, &france])
        .await
        .into_iter()
        .filter(|c| c["contact_id"] != "before")
        .collect();
    let received = receiver.changes();
    assert_eq!(received, expected);
    let first = seqs(&received)[0];
    assert_eq!(
        seqs(&received),
        (first..first + received.len() as u64).collect::<Vec<_>>()
    );
    // Seqs start at 1: seq 1 is the change made before the subscription.
    assert_eq!(first, 2, "the change before the webhook is not sent");
}

#[tokio::test]
async fn a_receiver_failing_three_times_still_gets_everything_once_per_delivery_id() {
    let server = server();
    let receiver = Receiver::start(3).await;
    let (spain, france) = two_segments(&server).await;
    let id = subscribe(
        &server,
        json!({"url": receiver.url, "secret": "s3cret-s3cret"}),
    )
    .await;
    churn(&server, "c", 20).await;
    let hook = caught_up(&server, &id).await;
    churn(&server, "d", 10).await;
    caught_up(&server, &id).await;

    let attempts = receiver.attempts();
    // The first batch: three refusals, then accepted, same id and bytes.
    let first = &attempts[0].delivery_id;
    let tries: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| &a.delivery_id == first)
        .collect();
    assert_eq!(tries.len(), 4, "{first}");
    assert_eq!(
        tries
            .iter()
            .map(|a| (a.attempt, a.accepted))
            .collect::<Vec<_>>(),
        [(1, false), (2, false), (3, false), (4, true)]
    );
    for attempt in &attempts {
        verify("s3cret-s3cret", attempt);
    }
    let received = receiver.changes();
    assert_eq!(received, log(&server, &[&spain, &france]).await);
    let unique: BTreeSet<u64> = seqs(&received).into_iter().collect();
    assert_eq!(unique.len(), received.len(), "a change came twice");

    // The failures are on record.
    let delivery = &hook["delivery"];
    assert_eq!(delivery["last_error"]["status"], 500);
    assert!(
        delivery["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{delivery}"
    );
    assert_eq!(delivery["attempts"], 0);
    assert!(delivery["last_success_at"].is_string());
    assert!(delivery["delivered_changes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_restart_resumes_from_the_last_acknowledged_seq_with_the_same_delivery_id() {
    let mut server = server();
    let receiver = Receiver::start(0).await;
    let (spain, france) = two_segments(&server).await;
    let id = subscribe(
        &server,
        json!({"url": receiver.url, "secret": "restart-secret"}),
    )
    .await;
    churn(&server, "a", 10).await;
    caught_up(&server, &id).await;
    let acknowledged = receiver.attempts().len();

    // Acknowledged batches are not sent again after a restart.
    server = server.restart();
    churn(&server, "b", 10).await;
    caught_up(&server, &id).await;
    let attempts = receiver.attempts();
    assert!(attempts.iter().all(|a| a.accepted && a.attempt == 1));
    let ids: BTreeSet<&str> = attempts.iter().map(|a| a.delivery_id.as_str()).collect();
    assert_eq!(ids.len(), attempts.len(), "a delivery id came twice");
    assert!(attempts.len() > acknowledged);

    // A batch refused before a restart comes back after it, same id, same
    // bytes, and nothing is lost.
    receiver.set(|r| r.fail_next = usize::MAX);
    churn(&server, "c", 5).await;
    until("a refused attempt", || {
        receiver.attempts().iter().any(|a| !a.accepted)
    })
    .await;
    let refused = receiver
        .attempts()
        .into_iter()
        .find(|a| !a.accepted)
        .unwrap();
    server = server.restart();
    // The restart happened with the batch unacknowledged.
    let hook = server.get(&format!("/v1/webhooks/{id}")).await;
    assert!(
        hook["delivery"]["lag_seqs"].as_u64().unwrap() > 0,
        "{hook:#}"
    );
    receiver.set(|r| r.fail_next = 0);
    caught_up(&server, &id).await;
    let after: Vec<Attempt> = receiver
        .attempts()
        .into_iter()
        .filter(|a| a.accepted)
        .skip(attempts.len())
        .collect();
    assert_eq!(after[0].delivery_id, refused.delivery_id);
    assert_eq!(after[0].body, refused.body);
    let received = receiver.changes();
    assert_eq!(received, log(&server, &[&spain, &france]).await);
}

#[tokio::test]
async fn a_down_endpoint_holds_up_neither_writes_nor_a_healthy_webhook() {
    let server = Server::with(|config| {
        config.webhook_retry_base_ms = 20;
        config.webhook_retry_max_ms = 100;
        config.webhook_timeout_ms = 2_000;
    });
    let hanging = Receiver::start(0).await;
    hanging.set(|r| r.hang = true);
    // A port nobody listens on: connections are refused.
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    let healthy = Receiver::start(0).await;
    let (spain, france) = two_segments(&server).await;
    let stuck = subscribe(&server, json!({"url": hanging.url, "secret": "x-secret"})).await;
    let gone = subscribe(&server, json!({"url": refused, "secret": "x-secret"})).await;
    let good = subscribe(&server, json!({"url": healthy.url, "secret": "y-secret"})).await;

    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..60 {
        let t = Instant::now();
        server
            .put_contact(
                &format!("w{i}"),
                json!({"country": if i % 2 == 0 { "ES" } else { "FR" }}),
            )
            .await;
        slowest = slowest.max(t.elapsed());
    }
    let took = started.elapsed();
    // Each write answers on its own commit, however the endpoints fare (a
    // wait on the hanging endpoint's 2 s timeout would show here).
    assert!(
        slowest < Duration::from_secs(1),
        "slowest write {slowest:?}"
    );
    assert!(took < Duration::from_secs(10), "60 writes took {took:?}");

    caught_up(&server, &good).await;
    assert_eq!(healthy.changes(), log(&server, &[&spain, &france]).await);
    for (id, message) in [
        (&stuck, "no answer within 2000 ms"),
        (&gone, "could not connect"),
    ] {
        let path = format!("/v1/webhooks/{id}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let hook = loop {
            let hook = server.get(&path).await;
            if !hook["delivery"]["last_error"].is_null() {
                break hook;
            }
            assert!(Instant::now() < deadline, "no failure recorded: {hook:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let delivery = &hook["delivery"];
        assert!(
            matches!(delivery["status"].as_str(), Some("retrying" | "delivering")),
            "{hook:#}"
        );
        assert!(delivery["lag_seqs"].as_u64().unwrap() >= 60, "{hook:#}");
        assert!(delivery["lag_ms"].as_i64().unwrap() > 0, "{hook:#}");
        assert!(delivery["delivery_id"].is_string(), "{hook:#}");
        let error = &delivery["last_error"];
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{error:#}"
        );
        assert_eq!(error["status"], Json::Null, "{error:#}");
    }
    // Writes still answer while both keep failing.
    server.put_contact("late", json!({"country": "ES"})).await;
    caught_up(&server, &good).await;
    assert_eq!(healthy.changes().last().unwrap()["contact_id"], "late");
    let gone_hook = server.get(&format!("/v1/webhooks/{gone}")).await;
    assert!(
        gone_hook["delivery"]["attempts"].as_u64().unwrap() >= 2,
        "{gone_hook:#}"
    );
    assert!(
        gone_hook["delivery"]["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not connect")
    );
}

#[tokio::test]
async fn segment_filters_and_events() {
    let server = server();
    let receiver = Receiver::start(0).await;
    let events_receiver = Receiver::start(0).await;
    let (spain, france) = two_segments(&server).await;
    let only_spain = subscribe(
        &server,
        json!({"url": receiver.url, "secret": "filter-secret", "segments": [spain]}),
    )
    .await;
    let events_only = subscribe(
        &server,
        json!({"url": events_receiver.url, "secret": "events-secret", "segments": [], "events": true}),
    )
    .await;
    churn(&server, "c", 12).await;
    for i in 0..5 {
        server
            .events(json!({"id": format!("e{i}"), "contact_id": format!("c{i}"), "type": "purchase", "properties": {"amount": i}}))
            .await;
    }
    // A replayed event is not sent again.
    server
        .events(json!({"id": "e0", "contact_id": "c0", "type": "purchase"}))
        .await;
    caught_up(&server, &only_spain).await;
    caught_up(&server, &events_only).await;

    let received = receiver.changes();
    assert!(!received.is_empty());
    assert!(received.iter().all(|c| c["segment_id"] == spain.as_str()));
    assert_eq!(received, server.changes(&spain).await);
    assert!(!server.changes(&france).await.is_empty());

    let deliveries = events_receiver.deliveries();
    assert!(deliveries.iter().all(|d| d["changes"] == json!([])));
    let events: Vec<Json> = deliveries
        .iter()
        .flat_map(|d| d["events"].as_array().unwrap().clone())
        .collect();
    assert_eq!(events.len(), 5);
    let event_seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(event_seqs.windows(2).all(|w| w[0] < w[1]), "{event_seqs:?}");
    assert_eq!(events[2]["id"], "e2");
    assert_eq!(events[2]["contact_id"], "c2");
    assert_eq!(events[2]["type"], "purchase");
    assert_eq!(events[2]["properties"], json!({"amount": 2}));
    assert!(events[2]["at"].is_string());
    for attempt in events_receiver.attempts() {
        verify("events-secret", &attempt);
    }

    // Widening the filter to every segment sends what comes next from both.
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/webhooks/{only_spain}"),
            Some(json!({"segments": null})),
        )
        .await;
    server.put_contact("fr", json!({"country": "FR"})).await;
    caught_up(&server, &only_spain).await;
    let last = receiver.changes().last().unwrap().clone();
    assert_eq!(
        (last["segment_id"].as_str(), last["contact_id"].as_str()),
        (Some(france.as_str()), Some("fr"))
    );
}

#[tokio::test]
async fn webhooks_are_created_listed_read_disabled_enabled_and_deleted() {
    let server = server();
    let receiver = Receiver::start(0).await;
    let (spain, _) = two_segments(&server).await;
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": receiver.url, "secret": "0123456789abcdef", "segments": [spain, spain], "events": true})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("wh_"), "{id}");
    assert_eq!(created["url"], receiver.url.as_str());
    assert_eq!(created["segments"], json!([spain]));
    assert_eq!(created["events"], true);
    assert_eq!(created["enabled"], true);
    assert_eq!(created["secret_hint"], "…cdef");
    assert!(
        created.get("secret").is_none(),
        "the secret is never sent back"
    );
    let delivery = &created["delivery"];
    for key in [
        "status",
        "change_cursor",
        "event_cursor",
        "lag_seqs",
        "lag_ms",
        "lag_events",
        "delivery_id",
        "attempts",
        "next_attempt_at",
        "last_success_at",
        "last_error",
        "delivered_batches",
        "delivered_changes",
        "delivered_events",
    ] {
        assert!(
            delivery.get(key).is_some(),
            "delivery has no {key}: {delivery:#}"
        );
    }
    let path = format!("/v1/webhooks/{id}");
    assert_eq!(server.get(&path).await["id"], id.as_str());
    let list = server.get("/v1/webhooks").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["next_cursor"], Json::Null);

    // Disabled: nothing is sent, the cursor waits.
    let disabled = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["delivery"]["status"], "disabled");
    server.put_contact("x", json!({"country": "ES"})).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(receiver.attempts().is_empty());
    let waiting = server.get(&path).await;
    assert_eq!(waiting["delivery"]["lag_seqs"], 1);
    // Enabled again: it sends what it missed.
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"enabled": true})),
        )
        .await;
    caught_up(&server, &id).await;
    assert_eq!(receiver.changes().len(), 1);
    assert_eq!(receiver.changes()[0]["contact_id"], "x");

    // A new secret signs what comes next.
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"secret": "rotated-secret"})),
        )
        .await;
    server.put_contact("y", json!({"country": "ES"})).await;
    caught_up(&server, &id).await;
    verify("rotated-secret", receiver.attempts().last().unwrap());

    let deleted = server.expect(StatusCode::OK, "DELETE", &path, None).await;
    assert_eq!(deleted, json!({"id": id, "deleted": true}));
    for method in ["GET", "PATCH", "DELETE"] {
        let body = (method == "PATCH").then(|| json!({"enabled": true}));
        let (status, answer) = server.send(method, &path, body).await;
        let error = error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(error["details"], json!({"kind": "webhook", "id": id}));
    }
    let sent = receiver.attempts().len();
    server.put_contact("z", json!({"country": "ES"})).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        receiver.attempts().len(),
        sent,
        "a deleted webhook sent something"
    );
    assert_eq!(server.get("/v1/webhooks").await["items"], json!([]));
}

#[tokio::test]
async fn bad_input_is_a_422_naming_the_field_and_changes_nothing() {
    let server = server();
    let (spain, _) = two_segments(&server).await;
    let url = "https://example.com/hooks/sift";
    let cases = [
        (json!({"url": "not a url", "secret": "s"}), "url"),
        (json!({"url": "ftp://example.com/x", "secret": "s"}), "url"),
        (json!({"url": "http://", "secret": "s"}), "url"),
        (json!({"url": 42, "secret": "s"}), "url"),
        (json!({"secret": "s"}), "url"),
        (json!({"url": url, "secret": ""}), "secret"),
        (json!({"url": url, "secret": "   "}), "secret"),
        (json!({"url": url}), "secret"),
        (json!({"url": url, "secret": 7}), "secret"),
        (
            json!({"url": url, "secret": "s", "segments": ["seg_nope"]}),
            "segments",
        ),
        (
            json!({"url": url, "secret": "s", "segments": [spain, 3]}),
            "segments",
        ),
        (
            json!({"url": url, "secret": "s", "segments": "all"}),
            "segments",
        ),
        (
            json!({"url": url, "secret": "s", "segments": []}),
            "segments",
        ),
        (
            json!({"url": url, "secret": "s", "events": "yes"}),
            "events",
        ),
        (json!({"url": url, "secret": "s", "enabled": 1}), "enabled"),
        (
            json!({"url": url, "secret": "s", "segment": [spain]}),
            "segment",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = server
            .send("POST", "/v1/webhooks", Some(body.clone()))
            .await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            error["details"]["field"], field,
            "{body} answered {answer:#}"
        );
    }
    let (status, answer) = server
        .send(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "secret": "s", "segments": [spain, "seg_nope"]})),
        )
        .await;
    let error = error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        error["details"],
        json!({"field": "segments", "index": 1, "id": "seg_nope"})
    );
    assert!(error["message"].as_str().unwrap().contains("seg_nope"));
    let (status, answer) = server.send("POST", "/v1/webhooks", Some(json!([1]))).await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(server.get("/v1/webhooks").await["items"], json!([]));

    // An edit with a bad key changes nothing either.
    let id = subscribe(&server, json!({"url": url, "secret": "s"})).await;
    let path = format!("/v1/webhooks/{id}");
    let before = server.get(&path).await;
    for (body, field) in [
        (
            json!({"url": "mailto:x@example.com", "enabled": false}),
            "url",
        ),
        (json!({"secret": "", "enabled": false}), "secret"),
        (
            json!({"segments": ["seg_nope"], "enabled": false}),
            "segments",
        ),
        (json!({"segments": []}), "segments"),
    ] {
        let (status, answer) = server.send("PATCH", &path, Some(body.clone())).await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            error["details"]["field"], field,
            "{body} answered {answer:#}"
        );
    }
    let after = server.get(&path).await;
    assert_eq!(after["enabled"], true);
    assert_eq!(after["url"], before["url"]);
    assert_eq!(after["segments"], Json::Null);
    assert_eq!(after["updated_at"], before["updated_at"]);
}

#[tokio::test]
async fn the_webhooks_page_lists_status_lag_and_errors() {
    let server = server();
    let receiver = Receiver::start(usize::MAX).await;
    let (spain, _) = two_segments(&server).await;
    let id = subscribe(
        &server,
        json!({"url": receiver.url, "secret": "page-secret", "segments": [spain]}),
    )
    .await;
    server.put_contact("p", json!({"country": "ES"})).await;
    until("a refused attempt", || !receiver.attempts().is_empty()).await;
    // A session straight from the session store (tests/api/ui.rs covers sign-in).
    let cookie = server.state.sessions.start(&server.workspace_id, None);
    let request = axum::http::Request::builder()
        .uri("/ui/webhooks")
        .header("cookie", format!("sift_session={cookie}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(server.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let page = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        page.contains(&format!("data-webhook-id=\"{id}\"")),
        "{page}"
    );
    assert!(page.contains(&receiver.url), "{page}");
    assert!(page.contains("Spain"), "{page}");
    assert!(page.contains("500"), "the last error shows: {page}");
    assert!(page.contains("id=\"create-webhook\""), "{page}");
    assert!(
        page.contains(">Webhooks<"),
        "the navigation has Webhooks: {page}"
    );
}

/// Small batches (`webhook_batch_max` 4) of one write's ten changes: a
/// restart after the first was acknowledged and the second refused sends
/// the second again under the same id with the same bytes, then the third;
/// the first is not sent again.
#[tokio::test]
async fn a_restart_in_the_middle_of_a_window_cuts_the_same_batches() {
    let mut server = Server::with(|config| {
        config.webhook_retry_base_ms = 20;
        config.webhook_retry_max_ms = 200;
        config.webhook_batch_max = 4;
    });
    let receiver = Receiver::start(0).await;
    let (spain, france) = two_segments(&server).await;
    let id = subscribe(
        &server,
        json!({"url": receiver.url, "secret": "window-secret"}),
    )
    .await;
    receiver.set(|r| r.accept_only = Some(1));
    let contacts: Vec<Json> = (0..10)
        .map(|i| json!({"id": format!("w{i}"), "properties": {"country": "ES"}}))
        .collect();
    server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/contacts:batch",
            Some(json!({"contacts": contacts})),
        )
        .await;
    until("a refused second batch", || {
        receiver.attempts().iter().any(|a| !a.accepted)
    })
    .await;
    let before = receiver.attempts();
    let first = before[0].clone();
    let refused = before.iter().find(|a| !a.accepted).unwrap().clone();
    assert!(first.accepted);
    assert_ne!(first.delivery_id, refused.delivery_id);
    server = server.restart();
    receiver.set(|r| r.accept_only = None);
    caught_up(&server, &id).await;

    let accepted: Vec<Attempt> = receiver
        .attempts()
        .into_iter()
        .filter(|a| a.accepted)
        .collect();
    let ids: Vec<&str> = accepted.iter().map(|a| a.delivery_id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids[0], first.delivery_id);
    assert_eq!(
        ids[1], refused.delivery_id,
        "the refused batch keeps its id"
    );
    assert_eq!(accepted[1].body, refused.body, "and its bytes");
    let sizes: Vec<usize> = receiver
        .deliveries()
        .iter()
        .map(|d| d["changes"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [4, 4, 2]);
    let received = receiver.changes();
    assert_eq!(received, log(&server, &[&spain, &france]).await);
    // Seqs start at 1.
    assert_eq!(seqs(&received), (1..11).collect::<Vec<_>>());
}
