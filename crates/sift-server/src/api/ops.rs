//! Health and metrics.

use axum::extract::State;
use axum::response::IntoResponse;

use crate::state::AppState;

/// Liveness: the server answers.
#[utoipa::path(get, path = "/healthz", operation_id = "ops_healthz", tag = "ops", responses((status = 200, description = "ok", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", operation_id = "ops_metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
