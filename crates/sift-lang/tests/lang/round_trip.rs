//! Property tests: random checked trees survive text → tree and JSON → tree.
//!
//! The generators build trees in canonical shape, the only shape the parsers
//! produce: groups have at least two children, an `all` is never directly
//! inside an `all` (nor an `any` inside an `any`), numbers are finite, and
//! event-property strings never look like dates (the parsers read those as
//! dates, see the crate docs). Normalising arbitrary trees instead would test
//! the normaliser more than the parsers.

use proptest::prelude::*;
use sift_lang::{
    CmpOp, Condition, CountTest, Duration, DurationUnit, FieldTest, FieldType, MAX_DEPTH,
    MAX_NODES, Scalar, from_json, parse_text, to_json, to_text,
};

use crate::schema::{QUOTED_ID, TestSchema, VIP_ID};

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Lte),
        Just(CmpOp::Gt),
        Just(CmpOp::Gte),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    let unit = prop_oneof![
        Just(DurationUnit::Minutes),
        Just(DurationUnit::Hours),
        Just(DurationUnit::Days),
        Just(DurationUnit::Weeks),
        Just(DurationUnit::Months),
        Just(DurationUnit::Years),
    ];
    (prop_oneof![0..400u32, any::<u32>()], unit)
        .prop_map(|(amount, unit)| Duration { amount, unit })
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<i32>().prop_map(f64::from),
        -1e6..1e6f64,
        any::<f64>().prop_filter("finite", |n| n.is_finite()),
    ]
}

/// Any text, including quotes, backslashes, newlines and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.\"\\\\\n\u{e9}\u{1F600}-]{0,10}"
}

/// Text that can't be read as a date or datetime (it has no `-`).
fn plain_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.\"\\\\\n\u{e9}]{0,10}"
}

/// Names: usually plain words, sometimes keywords or words that need quotes.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_]{0,8}",
        1 => prop_oneof![Just("not"), Just("in"), Just("total"), Just("where"), Just("AND"), Just("true")]
            .prop_map(str::to_string),
        1 => "[a-zA-Z0-9 .\"-]{1,8}",
    ]
}

/// Days of years 0001..=9999, the range the text form can write.
fn date() -> impl Strategy<Value = i32> {
    -719_162..=2_932_896i32
}

fn datetime() -> impl Strategy<Value = i64> {
    prop_oneof![
        -62_135_596_800_000..=253_402_300_799_999i64,
        (-719_162..=2_932_896i64).prop_map(|days| days * 86_400_000),
    ]
}

fn scalar_of(ty: FieldType) -> BoxedStrategy<Scalar> {
    match ty {
        FieldType::String | FieldType::StringList => text().prop_map(Scalar::String).boxed(),
        FieldType::Number => number().prop_map(Scalar::Number).boxed(),
        FieldType::Boolean => any::<bool>().prop_map(Scalar::Boolean).boxed(),
        FieldType::Date => date().prop_map(Scalar::Date).boxed(),
        FieldType::DateTime => datetime().prop_map(Scalar::DateTime).boxed(),
    }
}

/// An event property's value: any literal type, strings without date shapes.
fn property_scalar() -> BoxedStrategy<Scalar> {
    prop_oneof![
        plain_text().prop_map(Scalar::String),
        number().prop_map(Scalar::Number),
        any::<bool>().prop_map(Scalar::Boolean),
        date().prop_map(Scalar::Date),
        datetime().prop_map(Scalar::DateTime),
    ]
    .boxed()
}

