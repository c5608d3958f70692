//! `/ui/segments/{id}/facebook`: the Export to Facebook page. Three parts:
//! the workspace's Facebook account (the ad account and the access token,
//! saved once through `PUT /v1/facebook/connection`; the page only ever
//! shows the token's last characters), the export form (an audience picked
//! from the account's list or created here, the identifiers in words, keep
//! in sync), and the segment's exports with their state in words, the
//! reason a failed one failed and a Retry button. facebook.js does the
//! calls and follows a job over `/ui/live/exports/{id}`.

use axum::extract::State;
use maud::{Markup, html};
use serde_json::Value as Json;

use super::layout::{Nav, Page, count, segment_crumbs};
use super::segments::segment;
use super::{Signed, UiResult};
use crate::api::Path;
use crate::facebook::Key;
use crate::facebook::connection as stored;
use crate::facebook::normalize::GENDER_FIELD;
use crate::state::AppState;

/// The identifier checkboxes: what a marketer reads, and the keys each sends
/// (the three parts of a date of birth go together).
const CHOICES: [(&str, &[Key]); 8] = [
    ("Email", &[Key::Email]),
    ("Phone", &[Key::Phone]),
    ("First name", &[Key::Fn]),
    ("Last name", &[Key::Ln]),
    ("Date of birth", &[Key::Doby, Key::Dobm, Key::Dobd]),
    ("Country", &[Key::Country]),
    ("Gender", &[Key::Gen]),
    ("Contact id", &[Key::ExternId]),
];

/// A job's state in words (facebook.js words it the same way).
fn state_words(state: &str, phase: Option<&str>) -> &'static str {
    match (state, phase) {
        ("queued", _) => "Waiting to start",
        ("running", Some("syncing")) => "Keeping in sync",
        ("running", _) => "Sending",
        ("done", Some("stopped")) => "Stopped",
        ("done", _) => "Done",
        ("failed", _) => "Failed",
        _ => "Unknown",
    }
}

/// Why a failed job failed: its last error, without the batch it happened
/// in (facebook.js reads it the same way).
fn reason(job: &Json) -> Option<String> {
    let message = job["errors"].as_array()?.last()?["message"].as_str()?;
    let plain = match message.strip_prefix("batch ") {
        Some(rest) => rest.split_once("): ").map_or(message, |(_, after)| after),
        None => message,
    };
    let mut words = plain.to_string();
    if let Some(first) = words.get(..1) {
        words.replace_range(..1, &first.to_uppercase());
    }
    Some(words)
}

struct JobRow {
    id: String,
    created_at: String,
    audience: String,
    sync: bool,
    state: String,
    words: &'static str,
    reason: Option<String>,
    sent: u64,
    skipped: u64,
    retried: bool,
    retry_of: Option<String>,
}

fn job_rows(jobs: &[Json]) -> Vec<JobRow> {
    let retried: Vec<&str> = jobs.iter().filter_map(|j| j["retry_of"].as_str()).collect();
    jobs.iter()
        .map(|j| {
            let text = |key: &str| j[key].as_str().unwrap_or_default().to_string();
            let state = text("state");
            JobRow {
                retried: retried.contains(&j["id"].as_str().unwrap_or_default()),
                retry_of: j["retry_of"].as_str().map(str::to_string),
                words: state_words(&state, j["phase"].as_str()),
                reason: (state == "failed").then(|| reason(j)).flatten(),
                id: text("id"),
                created_at: text("created_at"),
                audience: text("audience_id"),
                sync: j["sync"] == Json::Bool(true),
                state,
                sent: j["sent"].as_u64().unwrap_or(0),
                skipped: j["skipped"].as_u64().unwrap_or(0),
            }
        })
        .collect()
}

