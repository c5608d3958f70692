//! Events (docs/concepts.md "Event", §3): one event or a batch, idempotency by `id`
//! (also across a restart), `at` at most 5 minutes ahead, contacts created by
//! events, `last_seen_at`, behavioural segments with cause `event`, and time:
//! windows that close on their own within 1 s (cause `time`, at the instant
//! they close), also while the server is down.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of, iso, ms_of, now_ms, wait_for_exit};

#[tokio::test]
async fn a_single_event_and_a_batch_are_accepted() {
    let server = Server::new();
    let answer = server
        .events(
            json!({"contact_id": "ana", "type": "page_visit", "properties": {"path": "/shoes"}}),
        )
        .await;
    assert_eq!(
        answer,
        json!({"accepted": 1, "duplicates": 0, "duplicate_indexes": [], "changes": 0})
    );
    let answer = server
        .events(json!({"events": [
            {"contact_id": "ana", "type": "purchase", "properties": {"amount": 60, "items": ["a", "b"], "meta": {"x": 1}}},
            {"contact_id": "bob", "type": "purchase", "at": iso(now_ms() - 3_600_000)},
            {"id": "e-1", "contact_id": "bob", "type": "email_open", "properties": null},
        ]}))
        .await;
    assert_eq!(answer["accepted"], 3, "{answer:#}");
    assert_eq!(answer["duplicates"], 0, "{answer:#}");
    server.get("/v1/contacts/bob").await;
    // An empty batch is a batch of nothing, not an error.
    let answer = server.events(json!({"events": []})).await;
    assert_eq!(answer["accepted"], 0, "{answer:#}");
}

#[tokio::test]
async fn a_batch_posted_twice_applies_once_also_after_a_restart() {
    let server = Server::new();
    let buyers = server
        .segment("Buyers", "performed purchase at least 2 times")
        .await;
    let batch = json!({"events": [
        {"id": "order-1", "contact_id": "ana", "type": "purchase"},
        {"id": "order-2", "contact_id": "ana", "type": "purchase"},
    ]});
    let first = server.events(batch.clone()).await;
    assert_eq!(
        first,
        json!({"accepted": 2, "duplicates": 0, "duplicate_indexes": [], "changes": 1})
    );
    let again = server.events(batch.clone()).await;
    assert_eq!(
        again,
        json!({"accepted": 0, "duplicates": 2, "duplicate_indexes": [0, 1], "changes": 0})
    );
    // A replay mixed with a new event: only the new one is applied.
    let mixed = server
        .events(json!({"events": [
            {"id": "order-3", "contact_id": "ana", "type": "purchase"},
            {"id": "order-1", "contact_id": "ana", "type": "purchase"},
        ]}))
        .await;
    assert_eq!(mixed["accepted"], 1, "{mixed:#}");
    assert_eq!(mixed["duplicate_indexes"], json!([1]), "{mixed:#}");

    let server = server.restart();
    let after_restart = server.events(batch).await;
    assert_eq!(after_restart["accepted"], 0, "{after_restart:#}");
    assert_eq!(after_restart["duplicates"], 2, "{after_restart:#}");
    let explained = server
        .get(&format!("/v1/contacts/ana/explain?segment={buyers}"))
        .await;
    assert_eq!(explained["member"], true, "{explained:#}");
    assert_eq!(
        explained["explanation"]["value"], 3,
        "three purchases counted: {explained:#}"
    );
    assert_eq!(server.changes(&buyers).await.len(), 1);
}

