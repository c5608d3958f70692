//! Server-wide Facebook settings: part of the configuration, so that the
//! configuration does not depend on the export jobs (`facebook/`) that read
//! them.

/// Server-wide Facebook settings (from `Config`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub graph_url: String,
    pub version: String,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    /// How long a sync waits after the last change before it sends.
    pub debounce_ms: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        let env_u64 = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Settings {
            graph_url: std::env::var("SIFT_FACEBOOK_GRAPH_URL")
                .unwrap_or_else(|_| "https://graph.facebook.com".to_string()),
            version: std::env::var("SIFT_FACEBOOK_VERSION").unwrap_or_else(|_| "v21.0".to_string()),
            retry_base_ms: env_u64("SIFT_FACEBOOK_RETRY_BASE_MS", 1_000),
            retry_max_ms: env_u64("SIFT_FACEBOOK_RETRY_MAX_MS", 60_000),
            max_attempts: env_u64("SIFT_FACEBOOK_MAX_ATTEMPTS", 6).clamp(1, 100) as u32,
            timeout_ms: env_u64("SIFT_FACEBOOK_TIMEOUT_MS", 60_000),
            debounce_ms: env_u64("SIFT_FACEBOOK_DEBOUNCE_MS", 1_000),
        }
    }
}
