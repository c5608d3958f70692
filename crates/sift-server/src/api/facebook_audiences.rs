//! The workspace's Facebook connection and its ad account's Custom
//! Audiences (docs/api.md "Facebook connection and audiences"):
//! `GET`/`PUT`/`DELETE /v1/facebook/connection` keep one access token and
//! ad account per workspace (the token sealed, never answered back: only
//! its last characters), and `GET`/`POST /v1/facebook/audiences` list the
//! account's audiences and create one, with that token.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::openapi::Schema;
use utoipa::{IntoParams, ToSchema};

use super::facebook::{
    connection, digits_or_number, invalid, parse_access_token, parse_graph_url, parse_version,
    string,
};
use super::{Body, Query, Ws, checked, present, unknown_key};
use crate::error::{ApiError, ApiResult, Code};
use crate::facebook::audiences::{self, Account, Audience, LookupError};
use crate::facebook::connection as stored;
use crate::facebook::graph::Secret;
use crate::reply::Page;
use crate::state::AppState;

const CONNECTION_KEYS: [&str; 4] = ["access_token", "ad_account_id", "graph_url", "version"];
const AUDIENCE_KEYS: [&str; 2] = ["name", "description"];
/// Facebook's own limits on an audience's name and description are not
/// published; these keep what Sift sends small.
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 1000;
/// A cursor Facebook gave is a short base64 text.
const MAX_CURSOR: usize = 1024;

/// The workspace's Facebook connection; the token itself is never answered.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"connected": true, "ad_account_id": "1234567890", "token_hint": "x9Qz",
    "graph_url": "https://graph.facebook.com", "version": "v21.0", "updated_at": "2026-01-05T10:00:00.000Z"}))]
pub struct FacebookConnection {
    /// Whether a token and ad account are saved.
    pub connected: bool,
    /// The ad account's id (digits, without `act_`); null when not connected.
    #[schema(required = true)]
    pub ad_account_id: Option<String>,
    /// The token's last 4 characters, to tell tokens apart (empty for a
    /// token too short to show any of); null when not connected.
    #[schema(required = true)]
    pub token_hint: Option<String>,
    /// Where the Graph API is and its version: the connection's, else the
    /// server's settings.
    pub graph_url: String,
    pub version: String,
    #[schema(required = true, format = DateTime)]
    pub updated_at: Option<String>,
}

/// `PUT /v1/facebook/connection`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"access_token": "EAAB...", "ad_account_id": "act_1234567890"}))]
pub struct FacebookConnectionSet {
    /// A token with `ads_management` permission for the ad account; stored
    /// sealed, never answered back or logged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = true, max_length = 4096)]
    pub access_token: Option<Json>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = ad_account_schema, required = true)]
    pub ad_account_id: Option<Json>,
    /// Where the Graph API is; the server's setting unless given.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub graph_url: Option<Json>,
    /// The Graph API version, like `v21.0`; the server's setting unless given.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub version: Option<Json>,
}

/// What [`parse_ad_account`] takes: `act_` and digits, or the digits alone,
/// as a string (spaces around it ignored) or a whole number.
fn ad_account_schema() -> Schema {
    digits_or_number(
        "^\\s*(act_)?[0-9]{1,32}\\s*$",
        "The ad account's id, with or without `act_`, as Ads Manager shows it.",
    )
}

/// One Custom Audience of the ad account.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "23850000000000001", "name": "Newsletter subscribers", "description": null,
    "approximate_count_lower_bound": 1000, "approximate_count_upper_bound": 1200}))]
pub struct FacebookAudience {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    /// Facebook's estimate of the people it matched, as a range; null while
    /// it has none (a new or small audience).
    #[schema(required = true)]
    pub approximate_count_lower_bound: Option<u64>,
    #[schema(required = true)]
    pub approximate_count_upper_bound: Option<u64>,
}

impl From<Audience> for FacebookAudience {
    fn from(a: Audience) -> FacebookAudience {
        FacebookAudience {
            id: a.id,
            name: a.name,
            description: a.description,
            approximate_count_lower_bound: a.lower_bound,
            approximate_count_upper_bound: a.upper_bound,
        }
    }
}

/// `POST /v1/facebook/audiences`: a customer-list audience.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Sift: VIP customers", "description": "Exported from Sift"}))]
pub struct FacebookAudienceCreate {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200)]
    pub name: Option<Json>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub description: Option<Json>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AudiencesQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Audiences per page (Facebook gives at most 100 a page).
    pub limit: Option<usize>,
}

fn view(
    row: Option<&sift_store::ConnectionRow>,
    settings: &crate::facebook::Settings,
) -> FacebookConnection {
    let (graph_url, version) = stored::effective(row, settings);
    FacebookConnection {
        connected: row.is_some(),
        ad_account_id: row.map(|r| r.ad_account_id.clone()),
        token_hint: row.map(|r| r.token_hint.clone()),
        graph_url,
        version,
        updated_at: row.map(|r| sift_engine::format_datetime(r.updated_at)),
    }
}

