//! Fields (docs/concepts.md "Field", §4): the built-in schema, declaring fields,
//! type inference on first write, and the 409 for retyping a field with data.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of};

fn field<'a>(list: &'a Json, name: &str) -> Option<&'a Json> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
}

#[tokio::test]
async fn built_in_and_system_fields_are_listed() {
    let server = Server::new();
    let list = server.get("/v1/fields").await;
    assert_eq!(list["next_cursor"], Json::Null);
    for (name, field_type) in [
        ("email", "string"),
        ("phone", "string"),
        ("first_name", "string"),
        ("last_name", "string"),
        ("country", "string"),
        ("birth_date", "date"),
        ("newsletter", "boolean"),
        ("interests", "string_list"),
        ("created_at", "datetime"),
        ("updated_at", "datetime"),
        ("last_seen_at", "datetime"),
        ("anonymous", "boolean"),
        ("lead_score", "number"),
    ] {
        let def = field(&list, name).unwrap_or_else(|| panic!("{name} is missing: {list:#}"));
        assert_eq!(def["type"], field_type, "{def}");
        assert_eq!(def["builtin"], true, "{def}");
        assert!(
            def["label"].as_str().is_some_and(|l| !l.is_empty()),
            "{def}"
        );
    }
}

#[tokio::test]
async fn declaring_a_field_answers_it_and_lists_it() {
    let server = Server::new();
    let def = server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/plan_renews_on",
            Some(json!({"type": "date", "label": "Plan renews on"})),
        )
        .await;
    assert_eq!(def["name"], "plan_renews_on");
    assert_eq!(def["type"], "date");
    assert_eq!(def["label"], "Plan renews on");
    assert_eq!(def["builtin"], false);

    // Without a label one is made from the name.
    let def = server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/last_order_at",
            Some(json!({"type": "datetime"})),
        )
        .await;
    assert_eq!(def["label"], "Last order at");

    let list = server.get("/v1/fields").await;
    assert_eq!(field(&list, "plan_renews_on").unwrap()["type"], "date");
    assert_eq!(field(&list, "last_order_at").unwrap()["type"], "datetime");

    // Declared dates and datetimes take their text forms.
    let contact = server
        .put_contact(
            "c1",
            json!({"plan_renews_on": "2026-03-01", "last_order_at": "2026-01-31T10:30:00+02:00"}),
        )
        .await;
    assert_eq!(contact["properties"]["plan_renews_on"], "2026-03-01");
    assert_eq!(
        contact["properties"]["last_order_at"],
        "2026-01-31T08:30:00Z"
    );

    // Relabelling keeps the type and the data.
    let def = server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/plan_renews_on",
            Some(json!({"type": "date", "label": "Renewal"})),
        )
        .await;
    assert_eq!(def["label"], "Renewal");
    let contact = server.get("/v1/contacts/c1").await;
    assert_eq!(contact["properties"]["plan_renews_on"], "2026-03-01");
}

#[tokio::test]
async fn the_first_write_of_an_unknown_property_infers_its_type() {
    let server = Server::new();
    server
        .put_contact(
            "c1",
            json!({"plan": "pro", "seats": 3, "vip": true, "tags": ["a", "b"]}),
        )
        .await;
    let list = server.get("/v1/fields").await;
    for (name, field_type) in [
        ("plan", "string"),
        ("seats", "number"),
        ("vip", "boolean"),
        ("tags", "string_list"),
    ] {
        let def = field(&list, name).unwrap_or_else(|| panic!("{name} not created"));
        assert_eq!(def["type"], field_type);
        assert_eq!(def["builtin"], false);
    }
    // A string that looks like a date is still a string: dates are declared.
    server
        .put_contact("c2", json!({"signed_up": "2024-01-05"}))
        .await;
    let list = server.get("/v1/fields").await;
    assert_eq!(field(&list, "signed_up").unwrap()["type"], "string");

    // The inferred type is now the field's type.
    let (status, body) = server
        .send(
            "PUT",
            "/v1/contacts/c3",
            Some(json!({"properties": {"seats": "three"}})),
        )
        .await;
    let error = error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"]["field"], "seats");
    assert_eq!(error["details"]["expected"], "number");
    let (status, _) = server.send("GET", "/v1/contacts/c3", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused upsert creates nothing"
    );
}

#[tokio::test]
async fn changing_the_type_of_a_field_holding_data_is_409() {
    let server = Server::new();
    server.put_contact("c1", json!({"seats": 3})).await;
    let (status, body) = server
        .send("PUT", "/v1/fields/seats", Some(json!({"type": "string"})))
        .await;
    let error = error_of(status, &body, StatusCode::CONFLICT, "field_type_conflict");
    assert_eq!(error["details"]["field"], "seats");
    let list = server.get("/v1/fields").await;
    assert_eq!(field(&list, "seats").unwrap()["type"], "number");
    assert_eq!(
        server.get("/v1/contacts/c1").await["properties"]["seats"],
        3
    );

    // Built-in fields keep their types.
    let (status, body) = server
        .send("PUT", "/v1/fields/email", Some(json!({"type": "number"})))
        .await;
    error_of(status, &body, StatusCode::CONFLICT, "field_type_conflict");

    // Once no contact holds the field, it can be retyped.
    server.put_contact("c1", json!({"seats": null})).await;
    let def = server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/seats",
            Some(json!({"type": "string"})),
        )
        .await;
    assert_eq!(def["type"], "string");
    let contact = server.put_contact("c1", json!({"seats": "three"})).await;
    assert_eq!(contact["properties"]["seats"], "three");
}

#[tokio::test]
async fn a_field_a_segment_reads_cannot_be_retyped() {
    let server = Server::new();
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/tier",
            Some(json!({"type": "string"})),
        )
        .await;
    server.segment("Gold", "tier = \"gold\"").await;
    let (status, body) = server
        .send("PUT", "/v1/fields/tier", Some(json!({"type": "number"})))
        .await;
    error_of(status, &body, StatusCode::CONFLICT, "field_type_conflict");
}

#[tokio::test]
async fn bad_declarations_are_refused() {
    let server = Server::new();
    for (name, body, status, code) in [
        (
            "Plan",
            json!({"type": "string"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "1plan",
            json!({"type": "string"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "plan",
            json!({"type": "text"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "plan",
            json!({"label": "Plan"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "plan",
            json!({"type": "string", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let (got, answer) = server
            .send("PUT", &format!("/v1/fields/{name}"), Some(body))
            .await;
        error_of(got, &answer, status, code);
    }
    let list = server.get("/v1/fields").await;
    assert!(field(&list, "plan").is_none());
}

#[tokio::test]
async fn system_fields_are_read_only() {
    let server = Server::new();
    for property in ["lead_score", "created_at", "anonymous"] {
        let body = json!({"properties": {property: 1}});
        let (status, answer) = server.send("PUT", "/v1/contacts/c1", Some(body)).await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(error["details"]["field"], property);
    }
}