#[tokio::test]
async fn at_more_than_five_minutes_ahead_is_refused() {
    let server = Server::new();
    let (status, body) = server
        .send(
            "POST",
            "/v1/events",
            Some(json!({"contact_id": "ana", "type": "ping", "at": iso(now_ms() + 6 * 60_000)})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"]["field"], "at", "{body:#}");
    let (status, _) = server.send("GET", "/v1/contacts/ana", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused event changes nothing"
    );

    let (status, body) = server
        .send(
            "POST",
            "/v1/events",
            Some(json!({"events": [
                {"contact_id": "ana", "type": "ping"},
                {"contact_id": "ana", "type": "ping", "at": iso(now_ms() + 6 * 60_000)},
            ]})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"]["items"][0]["index"], 1, "{body:#}");
    assert_eq!(
        error["details"]["items"][0]["details"]["field"], "at",
        "{body:#}"
    );
    assert_eq!(error["details"]["items"].as_array().unwrap().len(), 1);
    let (status, _) = server.send("GET", "/v1/contacts/ana", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a batch is all or nothing");

    let answer = server
        .events(json!({"contact_id": "ana", "type": "ping", "at": iso(now_ms() + 4 * 60_000)}))
        .await;
    assert_eq!(answer["accepted"], 1);
}

#[tokio::test]
async fn bad_events_are_refused_with_the_item_and_the_field() {
    let server = Server::new();
    let cases = [
        (json!({"type": "ping"}), "contact_id"),
        (json!({"contact_id": "ana"}), "type"),
        (json!({"contact_id": "ana", "type": ""}), "type"),
        (json!({"contact_id": 7, "type": "ping"}), "contact_id"),
        (
            json!({"contact_id": "ana", "type": "ping", "at": "yesterday"}),
            "at",
        ),
        (
            json!({"contact_id": "ana", "type": "ping", "at": 1700000000}),
            "at",
        ),
        (
            json!({"contact_id": "ana", "type": "ping", "properties": [1]}),
            "properties",
        ),
        (
            json!({"contact_id": "ana", "type": "ping", "anonymous": "yes"}),
            "anonymous",
        ),
        (
            json!({"contact_id": "ana", "type": "ping", "colour": "red"}),
            "event",
        ),
        (json!({"id": "", "contact_id": "ana", "type": "ping"}), "id"),
        (json!(["not", "an", "event"]), "event"),
    ];
    for (event, field) in cases {
        let (status, body) = server.send("POST", "/v1/events", Some(event.clone())).await;
        let error = error_of(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(error["details"]["field"], field, "{event}: {body:#}");
    }
    let (status, body) = server
        .send(
            "POST",
            "/v1/events",
            Some(json!({"contact_id": "ana", "type": "ping", "at": "2026-13-01T00:00:00Z"})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        error["message"].as_str().unwrap().contains("RFC 3339"),
        "{body:#}"
    );

    // In a batch every failing item is reported by index; nothing is applied.
    let (status, body) = server
        .send(
            "POST",
            "/v1/events",
            Some(json!({"events": [
                {"contact_id": "ana", "type": "ping"},
                {"contact_id": "ana"},
                {"contact_id": "ana", "type": "ping"},
                {"contact_id": "ana", "type": "ping", "at": "soon"},
                {"contact_id": "ana", "type": "ping", "at": iso(now_ms() + 3_600_000)},
            ]})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let items = error["details"]["items"].as_array().unwrap();
    let indexes: Vec<u64> = items.iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [1, 3, 4], "{body:#}");
    assert_eq!(items[0]["details"]["field"], "type");
    assert_eq!(items[1]["details"]["field"], "at");
    let (status, _) = server.send("GET", "/v1/contacts/ana", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for body in [
        json!({"events": {"contact_id": "ana"}}),
        json!({"events": [], "extra": 1}),
    ] {
        let (status, answer) = server.send("POST", "/v1/events", Some(body)).await;
        error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let too_many: Vec<Json> = (0..10_001)
        .map(|_| json!({"contact_id": "a", "type": "x"}))
        .collect();
    let (status, body) = server
        .send("POST", "/v1/events", Some(json!({"events": too_many})))
        .await;
    error_of(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

#[tokio::test]
async fn an_event_for_an_unknown_contact_creates_it_and_sets_last_seen_at() {
    let server = Server::new();
    let earlier = now_ms() - 3_600_000;
    server
        .events(json!({"contact_id": "device-7", "type": "page_visit", "anonymous": true, "at": iso(earlier)}))
        .await;
    let contact = server.get("/v1/contacts/device-7").await;
    assert_eq!(contact["anonymous"], true, "{contact:#}");
    assert_eq!(ms_of(&contact["last_seen_at"]), earlier, "{contact:#}");

    server
        .events(json!({"contact_id": "ana", "type": "page_visit"}))
        .await;
    let contact = server.get("/v1/contacts/ana").await;
    assert_eq!(contact["anonymous"], false, "{contact:#}");
    assert!(
        (ms_of(&contact["last_seen_at"]) - now_ms()).abs() < 60_000,
        "an event without `at` happens now: {contact:#}"
    );

    // A late event does not move last_seen_at back.
    let later = now_ms() - 60_000;
    server
        .events(json!({"contact_id": "device-7", "type": "page_visit", "at": iso(later)}))
        .await;
    server
        .events(json!({"contact_id": "device-7", "type": "page_visit", "at": iso(earlier - 1000)}))
        .await;
    let contact = server.get("/v1/contacts/device-7").await;
    assert_eq!(ms_of(&contact["last_seen_at"]), later, "{contact:#}");

    let seen = server
        .segment("Seen lately", "last_seen_at in last 7 days")
        .await;
    assert_eq!(server.members(&seen, 10).await, ["device-7", "ana"]);
}

#[tokio::test]
async fn a_behavioural_segment_follows_events_with_cause_event() {
    let server = Server::new();
    let buyers = server
        .segment(
            "Repeat buyers",
            "performed purchase at least 2 times in last 30 days",
        )
        .await;
    let first = server
        .events(json!({"contact_id": "ana", "type": "purchase", "at": iso(now_ms() - 86_400_000)}))
        .await;
    assert_eq!(first["changes"], 0, "{first:#}");
    assert!(server.members(&buyers, 10).await.is_empty());
    // An event older than the window does not count.
    server
        .events(
            json!({"contact_id": "ana", "type": "purchase", "at": iso(now_ms() - 40 * 86_400_000)}),
        )
        .await;
    assert!(server.members(&buyers, 10).await.is_empty());
    let second = server
        .events(json!({"contact_id": "ana", "type": "purchase"}))
        .await;
    assert_eq!(second["changes"], 1, "{second:#}");
    assert_eq!(server.members(&buyers, 10).await, ["ana"]);
    let changes = server.changes(&buyers).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["change"], "entered");
    assert_eq!(changes[0]["cause"], "event");
    let contact = server.get("/v1/contacts/ana").await;
    assert_eq!(contact["segments"][0]["id"], buyers.as_str(), "{contact:#}");
}

/// The value of an unlabelled counter in Prometheus text.
fn counter(rendered: &str, name: &str) -> Option<u64> {
    rendered.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// The window of `performed ping in last 1 minute` counts an event while
/// `at + 1 min >= now`, so it closes at `at + 60 s + 1 ms`.
const MINUTE: i64 = 60_000;

/// `server` with the segment `performed ping in last 1 minute` and Ana in
/// it through a ping whose window closes `closes_in` ms from the server's
/// now. Returns the server, the segment's id and the instant the window
/// closes.
async fn ana_pinged(server: Server, closes_in: i64) -> (Server, String, i64) {
    let recent = server
        .segment("Pinged lately", "performed ping in last 1 minute")
        .await;
    let at = server.now_ms() - MINUTE + closes_in;
    server
        .events(json!({"contact_id": "ana", "type": "ping", "at": iso(at)}))
        .await;
    assert_eq!(server.members(&recent, 10).await, ["ana"]);
    (server, recent, at + MINUTE + 1)
}

// On the real clock, end to end: the timer task's sleep, the firing and
// its latency (docs/concepts.md "Exactness": visible within 1 s).
#[tokio::test]
async fn a_window_closes_on_time_with_cause_time() {
    // The process-wide recorder is shared with every other test's timers; a
    // recorder of this thread's own (a current-thread runtime runs the
    // server's timer task here too) counts this test's firings alone.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let counted = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (server, recent, closes) = ana_pinged(Server::new(), 3_000).await;
    let explained = server
        .get(&format!("/v1/contacts/ana/explain?segment={recent}"))
        .await;
    assert_eq!(explained["explanation"]["value"], 1, "{explained:#}");
    assert_eq!(
        ms_of(&explained["explanation"]["next_change"]),
        closes,
        "{explained:#}"
    );

    let (exit, seen_at) = wait_for_exit(&server, &recent, "ana", closes + 3_000)
        .await
        .expect("the contact never left the segment");
    assert_eq!(exit["cause"], "time", "{exit:#}");
    assert_eq!(ms_of(&exit["at"]), closes, "{exit:#}");
    assert!(
        seen_at <= closes + 1_000,
        "the exit was visible {} ms after the window closed",
        seen_at - closes
    );
    assert!(server.members(&recent, 10).await.is_empty());
    let explained = server
        .get(&format!("/v1/contacts/ana/explain?segment={recent}"))
        .await;
    assert_eq!(explained["explanation"]["next_change"], Json::Null);

    // The timer task counts a firing once its commit returns, a moment after
    // the change became visible: give it that moment.
    let mut counts = (None, None);
    for _ in 0..100 {
        let rendered = counted.render();
        counts = (
            counter(&rendered, "sift_timers_fired_total"),
            counter(&rendered, "sift_time_changes_total"),
        );
        if counts.0.is_some() && counts.1.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // One firing, at the window's close, which made Ana's one exit.
    assert_eq!(counts, (Some(1), Some(1)), "{}", counted.render());
}

#[tokio::test]
async fn a_window_closes_when_a_manual_clock_reaches_its_instant() {
    let (server, recent, closes) = ana_pinged(Server::on_manual_clock(|_| {}), 60_000).await;
    // A millisecond early: the timer task must not fire.
    server.manual_clock().set(closes - 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.members(&recent, 10).await, ["ana"]);

    server.manual_clock().set(closes);
    let (exit, _) = wait_for_exit(&server, &recent, "ana", now_ms() + 10_000)
        .await
        .expect("the timer task did not wake when the clock moved");
    assert_eq!(exit["cause"], "time", "{exit:#}");
    assert_eq!(ms_of(&exit["at"]), closes, "{exit:#}");
    let explained = server
        .get(&format!("/v1/contacts/ana/explain?segment={recent}"))
        .await;
    assert_eq!(explained["explanation"]["next_change"], Json::Null);
}

#[tokio::test]
async fn a_window_that_closes_while_the_server_is_down_exits_at_its_instant() {
    let (server, recent, closes) = ana_pinged(Server::on_manual_clock(|_| {}), 1_500).await;

    let down_for = (closes - server.now_ms() + 1_000).max(0) as u64;
    let server = server.restart_advanced(Duration::from_millis(down_for));
    assert!(server.now_ms() > closes);
    // Timers that fell due while the server was down fire before it serves.
    assert!(server.members(&recent, 10).await.is_empty());
    let changes = server.changes(&recent).await;
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert_eq!(changes[1]["change"], "exited");
    assert_eq!(changes[1]["cause"], "time");
    assert_eq!(
        ms_of(&changes[1]["at"]),
        closes,
        "recorded at the instant the window closed, not at the restart"
    );
}