/// A test with values drawn from `value`, among the operators in `ops`.
fn test_with(ops: Vec<&'static str>, value: BoxedStrategy<Scalar>) -> BoxedStrategy<FieldTest> {
    let list = prop::collection::vec(value.clone(), 0..4);
    let strategies: Vec<BoxedStrategy<FieldTest>> = ops
        .into_iter()
        .map(|op| match op {
            "cmp" => (cmp_op(), value.clone())
                .prop_map(|(op, v)| FieldTest::Compare(op, v))
                .boxed(),
            "eq_ne" => (prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne)], value.clone())
                .prop_map(|(op, v)| FieldTest::Compare(op, v))
                .boxed(),
            "contains" => text().prop_map(FieldTest::Contains).boxed(),
            "not_contains" => text().prop_map(FieldTest::NotContains).boxed(),
            "starts_with" => text().prop_map(FieldTest::StartsWith).boxed(),
            "ends_with" => text().prop_map(FieldTest::EndsWith).boxed(),
            "in" => list.clone().prop_map(FieldTest::In).boxed(),
            "not_in" => list.clone().prop_map(FieldTest::NotIn).boxed(),
            "between" => (value.clone(), value.clone())
                .prop_map(|(a, b)| FieldTest::Between(a, b))
                .boxed(),
            "is_set" => Just(FieldTest::IsSet).boxed(),
            "is_not_set" => Just(FieldTest::IsNotSet).boxed(),
            "in_last" => duration().prop_map(FieldTest::InLast).boxed(),
            "before_ago" => duration().prop_map(FieldTest::BeforeAgo).boxed(),
            "after_ago" => duration().prop_map(FieldTest::AfterAgo).boxed(),
            other => unreachable!("{other}"),
        })
        .collect();
    proptest::strategy::Union::new(strategies).boxed()
}

/// The operators docs/conditions.md gives each field type.
fn ops_for(ty: FieldType) -> Vec<&'static str> {
    let set = ["is_set", "is_not_set"];
    let mut ops: Vec<&'static str> = match ty {
        FieldType::String => vec![
            "cmp",
            "contains",
            "not_contains",
            "starts_with",
            "ends_with",
            "in",
            "not_in",
            "between",
        ],
        FieldType::Number => vec!["cmp", "in", "not_in", "between"],
        FieldType::Boolean => vec!["eq_ne", "in", "not_in"],
        FieldType::Date | FieldType::DateTime => {
            vec![
                "cmp",
                "in",
                "not_in",
                "between",
                "in_last",
                "before_ago",
                "after_ago",
            ]
        }
        FieldType::StringList => vec!["contains", "not_contains"],
    };
    ops.extend(set);
    ops
}

fn contact_field() -> BoxedStrategy<Condition> {
    let fields: Vec<BoxedStrategy<Condition>> = TestSchema::new()
        .fields
        .into_iter()
        .map(|(field, ty)| {
            (test_with(ops_for(ty), scalar_of(ty)), any::<bool>())
                .prop_map(move |(test, fold)| Condition::Field {
                    field: field.clone(),
                    ignore_case: fold && test.can_ignore_case(),
                    test,
                })
                .boxed()
        })
        .collect();
    proptest::strategy::Union::new(fields).boxed()
}

fn property_field() -> BoxedStrategy<Condition> {
    let all_ops = vec![
        "cmp",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "in",
        "not_in",
        "between",
        "is_set",
        "is_not_set",
        "in_last",
        "before_ago",
        "after_ago",
    ];
    (name(), test_with(all_ops, property_scalar()), any::<bool>())
        .prop_map(|(field, test, fold)| Condition::Field {
            field,
            ignore_case: fold && test.can_ignore_case(),
            test,
        })
        .boxed()
}

/// `all`/`any` in canonical shape: same-kind children are spliced in.
fn group(is_all: bool, children: Vec<Condition>) -> Condition {
    let mut flat = Vec::new();
    for child in children {
        match child {
            Condition::All(inner) if is_all => flat.extend(inner),
            Condition::Any(inner) if !is_all => flat.extend(inner),
            other => flat.push(other),
        }
    }
    if is_all {
        Condition::All(flat)
    } else {
        Condition::Any(flat)
    }
}

/// Nests leaves under `all`, `any` and `not`.
fn nest(leaf: BoxedStrategy<Condition>, depth: u32) -> BoxedStrategy<Condition> {
    leaf.prop_recursive(depth, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|c| group(true, c)),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|c| group(false, c)),
            inner.prop_map(|c| Condition::Not(Box::new(c))),
        ]
    })
    .boxed()
}

