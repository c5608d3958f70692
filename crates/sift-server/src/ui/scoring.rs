//! Lead scoring: the Scoring page (every rule in words, a form to create or
//! edit one with the builder's event row, delete with a confirmation; the
//! script `scoring.js` calls `/v1/scoring-rules`), and the card of a
//! contact's page that shows where its score comes from
//! (`GET /v1/contacts/{id}/score`).

use maud::{Markup, html};
use serde_json::json;

use super::layout::{Nav, Page, count, data_json, plural, time, url_part};
use super::{Signed, UiResult};
use crate::api::Query;
use crate::api::contact_score::ContactScore;
use crate::api::fields::field_json;
use crate::api::scoring_types::ScoringRule as RuleView;

/// Points as people read them: `+10`, `−2.5`, `+1,500`.
pub fn points_text(points: f64) -> String {
    let sign = if points < 0.0 { "−" } else { "+" };
    let magnitude = points.abs();
    let digits = if magnitude.fract() == 0.0 && magnitude < 1e15 {
        count(magnitude as u64)
    } else {
        sift_lang::format_number(magnitude)
    };
    format!("{sign}{digits}")
}

/// A score as people read it: `3,609`, `−2.5`.
pub fn score_text(score: f64) -> String {
    let text = points_text(score);
    text.strip_prefix('+').map(str::to_string).unwrap_or(text)
}

/// `30d` → "30 days", as the rule's expiry reads on the page.
fn expiry_words(expires_after: Option<&str>) -> String {
    match expires_after.and_then(sift_lang::duration_from_json) {
        Some(d) => format!("after {}", sift_lang::duration_text(d)),
        None => "never".to_string(),
    }
}

fn rule_row(rule: &RuleView) -> Markup {
    let data = serde_json::to_value(rule).unwrap_or_default();
    let points = rule.points.as_f64().unwrap_or(0.0);
    html! {
        tr data-rule-id=(rule.id) data-rule=(data_json(&data)) {
            td.event { span.field { (rule.event_type) } }
            td.where {
                @match &rule.where_text {
                    Some(text) => code { (text) },
                    None => span.muted { "every event" },
                }
            }
            td.points { (points_text(points)) " " (if points.abs() == 1.0 { "point" } else { "points" }) }
            td.expiry { (expiry_words(rule.expires_after.as_deref())) }
            td.row-actions {
                button type="button" data-action="edit" aria-label={ "Edit the rule on " (rule.event_type) } { "Edit" }
                " "
                button.danger type="button" data-action="delete" aria-label={ "Delete the rule on " (rule.event_type) } { "Delete" }
            }
        }
    }
}

/// What the page says after a write (scoring.js comes back with it).
#[derive(serde::Deserialize)]
pub struct ListQuery {
    created: Option<String>,
    saved: Option<String>,
    deleted: Option<String>,
    rescored: Option<u64>,
}

impl ListQuery {
    fn notice(&self) -> Option<String> {
        let what = if self.created.is_some() {
            "Rule created"
        } else if self.saved.is_some() {
            "Rule saved"
        } else if self.deleted.is_some() {
            "Rule deleted"
        } else {
            return None;
        };
        let rescored = self.rescored.unwrap_or(0);
        Some(format!(
            "{what}: {} rescored.",
            plural(rescored, "contact", "contacts")
        ))
    }
}

