//! Segments: create, list and search, read, edit, delete, preview, members,
//! static add/remove, usages.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use sift_engine::{Segment, SegmentInput, SegmentKind, SegmentPatch, Workspace};
use sift_lang::Condition;

use super::{Body, Path, Query, Ws, contact_json, datetime, usages_json};
use crate::error::{ApiError, ApiResult};
use crate::reply::{JsonResponse, ok, page};

pub fn segment_json(engine: &Workspace, segment: &Segment) -> Json {
    let def = &segment.def;
    let schema = engine.schema();
    let anonymous = segment
        .members
        .intersection_len(engine.contacts().anonymous());
    json!({
        "id": def.id,
        "name": def.name,
        "description": def.description,
        "kind": def.kind.as_str(),
        "condition": def.condition.as_ref().map(|c| sift_lang::to_text(c, &schema)),
        "condition_tree": def.condition.as_ref().map(sift_lang::to_json),
        "test": def.test,
        "size": segment.members.len(),
        "size_known": segment.members.len() - anonymous,
        "size_anonymous": anonymous,
        "created_at": datetime(def.created_at),
        "updated_at": datetime(def.updated_at),
    })
}

/// Whole-segment evaluations: how many, and how long each took.
fn record_evaluation(kind: &'static str, took_ms: f64) {
    metrics::counter!("sift_segment_evaluations_total", "kind" => kind).increment(1);
    metrics::histogram!("sift_segment_evaluation_seconds", "kind" => kind).record(took_ms / 1000.0);
}

/// The condition of a body: `condition` (text) or `condition_tree` (JSON), not both.
fn condition_of(body: &Json, engine: &Workspace) -> Result<Option<Condition>, ApiError> {
    let schema = engine.schema();
    match (body.get("condition"), body.get("condition_tree")) {
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
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(ApiError::validation(format!(
                "unknown key {key:?}; expected one of {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Part of the name, without case.
    q: Option<String>,
}

/// Lists segments with their sizes; `q` searches names.
#[utoipa::path(get, path = "/v1/segments", operation_id = "segments_list", security(("bearer" = [])), tag = "segments", params(ListQuery),
    responses((status = 200, description = "segments, by name")))]
pub async fn list(Ws(ws): Ws, Query(query): Query<ListQuery>) -> ApiResult<JsonResponse> {
    let needle = query.q.unwrap_or_default().to_lowercase();
    let body = ws.read(|engine| {
        let mut segments: Vec<&Segment> = engine
            .segments()
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.def.name.to_lowercase().contains(&needle))
            .collect();
        segments.sort_by_key(|s| s.def.name.to_lowercase());
        page(
            segments.iter().map(|s| segment_json(engine, s)).collect(),
            None,
        )
    })?;
    Ok(ok(body))
}

/// Creates a segment and evaluates it over all contacts before answering.
#[utoipa::path(post, path = "/v1/segments", operation_id = "segments_create", security(("bearer" = [])), tag = "segments", request_body = Object,
    responses((status = 201, description = "the segment, with its evaluation"), (status = 409, description = "the name is taken"),
              (status = 422, description = "invalid condition")))]
