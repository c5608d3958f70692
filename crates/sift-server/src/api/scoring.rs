//! Lead scoring rules (docs/concepts.md "Scoring rule"): create, list, read, edit,
//! delete. A rule is `{event_type, where?, points, expires_after?}`; each
//! matching event adds `points` to its contact's `lead_score`, taken away
//! again `expires_after` after the event's `at`.
//!
//! The condition language has no parser for a bare event filter, so `where`
//! is read by wrapping it in an event condition (`performed event where (…)`
//! as text, `{"event": …, "where": …}` as JSON) and taking the filter back
//! out; text error positions are moved back into the client's text.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use sift_engine::{ScoringRuleInput, ScoringRulePatch, Workspace};
use sift_lang::{Condition, ConditionError, Duration, Position};

use super::scoring_types::{
    ScoringRule as RuleView, ScoringRuleCreate, ScoringRuleDeleted, ScoringRuleUpdate,
};
use super::{Body, Path, Ws, checked, unknown_key};
use crate::error::{ApiError, ApiResult, Code};
use crate::reply::Page;

const RULE_KEYS: [&str; 4] = ["event_type", "where", "points", "expires_after"];

fn check_keys(body: &Json) -> Result<(), ApiError> {
    let Json::Object(map) = body else {
        return Err(ApiError::validation(
            "the body must be a JSON object like {\"event_type\": \"purchase\", \"points\": 10}",
        ));
    };
    match unknown_key(map, &RULE_KEYS) {
        Some(key) => Err(ApiError::validation(format!(
            "unknown key {key:?}; a scoring rule has {}",
            RULE_KEYS.join(", ")
        ))
        .with(json!({"field": key}))),
        None => Ok(()),
    }
}

fn event_type_of(value: &Json) -> Result<String, ApiError> {
    match value {
        Json::String(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ApiError::validation(
            "\"event_type\" must be a non-empty string like \"purchase\"",
        )
        .with(json!({"field": "event_type"}))),
    }
}

fn points_of(value: &Json) -> Result<f64, ApiError> {
    value.as_f64().ok_or_else(|| {
        ApiError::validation(format!("\"points\" must be a number, got {value}"))
            .with(json!({"field": "points"}))
    })
}

/// The wrapper `where` text goes into; the event type does not matter, since
/// a filter reads only the event's properties.
const TEXT_PREFIX: &str = "performed event where (";

/// `where` as a JSON tree (an object) or as text; `null` means none.
pub(crate) fn filter_of(value: &Json, engine: &Workspace) -> Result<Option<Condition>, ApiError> {
    let schema = engine.schema();
    let parsed = match value {
        Json::Null => return Ok(None),
        Json::String(text) if text.trim().is_empty() => return Ok(None),
        Json::String(text) => {
            let wrapped = format!("{TEXT_PREFIX}{text})");
            sift_lang::parse_text(&wrapped, &schema).map_err(|e| text_error(e, text))?
        }
        // The wrapper puts the tree under "where", as in the request body,
        // so error paths (`/where/all/1/value`) already point into the body.
        Json::Object(_) => {
            sift_lang::from_json(&json!({"event": "event", "where": value}), &schema)?
        }
        other => {
            return Err(ApiError::validation(format!(
                "\"where\" must be a condition over the event's properties, as text or a JSON tree, got {other}"
            ))
            .with(json!({"field": "where"})));
        }
    };
    match parsed {
        Condition::Event {
            filter: Some(filter),
            count: None,
            in_last: None,
            ..
        } => Ok(Some(*filter)),
        // Text that closes the wrapper's parenthesis can add a count, a
        // window or another predicate; none of those belongs in a filter.
        _ => Err(ApiError::new(
            Code::InvalidCondition,
            "\"where\" must be only a condition over the event's properties, such as amount > 50 and category = \"shoes\"",
        )
        .with(json!({"field": "where"}))),
    }
}

/// Moves an error's position from the wrapped text back into the client's.
fn text_error(mut error: ConditionError, text: &str) -> ConditionError {
    if let Some(position) = error.position {
        let offset = position
            .offset
            .saturating_sub(TEXT_PREFIX.len())
            .min(text.len());
        error.position = Some(Position::at(text, offset));
        // The closing parenthesis of the wrapping is not the client's.
        if offset == text.len() {
            error.message = error.message.replace(", got \")\"", "");
        }
    }
    error
}

/// `expires_after`: `"30d"` (the JSON form) or `"30 days"` (text); `null`
/// means never.
pub(crate) fn expires_of(value: &Json) -> Result<Option<Duration>, ApiError> {
    let invalid = || {
        ApiError::validation(format!(
            "\"expires_after\" must be a positive duration like \"30d\" or \"30 days\", got {value}"
        ))
        .with(json!({"field": "expires_after"}))
    };
    let text = match value {
        Json::Null => return Ok(None),
        Json::String(text) => text.trim(),
        _ => return Err(invalid()),
    };
    let duration = match sift_lang::duration_from_json(text) {
        Some(duration) => duration,
        None => {
            // The text form has no standalone parser either: read it as a window.
            let wrapped = format!("performed event in last {text}");
            match sift_lang::parse_text(&wrapped, &no_schema()) {
                Ok(Condition::Event {
                    filter: None,
                    count: None,
                    in_last: Some(duration),
                    ..
                }) => duration,
                _ => return Err(invalid()),
            }
        }
    };
    if duration.amount == 0 {
        return Err(invalid());
    }
    Ok(Some(duration))
}

