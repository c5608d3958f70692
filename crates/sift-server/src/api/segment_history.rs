//! A segment's past: `GET /v1/segments/{id}/revisions` (every create and
//! edit, newest first), `GET /v1/segments/{id}/sizes` (its size over time)
//! and the members as of a past instant (`as_of` on its contacts and its
//! CSV export), all read from the store: the revisions table and a replay
//! of the segment's change log.

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use sift_engine::{Workspace, format_datetime};
use sift_lang::{DateTime, Duration, DurationUnit};
use sift_store::RevisionRow;
use utoipa::ToSchema;

use super::contact_types::Contact;
use super::{Path, Query, Ws, cursor, limit, parse_cursor};
use crate::error::{ApiError, ApiResult};
use crate::reply::Page;
use crate::state::WorkspaceHandle;

/// Who made a revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionAuthor {
    /// The public id of the key (`sk_` and 8 hex digits) the request was
    /// made with, or the key its web UI session was signed in with; null
    /// when not known (a sign-in link, the demo, a revision from before
    /// history was kept).
    #[schema(required = true)]
    pub key_id: Option<String>,
    /// `api`, `ui`, `system` (the demo, the command line) or `before
    /// history` (a segment saved before revisions were kept).
    pub via: String,
}

/// One saved version of a segment's definition.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revision {
    /// 1 for the create, then one more per edit.
    #[schema(minimum = 1)]
    pub revision: u64,
    #[schema(format = DateTime)]
    pub at: String,
    pub name: String,
    pub description: String,
    /// The condition as text, naming referenced segments as they were then
    /// named; null for a static segment.
    #[schema(required = true)]
    pub condition: Option<String>,
    /// The condition as a JSON tree (docs/conditions.md); null for a
    /// static segment.
    #[schema(value_type = Option<std::collections::HashMap<String, Json>>, additional_properties, required = true)]
    pub condition_tree: Option<Json>,
    pub by: RevisionAuthor,
    /// Contacts this revision moved in and out; null when not known (from
    /// before history was kept).
    #[schema(required = true)]
    pub entered: Option<u64>,
    #[schema(required = true)]
    pub exited: Option<u64>,
}

impl Revision {
    fn of(row: RevisionRow, engine: &Workspace) -> Revision {
        let tree: Option<Json> = row
            .condition_tree
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok());
        // Revisions from before history was kept have only the tree.
        let condition = row.condition.or_else(|| {
            let schema = engine.schema();
            let cond = sift_lang::from_json(tree.as_ref()?, &schema).ok()?;
            Some(sift_lang::to_text(&cond, &schema))
        });
        Revision {
            revision: row.revision,
            at: format_datetime(row.at),
            name: row.name,
            description: row.description,
            condition,
            condition_tree: tree,
            by: RevisionAuthor {
                key_id: row.key_id,
                via: row.via,
            },
            entered: row.entered,
            exited: row.exited,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevisionsQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

fn no_segment(id: &str) -> ApiError {
    ApiError::not_found(format!("segment {id:?} does not exist"))
}

/// Answers the segment's creation instant, or 404.
fn created_at(ws: &WorkspaceHandle, id: &str) -> ApiResult<DateTime> {
    ws.read(|engine| engine.segment(id).map(|s| s.def.created_at))?
        .ok_or_else(|| no_segment(id))
}

/// Every create and edit of a segment, newest first.
#[utoipa::path(get, path = "/v1/segments/{id}/revisions", operation_id = "segment_revisions_list", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id"), RevisionsQuery),
    responses((status = 200, description = "a page of revisions, newest first", body = Page<Revision>),
              (status = 400, description = "a bad cursor or limit"),
              (status = 404, description = "no such segment")))]