pub async fn create(
    Ws(ws): Ws,
    Body(body): Body<Json>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Json>)> {
    check_keys(
        &body,
        &[
            "name",
            "description",
            "kind",
            "condition",
            "condition_tree",
            "test",
        ],
    )?;
    let name = string_field(&body, "name")?
        .ok_or_else(|| ApiError::validation("a segment needs a \"name\""))?;
    let description = string_field(&body, "description")?.unwrap_or_default();
    let kind_text = string_field(&body, "kind")?.unwrap_or_else(|| "dynamic".into());
    let kind = SegmentKind::parse(&kind_text).ok_or_else(|| {
        ApiError::validation(format!(
            "\"kind\" must be \"dynamic\" or \"static\", got {kind_text:?}"
        ))
    })?;
    let test = match body.get("test") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(ApiError::validation("\"test\" must be true or false")),
    };
    let id = format!("seg_{}", ulid::Ulid::new().to_string().to_lowercase());
    let (write, (json, took_ms)) = ws
        .write(|engine, now| {
            let condition = condition_of(&body, engine)?;
            if kind == SegmentKind::Dynamic && condition.is_none() {
                return Err(ApiError::validation(
                    "a dynamic segment needs a \"condition\" or \"condition_tree\"",
                ));
            }
            let started = Instant::now();
            let input = SegmentInput {
                id: id.clone(),
                name,
                description,
                kind,
                condition,
                test,
            };
            let write = engine.create_segment(input, now)?;
            let took_ms = started.elapsed().as_secs_f64() * 1000.0;
            record_evaluation("create", took_ms);
            let json = engine
                .segment(&id)
                .map(|s| segment_json(engine, s))
                .unwrap_or(Json::Null);
            Ok((write, (json, took_ms)))
        })
        .await?;
    let mut json = json;
    json["evaluation"] =
        json!({"entered": write.entered, "exited": write.exited, "took_ms": took_ms});
    Ok((axum::http::StatusCode::CREATED, axum::Json(json)))
}

/// One segment with its exact size.
#[utoipa::path(get, path = "/v1/segments/{id}", operation_id = "segments_get", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "the segment"), (status = 404, description = "no such segment")))]
pub async fn get(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<JsonResponse> {
    let body = ws.read(|engine| engine.segment(&id).map(|s| segment_json(engine, s)))?;
    body.map(ok)
        .ok_or_else(|| ApiError::not_found(format!("segment {id:?} does not exist")))
}

/// Edits name, description or condition; a new condition is re-evaluated.
#[utoipa::path(patch, path = "/v1/segments/{id}", operation_id = "segments_update", security(("bearer" = [])), tag = "segments", request_body = Object,
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "the segment, with entered/exited counts"),
              (status = 404, description = "no such segment"),
              (status = 409, description = "the name is taken"),
              (status = 422, description = "an invalid condition or key")))]
pub async fn update(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Body(body): Body<Json>,
) -> ApiResult<JsonResponse> {
    check_keys(
        &body,
        &["name", "description", "condition", "condition_tree"],
    )?;
    let name = string_field(&body, "name")?;
    let description = string_field(&body, "description")?;
    let (write, (json, took_ms)) = ws
        .write(|engine, now| {
            let condition = condition_of(&body, engine)?;
            let started = Instant::now();
            let write = engine.update_segment(
                &id,
                SegmentPatch {
                    name,
                    description,
                    condition,
                },
                now,
            )?;
            let took_ms = started.elapsed().as_secs_f64() * 1000.0;
            let json = engine
                .segment(&id)
                .map(|s| segment_json(engine, s))
                .unwrap_or(Json::Null);
            Ok((write, (json, took_ms)))
        })
        .await?;
    let mut json = json;
    json["evaluation"] =
        json!({"entered": write.entered, "exited": write.exited, "took_ms": took_ms});
    Ok(ok(json))
}

/// Deletes a segment; refused with its usages while anything refers to it.
#[utoipa::path(delete, path = "/v1/segments/{id}", operation_id = "segments_delete", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "deleted"), (status = 409, description = "in use; details list the usages"),
              (status = 404, description = "no such segment")))]
pub async fn delete(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<JsonResponse> {
    ws.write(|engine, _| Ok((engine.delete_segment(&id)?, ())))
        .await?;
    Ok(ok(json!({"id": id, "deleted": true})))
}

/// Size and a sample of the members of an unsaved condition; with
/// `segment_id`, also how many would enter and leave that segment.
#[utoipa::path(post, path = "/v1/segments:preview", operation_id = "segments_preview", security(("bearer" = [])), tag = "segments", request_body = Object,
    responses((status = 200, description = "size and sample"),
              (status = 404, description = "`segment_id` names no segment"),
              (status = 422, description = "an invalid condition or key")))]
