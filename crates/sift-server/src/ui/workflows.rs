//! Workflow pages: the list, one workflow with its run history, and the
//! create/edit form. The pages carry what the scripts need (segments,
//! fields, event types) in data attributes; `workflows.js` reads workflows
//! and runs from `/v1/workflows` and saves through it, so the UI and the API
//! cannot disagree on what a workflow is.

use maud::html;
use serde_json::{Value as Json, json};

use super::layout::{Nav, Page, data_json, url_part};
use super::{Signed, UiResult};
use crate::api::Path;
use crate::api::fields::field_json;
use crate::state::WorkspaceHandle;
use axum::response::IntoResponse;

/// Segments, fields and event types, for pickers.
fn workspace_data(ws: &WorkspaceHandle) -> Result<(Json, Json, Json), crate::error::ApiError> {
    Ok(ws.read(|engine| {
        let mut segments: Vec<Json> = engine
            .segments()
            .iter()
            .map(|(_, s)| json!({"id": s.def.id, "name": s.def.name, "kind": s.def.kind.as_str(), "test": s.def.test}))
            .collect();
        segments.sort_by_key(|s| s["name"].as_str().unwrap_or_default().to_lowercase());
        let fields: Vec<Json> = engine.fields().iter().map(field_json).collect();
        (Json::Array(segments), Json::Array(fields), json!(engine.event_types()))
    })?)
}

fn page(ws: &WorkspaceHandle, title: &str, body: maud::Markup) -> axum::response::Response {
    page_with(ws, title, body, &[], &[])
}

/// The form also loads the condition builder (its filter and event `where`).
fn page_with(
    ws: &WorkspaceHandle,
    title: &str,
    body: maud::Markup,
    css: &[&str],
    modules: &[&str],
) -> axum::response::Response {
    let page = Page {
        ws,
        nav: Nav::Workflows,
        title,
        css,
        scripts: &["/ui/assets/workflows.js"],
        modules,
    };
    page.render(body).into_response()
}

pub async fn list(Signed(ws): Signed) -> UiResult {
    let (segments, _, _) = workspace_data(&ws)?;
    let body = html! {
        div.page-head {
            h1 { "Workflows" }
            a.button.primary href="/ui/workflows/new" { "Create workflow" }
        }
        p.muted { "A workflow acts when a contact enters or leaves a segment or performs an event: it fills static segments, adds points, sets properties or calls a webhook. Try one on a test segment before activating it." }
        div #workflows-list data-segments=(data_json(&segments)) aria-live="polite" { p.muted { "Loading workflows…" } }
    };
    Ok(page(&ws, "Workflows", body))
}

pub async fn show(Signed(ws): Signed, Path(id): Path<String>) -> UiResult {
    let (segments, fields, _) = workspace_data(&ws)?;
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/workflows" { "Workflows" } " / " }
        div #workflow-page data-workflow-id=(id) data-segments=(data_json(&segments)) data-fields=(data_json(&fields)) {
            p.muted { "Loading the workflow…" }
        }
        section.card {
            div.page-head {
                h2 #runs-heading { "Run history" span.live-dot title="Live" aria-hidden="true" {} }
                button type="button" #refresh-runs { "Refresh" }
            }
            div #runs aria-live="polite" aria-labelledby="runs-heading" { p.muted { "Loading runs…" } }
        }
    };
    Ok(page(&ws, "Workflow", body))
}

pub async fn new(Signed(ws): Signed) -> UiResult {
    form(&ws, None)
}

pub async fn edit(Signed(ws): Signed, Path(id): Path<String>) -> UiResult {
    form(&ws, Some(&id))
}

/// The form's skeleton; workflows.js builds the trigger, filter and action
/// rows inside it.
fn form(ws: &WorkspaceHandle, id: Option<&str>) -> UiResult {
    let (segments, fields, event_types) = workspace_data(ws)?;
    let title = if id.is_some() {
        "Edit workflow"
    } else {
        "New workflow"
    };
    let cancel = id.map_or("/ui/workflows".to_string(), |id| {
        format!("/ui/workflows/{}", url_part(id))
    });
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/workflows" { "Workflows" } " / " }
        h1 { (title) }
        form #workflow-form .stack novalidate
            data-workflow-id=[id]
            data-segments=(data_json(&segments))
            data-fields=(data_json(&fields))
            data-event-types=(data_json(&event_types)) {
            label for="wf-name" { "Name" }
            input #wf-name name="name" required maxlength="200";
            div.field-error #wf-name-error role="alert" {}
            label for="wf-status" { "Status" }
            select #wf-status name="status" aria-describedby="wf-status-help" {
                option value="draft" { "Draft — does not run" }
                option value="test" { "Test — runs only for contacts in a test segment" }
                option value="active" { "Active — runs for everyone" }
                option value="paused" { "Paused" }
            }
            small #wf-status-help .muted { "Changes that happen while a workflow is a draft or paused do not run it later." }
            div #wf-test-segment-box hidden {
                label for="wf-test-segment" { "Test segment" }
                select #wf-test-segment name="test_segment" {}
                div.field-error #wf-test-segment-error role="alert" {}
            }
            fieldset #wf-trigger {
                legend { "When" }
                label for="wf-trigger-type" { "Trigger" }
                select #wf-trigger-type {
                    option value="segment_entered" { "A contact enters a segment" }
                    option value="segment_exited" { "A contact leaves a segment" }
                    option value="event" { "A contact performs an event" }
                }
                div #wf-trigger-segment-box {
                    label for="wf-trigger-segment" { "Segment" }
                    select #wf-trigger-segment {}
                }
                div #wf-trigger-event-box hidden {
                    label for="wf-trigger-event" { "Event type" }
                    input #wf-trigger-event list="wf-event-types" placeholder="e.g. purchase";
                    datalist #wf-event-types {}
                    div #wf-trigger-where-rows .where-box role="group" aria-labelledby="wf-trigger-where-title" {
                        span #wf-trigger-where-title .row-word { "Where (optional)" }
                    }
                }
                div.field-error #wf-trigger-error role="alert" {}
            }
            fieldset {
                legend { "Only for contacts matching (optional)" }
                div #builder
                    data-fields=(data_json(&fields))
                    data-segments=(data_json(&segments))
                    data-event-types=(data_json(&event_types)) {}
                div #wf-filter-text-box hidden {
                    label for="wf-filter" { "Filter" }
                    textarea #wf-filter rows="2" placeholder="e.g. newsletter = true and country = \"ES\"" {}
                }
                small.muted { "Any segment condition, checked when the workflow runs for the contact. No condition: every contact." }
                div.field-error #wf-filter-error role="alert" {}
            }
            fieldset {
                legend { "Then" }
                ol #wf-actions .actions-list {}
                button type="button" #wf-add-action { "Add action" }
                div.field-error #wf-actions-error role="alert" {}
            }
            div #form-error role="alert" {}
            div.actions {
                button.primary type="submit" { "Save" }
                a.button href=(cancel) { "Cancel" }
                @if id.is_some() { button.danger type="button" #wf-delete { "Delete" } }
            }
        }
    };
    Ok(page_with(
        ws,
        title,
        body,
        &["/ui/assets/builder.css", "/ui/assets/builder_parts.css"],
        &["/ui/assets/workflow_builder.js"],
    ))
}
