//! A segment's past: its revisions (every create and edit, who made it and
//! what it moved), its members as of a past instant and its size over time,
//! checked against the test's own record of what it wrote and against a
//! replay of the change log the test does itself.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of, iso, ms_of};

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn every_create_and_edit_is_a_revision_newest_first() {
    let server = Server::new();
    for (id, tier) in [("ana", "gold"), ("bob", "gold"), ("cy", "silver")] {
        server.put_contact(id, json!({"tier": tier})).await;
    }
    let created = server
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/segments",
            Some(
                json!({"name": "Gold", "kind": "dynamic", "description": "top tier",
                        "condition": "tier = \"gold\""}),
            ),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/v1/segments/{id}");
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"name": "Gold tier"})),
        )
        .await;
    let widened = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"condition": "tier in [\"gold\", \"silver\"]"})),
        )
        .await;
    let narrowed = server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"condition_tree": {"field": "tier", "op": "eq", "value": "silver"}})),
        )
        .await;

    let page = server.get(&format!("{path}/revisions")).await;
    let items = page["items"].as_array().unwrap();
    assert!(page["next_cursor"].is_null(), "{page:#}");
    let numbers: Vec<u64> = items
        .iter()
        .map(|r| r["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 3, 2, 1], "{page:#}");
    let key_id: String = server.key.chars().take(11).collect();
    for item in items {
        assert_eq!(
            item["by"],
            json!({"key_id": key_id, "via": "api"}),
            "{item:#}"
        );
        assert_eq!(item["description"], "top tier");
    }
    let (r4, r3, r2, r1) = (&items[0], &items[1], &items[2], &items[3]);
    assert_eq!(r1["name"], "Gold");
    assert_eq!(r1["condition"], "tier = \"gold\"");
    assert_eq!(
        r1["condition_tree"],
        json!({"field": "tier", "op": "eq", "value": "gold"})
    );
    assert_eq!(
        (r1["entered"].as_u64(), r1["exited"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(r1["at"], created["created_at"]);
    // A rename moves nobody.
    assert_eq!(r2["name"], "Gold tier");
    assert_eq!(r2["condition"], r1["condition"]);
    assert_eq!(
        (r2["entered"].as_u64(), r2["exited"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(r3["entered"], widened["evaluation"]["entered"]);
    assert_eq!(r3["entered"], 1);
    assert_eq!(r3["condition"], "tier in [\"gold\", \"silver\"]");
    assert_eq!(r4["exited"], narrowed["evaluation"]["exited"]);
    assert_eq!(r4["exited"], 2);
    assert_eq!(r4["condition"], "tier = \"silver\"");
    assert_eq!(r4["at"], narrowed["updated_at"]);

    // Pages of two, following the cursor.
    let first = server.get(&format!("{path}/revisions?limit=2")).await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let second = server
        .get(&format!("{path}/revisions?limit=2&cursor={cursor}"))
        .await;
    let pages: Vec<u64> = [&first, &second]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().iter())
        .map(|r| r["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(pages, [4, 3, 2, 1]);
    assert!(second["next_cursor"].is_null(), "{second:#}");

    // Restoring revision 1 is one more edit, made from its tree.
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"name": r1["name"], "condition_tree": r1["condition_tree"]})),
        )
        .await;
    let latest = server.get(&format!("{path}/revisions?limit=1")).await;
    assert_eq!(latest["items"][0]["revision"], 5);
    assert_eq!(latest["items"][0]["condition"], "tier = \"gold\"");
    assert_eq!(server.members(&id, 10).await, ["ana", "bob"]);

    // History goes with the segment.
    server.expect(StatusCode::OK, "DELETE", &path, None).await;
    let (status, body) = server.send("GET", &format!("{path}/revisions"), None).await;
    error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = server
        .send("GET", "/v1/segments/seg_nope/revisions", None)
        .await;
    error_of(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn revisions_survive_a_restart() {
    let server = Server::new();
    let id = server.segment("Scored", "lead_score >= 10").await;
    let path = format!("/v1/segments/{id}");
    server
        .expect(
            StatusCode::OK,
            "PATCH",
            &path,
            Some(json!({"description": "warm leads"})),
        )
        .await;
    let before = server.get(&format!("{path}/revisions")).await;
    let server = server.restart();
    let after = server.get(&format!("{path}/revisions")).await;
    assert_eq!(before, after);
    assert_eq!(after["items"][0]["description"], "warm leads");
    assert_eq!(after["items"].as_array().unwrap().len(), 2);
}

/// The members at `at` from the segment's change log, replayed here.
fn replay(changes: &[Json], at: i64) -> BTreeSet<String> {
    let mut members = BTreeSet::new();
    for change in changes {
        if ms_of(&change["at"]) > at {
            continue;
        }
        let contact = change["contact_id"].as_str().unwrap().to_string();
        match change["change"].as_str().unwrap() {
            "entered" => assert!(members.insert(contact), "{change:#}"),
            "exited" => assert!(members.remove(&contact), "{change:#}"),
            other => panic!("unknown kind {other}"),
        }
    }
    members
}

#[tokio::test]
async fn members_as_of_a_past_instant_and_sizes_over_time() {
    let server = Server::on_manual_clock(|_| {});
    server
        .expect(
            StatusCode::OK,
            "PUT",
            "/v1/fields/tier",
            Some(json!({"type": "string"})),
        )
        .await;
    let start = server.now_ms();
    let id = server.segment("Gold", "tier = \"gold\"").await;
    // What the test wrote, hour by hour: the gold contacts after each hour.
    let mut expected: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
    expected.insert(server.now_ms(), BTreeSet::new());
    let hours: [&[(&str, Option<&str>)]; 4] = [
        &[
            ("ana", Some("gold")),
            ("bob", Some("gold")),
            ("cy", Some("silver")),
        ],
        &[("cy", Some("gold")), ("ana", Some("silver"))],
        &[("dee", Some("gold")), ("ana", Some("gold"))],
        &[("bob", None)],
    ];
    let mut gold: BTreeSet<&str> = BTreeSet::new();
    for writes in hours {
        server.advance(Duration::from_millis(HOUR as u64));
        for (contact, tier) in writes {
            match tier {
                Some(tier) => {
                    server.put_contact(contact, json!({"tier": tier})).await;
                    if *tier == "gold" {
                        gold.insert(contact);
                    } else {
                        gold.remove(contact);
                    }
                }
                None => {
                    let path = format!("/v1/contacts/{contact}");
                    server.expect(StatusCode::OK, "DELETE", &path, None).await;
                    gold.remove(contact);
                }
            }
        }
        expected.insert(server.now_ms(), gold.clone());
    }
    server.advance(Duration::from_millis(HOUR as u64 / 2));
    let changes = server.changes(&id).await;

    for (&at, members) in &expected {
        // Halfway to the next hour: nothing changed since `at`.
        for probe in [at, at + HOUR / 2] {
            let path = format!("/v1/segments/{id}/contacts?as_of={}&limit=1", iso(probe));
            let listed = crate::common::walk(&server, &path).await;
            // An erased contact's data is gone: it is left out.
            let alive: Vec<String> = members
                .iter()
                .filter(|c| **c != "bob")
                .map(|c| c.to_string())
                .collect();
            assert_eq!(listed, alive, "as of {}", iso(probe));
            let replayed: Vec<String> = replay(&changes, probe)
                .into_iter()
                .filter(|c| c != "bob")
                .collect();
            assert_eq!(listed, replayed, "as of {}", iso(probe));
        }
    }

    // The CSV export takes as_of too.
    let second_hour = start + 2 * HOUR + HOUR / 2;
    let (status, csv) = server
        .send(
            "GET",
            &format!(
                "/v1/segments/{id}/export.csv?fields=id&as_of={}",
                iso(second_hour)
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv, "id\r\ncy\r\n", "{csv}");

    // Sizes: one point an hour from the segment's creation.
    let path = format!(
        "/v1/segments/{id}/sizes?from={}&to={}&step=1h",
        iso(start),
        iso(start + 4 * HOUR + HOUR / 2)
    );
    let sizes = server.get(&path).await;
    let points: Vec<(i64, u64, u64, u64)> = sizes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                ms_of(&p["at"]),
                p["size"].as_u64().unwrap(),
                p["entered"].as_u64().unwrap(),
                p["exited"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want = Vec::new();
    let mut before: BTreeSet<&str> = BTreeSet::new();
    for hour in 1..=4 {
        let at = start + hour * HOUR;
        let now = expected.range(..=at).next_back().unwrap().1.clone();
        // Each hour's writes each move a contact at most once.
        let entered = now.difference(&before).count() as u64;
        let exited = before.difference(&now).count() as u64;
        want.push((at, now.len() as u64, entered, exited));
        before = now;
    }
    // Hour 2: ana left and cy entered; hour 3: ana came back, dee entered.
    assert_eq!(want[1], (start + 2 * HOUR, 2, 1, 1));
    assert_eq!(points, want, "{sizes:#}");

    // Before the segment existed, and in the future: 422.
    for at in [start - HOUR, server.now_ms() + HOUR] {
        let (status, body) = server
            .send(
                "GET",
                &format!("/v1/segments/{id}/contacts?as_of={}", iso(at)),
                None,
            )
            .await;
        let error = error_of(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(error["details"]["field"], "as_of", "{body:#}");
    }
    // Unreadable instants and steps: 400; too many points: 422.
    for query in [
        "contacts?as_of=yesterday",
        "sizes?step=1x",
        "sizes?step=0d",
        "sizes?from=soon",
    ] {
        let (status, body) = server
            .send("GET", &format!("/v1/segments/{id}/{query}"), None)
            .await;
        error_of(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    }
    let (status, body) = server
        .send(
            "GET",
            &format!(
                "/v1/segments/{id}/sizes?step=1m&from={}",
                iso(start - 30 * 24 * HOUR)
            ),
            None,
        )
        .await;
    error_of(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    // The default: 30 daily points ending now.
    let daily = server.get(&format!("/v1/segments/{id}/sizes")).await;
    let daily = daily["items"].as_array().unwrap();
    assert_eq!(daily.len(), 30);
    assert_eq!(ms_of(&daily[29]["at"]), server.now_ms());
    assert_eq!(daily[29]["size"], 3);
    assert_eq!(daily[28]["size"], 0);
}