/// A schema with no fields or segments: a duration reads neither.
fn no_schema() -> impl sift_lang::Schema {
    struct Empty;
    impl sift_lang::Schema for Empty {
        fn field_type(&self, _: &str) -> Option<sift_lang::FieldType> {
            None
        }
        fn segment_id(&self, _: &str) -> Option<String> {
            None
        }
        fn segment_name(&self, _: &str) -> Option<String> {
            None
        }
    }
    Empty
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("scoring rule {id:?} does not exist"))
        .with(json!({"kind": "scoring rule", "id": id}))
}

/// The rule after a write, with what the write did.
fn written(engine: &Workspace, id: &str, write: &sift_engine::Write) -> Result<RuleView, ApiError> {
    let rule = engine.scoring_rule(id).ok_or_else(|| {
        ApiError::internal(format!("scoring rule {id} is missing after its write"))
    })?;
    let mut view = RuleView::of(engine, rule);
    view.rescored = Some(write.rescored);
    view.history_events_read = Some(write.history_read);
    view.changes = Some(write.membership_changes);
    Ok(view)
}

/// Every scoring rule.
#[utoipa::path(get, path = "/v1/scoring-rules", operation_id = "scoring_rules_list", security(("bearer" = [])), tag = "scoring",
    responses((status = 200, description = "the rules", body = Page<RuleView>)))]
pub async fn list(Ws(ws): Ws) -> ApiResult<axum::Json<Page<RuleView>>> {
    let items = ws.read(|engine| {
        engine
            .scoring_rules()
            .iter()
            .map(|rule| RuleView::of(engine, rule))
            .collect()
    })?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Creates a rule and scores past events with it before answering.
#[utoipa::path(post, path = "/v1/scoring-rules", operation_id = "scoring_rules_create", security(("bearer" = [])), tag = "scoring", request_body = ScoringRuleCreate,
    responses((status = 201, description = "the rule, with how many contacts were rescored", body = RuleView),
              (status = 422, description = "a missing or invalid part; an invalid \"where\" is invalid_condition")))]
pub async fn create(
    Ws(ws): Ws,
    Body(body): Body<Json>,
) -> ApiResult<(StatusCode, axum::Json<RuleView>)> {
    check_keys(&body)?;
    event_type_of(body.get("event_type").unwrap_or(&Json::Null))?;
    match body.get("points") {
        None => {
            return Err(ApiError::validation("a scoring rule needs \"points\"")
                .with(json!({"field": "points"})));
        }
        Some(value) => points_of(value)?,
    };
    let body: ScoringRuleCreate = checked(body)?;
    let expires_after = expires_of(body.expires_after.as_ref().unwrap_or(&Json::Null))?;
    let id = crate::ids::new_id("rule");
    let (_, view) = ws
        .write(|engine, now| {
            let filter = filter_of(body.filter.as_ref().unwrap_or(&Json::Null), engine)?;
            let input = ScoringRuleInput {
                id: id.clone(),
                event_type: body.event_type,
                filter,
                points: body.points,
                expires_after,
            };
            let write = engine.create_scoring_rule(input, now)?;
            let view = written(engine, &id, &write)?;
            Ok((write, view))
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// One rule.
#[utoipa::path(get, path = "/v1/scoring-rules/{id}", operation_id = "scoring_rules_get", security(("bearer" = [])), tag = "scoring",
    params(("id" = String, Path, description = "the rule's id")),
    responses((status = 200, description = "the rule", body = RuleView), (status = 404, description = "no such rule")))]
pub async fn get(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<RuleView>> {
    let view = ws.read(|engine| engine.scoring_rule(&id).map(|r| RuleView::of(engine, r)))?;
    view.map(axum::Json).ok_or_else(|| not_found(&id))
}

/// Edits a rule; `null` removes `where` or `expires_after`. Every contact
/// with events of the types involved is rescored before answering.
#[utoipa::path(patch, path = "/v1/scoring-rules/{id}", operation_id = "scoring_rules_update", security(("bearer" = [])), tag = "scoring", request_body = ScoringRuleUpdate,
    params(("id" = String, Path, description = "the rule's id")),
    responses((status = 200, description = "the rule, with how many contacts were rescored", body = RuleView),
              (status = 404, description = "no such rule"),
              (status = 422, description = "a missing or invalid part; an invalid \"where\" is invalid_condition")))]
