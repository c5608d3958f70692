//! Contacts: upsert (one or a batch), read, list and search, delete, explain.

use axum::Json as Reply;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value as Json;
use sift_engine::MAX_BATCH;

use super::contact_types::{
    BatchWritten, Contact, ContactBatch, ContactBody, ContactDeleted, ContactExplanation,
    ExplainStep,
};
use super::{Body, Path, Query, Ws, contact_no, cursor, limit, parse_cursor};
use crate::error::{ApiError, ApiResult, Code, ItemError};
use crate::reply::Page;

/// Upserts one contact: given properties are set, `null` removes one.
#[utoipa::path(put, path = "/v1/contacts/{id}", operation_id = "contacts_upsert", security(("bearer" = [])), tag = "contacts",
    params(("id" = String, Path, description = "the contact's id")),
    request_body = ContactBody,
    responses((status = 200, description = "the contact with its segments", body = Contact),
              (status = 422, description = "a malformed body, a value of the wrong type, or past the field limit (field_limit_exceeded)")))]
pub async fn upsert(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<axum::response::Response> {
    let input = ContactBody::parse(&body)
        .map_err(ApiError::validation)?
        .input(id);
    let (_, view) = ws
        .write(|engine, now| {
            let write = engine.upsert_contacts(std::slice::from_ref(&input), now)?;
            let view = engine
                .lookup(&input.id)
                .and_then(|no| engine.contact_data(no));
            Ok((write, view))
        })
        .await?;
    let view = view.ok_or_else(|| ApiError::internal("upserted contact vanished"))?;
    let no = view.no;
    let contact = Contact::new(view);
    // The segment list looks at every segment: read under the shared lock,
    // so that other writes apply meanwhile, and written out from there
    // rather than copied. It shows this write's effect, and any later
    // write's, as a GET would.
    let body =
        ws.read(|engine| serde_json::to_vec(&contact.answer_with(ws.segment_refs.of(engine, no))))?;
    let body =
        body.map_err(|e| ApiError::internal(format!("the answer could not be written: {e}")))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// Upserts up to 10,000 contacts, all or nothing.
#[utoipa::path(post, path = "/v1/contacts:batch", operation_id = "contacts_batch", security(("bearer" = [])), tag = "contacts", request_body = ContactBatch,
    responses((status = 200, description = "counts of contacts written and membership changes", body = BatchWritten),
              (status = 413, description = "more than 10,000 contacts"),
              (status = 422, description = "every failing item, by index, in `details.items` (a list of `ItemError`); or past the field limit (field_limit_exceeded)", body = super::doc::ErrorBody,
                  example = json!({"error": {"code": "validation_failed", "message": "1 of the 2 items are invalid", "details": {"items": [
                      {"code": "validation_failed", "details": {}, "index": 1, "message": "each contact needs an \"id\" string"}]}}}))))]
pub async fn batch(Ws(ws): Ws, Body(body): Body<ContactBatch>) -> ApiResult<Reply<BatchWritten>> {
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
                let error = ApiError::validation("each contact needs an \"id\" string");
                failures.push(ItemError::new(index, error));
                continue;
            }
        };
        match ContactBody::parse(item) {
            Ok(contact) => {
                inputs.push(contact.input(id));
                indexes.push(index);
            }
            Err(message) => failures.push(ItemError::new(index, ApiError::validation(message))),
        }
    }
    if !failures.is_empty() {
        // Report every failing item, not only the malformed ones (docs/concepts.md "Guarantees").
        let refused = ws.read(|engine| engine.check_contacts(&inputs))?;
        for (at, error) in refused {
            failures.push(ItemError::new(indexes[at], ApiError::from(error)));
        }
        failures.sort_by_key(|f| f.index);
        return Err(ApiError::validation(format!(
            "{} of the {} items are invalid",
            failures.len(),
            body.contacts.len()
        ))
        .with(ItemError::details(&failures)));
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
                    let item = ItemError::new(0, ApiError::from(other));
                    ApiError::validation(format!("1 of the 1 items are invalid: {}", item.message))
                        .with(ItemError::details(&[item]))
                }
            })?;
            Ok((write, ()))
        })
        .await?;
    Ok(Reply(BatchWritten {
        changes: write.membership_changes,
        written: count,
    }))
}

/// One contact with its segments.
#[utoipa::path(get, path = "/v1/contacts/{id}", operation_id = "contacts_get", security(("bearer" = [])), tag = "contacts",
    params(("id" = String, Path, description = "the contact's id")),
    responses((status = 200, description = "the contact", body = Contact), (status = 404, description = "no such contact")))]
pub async fn get(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<Reply<Contact>> {
    let view = ws.read(|engine| contact_no(engine, &id).map(|no| engine.contact(no)))??;
    let view = view.ok_or_else(|| ApiError::not_found(format!("contact {id:?} does not exist")))?;
    Ok(Reply(Contact::new(view)))
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
pub fn contacts_page(
    ws: &crate::state::WorkspaceHandle,
    q: Option<&str>,
    segment: Option<&str>,
    cursor_text: Option<&str>,
    limit_value: Option<usize>,
) -> ApiResult<Page<Contact>> {
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
            .map(Contact::new)
            .collect();
        Ok::<_, ApiError>(Page {
            items,
            next_cursor: next,
        })
    })?
}

/// Lists and searches contacts, in creation order.
#[utoipa::path(get, path = "/v1/contacts", operation_id = "contacts_list", security(("bearer" = [])), tag = "contacts", params(ListQuery),
    responses((status = 200, description = "a page of contacts", body = Page<Contact>),
              (status = 404, description = "`segment` names no segment")))]
pub async fn list(Ws(ws): Ws, Query(query): Query<ListQuery>) -> ApiResult<Reply<Page<Contact>>> {
    let body = contacts_page(
        &ws,
        query.q.as_deref(),
        query.segment.as_deref(),
        query.cursor.as_deref(),
        query.limit,
    )?;
    Ok(Reply(body))
}

/// Erases a contact and all its data; its exits are recorded.
#[utoipa::path(delete, path = "/v1/contacts/{id}", operation_id = "contacts_delete", security(("bearer" = [])), tag = "contacts",
    params(("id" = String, Path, description = "the contact's id")),
    responses((status = 200, description = "deleted, with the number of segments it left", body = ContactDeleted), (status = 404, description = "no such contact")))]
pub async fn delete(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<Reply<ContactDeleted>> {
    let (write, ()) = ws
        .write(|engine, now| Ok((engine.delete_contact(&id, now)?, ())))
        .await?;
    Ok(Reply(ContactDeleted {
        deleted: true,
        exited: write.membership_changes,
        id,
    }))
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
    responses((status = 200, description = "the explanation tree", body = ContactExplanation),
              (status = 404, description = "no such contact or segment")))]
pub async fn explain(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<ExplainQuery>,
) -> ApiResult<Reply<ContactExplanation>> {
    let body = ws.read(|engine| {
        let no = contact_no(engine, &id)?;
        let node = engine.explain(no, &query.segment, ws.clock().now_ms())?;
        let member = engine
            .segment(&query.segment)
            .is_some_and(|s| s.members.contains(no));
        let schema = engine.schema();
        Ok::<_, ApiError>(ContactExplanation {
            contact_id: id,
            explanation: ExplainStep::new(&node, &schema),
            member,
            segment_id: query.segment,
        })
    })??;
    Ok(Reply(body))
}
