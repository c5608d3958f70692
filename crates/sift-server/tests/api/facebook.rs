//! Facebook Custom Audience exports (docs/api.md "CSV export" and "Facebook Custom Audience export", docs/api.md): normalization
//! and hashing vectors, batching, retries, auth errors and sync, against
//! the fake Graph API of `facebook_fake.rs`; the jobs' API is in
//! `facebook_jobs.rs`.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use sift_server::facebook::normalize;

use crate::facebook_fake::{
    FakeGraph, TOKEN, export_body, finished, one_member_export, server, sha256, start_sync,
    wait_calls, wait_job,
};

pub(crate) fn rows_by_extern_id(
    call: &crate::facebook_fake::Call,
) -> BTreeMap<String, Vec<String>> {
    let schema: Vec<&str> = call.body["payload"]["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let id_at = schema.iter().position(|k| *k == "EXTERN_ID").unwrap();
    call.body["payload"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let cells: Vec<String> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            (cells[id_at].clone(), cells)
        })
        .collect()
}

#[test]
fn facebook_normalization_vectors() {
    // Each expected normalized string is written out here and hashed by the
    // test itself, independently of the server's hashing.
    let cases: [(&str, String, &str); 12] = [
        (
            "email",
            normalize::email("  Ana.Lopez@Example.COM "),
            "ana.lopez@example.com",
        ),
        (
            "phone +",
            normalize::phone("+49 (30) 1234-5678"),
            "493012345678",
        ),
        (
            "phone 00",
            normalize::phone("0049 30 1234 5678"),
            "493012345678",
        ),
        (
            "phone us",
            normalize::phone("+1 (650) 555-1212"),
            "16505551212",
        ),
        (
            "first name",
            normalize::name("  Zoë-Anne O'Brien "),
            "zoëanneobrien",
        ),
        (
            "last name",
            normalize::name("García-Márquez, Jr."),
            "garcíamárquezjr",
        ),
        ("country code", normalize::country(" ES "), "es"),
        ("country name", normalize::country("United States"), "us"),
        ("gender", normalize::gender("Female"), "f"),
        ("doby", normalize::birth_date("1987-03-09").0, "1987"),
        ("dobm", normalize::birth_date("1987-03-09").1, "03"),
        ("dobd", normalize::birth_date("1987-03-09").2, "09"),
    ];
    for (what, got, expected) in cases {
        assert_eq!(got, expected, "{what}");
        assert_eq!(normalize::sha256_hex(&got), sha256(expected), "{what}");
    }
    // Verified with printf '%s' 'zoëanneobrien' | sha256sum.
    assert_eq!(
        normalize::sha256_hex("zoëanneobrien"),
        "525ff9dd81c309bb73dc2b9f5db9f50fed309a1cd48e91034078506b269b23b5"
    );
    assert_eq!(normalize::country("Narnia"), "");
    assert_eq!(normalize::gender("x"), "");
}

