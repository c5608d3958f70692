//! HTTP integration tests of the API of docs/api.md: one test binary, one module
//! per area. Every test drives `sift_server::app` with `oneshot` (no socket)
//! over its own temporary data directory.

#[path = "api/common.rs"]
mod common;

#[path = "api/bounds.rs"]
mod bounds;
#[path = "api/changes.rs"]
mod changes;
#[path = "api/conditions.rs"]
mod conditions;
#[path = "api/contact_score.rs"]
mod contact_score;
#[path = "api/contacts.rs"]
mod contacts;
#[path = "api/destinations.rs"]
mod destinations;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/events.rs"]
mod events;
#[path = "api/export.rs"]
mod export;
#[path = "api/facebook.rs"]
mod facebook;
#[path = "api/facebook_audiences.rs"]
mod facebook_audiences;
#[path = "api/facebook_fake.rs"]
mod facebook_fake;
#[path = "api/facebook_jobs.rs"]
mod facebook_jobs;
#[path = "api/facebook_resume.rs"]
mod facebook_resume;
#[path = "api/field_limits.rs"]
mod field_limits;
#[path = "api/fields.rs"]
mod fields;
#[path = "api/history.rs"]
mod history;
#[path = "api/identify.rs"]
mod identify;
#[path = "api/names.rs"]
mod names;
#[path = "api/openapi_answers.rs"]
mod openapi_answers;
#[path = "api/openapi_bodies.rs"]
mod openapi_bodies;
#[path = "api/openapi_ops.rs"]
mod openapi_ops;
#[path = "api/openapi_schemas.rs"]
mod openapi_schemas;
#[path = "api/schema_check.rs"]
mod schema_check;
#[path = "api/scoring.rs"]
mod scoring;
#[path = "api/segment_history.rs"]
mod segment_history;
#[path = "api/segment_match.rs"]
mod segment_match;
#[path = "api/segments.rs"]
mod segments;
#[path = "api/seqs.rs"]
mod seqs;
#[path = "api/suggestions.rs"]
mod suggestions;
#[path = "api/ui.rs"]
mod ui;
#[path = "api/webhook_receiver.rs"]
mod webhook_receiver;
#[path = "api/webhooks.rs"]
mod webhooks;
#[path = "api/workflow_growth.rs"]
mod workflow_growth;
#[path = "api/workflow_webhooks.rs"]
mod workflow_webhooks;
#[path = "api/workflows.rs"]
mod workflows;
#[path = "api/workspaces_auth.rs"]
mod workspaces_auth;
