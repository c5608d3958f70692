//! The bodies webhook routes take (docs/api.md "Webhooks"); the answer,
//! [`crate::webhooks::Webhook`], lives with the subscriptions.
//!
//! Each key is read as any JSON and then checked by the handler, which
//! names the key at fault in `details.field`; the schema says what a valid
//! body holds.

use serde::Deserialize;
use serde_json::Value as Json;
use utoipa::ToSchema;

/// `POST /v1/webhooks`: a URL subscribed to membership changes (of the
/// given segments, or all) and, with `"events": true`, accepted events.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/hooks/sift", "secret": "a-long-random-string-of-yours", "segments": null, "events": false}))]
pub struct WebhookCreate {
    /// Where deliveries are POSTed (the destination policy applies).
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = String, required = true, max_length = 2048)]
    pub url: Option<Json>,
    /// Deliveries are signed with it; at most 1,024 bytes.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = String, required = true, max_length = 1024)]
    pub secret: Option<Json>,
    /// Segment ids whose changes are sent; null or absent: every segment.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub segments: Option<Json>,
    /// Also send accepted events; false unless given.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<bool>)]
    pub events: Option<Json>,
    /// True unless given.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<bool>)]
    pub enabled: Option<Json>,
}

/// `PATCH /v1/webhooks/{id}`: the keys given replace the saved ones;
/// `"segments": null` means every segment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct WebhookUpdate {
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub url: Option<Json>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub secret: Option<Json>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub segments: Option<Json>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<bool>)]
    pub events: Option<Json>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<bool>)]
    pub enabled: Option<Json>,
}
