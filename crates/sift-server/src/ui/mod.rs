//! The web UI (docs/ui.md): server-rendered pages (maud) for marketers, with
//! small dependency-free scripts for what needs interaction. Pages read the
//! engine through the same calls as the JSON API; the scripts call the API
//! itself, signed in by the session cookie.
//!
//! Every route here but the login page and the stylesheet needs a session.

mod contacts;
mod facebook;
mod fields;
mod layout;
mod live;
mod scoring;
mod segment_history;
mod segments;
mod static_members;
mod webhooks;
mod words;
mod workflows;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use crate::session;
pub use crate::session::Sessions;
pub use crate::session::cookie as session_cookie;
use crate::state::{AppState, WorkspaceHandle};

/// The signed-in workspace of a UI request; without a session, pages
/// redirect to the login form.
pub struct Signed(pub Arc<WorkspaceHandle>);

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        session::cookie(&parts.headers)
            .and_then(|cookie| state.workspace_for_session(cookie))
            .map(Signed)
            .ok_or_else(|| Redirect::to("/ui/login").into_response())
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/segments") }))
        .route("/ui", get(|| async { Redirect::to("/ui/segments") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/segments") }))
        .route("/ui/login", get(login_page).post(login_with_key))
        .route("/ui/logout", post(logout))
        .route("/ui/segments", get(segments::list))
        .route("/ui/segments/new", get(segments::new))
        .route("/ui/segments/{id}", get(segments::show))
        .route("/ui/segments/{id}/edit", get(segments::edit))
        .route("/ui/segments/{id}/contacts", get(segments::members))
        .route("/ui/segments/{id}/usages", get(segments::usages))
        .route("/ui/segments/{id}/history", get(segment_history::page))
        .route("/ui/segments/{id}/facebook", get(facebook::page))
        .route("/ui/contacts", get(contacts::list))
        .route("/ui/contacts/{id}", get(contacts::show))
        .route("/ui/fields", get(fields::list))
        .route("/ui/scoring", get(scoring::list))
        .route("/ui/webhooks", get(webhooks::list))
        .route("/ui/workflows", get(workflows::list))
        .route("/ui/workflows/new", get(workflows::new))
        .route("/ui/workflows/{id}", get(workflows::show))
        .route("/ui/workflows/{id}/edit", get(workflows::edit))
        .route("/ui/live/sizes", get(live::sizes))
        .route("/ui/live/segments/{id}", get(live::segment))
        .route("/ui/live/exports/{id}", get(live::export_job))
        .route("/ui/assets/{name}", get(asset))
}

/// Assets are compiled into the binary. The stylesheet and the theme script
/// carry no data and style the login page; the rest need a session.
async fn asset(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    const JS: &str = "text/javascript";
    let (body, mime, public): (&'static str, &str, bool) = match name.as_str() {
        "app.css" => (include_str!("assets/app.css"), "text/css", true),
        "theme.js" => (include_str!("assets/theme.js"), JS, true),
        "app.js" => (include_str!("assets/app.js"), JS, false),
        "builder.css" => (include_str!("assets/builder.css"), "text/css", false),
        "builder_parts.css" => (include_str!("assets/builder_parts.css"), "text/css", false),
        // The segment form: an ES module and the siblings it imports.
        "segment_form.js" => (include_str!("assets/segment_form.js"), JS, false),
        "workflows.js" => (include_str!("assets/workflows.js"), JS, false),
        "builder_terms.js" => (include_str!("assets/builder_terms.js"), JS, false),
        "builder_widgets.js" => (include_str!("assets/builder_widgets.js"), JS, false),
        "builder_rows.js" => (include_str!("assets/builder_rows.js"), JS, false),
        "builder_preview.js" => (include_str!("assets/builder_preview.js"), JS, false),
        "builder_groups.js" => (include_str!("assets/builder_groups.js"), JS, false),
        "builder_where.js" => (include_str!("assets/builder_where.js"), JS, false),
        "builder_suggest.js" => (include_str!("assets/builder_suggest.js"), JS, false),
        "builder_history.js" => (include_str!("assets/builder_history.js"), JS, false),
        // The workflow form's condition rows (the same modules).
        "workflow_builder.js" => (include_str!("assets/workflow_builder.js"), JS, false),
        "webhooks.js" => (include_str!("assets/webhooks.js"), JS, false),
        "facebook.js" => (include_str!("assets/facebook.js"), JS, false),
        "history.js" => (include_str!("assets/history.js"), JS, false),
        "scoring.js" => (include_str!("assets/scoring.js"), JS, false),
        "scoring.css" => (include_str!("assets/scoring.css"), "text/css", false),
        "static_members.js" => (include_str!("assets/static_members.js"), JS, false),
        "static_members.css" => (include_str!("assets/static_members.css"), "text/css", false),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    let signed =
        session::cookie(&headers).is_some_and(|c| state.workspace_for_session(c).is_some());
    if !public && !signed {
        return (StatusCode::UNAUTHORIZED, "sign in at /ui/login").into_response();
    }
    (
        [
            (header::CONTENT_TYPE, format!("{mime}; charset=utf-8")),
            // Assets change only with the binary; a short cache keeps an
            // upgrade visible within minutes.
            (header::CACHE_CONTROL, "private, max-age=300".to_string()),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    token: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response {
    if let Some(token) = query.token.as_deref() {
        return match state.sessions.redeem_login_token(token) {
            Some(ws) if state.workspace(&ws).is_some() => {
                signed_in(state.sessions.start(&ws, None))
            }
            _ => login_form(
                StatusCode::UNAUTHORIZED,
                Some(
                    "This sign-in link is no longer valid (the server restarted or it was mistyped). Use the link the server printed at its last start, or paste a workspace key.",
                ),
            ),
        };
    }
    login_form(StatusCode::OK, None)
}

#[derive(Deserialize)]
struct KeyForm {
    key: String,
}

async fn login_with_key(
    State(state): State<AppState>,
    axum::Form(form): axum::Form<KeyForm>,
) -> Response {
    let key = form.key.trim();
    match state.workspace_for_key(key) {
        Some(ws) => signed_in(state.sessions.start(&ws.id, Some(key))),
        None if state.is_admin(key) => login_form(
            StatusCode::FORBIDDEN,
            Some("That is the admin key, which manages workspaces. Paste a workspace key."),
        ),
        None => login_form(
            StatusCode::UNAUTHORIZED,
            Some("Unknown or revoked key. Check that you copied all of it (it starts with sk_)."),
        ),
    }
}

/// Sets the cookie and moves on with a 303, so the token leaves the address bar.
fn signed_in(cookie: String) -> Response {
    let mut response = Redirect::to("/ui/segments").into_response();
    if let Ok(value) = HeaderValue::from_str(&session::set_cookie(&cookie)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn logout(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(cookie) = session::cookie(&headers) {
        state.sessions.end(cookie);
        state.announce_revocation();
    }
    let mut response = Redirect::to("/ui/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn login_form(status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        main.login {
            h1 { "Sign in to Sift" }
            p.muted { "Open the sign-in link that " code { "sift serve" } " printed, or paste a workspace key." }
            form method="post" action="/ui/login" {
                label for="key" { "Workspace key" }
                input #key name="key" type="password" autocomplete="off" required placeholder="sk_…" autofocus;
                @if let Some(error) = error {
                    p.error role="alert" #login-error { (error) }
                }
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut response = (status, layout::bare("Sign in", body)).into_response();
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// An API error shown as a page: the same message, in the same words.
pub struct UiError(pub crate::error::ApiError);

impl From<crate::error::ApiError> for UiError {
    fn from(error: crate::error::ApiError) -> UiError {
        UiError(error)
    }
}

impl From<crate::workspace::WorkspaceError> for UiError {
    fn from(error: crate::workspace::WorkspaceError) -> UiError {
        UiError(error.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.0.code.status();
        let body = html! {
            main.login {
                h1 { "Something is not right" }
                p role="alert" #page-error { (self.0.message) }
                p { a href="/ui/segments" { "Back to segments" } }
            }
        };
        (status, layout::bare("Error", body)).into_response()
    }
}

pub type UiResult = Result<Response, UiError>;
