//! Contact pages: search and paginate all contacts; one contact with its
//! properties, system data, segments, latest events, and why it is or isn't
//! in a segment (the engine's explain).

use maud::{Markup, html};
use serde::Deserialize;
use sift_engine::{ContactView, EventView, ExplainNode, RawValue, SegmentKind, Value, Workspace};
use sift_lang::DateTime;

use super::layout::{Nav, field_labels, kind_label, plural, time, url_part};
use super::segments::{cell, contacts_table};
use super::{Signed, UiResult};
use crate::api::{Path, Query, contact_no, value_json};
use crate::error::ApiError;

const COLUMNS: &[&str] = &[
    "email",
    "first_name",
    "last_name",
    "lead_score",
    "created_at",
];
const PAGE: usize = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
}

pub async fn list(Signed(ws): Signed, Query(query): Query<ListQuery>) -> UiResult {
    let after = crate::api::parse_cursor(query.cursor.as_deref())?;
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let columns: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    let (total, fields, rows, next) = ws.read(|engine| {
        let fields = field_labels(engine);
        let (numbers, more) = engine.list_contacts(q, None, after, PAGE)?;
        let rows: Vec<(String, Vec<String>)> = numbers
            .iter()
            .filter_map(|no| engine.contact(*no))
            .map(|view| {
                (
                    view.id.clone(),
                    columns.iter().map(|c| cell(&view, c)).collect(),
                )
            })
            .collect();
        let next = if more {
            numbers.last().map(|n| crate::api::cursor(*n))
        } else {
            None
        };
        Ok::<_, ApiError>((engine.contact_count(), fields, rows, next))
    })??;
    let q_param = q.map(|q| format!("&q={}", url_part(q))).unwrap_or_default();
    let body = html! {
        div.page-head { h1 { "All contacts" } span.muted { (plural(total, "contact", "contacts")) } }
        form.toolbar method="get" role="search" {
            label.visually-hidden for="contact-search" { "Search contacts" }
            input #contact-search name="q" type="search" value=[q] placeholder="Search by id or email" autocomplete="off";
            button type="submit" { "Search" }
        }
        @if let Some(q) = q { p.muted { "Contacts whose id or email contains “" (q) "”." } }
        (contacts_table(&columns, &fields, &rows))
        nav.pager aria-label="Pages" {
            @if after.is_some() { a href={ "?" (q_param.trim_start_matches('&')) } { "First page" } }
            @if let Some(next) = &next { a href={ "?cursor=" (next) (q_param) } rel="next" { "Next page" } }
        }
    };
    Ok(super::layout::render(
        &ws,
        Nav::Contacts,
        "All contacts",
        body,
    ))
}

#[derive(Deserialize)]
pub struct ShowQuery {
    explain: Option<String>,
}

struct Explained {
    segment_name: String,
    member: bool,
    /// None for a static segment: nothing to explain but how members get in.
    tree: Option<ExplainNode>,
}

/// The explanation as the page shows it: segment name, membership, and the
/// rendered tree (none for a static segment).
type ExplainedMarkup = (String, bool, Option<Markup>);

