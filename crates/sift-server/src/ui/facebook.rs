//! `/ui/segments/{id}/facebook`: the Export to Facebook form and the
//! segment's export jobs. facebook.js starts a job through
//! `POST /v1/segments/{id}/exports/facebook` and follows it by polling
//! `GET /v1/exports/{id}` while it runs. The token field is never filled
//! from the server: no page or answer carries a token.

use maud::html;

use super::layout::{Nav, Page, segment_crumbs};
use super::segments::segment;
use super::{Signed, UiResult};
use crate::api::Path;
use crate::facebook::Key;
use crate::facebook::normalize::GENDER_FIELD;

pub async fn page(Signed(ws): Signed, Path(id): Path<String>) -> UiResult {
    let (name, has_gender) = ws.read(|engine| {
        segment(engine, &id).map(|s| (s.def.name.clone(), engine.field(GENDER_FIELD).is_some()))
    })??;
    // (id, created_at, audience, sync, state, sent, skipped), newest first.
    let jobs: Vec<(String, String, String, bool, String, u64, u64)> = ws
        .tasks
        .exports
        .list_json(&id)
        .iter()
        .map(|j| {
            let text = |key: &str| j[key].as_str().unwrap_or_default().to_string();
            let number = |key: &str| j[key].as_u64().unwrap_or(0);
            (
                text("id"),
                text("created_at"),
                text("audience_id"),
                j["sync"] == serde_json::Value::Bool(true),
                text("state"),
                number("sent"),
                number("skipped"),
            )
        })
        .collect();
    let keys: Vec<Key> = Key::ALL
        .into_iter()
        .filter(|k| *k != Key::Gen || has_gender)
        .collect();
    let body = html! {
        (segment_crumbs(&id, &name))
        h1 { "Export to Facebook" }
        p.muted {
            "Sends the members of this segment to a Facebook Custom Audience as SHA-256 hashed "
            "identifiers (EXTERN_ID is the contact id, unhashed). Members without any identifier, "
            "and members with newsletter set to false, are skipped. The access token is kept in "
            "the server's memory for the job only and never shown again."
        }
        form.stack #facebook-form data-segment-id=(id) novalidate {
            label for="audience_id" { "Custom Audience id" }
            input #audience_id name="audience_id" inputmode="numeric" autocomplete="off" required;
            label for="access_token" { "Access token" }
            input #access_token name="access_token" type="password" autocomplete="off" required;
            fieldset #facebook-identifiers {
                legend { "Identifiers" }
                @for key in &keys {
                    label.check { input type="checkbox" name="identifiers" value=(key.name()) checked; " " (key.name()) }
                }
            }
            label.check { input type="checkbox" name="sync" #facebook-sync; " Keep in sync (add entries, remove exits)" }
            details #facebook-advanced {
                summary { "Advanced" }
                label for="graph_url" { "Graph URL" }
                input #graph_url name="graph_url" type="url" placeholder="https://graph.facebook.com (server default)";
                label for="version" { "Graph API version" }
                input #version name="version" placeholder="v21.0 (server default)";
            }
            div #facebook-error role="alert" {}
            button.primary type="submit" { "Start export" }
        }
        section #facebook-status role="status" aria-live="polite" hidden {
            h2 { "Export " span #facebook-job-id {} }
            p { span.badge #facebook-state data-state="" {} " " span #facebook-phase {} }
            progress #facebook-progress max="1" value="0" {}
            p #facebook-counts {}
            button type="button" #facebook-stop hidden { "Stop sync" }
            table #facebook-batches {
                thead { tr { th { "Batch" } th { "Method" } th { "Rows" } th { "Status" } th { "Received" } th { "Invalid" } th { "Attempts" } } }
                tbody {}
            }
            ul #facebook-errors {}
        }
        h2 { "Exports of this segment" }
        // Always rendered: the script adds the job it starts and keeps each
        // followed job's row current.
        p.muted #facebook-no-jobs hidden[!jobs.is_empty()] { "No exports of this segment yet." }
        table #facebook-jobs hidden[jobs.is_empty()] {
            thead { tr { th { "Started" } th { "Audience" } th { "State" } th { "Sent" } th { "Skipped" } th {} } }
            tbody {
                @for (job_id, created_at, audience, sync, state, sent, skipped) in &jobs {
                    tr data-export-id=(job_id) data-state=(state) {
                        td { time datetime=(created_at) { (created_at) } }
                        td { (audience) @if *sync { " (sync)" } }
                        td.state { (state) }
                        td.sent { (sent) }
                        td.skipped { (skipped) }
                        td { button type="button" data-follow=(job_id) { "Show" } }
                    }
                }
            }
        }
    };
    let page = Page {
        ws: &ws,
        nav: Nav::Segments,
        title: "Export to Facebook",
        css: &[],
        scripts: &["/ui/assets/facebook.js"],
        modules: &[],
    };
    Ok(axum::response::IntoResponse::into_response(
        page.render(body),
    ))
}