pub async fn list(Signed(ws): Signed, Query(query): Query<ListQuery>) -> UiResult {
    let (rules, fields, event_types) = ws.read(|engine| {
        let rules: Vec<RuleView> = engine
            .scoring_rules()
            .iter()
            .map(|rule| RuleView::of(engine, rule))
            .collect();
        let fields: Vec<serde_json::Value> = engine.fields().iter().map(field_json).collect();
        (rules, fields, engine.event_types())
    })?;
    let body = html! {
        div.page-head {
            h1 { "Lead scoring" }
            span.muted #rule-count { (plural(rules.len() as u64, "rule", "rules")) }
        }
        @if let Some(notice) = query.notice() {
            p #saved .notice role="status" { (notice) }
        }
        p.muted {
            "Each event that matches a rule adds the rule's points to its contact's lead score, which segments and workflows can use (for example "
            code { "lead_score >= 50" } "). Points with an expiry are taken away again that long after the event. Saving a rule rescores every contact with events of its type."
        }
        @if rules.is_empty() {
            div #empty-state .empty {
                h2 { "No scoring rules yet" }
                p { "Create one below: for example, 10 points for each purchase over 50." }
            }
        } @else {
            div.table-wrap {
                table #scoring-rules {
                    thead { tr {
                        th { "Event" } th { "Where" } th { "Gives" } th { "Expires" } th { span.visually-hidden { "Actions" } }
                    } }
                    tbody { @for rule in &rules { (rule_row(rule)) } }
                }
            }
        }
        p #scoring-action-error role="alert" {}
        section.card #rule-card {
            h2 #rule-heading { "Create a rule" }
            form #scoring-form .stack aria-labelledby="rule-heading" novalidate {
                p.muted #rule-help { "Which events score: choose the event type and, if only some of them count, what they must have." }
                div #builder .event-only
                    data-fields=(data_json(&json!(fields)))
                    data-segments="[]"
                    data-event-types=(data_json(&json!(event_types))) {
                    div #rule-row {}
                }
                label for="rule-points" { "Points" }
                input #rule-points name="points" type="number" step="any" required inputmode="decimal" placeholder="10" aria-describedby="rule-points-help";
                small #rule-points-help .muted { "Per matching event; negative points take away." }
                span #rule-expiry-label { "Expire after" }
                div #rule-expiry {}
                small #rule-expiry-help .muted { "Leave empty: the points never expire." }
                div #scoring-error role="alert" {}
                div.actions {
                    button.primary type="submit" #rule-submit { "Create rule" }
                    button type="button" #rule-cancel hidden { "Cancel" }
                }
            }
        }
    };
    let page = Page {
        ws: &ws,
        nav: Nav::Scoring,
        title: "Lead scoring",
        css: &["/ui/assets/builder.css", "/ui/assets/scoring.css"],
        scripts: &[],
        modules: &["/ui/assets/scoring.js"],
    };
    Ok(axum::response::IntoResponse::into_response(
        page.render(body),
    ))
}

/// A contact's lead score and where it comes from, one row per source.
pub fn score_card(score: &ContactScore) -> Markup {
    html! {
        section.card.stat #score {
            h2 { "Lead score" }
            p.big #score-total { (score_text(score.lead_score)) }
            @if score.items.is_empty() {
                p.muted #score-empty { "No points yet: no scoring rule matches this contact's events and no workflow gave it points." }
            } @else {
                div.table-wrap {
                    table #score-sources {
                        thead { tr { th { "From" } th { "Points" } th { "Counted" } th { "Next expiry" } } }
                        tbody {
                            @for item in &score.items {
                                tr data-source=(item.source)
                                    data-rule-id=[item.rule_id.as_deref()]
                                    data-workflow-id=[item.workflow_id.as_deref()]
                                    data-points=(sift_lang::format_number(item.points)) {
                                    td.what { (source_words(item)) }
                                    td.points { (points_text(item.points)) }
                                    td.count {
                                        @if let Some(n) = item.events { (plural(n, "event", "events")) }
                                        @if let Some(n) = item.grants { (plural(n, "grant", "grants")) }
                                    }
                                    td.expiry {
                                        @match item.expires_at.as_deref().and_then(sift_engine::parse_datetime) {
                                            Some(at) => (time(at)),
                                            None => span.muted { "never" },
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                p.muted { a href="/ui/scoring" { "Scoring rules" } }
            }
        }
    }
}

fn source_words(item: &crate::api::contact_score::ScoreItem) -> Markup {
    match item.source {
        "rule" => html! {
            "Rule: each " span.field { (item.event_type.as_deref().unwrap_or("event")) }
            @if let Some(text) = &item.where_text { " where " code { (text) } }
        },
        "workflow" => match (&item.workflow_id, &item.workflow_name) {
            (Some(id), Some(name)) => html! {
                "Workflow " a href={ "/ui/workflows/" (url_part(id)) } { (name) }
            },
            _ => html! { "A workflow no longer kept" },
        },
        _ => html! { "Events older than the event retention" },
    }
}
