//! Segment pages: the list, one segment, its members, its usages, the
//! create/edit form (driven by segment_form.js); the Facebook export form is
//! `facebook.rs`.

use axum::response::IntoResponse;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use sift_engine::{SegmentKind, UsageKind, Workspace};

use super::layout::{
    Nav, Page, count, data_json, field_labels, kind_label, plural, segment_crumbs, time, url_part,
};
use super::{Signed, UiResult};
use crate::api::{Path, Query, fields::field_json};
use crate::error::ApiError;
use crate::state::WorkspaceHandle;

struct Row {
    id: String,
    name: String,
    description: String,
    kind: &'static str,
    size: u64,
    /// Members with `anonymous: true`.
    anonymous: u64,
    last_change: i64,
}

/// A definition edit or a membership change, whichever is later.
fn last_change(ws: &WorkspaceHandle, id: &str, updated_at: i64) -> Result<i64, ApiError> {
    let reader = ws.reader()?;
    let changed = reader.last_change_at(id).map_err(ApiError::internal)?;
    Ok(changed.map_or(updated_at, |at| at.max(updated_at)))
}

pub async fn list(Signed(ws): Signed) -> UiResult {
    let mut rows: Vec<Row> = ws.read(|engine| {
        engine
            .segments()
            .iter()
            .map(|(_, s)| Row {
                id: s.def.id.clone(),
                name: s.def.name.clone(),
                description: s.def.description.clone(),
                kind: kind_label(s.def.kind, s.def.test),
                size: s.members.len(),
                anonymous: s.members.intersection_len(engine.contacts().anonymous()),
                last_change: s.def.updated_at,
            })
            .collect()
    })?;
    for row in &mut rows {
        row.last_change = last_change(&ws, &row.id, row.last_change)?;
    }
    rows.sort_by_key(|r| r.name.to_lowercase());
    let body = html! {
        div.page-head {
            h1 { "Segments" }
            a.button.primary href="/ui/segments/new" { "Create new segment" }
        }
        @if rows.is_empty() {
            div #empty-state .empty {
                h2 { "No segments yet" }
                p { "A segment groups the contacts that meet conditions you choose — “subscribed to the newsletter and interested in shoes” — and stays exact as contacts change." }
                a.button.primary href="/ui/segments/new" { "Create your first segment" }
            }
        } @else {
            div.toolbar {
                label.visually-hidden for="segment-search" { "Search segments" }
                input #segment-search type="search" placeholder="Search segments by name" autocomplete="off";
                span.muted #segment-count aria-live="polite" { (plural(rows.len() as u64, "segment", "segments")) }
            }
            div.table-wrap {
                table #segments data-live="/ui/live/sizes" {
                    thead { tr {
                        th aria-sort="ascending" { button.sort type="button" data-sort="name" { "Name" } }
                        th { "Type" }
                        th.wide { "Description" }
                        th.num { button.sort type="button" data-sort="size" { "Size" } }
                        th.num { "Known" }
                        th.num { "Anonymous" }
                        th { button.sort type="button" data-sort="updated" { "Last change" } }
                    } }
                    tbody {
                        @for row in &rows {
                            tr data-segment-id=(row.id) data-name=(row.name.to_lowercase()) data-size=(row.size) data-updated=(row.last_change) {
                                td.name { a href={ "/ui/segments/" (url_part(&row.id)) } { (row.name) } }
                                td.type { span.badge { (row.kind) } }
                                td.description.wide { (row.description) }
                                td.size.num { (count(row.size)) }
                                td.size-known.num { (count(row.size - row.anonymous)) }
                                td.size-anonymous.num { (count(row.anonymous)) }
                                td.updated { (time(row.last_change)) }
                            }
                        }
                    }
                }
                p #no-match .muted hidden { "No segment name matches your search." }
                p #segments-added .notice role="status" hidden { "New segments were created since this page loaded. " a href="/ui/segments" { "Reload the list" } }
            }
        }
    };
    Ok(super::layout::render(&ws, Nav::Segments, "Segments", body))
}

#[derive(Deserialize)]
pub struct ShowQuery {
    entered: Option<u64>,
    exited: Option<u64>,
    /// Stored events the save read from disk (`history_events_read`).
    history: Option<u64>,
    /// The revision a restore brought back (history.js).
    restored: Option<u64>,
    /// Contacts a hand add or remove changed (static_members.js).
    added: Option<u64>,
    removed: Option<u64>,
}