pub async fn revisions(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<RevisionsQuery>,
) -> ApiResult<axum::Json<Page<Revision>>> {
    let before = parse_cursor(query.cursor.as_deref())?;
    let limit = limit(query.limit)?;
    created_at(&ws, &id)?;
    let segment = id.clone();
    let rows = ws
        .service
        .reads
        .clone()
        .run(move |reader| {
            reader
                .revisions(&segment, before.map(u64::from), limit + 1)
                .map_err(ApiError::internal)
        })
        .await?;
    let more = rows.len() > limit;
    let items: Vec<Revision> = ws.read(|engine| {
        rows.into_iter()
            .take(limit)
            .map(|row| Revision::of(row, engine))
            .collect()
    })?;
    let next_cursor = match items.last() {
        Some(last) if more => u32::try_from(last.revision).ok().map(cursor),
        _ => None,
    };
    Ok(axum::Json(Page { items, next_cursor }))
}

/// Parses an `as_of`-like instant (RFC 3339) named `name`.
fn instant(text: &str, name: &str) -> ApiResult<DateTime> {
    sift_lang::parse_datetime(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{name} must be an RFC 3339 instant like 2026-03-01T00:00:00Z, got {text:?}"
        ))
        .with(json!({"field": name}))
    })
}

/// The segment's members at `as_of`, checked against when it existed.
pub async fn members_as_of(
    ws: &WorkspaceHandle,
    id: &str,
    as_of: &str,
) -> ApiResult<RoaringBitmap> {
    let at = instant(as_of, "as_of")?;
    let created = created_at(ws, id)?;
    if at < created {
        return Err(ApiError::validation(format!(
            "segment {id:?} did not exist yet at {}: it was created at {}",
            format_datetime(at),
            format_datetime(created)
        ))
        .with(json!({"field": "as_of", "created_at": format_datetime(created)})));
    }
    let now = ws.clock().now_ms();
    if at > now {
        return Err(ApiError::validation(format!(
            "as_of {} is in the future; leave it out for the members now",
            format_datetime(at)
        ))
        .with(json!({"field": "as_of"})));
    }
    let segment = id.to_string();
    ws.service
        .reads
        .clone()
        .run(move |reader| {
            reader
                .members_as_of(&segment, at)
                .map_err(ApiError::internal)
        })
        .await
}

/// A page of `members` (contact numbers) after the cursor, as contacts
/// are now; contacts erased since are left out, their data being gone.
pub fn members_page(
    ws: &WorkspaceHandle,
    members: &RoaringBitmap,
    cursor_text: Option<&str>,
    limit_value: Option<usize>,
) -> ApiResult<Page<Contact>> {
    let after = parse_cursor(cursor_text)?;
    let limit = limit(limit_value)?;
    let start = after.map_or(0, |a| a.saturating_add(1));
    ws.read(|engine| {
        let mut items = Vec::with_capacity(limit);
        let mut last = None;
        let mut more = false;
        for no in members.range(start..) {
            let Some(view) = engine.contact(no) else {
                continue;
            };
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(Contact::new(view));
            last = Some(no);
        }
        Page {
            items,
            next_cursor: if more { last.map(cursor) } else { None },
        }
    })
    .map_err(ApiError::from)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SizesQuery {
    /// Start of the first step (RFC 3339). Default: 30 steps before `to`.
    from: Option<String>,
    /// No point after this instant (RFC 3339). Default: now.
    to: Option<String>,
    /// The step between points, as a duration: `1h`, `1d`, `1w`, `1mo`
    /// (calendar months)… Default `1d`.
    step: Option<String>,
}

/// One point of a segment's size over time.
#[derive(Debug, Serialize, ToSchema)]
pub struct SizePoint {
    /// The end of the step.
    #[schema(format = DateTime)]
    pub at: String,
    /// Members at `at`.
    pub size: u64,
    /// Entries and exits during the step: after the previous point (after
    /// `from` for the first) up to and including `at`.
    pub entered: u64,
    pub exited: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Sizes {
    pub items: Vec<SizePoint>,
}

/// The most points one sizes request answers.
pub const MAX_POINTS: usize = 1000;

fn scaled(step: Duration, times: u32) -> Option<Duration> {
    Some(Duration {
        amount: step.amount.checked_mul(times)?,
        unit: step.unit,
    })
}

/// The ends of the steps from `from`, up to `to`.
fn points(from: DateTime, to: DateTime, step: Duration) -> ApiResult<Vec<DateTime>> {
    let mut out = Vec::new();
    for i in 1.. {
        let at = scaled(step, i).map(|d| sift_engine::add_duration(from, d));
        match at {
            Some(at) if at <= to && at > from => {
                if out.len() == MAX_POINTS {
                    return Err(ApiError::validation(format!(
                        "from, to and step make more than {MAX_POINTS} points: take a longer step or a shorter range"
                    ))
                    .with(json!({"field": "step"})));
                }
                out.push(at);
            }
            _ => break,
        }
    }
    if out.is_empty() {
        return Err(ApiError::validation(
            "no whole step fits between from and to: take a shorter step or a longer range",
        )
        .with(json!({"field": "step"})));
    }
    Ok(out)
}

/// A segment's size over time, one point per step, with the entries and
/// exits of each step.
#[utoipa::path(get, path = "/v1/segments/{id}/sizes", operation_id = "segment_sizes", security(("bearer" = [])), tag = "segments",
    params(("id" = String, Path, description = "the segment's id"), SizesQuery),
    responses((status = 200, description = "one point per step, oldest first", body = Sizes),
              (status = 400, description = "an instant or a step that cannot be read"),
              (status = 404, description = "no such segment"),
              (status = 422, description = "a range and step making no point or too many")))]
