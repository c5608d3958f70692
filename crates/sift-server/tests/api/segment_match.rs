//! `POST /v1/segments/{id}/contacts:match`: ids, emails and CSV columns
//! matched to contacts before they are added to a static segment by hand;
//! bounds and errors. Nothing is changed by a match.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of};

async fn setup() -> (Server, String) {
    let server = Server::new();
    server
        .put_contact("ann", json!({"email": "Ann@Example.com"}))
        .await;
    server
        .put_contact("bob", json!({"email": "bob@example.com"}))
        .await;
    server.put_contact("carl", json!({"country": "ES"})).await;
    server
        .put_contact("dup1", json!({"email": "shared@example.com"}))
        .await;
    server
        .put_contact("dup2", json!({"email": " SHARED@example.com "}))
        .await;
    let list = server.static_segment("Hand list").await;
    server
        .expect(
            StatusCode::OK,
            "POST",
            &format!("/v1/segments/{list}/contacts"),
            Some(json!({"contact_ids": ["bob"]})),
        )
        .await;
    (server, list)
}

async fn matched(server: &Server, list: &str, body: Json) -> Json {
    server
        .expect(
            StatusCode::OK,
            "POST",
            &format!("/v1/segments/{list}/contacts:match"),
            Some(body),
        )
        .await
}

fn pairs(answer: &Json) -> Vec<(String, String)> {
    answer["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["value"].as_str().unwrap().to_string(),
                m["contact_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn values_match_by_id_or_email_without_case() {
    let (server, list) = setup().await;
    let answer = matched(
        &server,
        &list,
        json!({"values": ["ann@example.com", " bob ", "carl", "nobody@example.com", "ghost", "carl", "", "shared@example.com"]}),
    )
    .await;
    assert_eq!(
        pairs(&answer),
        owned(&[
            ("ann@example.com", "ann"),
            ("bob", "bob"),
            ("carl", "carl"),
            ("shared@example.com", "dup1"),
            ("shared@example.com", "dup2"),
        ])
    );
    assert_eq!(answer["unknown"], json!(["nobody@example.com", "ghost"]));
    // Six distinct non-empty values; "carl" once more.
    assert_eq!(answer["values"], 6);
    assert_eq!(answer["duplicates"], 1);
    assert_eq!(answer["contacts"], 5);
    // bob was added before.
    assert_eq!(answer["already_members"], 1);
    assert!(answer.get("columns").is_none(), "{answer:#}");
    // A match changes nothing.
    assert_eq!(server.members(&list, 100).await, ["bob"]);
}

#[tokio::test]
async fn a_csv_column_is_chosen_by_header_or_position() {
    let (server, list) = setup().await;
    let csv = "name,E-mail\n\"Smith, Ann\",ann@example.com\r\nBob,bob@example.com\n\nZed,\"zed@example.com\"\n";
    let answer = matched(&server, &list, json!({"csv": csv})).await;
    assert_eq!(answer["header"], true);
    assert_eq!(answer["columns"], json!(["name", "E-mail"]));
    assert_eq!(answer["column"], 2);
    assert_eq!(
        pairs(&answer),
        owned(&[("ann@example.com", "ann"), ("bob@example.com", "bob")])
    );
    assert_eq!(answer["unknown"], json!(["zed@example.com"]));
    assert_eq!(answer["values"], 3);

    // The quoted cell with a comma stays one value.
    let by_name = matched(&server, &list, json!({"csv": csv, "column": "NAME"})).await;
    assert_eq!(by_name["column"], 1);
    assert_eq!(by_name["unknown"], json!(["Smith, Ann", "Bob", "Zed"]));
    let by_position = matched(&server, &list, json!({"csv": csv, "column": 1})).await;
    assert_eq!(by_position["unknown"], by_name["unknown"]);

    // Without a header (guessed: "ann" is a contact, once the byte-order
    // mark a spreadsheet may write is dropped), every row is read.
    let plain = matched(&server, &list, json!({"csv": "\u{feff}ann\ncarl;x\n"})).await;
    assert_eq!(plain["header"], false);
    assert_eq!(plain["columns"], json!(["Column 1"]));
    assert_eq!(plain["unknown"], json!(["carl;x"]));
    assert_eq!(pairs(&plain), owned(&[("ann", "ann")]));
    // Told there is one, the first row is the header.
    let told = matched(
        &server,
        &list,
        json!({"csv": "ann\ncarl\n", "header": true}),
    )
    .await;
    assert_eq!(told["columns"], json!(["ann"]));
    assert_eq!(pairs(&told), owned(&[("carl", "carl")]));
}

#[tokio::test]
async fn bad_requests_say_what_to_fix_and_change_nothing() {
    let (server, list) = setup().await;
    let path = format!("/v1/segments/{list}/contacts:match");
    let refused = |body: Json| {
        let server = &server;
        let path = path.clone();
        async move { server.send("POST", &path, Some(body)).await }
    };
    for (body, needle) in [
        (json!({}), "either"),
        (json!({"values": ["a"], "csv": "a"}), "either"),
        (json!({"values": "a"}), "list"),
        (json!({"values": [1]}), "list"),
        (json!({"csv": 3}), "text"),
        (json!({"csv": "a,b\n1,2", "column": 3}), "has 2"),
        (json!({"csv": "a,b\n1,2", "column": "c"}), "no column"),
        (
            json!({"csv": "a,b\n1,2", "header": false, "column": "a"}),
            "position",
        ),
        (json!({"csv": "a", "header": "yes"}), "true or false"),
        (json!({"value": ["a"]}), "unknown key"),
    ] {
        let (status, answer) = refused(body.clone()).await;
        let error = error_of(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{body}: {answer:#}"
        );
    }
    let many: Vec<String> = (0..10_001).map(|i| format!("c{i}")).collect();
    let (status, answer) = refused(json!({"values": many})).await;
    let error = error_of(
        status,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    assert!(
        error["message"].as_str().unwrap().contains("10,000"),
        "{error}"
    );
    let rows: String = std::iter::once("email\n".to_string())
        .chain((0..10_001).map(|i| format!("c{i}@example.com\n")))
        .collect();
    let (status, answer) = refused(json!({"csv": rows})).await;
    error_of(
        status,
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // Exactly 10,000 rows below a header are fine.
    let rows: String = std::iter::once("email\n".to_string())
        .chain((0..10_000).map(|i| format!("c{i}@example.com\n")))
        .collect();
    let (status, answer) = refused(json!({"csv": rows})).await;
    assert_eq!(status, StatusCode::OK, "{answer:#}");
    assert_eq!(answer["values"], 10_000);
    assert_eq!(answer["unknown"].as_array().map(Vec::len), Some(10_000));

    let dynamic = server.segment("Spain", "country = \"ES\"").await;
    let (status, answer) = server
        .send(
            "POST",
            &format!("/v1/segments/{dynamic}/contacts:match"),
            Some(json!({"values": ["ann"]})),
        )
        .await;
    error_of(status, &answer, StatusCode::CONFLICT, "wrong_segment_kind");
    let (status, answer) = server
        .send(
            "POST",
            "/v1/segments/seg_nope/contacts:match",
            Some(json!({"values": ["ann"]})),
        )
        .await;
    error_of(status, &answer, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(server.members(&list, 100).await, ["bob"]);
}
