//! Reading a workflow body (docs/api.md) into the engine's [`WorkflowInput`],
//! and writing a saved workflow back in the same form (what `PATCH` merges
//! into). Every fault names the part at fault in `details.field`
//! (`actions[1].points`); condition faults keep their position or path.

use serde_json::{Map, Value as Json, json};
use sift_engine::{Action, Trigger, WorkflowDef, WorkflowInput, WorkflowStatus, Workspace};
use sift_lang::Condition;

use super::raw_value;
use super::scoring::{expires_of, filter_of};
use crate::error::ApiError;

pub const WORKFLOW_KEYS: [&str; 6] = [
    "name",
    "status",
    "test_segment",
    "trigger",
    "filter",
    "actions",
];

fn fault(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    let field = field.into();
    ApiError::validation(message).with(json!({"field": field}))
}

/// Adds `field` to an error's details (keeping what is there).
fn naming(mut error: ApiError, field: &str) -> ApiError {
    if let Json::Object(details) = &mut error.details {
        details
            .entry("field")
            .or_insert_with(|| Json::String(field.to_string()));
    }
    error
}

fn object<'a>(
    value: &'a Json,
    field: &str,
    example: &str,
) -> Result<&'a Map<String, Json>, ApiError> {
    value.as_object().ok_or_else(|| {
        fault(
            field,
            format!("\"{field}\" must be an object like {example}, got {value}"),
        )
    })
}

fn only_keys(map: &Map<String, Json>, field: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match super::unknown_key(map, allowed) {
        Some(key) => {
            let at = if field.is_empty() {
                key.to_string()
            } else {
                format!("{field}.{key}")
            };
            Err(fault(
                at,
                format!("unknown key {key:?}; expected {}", allowed.join(", ")),
            ))
        }
        None => Ok(()),
    }
}

fn string(map: &Map<String, Json>, key: &str, field: &str) -> Result<String, ApiError> {
    match map.get(key) {
        Some(Json::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => Err(fault(
            field,
            format!("\"{key}\" must be a non-empty string, got {other}"),
        )),
        None => Err(fault(field, format!("\"{key}\" is required"))),
    }
}

/// A segment given by id, or by name when no id matches.
fn segment_ref(engine: &Workspace, given: String) -> String {
    if engine.segment(&given).is_some() {
        return given;
    }
    engine
        .segments()
        .by_name(&given)
        .map_or(given, |s| s.def.id.clone())
}

/// Reads a create body (or a `PATCH` merged into the saved workflow).
pub fn workflow_input(
    id: String,
    body: &Json,
    engine: &Workspace,
) -> Result<WorkflowInput, ApiError> {
    let map = body.as_object().ok_or_else(|| {
        ApiError::validation(
            "the body must be a JSON object like {\"name\": \"…\", \"trigger\": {…}, \"actions\": […]}",
        )
    })?;
    only_keys(map, "", &WORKFLOW_KEYS)?;
    let name = string(map, "name", "name")?;
    let status = match map.get("status") {
        None | Some(Json::Null) => WorkflowStatus::Draft,
        Some(Json::String(text)) => WorkflowStatus::parse(text).ok_or_else(|| {
            fault(
                "status",
                format!(
                    "\"status\" must be \"draft\", \"test\", \"active\" or \"paused\", got {text:?}"
                ),
            )
        })?,
        Some(other) => {
            return Err(fault(
                "status",
                format!("\"status\" must be a string, got {other}"),
            ));
        }
    };
    let test_segment = match map.get("test_segment") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(segment_ref(engine, s.clone())),
        Some(other) => {
            return Err(fault(
                "test_segment",
                format!("\"test_segment\" must be a segment id, got {other}"),
            ));
        }
    };
    let trigger = trigger_of(map.get("trigger").unwrap_or(&Json::Null), engine)?;
    let filter = filter_of_body(map.get("filter").unwrap_or(&Json::Null), engine)?;
    let actions = match map.get("actions") {
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| action_of(i, item, engine))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(fault(
                "actions",
                format!("\"actions\" must be a list, got {other}"),
            ));
        }
        None => return Err(fault("actions", "\"actions\" is required")),
    };
    Ok(WorkflowInput {
        id,
        name,
        status,
        test_segment,
        trigger,
        filter,
        actions,
    })
}

const TRIGGER_EXAMPLE: &str = "{\"type\": \"segment_entered\", \"segment\": \"seg_…\"} or {\"type\": \"event\", \"event_type\": \"purchase\"}";

