//! The text form's accepted spellings and its canonical printing: each case
//! gives an input and the canonical text it must print as (which must itself
//! parse back to the same tree).

use sift_lang::{Condition, FieldTest, Scalar, parse_text, to_text};

use crate::schema::{QUOTED_ID, TestSchema, VIP_ID};

/// Parses `input`, prints it, and checks the canonical text and its round trip.
fn check(input: &str, canonical: &str) {
    let schema = TestSchema::new();
    let cond = parse_text(input, &schema).unwrap_or_else(|err| panic!("{input:?}: {err}"));
    let printed = to_text(&cond, &schema);
    assert_eq!(printed, canonical, "canonical text of {input:?}");
    assert_eq!(
        parse_text(&printed, &schema),
        Ok(cond),
        "round trip of {input:?}"
    );
}

#[test]
fn empty_text_is_everyone() {
    let schema = TestSchema::new();
    assert_eq!(parse_text("", &schema), Ok(Condition::All(vec![])));
    assert_eq!(parse_text(" \n\t ", &schema), Ok(Condition::All(vec![])));
    assert_eq!(to_text(&Condition::All(vec![]), &schema), "");
}

#[test]
fn keywords_and_spacing() {
    check("email IS SET", "email is set");
    check("email   is\n  not\tset", "email is not set");
    check(
        "country Not In [\"ES\",\"FR\"]",
        "country not in [\"ES\", \"FR\"]",
    );
    check("country in []", "country in []");
    check(
        "first_name Starts With \"J\"",
        "first_name starts with \"J\"",
    );
    check("newsletter = TRUE", "newsletter = true");
}

#[test]
fn parentheses_and_precedence() {
    check("((email is set))", "email is set");
    check(
        "(email is set and phone is set) and country = \"ES\"",
        "email is set and phone is set and country = \"ES\"",
    );
    check(
        "(email is set or phone is set) or country = \"ES\"",
        "email is set or phone is set or country = \"ES\"",
    );
    check(
        "(email is set and phone is set) or country = \"ES\"",
        "email is set and phone is set or country = \"ES\"",
    );
    check(
        "email is set and (phone is set or country = \"ES\")",
        "email is set and (phone is set or country = \"ES\")",
    );
    check("not (email is set)", "not email is set");
    check("not not email is set", "not not email is set");
    check(
        "not (email is set and phone is set)",
        "not (email is set and phone is set)",
    );
}

#[test]
fn values() {
    check("lead_score >= 50.0", "lead_score >= 50");
    check("lead_score < -2.50", "lead_score < -2.5");
    check("lead_score > 1e3", "lead_score > 1000");
    check("birth_date = \"1965-01-01\"", "birth_date = 1965-01-01");
    check(
        "signup_at >= 2024-05-01",
        "signup_at >= 2024-05-01T00:00:00Z",
    );
    check(
        "signup_at < 2024-05-01T12:00:00.5+02:00",
        "signup_at < 2024-05-01T10:00:00.500Z",
    );
    check(
        "signup_at between \"2024-01-01T00:00:00Z\" and 2024-12-31",
        "signup_at between 2024-01-01T00:00:00Z and 2024-12-31T00:00:00Z",
    );
    check(
        "last_name = \"O\\\"Neil \\\\ Jr\"",
        "last_name = \"O\\\"Neil \\\\ Jr\"",
    );
    check("country = \"two\nlines\"", "country = \"two\nlines\"");
    check("last_seen_at in last 1 DAY", "last_seen_at in last 1 day");
    check(
        "birth_date after 1 years ago",
        "birth_date after 1 year ago",
    );
}

#[test]
fn events_and_sums() {
    check("performed purchase", "performed purchase");
    check(
        "performed \"page view\" in last 1 hours",
        "performed \"page view\" in last 1 hour",
    );
    check(
        "performed purchase at least 1 times",
        "performed purchase at least 1 time",
    );
    check(
        "performed purchase more than 3 time",
        "performed purchase more than 3 times",
    );
    check(
        "performed purchase fewer than 3 times",
        "performed purchase fewer than 3 times",
    );
    check(
        "performed purchase not exactly 3 times",
        "performed purchase not exactly 3 times",
    );
    check(
        "performed purchase where (amount > 5 or (coupon is set)) at most 2 times in last 7 days",
        "performed purchase where (amount > 5 or coupon is set) at most 2 times in last 7 days",
    );
    check(
        "performed purchase where not (a = 1 and b = 2)",
        "performed purchase where not (a = 1 and b = 2)",
    );
    check(
        "performed purchase where \"total\" > 5",
        "performed purchase where \"total\" > 5",
    );
    check(
        "performed purchase where day = 2024-01-01",
        "performed purchase where day = 2024-01-01",
    );
    check(
        "performed purchase where day = \"2024-01-01\"",
        "performed purchase where day = 2024-01-01",
    );
    check(
        "total purchase . amount < 10.5 in last 2 weeks",
        "total purchase.amount < 10.5 in last 2 weeks",
    );
    check(
        "total \"a.b\".\"c d\" where x = 1 != 0",
        "total \"a.b\".\"c d\" where x = 1 != 0",
    );
    check(
        "not performed login and performed purchase",
        "not performed login and performed purchase",
    );
}

#[test]
fn names_that_are_keywords() {
    // `total` and `in` are fields of the test schema: quoted, they are names.
    check("\"total\" > 5", "\"total\" > 5");
    check(
        "\"in\" = \"x\" and \"total\" < 1",
        "\"in\" = \"x\" and \"total\" < 1",
    );
    let schema = TestSchema::new();
    let cond = parse_text("\"in\" = \"x\"", &schema).unwrap();
    assert_eq!(
        cond,
        Condition::Field {
            field: "in".into(),
            test: FieldTest::Compare(sift_lang::CmpOp::Eq, Scalar::String("x".into())),
            ignore_case: false,
        }
    );
}

#[test]
fn segments() {
    check(
        "in segment \"vip CUSTOMERS\"",
        "in segment \"VIP customers\"",
    );
    check(
        "in segment \"Say \\\"hi\\\" \\\\ bye\"",
        "in segment \"Say \\\"hi\\\" \\\\ bye\"",
    );
    let schema = TestSchema::new();
    assert_eq!(
        parse_text("in segment \"VIP customers\"", &schema),
        Ok(Condition::InSegment(VIP_ID.into()))
    );
    assert_eq!(
        to_text(&Condition::InSegment(QUOTED_ID.into()), &schema),
        "in segment \"Say \\\"hi\\\" \\\\ bye\""
    );
    // An id the schema doesn't know is shown as is.
    assert_eq!(
        to_text(&Condition::InSegment("segment:gone".into()), &schema),
        "in segment \"segment:gone\""
    );
}

#[test]
fn single_child_groups_print_as_their_child() {
    let schema = TestSchema::new();
    let email = parse_text("email is set", &schema).unwrap();
    let wrapped = Condition::Not(Box::new(Condition::All(vec![Condition::Any(vec![
        email.clone(),
    ])])));
    assert_eq!(to_text(&wrapped, &schema), "not email is set");
    let any = parse_text("email is set or phone is set", &schema).unwrap();
    let nested = Condition::All(vec![Condition::All(vec![any]), email]);
    assert_eq!(
        to_text(&nested, &schema),
        "(email is set or phone is set) and email is set"
    );
}