pub async fn show(
    Signed(ws): Signed,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ShowQuery>,
) -> UiResult {
    let (name, description, kind, (size, anonymous), words, next_seq, updated_at) =
        ws.read(|engine| {
            let s = segment(engine, &id)?;
            Ok::<_, ApiError>((
                s.def.name.clone(),
                s.def.description.clone(),
                kind_label(s.def.kind, s.def.test),
                (
                    s.members.len(),
                    s.members.intersection_len(engine.contacts().anonymous()),
                ),
                s.def
                    .condition
                    .as_ref()
                    .map(|c| super::words::describe(c, engine)),
                engine.next_seq(),
                s.def.updated_at,
            ))
        })??;
    let recent = {
        let reader = ws.reader()?;
        reader.recent_changes(&id, 20).map_err(ApiError::internal)?
    };
    let recent: Vec<(u64, String, &'static str, &'static str, i64)> = ws.read(|engine| {
        recent
            .iter()
            .map(|c| {
                (
                    c.seq,
                    engine.contacts().id(c.no).to_string(),
                    c.kind.as_str(),
                    c.cause.as_str(),
                    c.at,
                )
            })
            .collect()
    })?;
    let seg = url_part(&id);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/segments" { "Segments" } " / " }
        div.page-head {
            div {
                h1 { (name) }
                p.muted { span.badge { (kind) } " · last edited " (time(updated_at)) }
            }
            (more_menu(&seg, kind == "Dynamic"))
        }
        @if let (Some(entered), Some(exited)) = (query.entered, query.exited) {
            p #saved .notice role="status" {
                @if let Some(revision) = query.restored { "Revision " (revision) " restored. " } @else { "Saved. " }
                (count(entered)) " entered, " (count(exited)) " exited."
                @if let Some(read) = query.history.filter(|n| *n > 0) {
                    " Counted from " (count(read)) " stored events on disk."
                }
            }
        }
        @if let Some(notice) = super::static_members::notice(query.added, query.removed) { (notice) }
        @if !description.is_empty() { p.description { (description) } }
        div.cards {
            section.card.stat {
                h2 { "Contacts" }
                p.big { span #segment-size data-segment-id=(id) { (count(size)) } }
                p.muted #segment-split {
                    span #segment-size-known { (count(size - anonymous)) } " known · "
                    span #segment-size-anonymous { (count(anonymous)) } " anonymous"
                }
                a href={ "/ui/segments/" (seg) "/contacts" } { "See contacts" }
            }
            section.card #definition-card {
                h2 { "Definition" }
                div #definition {
                    @match &words {
                        Some(words) => (words),
                        None => p { "A static segment: contacts are added by hand below, removed from its list of contacts, and added or removed by workflows." },
                    }
                }
            }
        }
        section.card #size-history {
            div.card-head {
                h2 { "Size over time" }
                div #chart-ranges role="group" aria-label="Range" {
                    button type="button" data-step="1h" data-steps="24" aria-pressed="false" { "24 hours" }
                    button type="button" data-step="1d" data-steps="7" aria-pressed="false" { "7 days" }
                    button type="button" data-step="1d" data-steps="30" aria-pressed="true" { "30 days" }
                    button type="button" data-step="1d" data-steps="90" aria-pressed="false" { "90 days" }
                }
            }
            figure #size-chart data-segment-id=(id) {}
            p #chart-tip .muted role="status" aria-live="polite" {}
            p.legend.muted {
                span.key.key-size aria-hidden="true" {} " contacts "
                span.key.key-entered aria-hidden="true" {} " entered "
                span.key.key-exited aria-hidden="true" {} " exited · "
                a href={ "/ui/segments/" (seg) "/history" } { "See history" }
            }
        }
        section.card {
            h2 { "Recent entries and exits" span.live-dot title="Live" aria-hidden="true" {} }
            ul #changes .changes data-live={ "/ui/live/segments/" (seg) "?from=" (next_seq) } aria-live="polite" {
                @for (seq, contact, change, cause, at) in &recent {
                    (change_item(*seq, contact, change, cause, *at))
                }
            }
            @if recent.is_empty() { p #no-changes .muted { "No entries or exits yet." } }
        }
        @if kind != "Dynamic" { (super::static_members::add_card(&id, &name)) }
    };
    let page = Page {
        ws: &ws,
        nav: Nav::Segments,
        title: &name,
        css: if kind == "Dynamic" {
            &[]
        } else {
            &["/ui/assets/static_members.css"]
        },
        scripts: if kind == "Dynamic" {
            &["/ui/assets/history.js"]
        } else {
            &["/ui/assets/history.js", "/ui/assets/static_members.js"]
        },
        modules: &[],
    };
    Ok(page.render(body).into_response())
}