fn connection_part(
    row: Option<&sift_store::ConnectionRow>,
    settings: &crate::facebook::Settings,
) -> Markup {
    let custom = |value: Option<&String>| value.cloned().unwrap_or_default();
    html! {
        section.card #facebook-connection aria-labelledby="facebook-connection-heading"
            data-connected=(row.is_some()) {
            h2 #facebook-connection-heading { "Facebook account" }
            p #facebook-connected hidden[row.is_none()] {
                "Connected to ad account "
                strong #facebook-account { @if let Some(r) = row { "act_" (r.ad_account_id) } }
                " with the access token ending in "
                code #facebook-token-hint { @if let Some(r) = row { "…" (r.token_hint) } }
                "."
            }
            div.actions #facebook-connected-actions hidden[row.is_none()] {
                button type="button" #facebook-change { "Change token" }
                button.danger type="button" #facebook-disconnect { "Disconnect" }
            }
            form.stack #facebook-connection-form novalidate hidden[row.is_some()] {
                p.muted {
                    "Enter a Facebook access token once: every export of this workspace uses it. "
                    "It needs the ads_management permission for the ad account (Business settings → "
                    "System users). It is stored encrypted and never shown again."
                }
                label for="ad_account_id" { "Ad account id" }
                input #ad_account_id name="ad_account_id" autocomplete="off" placeholder="act_1234567890"
                    value=[row.map(|r| format!("act_{}", r.ad_account_id))];
                label for="access_token" { "Access token" }
                input #access_token name="access_token" type="password" autocomplete="off";
                details #facebook-advanced {
                    summary { "Advanced" }
                    label for="graph_url" { "Graph URL" }
                    input #graph_url name="graph_url" type="url"
                        placeholder={ (settings.graph_url) " (server default)" }
                        value=(custom(row.and_then(|r| r.graph_url.as_ref())));
                    label for="version" { "Graph API version" }
                    input #version name="version" placeholder={ (settings.version) " (server default)" }
                        value=(custom(row.and_then(|r| r.version.as_ref())));
                }
                div #facebook-connection-error role="alert" {}
                div.actions {
                    button.primary type="submit" { "Save connection" }
                    button type="button" #facebook-cancel-change hidden[row.is_none()] { "Cancel" }
                }
            }
        }
    }
}

fn export_form(id: &str, segment_name: &str, has_gender: bool, connected: bool) -> Markup {
    let choices = CHOICES
        .iter()
        .filter(|(_, keys)| has_gender || !keys.contains(&Key::Gen));
    html! {
        form.stack #facebook-form data-segment-id=(id) novalidate {
            h2 { "Export" }
            p.muted #facebook-needs-connection hidden[connected] {
                "Connect a Facebook ad account above to choose an audience and export."
            }
            fieldset #facebook-export-fields disabled[!connected] {
                legend { "Where and how" }
                label for="facebook-audience" { "Audience" }
                select #facebook-audience name="audience_id" {
                    option value="" { "Choose…" }
                    option value="new" { "Create new audience…" }
                }
                p.muted #facebook-audiences-status role="status" {}
                button type="button" #facebook-more hidden { "Load more audiences" }
                div #facebook-new-audience hidden {
                    label for="new_audience_name" { "New audience name" }
                    input #new_audience_name name="new_audience_name" maxlength="200"
                        value={ "Sift: " (segment_name) };
                    label for="new_audience_description" { "Description (optional)" }
                    input #new_audience_description name="new_audience_description" maxlength="1000";
                    div.actions { button type="button" #facebook-create { "Create audience" } }
                }
                fieldset #facebook-identifiers {
                    legend { "Match people by" }
                    @for (words, keys) in choices {
                        @let value = keys.iter().map(|k| k.name()).collect::<Vec<_>>().join(" ");
                        label.check { input type="checkbox" name="identifiers" value=(value) checked; " " (words) }
                    }
                }
                p.muted {
                    "Facebook matches people by these, sent hashed (SHA-256); the contact id is sent as it is. "
                    "Members without any of them, and members who unsubscribed from the newsletter, are skipped."
                }
                label.check { input type="checkbox" name="sync" #facebook-sync; " Keep in sync (add people who enter the segment, remove people who leave)" }
                div #facebook-error role="alert" {}
                button.primary type="submit" { "Start export" }
            }
        }
    }
}