/// What Facebook's refusal is, as an answer: a 422 when Facebook said no
/// (asking again the same way will not help), a 502 when it could not say.
fn lookup_error(error: LookupError) -> ApiError {
    match error {
        LookupError::Refused(message) => ApiError::new(Code::FacebookRefused, message),
        LookupError::Unavailable(message) => ApiError::new(Code::FacebookUnavailable, message),
    }
}

fn client(state: &AppState, ws: &crate::state::WorkspaceHandle) -> ApiResult<reqwest::Client> {
    audiences::client(&state.config.facebook, &ws.tasks.destinations)
        .ok_or_else(|| ApiError::internal("the HTTP client for Facebook could not be built"))
}

/// `act_123` or `123`, as digits.
fn parse_ad_account(value: Option<&Json>) -> ApiResult<String> {
    let given = match value {
        Some(Json::Number(n)) if n.is_u64() => n.to_string(),
        other => string(other, "ad_account_id", "\"act_1234567890\"")?
            .unwrap_or_default()
            .to_string(),
    };
    if given.is_empty() {
        return Err(invalid(
            "ad_account_id",
            "\"ad_account_id\" is required: the ad account's id, as Ads Manager shows it (act_1234567890)",
        ));
    }
    let digits = given.strip_prefix("act_").unwrap_or(&given);
    if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(
            "ad_account_id",
            format!(
                "\"ad_account_id\" must be an ad account id like act_1234567890, got {given:?}"
            ),
        ));
    }
    Ok(digits.to_string())
}

/// The workspace's Facebook connection (never the token: only its last
/// characters).
#[utoipa::path(get, path = "/v1/facebook/connection", operation_id = "facebook_connection_get", security(("bearer" = [])), tag = "facebook",
    responses((status = 200, description = "the connection; `connected: false` when none is saved", body = FacebookConnection)))]
pub async fn get(
    State(state): State<AppState>,
    Ws(ws): Ws,
) -> ApiResult<axum::Json<FacebookConnection>> {
    let row = stored::stored(&ws.service).map_err(ApiError::internal)?;
    Ok(axum::Json(view(row.as_ref(), &state.config.facebook)))
}

/// A 422 naming the fault unless `body` is an object holding only
/// `allowed` keys; `example` shows the shape, `what` names the body.
fn only_keys(body: &Json, allowed: &[&str], example: &str, what: &str) -> Result<(), ApiError> {
    let Json::Object(map) = body else {
        return Err(ApiError::validation(format!(
            "the body must be a JSON object like {example}"
        )));
    };
    match unknown_key(map, allowed) {
        Some(key) => Err(invalid(
            key,
            format!("unknown key {key:?}; {what} takes {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// Saves the workspace's Facebook connection, replacing any, once Facebook
/// accepted the token for the ad account (by listing one of its audiences).
#[utoipa::path(put, path = "/v1/facebook/connection", operation_id = "facebook_connection_set", security(("bearer" = [])), tag = "facebook",
    request_body = FacebookConnectionSet,
    responses((status = 200, description = "saved", body = FacebookConnection),
              (status = 422, description = "a missing or invalid key (`validation_failed`, details.field), or Facebook refused the token or the ad account (`facebook_refused`); nothing is saved"),
              (status = 502, description = "Facebook could not be reached or did not answer (`facebook_unavailable`); nothing is saved")))]
pub async fn set(
    State(state): State<AppState>,
    Ws(ws): Ws,
    Body(body): Body<Json>,
) -> ApiResult<axum::Json<FacebookConnection>> {
    only_keys(
        &body,
        &CONNECTION_KEYS,
        "{\"access_token\": \"EAAB…\", \"ad_account_id\": \"act_1234567890\"}",
        "a connection",
    )?;
    let body: FacebookConnectionSet = checked(body)?;
    let token = parse_access_token(body.access_token.as_ref())?
        .ok_or_else(|| {
            invalid(
                "access_token",
                "\"access_token\" is required: a token with ads_management permission for the ad account",
            )
        })?
        .to_string();
    let ad_account_id = parse_ad_account(body.ad_account_id.as_ref())?;
    let graph_url = parse_graph_url(body.graph_url.as_ref(), &ws.tasks.destinations)?;
    let version = parse_version(body.version.as_ref())?;
    let settings = &state.config.facebook;
    let token = Secret::new(token);
    let account = Account {
        graph_url: graph_url.as_deref().unwrap_or(&settings.graph_url),
        version: version.as_deref().unwrap_or(&settings.version),
        ad_account_id: &ad_account_id,
        token: &token,
    };
    // Checked before saving, so a wrong token or account is said now, not
    // at the first export.
    audiences::list(
        &client(&state, &ws)?,
        &ws.tasks.destinations,
        &account,
        1,
        None,
    )
    .await
    .map_err(lookup_error)?;
    let new = stored::NewConnection {
        ad_account_id: ad_account_id.clone(),
        graph_url,
        version,
        token: &token,
    };
    let row = stored::save(&ws.service, new, &state.config)
        .await
        .map_err(|why| {
            ApiError::internal(format!(
                "the Facebook access token cannot be stored encrypted: {why}"
            ))
        })?;
    Ok(axum::Json(view(Some(&row), settings)))
}

/// Removes the workspace's Facebook connection. Running syncs go on with
/// the token they started with; stop them with `DELETE /v1/exports/{id}`.
#[utoipa::path(delete, path = "/v1/facebook/connection", operation_id = "facebook_connection_delete", security(("bearer" = [])), tag = "facebook",
    responses((status = 200, description = "removed (also when none was saved)", body = FacebookConnection)))]
pub async fn delete(
    State(state): State<AppState>,
    Ws(ws): Ws,
) -> ApiResult<axum::Json<FacebookConnection>> {
    stored::remove(&ws.service)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(view(None, &state.config.facebook)))
}