/// One line of the change list; app.js renders live ones the same way.
fn change_item(seq: u64, contact: &str, change: &str, cause: &str, at: i64) -> Markup {
    html! {
        li data-seq=(seq) class=(change) {
            a href={ "/ui/contacts/" (url_part(contact)) } { (contact) }
            " " strong { (change) } " " span.muted { "(" (cause.replace('_', " ")) ") " (time(at)) }
        }
    }
}

fn more_menu(seg: &str, dynamic: bool) -> Markup {
    html! {
        div.menu {
            button type="button" #more-button aria-haspopup="true" aria-expanded="false" aria-controls="more-menu" { "More" span aria-hidden="true" { " ▾" } }
            div #more-menu role="menu" hidden {
                a role="menuitem" href={ "/ui/segments/" (seg) "/edit" } { "Edit" }
                a role="menuitem" href={ "/ui/segments/" (seg) "/contacts" } { "See contacts" }
                a role="menuitem" href={ "/ui/segments/" (seg) "/usages" } { "See usages" }
                a role="menuitem" href={ "/ui/segments/" (seg) "/history" } { "History" }
                a role="menuitem" href={ "/v1/segments/" (seg) "/export.csv" } download { "Export CSV" }
                a role="menuitem" href={ "/ui/segments/" (seg) "/facebook" } { "Export to Facebook" }
                @if !dynamic { span.muted role="none" { "Members come from the API and workflows" } }
            }
        }
    }
}

pub(super) fn segment<'a>(
    engine: &'a Workspace,
    id: &str,
) -> Result<&'a sift_engine::Segment, ApiError> {
    engine.segment(id).ok_or_else(|| {
        ApiError::not_found(format!(
            "There is no segment with id {id:?}; it may have been deleted."
        ))
    })
}

const DEFAULT_COLUMNS: &[&str] = &["email", "first_name", "last_name", "lead_score"];

#[derive(Deserialize)]
pub struct MembersQuery {
    cursor: Option<String>,
    columns: Option<Vec<String>>,
    /// Contacts "Remove from segment" removed (static_members.js).
    removed: Option<u64>,
}

pub async fn members(
    Signed(ws): Signed,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> UiResult {
    let query = parse_members_query(pairs);
    let after = crate::api::parse_cursor(query.cursor.as_deref())?;
    let (name, size, fields, columns, rows, next, is_static) = ws.read(|engine| {
        let s = segment(engine, &id)?;
        let fields = field_labels(engine);
        let columns: Vec<String> = match &query.columns {
            Some(chosen) => chosen
                .iter()
                .filter(|c| fields.iter().any(|(n, _)| n == *c))
                .cloned()
                .collect(),
            None => DEFAULT_COLUMNS.iter().map(|c| c.to_string()).collect(),
        };
        let (numbers, more) = engine.list_contacts(None, Some(&id), after, 50)?;
        let rows: Vec<(String, Vec<String>)> = numbers
            .iter()
            .filter_map(|no| engine.contact(*no))
            .map(|view| {
                let cells = columns.iter().map(|c| cell(&view, c)).collect();
                (view.id.clone(), cells)
            })
            .collect();
        let next = if more {
            numbers.last().map(|n| crate::api::cursor(*n))
        } else {
            None
        };
        Ok::<_, ApiError>((
            s.def.name.clone(),
            s.members.len(),
            fields,
            columns,
            rows,
            next,
            s.def.kind == SegmentKind::Static,
        ))
    })??;
    let seg = url_part(&id);
    let column_query: String = columns
        .iter()
        .map(|c| format!("&columns={}", url_part(c)))
        .collect();
    let body = html! {
        (segment_crumbs(&id, &name))
        div.page-head {
            h1 { "Contacts in " (name) }
            a.button href={ "/v1/segments/" (seg) "/export.csv?fields=id," (columns.join(",")) } download { "Export CSV" }
        }
        @if let Some(notice) = super::static_members::notice(None, query.removed) { (notice) }
        p.muted { (plural(size, "contact", "contacts")) " · 50 per page" }
        details.columns {
            summary { "Choose columns" }
            form #columns method="get" {
                fieldset {
                    legend { "Columns" }
                    @for (name, label) in &fields {
                        label.check { input type="checkbox" name="columns" value=(name) checked[columns.contains(name)]; " " (label) }
                    }
                }
                button type="submit" { "Show columns" }
            }
        }
        @if is_static {
            (super::static_members::members_table(&id, &name, &columns, &fields, &rows))
        } @else {
            (contacts_table(&columns, &fields, &rows))
        }
        nav.pager aria-label="Pages" {
            @if after.is_some() { a href={ "?" (column_query.trim_start_matches('&')) } { "First page" } }
            @if let Some(next) = &next { a href={ "?cursor=" (next) (column_query) } rel="next" { "Next page" } }
        }
    };
    let page = Page {
        ws: &ws,
        nav: Nav::Segments,
        title: &name,
        css: if is_static {
            &["/ui/assets/static_members.css"]
        } else {
            &[]
        },
        scripts: if is_static {
            &["/ui/assets/static_members.js"]
        } else {
            &[]
        },
        modules: &[],
    };
    Ok(page.render(body).into_response())
}