fn trigger_of(value: &Json, engine: &Workspace) -> Result<Trigger, ApiError> {
    let map = object(value, "trigger", TRIGGER_EXAMPLE)?;
    let kind = string(map, "type", "trigger.type")?;
    match kind.as_str() {
        "segment_entered" | "segment_exited" => {
            only_keys(map, "trigger", &["type", "segment"])?;
            let segment = segment_ref(engine, string(map, "segment", "trigger.segment")?);
            Ok(if kind == "segment_entered" {
                Trigger::SegmentEntered(segment)
            } else {
                Trigger::SegmentExited(segment)
            })
        }
        "event" => {
            only_keys(map, "trigger", &["type", "event_type", "where"])?;
            let event_type = string(map, "event_type", "trigger.event_type")?;
            let filter = filter_of(map.get("where").unwrap_or(&Json::Null), engine)
                .map_err(|e| under(e, "/where", "/trigger/where"))
                .map_err(|e| naming(e, "trigger.where"))?;
            Ok(Trigger::Event { event_type, filter })
        }
        other => Err(fault(
            "trigger.type",
            format!(
                "\"type\" must be \"segment_entered\", \"segment_exited\" or \"event\", got {other:?}"
            ),
        )),
    }
}

/// Moves a JSON error path (`/where/…`) under the body's key (`/trigger/where/…`).
fn under(mut error: ApiError, from: &str, to: &str) -> ApiError {
    if let Some(path) = error.details.get("path").and_then(Json::as_str)
        && let Some(rest) = path.strip_prefix(from)
    {
        let moved = format!("{to}{rest}");
        error.message = error.message.replace(path, &moved);
        error.details["path"] = Json::String(moved);
    }
    error
}

/// `filter`: a contact condition as text or as a JSON tree; `null` for none.
fn filter_of_body(value: &Json, engine: &Workspace) -> Result<Option<Condition>, ApiError> {
    let schema = engine.schema();
    let parsed = match value {
        Json::Null => return Ok(None),
        Json::String(text) if text.trim().is_empty() => return Ok(None),
        Json::String(text) => sift_lang::parse_text(text, &schema),
        Json::Object(_) => sift_lang::from_json(value, &schema).map_err(|mut e| {
            e.path = Some(format!("/filter{}", e.path.as_deref().unwrap_or("")));
            e
        }),
        other => {
            return Err(fault(
                "filter",
                format!("\"filter\" must be a condition, as text or a JSON tree, got {other}"),
            ));
        }
    };
    parsed
        .map(Some)
        .map_err(|e| naming(ApiError::from(e), "filter"))
}

fn action_of(i: usize, value: &Json, engine: &Workspace) -> Result<Action, ApiError> {
    let at = |part: &str| format!("actions[{i}].{part}");
    let map = object(
        value,
        &format!("actions[{i}]"),
        "{\"type\": \"add_to_segment\", \"segment\": \"seg_…\"}",
    )?;
    let kind = string(map, "type", &at("type"))?;
    let field = format!("actions[{i}]");
    match kind.as_str() {
        "add_to_segment" | "remove_from_segment" => {
            only_keys(map, &field, &["type", "segment"])?;
            let segment = segment_ref(engine, string(map, "segment", &at("segment"))?);
            Ok(if kind == "add_to_segment" {
                Action::AddToSegment(segment)
            } else {
                Action::RemoveFromSegment(segment)
            })
        }
        "add_score" => {
            only_keys(map, &field, &["type", "points", "expires_after"])?;
            let points = match map.get("points") {
                Some(value) => value.as_f64().ok_or_else(|| {
                    fault(
                        at("points"),
                        format!("\"points\" must be a number, got {value}"),
                    )
                })?,
                None => return Err(fault(at("points"), "\"points\" is required")),
            };
            let expires_after = expires_of(map.get("expires_after").unwrap_or(&Json::Null))
                .map_err(|mut e| {
                    e.details["field"] = Json::String(at("expires_after"));
                    e
                })?;
            Ok(Action::AddScore {
                points,
                expires_after,
            })
        }
        "set_property" => {
            only_keys(map, &field, &["type", "field", "value"])?;
            let name = string(map, "field", &at("field"))?;
            let value = map.get("value").ok_or_else(|| {
                fault(
                    at("value"),
                    "\"value\" is required (null removes the property)",
                )
            })?;
            Ok(Action::SetProperty {
                field: name,
                value: raw_value(value),
            })
        }
        "webhook" => {
            // `secret_hint` is what a GET shows: a body read back is taken
            // as is, the hint ignored.
            only_keys(map, &field, &["type", "url", "secret", "secret_hint"])?;
            let url = string(map, "url", &at("url"))?;
            let secret = match map.get("secret") {
                None | Some(Json::Null) => None,
                Some(Json::String(s)) => Some(s.clone()),
                Some(other) => {
                    return Err(fault(
                        at("secret"),
                        format!("\"secret\" must be a string, got {other}"),
                    ));
                }
            };
            Ok(Action::Webhook { url, secret })
        }
        other => Err(fault(
            at("type"),
            format!(
                "unknown action type {other:?}; expected add_to_segment, remove_from_segment, add_score, set_property or webhook"
            ),
        )),
    }
}

