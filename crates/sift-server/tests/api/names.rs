//! Names of segments and workflows: 1 to 200 characters, none of them a
//! control character, refused with the reason and nothing created.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{Server, error_of};

#[tokio::test]
async fn names_with_control_characters_are_refused() {
    let server = Server::new();
    let static_id = server.static_segment("Plain").await;
    for name in ["VIP\u{0}", "two\nlines", "tab\there"] {
        let (status, answer) = server
            .send(
                "POST",
                "/v1/segments",
                Some(json!({"name": name, "kind": "static"})),
            )
            .await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("no control characters"),
            "{error}"
        );
        let (status, answer) = server
            .send(
                "PATCH",
                &format!("/v1/segments/{static_id}"),
                Some(json!({"name": name})),
            )
            .await;
        error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        let (status, answer) = server
            .send(
                "POST",
                "/v1/workflows",
                Some(json!({"name": name, "status": "draft",
                    "trigger": {"type": "event", "event_type": "purchase"},
                    "actions": [{"type": "add_score", "points": 1}]})),
            )
            .await;
        error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    assert_eq!(server.get("/v1/workflows").await["items"], json!([]));
    let segments = server.get("/v1/segments").await;
    let listed: Vec<&str> = segments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [static_id.as_str()]);
}
