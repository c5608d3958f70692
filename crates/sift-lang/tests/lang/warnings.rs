//! Warnings before saving: parts of a valid condition that never (or always)
//! hold, each pointing at its node of the JSON tree.

use serde_json::Value;
use sift_lang::{parse_text, to_json, warnings};

use crate::schema::TestSchema;

/// The warnings of `text` as `path: message`.
fn check(text: &str) -> Vec<String> {
    let cond = parse_text(text, &TestSchema::new()).unwrap_or_else(|err| panic!("{text}: {err}"));
    let tree = to_json(&cond);
    warnings(&cond)
        .into_iter()
        .map(|w| {
            // Every path points at a node of the tree the API answers.
            assert!(
                tree.pointer(&w.path).is_some_and(Value::is_object),
                "{}",
                w.path
            );
            format!("{}: {}", w.path, w.message)
        })
        .collect()
}

#[test]
fn reversed_between() {
    assert_eq!(
        check("lead_score between 10 and 5"),
        [
            ": lead_score between 10 and 5 is never true: its first bound is above its second (write between 5 and 10)"
        ]
    );
    assert_eq!(
        check("country = \"ES\" and birth_date between 2000-01-01 and 1990-12-31"),
        [
            "/all/1: birth_date between 2000-01-01 and 1990-12-31 is never true: its first bound is above its second (write between 1990-12-31 and 2000-01-01)"
        ]
    );
    assert_eq!(
        check("performed purchase where amount between 9.5 and 2"),
        [
            "/where: amount between 9.5 and 2 is never true: its first bound is above its second (write between 2 and 9.5)"
        ]
    );
    // Equal bounds are a single value: fine.
    assert!(check("lead_score between 5 and 5").is_empty());
    assert!(check("signup_at between 2024-01-01 and 2024-01-01T10:00:00Z").is_empty());
}

#[test]
fn empty_lists() {
    assert_eq!(
        check("not country in []"),
        ["/not: country in [] is never true: the list is empty"]
    );
    assert_eq!(
        check("email is set or country not in []"),
        ["/any/1: country not in [] is always true: the list is empty"]
    );
    assert!(check("country in [\"ES\"]").is_empty());
}

#[test]
fn ranges_that_leave_nothing() {
    assert_eq!(
        check("lead_score > 10 and email is set and lead_score < 5"),
        [": lead_score > 10 and lead_score < 5 can't both be true, so this part matches nobody"]
    );
    // Touching bounds: empty only when one of them excludes the point.
    assert_eq!(check("lead_score >= 5 and lead_score < 5").len(), 1);
    assert!(check("lead_score >= 5 and lead_score <= 5").is_empty());
    assert_eq!(
        check("birth_date > 2000-01-01 and birth_date < 1990-01-01 or country = \"ES\""),
        [
            "/any/0: birth_date > 2000-01-01 and birth_date < 1990-01-01 can't both be true, so this part matches nobody"
        ]
    );
    assert_eq!(
        check("country = \"ES\" and country = \"FR\""),
        [": country = \"ES\" and country = \"FR\" can't both be true, so this part matches nobody"]
    );
    assert_eq!(
        check("orders in [1, 2] and orders > 3"),
        [": orders in [1, 2] and orders > 3 can't both be true, so this part matches nobody"]
    );
    assert_eq!(
        check("performed purchase where (amount > 100 and amount <= 20)"),
        ["/where: amount > 100 and amount <= 20 can't both be true, so this part matches nobody"]
    );
    // Different fields, an `or`, a `not`, ignoring case, or a possible
    // overlap: nothing to say.
    assert!(check("lead_score > 10 and orders < 5").is_empty());
    assert!(check("lead_score > 10 or lead_score < 5").is_empty());
    assert!(check("lead_score > 10 and not lead_score > 5").is_empty());
    assert!(check("country = \"ES\" ignoring case and country = \"es\"").is_empty());
    assert!(check("lead_score > 1 and lead_score < 5 and lead_score != 3").is_empty());
    // A property compared with a number and with a string: separate orders.
    assert!(check("performed x where (v > 5 and v < \"a\")").is_empty());
}