fn filter() -> impl Strategy<Value = Option<Box<Condition>>> {
    prop::option::of(nest(property_field(), 2).prop_map(Box::new))
}

fn event() -> BoxedStrategy<Condition> {
    let count = prop::option::of(
        (cmp_op(), prop_oneof![0..5u64, any::<u64>()])
            .prop_map(|(op, value)| CountTest { op, value }),
    );
    (name(), filter(), count, prop::option::of(duration()))
        .prop_map(|(event_type, filter, count, in_last)| Condition::Event {
            event_type,
            filter,
            count,
            in_last,
        })
        .boxed()
}

fn event_sum() -> BoxedStrategy<Condition> {
    (
        name(),
        name(),
        filter(),
        cmp_op(),
        number(),
        prop::option::of(duration()),
    )
        .prop_map(
            |(event_type, property, filter, op, value, in_last)| Condition::EventSum {
                event_type,
                property,
                filter,
                op,
                value,
                in_last,
            },
        )
        .boxed()
}

fn condition() -> impl Strategy<Value = Condition> {
    let segment = prop_oneof![Just(VIP_ID), Just(QUOTED_ID)]
        .prop_map(|id| Condition::InSegment(id.to_string()));
    let leaf =
        prop_oneof![4 => contact_field(), 2 => event(), 1 => event_sum(), 1 => segment].boxed();
    nest(leaf, 4).prop_filter("within limits", |c| {
        c.depth() <= MAX_DEPTH && c.node_count() <= MAX_NODES
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn text_round_trip(cond in condition()) {
        let schema = TestSchema::new();
        let text = to_text(&cond, &schema);
        let parsed = parse_text(&text, &schema);
        prop_assert_eq!(parsed.as_ref(), Ok(&cond), "text: {}", text);
        prop_assert_eq!(to_text(&cond, &schema), text);
    }

    #[test]
    fn json_round_trip(cond in condition()) {
        let schema = TestSchema::new();
        let tree = to_json(&cond);
        prop_assert_eq!(from_json(&tree, &schema), Ok(cond.clone()));
        // Through serialized JSON too: numbers must survive being printed.
        let reread: serde_json::Value = serde_json::from_str(&tree.to_string()).unwrap();
        prop_assert_eq!(from_json(&reread, &schema), Ok(cond));
    }

    /// Sequences of the grammar's own words, so that rare shapes (`ignoring
    /// case` after every kind of operand, `where` followed by `and`) come up
    /// far more often than in random characters: parsing returns, and
    /// anything accepted prints to text that parses back to it.
    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(vec![
        "country", "lead_score", "interests", "category", "amount", "=", "!=", ">", "<",
        "\"Gold\"", "\"es\"", "5", "2024-01-01", "true", "ignoring", "case", "and", "or",
        "not", "(", ")", "[", "]", ",", "in", "contains", "starts", "ends", "with", "between",
        "performed", "purchase", "where", "at", "least", "2", "times", "last", "7", "days",
        "is", "set",
    ]), 0..16)) {
        let text = tokens.join(" ");
        let schema = TestSchema::new();
        if let Ok(cond) = parse_text(&text, &schema) {
            let printed = to_text(&cond, &schema);
            prop_assert_eq!(parse_text(&printed, &schema), Ok(cond.clone()), "printed: {}", printed);
            prop_assert_eq!(from_json(&to_json(&cond), &schema), Ok(cond));
        }
    }

    /// Whatever the input, parsing returns (no panic) and anything accepted
    /// prints to a fixpoint.
    #[test]
    fn arbitrary_text_never_panics(text in "[a-z \"()=<>!\\[\\],.0-9\\-:TZ]{0,40}") {
        let schema = TestSchema::new();
        if let Ok(cond) = parse_text(&text, &schema) {
            let printed = to_text(&cond, &schema);
            prop_assert_eq!(parse_text(&printed, &schema), Ok(cond), "printed: {}", printed);
        }
    }
}