/// Everything the contact page shows, read under one engine lock.
struct ContactPage {
    view: ContactView,
    fields: Vec<(String, String)>,
    events: Vec<EventView>,
    /// Every segment as (id, name, kind label), by name: the explain picker.
    segments: Vec<(String, String, &'static str)>,
    explained: Option<ExplainedMarkup>,
}

pub async fn show(
    Signed(ws): Signed,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> UiResult {
    let now = ws.clock().now_ms();
    let mut page =
        ws.read(|engine| read_contact_page(engine, &id, query.explain.as_deref(), now))??;
    // Memory keeps only the events live windows read: the page reads the
    // store, which holds every durable one.
    let no = page.view.no;
    page.events = ws
        .service
        .reads
        .run(move |reader| {
            reader
                .contact_events(no, RECENT_EVENTS)
                .map_err(ApiError::internal)
        })
        .await?
        .into_iter()
        .map(event_view)
        .collect();
    let score = crate::api::contact_score::score_of(&ws, id).await?;
    let chosen = query.explain.as_deref().unwrap_or_default();
    let body = contact_body(&page, chosen, super::scoring::score_card(&score));
    let title = page.view.id.clone();
    Ok(super::layout::render(&ws, Nav::Contacts, &title, body))
}

/// Step 1: reads the contact, its events, the segment list and the asked-for
/// explanation from the engine.
fn read_contact_page(
    engine: &Workspace,
    id: &str,
    explain: Option<&str>,
    now: DateTime,
) -> Result<ContactPage, ApiError> {
    let no = contact_no(engine, id)?;
    let view = engine
        .contact(no)
        .ok_or_else(|| ApiError::not_found(format!("contact {id:?} does not exist")))?;
    let fields = field_labels(engine);
    let segments = segment_choices(engine);
    let explained = explain_segment(engine, no, explain, now)?;
    // In words for people, with the condition's text as a tooltip.
    let schema_text = |node: &ExplainNode| {
        (
            super::words::node(&node.condition, engine),
            sift_lang::to_text(&node.condition, &engine.schema()),
        )
    };
    let explained = explained.map(|e| {
        (
            e.segment_name,
            e.member,
            e.tree.map(|t| render_tree(&t, &schema_text)),
        )
    });
    Ok(ContactPage {
        view,
        fields,
        events: Vec::new(),
        segments,
        explained,
    })
}

/// Events a contact page shows.
const RECENT_EVENTS: usize = 20;

/// A stored event as the page shows it.
fn event_view(record: sift_engine::EventRecord) -> EventView {
    EventView {
        event_type: record.event_type,
        at: record.at,
        properties: record
            .properties
            .into_iter()
            .filter_map(|(name, raw)| {
                let value = match raw {
                    RawValue::Bool(b) => Value::Boolean(b),
                    RawValue::Number(n) => Value::Number(n),
                    RawValue::String(s) => Value::String(s),
                    RawValue::StringList(items) => Value::StringList(items),
                    RawValue::Null | RawValue::Unsupported(_) => return None,
                };
                Some((name, value))
            })
            .collect(),
    }
}

/// Step 1a: every segment as (id, name, kind label), sorted by name.
fn segment_choices(engine: &Workspace) -> Vec<(String, String, &'static str)> {
    let mut segments: Vec<(String, String, &'static str)> = engine
        .segments()
        .iter()
        .map(|(_, s)| {
            (
                s.def.id.clone(),
                s.def.name.clone(),
                kind_label(s.def.kind, s.def.test),
            )
        })
        .collect();
    segments.sort_by_key(|s| s.1.to_lowercase());
    segments
}

/// Step 1b: why contact `no` is or isn't in the segment asked for, if any.
fn explain_segment(
    engine: &Workspace,
    no: u32,
    explain: Option<&str>,
    now: DateTime,
) -> Result<Option<Explained>, ApiError> {
    let Some(seg) = explain.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let segment = engine
        .segment(seg)
        .ok_or_else(|| ApiError::not_found(format!("segment {seg:?} does not exist")))?;
    let tree = match segment.def.kind {
        SegmentKind::Static => None,
        SegmentKind::Dynamic => Some(engine.explain(no, seg, now)?),
    };
    Ok(Some(Explained {
        segment_name: segment.def.name.clone(),
        member: segment.members.contains(no),
        tree,
    }))
}

/// What people call a contact: its name when known, else its email, else
/// its id.
fn heading_of(view: &sift_engine::ContactView) -> String {
    let text = |name: &str| {
        view.properties.iter().find_map(|(n, v)| match v {
            sift_engine::Value::String(s) if n == name && !s.trim().is_empty() => Some(s.trim()),
            _ => None,
        })
    };
    let name: Vec<&str> = ["first_name", "last_name"]
        .into_iter()
        .filter_map(text)
        .collect();
    if !name.is_empty() {
        return name.join(" ");
    }
    text("email").map_or_else(|| view.id.clone(), str::to_string)
}

/// Step 2: the page body, card by card.
fn contact_body(page: &ContactPage, chosen: &str, score: Markup) -> Markup {
    let view = &page.view;
    html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/contacts" { "All contacts" } " / " }
        div.page-head {
            div {
                h1 { (heading_of(view)) }
                @if heading_of(view) != view.id { p.muted #contact-id { "Contact id " code { (view.id) } } }
            }
            @if view.anonymous { span.badge { "Anonymous" } }
        }
        div.cards {
            (properties_card(view, &page.fields))
            (system_card(view))
            (segments_card(view))
        }
        (score)
        (why_card(view, &page.segments, chosen, page.explained.as_ref()))
        (events_card(&page.events))
    }
}

/// The label of field `name`, or the name itself for a field without one.
fn field_label(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map_or(name.to_string(), |(_, l)| l.clone())
}

/// The contact's properties, labelled, with the field name as a tooltip.
fn properties_card(view: &ContactView, fields: &[(String, String)]) -> Markup {
    html! {
        section.card {
            h2 { "Properties" }
            @if view.properties.is_empty() { p.muted { "No properties yet." } }
            dl.props #properties {
                @for (name, value) in &view.properties {
                    dt title=(name) { (field_label(fields, name)) }
                    dd { (value_markup(value)) }
                }
            }
        }
    }
}

/// The data Sift keeps itself: lead score, timestamps, anonymity.
fn system_card(view: &ContactView) -> Markup {
    html! {
        section.card {
            h2 { "System data" }
            dl.props #system {
                dt { "Lead score" } dd #lead-score { (super::scoring::score_text(view.lead_score)) }
                dt { "Created" } dd { (time(view.created_at)) }
                dt { "Updated" } dd { (time(view.updated_at)) }
                dt { "Last seen" } dd { @match view.last_seen_at { Some(at) => (time(at)), None => span.muted { "never" } } }
                dt { "Anonymous" } dd { (if view.anonymous { "yes" } else { "no" }) }
            }
        }
    }
}

/// The segments the contact is in, each a link.
fn segments_card(view: &ContactView) -> Markup {
    html! {
        section.card {
            h2 { "Segments" }
            @if view.segments.is_empty() { p.muted #no-segments { "In no segment." } }
            ul #contact-segments {
                @for (sid, name) in &view.segments {
                    li { a href={ "/ui/segments/" (url_part(sid)) } { (name) } }
                }
            }
        }
    }
}

/// The segment picker and, once one is picked, the verdict and its tree.
fn why_card(
    view: &ContactView,
    segments: &[(String, String, &'static str)],
    chosen: &str,
    explained: Option<&ExplainedMarkup>,
) -> Markup {
    html! {
        section.card #why {
            h2 { "Why is / isn’t this contact in a segment?" }
            form.inline method="get" {
                label for="explain-segment" { "Segment" }
                select #explain-segment name="explain" {
                    @for (sid, name, kind) in segments {
                        option value=(sid) selected[sid == chosen] { (name) " (" (kind) ")" }
                    }
                }
                button type="submit" { "Explain" }
            }
            @if let Some((name, member, tree)) = explained {
                div #explain data-member=(member) {
                    p.verdict {
                        strong { (heading_of(view)) }
                        @if *member { " is in " } @else { " is not in " }
                        strong { (name) }
                        @match (tree.is_some(), member) {
                            (false, true) => ": it is a static segment and the contact was added to it.",
                            (false, false) => ": it is a static segment and the contact was not added to it.",
                            (true, true) => ": every condition below holds.",
                            (true, false) => ". The conditions marked ✗ do not hold:",
                        }
                    }
                    @if let Some(tree) = tree { ul.explain { (tree) } }
                }
            }
        }
    }
}

