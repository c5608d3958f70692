//! An export job as the API answers it (`GET /v1/exports/{id}`).
//!
//! Jobs of earlier runs of the server are kept as the JSON they were stored
//! as (every stored job has had all these fields), so the answer is read
//! back from that JSON. Fields are in alphabetical order, as in the sorted
//! JSON maps the answer was built from before it was typed.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;

/// An export of a segment's members to a Facebook Custom Audience.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "exp_01j9zq3v4k5m6n7p8q9r0s1t2v", "segment_id": "seg_01j9zq3v4k5m6n7p8q9r0s1t2v",
    "audience_id": "23850000000000000", "state": "done", "sync": false, "phase": null,
    "identifiers": ["EMAIL", "PHONE"], "graph_url": "https://graph.facebook.com", "version": "v21.0",
    "total": 2, "sent": 2, "removed": 0, "skipped": 0, "unsubscribed": 0, "batch_count": 1,
    "num_received": 2, "num_invalid_entries": 0, "retries": 0, "retry_of": null,
    "batches": [{"n": 1, "method": "POST", "rows": 2, "status": 200, "num_received": 2,
                 "num_invalid_entries": 0, "session_id": "1", "attempts": 1, "at": "2026-01-05T10:00:01.000Z"}],
    "errors": [], "created_at": "2026-01-05T10:00:00.000Z", "updated_at": "2026-01-05T10:00:01.000Z"
}))]
pub struct ExportJob {
    pub audience_id: String,
    pub batch_count: u64,
    /// The most recent batches (at most 100); the totals count all.
    pub batches: Vec<ExportBatch>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The most recent errors (at most 100).
    pub errors: Vec<ExportError>,
    pub graph_url: String,
    pub id: String,
    /// The identifiers sent, like `EMAIL`.
    pub identifiers: Vec<String>,
    pub num_invalid_entries: u64,
    pub num_received: u64,
    /// A sync's phase: `initial`, `syncing` or `stopped`; null for a one-off export.
    #[schema(required = true)]
    pub phase: Option<String>,
    pub removed: u64,
    pub retries: u64,
    /// The failed export this one started again (`POST /v1/exports/{id}/retry`); null otherwise.
    #[serde(default)]
    #[schema(required = true)]
    pub retry_of: Option<String>,
    pub segment_id: String,
    pub sent: u64,
    pub skipped: u64,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub sync: bool,
    pub total: u64,
    pub unsubscribed: u64,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub version: String,
}

/// One request to the audience's `users` edge.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportBatch {
    #[schema(format = DateTime)]
    pub at: String,
    pub attempts: u32,
    /// `POST` adds rows, `DELETE` removes them.
    pub method: String,
    pub n: u64,
    #[schema(required = true)]
    pub num_invalid_entries: Option<u64>,
    #[schema(required = true)]
    pub num_received: Option<u64>,
    pub rows: u64,
    #[schema(required = true)]
    pub session_id: Option<String>,
    /// Facebook's HTTP status, when it answered.
    #[schema(required = true)]
    pub status: Option<u16>,
}

/// A failure the job met.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportError {
    #[schema(format = DateTime)]
    pub at: String,
    pub message: String,
}

impl ExportJob {
    /// Reads a job's JSON (running or stored).
    pub fn from_json(json: Json) -> Result<ExportJob, serde_json::Error> {
        serde_json::from_value(json)
    }
}