pub async fn sizes(
    Ws(ws): Ws,
    Path(id): Path<String>,
    Query(query): Query<SizesQuery>,
) -> ApiResult<axum::Json<Sizes>> {
    let step_text = query.step.as_deref().unwrap_or("1d");
    let step = sift_lang::duration_from_json(step_text)
        .filter(|d| d.amount > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "step must be a duration like 1h, 1d, 1w or 1mo, got {step_text:?}"
            ))
            .with(json!({"field": "step"}))
        })?;
    let to = match &query.to {
        Some(text) => instant(text, "to")?,
        None => ws.clock().now_ms(),
    };
    let from = match &query.from {
        Some(text) => instant(text, "from")?,
        None => back(to, step, 30),
    };
    if from >= to {
        return Err(ApiError::validation("from must be before to").with(json!({"field": "from"})));
    }
    let points = points(from, to, step)?;
    created_at(&ws, &id)?;
    let segment = id.clone();
    let sizes = ws
        .service
        .reads
        .clone()
        .run(move |reader| {
            reader
                .sizes_at(&segment, from, &points)
                .map_err(ApiError::internal)
        })
        .await?;
    let items = sizes
        .into_iter()
        .map(|s| SizePoint {
            at: format_datetime(s.at),
            size: s.size,
            entered: s.entered,
            exited: s.exited,
        })
        .collect();
    Ok(axum::Json(Sizes { items }))
}

/// `steps` steps before `to`: calendar steps are counted back in days
/// from the month arithmetic's answer, which may land a day off a
/// calendar boundary; the points are counted forward from it exactly.
fn back(to: DateTime, step: Duration, steps: u32) -> DateTime {
    let fixed_ms = match step.unit {
        DurationUnit::Minutes => Some(60_000),
        DurationUnit::Hours => Some(3_600_000),
        DurationUnit::Days => Some(86_400_000),
        DurationUnit::Weeks => Some(7 * 86_400_000),
        DurationUnit::Months | DurationUnit::Years => None,
    };
    match fixed_ms {
        Some(ms) => to.saturating_sub(ms * i64::from(step.amount) * i64::from(steps)),
        None => {
            let months = if step.unit == DurationUnit::Years {
                12
            } else {
                1
            };
            let days = 31 * months * i64::from(step.amount) * i64::from(steps);
            to.saturating_sub(days * 86_400_000)
        }
    }
}
