//! Segments: create, list and search, read, edit, delete, preview, members,
//! static add/remove, usages. The bodies are in `segment_types`.

use std::time::Instant;

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value as Json;
use sift_engine::{Segment, SegmentInput, SegmentKind, SegmentPatch, Workspace};
use sift_lang::Condition;

use super::contact_types::Contact;
use super::segment_types::{
    Deleted, Evaluation, Kind, MembersBody, MembersChanged, Preview, PreviewRequest,
    Segment as SegmentView, SegmentCreate, SegmentUpdate, SegmentUsage,
};
use super::{Author, Body, Path, Query, Ws, checked, unknown_key};
use crate::error::{ApiError, ApiResult};
use crate::reply::Page;

/// Whole-segment evaluations: how many, and how long each took.
fn record_evaluation(kind: &'static str, took_ms: f64) {
    metrics::counter!("sift_segment_evaluations_total", "kind" => kind).increment(1);
    metrics::histogram!("sift_segment_evaluation_seconds", "kind" => kind).record(took_ms / 1000.0);
}

/// The condition of a body: `condition` (text) or `condition_tree` (JSON),
/// not both. Each is `None` when absent and `Some(Null)` when null.
fn condition_of(
    condition: Option<&Json>,
    tree: Option<&Json>,
    engine: &Workspace,
) -> Result<Option<Condition>, ApiError> {
    let schema = engine.schema();
    match (condition, tree) {
        (Some(Json::String(_)), Some(tree)) | (Some(Json::Null), Some(tree)) if !tree.is_null() => {
            Err(ApiError::validation(
                "give either \"condition\" (text) or \"condition_tree\" (JSON), not both",
            ))
        }
        (Some(Json::String(text)), _) => Ok(Some(sift_lang::parse_text(text, &schema)?)),
        (Some(Json::Null) | None, Some(tree)) if !tree.is_null() => {
            Ok(Some(sift_lang::from_json(tree, &schema)?))
        }
        (Some(Json::Null) | None, _) => Ok(None),
        (Some(_), _) => Err(ApiError::validation(
            "\"condition\" must be text; send a JSON tree as \"condition_tree\"",
        )),
    }
}

fn string_field(body: &Json, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::validation(format!("\"{key}\" must be a string"))),
    }
}

