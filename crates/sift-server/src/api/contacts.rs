//! Contacts: upsert (one or a batch), read, list and search, delete, explain.

use serde::Deserialize;
use serde_json::{Value as Json, json};
use sift_engine::{ContactInput, ExplainNode, MAX_BATCH};

use super::{
    Body, Path, Query, Ws, contact_json, contact_no, cursor, limit, parse_cursor, raw_value,
    value_json,
};
use crate::error::{ApiError, ApiResult, Code};
use crate::reply::{JsonResponse, ok, page};

/// Reads `{"properties": {...}, "anonymous"?}` into an engine input.
fn contact_input(id: String, body: &Json) -> Result<ContactInput, String> {
    let Json::Object(map) = body else {
        return Err("a contact must be a JSON object like {\"properties\": {...}}".into());
    };
    let mut input = ContactInput {
        id,
        ..ContactInput::default()
    };
    for (key, value) in map {
        match key.as_str() {
            "id" => {}
            "properties" => {
                let Json::Object(properties) = value else {
                    return Err("\"properties\" must be an object of field names to values".into());
                };
                input.properties = properties
                    .iter()
                    .map(|(k, v)| (k.clone(), raw_value(v)))
                    .collect();
            }
            "anonymous" => match value {
                Json::Bool(b) => input.anonymous = Some(*b),
                _ => return Err("\"anonymous\" must be true or false".into()),
            },
            other => {
                return Err(format!(
                    "unknown key {other:?}: a contact has \"properties\" and \"anonymous\""
                ));
            }
        }
    }
    Ok(input)
}

/// Upserts one contact: given properties are set, `null` removes one.
#[utoipa::path(put, path = "/v1/contacts/{id}", operation_id = "contacts_upsert", security(("bearer" = [])), tag = "contacts",
    params(("id" = String, Path, description = "the contact's id")),
    request_body = Object,
    responses((status = 200, description = "the contact with its segments"), (status = 422, description = "a value of the wrong type")))]
pub async fn upsert(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<JsonResponse> {
    let input = contact_input(id, &body).map_err(ApiError::validation)?;
    let (_, view) = ws
        .write(|engine, now| {
            let write = engine.upsert_contacts(std::slice::from_ref(&input), now)?;
            let view = engine.lookup(&input.id).and_then(|no| engine.contact(no));
            Ok((write, view))
        })
        .await?;
    let view = view.ok_or_else(|| ApiError::internal("upserted contact vanished"))?;
    Ok(ok(contact_json(&view)))
}

#[derive(Deserialize)]
pub struct BatchBody {
    contacts: Vec<Json>,
}

/// Upserts up to 10,000 contacts, all or nothing.
#[utoipa::path(post, path = "/v1/contacts:batch", operation_id = "contacts_batch", security(("bearer" = [])), tag = "contacts", request_body = Object,
    responses((status = 200, description = "counts of contacts written and membership changes"),
              (status = 413, description = "more than 10,000 contacts"),
              (status = 422, description = "the failing items, by index")))]
pub async fn batch(Ws(ws): Ws, Body(body): Body<BatchBody>) -> ApiResult<JsonResponse> {
    if body.contacts.len() > MAX_BATCH {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            format!(
                "a batch holds at most {MAX_BATCH} contacts, this one has {}",
                body.contacts.len()
            ),
        ));
    }
    let mut inputs = Vec::with_capacity(body.contacts.len());
    let mut indexes = Vec::with_capacity(body.contacts.len());
    let mut failures = Vec::new();
    for (index, item) in body.contacts.iter().enumerate() {
        let id = match item.get("id") {
            Some(Json::String(id)) => id.clone(),
            _ => {
                failures.push(json!({"index": index, "code": Code::ValidationFailed.as_str(), "message": "each contact needs an \"id\" string", "details": {}}));
                continue;
            }
        };
        match contact_input(id, item) {
            Ok(input) => {
                inputs.push(input);
                indexes.push(index);
            }
            Err(message) => failures.push(json!({"index": index, "code": Code::ValidationFailed.as_str(), "message": message, "details": {}})),
        }
    }
    if !failures.is_empty() {
        // Report every failing item, not only the malformed ones (docs/concepts.md "Guarantees").
        let refused = ws.read(|engine| engine.check_contacts(&inputs))?;
        for (at, error) in refused {
            let item = ApiError::from(error);
            failures.push(json!({"index": indexes[at], "code": item.code.as_str(), "message": item.message, "details": item.details}));
        }
        failures.sort_by_key(|f| f["index"].as_u64());
        return Err(ApiError::validation(format!(
            "{} of the {} items are invalid",
            failures.len(),
            body.contacts.len()
        ))
        .with(json!({"items": failures})));
    }
    let count = inputs.len();
    let (write, ()) = ws
        .write(|engine, now| {
            let write = engine.upsert_contacts(&inputs, now).map_err(|e| match e {
                sift_engine::Error::BatchInvalid { .. }
                // A field limit is the whole batch's, not one item's.
                | sift_engine::Error::TooManyFields { .. }
                | sift_engine::Error::TooManyNewFields { .. } => ApiError::from(e),
                // A batch of one reports its error unwrapped; keep the index.
                other => {
                    let item = ApiError::from(other);
                    ApiError::validation(format!("1 of the 1 items are invalid: {}", item.message)).with(json!({"items": [
                        {"index": 0, "code": item.code.as_str(), "message": item.message, "details": item.details}
                    ]}))
                }
            })?;
            Ok((write, ()))
        })
        .await?;
    Ok(ok(
        json!({"written": count, "changes": write.membership_changes}),
    ))
}

