//! `ignoring case` (text) and `"ignore_case": true` (tree): where it may go,
//! how it prints, and the case folding both sides get.

use serde_json::{Value, json};
use sift_lang::{
    CmpOp, Condition, ErrorKind, FieldTest, Scalar, fold_case, from_json, parse_text, to_json,
    to_text,
};

use crate::schema::TestSchema;

fn tree_of(text: &str) -> Value {
    let cond = parse_text(text, &TestSchema::new()).unwrap_or_else(|err| panic!("{text}: {err}"));
    to_json(&cond)
}

/// Text → tree → canonical text → the same tree, and the tree read back.
fn round_trip(text: &str, canonical: &str) {
    let schema = TestSchema::new();
    let cond = parse_text(text, &schema).unwrap_or_else(|err| panic!("{text}: {err}"));
    assert_eq!(to_text(&cond, &schema), canonical, "canonical of {text:?}");
    assert_eq!(parse_text(canonical, &schema), Ok(cond.clone()));
    assert_eq!(from_json(&to_json(&cond), &schema), Ok(cond));
}

#[test]
fn text_gives_the_flag_on_each_string_operator() {
    assert_eq!(
        tree_of(r#"country = "gold" ignoring case"#),
        json!({"field": "country", "op": "eq", "value": "gold", "ignore_case": true})
    );
    assert_eq!(
        tree_of(r#"country in ["es", "fr"] ignoring case"#),
        json!({"field": "country", "op": "in", "value": ["es", "fr"], "ignore_case": true})
    );
    assert_eq!(
        tree_of(r#"email ends with "@GMAIL.COM" IGNORING Case"#),
        json!({"field": "email", "op": "ends_with", "value": "@GMAIL.COM", "ignore_case": true})
    );
    assert_eq!(
        tree_of(r#"interests not contains "Shoes" ignoring case"#),
        json!({"field": "interests", "op": "not_contains", "value": "Shoes", "ignore_case": true})
    );
    // Without the suffix the key is absent, exactly as before.
    assert_eq!(
        tree_of(r#"country = "gold""#),
        json!({"field": "country", "op": "eq", "value": "gold"})
    );
    // Inside a where, on an event property holding a string.
    assert_eq!(
        tree_of(
            r#"performed purchase where category starts with "Sho" ignoring case in last 7 days"#
        ),
        json!({"event": "purchase", "in_last": "7d", "where":
            {"field": "category", "op": "starts_with", "value": "Sho", "ignore_case": true}})
    );
}

#[test]
fn round_trips_through_canonical_text() {
    round_trip(
        r#"country != "ES"   Ignoring   CASE and first_name contains "jo" ignoring case"#,
        r#"country != "ES" ignoring case and first_name contains "jo" ignoring case"#,
    );
    round_trip(
        r#"not (country not in ["a", "B"] ignoring case or email starts with "X" ignoring case)"#,
        r#"not (country not in ["a", "B"] ignoring case or email starts with "X" ignoring case)"#,
    );
    round_trip(
        r#"performed purchase where (category = "Shoes" ignoring case and amount > 5) at least 2 times"#,
        r#"performed purchase where (category = "Shoes" ignoring case and amount > 5) at least 2 times"#,
    );
    round_trip(
        r#"total purchase.amount where category in [] ignoring case >= 10"#,
        r#"total purchase.amount where category in [] ignoring case >= 10"#,
    );
}

#[test]
fn tree_flag_false_or_null_is_today_s_behaviour() {
    let schema = TestSchema::new();
    let plain = Condition::Field {
        field: "country".into(),
        test: FieldTest::Compare(CmpOp::Eq, Scalar::String("ES".into())),
        ignore_case: false,
    };
    for flag in [json!(false), Value::Null] {
        let tree = json!({"field": "country", "op": "eq", "value": "ES", "ignore_case": flag});
        assert_eq!(from_json(&tree, &schema), Ok(plain.clone()));
    }
    // Even on a test that couldn't take it: false asks for nothing.
    let tree = json!({"field": "lead_score", "op": "gt", "value": 5, "ignore_case": false});
    assert!(from_json(&tree, &schema).is_ok());
}

fn text_error(text: &str) -> String {
    let err = parse_text(text, &TestSchema::new()).expect_err(text);
    let position = err.position.unwrap();
    format!(
        "{}:{} {:?}: {}",
        position.line, position.column, err.kind, err.message
    )
}

fn tree_error(tree: Value) -> String {
    let err = from_json(&tree, &TestSchema::new()).expect_err("invalid");
    format!("{} {:?}: {}", err.path.unwrap(), err.kind, err.message)
}

#[test]
fn only_string_tests_take_it() {
    assert_eq!(
        text_error("lead_score > 5 ignoring case"),
        r#"1:16 InvalidValue: "ignoring case" goes only with =, !=, contains, not contains, starts with, ends with, in or not in, not with ">""#
    );
    assert_eq!(
        text_error(r#"country < "b" ignoring case"#),
        r#"1:15 InvalidValue: "ignoring case" goes only with =, !=, contains, not contains, starts with, ends with, in or not in, not with "<""#
    );
    assert_eq!(
        text_error("newsletter = true ignoring case"),
        r#"1:19 InvalidValue: "ignoring case" compares strings, and true is a boolean"#
    );
    assert_eq!(
        text_error("email is set ignoring case"),
        r#"1:14 InvalidValue: "ignoring case" goes only with =, !=, contains, not contains, starts with, ends with, in or not in, not with "is set""#
    );
    // Event properties are untyped: the value decides.
    assert_eq!(
        text_error("performed purchase where amount = 5 ignoring case"),
        r#"1:37 InvalidValue: "ignoring case" compares strings, and 5 is a number"#
    );
    assert_eq!(
        text_error(r#"performed purchase where day in ["x", "2024-05-01"] ignoring case"#),
        r#"1:53 InvalidValue: "ignoring case" compares strings, and 2024-05-01 is a date"#
    );
    assert_eq!(
        text_error(r#"country = "ES" ignoring"#),
        r#"1:24 Syntax: expected "case" after "ignoring" (as in: ignoring case), got the end of the condition"#
    );
    assert_eq!(
        text_error(r#"country = "ES" ignoring cases"#),
        r#"1:25 Syntax: expected "case" after "ignoring" (as in: ignoring case), got "cases""#
    );

    assert_eq!(
        tree_error(
            json!({"field": "orders", "op": "between", "value": [1, 2], "ignore_case": true})
        ),
        r#"/ignore_case InvalidValue: "ignore_case" goes only with eq, ne, contains, not_contains, starts_with, ends_with, in or not_in, not with "between""#
    );
    assert_eq!(
        tree_error(json!({"event": "purchase", "where":
            {"field": "amount", "op": "in", "value": ["a", 5], "ignore_case": true}})),
        r#"/where/ignore_case InvalidValue: "ignore_case" compares strings, and 5 is a number"#
    );
    assert_eq!(
        tree_error(json!({"field": "country", "op": "eq", "value": "ES", "ignore_case": "yes"})),
        r#"/ignore_case InvalidTree: expected true or false, got "yes""#
    );
    assert_eq!(
        tree_error(
            json!({"all": [{"field": "country", "op": "eq", "value": "ES"},
            {"field": "lead_score", "op": "eq", "value": 1, "ignore_case": true}]})
        ),
        r#"/all/1/ignore_case InvalidValue: "ignore_case" compares strings, and 1 is a number"#
    );
    // The error kind is stable for clients.
    let err = parse_text("lead_score > 5 ignoring case", &TestSchema::new()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidValue);
}

#[test]
fn folding_is_unicode_lowercase() {
    assert_eq!(fold_case("gold"), "gold");
    assert!(matches!(fold_case("gold"), std::borrow::Cow::Borrowed(_)));
    assert_eq!(fold_case("GoLD"), "gold");
    assert_eq!(fold_case("ÉCOLE"), "école");
    // A capital sigma at the end of a word becomes the final form.
    assert_eq!(fold_case("ΟΔΟΣ"), "\u{3bf}\u{3b4}\u{3bf}\u{3c2}");
    assert_eq!(fold_case("ẞ"), "ß");
    // Lowercase only: no accent stripping, no "ß" = "ss".
    assert_ne!(fold_case("École"), fold_case("Ecole"));
    assert_ne!(fold_case("STRASSE"), fold_case("straße"));
    let test = FieldTest::In(vec![
        Scalar::String("ES".into()),
        Scalar::String("Fr".into()),
    ]);
    assert_eq!(
        test.fold_case(),
        FieldTest::In(vec![
            Scalar::String("es".into()),
            Scalar::String("fr".into())
        ])
    );
}
