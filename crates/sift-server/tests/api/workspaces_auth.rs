//! Workspaces and keys (admin key), authentication (401/403) and isolation
//! between workspaces (docs/concepts.md "Guarantees" "Isolation", §4 "Auth").

use axum::http::StatusCode;
use serde_json::json;
use sift_server::{AppState, Config};

use crate::common::{ADMIN_KEY, Server, error_of, ids, redact, send};

#[tokio::test]
async fn admin_key_creates_a_workspace_whose_key_works() {
    let server = Server::new();
    let (status, body) = send(
        &server.app,
        "POST",
        "/v1/workspaces",
        Some(ADMIN_KEY),
        Some(json!({"name": "Globex"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body:#}");
    let id = body["id"].as_str().unwrap().to_string();
    let key = body["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk_"), "{key}");
    assert_eq!(
        redact(&body, &[(&id, "[ws]"), (&key, "[key]")]),
        json!({"id": "[ws]", "name": "Globex", "key": "[key]"})
    );

    let (status, segments) = send(&server.app, "GET", "/v1/segments", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(segments, json!({"items": [], "next_cursor": null}));

    let (status, list) = send(&server.app, "GET", "/v1/workspaces", Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut names: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["Acme", "Globex"]);
}

#[tokio::test]
async fn creating_a_workspace_validates_its_name() {
    let server = Server::new();
    for body in [
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(201)}),
    ] {
        let (status, answer) = send(
            &server.app,
            "POST",
            "/v1/workspaces",
            Some(ADMIN_KEY),
            Some(body),
        )
        .await;
        error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, answer) = send(
        &server.app,
        "POST",
        "/v1/workspaces",
        Some(ADMIN_KEY),
        Some(json!({})),
    )
    .await;
    error_of(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn missing_malformed_or_unknown_keys_are_401() {
    let server = Server::new();
    let (status, body) = send(&server.app, "GET", "/v1/contacts", None, None).await;
    let error = error_of(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(error["message"].as_str().unwrap().contains("Authorization"));

    let (status, body) = send(
        &server.app,
        "GET",
        "/v1/contacts",
        Some("sk_00000000000000000000000000000000"),
        None,
    )
    .await;
    error_of(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // A key sent without the Bearer scheme.
    let request = axum::http::Request::get("/v1/contacts")
        .header("authorization", server.key.clone())
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(server.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    for (method, path) in [("POST", "/v1/workspaces"), ("GET", "/v1/workspaces")] {
        let (status, body) =
            send(&server.app, method, path, None, Some(json!({"name": "X"}))).await;
        error_of(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        let (status, body) = send(
            &server.app,
            method,
            path,
            Some("nope"),
            Some(json!({"name": "X"})),
        )
        .await;
        error_of(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn admin_key_on_workspace_data_and_workspace_key_on_admin_routes_are_403() {
    let server = Server::new();
    for (method, path) in [
        ("GET", "/v1/contacts"),
        ("GET", "/v1/segments"),
        ("GET", "/v1/fields"),
        ("PUT", "/v1/contacts/c1"),
        ("GET", "/v1/changes/stream"),
    ] {
        let (status, body) = send(
            &server.app,
            method,
            path,
            Some(ADMIN_KEY),
            Some(json!({"properties": {}})),
        )
        .await;
        error_of(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    let ws = server.workspace_id.clone();
    for (method, path) in [
        ("POST", "/v1/workspaces".to_string()),
        ("GET", "/v1/workspaces".to_string()),
        ("POST", format!("/v1/workspaces/{ws}/keys")),
        ("GET", format!("/v1/workspaces/{ws}/keys")),
        (
            "DELETE",
            format!("/v1/workspaces/{ws}/keys/{}", &server.key[..11]),
        ),
    ] {
        let (status, body) = send(
            &server.app,
            method,
            &path,
            Some(&server.key),
            Some(json!({"name": "X"})),
        )
        .await;
        error_of(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    // The workspace key still works: the refused revoke did nothing.
    server.get("/v1/contacts").await;
}

#[tokio::test]
async fn without_an_admin_key_no_one_manages_workspaces() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(Config::new(dir.path(), None)).unwrap();
    let app = sift_server::app(state);
    for key in [None, Some(""), Some("anything")] {
        let (status, body) = send(
            &app,
            "POST",
            "/v1/workspaces",
            key,
            Some(json!({"name": "X"})),
        )
        .await;
        error_of(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn keys_are_added_listed_and_revoked() {
    let server = Server::new();
    let ws = server.workspace_id.clone();
    let (status, added) = send(
        &server.app,
        "POST",
        &format!("/v1/workspaces/{ws}/keys"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added:#}");
    let second = added["key"].as_str().unwrap().to_string();
    let second_id = added["id"].as_str().unwrap().to_string();
    assert!(second.starts_with(&second_id), "{added:#}");
    assert_ne!(second, server.key);

    let (status, _) = send(
        &server.app,
        "PUT",
        "/v1/contacts/from-second",
        Some(&second),
        Some(json!({"properties": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.get("/v1/contacts/from-second").await;

    let (status, keys) = send(
        &server.app,
        "GET",
        &format!("/v1/workspaces/{ws}/keys"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let listed = ids(&keys);
    assert_eq!(listed.len(), 2, "{keys:#}");
    assert!(listed.contains(&second_id));
    assert!(
        !keys.to_string().contains(&second),
        "the key itself is never listed"
    );

    // Revoke by id.
    let (status, _) = send(
        &server.app,
        "DELETE",
        &format!("/v1/workspaces/{ws}/keys/{second_id}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(&server.app, "GET", "/v1/contacts", Some(&second), None).await;
    error_of(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = send(
        &server.app,
        "DELETE",
        &format!("/v1/workspaces/{ws}/keys/{second_id}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    error_of(status, &body, StatusCode::NOT_FOUND, "not_found");

    // The first key is untouched; revoke it whole.
    server.get("/v1/contacts").await;
    let (status, _) = send(
        &server.app,
        "DELETE",
        &format!("/v1/workspaces/{ws}/keys/{}", server.key),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.send("GET", "/v1/contacts", None).await;
    error_of(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn keys_of_an_unknown_workspace_are_404() {
    let server = Server::new();
    for (method, path) in [
        ("POST", "/v1/workspaces/ws_nope/keys"),
        ("GET", "/v1/workspaces/ws_nope/keys"),
        ("DELETE", "/v1/workspaces/ws_nope/keys/sk_12345678"),
    ] {
        let (status, body) = send(&server.app, method, path, Some(ADMIN_KEY), None).await;
        error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    // A key of another workspace cannot be revoked through this one.
    let (_, other) = server.state.create_workspace("Other").unwrap();
    let path = format!(
        "/v1/workspaces/{}/keys/{}",
        server.workspace_id,
        &other[..11]
    );
    let (status, body) = send(&server.app, "DELETE", &path, Some(ADMIN_KEY), None).await;
    error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = send(&server.app, "GET", "/v1/contacts", Some(&other), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn revoked_keys_and_workspaces_survive_a_restart() {
    let server = Server::new();
    let ws = server.workspace_id.clone();
    let (_, added) = send(
        &server.app,
        "POST",
        &format!("/v1/workspaces/{ws}/keys"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    let second = added["key"].as_str().unwrap().to_string();
    let (status, _) = send(
        &server.app,
        "DELETE",
        &format!("/v1/workspaces/{ws}/keys/{second}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.put_contact("kept", json!({"country": "ES"})).await;
    let server = server.restart();
    let contact = server.get("/v1/contacts/kept").await;
    assert_eq!(contact["properties"], json!({"country": "ES"}));
    let (status, body) = send(&server.app, "GET", "/v1/contacts", Some(&second), None).await;
    error_of(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, list) = send(&server.app, "GET", "/v1/workspaces", Some(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["id"], json!(ws));
}

/// Workspace A's key against B's contacts and segments: always 404, never
/// B's data, and B is unchanged afterwards.
#[tokio::test]
async fn a_key_of_one_workspace_cannot_touch_another() {
    let server = Server::new();
    let a = server.key.clone();
    let (_, b) = server.state.create_workspace("Beta").unwrap();
    let app = &server.app;

    let (status, _) = send(
        app,
        "PUT",
        "/v1/contacts/secret",
        Some(&b),
        Some(json!({"properties": {"email": "ceo@beta.example", "country": "ES"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, seg) = send(
        app,
        "POST",
        "/v1/segments",
        Some(&b),
        Some(json!({"name": "Beta Spain", "kind": "dynamic", "condition": "country = \"ES\""})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let seg_b = seg["id"].as_str().unwrap().to_string();
    let (status, stat) = send(
        app,
        "POST",
        "/v1/segments",
        Some(&b),
        Some(json!({"name": "Beta picks", "kind": "static"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let static_b = stat["id"].as_str().unwrap().to_string();
    server.put_contact("mine", json!({"country": "ES"})).await;
    let (status, _) = send(
        app,
        "PUT",
        "/v1/fields/beta_secret",
        Some(&b),
        Some(json!({"type": "string"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let not_found = [
        ("GET", "/v1/contacts/secret".to_string(), None),
        ("DELETE", "/v1/contacts/secret".to_string(), None),
        (
            "GET",
            format!("/v1/contacts/secret/explain?segment={seg_b}"),
            None,
        ),
        (
            "GET",
            format!("/v1/contacts/mine/explain?segment={seg_b}"),
            None,
        ),
        ("GET", format!("/v1/segments/{seg_b}"), None),
        (
            "PATCH",
            format!("/v1/segments/{seg_b}"),
            Some(json!({"name": "Hijacked"})),
        ),
        ("DELETE", format!("/v1/segments/{seg_b}"), None),
        ("GET", format!("/v1/segments/{seg_b}/contacts"), None),
        ("GET", format!("/v1/segments/{seg_b}/changes"), None),
        ("GET", format!("/v1/segments/{seg_b}/usages"), None),
        ("GET", format!("/v1/contacts?segment={seg_b}"), None),
        (
            "POST",
            format!("/v1/segments/{static_b}/contacts"),
            Some(json!({"contact_ids": ["mine"]})),
        ),
        (
            "DELETE",
            format!("/v1/segments/{static_b}/contacts"),
            Some(json!({"contact_ids": ["secret"]})),
        ),
        (
            "POST",
            "/v1/segments:preview".to_string(),
            Some(json!({"condition": "country = \"ES\"", "segment_id": seg_b})),
        ),
    ];
    for (method, path, body) in not_found {
        let (status, answer) = send(app, method, &path, Some(&a), body).await;
        error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
        let text = answer.to_string();
        assert!(
            !text.contains("ceo@beta.example") && !text.contains("Beta Spain"),
            "{method} {path} leaked {text}"
        );
    }

    // A's lists and searches see only A.
    let list = server.get("/v1/contacts?q=secret").await;
    assert_eq!(list["items"], json!([]));
    let list = server.get("/v1/contacts").await;
    assert_eq!(ids(&list), ["mine"]);
    let list = server.get("/v1/segments").await;
    assert_eq!(list["items"], json!([]));
    let fields = server.get("/v1/fields").await;
    assert!(!fields.to_string().contains("beta_secret"), "{fields}");

    // A's segment cannot refer to B's, by name or by id.
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments",
            Some(json!({"name": "x", "condition": "in segment \"Beta Spain\""})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments",
            Some(json!({"name": "x", "condition_tree": {"in_segment": seg_b}})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );

    // Writing the same contact id in A creates A's own contact.
    let mine = server.put_contact("secret", json!({"country": "FR"})).await;
    assert_eq!(mine["properties"], json!({"country": "FR"}));

    // B is unchanged.
    let (_, contact) = send(app, "GET", "/v1/contacts/secret", Some(&b), None).await;
    assert_eq!(
        contact["properties"],
        json!({"email": "ceo@beta.example", "country": "ES"})
    );
    assert_eq!(
        contact["segments"],
        json!([{"id": seg_b, "name": "Beta Spain"}])
    );
    let (_, segment) = send(app, "GET", &format!("/v1/segments/{seg_b}"), Some(&b), None).await;
    assert_eq!(segment["name"], "Beta Spain");
    assert_eq!(segment["size"], 1);
    let (_, picks) = send(
        app,
        "GET",
        &format!("/v1/segments/{static_b}"),
        Some(&b),
        None,
    )
    .await;
    assert_eq!(picks["size"], 0);
}
