//! A subscription as the API and the web UI show it: its definition (the
//! secret only as a hint) and where its deliveries stand.
//!
//! Fields are in alphabetical order: the answer was serialized from sorted
//! JSON maps before it was typed, and keeps the same bytes.

use serde::Serialize;
use serde_json::Value as Json;
use sift_engine::format_datetime as text;
use utoipa::ToSchema;

use super::{State, Subscription, lag, secret_hint};
use crate::error::{ApiError, ApiResult};
use crate::workspace::service::WorkspaceService;

/// A webhook subscription with its delivery status.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "wh_01j9zq3v4k5m6n7p8q9r0s1t2v", "url": "https://example.com/hooks/sift",
    "segments": null, "events": false, "enabled": true, "secret_hint": "…f00d",
    "created_at": "2026-01-05T10:00:00.000Z", "updated_at": "2026-01-05T10:00:00.000Z",
    "delivery": {
        "status": "idle", "change_cursor": 1, "event_cursor": 0, "lag_seqs": 0, "lag_ms": 0,
        "lag_events": 0, "delivery_id": null, "attempts": 0, "next_attempt_at": null,
        "last_success_at": null, "last_error": null, "delivered_batches": 0,
        "delivered_changes": 0, "delivered_events": 0
    }
}))]
pub struct Webhook {
    #[schema(format = DateTime)]
    pub created_at: String,
    pub delivery: WebhookDelivery,
    /// A disabled webhook sends nothing; its cursor waits.
    pub enabled: bool,
    /// Whether accepted events are sent as well as membership changes.
    pub events: bool,
    pub id: String,
    /// The end of the signing secret, to tell secrets apart.
    pub secret_hint: String,
    /// The segments whose changes are sent; null: every segment.
    #[schema(required = true)]
    pub segments: Option<Vec<String>>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub url: String,
}

/// Where a webhook's deliveries stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    /// Attempts made for the batch being delivered.
    pub attempts: u32,
    /// Every change with a lower seq has been acknowledged or is not sent.
    pub change_cursor: u64,
    /// Since this process started.
    pub delivered_batches: u64,
    pub delivered_changes: u64,
    pub delivered_events: u64,
    /// The batch being delivered.
    #[schema(required = true)]
    pub delivery_id: Option<String>,
    /// Every event with this seq or a lower one has been acknowledged.
    pub event_cursor: u64,
    pub lag_events: u64,
    /// How old the oldest unsent change is, 0 when none waits.
    pub lag_ms: i64,
    pub lag_seqs: u64,
    #[schema(required = true)]
    pub last_error: Option<DeliveryError>,
    #[schema(format = DateTime, required = true)]
    pub last_success_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub next_attempt_at: Option<String>,
    pub status: State,
}

/// The last failed attempt.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDeliveryError)]
pub struct DeliveryError {
    #[schema(format = DateTime)]
    pub at: String,
    pub message: String,
    /// The endpoint's HTTP status, when it answered.
    #[schema(required = true)]
    pub status: Option<u16>,
}

impl Webhook {
    pub fn of(service: &WorkspaceService, subscription: &Subscription) -> ApiResult<Webhook> {
        let row = subscription.row();
        let status = subscription.status();
        let lag = lag(service, &row, &status)?;
        let state = if row.enabled {
            status.state
        } else {
            State::Disabled
        };
        Ok(Webhook {
            created_at: text(row.created_at),
            delivery: WebhookDelivery {
                attempts: status.attempts,
                change_cursor: status.cursor.change_seq,
                delivered_batches: status.delivered_batches,
                delivered_changes: status.delivered_changes,
                delivered_events: status.delivered_events,
                delivery_id: status.delivery_id.clone(),
                event_cursor: status.cursor.event_seq,
                lag_events: lag.events,
                lag_ms: lag.ms.unwrap_or(0),
                lag_seqs: lag.seqs,
                last_error: status.last_error.as_ref().map(|e| DeliveryError {
                    at: text(e.at),
                    message: e.message.clone(),
                    status: e.status,
                }),
                last_success_at: status.cursor.acked_at.map(text),
                next_attempt_at: status.next_attempt_at.map(text),
                status: state,
            },
            enabled: row.enabled,
            events: row.events,
            id: row.id.clone(),
            secret_hint: secret_hint(&row.secret),
            segments: row.segments.clone(),
            updated_at: text(row.updated_at),
            url: row.url.clone(),
        })
    }
}

/// A subscription as the API answers it (the secret is never sent back).
pub fn webhook_json(service: &WorkspaceService, subscription: &Subscription) -> ApiResult<Json> {
    serde_json::to_value(Webhook::of(service, subscription)?).map_err(ApiError::internal)
}