/// The ad account's Custom Audiences, a page at a time, as Facebook lists
/// them.
#[utoipa::path(get, path = "/v1/facebook/audiences", operation_id = "facebook_audiences_list", security(("bearer" = [])), tag = "facebook",
    params(AudiencesQuery),
    responses((status = 200, description = "a page of audiences", body = Page<FacebookAudience>),
              (status = 409, description = "no Facebook connection is saved (`facebook_not_connected`)"),
              (status = 422, description = "Facebook refused the token, the account or the cursor (`facebook_refused`)"),
              (status = 502, description = "Facebook could not be reached or did not answer (`facebook_unavailable`)")))]
pub async fn list(
    State(state): State<AppState>,
    Ws(ws): Ws,
    Query(query): Query<AudiencesQuery>,
) -> ApiResult<axum::Json<Page<FacebookAudience>>> {
    let limit = super::limit(query.limit)?;
    let cursor = query.cursor.filter(|c| !c.is_empty());
    if let Some(cursor) = &cursor
        && (cursor.len() > MAX_CURSOR || !cursor.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(ApiError::bad_request(
            "cursor must be the next_cursor of an earlier page",
        ));
    }
    let connection = connection(&ws, &state.config)?;
    let account = connection.account();
    let (items, next_cursor) = audiences::list(
        &client(&state, &ws)?,
        &ws.tasks.destinations,
        &account,
        limit,
        cursor.as_deref(),
    )
    .await
    .map_err(lookup_error)?;
    Ok(axum::Json(Page {
        items: items.into_iter().map(FacebookAudience::from).collect(),
        next_cursor,
    }))
}

/// Creates a customer-list Custom Audience in the ad account (subtype
/// `CUSTOM`, customer file source `USER_PROVIDED_ONLY`), ready for exports.
#[utoipa::path(post, path = "/v1/facebook/audiences", operation_id = "facebook_audiences_create", security(("bearer" = [])), tag = "facebook",
    request_body = FacebookAudienceCreate,
    responses((status = 201, description = "created", body = FacebookAudience),
              (status = 409, description = "no Facebook connection is saved (`facebook_not_connected`)"),
              (status = 422, description = "a missing or invalid key (`validation_failed`, details.field), or Facebook refused (`facebook_refused`)"),
              (status = 502, description = "Facebook could not be reached or did not answer (`facebook_unavailable`)")))]
pub async fn create(
    State(state): State<AppState>,
    Ws(ws): Ws,
    Body(body): Body<Json>,
) -> ApiResult<(StatusCode, axum::Json<FacebookAudience>)> {
    only_keys(
        &body,
        &AUDIENCE_KEYS,
        "{\"name\": \"Sift: VIP customers\"}",
        "an audience",
    )?;
    let body: FacebookAudienceCreate = checked(body)?;
    let name = string(body.name.as_ref(), "name", "\"Sift: VIP customers\"")?.unwrap_or_default();
    if name.is_empty() {
        return Err(invalid("name", "\"name\" is required: the audience's name"));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!("\"name\" must be at most {MAX_NAME} characters, without control characters"),
        ));
    }
    let description = string(
        body.description.as_ref(),
        "description",
        "\"Exported from Sift\"",
    )?
    .filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(invalid(
            "description",
            format!("\"description\" must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    let connection = connection(&ws, &state.config)?;
    let account = connection.account();
    let id = audiences::create(
        &client(&state, &ws)?,
        &ws.tasks.destinations,
        &account,
        name,
        description,
    )
    .await
    .map_err(lookup_error)?;
    tracing::info!(workspace = %ws.service.id(), audience = %id, "created a Facebook Custom Audience");
    Ok((
        StatusCode::CREATED,
        axum::Json(FacebookAudience {
            id,
            name: name.to_string(),
            description: description.map(str::to_string),
            approximate_count_lower_bound: None,
            approximate_count_upper_bound: None,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ad_accounts_are_read_with_or_without_act() {
        assert_eq!(parse_ad_account(Some(&json!("act_123"))).unwrap(), "123");
        assert_eq!(parse_ad_account(Some(&json!(" 456 "))).unwrap(), "456");
        assert_eq!(parse_ad_account(Some(&json!(789))).unwrap(), "789");
        for bad in [json!("act_"), json!("act_12x"), json!(""), json!(true)] {
            assert!(parse_ad_account(Some(&bad)).is_err(), "{bad}");
        }
        assert!(parse_ad_account(None).is_err());
    }
}
