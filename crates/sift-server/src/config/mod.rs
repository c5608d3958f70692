//! The server's settings: where data lives, the admin key, body limits,
//! and the delivery settings of webhooks, workflow actions and Facebook
//! exports (tests shorten the waits).

pub mod facebook;

use std::path::PathBuf;
use std::time::Duration;

/// How long finished workflow runs and deliveries are kept: 30 days.
pub const DEFAULT_WORKFLOW_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

/// Reads a retention such as `30d`, `12h`, `90m` or `45s` (a whole number
/// and one unit; at least a second).
pub fn parse_retention(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let seconds = match unit.trim() {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => {
            return Err(format!(
                "{text:?} is not a retention: give a whole number and a unit, d, h, m or s (e.g. 30d, 12h)"
            ));
        }
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(seconds)
            .filter(|s| *s <= 100 * 365 * 86_400)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| format!("{text:?} is too long: at most 100 years")),
        _ => Err(format!(
            "{text:?} is not a retention: the number must be a whole number above 0 (e.g. 30d)"
        )),
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub admin_key: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Webhook subscriptions (`webhooks/`; not workflow webhook actions,
    /// whose settings are the `action_*` below): the first retry's delay
    /// (it doubles, with jitter, up to `webhook_retry_max_ms`).
    pub webhook_retry_base_ms: u64,
    pub webhook_retry_max_ms: u64,
    /// How long one delivery attempt may take before it counts as failed.
    pub webhook_timeout_ms: u64,
    /// Most changes (and most events) in one delivery.
    pub webhook_batch_max: usize,
    /// Whether workflows run (tests turn the runner off to leave triggers
    /// queued across a restart).
    pub run_workflows: bool,
    /// Workflow webhook actions (the outbox, `outbox.rs`; not webhook
    /// subscriptions, whose settings are the `webhook_*` above): the wait
    /// after the first failed attempt; it doubles with each further one.
    pub action_retry_base: std::time::Duration,
    /// How long a workflow webhook action's endpoint has to answer.
    pub action_timeout: std::time::Duration,
    /// Finished workflow runs and finished webhook-action deliveries older
    /// than this are deleted (`retention.rs`).
    pub workflow_retention: std::time::Duration,
    /// Days raw events are kept in the store (`None`: forever); older ones
    /// are deleted, their all-time contributions kept (`retention.rs`).
    pub event_retention_days: Option<u32>,
    /// Most triggers of one workflow waiting to run; beyond it, new
    /// triggers of that workflow are dropped and counted.
    pub workflow_queue_max: u64,
    /// Facebook Custom Audience exports: Graph API address, version,
    /// retries (defaults, overridable by `SIFT_FACEBOOK_*` variables).
    pub facebook: facebook::Settings,
    /// Lets webhooks, workflow webhooks and Facebook exports reach
    /// loopback, private and other non-public addresses (`destination.rs`).
    pub allow_private_destinations: bool,
    /// Names resolved to fixed addresses before DNS, still under the
    /// destination policy (tests make a name resolve to loopback with it).
    pub destination_hosts: std::collections::HashMap<String, Vec<std::net::IpAddr>>,
    /// The key that encrypts secrets at rest (Facebook sync tokens): 64 hex
    /// digits. Without it, `secret.key` in the data directory (created with
    /// mode 0600 when first needed).
    pub secret_key: Option<crate::secrets::SecretKey>,
    /// Whether Facebook syncs that were running resume when a workspace
    /// opens (`sift import` opens the data directory without them).
    pub resume_syncs: bool,
    /// Connections (`listen.rs`): how long a request head may take from its
    /// first byte.
    pub header_read_timeout: Duration,
    /// How long a request body may take to arrive, from its head (`body.rs`).
    pub body_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Most connections open at once (lowered to what `ulimit -n` allows).
    pub max_connections: usize,
    /// Read connections per workspace for the change log (streams, pages).
    pub read_pool_size: usize,
    /// Custom fields per workspace, and new fields per write.
    pub field_limits: sift_engine::FieldLimits,
    /// Business time for every workspace (`clock.rs`): the system clock,
    /// or a manual one that tests move.
    pub clock: crate::clock::Clock,
    /// Writes between two checkpoints of a workspace (docs/operations.md
    /// "Checkpoints"); 0: only at a graceful stop.
    pub checkpoint_every: u64,
    /// Test only: how long a checkpoint write waits with its draft written,
    /// before it is synced and renamed, so a test can kill the process
    /// inside the write (`SIFT_TEST_CHECKPOINT_PAUSE_MS`).
    pub checkpoint_pause: Option<Duration>,
}

/// Writes between two checkpoints unless `--checkpoint-every` says otherwise.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 100_000;

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
            action_retry_base: std::time::Duration::from_secs(1),
            action_timeout: std::time::Duration::from_secs(10),
            workflow_retention: DEFAULT_WORKFLOW_RETENTION,
            event_retention_days: None,
            workflow_queue_max: sift_engine::DEFAULT_MAX_QUEUED,
            facebook: facebook::Settings::default(),
            allow_private_destinations: false,
            destination_hosts: std::collections::HashMap::new(),
            secret_key: None,
            resume_syncs: true,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            read_pool_size: 2,
            field_limits: sift_engine::FieldLimits::default(),
            clock: crate::clock::Clock::System,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            checkpoint_pause: None,
        }
    }

    /// The destination policy outbound clients and URL checks use.
    pub fn destinations(&self) -> crate::destination::Destinations {
        crate::destination::Destinations {
            allow_private: self.allow_private_destinations,
            hosts: std::sync::Arc::new(self.destination_hosts.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_retention;
    use std::time::Duration;

    #[test]
    fn retentions_read_a_whole_number_and_a_unit() {
        for (text, seconds) in [
            ("30d", 30 * 86_400),
            ("12h", 43_200),
            ("90m", 5_400),
            ("45s", 45),
            (" 7d ", 7 * 86_400),
        ] {
            assert_eq!(parse_retention(text), Ok(Duration::from_secs(seconds)));
        }
        for bad in [
            "",
            "30",
            "d",
            "0d",
            "-1d",
            "1.5d",
            "30 days",
            "30w",
            "99999999999d",
        ] {
            let message = parse_retention(bad).unwrap_err();
            assert!(
                message.contains("30d") || message.contains("100 years"),
                "{message}"
            );
        }
    }
}
