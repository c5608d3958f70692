//! Field limits (custom fields per workspace, new fields per write) and the
//! fields list a page at a time.

use axum::http::StatusCode;
use serde_json::{Map, Value as Json, json};

use crate::common::{Server, error_of};

fn numbers(prefix: &str, n: usize) -> Json {
    let mut properties = Map::new();
    for i in 0..n {
        properties.insert(format!("{prefix}_{i:03}"), json!(i));
    }
    Json::Object(properties)
}

async fn field_names(server: &Server) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/fields?limit=7&cursor={c}"),
            None => "/v1/fields?limit=7".to_string(),
        };
        let page = server.get(&path).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 7, "{page:#}");
        names.extend(
            items
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return names,
        }
    }
}

#[tokio::test]
async fn one_write_creates_at_most_the_new_field_limit_and_a_refusal_changes_nothing() {
    let server = Server::new();
    // The default: 100 new fields in one write are fine, 101 are not.
    server.put_contact("ok", numbers("a", 100)).await;
    let (status, body) = server
        .send(
            "PUT",
            "/v1/contacts/c9-9999",
            Some(json!({"properties": numbers("b", 101)})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "field_limit_exceeded",
    );
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("100"), "{message}");
    assert!(message.contains("--max-new-fields"), "{message}");
    assert!(message.contains("SIFT_MAX_NEW_FIELDS"), "{message}");
    assert_eq!(error["details"]["field"], "b_100", "{error:#}");
    assert_eq!(error["details"]["limit"], 100);
    let (status, _) = server.send("GET", "/v1/contacts/c9-9999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was applied");
    let names = field_names(&server).await;
    assert!(!names.iter().any(|n| n.starts_with("b_")), "{names:?}");

    // A batch counts its new fields over all its items.
    let batch = json!({"contacts": [
        {"id": "x1", "properties": numbers("c", 60)},
        {"id": "x2", "properties": numbers("d", 60)},
    ]});
    let (status, body) = server.send("POST", "/v1/contacts:batch", Some(batch)).await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "field_limit_exceeded",
    );
    assert_eq!(error["details"]["field"], "d_040", "{error:#}");
    let (status, _) = server.send("GET", "/v1/contacts/x1", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing of the batch was applied"
    );
}

#[tokio::test]
async fn a_workspace_holds_at_most_max_fields_custom_fields() {
    let server = Server::with(|config| config.field_limits.max_fields = 10);
    server.put_contact("ana", numbers("n", 8)).await;
    let (status, body) = server
        .send(
            "PUT",
            "/v1/contacts/ana",
            Some(json!({"properties": {"n_000": 5, "more_1": 1, "more_2": 2, "more_3": 3}})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "field_limit_exceeded",
    );
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("limit of 10"), "{message}");
    assert!(
        message.contains("--max-fields (SIFT_MAX_FIELDS)"),
        "{message}"
    );
    assert_eq!(error["details"]["field"], "more_3");
    // Nothing applied: not the existing field's new value, not the fields.
    let ana = server.get("/v1/contacts/ana").await;
    assert_eq!(ana["properties"]["n_000"], 0, "{ana:#}");
    assert_eq!(field_names(&server).await.len(), 13 + 8);

    // Declaring counts too; the tenth fits, the eleventh does not.
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/more_1",
            Some(json!({"type": "number"})),
        )
        .await;
    server.put_contact("ana", json!({"more_2": 2})).await;
    let (status, body) = server
        .send("PUT", "/v1/fields/more_3", Some(json!({"type": "string"})))
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "field_limit_exceeded",
    );
    assert_eq!(error["details"]["field"], "more_3");
    // Existing fields stay writable and relabelable at the limit.
    server.put_contact("ana", json!({"more_1": 7})).await;
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/more_1",
            Some(json!({"type": "number", "label": "More"})),
        )
        .await;

    // A restart with a lower limit keeps every stored field.
    let server = server.restart_with(|config| config.field_limits.max_fields = 5);
    assert_eq!(field_names(&server).await.len(), 13 + 10);
    let ana = server.get("/v1/contacts/ana").await;
    assert_eq!(ana["properties"]["more_2"], 2, "{ana:#}");
}

#[tokio::test]
async fn fields_are_listed_a_page_at_a_time() {
    let server = Server::new();
    server.put_contact("ana", numbers("f", 20)).await;
    let names = field_names(&server).await;
    assert_eq!(names.len(), 13 + 20, "{names:?}");
    assert_eq!(names[0], "email");
    assert_eq!(names[13], "f_000");
    assert_eq!(names[32], "f_019");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "no field twice: {names:?}");

    // The default page is 100 fields; the last page has no cursor.
    let page = server.get("/v1/fields").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 33);
    assert_eq!(page["next_cursor"], Json::Null);

    for bad in [
        "/v1/fields?limit=0",
        "/v1/fields?limit=1001",
        "/v1/fields?cursor=zz",
    ] {
        let (status, body) = server.send("GET", bad, None).await;
        error_of(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    }
}