fn status_part() -> Markup {
    html! {
        section.card #facebook-status role="status" aria-live="polite" hidden {
            h2 { "Export to " span #facebook-job-audience {} }
            p { span.badge #facebook-state data-state="" {} " " span.muted #facebook-job-started {} }
            p #facebook-reason hidden {}
            div.actions {
                button.primary type="button" #facebook-retry hidden { "Retry" }
                button type="button" #facebook-stop hidden { "Stop sync" }
            }
            progress #facebook-progress max="1" value="0" {}
            p #facebook-counts {}
            table #facebook-batches {
                thead { tr { th { "Batch" } th { "Action" } th { "People" } th { "Answer" } th { "Received" } th { "Invalid" } th { "Attempts" } } }
                tbody {}
            }
            ul #facebook-errors {}
        }
    }
}

fn jobs_part(jobs: &[JobRow]) -> Markup {
    html! {
        h2 { "Exports of this segment" }
        // Always rendered: the script adds the job it starts and keeps each
        // followed job's row current.
        p.muted #facebook-no-jobs hidden[!jobs.is_empty()] { "No exports of this segment yet." }
        table #facebook-jobs hidden[jobs.is_empty()] {
            thead { tr { th { "Started" } th { "Audience" } th { "State" } th { "Sent" } th { "Skipped" } th {} } }
            tbody {
                @for job in jobs {
                    tr data-export-id=(job.id) data-state=(job.state) data-retry-of=[job.retry_of.as_deref()] {
                        td { time datetime=(job.created_at) title=(job.created_at) { (job.created_at.get(..16).unwrap_or(&job.created_at).replace('T', " ")) " UTC" } }
                        td.audience data-audience-id=(job.audience) {
                            span.audience-name { (job.audience) } @if job.sync { " (kept in sync)" }
                        }
                        td.state {
                            span.badge data-state=(job.state) { (job.words) }
                            @if let Some(reason) = &job.reason { p.reason { (reason) } }
                        }
                        td.sent { (count(job.sent)) }
                        td.skipped { (count(job.skipped)) }
                        td.row-actions {
                            button type="button" data-follow=(job.id) { "Show" }
                            @if job.state == "failed" && !job.retried {
                                " " button type="button" data-retry=(job.id) { "Retry" }
                            }
                            @if job.retried { " " span.muted.retried { "Retried" } }
                        }
                    }
                }
            }
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    Signed(ws): Signed,
    Path(id): Path<String>,
) -> UiResult {
    let (name, has_gender) = ws.read(|engine| {
        segment(engine, &id).map(|s| (s.def.name.clone(), engine.field(GENDER_FIELD).is_some()))
    })??;
    let connection = stored::stored(&ws.service).unwrap_or_else(|why| {
        tracing::error!(workspace = %ws.service.id(), %why, "the Facebook connection cannot be read");
        None
    });
    let jobs = job_rows(&ws.tasks.exports.list_json(&id));
    let body = html! {
        (segment_crumbs(&id, &name))
        h1 { "Export to Facebook" }
        p.muted {
            "Sends the members of this segment to a Facebook Custom Audience, for ads shown to "
            "them (or to people like them)."
        }
        (connection_part(connection.as_ref(), &state.config.facebook))
        (export_form(&id, &name, has_gender, connection.is_some()))
        (status_part())
        (jobs_part(&jobs))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_job_says_why_in_words() {
        let job = json!({"errors": [
            {"message": "batch 1 (POST, 3 rows), attempt 1: the Graph API failed (HTTP 500); retrying"},
            {"message": "batch 1 (POST): Facebook refused the access token (code 190: expired): create a token"},
        ]});
        assert_eq!(
            reason(&job).unwrap(),
            "Facebook refused the access token (code 190: expired): create a token"
        );
        let restarted = json!({"errors": [{"message": crate::facebook::RESTARTED}]});
        assert!(
            reason(&restarted)
                .unwrap()
                .starts_with("The server restarted")
        );
        assert_eq!(reason(&json!({"errors": []})), None);
        assert_eq!(state_words("running", Some("syncing")), "Keeping in sync");
        assert_eq!(state_words("done", Some("stopped")), "Stopped");
    }

    #[test]
    fn every_identifier_has_words_once() {
        let mut keys: Vec<Key> = CHOICES
            .iter()
            .flat_map(|(_, k)| k.iter().copied())
            .collect();
        keys.sort_by_key(|k| k.name());
        let mut all = Key::ALL.to_vec();
        all.sort_by_key(|k| k.name());
        assert_eq!(keys, all);
    }
}
