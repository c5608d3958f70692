//! Hints on rejected conditions: "did you mean" for unknown names, and the
//! parenthesized `where` when a property follows an unparenthesized one.

use serde_json::json;
use sift_lang::{ErrorKind, from_json, parse_text};

use crate::schema::TestSchema;

#[test]
fn unknown_field_suggests_the_closest() {
    let schema = TestSchema::new();
    let err = parse_text(r#"contry = "ES""#, &schema).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnknownField);
    assert_eq!(err.did_you_mean.as_deref(), Some("country"));
    assert_eq!(
        err.to_string(),
        r#"unknown field "contry" at 1:1; did you mean "country"?"#
    );
    // Case is ignored when comparing.
    let err = parse_text("LEAD_SCORE > 1", &schema).unwrap_err();
    assert_eq!(err.did_you_mean.as_deref(), Some("lead_score"));
    // Nothing close: no guess, the message as before.
    let err = parse_text("favourite_colour = \"red\"", &schema).unwrap_err();
    assert_eq!(err.did_you_mean, None);
    assert_eq!(
        err.to_string(),
        r#"unknown field "favourite_colour" at 1:1"#
    );

    let err = from_json(
        &json!({"all": [{"field": "emial", "op": "is_set"}]}),
        &schema,
    )
    .unwrap_err();
    assert_eq!(err.did_you_mean.as_deref(), Some("email"));
    assert_eq!(
        err.to_string(),
        r#"unknown field "emial" at /all/0/field; did you mean "email"?"#
    );
}

#[test]
fn unknown_segment_suggests_the_closest() {
    let err = parse_text(r#"in segment "VIP customer""#, &TestSchema::new()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnknownSegment);
    assert_eq!(err.did_you_mean.as_deref(), Some("VIP customers"));
    assert_eq!(
        err.to_string(),
        r#"unknown segment "VIP customer" at 1:12; did you mean "VIP customers"?"#
    );
    let err = parse_text(r#"in segment "Churned""#, &TestSchema::new()).unwrap_err();
    assert_eq!(err.did_you_mean, None);
}

#[test]
fn a_property_after_an_unparenthesized_where_is_explained() {
    let schema = TestSchema::new();
    let err = parse_text(
        r#"performed purchase where amount > 50 and category = "shoes""#,
        &schema,
    )
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnknownField);
    assert_eq!(
        err.to_string(),
        r#"unknown field "category" at 1:42; if it is a property of the purchase event, put the whole where in parentheses: where (amount > 50 and category = "shoes")"#
    );
    // The suggested text is a valid condition.
    assert!(
        parse_text(
            r#"performed purchase where (amount > 50 and category = "shoes")"#,
            &schema
        )
        .is_ok()
    );

    // After `or`, and deeper in the condition, on another line.
    let err = parse_text(
        "country = \"ES\" and\nperformed page_view where path starts with \"/shop\" or referrer contains \"ads\" ignoring case",
        &schema,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unknown field "referrer" at 2:55; if it is a property of the page_view event, put the whole where in parentheses: where (path starts with "/shop" or referrer contains "ads" ignoring case)"#
    );

    // `not` before the event keeps the hint.
    let err = parse_text(
        r#"not performed purchase where amount > 50 and category = "shoes""#,
        &schema,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("where (amount > 50 and category = \"shoes\")"),
        "{err}"
    );

    // A property test that does not parse either: the shape alone.
    let err = parse_text(
        r#"performed purchase where amount > 50 and category ="#,
        &schema,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unknown field "category" at 1:42; if it is a property of the purchase event, put the whole where in parentheses: where (amount > 50 and ...)"#
    );

    // A close contact field: both readings are offered.
    let err = parse_text(
        r#"performed purchase where amount > 50 and contry = "ES""#,
        &schema,
    )
    .unwrap_err();
    assert_eq!(err.did_you_mean.as_deref(), Some("country"));
    assert_eq!(
        err.hint.as_deref(),
        Some(
            r#"did you mean "country"? Or, if it is a property of the purchase event, put the whole where in parentheses: where (amount > 50 and contry = "ES")"#
        )
    );
}

#[test]
fn the_where_hint_only_follows_an_open_where() {
    let schema = TestSchema::new();
    let plain = |text: &str| parse_text(text, &schema).unwrap_err().hint;
    // A known contact field after the where is what the grammar means: valid.
    assert!(
        parse_text(
            r#"performed purchase where amount > 50 and country = "ES""#,
            &schema
        )
        .is_ok()
    );
    // Parenthesized where, a count or a window after it, or no where at all:
    // the unknown field is just unknown.
    assert_eq!(
        plain(r#"performed purchase where (amount > 50) and category = "shoes""#),
        None
    );
    assert_eq!(
        plain(r#"performed purchase where amount > 50 at least 2 times and category = "x""#),
        None
    );
    assert_eq!(
        plain(r#"performed purchase where amount > 50 in last 7 days and category = "x""#),
        None
    );
    assert_eq!(plain(r#"performed purchase and category = "x""#), None);
    assert_eq!(
        plain(r#"(performed purchase where amount > 50) and category = "x""#),
        None
    );
}