/// The contact's latest events with their properties.
fn events_card(events: &[EventView]) -> Markup {
    html! {
        section.card {
            h2 { "Recent events" }
            @if events.is_empty() {
                p.muted { "No events yet." }
            } @else {
                div.table-wrap {
                    table #events {
                        thead { tr { th { "Event" } th { "At" } th { "Properties" } } }
                        tbody {
                            @for event in events {
                                tr {
                                    td { (event.event_type) }
                                    td { (time(event.at)) }
                                    td.mono {
                                        @for (i, (name, value)) in event.properties.iter().enumerate() {
                                            @if i > 0 { ", " }
                                            (name) "=" (value_text(value))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A property as people read it: instants relative (the exact one on
/// hover), dates spelled out, whole numbers grouped by thousands.
fn value_markup(value: &Value) -> Markup {
    match value {
        Value::DateTime(ms) => time(*ms),
        Value::Date(days) => {
            let iso = sift_lang::format_date(*days);
            html! { time datetime=(iso) data-date=(iso) title=(iso) { (readable_date(&iso)) } }
        }
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
            let grouped = super::layout::count(n.abs() as u64);
            html! { (if *n < 0.0 { format!("-{grouped}") } else { grouped }) }
        }
        Value::Boolean(b) => html! { (if *b { "Yes" } else { "No" }) },
        other => html! { (value_text(other)) },
    }
}

/// `1980-01-05` → `5 Jan 1980` (day, month, year: unambiguous in any
/// locale); anything else unchanged.
fn readable_date(iso: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = iso.splitn(3, '-');
    let (Some(year), Some(month), Some(day)) = (parts.next(), parts.next(), parts.next()) else {
        return iso.to_string();
    };
    match (month.parse::<usize>(), day.parse::<u32>()) {
        (Ok(m @ 1..=12), Ok(d)) => format!("{d} {} {year}", MONTHS[m - 1]),
        _ => iso.to_string(),
    }
}

fn value_text(value: &Value) -> String {
    match value_json(value) {
        serde_json::Value::String(s) => s,
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The explanation as nested items, each marked with whether it holds and
/// what the contact has.
fn render_tree(node: &ExplainNode, words: &dyn Fn(&ExplainNode) -> (Markup, String)) -> Markup {
    let leaf = node.children.is_empty();
    html! {
        li data-result=(node.result) class=(if node.result { "holds" } else { "fails" }) {
            span.mark aria-hidden="true" { (if node.result { "✓" } else { "✗" }) }
            " "
            @if leaf {
                @let (described, text) = words(node);
                span.condition title=(text) { (described) }
                " — "
                @match &node.value {
                    Some(value) => span.muted { "has " strong { (value_text(value)) } },
                    None => span.muted { "no value" },
                }
            } @else {
                @match &node.condition {
                    sift_lang::Condition::Any(_) => "at least one of:",
                    sift_lang::Condition::Not(_) => "not:",
                    _ => "all of:",
                }
            }
            span.visually-hidden { (if node.result { " (holds)" } else { " (does not hold)" }) }
            @if let Some(at) = node.next_change { " " span.muted { "· will change on its own " (time(at)) } }
            @if !leaf { ul { @for child in &node.children { (render_tree(child, words)) } } }
        }
    }
}
