//! Facebook export jobs through the API: the token never in an answer nor
//! on disk, bad bodies refused with a clear message, workspace isolation,
//! jobs read back after a restart, and a sync following identify merges.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{ADMIN_KEY, send};
use crate::facebook::rows_by_extern_id;
use crate::facebook_fake::{
    FakeGraph, TOKEN, export_body, one_member_export, server, sha256, start_sync, wait_calls,
    wait_job,
};

#[tokio::test]
async fn facebook_token_never_appears_in_answers() {
    let (server, _fake, job) = one_member_export(Vec::new()).await;
    let id = job["id"].as_str().unwrap();
    let segment = job["segment_id"].as_str().unwrap();
    for path in [
        format!("/v1/exports/{id}"),
        format!("/v1/segments/{segment}/exports"),
        format!("/ui/segments/{segment}/facebook"),
    ] {
        let (_, answer) = server.send("GET", &path, None).await;
        assert!(
            !answer.to_string().contains("test-token"),
            "{path}: {answer}"
        );
    }
    assert!(!job.to_string().contains("test-token"));
    let list = server.get(&format!("/v1/segments/{segment}/exports")).await;
    assert_eq!(list["items"][0]["id"], id);
}

#[tokio::test]
async fn facebook_bad_bodies_are_refused() {
    let server = server();
    server
        .put_contact("ana", json!({"email": "ana@example.com"}))
        .await;
    let segment = server.segment("All", "email is set").await;
    let path = format!("/v1/segments/{segment}/exports/facebook");
    let cases = [
        (json!({"access_token": TOKEN}), "audience_id", "is required"),
        (
            json!({"audience_id": "123", "access_token": "EAAB\u{7}"}),
            "access_token",
            "not a valid token",
        ),
        (
            json!({"audience_id": "abc", "access_token": TOKEN}),
            "audience_id",
            "numeric id",
        ),
        (
            json!({"audience_id": "123", "access_token": TOKEN, "identifiers": ["EMAIL", "MAIL"]}),
            "identifiers",
            "\"MAIL\"",
        ),
        (
            json!({"audience_id": "123", "access_token": TOKEN, "identifiers": ["EXTERN_ID"]}),
            "identifiers",
            "besides EXTERN_ID",
        ),
        (
            json!({"audience_id": "123", "access_token": TOKEN, "sync": "yes"}),
            "sync",
            "true or false",
        ),
        (
            json!({"audience_id": "123", "access_token": TOKEN, "version": "21"}),
            "version",
            "v21.0",
        ),
        (
            json!({"audience_id": "123", "access_token": TOKEN, "graph_url": "ftp://x"}),
            "graph_url",
            "http",
        ),
        (
            json!({"audience_id": "123", "access_token": TOKEN, "audience": "1"}),
            "audience",
            "unknown key",
        ),
    ];
    for (body, field, words) in cases {
        let (status, answer) = server.send("POST", &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(
            answer["error"]["details"]["field"], field,
            "{body}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{body}: {message}");
        assert!(!message.contains(TOKEN), "{message}");
    }
    // Without a token the workspace's saved connection would give it; there
    // is none, and the answer says how to save one. Nothing starts.
    let (status, answer) = server
        .send("POST", &path, Some(json!({"audience_id": "123"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "facebook_not_connected");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("save an access token and ad account first"),
        "{answer}"
    );
    assert_eq!(
        server.get(&format!("/v1/segments/{segment}/exports")).await["items"],
        json!([])
    );
    let (_, answer) = server
        .send(
            "POST",
            &path,
            Some(json!({"audience_id": "1", "access_token": TOKEN, "identifiers": ["MAIL"]})),
        )
        .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("EMAIL, PHONE, FN, LN"),
        "{answer}"
    );
    let (status, _) = server
        .send(
            "POST",
            "/v1/segments/seg_nope/exports/facebook",
            Some(json!({"audience_id": "1", "access_token": TOKEN})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        server.send("GET", "/v1/exports/fbx_nope", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(
        server.get(&format!("/v1/segments/{segment}/exports")).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Another workspace sees none of this one's jobs.
    let fake = FakeGraph::start(Vec::new()).await;
    let job = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &path,
            Some(export_body(&fake, json!(["EMAIL"]), false)),
        )
        .await;
    let (_, other) = send(
        &server.app,
        "POST",
        "/v1/workspaces",
        Some(ADMIN_KEY),
        Some(json!({"name": "Other"})),
    )
    .await;
    let other_key = other["key"].as_str().unwrap();
    let (status, _) = send(
        &server.app,
        "GET",
        &format!("/v1/exports/{}", job["id"].as_str().unwrap()),
        Some(other_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A one-off export is read back after a restart as it ended; a sync
/// resumes (its token was stored sealed, never in plain text).
#[tokio::test]
async fn facebook_jobs_are_readable_after_a_restart_and_a_sync_resumes() {
    let (server, fake, done) = one_member_export(Vec::new()).await;
    let segment = done["segment_id"].as_str().unwrap().to_string();
    let sync = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/segments/{segment}/exports/facebook"),
            Some(export_body(&fake, json!(["EMAIL"]), true)),
        )
        .await;
    let sync_id = sync["id"].as_str().unwrap().to_string();
    wait_job(&server, &sync_id, |j| j["phase"] == "syncing").await;

    let server = server.restart();
    let again = server
        .get(&format!("/v1/exports/{}", done["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (again["state"].as_str(), again["sent"].as_u64()),
        (Some("done"), Some(1)),
        "{again:#}"
    );
    assert_eq!(again["batches"], done["batches"]);
    let resumed = wait_job(&server, &sync_id, |j| j["phase"] == "syncing").await;
    assert_eq!(
        (resumed["state"].as_str(), resumed["sent"].as_u64()),
        (Some("running"), Some(1)),
        "{resumed:#}"
    );
    assert_eq!(
        resumed["batches"].as_array().unwrap().len(),
        1,
        "{resumed:#}"
    );
    let list = server.get(&format!("/v1/segments/{segment}/exports")).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [sync_id.as_str(), done["id"].as_str().unwrap()]);
    assert!(!list.to_string().contains("test-token"));
    // Nothing is stored that holds the token.
    let db = std::fs::read(
        server
            .dir
            .path()
            .join(format!("{}.db", server.workspace_id)),
    )
    .unwrap_or_default();
    let wal = std::fs::read(
        server
            .dir
            .path()
            .join(format!("{}.db-wal", server.workspace_id)),
    )
    .unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(10).any(|w| w == b"test-token"),
            "the token is on disk"
        );
    }
}

/// Identify moves an anonymous member's place to the known contact: the
/// sync adds the known contact and removes the visitor's row only if the
/// visitor had been sent (it had an email of its own).
#[tokio::test]
async fn facebook_sync_follows_identify_merges() {
    let server = server();
    server
        .put_contact("kim", json!({"email": "kim@example.com"}))
        .await;
    server
        .put_contact("lee", json!({"email": "lee@example.com"}))
        .await;
    // anon_1 has no identifier (skipped); anon_2 left an email in a pop-up.
    server
        .events(json!({"events": [
            {"contact_id": "anon_1", "type": "product_view", "anonymous": true},
            {"contact_id": "anon_2", "type": "product_view", "anonymous": true},
        ]}))
        .await;
    server
        .put_contact("anon_2", json!({"email": "visitor@example.com"}))
        .await;
    let segment = server.segment("Viewers", "performed product_view").await;
    let fake = FakeGraph::start(Vec::new()).await;
    let (_, job) = start_sync(&server, &segment, &fake).await;
    assert_eq!(
        (job["sent"].as_u64(), job["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    let calls = wait_calls(&fake, 1).await;
    assert_eq!(
        rows_by_extern_id(&calls[0]).keys().collect::<Vec<_>>(),
        ["anon_2"]
    );

    // The visitor without an email becomes kim: kim enters and is added.
    let merged = server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/identify",
            Some(json!({"anonymous_id": "anon_1", "contact_id": "kim"})),
        )
        .await;
    assert_eq!(merged["merged"], true);
    let calls = wait_calls(&fake, 2).await;
    assert_eq!(calls[1].method, "POST");
    assert_eq!(
        rows_by_extern_id(&calls[1])["kim"][0],
        sha256("kim@example.com")
    );

    // The visitor with an email becomes lee: lee is added with lee's own
    // email (the known contact's values win), the visitor's row removed.
    server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/identify",
            Some(json!({"anonymous_id": "anon_2", "contact_id": "lee"})),
        )
        .await;
    let calls = wait_calls(&fake, 4).await;
    let mut tail: Vec<_> = calls[2..4]
        .iter()
        .map(|c| (c.method.clone(), rows_by_extern_id(c)))
        .collect();
    tail.sort_by(|a, b| b.0.cmp(&a.0));
    assert_eq!(tail[0].0, "POST");
    assert_eq!(tail[0].1["lee"][0], sha256("lee@example.com"));
    assert_eq!(tail[1].0, "DELETE");
    assert_eq!(tail[1].1["anon_2"][0], sha256("visitor@example.com"));
    assert_eq!(calls.len(), 4, "nothing else is sent");
}
