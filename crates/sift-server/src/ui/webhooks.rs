//! The Webhooks page: every subscription with its delivery status, lag and
//! last error, a form to create one, and buttons to enable, disable and
//! delete (webhooks.js calls `/v1/webhooks` and refreshes the status cells).

use maud::{Markup, html};
use serde_json::Value as Json;

use super::layout::{Nav, Page, plural, time};
use super::{Signed, UiResult};
use crate::webhooks::webhook_json;

/// "3 s", "4 min", "2 h", "5 d".
fn age(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        ..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// What a webhook is behind by, in words (webhooks.js words it the same).
fn lag_words(delivery: &Json) -> String {
    let seqs = delivery["lag_seqs"].as_u64().unwrap_or(0);
    let events = delivery["lag_events"].as_u64().unwrap_or(0);
    let ms = delivery["lag_ms"].as_i64().unwrap_or(0);
    if seqs == 0 && events == 0 {
        return "Up to date".to_string();
    }
    let mut parts = Vec::new();
    if seqs > 0 {
        parts.push(plural(seqs, "change", "changes"));
    }
    if events > 0 {
        parts.push(plural(events, "event", "events"));
    }
    let mut words = parts.join(", ");
    if ms >= 1000 {
        words.push_str(&format!(" · {} behind", age(ms)));
    }
    words
}

fn status_label(status: &str) -> &'static str {
    match status {
        "idle" => "OK",
        "delivering" => "Delivering",
        "retrying" => "Retrying",
        "disabled" => "Disabled",
        _ => "Unknown",
    }
}

fn row(hook: &Json, names: &[(String, String)]) -> Markup {
    let delivery = &hook["delivery"];
    let status = delivery["status"].as_str().unwrap_or("");
    let enabled = hook["enabled"].as_bool().unwrap_or(false);
    let segments: Option<Vec<String>> = hook["segments"].as_array().map(|ids| {
        ids.iter()
            .filter_map(Json::as_str)
            .map(|id| {
                names
                    .iter()
                    .find(|(sid, _)| sid == id)
                    .map_or_else(|| format!("{id} (deleted)"), |(_, name)| name.clone())
            })
            .collect()
    });
    let id = hook["id"].as_str().unwrap_or("");
    html! {
        tr data-webhook-id=(id) data-enabled=(enabled) {
            td.url.mono { (hook["url"].as_str().unwrap_or("")) }
            td.sends {
                @match &segments {
                    None => { "All segments" }
                    Some(list) if list.is_empty() => {}
                    Some(list) => { (list.join(", ")) }
                }
                @if hook["events"].as_bool() == Some(true) {
                    @if segments.as_ref().is_none_or(|l| !l.is_empty()) { " + " }
                    "events"
                }
            }
            td.status { span.badge data-status=(status) { (status_label(status)) } }
            td.lag { (lag_words(delivery)) }
            td.error {
                @if let Some(error) = delivery["last_error"].as_object() {
                    span.message { (error.get("message").and_then(Json::as_str).unwrap_or("")) }
                    @if let Some(at) = error.get("at").and_then(Json::as_str).and_then(sift_engine::parse_datetime) {
                        " " span.muted { (time(at)) }
                    }
                } @else {
                    span.muted { "None" }
                }
            }
            td.row-actions {
                button type="button" data-action="toggle" { (if enabled { "Disable" } else { "Enable" }) }
                " "
                button.danger type="button" data-action="delete" { "Delete" }
            }
        }
    }
}

pub async fn list(Signed(ws): Signed) -> UiResult {
    let hooks: Vec<Json> = ws
        .tasks
        .webhooks
        .list()
        .iter()
        .map(|s| webhook_json(&ws.service, s))
        .collect::<Result<_, _>>()?;
    let mut names: Vec<(String, String)> = ws.read(|engine| {
        engine
            .segments()
            .iter()
            .map(|(_, s)| (s.def.id.clone(), s.def.name.clone()))
            .collect()
    })?;
    names.sort_by_key(|(_, name)| name.to_lowercase());
    let body = html! {
        div.page-head { h1 { "Webhooks" } }
        p.muted {
            "Sift POSTs every entry and exit of the segments you choose (and, if you ask, every event) to your URL, in order, signed with your secret, retrying until your endpoint answers 2xx. See docs/api.md “Webhooks” for the body and how to verify the "
            code { "Sift-Signature" } " header."
        }
        @if hooks.is_empty() {
            div #empty-state .empty {
                h2 { "No webhooks yet" }
                p { "Create one below to send membership changes to another system as they happen." }
            }
        } @else {
            div.table-wrap {
                table #webhooks {
                    thead { tr {
                        th { "Endpoint" } th { "Sends" } th { "Status" } th { "Lag" } th { "Last error" } th { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for hook in &hooks { (row(hook, &names)) }
                    }
                }
            }
            p #webhook-action-error role="alert" {}
        }
        section.card {
            h2 #create-heading { "Create a webhook" }
            form #create-webhook .stack aria-labelledby="create-heading" novalidate {
                label for="webhook-url" { "URL" }
                input #webhook-url name="url" type="url" required placeholder="https://example.com/hooks/sift" autocomplete="off";
                label for="webhook-secret" { "Secret" }
                div.choice {
                    input #webhook-secret name="secret" required autocomplete="off" aria-describedby="webhook-secret-help";
                    button type="button" #generate-secret { "Generate" }
                }
                small #webhook-secret-help .muted { "Deliveries are signed with it; keep a copy, Sift shows only its last characters." }
                fieldset {
                    legend { "Segments" }
                    p.muted { "None checked: every segment, including ones created later." }
                    @for (id, name) in &names {
                        label.check { input type="checkbox" name="segments" value=(id); (name) }
                    }
                }
                label.check { input type="checkbox" name="events" #webhook-events; "Also send events" }
                div #webhook-error role="alert" {}
                button.primary type="submit" { "Create webhook" }
            }
        }
    };
    let page = Page {
        ws: &ws,
        nav: Nav::Webhooks,
        title: "Webhooks",
        css: &[],
        scripts: &["/ui/assets/webhooks.js"],
        modules: &[],
    };
    Ok(axum::response::IntoResponse::into_response(
        page.render(body),
    ))
}