fn check_keys(body: &Json, allowed: &[&str]) -> Result<(), ApiError> {
    let Json::Object(map) = body else {
        return Err(ApiError::validation("the body must be a JSON object"));
    };
    match unknown_key(map, allowed) {
        Some(key) => Err(ApiError::validation(format!(
            "unknown key {key:?}; expected one of {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Part of the name, without case.
    q: Option<String>,
}

/// Lists segments with their sizes; `q` searches names.
#[utoipa::path(get, path = "/v1/segments", operation_id = "segments_list", security(("bearer" = [])), tag = "segments", params(ListQuery),
    responses((status = 200, description = "segments, by name", body = Page<SegmentView>)))]
pub async fn list(
    Ws(ws): Ws,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<SegmentView>>> {
    let needle = query.q.unwrap_or_default().to_lowercase();
    let items = ws.read(|engine| {
        let mut segments: Vec<&Segment> = engine
            .segments()
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.def.name.to_lowercase().contains(&needle))
            .collect();
        segments.sort_by_key(|s| s.def.name.to_lowercase());
        segments
            .iter()
            .map(|s| SegmentView::of(engine, s))
            .collect()
    })?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

const CREATE_KEYS: [&str; 6] = [
    "name",
    "description",
    "kind",
    "condition",
    "condition_tree",
    "test",
];

/// The checks of a create body that need no workspace, with their messages.
fn check_create(body: &Json) -> Result<(), ApiError> {
    check_keys(body, &CREATE_KEYS)?;
    string_field(body, "name")?
        .ok_or_else(|| ApiError::validation("a segment needs a \"name\""))?;
    string_field(body, "description")?;
    if let Some(kind_text) = string_field(body, "kind")?
        && SegmentKind::parse(&kind_text).is_none()
    {
        return Err(ApiError::validation(format!(
            "\"kind\" must be \"dynamic\" or \"static\", got {kind_text:?}"
        )));
    }
    match body.get("test") {
        None | Some(Json::Null) | Some(Json::Bool(_)) => Ok(()),
        Some(_) => Err(ApiError::validation("\"test\" must be true or false")),
    }
}

/// The segment after a create or an update, with what the write did.
fn evaluated(
    engine: &Workspace,
    id: &str,
    write: &sift_engine::Write,
    took_ms: f64,
    history_ms: f64,
) -> Result<SegmentView, ApiError> {
    let segment = engine
        .segment(id)
        .ok_or_else(|| ApiError::internal(format!("segment {id} is missing after its write")))?;
    let mut view = SegmentView::of(engine, segment);
    view.evaluation = Some(Evaluation {
        entered: write.entered,
        exited: write.exited,
        took_ms,
        history_events_read: write.history_read,
        history_ms,
    });
    Ok(view)
}

/// Creates a segment and evaluates it over all contacts before answering.
#[utoipa::path(post, path = "/v1/segments", operation_id = "segments_create", security(("bearer" = [])), tag = "segments", request_body = SegmentCreate,
    responses((status = 201, description = "the segment, with its evaluation", body = SegmentView), (status = 409, description = "the name is taken"),
              (status = 422, description = "invalid condition")))]
pub async fn create(
    Ws(ws): Ws,
    author: Author,
    Body(body): Body<Json>,
) -> ApiResult<(StatusCode, axum::Json<SegmentView>)> {
    check_create(&body)?;
    let body: SegmentCreate = checked(body)?;
    let kind = match body.kind.unwrap_or(Kind::Dynamic) {
        Kind::Dynamic => SegmentKind::Dynamic,
        Kind::Static => SegmentKind::Static,
    };
    let id = crate::ids::new_id("seg");
    let (_, view) = ws
        .write(|engine, now| {
            let condition = condition_of(
                body.condition.as_ref(),
                body.condition_tree.as_ref(),
                engine,
            )?;
            if kind == SegmentKind::Dynamic && condition.is_none() {
                return Err(ApiError::validation(
                    "a dynamic segment needs a \"condition\" or \"condition_tree\"",
                ));
            }
            let started = Instant::now();
            let input = SegmentInput {
                id: id.clone(),
                name: body.name,
                description: body.description.unwrap_or_default(),
                kind,
                condition,
                test: body.test.unwrap_or(false),
            };
            // The lock is held: no other stream runs meanwhile.
            let (_, history_before) = ws.service.history.totals();
            let mut write = engine.create_segment(input, now)?;
            author.sign(&mut write);
            let took_ms = started.elapsed().as_secs_f64() * 1000.0;
            let history_ms = ws.service.history.totals().1 - history_before;
            record_evaluation("create", took_ms);
            let view = evaluated(engine, &id, &write, took_ms, history_ms)?;
            Ok((write, view))
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

fn no_segment(id: &str) -> ApiError {
    ApiError::not_found(format!("segment {id:?} does not exist"))
}

/// One segment with its exact size.
#[utoipa::path(get, path = "/v1/segments/{id}", operation_id = "segments_get", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "the segment", body = SegmentView), (status = 404, description = "no such segment")))]
pub async fn get(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<SegmentView>> {
    let view = ws.read(|engine| engine.segment(&id).map(|s| SegmentView::of(engine, s)))?;
    view.map(axum::Json).ok_or_else(|| no_segment(&id))
}

const UPDATE_KEYS: [&str; 4] = ["name", "description", "condition", "condition_tree"];

/// Edits name, description or condition; a new condition is re-evaluated.
#[utoipa::path(patch, path = "/v1/segments/{id}", operation_id = "segments_update", security(("bearer" = [])), tag = "segments", request_body = SegmentUpdate,
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "the segment, with entered/exited counts", body = SegmentView),
              (status = 404, description = "no such segment"),
              (status = 409, description = "the name is taken"),
              (status = 422, description = "an invalid condition or key")))]
pub async fn update(
    Ws(ws): Ws,
    author: Author,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<axum::Json<SegmentView>> {
    check_keys(&body, &UPDATE_KEYS)?;
    string_field(&body, "name")?;
    string_field(&body, "description")?;
    let body: SegmentUpdate = checked(body)?;
    let (_, view) = ws
        .write(|engine, now| {
            let condition = condition_of(
                body.condition.as_ref(),
                body.condition_tree.as_ref(),
                engine,
            )?;
            let started = Instant::now();
            let patch = SegmentPatch {
                name: body.name,
                description: body.description,
                condition,
            };
            let (_, history_before) = ws.service.history.totals();
            let mut write = engine.update_segment(&id, patch, now)?;
            author.sign(&mut write);
            let took_ms = started.elapsed().as_secs_f64() * 1000.0;
            let history_ms = ws.service.history.totals().1 - history_before;
            let view = evaluated(engine, &id, &write, took_ms, history_ms)?;
            Ok((write, view))
        })
        .await?;
    Ok(axum::Json(view))
}

/// Deletes a segment; refused with its usages while anything refers to it.
#[utoipa::path(delete, path = "/v1/segments/{id}", operation_id = "segments_delete", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "deleted", body = Deleted), (status = 409, description = "in use; details list the usages"),
              (status = 404, description = "no such segment")))]
