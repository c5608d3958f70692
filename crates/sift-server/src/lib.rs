//! Sift's HTTP server: the JSON API of docs/api.md over the engine and the store.
//!
//! [`app`] builds the router without opening a socket, so tests drive it with
//! `tower::ServiceExt::oneshot`; [`serve`] runs it until shutdown, then lets
//! every workspace writer commit what it has queued.

pub mod api;
mod body;
mod checkpoints;
pub mod clock;
pub mod config;
pub mod csv_export;
pub mod destination;
pub mod error;
mod event_blocks;
pub mod facebook;
pub mod ids;
pub mod listen;
pub mod outbox;
pub mod reply;
mod retention;
pub mod revoke;
mod runner;
pub mod secrets;
pub mod sequenced;
pub mod session;
pub mod state;
mod timers;
pub mod ui;
pub mod webhooks;
pub mod workspace;
pub mod written;

#[cfg(test)]
mod layers;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, Code};
pub use state::{AppState, Config};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sift", description = "Real-time segmentation of marketing contacts"),
    tags(
        (name = "contacts"), (name = "events"), (name = "scoring", description = "lead scoring rules"), (name = "segments"), (name = "fields"), (name = "changes"), (name = "webhooks", description = "signed deliveries of membership changes and events"), (name = "workflows"), (name = "facebook", description = "the workspace's Facebook connection and its ad account's Custom Audiences"),
        (name = "admin", description = "needs the admin key"), (name = "ops")
    )
)]
struct ApiDoc;

/// The routes and the OpenAPI document built from the same declarations, so
/// the document cannot drift from what is served.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use api::*;
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(admin::create, admin::list))
        .routes(routes!(admin::add_key, admin::list_keys))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(fields::list))
        .routes(routes!(fields::declare))
        .routes(routes!(suggestions::field_values))
        .routes(routes!(suggestions::event_types))
        .routes(routes!(suggestions::event_property_values))
        .routes(routes!(contacts::list))
        .routes(routes!(contacts::upsert, contacts::get, contacts::delete))
        .routes(routes!(contacts::batch))
        .routes(routes!(contacts::explain))
        .routes(routes!(contact_score::score))
        .routes(routes!(events::ingest))
        .routes(routes!(identify::identify))
        .routes(routes!(scoring::list, scoring::create))
        .routes(routes!(scoring::get, scoring::update, scoring::delete))
        .routes(routes!(segments::list, segments::create))
        .routes(routes!(segments::get, segments::update, segments::delete))
        .routes(routes!(segments::preview))
        .routes(routes!(
            segments::contacts,
            segments::add_members,
            segments::remove_members
        ))
        .routes(routes!(segments::usages))
        .routes(routes!(segment_history::revisions))
        .routes(routes!(segment_history::sizes))
        .routes(routes!(segment_match::match_contacts))
        .routes(routes!(workflows::list, workflows::create))
        .routes(routes!(
            workflows::get,
            workflows::update,
            workflows::delete
        ))
        .routes(routes!(workflows::runs))
        .routes(routes!(export::export_csv))
        .routes(routes!(facebook::start))
        .routes(routes!(facebook::list))
        .routes(routes!(facebook::get, facebook::stop))
        .routes(routes!(facebook::retry))
        .routes(routes!(
            facebook_audiences::get,
            facebook_audiences::set,
            facebook_audiences::delete
        ))
        .routes(routes!(
            facebook_audiences::list,
            facebook_audiences::create
        ))
        .routes(routes!(changes::segment_changes))
        .routes(routes!(changes::stream))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    api::doc::complete(&mut doc);
    (router, doc)
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

pub fn app(state: AppState) -> Router {
    let (router, doc) = routes();
    let doc = axum::Json(doc);
    router
        .merge(ui::routes())
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || async move { doc }),
        )
        .fallback(|| async { ApiError::not_found("no such route; see GET /v1/openapi.json") })
        // axum adds the route's `Allow` header to whatever this answers.
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                Code::MethodNotAllowed,
                "this route does not take that method; the Allow header lists those it does, \
                 and GET /v1/openapi.json every route",
            )
        })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn(observe))
        .layer(middleware::from_fn_with_state(state.clone(), body::guard))
        .with_state(state)
}

/// Request latency by route, and a log line per request.
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    metrics::histogram!("sift_http_request_seconds", "route" => route.clone(), "method" => method.clone())
        .record(seconds);
    metrics::counter!("sift_http_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    tracing::debug!(%method, %route, status, ms = seconds * 1000.0, "request");
    response
}

/// Serves until `shutdown` resolves, then stops accepting, finishes in-flight
/// requests and flushes every queued write.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let result = listen::run(
        app(state.clone()),
        &state.config,
        listener,
        state.stopping.clone(),
        shutdown,
    )
    .await;
    let closing = state.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    result
}