#[tokio::test]
async fn facebook_export_hashes_every_identifier_as_documented() {
    let server = server();
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/gender",
            Some(json!({"type": "string"})),
        )
        .await;
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/birth_date",
            Some(json!({"type": "date"})),
        )
        .await;
    server
        .put_contact(
            "zoe",
            json!({"email": "  Zoe.OBrien@Example.COM ", "phone": "0049 (30) 1234-5678",
                   "first_name": "  Zoë-Anne ", "last_name": "O'Brien", "country": "Germany",
                   "birth_date": "1987-03-09", "gender": "Female", "vip": true}),
        )
        .await;
    server.put_contact("nobody", json!({"vip": true})).await;
    server
        .put_contact(
            "gone",
            json!({"vip": true, "email": "gone@example.com", "newsletter": false}),
        )
        .await;
    let segment = server.segment("VIPs", "vip = true").await;
    let fake = FakeGraph::start(Vec::new()).await;
    let body = json!({"audience_id": 23850000000000001u64, "access_token": TOKEN,
                      "graph_url": fake.url});
    let job = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/segments/{segment}/exports/facebook"),
            Some(body),
        )
        .await;
    let job = wait_job(&server, job["id"].as_str().unwrap(), finished).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(
        (
            job["total"].as_u64(),
            job["sent"].as_u64(),
            job["skipped"].as_u64()
        ),
        (Some(3), Some(1), Some(2))
    );
    assert_eq!(job["unsubscribed"], 1);
    assert_eq!(
        job["identifiers"],
        json!([
            "EMAIL",
            "PHONE",
            "FN",
            "LN",
            "COUNTRY",
            "DOBY",
            "DOBM",
            "DOBD",
            "GEN",
            "EXTERN_ID"
        ])
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/v21.0/23850000000000001/users");
    assert_eq!(calls[0].body["access_token"], TOKEN);
    assert_eq!(calls[0].body["payload"]["schema"], job["identifiers"]);
    let expected: Vec<String> = [
        "zoe.obrien@example.com",
        "493012345678",
        "zoëanne",
        "obrien",
        "de",
        "1987",
        "03",
        "09",
        "f",
    ]
    .iter()
    .map(|v| sha256(v))
    .chain(["zoe".to_string()])
    .collect();
    assert_eq!(calls[0].body["payload"]["data"], json!([expected]));
    let batch = &job["batches"][0];
    assert_eq!(
        (
            batch["num_received"].as_u64(),
            batch["num_invalid_entries"].as_u64()
        ),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn facebook_25000_members_arrive_as_three_batches() {
    let server = server();
    for chunk in 0..3 {
        let contacts: Vec<Json> = (chunk * 10_000..(chunk * 10_000 + 10_000).min(25_000))
            .map(|i| json!({"id": format!("c{i}"), "properties": {"email": format!(" User{i}@Example.com")}}))
            .collect();
        server
            .expect(
                StatusCode::OK,
                "POST",
                "/v1/contacts:batch",
                Some(json!({"contacts": contacts})),
            )
            .await;
    }
    let segment = server.segment("Everyone", "email is set").await;
    let fake = FakeGraph::start(Vec::new()).await;
    let job = server
        .expect(
            StatusCode::ACCEPTED,
            "POST",
            &format!("/v1/segments/{segment}/exports/facebook"),
            Some(export_body(&fake, json!(["EMAIL", "EXTERN_ID"]), false)),
        )
        .await;
    let job = wait_job(&server, job["id"].as_str().unwrap(), finished).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(
        (
            job["total"].as_u64(),
            job["sent"].as_u64(),
            job["skipped"].as_u64()
        ),
        (Some(25_000), Some(25_000), Some(0))
    );
    let calls = fake.calls();
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c.body["payload"]["data"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [10_000, 10_000, 5_000]);
    let mut seen = BTreeSet::new();
    for call in &calls {
        assert_eq!(call.method, "POST");
        assert_eq!(
            call.body["payload"]["schema"],
            json!(["EMAIL", "EXTERN_ID"])
        );
        for (id, row) in rows_by_extern_id(call) {
            let i: u32 = id[1..].parse().unwrap();
            assert_eq!(row[0], sha256(&format!("user{i}@example.com")), "{id}");
            seen.insert(i);
        }
    }
    assert_eq!(seen.len(), 25_000);
    let batches: Vec<(u64, u64)> = job["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["rows"].as_u64().unwrap(),
                b["num_received"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        batches,
        [(10_000, 10_000), (10_000, 10_000), (5_000, 5_000)]
    );
}
#[tokio::test]
async fn facebook_500_then_success_is_retried() {
    let (_server, fake, job) =
        one_member_export(vec![(500, json!({"error": {"message": "boom"}}))]).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(job["sent"], 1);
    assert_eq!(job["retries"], 1);
    assert_eq!(job["batches"][0]["attempts"], 2);
    assert!(
        job["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{job:#}"
    );
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn facebook_rate_limits_are_retried() {
    let limit = json!({"error": {"message": "(#17) User request limit reached", "type": "OAuthException", "code": 17}});
    let (_server, fake, job) = one_member_export(vec![(400, limit), (429, json!({}))]).await;
    assert_eq!(job["state"], "done", "{job:#}");
    assert_eq!(job["batches"][0]["attempts"], 3);
    assert!(
        job["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("rate limiting"),
        "{job:#}"
    );
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn facebook_auth_error_stops_the_job() {
    let auth = json!({"error": {"message": "Error validating access token: Session has expired",
                                "type": "OAuthException", "code": 190, "fbtrace_id": "x"}});
    let (_server, fake, job) = one_member_export(vec![(400, auth)]).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["sent"], 0);
    let message = job["errors"].as_array().unwrap().last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message
            .contains("Facebook refused the access token (code 190: Error validating access token"),
        "{message}"
    );
    assert!(message.contains("ads_management"), "{message}");
    assert_eq!(fake.calls().len(), 1, "an auth error is not retried");
}

#[tokio::test]
async fn facebook_sync_adds_entries_and_removes_exits() {
    let server = server();
    server
        .put_contact("ana", json!({"email": "ana@example.com", "vip": true}))
        .await;
    server
        .put_contact("bob", json!({"email": "bob@example.com", "vip": true}))
        .await;
    server
        .put_contact("cy", json!({"email": "cy@example.com", "vip": true}))
        .await;
    server
        .put_contact("dan", json!({"email": "dan@example.com"}))
        .await;
    let segment = server.segment("VIP", "vip = true").await;
    let fake = FakeGraph::start(Vec::new()).await;
    let (id, job) = start_sync(&server, &segment, &fake).await;
    assert_eq!(
        (job["state"].as_str(), job["sent"].as_u64()),
        (Some("running"), Some(3))
    );
    assert_eq!(wait_calls(&fake, 1).await.len(), 1);

    // An entry is added, an exit removed with the row that was sent.
    server.put_contact("dan", json!({"vip": true})).await;
    server.put_contact("ana", json!({"vip": false})).await;
    let calls = wait_calls(&fake, 3).await;
    // The two writes may land in one debounce window or two: only the
    // order inside one window (removals first) is fixed.
    let mut tail: Vec<(String, BTreeMap<String, Vec<String>>)> = calls[1..3]
        .iter()
        .map(|c| (c.method.clone(), rows_by_extern_id(c)))
        .collect();
    tail.sort_by(|a, b| b.0.cmp(&a.0));
    assert_eq!(tail[0].0, "POST");
    assert_eq!(tail[0].1.keys().collect::<Vec<_>>(), ["dan"]);
    assert_eq!(tail[0].1["dan"][0], sha256("dan@example.com"));
    assert_eq!(tail[1].0, "DELETE");
    assert_eq!(tail[1].1.keys().collect::<Vec<_>>(), ["ana"]);
    assert_eq!(tail[1].1["ana"][0], sha256("ana@example.com"));
    assert_eq!(calls[1].path, "/v21.0/23850000000000001/users");

    // A member's new email: the old row out, the new one in.
    server
        .put_contact("bob", json!({"email": "Robert@Example.com"}))
        .await;
    let calls = wait_calls(&fake, 5).await;
    assert_eq!(calls[3].method, "DELETE");
    assert_eq!(
        rows_by_extern_id(&calls[3])["bob"][0],
        sha256("bob@example.com")
    );
    assert_eq!(calls[4].method, "POST");
    assert_eq!(
        rows_by_extern_id(&calls[4])["bob"][0],
        sha256("robert@example.com")
    );

    // Unsubscribing removes; losing the identifier removes too.
    server.put_contact("cy", json!({"newsletter": false})).await;
    let calls = wait_calls(&fake, 6).await;
    assert_eq!(calls[5].method, "DELETE");
    assert_eq!(
        rows_by_extern_id(&calls[5])["cy"][0],
        sha256("cy@example.com")
    );
    server.put_contact("dan", json!({"email": null})).await;
    let calls = wait_calls(&fake, 7).await;
    assert_eq!(calls[6].method, "DELETE");
    assert_eq!(
        rows_by_extern_id(&calls[6])["dan"][0],
        sha256("dan@example.com")
    );
    // Deleting a member removes its row as sent.
    server
        .expect(StatusCode::OK, "DELETE", "/v1/contacts/bob", None)
        .await;
    let calls = wait_calls(&fake, 8).await;
    assert_eq!(calls[7].method, "DELETE");
    assert_eq!(
        rows_by_extern_id(&calls[7])["bob"][0],
        sha256("robert@example.com")
    );

    // The fake records a call before the job reads its answer and counts
    // it, so the counters are read once the last removal is counted.
    let job = wait_job(&server, &id, |job| job["removed"].as_u64() >= Some(5)).await;
    assert_eq!(
        (
            job["sent"].as_u64(),
            job["removed"].as_u64(),
            job["skipped"].as_u64()
        ),
        (Some(5), Some(5), Some(2))
    );
    // Stopping the sync: done, stopped, nothing more sent.
    let stopped = server
        .expect(StatusCode::OK, "DELETE", &format!("/v1/exports/{id}"), None)
        .await;
    assert_eq!(stopped["id"], id.as_str());
    let job = wait_job(&server, &id, finished).await;
    assert_eq!(
        (job["state"].as_str(), job["phase"].as_str()),
        (Some("done"), Some("stopped"))
    );
    // A second sync, to another fake, follows the same writes; once it has
    // sent Ana's entry and then her exit, the stopped sync had every chance
    // to send the entry too.
    let other = FakeGraph::start(Vec::new()).await;
    start_sync(&server, &segment, &other).await;
    let initial = other.calls().len();
    server.put_contact("ana", json!({"vip": true})).await;
    let calls = wait_calls(&other, initial + 1).await;
    assert_eq!(calls[initial].method, "POST");
    assert_eq!(
        rows_by_extern_id(&calls[initial])["ana"][0],
        sha256("ana@example.com")
    );
    server.put_contact("ana", json!({"vip": false})).await;
    let calls = wait_calls(&other, initial + 2).await;
    assert_eq!(calls[initial + 1].method, "DELETE");
    assert_eq!(
        rows_by_extern_id(&calls[initial + 1])["ana"][0],
        sha256("ana@example.com")
    );
    assert_eq!(fake.calls().len(), 8, "{:#?}", &fake.calls()[8..]);
}
