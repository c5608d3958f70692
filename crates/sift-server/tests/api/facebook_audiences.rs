//! The workspace's Facebook connection (the token entered once, stored
//! sealed, never answered back), the ad account's audiences listed a page at
//! a time and created, and a failed export retried: all against the fake
//! Graph API, whose state (its audiences, the requests it got) is the
//! expected value.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::Server;
use crate::facebook_fake::{ACCOUNT, FakeGraph, TOKEN, finished, server, some_audiences, wait_job};

fn connection_body(fake: &FakeGraph, token: &str, account: &str) -> Json {
    json!({"access_token": token, "ad_account_id": account, "graph_url": fake.url, "version": "v21.0"})
}

async fn connect(server: &Server, fake: &FakeGraph) -> Json {
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/facebook/connection",
            Some(connection_body(fake, TOKEN, &format!("act_{ACCOUNT}"))),
        )
        .await
}

fn error_of(answer: &Json) -> (&str, &str) {
    (
        answer["error"]["code"].as_str().unwrap_or_default(),
        answer["error"]["message"].as_str().unwrap_or_default(),
    )
}

/// Every file of the data directory, read as bytes: the token must be in none.
fn data_files_hold(server: &Server, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![server.dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test]
async fn the_token_is_saved_once_checked_sealed_and_reused_by_exports() {
    let server = server();
    let fake = FakeGraph::start(Vec::new()).await;
    let empty = server.get("/v1/facebook/connection").await;
    assert_eq!(
        empty,
        json!({"connected": false, "ad_account_id": null, "token_hint": null,
               "graph_url": server.state.config.facebook.graph_url, "version": server.state.config.facebook.version,
               "updated_at": null})
    );

    // Refusals save nothing: a bad body, a token Facebook refuses, an
    // account it does not know.
    let (status, answer) = server
        .send(
            "PUT",
            "/v1/facebook/connection",
            Some(connection_body(&fake, TOKEN, "act_12x")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"]["field"], "ad_account_id");
    let (status, answer) = server
        .send(
            "PUT",
            "/v1/facebook/connection",
            Some(connection_body(&fake, "EAAB-a-revoked-token", ACCOUNT)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (code, message) = error_of(&answer);
    assert_eq!(code, "facebook_refused");
    assert!(
        message
            .starts_with("Facebook refused the access token (code 190: Invalid OAuth access token")
            && message.ends_with(&format!(
                "save a token with ads_management permission for ad account {ACCOUNT}"
            )),
        "{message}"
    );
    assert!(!message.contains("EAAB-a-revoked-token"), "{message}");
    let (status, answer) = server
        .send(
            "PUT",
            "/v1/facebook/connection",
            Some(connection_body(&fake, TOKEN, "act_42")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(error_of(&answer).1.contains("Object with ID"), "{answer}");
    assert_eq!(server.get("/v1/facebook/connection").await, empty);

    let saved = connect(&server, &fake).await;
    assert_eq!(saved["connected"], true);
    assert_eq!(saved["ad_account_id"], ACCOUNT, "stored without act_");
    assert_eq!(saved["token_hint"], &TOKEN[TOKEN.len() - 4..]);
    assert_eq!(saved["graph_url"], fake.url.as_str());
    assert!(!saved.to_string().contains(TOKEN));
    assert_eq!(server.get("/v1/facebook/connection").await, saved);
    // The check before saving: one audience asked for, the token in the
    // header, never in the URL.
    let check = fake.calls().last().cloned().unwrap();
    assert_eq!(check.method, "GET");
    assert_eq!(check.path, format!("/v21.0/act_{ACCOUNT}/customaudiences"));
    assert!(
        check.query.as_deref().unwrap().contains("limit=1"),
        "{check:?}"
    );
    assert!(!check.query.unwrap().contains(TOKEN));
    assert_eq!(check.authorization.unwrap(), format!("Bearer {TOKEN}"));
    server.state.close();
    assert_eq!(
        data_files_hold(&server, TOKEN),
        Vec::<String>::new(),
        "the token is sealed at rest"
    );
    let server = server.restart();
    assert_eq!(server.get("/v1/facebook/connection").await, saved);

    // An export without a token uses the saved one, and its Graph URL.
    server
        .put_contact("ana", json!({"email": "ana@example.com"}))
        .await;
    let segment = server.segment("All", "email is set").await;
    let job = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/segments/{segment}/exports/facebook"),
            Some(json!({"audience_id": "23850000000000001", "identifiers": ["EMAIL"]})),
        )
        .await;
    assert_eq!(job["graph_url"], fake.url.as_str());
    let job = wait_job(&server, job["id"].as_str().unwrap(), finished).await;
    assert_eq!(
        (job["state"].as_str(), job["sent"].as_u64()),
        (Some("done"), Some(1)),
        "{job:#}"
    );
    let users = fake.calls().last().cloned().unwrap();
    assert_eq!(users.path, "/v21.0/23850000000000001/users");
    assert_eq!(users.body["access_token"], TOKEN);

    // Removed: nothing is saved any more, and what needs it says so.
    let removed = server
        .expect(StatusCode::OK, "DELETE", "/v1/facebook/connection", None)
        .await;
    assert_eq!(removed["connected"], false);
    for (method, path, body) in [
        ("GET", "/v1/facebook/audiences".to_string(), None),
        (
            "POST",
            "/v1/facebook/audiences".to_string(),
            Some(json!({"name": "x"})),
        ),
        (
            "POST",
            format!("/v1/segments/{segment}/exports/facebook"),
            Some(json!({"audience_id": "1"})),
        ),
    ] {
        let (status, answer) = server.send(method, &path, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{method} {path}: {answer}");
        assert_eq!(error_of(&answer).0, "facebook_not_connected");
    }
}

#[tokio::test]
async fn audiences_are_listed_a_page_at_a_time_and_created() {
    let server = server();
    let fake = FakeGraph::start(Vec::new()).await;
    let seeded = some_audiences(7);
    fake.state.lock().unwrap().audiences = seeded.clone();
    connect(&server, &fake).await;

    let mut listed: Vec<Json> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/v1/facebook/audiences?limit=3".to_string(),
            Some(c) => format!("/v1/facebook/audiences?limit=3&cursor={c}"),
        };
        let page = server.get(&path).await;
        pages += 1;
        assert!(page["items"].as_array().unwrap().len() <= 3, "{page:#}");
        listed.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 10, "paging never ends");
    }
    assert_eq!(pages, 3, "7 audiences, 3 a page");
    let expected: Vec<Json> = seeded
        .iter()
        .map(|a| {
            json!({"id": a["id"], "name": a["name"], "description": null,
                   "approximate_count_lower_bound": a["approximate_count_lower_bound"],
                   "approximate_count_upper_bound": a["approximate_count_upper_bound"]})
        })
        .collect();
    assert_eq!(listed, expected);
    let asked = fake.calls().last().cloned().unwrap();
    let query = asked.query.unwrap();
    assert!(
        query.contains("fields=id%2Cname%2Cdescription%2Capproximate_count_lower_bound%2Capproximate_count_upper_bound"),
        "{query}"
    );
    assert!(query.contains("after=QVFI6"), "{query}");

    // Facebook gives at most 100 a page: a larger limit is asked as 100.
    server.get("/v1/facebook/audiences?limit=500").await;
    assert!(
        fake.calls()
            .last()
            .unwrap()
            .query
            .as_deref()
            .unwrap()
            .contains("limit=100&")
            || fake
                .calls()
                .last()
                .unwrap()
                .query
                .as_deref()
                .unwrap()
                .ends_with("limit=100"),
    );

    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/facebook/audiences",
            Some(json!({"name": "  Sift: VIP customers ", "description": "Exported from Sift"})),
        )
        .await;
    let made = fake.calls().last().cloned().unwrap();
    assert_eq!(
        (made.method.as_str(), made.path.as_str()),
        (
            "POST",
            format!("/v21.0/act_{ACCOUNT}/customaudiences").as_str()
        )
    );
    assert_eq!(
        made.body,
        json!({"name": "Sift: VIP customers", "description": "Exported from Sift",
               "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"})
    );
    let new_id = fake.state.lock().unwrap().audiences[7]["id"].clone();
    assert_eq!(
        created,
        json!({"id": new_id, "name": "Sift: VIP customers", "description": "Exported from Sift",
               "approximate_count_lower_bound": null, "approximate_count_upper_bound": null})
    );
    let all = server.get("/v1/facebook/audiences").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 8);
    assert_eq!(
        all["items"][7], created,
        "the new audience is listed, without an estimate yet"
    );
    assert_eq!(all["next_cursor"], Json::Null);

    for (body, field) in [
        (json!({"name": "   "}), "name"),
        (json!({"description": "x"}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": 5}), "name"),
        (
            json!({"name": "x", "description": "d".repeat(1001)}),
            "description",
        ),
        (json!({"name": "x", "subtype": "LOOKALIKE"}), "subtype"),
    ] {
        let (status, answer) = server
            .send("POST", "/v1/facebook/audiences", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(
            answer["error"]["details"]["field"], field,
            "{body}: {answer}"
        );
    }
    assert_eq!(
        fake.state.lock().unwrap().audiences.len(),
        8,
        "nothing more was created"
    );

    let (status, _) = server
        .send("GET", "/v1/facebook/audiences?cursor=%01", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, answer) = server
        .send("GET", "/v1/facebook/audiences?cursor=made-up", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        error_of(&answer),
        (
            "facebook_refused",
            "Facebook refused the request (code 100: Invalid cursor)"
        )
    );
}

#[tokio::test]
async fn facebook_refusing_or_failing_later_is_said_in_words() {
    let server = server();
    let fake = FakeGraph::start(Vec::new()).await;
    connect(&server, &fake).await;

    // Facebook fails: a 502 saying to try again, with what Facebook said.
    fake.state.lock().unwrap().script.push((
        500,
        json!({"error": {"message": "An unexpected error has occurred.", "type": "OAuthException", "code": 2, "is_transient": true}}),
    ));
    let (status, answer) = server.send("GET", "/v1/facebook/audiences", None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert_eq!(
        error_of(&answer),
        (
            "facebook_unavailable",
            "Facebook could not answer (code 2: An unexpected error has occurred.): try again in a few minutes"
        )
    );
    fake.state.lock().unwrap().script.push((
        400,
        json!({"error": {"message": "(#17) User request limit reached", "type": "OAuthException", "code": 17}}),
    ));
    let (status, answer) = server.send("GET", "/v1/facebook/audiences", None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert!(
        error_of(&answer)
            .1
            .starts_with("Facebook is limiting requests right now"),
        "{answer}"
    );

    // The token was revoked after it was saved.
    fake.state.lock().unwrap().tokens.clear();
    let (status, answer) = server
        .send(
            "POST",
            "/v1/facebook/audiences",
            Some(json!({"name": "New"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        error_of(&answer)
            .1
            .starts_with("Facebook refused the access token (code 190"),
        "{answer}"
    );
    assert!(fake.state.lock().unwrap().audiences.is_empty());

    // Facebook is gone.
    let url = fake.url.clone();
    drop(fake);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, answer) = server.send("GET", "/v1/facebook/audiences", None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert_eq!(
        error_of(&answer),
        (
            "facebook_unavailable",
            format!("could not reach Facebook at {url}: check the Graph URL, or try again later")
                .as_str()
        )
    );
}

#[tokio::test]
async fn a_failed_export_is_retried_as_a_new_job_with_the_saved_token() {
    let server = server();
    server
        .put_contact("ana", json!({"email": "ana@example.com"}))
        .await;
    let segment = server.segment("All", "email is set").await;
    let fake = FakeGraph::start(Vec::new()).await;
    connect(&server, &fake).await;
    // The token expires before the export's first batch.
    fake.state.lock().unwrap().script.push((
        400,
        json!({"error": {"message": "Error validating access token: Session has expired", "type": "OAuthException", "code": 190}}),
    ));
    let started = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/segments/{segment}/exports/facebook"),
            Some(json!({"audience_id": "555", "identifiers": ["EMAIL", "EXTERN_ID"]})),
        )
        .await;
    let failed_id = started["id"].as_str().unwrap().to_string();
    let failed = wait_job(&server, &failed_id, finished).await;
    assert_eq!(failed["state"], "failed", "{failed:#}");
    assert!(
        failed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Facebook refused the access token (code 190: Error validating access token"),
        "{failed:#}"
    );

    let retry = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/exports/{failed_id}/retry"),
            None,
        )
        .await;
    let retry_id = retry["id"].as_str().unwrap().to_string();
    assert_ne!(retry_id, failed_id);
    assert_eq!(retry["retry_of"], failed_id.as_str());
    for key in [
        "segment_id",
        "audience_id",
        "identifiers",
        "sync",
        "graph_url",
        "version",
    ] {
        assert_eq!(retry[key], failed[key], "{key}");
    }
    let done = wait_job(&server, &retry_id, finished).await;
    assert_eq!(
        (done["state"].as_str(), done["sent"].as_u64()),
        (Some("done"), Some(1)),
        "{done:#}"
    );
    let users = fake.calls().last().cloned().unwrap();
    assert_eq!(users.path, "/v21.0/555/users");
    assert_eq!(users.body["access_token"], TOKEN);
    assert_eq!(
        users.body["payload"]["data"],
        json!([[crate::facebook_fake::sha256("ana@example.com"), "ana"]])
    );
    // The failed job stays as it was; the list has both, newest first.
    assert_eq!(
        server.get(&format!("/v1/exports/{failed_id}")).await["state"],
        "failed"
    );
    let list = server.get(&format!("/v1/segments/{segment}/exports")).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [retry_id.as_str(), failed_id.as_str()]);

    // Only a failed export is retried; and a retry needs the saved token.
    let (status, answer) = server
        .send("POST", &format!("/v1/exports/{retry_id}/retry"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        error_of(&answer),
        (
            "export_not_failed",
            format!("export {retry_id:?} is done, not failed: only a failed export can be retried")
                .as_str()
        )
    );
    let (status, _) = server
        .send("POST", "/v1/exports/fbx_nope/retry", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server
        .expect(StatusCode::OK, "DELETE", "/v1/facebook/connection", None)
        .await;
    let (status, answer) = server
        .send("POST", &format!("/v1/exports/{failed_id}/retry"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(error_of(&answer).0, "facebook_not_connected");
    assert_eq!(
        server.get(&format!("/v1/segments/{segment}/exports")).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "a refused retry starts nothing"
    );
}
