//! The server's settings: where data lives, the admin key, body limits,
//! and the delivery settings of webhooks, workflow actions and Facebook
//! exports (tests shorten the waits).

use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub admin_key: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Webhook deliveries: the first retry's delay (it doubles, with
    /// jitter, up to `webhook_retry_max_ms`).
    pub webhook_retry_base_ms: u64,
    pub webhook_retry_max_ms: u64,
    /// How long one delivery attempt may take before it counts as failed.
    pub webhook_timeout_ms: u64,
    /// Most changes (and most events) in one delivery.
    pub webhook_batch_max: usize,
    /// Whether workflows run (tests turn the runner off to leave triggers
    /// queued across a restart).
    pub run_workflows: bool,
    /// Workflow webhook actions (the outbox): the wait after the first failed attempt; it doubles
    /// with each further one.
    pub webhook_retry_base: std::time::Duration,
    /// How long a webhook endpoint has to answer.
    pub webhook_timeout: std::time::Duration,
    /// Facebook Custom Audience exports: Graph API address, version,
    /// retries (defaults, overridable by `SIFT_FACEBOOK_*` variables).
    pub facebook: crate::facebook::Settings,
    /// Custom fields per workspace, and new fields per write.
    pub field_limits: sift_engine::FieldLimits,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>, admin_key: Option<String>) -> Config {
        Config {
            data_dir: data_dir.into(),
            admin_key,
            max_body_bytes: 16 * 1024 * 1024,
            webhook_retry_base_ms: 1_000,
            webhook_retry_max_ms: 300_000,
            webhook_timeout_ms: 10_000,
            webhook_batch_max: 1_000,
            run_workflows: true,
            webhook_retry_base: std::time::Duration::from_secs(1),
            webhook_timeout: std::time::Duration::from_secs(10),
            facebook: crate::facebook::Settings::default(),
            field_limits: sift_engine::FieldLimits::default(),
        }
    }
}