pub async fn delete(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<axum::Json<Deleted>> {
    ws.write(|engine, _| Ok((engine.delete_segment(&id)?, ())))
        .await?;
    Ok(axum::Json(Deleted::new(id)))
}

const PREVIEW_KEYS: [&str; 4] = ["condition", "condition_tree", "segment_id", "sample"];

/// Size and a sample of the members of an unsaved condition; with
/// `segment_id`, also how many would enter and leave that segment.
#[utoipa::path(post, path = "/v1/segments:preview", operation_id = "segments_preview", security(("bearer" = [])), tag = "segments", request_body = PreviewRequest,
    responses((status = 200, description = "size and sample", body = Preview),
              (status = 404, description = "`segment_id` names no segment"),
              (status = 422, description = "an invalid condition or key")))]
pub async fn preview(Ws(ws): Ws, Body(body): Body<Json>) -> ApiResult<axum::Json<Preview>> {
    check_keys(&body, &PREVIEW_KEYS)?;
    if let Some(n) = body.get("sample").filter(|n| !n.is_null())
        && n.as_u64().is_none_or(|n| n > 100)
    {
        return Err(ApiError::validation(
            "\"sample\" must be a number from 0 to 100",
        ));
    }
    string_field(&body, "segment_id")?;
    let body: PreviewRequest = checked(body)?;
    let sample_size = body.sample.map_or(10, |n| n as usize);
    let out = ws.read(|engine| {
        let condition = condition_of(
            body.condition.as_ref(),
            body.condition_tree.as_ref(),
            engine,
        )?
        .unwrap_or(Condition::All(Vec::new()));
        let started = Instant::now();
        let members = engine.preview(&condition, ws.clock().now_ms())?;
        let took_ms = started.elapsed().as_secs_f64() * 1000.0;
        record_evaluation("preview", took_ms);
        let sample = members
            .iter()
            .take(sample_size)
            .filter_map(|no| engine.contact(no))
            .map(Contact::new)
            .collect();
        let mut out = Preview {
            condition: sift_lang::to_text(&condition, &engine.schema()),
            condition_tree: sift_lang::to_json(&condition),
            entering: None,
            leaving: None,
            sample,
            size: members.len(),
            size_anonymous: members.intersection_len(engine.contacts().anonymous()),
            took_ms,
            warnings: sift_lang::warnings(&condition)
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        if let Some(id) = &body.segment_id {
            let segment = engine.segment(id).ok_or_else(|| no_segment(id))?;
            let current = segment.members.bitmap();
            out.entering = Some((&members - &*current).len());
            out.leaving = Some((&*current - &members).len());
        }
        Ok::<_, ApiError>(out)
    })??;
    Ok(axum::Json(out))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
    /// The members at this past instant (RFC 3339), replayed from the
    /// change log, shown as they are now (contacts erased since are left
    /// out); 422 before the segment existed or in the future.
    as_of: Option<String>,
}

/// The segment's members, a page at a time.
#[utoipa::path(get, path = "/v1/segments/{id}/contacts", operation_id = "segment_members_list", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id"), PageQuery),
    responses((status = 200, description = "a page of members, each a contact as `GET /v1/contacts/{id}` answers it", body = Page<Contact>),
              (status = 400, description = "a bad cursor, limit or as_of"),
              (status = 404, description = "no such segment"),
              (status = 422, description = "as_of is before the segment existed, or in the future")))]
