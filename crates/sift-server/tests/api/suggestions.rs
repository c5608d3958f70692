//! What the condition builder offers to pick (docs/api.md "Suggestions"):
//! event types with their properties, and the most frequent values of text
//! fields and text event properties. Expected counts are computed here from
//! the data the test sends.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::{Server, error_of};

/// A small deterministic generator, so the data has uneven frequencies.
struct Lcg(u64);

impl Lcg {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items[((self.0 >> 33) as usize) % items.len()]
    }
}

/// Most frequent first, then in text order, keeping those containing `q`
/// without case; at most `limit`.
fn expected(counts: &BTreeMap<String, u64>, q: &str, limit: usize) -> Vec<Json> {
    let mut all: Vec<(&String, &u64)> = counts
        .iter()
        .filter(|(v, _)| v.to_lowercase().contains(&q.to_lowercase()))
        .collect();
    all.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    all.into_iter()
        .take(limit)
        .map(|(v, n)| json!({"value": v, "count": n}))
        .collect()
}

fn items(answer: &Json) -> Vec<Json> {
    answer["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn field_values_are_the_most_frequent_among_live_contacts() {
    let server = Server::new();
    let mut rng = Lcg(7);
    // Repeats make some plans more frequent than others.
    let plans = [
        "gold", "Gold", "silver", "bronze", "gold", "silver", "gold", "platinum",
    ];
    let tags = ["shoes", "bags", "hats", "shoes", "socks"];
    let mut plan_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut tag_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut contacts = Vec::new();
    for i in 0..80 {
        let mut properties = json!({"orders": i});
        if i % 7 != 0 {
            properties["plan"] = json!(rng.pick(&plans));
        }
        let mut interests: Vec<&str> = (0..(i % 3)).map(|_| rng.pick(&tags)).collect();
        interests.sort_unstable();
        interests.dedup();
        properties["interests"] = json!(interests);
        contacts.push(json!({"id": format!("c{i}"), "properties": properties}));
    }
    server
        .expect(
            StatusCode::OK,
            "POST",
            "/v1/contacts:batch",
            Some(json!({"contacts": contacts})),
        )
        .await;
    // A deleted contact's values are not counted.
    server
        .expect(StatusCode::OK, "DELETE", "/v1/contacts/c1", None)
        .await;
    for c in &contacts {
        if c["id"] == "c1" {
            continue;
        }
        if let Some(plan) = c["properties"]["plan"].as_str() {
            *plan_counts.entry(plan.to_string()).or_default() += 1;
        }
        for tag in c["properties"]["interests"]
            .as_array()
            .into_iter()
            .flatten()
        {
            *tag_counts
                .entry(tag.as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }

    let all = server.get("/v1/fields/plan/values").await;
    assert_eq!(items(&all), expected(&plan_counts, "", 20), "{all:#}");
    // Case is ignored in `q`, never in the values: "gold" and "Gold" stay two.
    let gold = server.get("/v1/fields/plan/values?q=GOL").await;
    assert_eq!(items(&gold), expected(&plan_counts, "gol", 20), "{gold:#}");
    assert_eq!(items(&gold).len(), 2, "{gold:#}");
    let one = server.get("/v1/fields/plan/values?limit=1").await;
    assert_eq!(items(&one), expected(&plan_counts, "", 1), "{one:#}");
    let none = server.get("/v1/fields/plan/values?q=zzz").await;
    assert_eq!(none, json!({"items": []}));

    let lists = server.get("/v1/fields/interests/values").await;
    assert_eq!(items(&lists), expected(&tag_counts, "", 20), "{lists:#}");

    for (path, status, code) in [
        (
            "/v1/fields/plan/values?limit=0",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/v1/fields/plan/values?limit=101",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/v1/fields/nothing_here/values",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/v1/fields/orders/values",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ] {
        let (got, body) = server.send("GET", path, None).await;
        let error = error_of(got, &body, status, code);
        assert!(
            !error["message"].as_str().unwrap_or_default().is_empty(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn event_types_list_their_properties_and_values() {
    let server = Server::new();
    let mut rng = Lcg(11);
    let categories = [
        "shoes",
        "bags",
        "shoes",
        "Shoelaces",
        "hats",
        "shoes",
        "bags",
    ];
    let mut events = Vec::new();
    let mut category_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut with_coupon = 0;
    for i in 0..60u64 {
        let category = rng.pick(&categories);
        *category_counts.entry(category.to_string()).or_default() += 1;
        let mut properties = json!({"amount": i, "category": category});
        if i % 4 == 0 {
            properties["coupon"] = json!(true);
            with_coupon += 1;
        }
        events.push(json!({"contact_id": format!("c{}", i % 9), "type": "purchase", "properties": properties}));
    }
    for i in 0..5 {
        events.push(json!({"contact_id": "c1", "type": "page_view", "properties": {"path": format!("/p{}", i % 2), "tags": ["a", "b"]}}));
    }
    server.events(json!({"events": events})).await;

    let types = server.get("/v1/event-types").await;
    let props = |t: &str| -> Vec<Json> {
        types["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["type"] == t)
            .map(|i| i["properties"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    let names: Vec<&Json> = types["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| &i["type"])
        .collect();
    assert_eq!(
        names,
        [&json!("page_view"), &json!("purchase")],
        "{types:#}"
    );
    assert_eq!(
        props("purchase"),
        [
            json!({"name": "amount", "type": "number", "count": 60}),
            json!({"name": "category", "type": "string", "count": 60}),
            json!({"name": "coupon", "type": "boolean", "count": with_coupon}),
        ],
        "{types:#}"
    );
    assert_eq!(
        props("page_view"),
        [
            json!({"name": "path", "type": "string", "count": 5}),
            json!({"name": "tags", "type": "string_list", "count": 5}),
        ],
        "{types:#}"
    );

    let values = server
        .get("/v1/event-types/purchase/properties/category/values")
        .await;
    assert_eq!(
        items(&values),
        expected(&category_counts, "", 20),
        "{values:#}"
    );
    let shoe = server
        .get("/v1/event-types/purchase/properties/category/values?q=SHOE&limit=2")
        .await;
    assert_eq!(
        items(&shoe),
        expected(&category_counts, "shoe", 2),
        "{shoe:#}"
    );
    let paths = server
        .get("/v1/event-types/page_view/properties/path/values")
        .await;
    assert_eq!(
        items(&paths),
        [
            json!({"value": "/p0", "count": 3}),
            json!({"value": "/p1", "count": 2})
        ]
    );
    // Unknown types and properties have nothing to suggest.
    for path in [
        "/v1/event-types/refund/properties/category/values",
        "/v1/event-types/purchase/properties/colour/values",
        "/v1/event-types/purchase/properties/amount/values",
    ] {
        assert_eq!(server.get(path).await, json!({"items": []}), "{path}");
    }
    let (status, body) = server
        .send(
            "GET",
            "/v1/event-types/purchase/properties/category/values?limit=500",
            None,
        )
        .await;
    error_of(status, &body, StatusCode::BAD_REQUEST, "bad_request");
}
