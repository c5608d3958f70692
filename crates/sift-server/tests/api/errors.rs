//! Bad input (docs/concepts.md "Guarantees" "Bad input", §2 "Invalid conditions"): the error shape,
//! wrong property types, malformed JSON, invalid conditions with positions,
//! reference cycles, oversized bodies, unknown routes. Each refusal changes
//! nothing.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of, send_bytes};

#[tokio::test]
async fn a_wrong_property_type_names_field_expected_and_given_and_applies_nothing() {
    let server = Server::new();
    server
        .put_contact("c1", json!({"country": "ES", "seats": 2}))
        .await;
    let cases = [
        (
            json!({"newsletter": "yes"}),
            "newsletter",
            "boolean",
            "\"yes\" (a string)",
        ),
        (
            json!({"seats": true}),
            "seats",
            "number",
            "true (a boolean)",
        ),
        (json!({"country": 34}), "country", "string", "34 (a number)"),
        (
            json!({"interests": "shoes"}),
            "interests",
            "string_list",
            "\"shoes\" (a string)",
        ),
        (
            json!({"interests": [1, 2]}),
            "interests",
            "string_list",
            "a list holding something other than strings",
        ),
        (
            json!({"birth_date": "31/12/1980"}),
            "birth_date",
            "date",
            "\"31/12/1980\" (a string)",
        ),
        (
            json!({"birth_date": "1980-02-30"}),
            "birth_date",
            "date",
            "\"1980-02-30\" (a string)",
        ),
        (
            json!({"email": {"work": "a@b.c"}}),
            "email",
            "string",
            "an object",
        ),
    ];
    for (properties, field, expected, given) in cases {
        // A good property beside the bad one is not applied either.
        let mut properties = properties;
        properties["first_name"] = json!("Changed");
        let (status, body) = server
            .send(
                "PUT",
                "/v1/contacts/c1",
                Some(json!({"properties": properties})),
            )
            .await;
        let error = error_of(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            error["details"],
            json!({"field": field, "expected": expected, "given": given}),
            "{body:#}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(field), "{message}");
    }
    let contact = server.get("/v1/contacts/c1").await;
    assert_eq!(contact["properties"], json!({"country": "ES", "seats": 2}));
}

#[tokio::test]
async fn a_property_no_field_can_hold_is_refused_on_first_write() {
    let server = Server::new();
    for value in [json!({"a": 1}), json!([1, 2]), json!(["a", 2])] {
        let body = json!({"properties": {"brand_new": value}});
        let (status, answer) = server.send("PUT", "/v1/contacts/c1", Some(body)).await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            error["message"].as_str().unwrap().contains("brand_new"),
            "{answer:#}"
        );
    }
    // A number JSON cannot hold in an f64.
    let body = br#"{"properties": {"brand_new": 1e400}}"#.to_vec();
    let (status, answer) = send_bytes(
        &server.app,
        "PUT",
        "/v1/contacts/c1",
        Some(&server.key),
        body,
    )
    .await;
    assert!(status.is_client_error(), "{status} {answer}");
    assert!(answer["error"]["code"].is_string(), "{answer}");
    let (status, _) = server.send("GET", "/v1/contacts/c1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        !server
            .get("/v1/fields")
            .await
            .to_string()
            .contains("brand_new")
    );
    let (status, answer) = server
        .send(
            "PUT",
            "/v1/contacts/c2",
            Some(json!({"properties": {"Bad Name": 1}})),
        )
        .await;
    let error = error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(error["details"]["field"], "Bad Name");
}

