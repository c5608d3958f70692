//! Membership changes (docs/concepts.md "Membership change", §3 "Read-your-writes"):
//! the per-segment log with `after=`, gapless seqs, every cause, and the live
//! server-sent-event stream with resumption by `after=` and `Last-Event-ID`.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{Value as Json, json};
use tower::ServiceExt;

use crate::common::{Server, error_of, redact, request, send};

/// An open `/v1/changes/stream`, read an event at a time.
pub(crate) struct Stream {
    body: Body,
    buffer: String,
}

impl Stream {
    pub(crate) async fn open(
        server: &Server,
        key: &str,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Stream {
        let mut request = request(
            "GET",
            &format!("/v1/changes/stream{query}"),
            Some(key),
            Vec::new(),
        );
        if let Some(id) = last_event_id {
            request
                .headers_mut()
                .insert("last-event-id", id.parse().unwrap());
        }
        let response = server.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Stream {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next change event, or None when none comes within `wait`.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Option<Json> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(change) = parse_event(&block) {
                    return Some(change);
                }
                continue;
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()?;
            let frame = frame.expect("the stream ended").unwrap();
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    async fn next(&mut self) -> Json {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("no change event within 5 s")
    }

    pub(crate) async fn take(&mut self, n: usize) -> Vec<Json> {
        let mut events = Vec::new();
        for _ in 0..n {
            events.push(self.next().await);
        }
        events
    }
}

/// Parses one SSE block; None for a keep-alive comment. Checks that the
/// event is named `change` and that its id is its seq.
fn parse_event(block: &str) -> Option<Json> {
    let (mut event, mut id, mut data) = (None, None, None);
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            data = Some(v.trim().to_string());
        }
    }
    let data = data?;
    assert_eq!(event.as_deref(), Some("change"), "{block}");
    let change: Json = serde_json::from_str(&data).unwrap();
    assert_eq!(id, Some(change["seq"].to_string()), "{block}");
    Some(change)
}

fn summary(change: &Json) -> (String, String, String) {
    (
        change["contact_id"].as_str().unwrap().to_string(),
        change["change"].as_str().unwrap().to_string(),
        change["cause"].as_str().unwrap().to_string(),
    )
}

fn seqs(changes: &[Json]) -> Vec<u64> {
    changes.iter().map(|c| c["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_change_has_the_shape_of_the_spec() {
    let server = Server::new();
    let spain = server.segment("Spain", "country = \"ES\"").await;
    server.put_contact("ana", json!({"country": "ES"})).await;
    let log = server.get(&format!("/v1/segments/{spain}/changes")).await;
    let seq = log["items"][0]["seq"].clone();
    assert!(seq.is_u64(), "{log:#}");
    assert_eq!(
        redact(&log, &[(&spain, "[spain]")]),
        json!({"items": [{"seq": seq, "segment_id": "[spain]", "contact_id": "ana", "change": "entered", "at": "[datetime]", "cause": "contact_update"}], "next_cursor": null})
    );
}

#[tokio::test]
async fn seqs_are_gapless_across_segments_and_every_cause_is_recorded() {
    let server = Server::new();
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let picks = server.static_segment("Picks").await;
    let both = server
        .segment(
            "Picked in Spain",
            "in segment \"Picks\" and in segment \"Spain\"",
        )
        .await;
    server.put_contact("ana", json!({"country": "ES"})).await; // Spain: entered, contact_update
    server.put_contact("bea", json!({"country": "FR"})).await;
    let members = format!("/v1/segments/{picks}/contacts");
    server
        .expect(
            StatusCode::OK,
            "POST",
            &members,
            Some(json!({"contact_ids": ["ana", "bea"]})),
        )
        .await; // Picks: 2 × static_add; Picked in Spain: ana entered, segment_ref
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &format!("/v1/segments/{spain}"),
            Some(json!({"condition": "country in [\"ES\", \"FR\"]"})),
        )
        .await; // Spain: bea entered, segment_edit; Picked in Spain: bea entered, segment_ref
    server
        .expect(
            StatusCode::OK,
            "DELETE",
            &members,
            Some(json!({"contact_ids": ["bea"]})),
        )
        .await; // Picks: bea exited, static_remove; Picked in Spain: bea exited, segment_ref
    server
        .expect(StatusCode::OK, "DELETE", "/v1/contacts/ana", None)
        .await; // 3 × contact_delete

    let spain_log = server.changes(&spain).await;
    let picks_log = server.changes(&picks).await;
    let both_log = server.changes(&both).await;
    let tuple = |id: &str, change: &str, cause: &str| {
        (id.to_string(), change.to_string(), cause.to_string())
    };
    assert_eq!(
        spain_log.iter().map(summary).collect::<Vec<_>>(),
        [
            tuple("ana", "entered", "contact_update"),
            tuple("bea", "entered", "segment_edit"),
            tuple("ana", "exited", "contact_delete")
        ]
    );
    let picks_summary: Vec<_> = picks_log.iter().map(summary).collect();
    assert_eq!(picks_summary.len(), 4);
    assert!(picks_summary[..2].contains(&tuple("ana", "entered", "static_add")));
    assert!(picks_summary[..2].contains(&tuple("bea", "entered", "static_add")));
    assert_eq!(
        picks_summary[2..],
        [
            tuple("bea", "exited", "static_remove"),
            tuple("ana", "exited", "contact_delete")
        ]
    );
    assert_eq!(
        both_log.iter().map(summary).collect::<Vec<_>>(),
        [
            tuple("ana", "entered", "segment_ref"),
            tuple("bea", "entered", "segment_ref"),
            tuple("bea", "exited", "segment_ref"),
            tuple("ana", "exited", "contact_delete"),
        ]
    );
    for (log, id) in [
        (&spain_log, &spain),
        (&picks_log, &picks),
        (&both_log, &both),
    ] {
        let s = seqs(log);
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
        assert!(log.iter().all(|c| c["segment_id"] == **id));
    }
    let all: BTreeSet<u64> = [&spain_log, &picks_log, &both_log]
        .iter()
        .flat_map(|l| seqs(l))
        .collect();
    assert_eq!(all.len(), 11, "no seq is used twice");
    let first = *all.first().unwrap();
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        (first..first + 11).collect::<Vec<_>>(),
        "seqs have no gaps"
    );
}

#[tokio::test]
async fn after_and_limit_page_through_a_segments_changes() {
    let server = Server::new();
    server.put_contact("c", json!({"temperature": 0})).await;
    let hot = server.segment("Hot", "temperature >= 30").await;
    for i in 0..10 {
        server
            .put_contact(
                "c",
                json!({"temperature": if i % 2 == 0 { 35 } else { 10 }}),
            )
            .await;
    }
    let all = server.changes(&hot).await;
    assert_eq!(all.len(), 10);
    let changes: Vec<String> = all
        .iter()
        .map(|c| c["change"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(changes, ["entered", "exited"].repeat(5));

    let mut walked = Vec::new();
    let mut path = format!("/v1/segments/{hot}/changes?limit=3");
    loop {
        let page = server.get(&path).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        walked.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("/v1/segments/{hot}/changes?limit=3&after={next}"),
            None => break,
        }
    }
    assert_eq!(walked, all);

    let fourth = all[3]["seq"].as_u64().unwrap();
    let after = server
        .get(&format!("/v1/segments/{hot}/changes?after={fourth}"))
        .await;
    assert_eq!(after["items"].as_array().unwrap(), &all[4..]);
    let last = all[9]["seq"].as_u64().unwrap();
    let after = server
        .get(&format!("/v1/segments/{hot}/changes?after={last}"))
        .await;
    assert_eq!(after, json!({"items": [], "next_cursor": null}));

    for query in ["limit=0", "limit=1001", "after=-1", "after=x"] {
        let (status, body) = server
            .send("GET", &format!("/v1/segments/{hot}/changes?{query}"), None)
            .await;
        error_of(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    }
    let (status, body) = server
        .send("GET", "/v1/segments/seg_nope/changes", None)
        .await;
    error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
}

/// docs/concepts.md "Guarantees": once a write answers 2xx, the memberships it causes are visible
/// and recorded.
#[tokio::test]
async fn every_acknowledged_write_is_already_visible_and_recorded() {
    let server = Server::new();
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/lead_points",
            Some(json!({"type": "number"})),
        )
        .await;
    let vip = server.segment("VIP", "lead_points >= 100").await;
    let vip_es = server
        .segment("Spanish VIP", "in segment \"VIP\" and country = \"ES\"")
        .await;
    let mut expected_size = 0u64;
    let mut members = BTreeSet::new();
    for i in 0..30u64 {
        let id = format!("c{}", i % 7);
        let points = (i * 37) % 200;
        let was_member = members.contains(&id);
        if points >= 100 {
            members.insert(id.clone());
        } else {
            members.remove(&id);
        }
        let contact = server
            .put_contact(&id, json!({"lead_points": points, "country": "ES"}))
            .await;
        let member = points >= 100;
        let in_answer: Vec<&Json> = contact["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["id"])
            .collect();
        assert_eq!(in_answer.contains(&&json!(vip)), member, "{contact:#}");
        assert_eq!(in_answer.contains(&&json!(vip_es)), member, "{contact:#}");
        match (was_member, member) {
            (false, true) => expected_size += 1,
            (true, false) => expected_size -= 1,
            _ => {}
        }
        for segment in [&vip, &vip_es] {
            assert_eq!(
                server.get(&format!("/v1/segments/{segment}")).await["size"],
                expected_size
            );
            if was_member != member {
                let last = server.changes(segment).await.pop().unwrap();
                assert_eq!(last["contact_id"], id);
                assert_eq!(last["change"], if member { "entered" } else { "exited" });
            }
        }
    }
}

#[tokio::test]
async fn the_stream_sends_past_changes_then_live_ones() {
    let server = Server::new();
    let spain = server.segment("Spain", "country = \"ES\"").await;
    server.put_contact("ana", json!({"country": "ES"})).await;
    server.put_contact("bea", json!({"country": "ES"})).await;
    let mut stream = Stream::open(&server, &server.key, "", None).await;
    let past = stream.take(2).await;
    assert_eq!(
        past.iter()
            .map(|c| c["contact_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["ana", "bea"]
    );
    assert_eq!(
        past[0],
        server.changes(&spain).await[0],
        "the stream sends the log's changes"
    );
    assert!(
        stream
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );

    server.put_contact("ana", json!({"country": "PT"})).await;
    let live = stream.next().await;
    assert_eq!(
        summary(&live),
        ("ana".into(), "exited".into(), "contact_update".into())
    );
    assert_eq!(
        live["seq"].as_u64(),
        Some(past[1]["seq"].as_u64().unwrap() + 1)
    );

    // A batch's changes all arrive, in order.
    let body = json!({"contacts": (0..20).map(|i| json!({"id": format!("b{i}"), "properties": {"country": "ES"}})).collect::<Vec<_>>()});
    server
        .expect(StatusCode::OK, "POST", "/v1/contacts:batch", Some(body))
        .await;
    let batch = stream.take(20).await;
    let s = seqs(&batch);
    assert_eq!(s, (s[0]..s[0] + 20).collect::<Vec<_>>());
    assert_eq!(s[0], live["seq"].as_u64().unwrap() + 1);
}

#[tokio::test]
async fn the_stream_resumes_after_a_seq_or_the_last_event_id() {
    let server = Server::new();
    server.segment("Spain", "country = \"ES\"").await;
    for id in ["a", "b", "c", "d", "e"] {
        server.put_contact(id, json!({"country": "ES"})).await;
    }
    let all = Stream::open(&server, &server.key, "", None)
        .await
        .take(5)
        .await;
    let second = all[1]["seq"].as_u64().unwrap();

    let resumed = Stream::open(&server, &server.key, &format!("?after={second}"), None)
        .await
        .take(3)
        .await;
    assert_eq!(resumed, all[2..]);

    let mut by_header = Stream::open(&server, &server.key, "", Some(&second.to_string())).await;
    assert_eq!(by_header.take(3).await, all[2..]);

    // After the last one: nothing until a new change.
    let last = all[4]["seq"].as_u64().unwrap();
    let mut caught_up = Stream::open(&server, &server.key, &format!("?after={last}"), None).await;
    assert!(
        caught_up
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );
    server.put_contact("f", json!({"country": "ES"})).await;
    let next = caught_up.next().await;
    assert_eq!(next["contact_id"], "f");
    assert_eq!(next["seq"].as_u64(), Some(last + 1));
    let next_by_header = by_header.next().await;
    assert_eq!(next_by_header, next);
}

#[tokio::test]
async fn the_stream_carries_only_the_keys_workspace() {
    let server = Server::new();
    let (_, other) = server.state.create_workspace("Other").unwrap();
    for key in [&server.key, &other] {
        let (status, _) = send(
            &server.app,
            "POST",
            "/v1/segments",
            Some(key),
            Some(json!({"name": "All", "condition": ""})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut stream = Stream::open(&server, &server.key, "", None).await;
    for i in 0..3 {
        let (status, _) = send(
            &server.app,
            "PUT",
            &format!("/v1/contacts/theirs{i}"),
            Some(&other),
            Some(json!({"properties": {}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    server.put_contact("mine", json!({})).await;
    assert_eq!(stream.next().await["contact_id"], "mine");
    assert!(
        stream
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

/// A deleted contact's changes keep naming it after a restart, also when
/// contacts created after it are still alive and when its id was reused.
#[tokio::test]
async fn the_log_still_names_deleted_contacts_after_a_restart() {
    let server = Server::new();
    let all = server.segment("Everyone", "").await;
    for id in ["a", "b", "c", "d"] {
        server.put_contact(id, json!({})).await;
    }
    for id in ["a", "b"] {
        server
            .expect(
                StatusCode::OK,
                "DELETE",
                &format!("/v1/contacts/{id}"),
                None,
            )
            .await;
    }
    server.put_contact("a", json!({})).await;
    let before = server.changes(&all).await;
    let named: Vec<_> = before.iter().map(summary).collect();
    assert_eq!(
        named.iter().filter(|(id, _, _)| id == "a").count(),
        3,
        "{named:?}"
    );

    let server = server.restart();
    assert_eq!(server.changes(&all).await, before);
    assert_eq!(server.members(&all, 10).await, ["c", "d", "a"]);
    // New contacts get new numbers: the log keeps naming the old ones.
    server.put_contact("e", json!({})).await;
    let after = server.changes(&all).await;
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after.last().unwrap()["contact_id"], "e");
}

/// docs/api.md "Change stream client examples": a client that saw seq N
/// reconnects after a restart with `Last-Event-ID: N` and gets what followed,
/// without gaps or repeats; the header wins over `after`.
#[tokio::test]
async fn the_stream_resumes_with_last_event_id_after_a_restart() {
    let mut server = Server::new();
    server.segment("Spain", "country = \"ES\"").await;
    for id in ["a", "b", "c"] {
        server.put_contact(id, json!({"country": "ES"})).await;
    }
    let seen = Stream::open(&server, &server.key, "", None)
        .await
        .take(3)
        .await;
    let last = seen[2]["seq"].as_u64().unwrap();
    server = server.restart();
    for id in ["d", "e"] {
        server.put_contact(id, json!({"country": "ES"})).await;
    }
    let key = server.key.clone();
    let resumed = Stream::open(&server, &key, "", Some(&last.to_string()))
        .await
        .take(2)
        .await;
    assert_eq!(seqs(&resumed), [last + 1, last + 2]);
    assert_eq!(resumed[0]["contact_id"], "d");
    assert_eq!(resumed[1]["contact_id"], "e");
    let mut both = Stream::open(&server, &key, "?after=0", Some(&last.to_string())).await;
    assert_eq!(both.next().await, resumed[0]);
}

/// Seqs are stored as i64 and the document gives `after` as an int64 (found
/// by schemathesis in scripts/api-test.sh): a larger one is refused. The
/// largest u64 overflowed `after + 1` in the stream, a panic in debug builds
/// (an empty reply), a wrap to "from the beginning" in release ones.
#[tokio::test]
async fn an_after_past_the_largest_seq_is_refused_and_never_overflows() {
    let server = Server::new();
    server.put_contact("c1", json!({"newsletter": true})).await;
    let segment = server.segment("Subscribers", "newsletter = true").await;
    for after in ["9223372036854775808", "18446744073709551615"] {
        for path in [
            format!("/v1/segments/{segment}/changes?after={after}"),
            format!("/v1/changes/stream?after={after}"),
        ] {
            let (status, answer) = server.send("GET", &path, None).await;
            error_of(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
        }
        let mut stream = request("GET", "/v1/changes/stream", Some(&server.key), Vec::new());
        stream
            .headers_mut()
            .insert("last-event-id", after.parse().unwrap());
        let response = server.app.clone().oneshot(stream).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "Last-Event-ID {after}"
        );
    }
    // The largest seq there can be: nothing comes after it.
    let mut stream = Stream::open(&server, &server.key, "?after=9223372036854775807", None).await;
    assert_eq!(stream.next_within(Duration::from_millis(300)).await, None);
}
