//! `ignoring case` end to end in the engine, on hand-made cases: saved
//! segments kept incrementally, previews (bulk evaluation), explain, event
//! filters and a restart from the store. The randomised check is in the two
//! differential tests, whose generators put `ignoring case` on string tests.

use sift_engine::{
    ContactInput, EventInput, MemoryStore, RawValue, SegmentInput, SegmentKind, Store, Workspace,
    Write,
};
use sift_lang::parse_text;

const NOW: i64 = 1_780_000_000_000;

fn keep(store: &mut MemoryStore, write: &Write) {
    store.commit(&[&write.records]).expect("memory store");
}

fn contact(id: &str, properties: &[(&str, RawValue)]) -> ContactInput {
    ContactInput {
        id: id.into(),
        properties: properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        anonymous: None,
    }
}

fn text(s: &str) -> RawValue {
    RawValue::String(s.into())
}

fn upsert(ws: &mut Workspace, store: &mut MemoryStore, items: &[ContactInput]) {
    let write = ws.upsert_contacts(items, NOW).expect("upsert");
    keep(store, &write);
}

fn segment(ws: &mut Workspace, store: &mut MemoryStore, id: &str, condition: &str) {
    let condition = parse_text(condition, &ws.schema()).expect("a valid condition");
    let write = ws
        .create_segment(
            SegmentInput {
                id: id.into(),
                name: id.into(),
                description: String::new(),
                kind: SegmentKind::Dynamic,
                condition: Some(condition),
                test: false,
            },
            NOW,
        )
        .expect("segment created");
    keep(store, &write);
}

fn members(ws: &Workspace, id: &str) -> Vec<String> {
    let mut out: Vec<String> = ws
        .segment(id)
        .expect("segment")
        .members
        .bitmap()
        .iter()
        .map(|no| ws.contacts().id(no).to_string())
        .collect();
    out.sort();
    out
}

fn preview(ws: &Workspace, condition: &str) -> Vec<String> {
    let condition = parse_text(condition, &ws.schema()).expect("a valid condition");
    let mut out: Vec<String> = ws
        .preview(&condition, NOW)
        .expect("preview")
        .iter()
        .map(|no| ws.contacts().id(no).to_string())
        .collect();
    out.sort();
    out
}

fn tiers() -> Vec<ContactInput> {
    vec![
        contact("c1", &[("tier", text("Gold")), ("country", text("ES"))]),
        contact("c2", &[("tier", text("GOLD")), ("country", text("es"))]),
        contact("c3", &[("tier", text("gold")), ("country", text("Fr"))]),
        contact("c4", &[("tier", text("silver")), ("country", text("PT"))]),
        contact("c5", &[("country", text("ÉS"))]),
    ]
}