/// Checks every webhook action's URL against the destination policy; a
/// refused one names its action (`actions[1].url`).
pub fn check_destinations(
    actions: &[Action],
    destinations: &crate::destination::Destinations,
) -> Result<(), ApiError> {
    for (i, action) in actions.iter().enumerate() {
        if let Action::Webhook { url, .. } = action {
            destinations
                .parse(url.trim())
                .map_err(|why| fault(format!("actions[{i}].url"), format!("\"url\" {why}")))?;
        }
    }
    Ok(())
}

/// Gives each webhook action of a `PATCH`'s `actions` that omits `secret`
/// the secret of the saved webhook action with the same URL: a client that
/// reads a workflow (which shows only `secret_hint`) and sends its actions
/// back keeps the signing. `"secret": null` removes a secret; a new URL
/// without a secret is sent unsigned, since a secret is never carried to
/// another address.
pub fn keep_secrets(actions: &mut Json, saved: &[Action]) {
    let Json::Array(actions) = actions else {
        return;
    };
    for action in actions.iter_mut().filter_map(Json::as_object_mut) {
        if action.get("type").and_then(Json::as_str) != Some("webhook")
            || action.contains_key("secret")
        {
            continue;
        }
        let Some(url) = action.get("url").and_then(Json::as_str) else {
            continue;
        };
        let kept = saved.iter().find_map(|a| match a {
            Action::Webhook {
                url: saved_url,
                secret: Some(secret),
            } if saved_url == url => Some(secret.clone()),
            _ => None,
        });
        if let Some(secret) = kept {
            action.insert("secret".to_string(), Json::String(secret));
        }
    }
}

/// Replaces each webhook action's `secret` with its `secret_hint` (the
/// end of it, as webhooks show theirs; `null` when there is none).
pub fn mask_secrets(body: &mut Json) {
    let Some(actions) = body.get_mut("actions").and_then(Json::as_array_mut) else {
        return;
    };
    for action in actions.iter_mut().filter_map(Json::as_object_mut) {
        if let Some(secret) = action.remove("secret") {
            let hint = secret.as_str().map(crate::webhooks::secret_hint);
            action.insert("secret_hint".to_string(), json!(hint));
        }
    }
}

/// A saved workflow in the body's form: what `PATCH` merges into (with the
/// secrets; answers mask them with [`mask_secrets`]).
pub fn body_of(def: &WorkflowDef) -> Json {
    let trigger = match &def.trigger {
        Trigger::SegmentEntered(id) => json!({"type": "segment_entered", "segment": id}),
        Trigger::SegmentExited(id) => json!({"type": "segment_exited", "segment": id}),
        Trigger::Event { event_type, filter } => json!({
            "type": "event",
            "event_type": event_type,
            "where": filter.as_ref().map(sift_lang::to_json),
        }),
    };
    json!({
        "name": def.name,
        "status": def.status.as_str(),
        "test_segment": def.test_segment,
        "trigger": trigger,
        "filter": def.filter.as_ref().map(sift_lang::to_json),
        "actions": def.actions.iter().map(action_json).collect::<Vec<_>>(),
    })
}

pub fn action_json(action: &Action) -> Json {
    match action {
        Action::AddToSegment(id) | Action::RemoveFromSegment(id) => {
            json!({"type": action.type_name(), "segment": id})
        }
        Action::AddScore {
            points,
            expires_after,
        } => json!({
            "type": "add_score",
            "points": super::number(*points),
            "expires_after": expires_after.map(sift_lang::duration_to_json),
        }),
        Action::SetProperty { field, value } => json!({
            "type": "set_property",
            "field": field,
            "value": raw_json(value),
        }),
        Action::Webhook { url, secret } => json!({"type": "webhook", "url": url, "secret": secret}),
    }
}

fn raw_json(value: &sift_engine::RawValue) -> Json {
    use sift_engine::RawValue;
    match value {
        RawValue::Null | RawValue::Unsupported(_) => Json::Null,
        RawValue::Bool(b) => Json::Bool(*b),
        RawValue::Number(n) => super::number(*n),
        RawValue::String(s) => Json::String(s.clone()),
        RawValue::StringList(items) => json!(items),
    }
}