pub async fn contacts(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<Contact>>> {
    if let Some(as_of) = &query.as_of {
        let members = super::segment_history::members_as_of(&ws, &id, as_of).await?;
        let page = super::segment_history::members_page(
            &ws,
            &members,
            query.cursor.as_deref(),
            query.limit,
        )?;
        return Ok(axum::Json(page));
    }
    let page =
        super::contacts::contacts_page(&ws, None, Some(&id), query.cursor.as_deref(), query.limit)?;
    Ok(axum::Json(page))
}

async fn set_members(
    ws: Ws,
    id: String,
    body: MembersBody,
    add: bool,
) -> ApiResult<axum::Json<MembersChanged>> {
    if body.contact_ids.len() > sift_engine::MAX_BATCH {
        return Err(ApiError::new(
            crate::error::Code::PayloadTooLarge,
            format!("at most {} contact ids per request", sift_engine::MAX_BATCH),
        ));
    }
    let (write, size) =
        ws.0.write(|engine, now| {
            let write = engine.set_static_members(&id, &body.contact_ids, add, now)?;
            let size = engine.segment(&id).map_or(0, |s| s.members.len());
            Ok((write, size))
        })
        .await?;
    Ok(axum::Json(MembersChanged {
        added: write.entered,
        removed: write.exited,
        size,
    }))
}

/// Adds contacts to a static segment (409 on a dynamic one).
#[utoipa::path(post, path = "/v1/segments/{id}/contacts", operation_id = "segment_members_add", security(("bearer" = [])), tag = "segments", request_body = MembersBody,
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "how many were added", body = MembersChanged), (status = 409, description = "the segment is dynamic"),
              (status = 404, description = "no such segment, or unknown contacts (listed in details.contact_ids)"),
              (status = 422, description = "an invalid contact id")))]
pub async fn add_members(
    ws: Ws,
    Path(id): Path<String>,
    Body(body): Body<MembersBody>,
) -> ApiResult<axum::Json<MembersChanged>> {
    set_members(ws, id, body, true).await
}

/// Removes contacts from a static segment (409 on a dynamic one).
#[utoipa::path(delete, path = "/v1/segments/{id}/contacts", operation_id = "segment_members_remove", security(("bearer" = [])), tag = "segments", request_body = MembersBody,
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "how many were removed", body = MembersChanged), (status = 409, description = "the segment is dynamic"),
              (status = 404, description = "no such segment, or unknown contacts (listed in details.contact_ids)"),
              (status = 422, description = "an invalid contact id")))]
pub async fn remove_members(
    ws: Ws,
    Path(id): Path<String>,
    Body(body): Body<MembersBody>,
) -> ApiResult<axum::Json<MembersChanged>> {
    set_members(ws, id, body, false).await
}

/// What refers to this segment.
#[utoipa::path(get, path = "/v1/segments/{id}/usages", operation_id = "segments_usages", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "the usages", body = Page<SegmentUsage>),
              (status = 404, description = "no such segment")))]
pub async fn usages(
    Ws(ws): Ws,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Page<SegmentUsage>>> {
    let usages = ws.read(|engine| engine.usages(&id))??;
    Ok(axum::Json(Page {
        items: SegmentUsage::list(&usages)?,
        next_cursor: None,
    }))
}
