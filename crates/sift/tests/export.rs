//! `sift export SEGMENT --format csv`, run beside a live `sift serve` on the
//! same data directory and after the server is gone: its bytes equal the
//! server's `GET /v1/segments/{id}/export.csv`, the segment can be named by
//! id or by name, and a wrong segment or column is exit code 1 with a
//! message that says what to do.

mod support;

use std::process::Command;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value as Json, json};
use support::{HttpClient, Server, client, ok};

async fn get_text(client: &HttpClient, addr: &str, key: &str, path: &str) -> String {
    let request = hyper::Request::builder()
        .uri(format!("http://{addr}{path}"))
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn export(data: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sift"))
        .arg("export")
        .args(args)
        .arg("--data")
        .arg(data)
        .env("SIFT_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_the_same_csv_as_the_api_with_or_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &dir.path().join("stderr.log"), &[]);
    let (addr, key) = (server.addr.clone(), server.key.clone().unwrap());
    let http = client();

    let contacts: Vec<Json> = (0..2_500)
        .map(|n| {
            json!({"id": format!("c{n}"), "properties": {
                "email": format!("c{n}@example.com"),
                "first_name": match n % 6 { 0 | 3 => "Ana, \"la\"".to_string(), 1 | 4 => "two\nlines".to_string(), 2 => format!("=N{n}"), _ => format!("N{n}") },
                "interests": if n % 2 == 0 { json!(["shoes", "bags"]) } else { json!([]) },
                "newsletter": n % 4 != 0,
            }})
        })
        .collect();
    ok(
        &http,
        &addr,
        &key,
        "POST",
        "/v1/contacts:batch",
        Some(json!({ "contacts": contacts })),
    )
    .await;
    let segment = ok(
        &http,
        &addr,
        &key,
        "POST",
        "/v1/segments",
        Some(json!({"name": "Newsletter readers", "kind": "dynamic", "condition": "newsletter = true"})),
    )
    .await;
    let id = segment["id"].as_str().unwrap().to_string();
    assert_eq!(segment["size"], 1_875);
    let fields = "id,email,first_name,interests,lead_score,anonymous";
    let expected = get_text(
        &http,
        &addr,
        &key,
        &format!("/v1/segments/{id}/export.csv?fields={fields}"),
    )
    .await;
    // A header and 1,875 rows; the line breaks inside names are not record ends.
    assert_eq!(expected.matches("\r\n").count(), 1_876);
    assert!(expected.contains(",\"two\nlines\","));

    // Beside the running server, by id, to stdout.
    let (code, stdout, stderr) = export(&data, &[&id, "--format", "csv", "--fields", fields]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, expected);
    assert!(
        stderr.contains("exported 1875 contacts of \"Newsletter readers\""),
        "{stderr}"
    );

    // Formula-like cells are neutralised the same way in both; raw in both
    // when asked.
    assert!(expected.contains(",'=N"), "{}", &expected[..300]);
    let raw = get_text(
        &http,
        &addr,
        &key,
        &format!("/v1/segments/{id}/export.csv?fields={fields}&raw=true"),
    )
    .await;
    assert!(raw.contains(",=N") && !raw.contains(",'=N"));
    let (code, stdout, stderr) = export(&data, &[&id, "--fields", fields, "--raw"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, raw);

    // By name (any case), to a file; the default columns.
    let file = dir.path().join("out.csv");
    let (code, stdout, stderr) =
        export(&data, &["newsletter READERS", "-o", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty());
    let default = get_text(&http, &addr, &key, &format!("/v1/segments/{id}/export.csv")).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), default);

    // An instant before the next write, for exports as of then.
    let before_late = sift_lang::format_datetime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // A write the server acknowledged is in the next export.
    ok(
        &http,
        &addr,
        &key,
        "PUT",
        "/v1/contacts/late",
        Some(json!({"properties": {"newsletter": true}})),
    )
    .await;
    let (_, stdout, _) = export(&data, &[&id, "--fields", "id"]);
    assert_eq!(stdout.lines().count(), 1_877);
    assert!(stdout.contains("\r\nlate\r\n"));

    // As of before it: the members then, as the API's as_of answers them.
    let (code, past, stderr) = export(&data, &[&id, "--fields", fields, "--as-of", &before_late]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(past, expected);
    let api_past = get_text(
        &http,
        &addr,
        &key,
        &format!("/v1/segments/{id}/export.csv?fields={fields}&as_of={before_late}"),
    )
    .await;
    assert_eq!(api_past, expected);
    let (code, _, stderr) = export(&data, &[&id, "--as-of", "2000-01-01T00:00:00Z"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("did not exist yet"), "{stderr}");
    let (code, _, stderr) = export(&data, &[&id, "--as-of", "last week"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("RFC 3339"), "{stderr}");

    // With the server gone (killed, not stopped), the same answer.
    server.kill();
    let (code, stdout, stderr) = export(&data, &[&id, "--fields", fields]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.len(), expected.len() + "late,,,,0,false\r\n".len());

    let (code, _, stderr) = export(&data, &["No such segment"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no segment with id or name \"No such segment\""),
        "{stderr}"
    );
    let (code, _, stderr) = export(&data, &[&id, "--fields", "id,shoe_size"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("unknown column \"shoe_size\""), "{stderr}");
    let (code, _, stderr) = export(&dir.path().join("nowhere"), &[&id]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not a Sift data directory"), "{stderr}");
}