#[test]
fn string_tests_ignoring_case_are_kept_incrementally() {
    let mut ws = Workspace::new();
    let mut store = MemoryStore::default();
    upsert(&mut ws, &mut store, &tiers());
    let cases = [
        (
            "gold",
            r#"tier = "gold" ignoring case"#,
            vec!["c1", "c2", "c3"],
        ),
        ("exact", r#"tier = "gold""#, vec!["c3"]),
        (
            "not_gold",
            r#"tier != "GOLD" ignoring case"#,
            vec!["c4", "c5"],
        ),
        (
            "iberia",
            r#"country in ["es", "PT"] ignoring case"#,
            vec!["c1", "c2", "c4"],
        ),
        (
            "elsewhere",
            r#"country not in ["ES"] ignoring case"#,
            vec!["c3", "c4", "c5"],
        ),
        (
            "old",
            r#"tier starts with "GO" ignoring case"#,
            vec!["c1", "c2", "c3"],
        ),
        (
            "ld",
            r#"tier ends with "LD" ignoring case"#,
            vec!["c1", "c2", "c3"],
        ),
        (
            "ol",
            r#"tier contains "Ol" ignoring case"#,
            vec!["c1", "c2", "c3"],
        ),
        (
            "no_ol",
            r#"tier not contains "OL" ignoring case"#,
            vec!["c4", "c5"],
        ),
        // Unicode lowercase: "ÉS" folds to "és", not to "es".
        ("accent", r#"country = "és" ignoring case"#, vec!["c5"]),
    ];
    for (id, condition, expected) in &cases {
        segment(&mut ws, &mut store, id, condition);
        assert_eq!(members(&ws, id), *expected, "{condition}");
        assert_eq!(preview(&ws, condition), *expected, "preview of {condition}");
    }

    // A change of case only leaves the folded tests as they were; a change
    // of value moves the contact in and out.
    upsert(
        &mut ws,
        &mut store,
        &[contact("c4", &[("tier", text("GoLd"))])],
    );
    upsert(
        &mut ws,
        &mut store,
        &[contact("c1", &[("tier", text("gOLD"))])],
    );
    assert_eq!(members(&ws, "gold"), ["c1", "c2", "c3", "c4"]);
    assert_eq!(members(&ws, "exact"), ["c3"]);
    assert_eq!(members(&ws, "not_gold"), ["c5"]);
    upsert(
        &mut ws,
        &mut store,
        &[contact("c3", &[("tier", RawValue::Null)])],
    );
    assert_eq!(members(&ws, "gold"), ["c1", "c2", "c4"]);
    assert_eq!(members(&ws, "exact"), Vec::<String>::new());
    assert_eq!(members(&ws, "not_gold"), ["c3", "c5"]);

    // Explain answers the same, node by node.
    let no = ws.lookup("c4").expect("c4");
    assert!(ws.explain(no, "gold", NOW).expect("explain").result);
    assert!(!ws.explain(no, "exact", NOW).expect("explain").result);

    // A restart rebuilds the same memberships from the stored conditions.
    let restored = store.load().expect("load");
    for (id, _, _) in &cases {
        assert_eq!(
            members(&restored, id),
            members(&ws, id),
            "{id} after restart"
        );
    }
}

#[test]
fn list_fields_and_event_filters_ignore_case() {
    let mut ws = Workspace::new();
    let mut store = MemoryStore::default();
    let list = |items: &[&str]| RawValue::StringList(items.iter().map(|s| s.to_string()).collect());
    upsert(
        &mut ws,
        &mut store,
        &[
            contact("a", &[("interests", list(&["Shoes", "hats"]))]),
            contact("b", &[("interests", list(&["SHOES"]))]),
            contact("c", &[("interests", list(&["shoe"]))]),
            contact("d", &[]),
        ],
    );
    segment(
        &mut ws,
        &mut store,
        "shoes",
        r#"interests contains "shoes" ignoring case"#,
    );
    segment(
        &mut ws,
        &mut store,
        "no_shoes",
        r#"interests not contains "sHoEs" ignoring case"#,
    );
    assert_eq!(members(&ws, "shoes"), ["a", "b"]);
    assert_eq!(members(&ws, "no_shoes"), ["c", "d"]);
    assert_eq!(
        preview(&ws, r#"interests contains "HATS" ignoring case"#),
        ["a"]
    );
    upsert(
        &mut ws,
        &mut store,
        &[contact("c", &[("interests", list(&["sHoes"]))])],
    );
    assert_eq!(members(&ws, "shoes"), ["a", "b", "c"]);
    assert_eq!(members(&ws, "no_shoes"), ["d"]);

    let purchase = |who: &str, category: &str| EventInput {
        id: None,
        contact_id: who.into(),
        event_type: "purchase".into(),
        at: Some(NOW),
        properties: vec![("category".into(), text(category))],
        properties_json: format!("{{\"category\":\"{category}\"}}"),
        anonymous: None,
    };
    segment(
        &mut ws,
        &mut store,
        "bought_shoes",
        r#"performed purchase where category = "SHOES" ignoring case"#,
    );
    segment(
        &mut ws,
        &mut store,
        "bought_exact",
        r#"performed purchase where category = "SHOES""#,
    );
    let write = ws
        .ingest_events(&[purchase("a", "Shoes"), purchase("d", "hats")], NOW)
        .expect("events");
    keep(&mut store, &write);
    assert_eq!(members(&ws, "bought_shoes"), ["a"]);
    assert_eq!(members(&ws, "bought_exact"), Vec::<String>::new());
    let write = ws
        .ingest_events(&[purchase("d", "shoes")], NOW)
        .expect("events");
    keep(&mut store, &write);
    assert_eq!(members(&ws, "bought_shoes"), ["a", "d"]);
    assert_eq!(
        preview(
            &ws,
            r#"performed purchase where category starts with "sho" ignoring case"#
        ),
        ["a", "d"]
    );
    assert_eq!(
        preview(
            &ws,
            r#"performed purchase where category starts with "Sho""#
        ),
        ["a"]
    );
    let restored = store.load().expect("load");
    assert_eq!(members(&restored, "bought_shoes"), ["a", "d"]);
    assert_eq!(members(&restored, "shoes"), ["a", "b", "c"]);
}

#[test]
fn unknown_names_get_a_guess_from_the_workspace() {
    let mut ws = Workspace::new();
    let mut store = MemoryStore::default();
    upsert(&mut ws, &mut store, &tiers());
    segment(&mut ws, &mut store, "VIP customers", "tier is set");
    let err = parse_text(r#"tierr = "gold""#, &ws.schema()).unwrap_err();
    assert_eq!(err.did_you_mean.as_deref(), Some("tier"));
    let err = parse_text(r#"in segment "vip customer""#, &ws.schema()).unwrap_err();
    assert_eq!(err.did_you_mean.as_deref(), Some("VIP customers"));
}
