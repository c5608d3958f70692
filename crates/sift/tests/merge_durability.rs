//! Durability of identify (docs/concepts.md "Guarantees", §5) at the process level: merges
//! acknowledged by `sift serve` survive SIGKILL right after their answers —
//! the known contact's merged data, memberships equal to before, the alias,
//! and the `merge` changes in the log.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use support::{HttpClient, Server, call, client, ok};

const ADMIN_KEY: &str = "merge-durability-admin-key";

/// Every segment's size and split, and the contacts the test looks at.
async fn snapshot(client: &HttpClient, addr: &str, key: &str) -> BTreeMap<String, Json> {
    let mut state = BTreeMap::new();
    let list = ok(client, addr, key, "GET", "/v1/segments", None).await;
    for segment in list["items"].as_array().unwrap() {
        let id = segment["id"].as_str().unwrap().to_string();
        let members = ok(
            client,
            addr,
            key,
            "GET",
            &format!("/v1/segments/{id}/contacts?limit=1000"),
            None,
        )
        .await;
        let ids: Vec<&Json> = members["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["id"])
            .collect();
        state.insert(
            format!("segment {id}"),
            json!([
                segment["size"],
                segment["size_known"],
                segment["size_anonymous"],
                ids
            ]),
        );
    }
    for id in ["k0", "k1", "k2", "anon_0", "anon_3"] {
        let (status, contact) = call(
            client,
            addr,
            key,
            "GET",
            &format!("/v1/contacts/{id}"),
            None,
        )
        .await
        .unwrap();
        state.insert(format!("contact {id}"), json!([status, contact]));
    }
    state
}

#[tokio::test]
async fn acknowledged_merges_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr = dir.path().join("stderr.log");
    let mut server = Server::start(&data, &stderr, &["--admin-key", ADMIN_KEY]);
    let key = server.key.clone().unwrap();
    let addr = server.addr.clone();
    let client = client();
    for (name, condition) in [
        ("Anonymous", Some("anonymous = true")),
        ("Viewers", Some("performed product_view at least 2 times")),
        ("Spain", Some("country = \"ES\"")),
        ("VIP", None),
    ] {
        let body = match condition {
            Some(text) => json!({"name": name, "kind": "dynamic", "condition": text}),
            None => json!({"name": name, "kind": "static"}),
        };
        ok(&client, &addr, &key, "POST", "/v1/segments", Some(body)).await;
    }
    let list = ok(&client, &addr, &key, "GET", "/v1/segments?q=VIP", None).await;
    let vip = list["items"][0]["id"].as_str().unwrap().to_string();
    for k in 0..3 {
        ok(
            &client,
            &addr,
            &key,
            "PUT",
            &format!("/v1/contacts/k{k}"),
            Some(json!({"properties": {"first_name": format!("K{k}")}})),
        )
        .await;
    }
    for a in 0..6 {
        let events: Vec<Json> = (0..2)
            .map(|i| json!({"id": format!("v{a}-{i}"), "contact_id": format!("anon_{a}"), "type": "product_view", "anonymous": true}))
            .collect();
        ok(
            &client,
            &addr,
            &key,
            "POST",
            "/v1/events",
            Some(json!({"events": events})),
        )
        .await;
        ok(
            &client,
            &addr,
            &key,
            "PUT",
            &format!("/v1/contacts/anon_{a}"),
            Some(json!({"properties": {"country": "ES"}})),
        )
        .await;
    }
    ok(
        &client,
        &addr,
        &key,
        "POST",
        &format!("/v1/segments/{vip}/contacts"),
        Some(json!({"contact_ids": ["anon_0", "anon_3"]})),
    )
    .await;
    for (a, k) in [(0, 0), (1, 0), (3, 1), (4, 2)] {
        let answer = ok(
            &client,
            &addr,
            &key,
            "POST",
            "/v1/identify",
            Some(json!({"anonymous_id": format!("anon_{a}"), "contact_id": format!("k{k}")})),
        )
        .await;
        assert_eq!(answer["merged"], true, "{answer:#}");
    }
    let before = snapshot(&client, &addr, &key).await;
    assert_eq!(before["contact anon_0"][1]["id"], "k0", "{before:#?}");
    server.kill();

    let server = Server::start(&data, &stderr, &["--admin-key", ADMIN_KEY]);
    let addr = server.addr.clone();
    let after = snapshot(&client, &addr, &key).await;
    assert_eq!(after, before);
    let changes = ok(
        &client,
        &addr,
        &key,
        "GET",
        &format!("/v1/segments/{vip}/changes"),
        None,
    )
    .await;
    let merges = changes["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cause"] == "merge")
        .count();
    // anon_0 and anon_3 left VIP; k0 and k1 entered it.
    assert_eq!(merges, 4, "{changes:#}");
    // Identify again after the restart changes nothing.
    let again = ok(
        &client,
        &addr,
        &key,
        "POST",
        "/v1/identify",
        Some(json!({"anonymous_id": "anon_0", "contact_id": "k0"})),
    )
    .await;
    assert_eq!(again["merged"], false);
}