#[tokio::test]
async fn malformed_json_is_400_with_the_error_shape() {
    let server = Server::new();
    let segment = server.static_segment("Picks").await;
    for (method, path) in [
        ("PUT", "/v1/contacts/c1".to_string()),
        ("POST", "/v1/contacts:batch".to_string()),
        ("POST", "/v1/segments".to_string()),
        ("PATCH", format!("/v1/segments/{segment}")),
        ("POST", "/v1/segments:preview".to_string()),
        ("POST", format!("/v1/segments/{segment}/contacts")),
        ("PUT", "/v1/fields/plan".to_string()),
    ] {
        for body in [&b"{\"properties\": {"[..], b"not json", b"{\"a\": 1,}"] {
            let (status, answer) =
                send_bytes(&server.app, method, &path, Some(&server.key), body.to_vec()).await;
            let error = error_of(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
            assert!(
                error["message"].as_str().unwrap().contains("JSON"),
                "{answer:#}"
            );
        }
    }
    // Valid JSON of the wrong shape.
    let (status, answer) = server
        .send("PUT", "/v1/contacts/c1", Some(json!(["properties"])))
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, answer) = server
        .send("PUT", "/v1/contacts/c1", Some(json!({"properties": []})))
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, answer) = server
        .send("PUT", "/v1/contacts/c1", Some(json!({"props": {}})))
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, answer) = server
        .send(
            "PUT",
            "/v1/contacts/c1",
            Some(json!({"properties": {}, "anonymous": "no"})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, answer) = server
        .send("POST", "/v1/contacts:batch", Some(json!({"contacts": {}})))
        .await;
    error_of(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    let (status, answer) = server
        .send(
            "POST",
            &format!("/v1/segments/{segment}/contacts"),
            Some(json!({"contact_ids": "c1"})),
        )
        .await;
    error_of(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    let (status, _) = server.send("GET", "/v1/contacts/c1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn text_condition_errors_carry_line_and_column() {
    let server = Server::new();
    server.segment("Spain", "country = \"ES\"").await;
    let cases = [
        ("country = ", 1, 11, "expected a value after \"=\""),
        (
            "in segment \"Nowhere\"",
            1,
            12,
            "unknown segment \"Nowhere\"",
        ),
        ("country = \"ES\" and\n  colour = \"red\"", 2, 3, "colour"),
        ("newsletter = \"yes\"", 1, 14, ""),
        ("interests > 3", 1, 11, ""),
        ("(country = \"ES\"", 1, 16, ""),
    ];
    for (condition, line, column, needle) in cases {
        let body = json!({"name": "Bad", "condition": condition});
        let (status, answer) = server.send("POST", "/v1/segments", Some(body)).await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_condition",
        );
        assert_eq!(error["details"]["line"], line, "{condition}: {answer:#}");
        assert_eq!(
            error["details"]["column"], column,
            "{condition}: {answer:#}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(needle), "{condition}: {message}");
        assert!(
            message.ends_with(&format!("at {line}:{column}")),
            "{condition}: {message}"
        );

        // The same through a preview and an edit.
        let (status, answer) = server
            .send(
                "POST",
                "/v1/segments:preview",
                Some(json!({"condition": condition})),
            )
            .await;
        let again = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_condition",
        );
        assert_eq!(again["details"], error["details"]);
    }
    assert_eq!(
        server.get("/v1/segments").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn tree_condition_errors_carry_the_path_of_the_fault() {
    let server = Server::new();
    let cases = [
        (json!({"all": [{"field": "country", "op": "eq"}]}), "/all/0"),
        (
            json!({"all": [{"field": "country", "op": "eq", "value": "ES"}, {"field": "colour", "op": "eq", "value": "red"}]}),
            "/all/1",
        ),
        (json!({"in_segment": "seg_nope"}), "/in_segment"),
        (json!({"field": "seats", "op": "between", "value": [1]}), ""),
        (json!({"whatever": 1}), ""),
    ];
    for (tree, path_prefix) in cases {
        let body = json!({"name": "Bad", "condition_tree": tree});
        let (status, answer) = server.send("POST", "/v1/segments", Some(body)).await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_condition",
        );
        let path = error["details"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("no path: {answer:#}"));
        assert!(path.starts_with(path_prefix), "{tree}: {answer:#}");
    }
    // Text and tree together are ambiguous.
    let body =
        json!({"name": "Both", "condition": "country = \"ES\"", "condition_tree": {"all": []}});
    let (status, answer) = server.send("POST", "/v1/segments", Some(body)).await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let body = json!({"name": "Tree as text", "condition": {"all": []}});
    let (status, answer) = server.send("POST", "/v1/segments", Some(body)).await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test]
async fn conditions_nested_too_deep_or_too_large_are_refused() {
    let server = Server::new();
    let deep = format!("{}country = \"ES\"", "not ".repeat(40));
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments",
            Some(json!({"name": "Deep", "condition": deep})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );

    let mut tree = json!({"field": "country", "op": "eq", "value": "ES"});
    for _ in 0..40 {
        tree = json!({"not": tree});
    }
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments",
            Some(json!({"name": "Deep", "condition_tree": tree})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );

    let wide = vec!["country = \"ES\""; 1001].join(" or ");
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments",
            Some(json!({"name": "Wide", "condition": wide})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );

    // Deeper than any parser recursion should go: still a clean 4xx.
    let abyss = format!(
        "{}country = \"ES\"{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments:preview",
            Some(json!({"condition": abyss})),
        )
        .await;
    error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    let abyss_json = format!("{}{}", "{\"not\": ".repeat(10_000), "}".repeat(10_000));
    let body = format!("{{\"condition_tree\": {abyss_json}}}");
    let (status, answer) = send_bytes(
        &server.app,
        "POST",
        "/v1/segments:preview",
        Some(&server.key),
        body.into_bytes(),
    )
    .await;
    assert!(status.is_client_error(), "{status} {answer}");
    assert!(answer["error"]["code"].is_string(), "{answer}");
    assert_eq!(server.get("/v1/segments").await["items"], json!([]));
}

#[tokio::test]
async fn a_reference_cycle_is_an_invalid_condition() {
    let server = Server::new();
    let a = server.segment("A", "country = \"ES\"").await;
    let b = server.segment("B", "in segment \"A\"").await;
    let c = server
        .segment("C", "in segment \"B\" or newsletter = true")
        .await;
    for (segment, condition) in [
        (&a, "in segment \"C\""),
        (&a, "in segment \"B\" and country = \"ES\""),
        (&a, "in segment \"A\""),
    ] {
        let (status, answer) = server
            .send(
                "PATCH",
                &format!("/v1/segments/{segment}"),
                Some(json!({"condition": condition})),
            )
            .await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_condition",
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("cycle"), "{message}");
    }
    let (status, answer) = server
        .send(
            "PATCH",
            &format!("/v1/segments/{a}"),
            Some(json!({"condition_tree": {"in_segment": c}})),
        )
        .await;
    let error = error_of(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_condition",
    );
    assert!(error["details"]["cycle"].is_array(), "{answer:#}");
    assert_eq!(
        server.get(&format!("/v1/segments/{a}")).await["condition"],
        "country = \"ES\""
    );
    assert_eq!(
        server.get(&format!("/v1/segments/{b}/usages")).await["items"][0]["id"],
        json!(c)
    );
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413() {
    let server = Server::with(|config| config.max_body_bytes = 4096);
    let big = json!({"properties": {"notes": "x".repeat(5000)}});
    let (status, answer) = server.send("PUT", "/v1/contacts/c1", Some(big)).await;
    error_of(
        status,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let big = json!({"contacts": (0..200).map(|i| json!({"id": format!("c{i}"), "properties": {}})).collect::<Vec<_>>()});
    let (status, answer) = server.send("POST", "/v1/contacts:batch", Some(big)).await;
    error_of(
        status,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let (status, _) = server.send("GET", "/v1/contacts/c1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server
        .put_contact("c1", json!({"notes": "x".repeat(1000)}))
        .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_the_error_shape() {
    let server = Server::new();
    let (status, answer) = server.send("GET", "/v1/nothing-here", None).await;
    error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
    let (status, answer) = server
        .send("POST", "/v1/contacts/c1", Some(json!({})))
        .await;
    assert!(status.is_client_error(), "{status}");
    assert!(answer["error"]["code"].is_string(), "{answer}");
}

#[tokio::test]
async fn query_and_path_parameters_of_the_wrong_type_answer_the_error_shape() {
    let server = Server::new();
    server.put_contact("c1", json!({})).await;
    let segment = server.segment("All", "").await;
    for path in [
        "/v1/contacts?limit=-5".to_string(),
        format!("/v1/segments/{segment}/contacts?limit=many"),
        format!("/v1/segments/{segment}/changes?after=yesterday"),
        "/v1/changes/stream?after=soon".to_string(),
        "/v1/contacts/c1/explain".to_string(),
        "/v1/contacts/%FF%FE".to_string(),
    ] {
        let (status, answer) = server.send("GET", &path, None).await;
        error_of(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
    }
    let _: Json = server.get("/v1/contacts").await;
}

/// A method a route does not take is 405 with `Allow` (RFC 9110 §15.5.6), as
/// generated clients and conformance checkers expect; it once answered 400.
#[tokio::test]
async fn a_method_the_route_does_not_take_is_405_with_allow() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let server = Server::new();
    for (method, path, allowed) in [
        ("POST", "/v1/contacts/c1", "GET,HEAD,PUT,DELETE"),
        ("TRACE", "/v1/segments", "GET,HEAD,POST"),
        ("PUT", "/healthz", "GET,HEAD"),
    ] {
        let response = server
            .app
            .clone()
            .oneshot(crate::common::request(
                method,
                path,
                Some(&server.key),
                Vec::new(),
            ))
            .await
            .unwrap();
        let status = response.status();
        let allow = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let answer: Json = serde_json::from_slice(&bytes).unwrap();
        error_of(
            status,
            &answer,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        );
        let mut got: Vec<&str> = allow.split(',').collect();
        let mut want: Vec<&str> = allowed.split(',').collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{method} {path}");
    }
    // Nothing was written by the refused POST.
    let (status, _) = server.send("GET", "/v1/contacts/c1", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