/// One contact with its segments.
#[utoipa::path(get, path = "/v1/contacts/{id}", operation_id = "contacts_get", security(("bearer" = [])), tag = "contacts",
    params(("id" = String, Path, description = "the contact's id")),
    responses((status = 200, description = "the contact"), (status = 404, description = "no such contact")))]
pub async fn get(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<JsonResponse> {
    let view = ws.read(|engine| contact_no(engine, &id).map(|no| engine.contact(no)))??;
    let view = view.ok_or_else(|| ApiError::not_found(format!("contact {id:?} does not exist")))?;
    Ok(ok(contact_json(&view)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Part of the id or email, without case.
    q: Option<String>,
    /// Only members of this segment.
    segment: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// A page of contacts (matching `q`, in `segment`) after `cursor`, as the
/// list endpoints answer it.
pub fn contact_page(
    ws: &crate::state::WorkspaceHandle,
    q: Option<&str>,
    segment: Option<&str>,
    cursor_text: Option<&str>,
    limit_value: Option<usize>,
) -> ApiResult<Json> {
    let after = parse_cursor(cursor_text)?;
    let limit = limit(limit_value)?;
    ws.read(|engine| {
        let (numbers, more) = engine.list_contacts(q, segment, after, limit)?;
        let next = if more {
            numbers.last().map(|n| cursor(*n))
        } else {
            None
        };
        let items = numbers
            .iter()
            .filter_map(|no| engine.contact(*no))
            .map(|view| contact_json(&view))
            .collect();
        Ok::<_, ApiError>(page(items, next))
    })?
}

/// Lists and searches contacts, in creation order.
#[utoipa::path(get, path = "/v1/contacts", operation_id = "contacts_list", security(("bearer" = [])), tag = "contacts", params(ListQuery),
    responses((status = 200, description = "a page of contacts"),
              (status = 404, description = "`segment` names no segment")))]
pub async fn list(Ws(ws): Ws, Query(query): Query<ListQuery>) -> ApiResult<JsonResponse> {
    let body = contact_page(
        &ws,
        query.q.as_deref(),
        query.segment.as_deref(),
        query.cursor.as_deref(),
        query.limit,
    )?;
    Ok(ok(body))
}

/// Erases a contact and all its data; its exits are recorded.
#[utoipa::path(delete, path = "/v1/contacts/{id}", operation_id = "contacts_delete", security(("bearer" = [])), tag = "contacts",
    params(("id" = String, Path, description = "the contact's id")),
    responses((status = 200, description = "deleted, with the number of segments it left"), (status = 404, description = "no such contact")))]
pub async fn delete(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<JsonResponse> {
    let (write, ()) = ws
        .write(|engine, now| Ok((engine.delete_contact(&id, now)?, ())))
        .await?;
    Ok(ok(
        json!({"id": id, "deleted": true, "exited": write.membership_changes}),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// The segment's id.
    segment: String,
}

/// Per node of a segment's condition: whether it holds for this contact.
#[utoipa::path(get, path = "/v1/contacts/{id}/explain", operation_id = "contacts_explain", security(("bearer" = [])), tag = "contacts",
    params(("id" = String, Path, description = "the contact's id"), ExplainQuery),
    responses((status = 200, description = "the explanation tree"),
              (status = 404, description = "no such contact or segment")))]
pub async fn explain(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<ExplainQuery>,
) -> ApiResult<JsonResponse> {
    let body = ws.read(|engine| {
        let no = contact_no(engine, &id)?;
        let node = engine.explain(no, &query.segment, ws.clock.now_ms())?;
        let member = engine
            .segment(&query.segment)
            .is_some_and(|s| s.members.contains(no));
        let schema = engine.schema();
        Ok::<_, ApiError>(json!({
            "contact_id": id,
            "segment_id": query.segment,
            "member": member,
            "explanation": explain_json(&node, &schema),
        }))
    })??;
    Ok(ok(body))
}

fn explain_json(node: &ExplainNode, schema: &dyn sift_lang::Schema) -> Json {
    let mut out = json!({
        "condition": sift_lang::to_text(&node.condition, schema),
        "result": node.result,
        // When the result will next change by the passing of time alone.
        "next_change": node.next_change.map(super::datetime),
    });
    // What the node tested: a field's value, an event count or sum.
    if let sift_lang::Condition::Field { .. }
    | sift_lang::Condition::Event { .. }
    | sift_lang::Condition::EventSum { .. } = node.condition
    {
        out["value"] = node.value.as_ref().map_or(Json::Null, value_json);
    }
    if !node.children.is_empty() {
        out["children"] = Json::Array(
            node.children
                .iter()
                .map(|c| explain_json(c, schema))
                .collect(),
        );
    }
    out
}