/// `columns` repeats (one per checkbox), which a struct cannot collect;
/// read the pairs in order.
fn parse_members_query(pairs: Vec<(String, String)>) -> MembersQuery {
    let mut query = MembersQuery {
        cursor: None,
        columns: None,
        removed: None,
    };
    for (key, value) in pairs {
        match key.as_str() {
            "cursor" => query.cursor = Some(value),
            "removed" => query.removed = value.parse().ok(),
            "columns" => query.columns.get_or_insert_with(Vec::new).extend(
                value
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    query
}

pub fn contacts_table(
    columns: &[String],
    fields: &[(String, String)],
    rows: &[(String, Vec<String>)],
) -> Markup {
    html! {
        div.table-wrap {
            table #contacts {
                thead { tr {
                    th { "Contact" }
                    @for c in columns {
                        th { (fields.iter().find(|(n, _)| n == c).map_or(c.as_str(), |(_, l)| l.as_str())) }
                    }
                } }
                tbody {
                    @for (id, cells) in rows {
                        tr data-contact-id=(id) {
                            td { a href={ "/ui/contacts/" (url_part(id)) } { (id) } }
                            @for value in cells { td { (value) } }
                        }
                    }
                }
            }
            @if rows.is_empty() { p.muted { "No contacts here yet." } }
        }
    }
}

/// A contact's value in a column, as text (system fields included); the
/// same text as the CSV export's, but lists read "a, b".
pub fn cell(view: &sift_engine::ContactView, column: &str) -> String {
    crate::csv_export::cell(view, column, ", ")
}

pub async fn usages(Signed(ws): Signed, Path(id): Path<String>) -> UiResult {
    let (name, usages) = ws.read(|engine| {
        let s = segment(engine, &id)?;
        Ok::<_, ApiError>((s.def.name.clone(), engine.usages(&id)?))
    })??;
    let body = html! {
        (segment_crumbs(&id, &name))
        h1 { "Usages of " (name) }
        @if usages.is_empty() {
            p #usages .muted { "Nothing refers to this segment: no segment reads it with “in segment”, and no workflow uses it. It can be deleted." }
        } @else {
            ul #usages {
                @for u in &usages {
                    li {
                        @match u.kind {
                            UsageKind::Segment => {
                                "Segment " a href={ "/ui/segments/" (url_part(&u.id)) } { (u.name) }
                            }
                            UsageKind::Workflow => {
                                "Workflow " a href={ "/ui/workflows/" (url_part(&u.id)) } { (u.name) }
                            }
                        }
                        " — " span.muted { (u.role.as_str().replace('_', " ")) }
                    }
                }
            }
        }
    };
    Ok(super::layout::render(&ws, Nav::Segments, &name, body))
}

pub async fn new(Signed(ws): Signed) -> UiResult {
    form(&ws, None)
}

pub async fn edit(Signed(ws): Signed, Path(id): Path<String>) -> UiResult {
    form(&ws, Some(&id))
}

/// The create/edit form's skeleton; segment_form.js builds the condition
/// builder and the preview inside it from the data attributes.
fn form(ws: &WorkspaceHandle, id: Option<&str>) -> UiResult {
    struct Current {
        name: String,
        description: String,
        kind: SegmentKind,
        test: bool,
        tree: Option<Json>,
        text: Option<String>,
    }
    let (current, fields, segments, event_types) = ws.read(|engine| {
        let current = match id {
            Some(id) => {
                let s = segment(engine, id)?;
                Some(Current {
                    name: s.def.name.clone(),
                    description: s.def.description.clone(),
                    kind: s.def.kind,
                    test: s.def.test,
                    tree: s.def.condition.as_ref().map(sift_lang::to_json),
                    text: s
                        .def
                        .condition
                        .as_ref()
                        .map(|c| sift_lang::to_text(c, &engine.schema())),
                })
            }
            None => None,
        };
        let fields: Vec<Json> = engine.fields().iter().map(field_json).collect();
        let mut segments: Vec<Json> = engine
            .segments()
            .iter()
            .filter(|(_, s)| Some(s.def.id.as_str()) != id)
            .map(|(_, s)| json!({"id": s.def.id, "name": s.def.name, "kind": s.def.kind.as_str()}))
            .collect();
        segments.sort_by_key(|s| s["name"].as_str().unwrap_or_default().to_lowercase());
        Ok::<_, ApiError>((current, fields, segments, engine.event_types()))
    })??;
    let title = current
        .as_ref()
        .map_or("New segment".to_string(), |c| format!("Edit {}", c.name));
    let is_static = current
        .as_ref()
        .is_some_and(|c| c.kind == SegmentKind::Static);
    let cancel = id.map_or("/ui/segments".to_string(), |id| {
        format!("/ui/segments/{}", url_part(id))
    });
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/segments" { "Segments" } " / " }
        h1 { (title) }
        form #segment-form data-segment-id=[id] novalidate {
            fieldset.kind disabled[current.is_some()] {
                legend { "Type" }
                // Hints describe the choices rather than name them.
                div.choice {
                    label.check { input type="radio" name="kind" value="dynamic" checked[!is_static] aria-describedby="kind-dynamic-hint"; " Dynamic" }
                    small.muted #kind-dynamic-hint { "contacts enter and leave by conditions" }
                }
                div.choice {
                    label.check { input type="radio" name="kind" value="static" checked[is_static] aria-describedby="kind-static-hint"; " Static" }
                    small.muted #kind-static-hint { "filled by the API and workflows" }
                }
                div.choice {
                    label.check { input #test type="checkbox" name="test" checked[current.as_ref().is_some_and(|c| c.test)] aria-describedby="test-hint"; " Test segment" }
                    small.muted #test-hint { "test contacts for trying a workflow" }
                }
            }
            label for="name" { "Name" }
            input #name name="name" required maxlength="200" value=[current.as_ref().map(|c| c.name.as_str())];
            label for="description" { "Description" }
            textarea #description name="description" rows="2" { (current.as_ref().map_or("", |c| c.description.as_str())) }
            section #condition-section {
                h2 { "Conditions" }
                div #builder
                    data-fields=(data_json(&Json::Array(fields)))
                    data-segments=(data_json(&Json::Array(segments)))
                    data-event-types=(data_json(&json!(event_types)))
                    data-condition-tree=[current.as_ref().and_then(|c| c.tree.as_ref()).map(data_json)]
                    data-condition=[current.as_ref().and_then(|c| c.text.clone())] {}
            }
            section #preview role="status" aria-live="polite" {}
            div #form-error role="alert" {}
            div.actions {
                button.primary type="submit" { "Save" }
                a.button href=(cancel) { "Cancel" }
                @if id.is_some() { button.danger type="button" #delete-segment { "Delete" } }
            }
        }
    };
    let page = Page {
        ws,
        nav: Nav::Segments,
        title: &title,
        css: &["/ui/assets/builder.css", "/ui/assets/builder_parts.css"],
        scripts: &[],
        modules: &["/ui/assets/segment_form.js"],
    };
    Ok(page.render(body).into_response())
}
