//! `GET /v1/segments/{id}/export.csv`: RFC 4180 quoting read back by an
//! independent parser, and a 100,000-member export that arrives as a
//! stream of bounded chunks rather than one buffered body.

use axum::http::StatusCode;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use crate::common::{Server, request, send};

#[tokio::test]
async fn export_csv_quotes_commas_quotes_and_line_breaks() {
    let server = Server::new();
    let awkward = [
        ("comma", "Smith, John"),
        ("quote", "The \"best\" buyer"),
        ("newline", "line one\nline two"),
        ("crlf", "a\r\nb"),
        ("plain", "plain"),
        ("leading-space", "  padded  "),
    ];
    for (id, name) in awkward {
        server
            .put_contact(
                id,
                json!({"first_name": name, "interests": ["a,b", "c\"d"], "email": format!("{id}@x.io")}),
            )
            .await;
    }
    let segment = server.segment("Everyone", "email is set").await;
    let (status, body) = send(
        &server.app,
        "GET",
        &format!("/v1/segments/{segment}/export.csv?fields=id,first_name,interests,newsletter"),
        Some(&server.key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    // RFC 4180: CRLF after every record, quotes around fields that need them.
    assert!(text.starts_with("id,first_name,interests,newsletter\r\n"));
    assert!(text.contains("comma,\"Smith, John\",\"a,b|c\"\"d\",\r\n"));
    assert!(text.contains("quote,\"The \"\"best\"\" buyer\","));
    assert!(text.contains("newline,\"line one\nline two\","));

    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, ["id", "first_name", "interests", "newsletter"]);
    let mut rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    rows.sort();
    let mut expected: Vec<Vec<String>> = awkward
        .iter()
        .map(|(id, name)| {
            vec![
                id.to_string(),
                name.to_string(),
                "a,b|c\"d".to_string(),
                String::new(),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn export_csv_of_100k_members_is_streamed_in_bounded_chunks() {
    const MEMBERS: usize = 100_000;
    let server = Server::new();
    for batch in 0..MEMBERS / 10_000 {
        let contacts: Vec<_> = (0..10_000)
            .map(|i| {
                let n = batch * 10_000 + i;
                json!({"id": format!("c{n:06}"), "properties": {
                    "email": format!("c{n}@example.com"),
                    "first_name": format!("Name, {n}"),
                    "newsletter": n % 2 == 0,
                }})
            })
            .collect();
        let (status, body) = send(
            &server.app,
            "POST",
            "/v1/contacts:batch",
            Some(&server.key),
            Some(json!({ "contacts": contacts })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let segment = server.segment("With email", "email is set").await;

    let response = server
        .app
        .clone()
        .oneshot(request(
            "GET",
            &format!("/v1/segments/{segment}/export.csv?fields=id,email,first_name,newsletter"),
            Some(&server.key),
            Vec::new(),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("content-length").is_none(),
        "a streamed body has no length known up front"
    );
    let mut body = response.into_body();
    let (mut frames, mut largest, mut total) = (0usize, 0usize, 0usize);
    let mut text = Vec::new();
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        frames += 1;
        largest = largest.max(data.len());
        total += data.len();
        text.extend_from_slice(&data);
    }
    // 1,000 members per chunk: the server never held more than one chunk
    // (about 50 KB here) of the ~5 MB file.
    assert!(frames >= MEMBERS / 1_000, "{frames} frames");
    assert!(largest < 100_000, "largest frame {largest} bytes");
    assert!(total > 4_000_000, "{total} bytes in all");

    let mut parser = csv::Reader::from_reader(text.as_slice());
    let mut count = 0usize;
    for (i, record) in parser.records().enumerate() {
        let record = record.unwrap();
        assert_eq!(&record[0], format!("c{i:06}"));
        assert_eq!(&record[1], format!("c{i}@example.com"));
        assert_eq!(&record[2], format!("Name, {i}"));
        assert_eq!(&record[3], if i % 2 == 0 { "true" } else { "false" });
        count += 1;
    }
    assert_eq!(count, MEMBERS);
}

/// Cells a spreadsheet would run as formulas get a leading `'` (OWASP's
/// advice), whichever column they are in: ids, strings and list cells
/// (one cell, checked at its first character). Plain negative numbers stay
/// numbers. `?raw=true` gives every cell as stored.
#[tokio::test]
async fn export_csv_neutralises_formula_cells_unless_raw() {
    let server = Server::new();
    // Ids cannot hold control characters, so tab and CR are tested in values.
    let contacts = json!({"contacts": [
        {"id": "=1+1", "properties": {"first_name": "=HYPERLINK(\"http://x\")", "lead_points": -5, "interests": ["=a", "b"]}},
        {"id": "+plus", "properties": {"first_name": "+1", "lead_points": -2.5, "interests": ["b", "c=d"]}},
        {"id": "-minus", "properties": {"first_name": "-2+3+cmd|' /C calc'!A0", "lead_points": 3, "interests": ["-x"]}},
        {"id": "@at", "properties": {"first_name": "@SUM(A1)", "lead_points": 0, "interests": ["@y"]}},
        {"id": "tab", "properties": {"first_name": "\t=1", "interests": ["\tz"]}},
        {"id": "cr", "properties": {"first_name": "\r=1", "interests": ["\rw"]}},
        {"id": "plain", "properties": {"first_name": "Ana = Bea", "interests": ["a-b"]}},
        {"id": "neg-text", "properties": {"first_name": "-5 apples"}},
    ]});
    let (status, body) = send(
        &server.app,
        "POST",
        "/v1/contacts:batch",
        Some(&server.key),
        Some(contacts),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let segment = server.segment("All", "first_name is set").await;
    let export = |raw: &'static str| {
        let app = server.app.clone();
        let key = server.key.clone();
        let path = format!(
            "/v1/segments/{segment}/export.csv?fields=id,first_name,lead_points,interests{raw}"
        );
        async move {
            let (status, body) = send(&app, "GET", &path, Some(&key), None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let text = body.as_str().unwrap().to_string();
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            reader
                .records()
                .map(|r| r.unwrap().iter().map(String::from).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        }
    };
    let row = |cells: [&str; 4]| cells.map(String::from).to_vec();
    assert_eq!(
        export("").await,
        [
            row(["'=1+1", "'=HYPERLINK(\"http://x\")", "-5", "'=a|b"]),
            row(["'+plus", "'+1", "-2.5", "b|c=d"]),
            row(["'-minus", "'-2+3+cmd|' /C calc'!A0", "3", "'-x"]),
            row(["'@at", "'@SUM(A1)", "0", "'@y"]),
            row(["tab", "'\t=1", "", "'\tz"]),
            row(["cr", "'\r=1", "", "'\rw"]),
            row(["plain", "Ana = Bea", "", "a-b"]),
            row(["neg-text", "'-5 apples", "", ""]),
        ]
    );
    let raw = [
        row(["=1+1", "=HYPERLINK(\"http://x\")", "-5", "=a|b"]),
        row(["+plus", "+1", "-2.5", "b|c=d"]),
        row(["-minus", "-2+3+cmd|' /C calc'!A0", "3", "-x"]),
        row(["@at", "@SUM(A1)", "0", "@y"]),
        row(["tab", "\t=1", "", "\tz"]),
        row(["cr", "\r=1", "", "\rw"]),
        row(["plain", "Ana = Bea", "", "a-b"]),
        row(["neg-text", "-5 apples", "", ""]),
    ];
    assert_eq!(export("&raw=true").await, raw);
    // `raw=false` is the default.
    assert_eq!(export("&raw=false").await, export("").await);
    let (status, body) = send(
        &server.app,
        "GET",
        &format!("/v1/segments/{segment}/export.csv?raw=yes"),
        Some(&server.key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