pub async fn update(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<axum::Json<RuleView>> {
    check_keys(&body)?;
    body.get("event_type").map(event_type_of).transpose()?;
    body.get("points").map(points_of).transpose()?;
    let body: ScoringRuleUpdate = checked(body)?;
    let expires_after = body.expires_after.as_ref().map(expires_of).transpose()?;
    let (_, view) = ws
        .write(|engine, now| {
            if engine.scoring_rule(&id).is_none() {
                return Err(not_found(&id));
            }
            let filter = body
                .filter
                .as_ref()
                .map(|value| filter_of(value, engine))
                .transpose()?;
            let patch = ScoringRulePatch {
                event_type: body.event_type,
                filter,
                points: body.points,
                expires_after,
            };
            let write = engine.update_scoring_rule(&id, patch, now)?;
            let view = written(engine, &id, &write)?;
            Ok((write, view))
        })
        .await?;
    Ok(axum::Json(view))
}

/// Deletes a rule and takes its points away again.
#[utoipa::path(delete, path = "/v1/scoring-rules/{id}", operation_id = "scoring_rules_delete", security(("bearer" = [])), tag = "scoring",
    params(("id" = String, Path, description = "the rule's id")),
    responses((status = 200, description = "deleted, with how many contacts were rescored", body = ScoringRuleDeleted),
              (status = 404, description = "no such rule")))]
pub async fn delete(
    Ws(ws): Ws,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ScoringRuleDeleted>> {
    let (write, ()) = ws
        .write(|engine, now| {
            if engine.scoring_rule(&id).is_none() {
                return Err(not_found(&id));
            }
            Ok((engine.delete_scoring_rule(&id, now)?, ()))
        })
        .await?;
    Ok(axum::Json(ScoringRuleDeleted {
        changes: write.membership_changes,
        deleted: true,
        history_events_read: write.history_read,
        id,
        rescored: write.rescored,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(where_text: &str) -> Result<Option<String>, ApiError> {
        let engine = Workspace::new();
        let filter = filter_of(&json!(where_text), &engine)?;
        Ok(filter.map(|f| sift_lang::to_text(&f, &engine.schema())))
    }

    #[test]
    fn a_text_filter_is_read_and_printed_canonically() {
        assert_eq!(
            text("amount > 50 AND category = \"shoes\"")
                .unwrap()
                .as_deref(),
            Some("amount > 50 and category = \"shoes\"")
        );
        assert_eq!(
            text("(a = 1 or b = 2) and not c = 3").unwrap().as_deref(),
            Some("(a = 1 or b = 2) and not c = 3")
        );
        assert_eq!(text("  ").unwrap(), None);
    }

    #[test]
    fn text_errors_point_into_the_clients_text() {
        let error = text("amount >").unwrap_err();
        assert_eq!(error.code, Code::InvalidCondition);
        assert_eq!(error.details, json!({"line": 1, "column": 9}));
        // The wrapping's closing parenthesis is not mentioned.
        assert_eq!(error.message, "expected a value after \">\" at 1:9");
        let error = text("a = 1 and\n  b = ").unwrap_err();
        assert_eq!(error.details["line"], 2, "{}", error.message);
        let error = text("a = 1 and b ~ 2").unwrap_err();
        assert_eq!(error.details["column"], 13, "{}", error.message);
    }

    #[test]
    fn text_cannot_escape_the_filter() {
        for escape in [
            "a > 1) at least 2 times or (email is set",
            "a > 1) in last 5 days and (a < 3",
            "a > 1) or (a < 0",
            "performed login",
            "in segment \"VIP\"",
        ] {
            let error = text(escape).unwrap_err();
            assert_eq!(error.code, Code::InvalidCondition, "{escape}");
        }
    }

    #[test]
    fn a_json_filter_keeps_its_path_into_the_body() {
        let engine = Workspace::new();
        let tree = json!({"all": [{"field": "amount", "op": "gt", "value": 5}, {"field": "x", "op": "gt"}]});
        let error = filter_of(&tree, &engine).unwrap_err();
        assert_eq!(error.code, Code::InvalidCondition);
        assert!(
            error.details["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/where/all/1")),
            "{error:?}"
        );
        let good = json!({"field": "amount", "op": "gte", "value": 5});
        let filter = filter_of(&good, &engine).unwrap().unwrap();
        assert_eq!(sift_lang::to_json(&filter), good);
    }

    #[test]
    fn durations_are_json_or_text_and_positive() {
        let json_of = |v: Json| expires_of(&v).map(|d| d.map(sift_lang::duration_to_json));
        assert_eq!(json_of(json!("30d")).unwrap().as_deref(), Some("30d"));
        assert_eq!(json_of(json!("30 days")).unwrap().as_deref(), Some("30d"));
        assert_eq!(json_of(json!("1 Month")).unwrap().as_deref(), Some("1mo"));
        assert_eq!(json_of(json!(null)).unwrap(), None);
        for bad in [
            json!("-5d"),
            json!("0d"),
            json!("0 days"),
            json!(30),
            json!("soon"),
            json!("5 days where (a = 1)"),
        ] {
            let error = json_of(bad.clone()).unwrap_err();
            assert_eq!(error.details["field"], "expires_after", "{bad}");
        }
    }
}