pub async fn preview(Ws(ws): Ws, Body(body): Body<Json>) -> ApiResult<JsonResponse> {
    check_keys(
        &body,
        &["condition", "condition_tree", "segment_id", "sample"],
    )?;
    let sample_size = match body.get("sample") {
        None | Some(Json::Null) => 10,
        Some(n) => n
            .as_u64()
            .filter(|n| *n <= 100)
            .ok_or_else(|| ApiError::validation("\"sample\" must be a number from 0 to 100"))?
            as usize,
    };
    let segment_id = string_field(&body, "segment_id")?;
    let out = ws.read(|engine| {
        let condition = condition_of(&body, engine)?.unwrap_or(Condition::All(Vec::new()));
        let started = Instant::now();
        let members = engine.preview(&condition, ws.clock.now_ms())?;
        let took_ms = started.elapsed().as_secs_f64() * 1000.0;
        record_evaluation("preview", took_ms);
        let sample: Vec<Json> = members
            .iter()
            .take(sample_size)
            .filter_map(|no| engine.contact(no))
            .map(|view| contact_json(&view))
            .collect();
        let mut out = json!({
            "size": members.len(),
            "sample": sample,
            "condition": sift_lang::to_text(&condition, &engine.schema()),
            "condition_tree": sift_lang::to_json(&condition),
            "took_ms": took_ms,
        });
        if let Some(id) = &segment_id {
            let segment = engine
                .segment(id)
                .ok_or_else(|| ApiError::not_found(format!("segment {id:?} does not exist")))?;
            out["entering"] = json!((&members - &segment.members).len());
            out["leaving"] = json!((&segment.members - &members).len());
        }
        Ok::<_, ApiError>(out)
    })??;
    Ok(ok(out))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

/// The segment's members, a page at a time.
#[utoipa::path(get, path = "/v1/segments/{id}/contacts", operation_id = "segment_members_list", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id"), PageQuery),
    responses((status = 200, description = "a page of members"),
              (status = 404, description = "no such segment")))]
pub async fn contacts(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<JsonResponse> {
    let body =
        super::contacts::contact_page(&ws, None, Some(&id), query.cursor.as_deref(), query.limit)?;
    Ok(ok(body))
}

#[derive(Deserialize)]
pub struct MembersBody {
    contact_ids: Vec<String>,
}

async fn set_members(ws: Ws, id: String, body: MembersBody, add: bool) -> ApiResult<JsonResponse> {
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
    Ok(ok(
        json!({"added": write.entered, "removed": write.exited, "size": size}),
    ))
}

/// Adds contacts to a static segment (409 on a dynamic one).
#[utoipa::path(post, path = "/v1/segments/{id}/contacts", operation_id = "segment_members_add", security(("bearer" = [])), tag = "segments", request_body = Object,
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "how many were added"), (status = 409, description = "the segment is dynamic"),
              (status = 404, description = "no such segment, or unknown contacts (listed in details.contact_ids)"),
              (status = 422, description = "an invalid contact id")))]
pub async fn add_members(
    ws: Ws,
    Path(id): Path<String>,
    Body(body): Body<MembersBody>,
) -> ApiResult<JsonResponse> {
    set_members(ws, id, body, true).await
}

/// Removes contacts from a static segment (409 on a dynamic one).
#[utoipa::path(delete, path = "/v1/segments/{id}/contacts", operation_id = "segment_members_remove", security(("bearer" = [])), tag = "segments", request_body = Object,
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "how many were removed"), (status = 409, description = "the segment is dynamic"),
              (status = 404, description = "no such segment, or unknown contacts (listed in details.contact_ids)"),
              (status = 422, description = "an invalid contact id")))]
pub async fn remove_members(
    ws: Ws,
    Path(id): Path<String>,
    Body(body): Body<MembersBody>,
) -> ApiResult<JsonResponse> {
    set_members(ws, id, body, false).await
}

/// What refers to this segment.
#[utoipa::path(get, path = "/v1/segments/{id}/usages", operation_id = "segments_usages", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id")),
    responses((status = 200, description = "the usages"),
              (status = 404, description = "no such segment")))]
pub async fn usages(Ws(ws): Ws, Path(id): Path<String>) -> ApiResult<JsonResponse> {
    let usages = ws.read(|engine| engine.usages(&id))??;
    Ok(ok(
        json!({"items": usages_json(&usages), "next_cursor": null}),
    ))
}
