//! Webhook subscriptions (docs/api.md `webhook`): each one has its own tokio
//! task (`deliver.rs`) that reads the durable change log (and, if asked, the
//! events) through its own reader, POSTs signed JSON batches in seq order,
//! retries with exponential backoff and jitter until the endpoint answers
//! 2xx, and only then moves its cursor, durably, through the workspace's
//! writer. A task never takes part in a client write: a slow, failing or
//! disabled endpoint holds up nothing but its own subscription.
//!
//! The registry here keeps each subscription's definition (a watch its task
//! follows) and its delivery status (in memory; the cursor is also stored).

mod deliver;
mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sift_store::{
    StoreError, StoredWebhook, WebhookCursor, WebhookRow, WebhookWrite, WorkspaceReader,
};
use tokio::sync::watch;

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::workspace::service::WorkspaceService;

pub use deliver::{delivery_id, sign};
pub use view::{DeliveryError, Webhook, WebhookDelivery, webhook_json};

/// Delivery settings, from [`Config`].
#[derive(Clone, Debug)]
pub struct Settings {
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub timeout: Duration,
    pub batch_max: usize,
    pub destinations: crate::destination::Destinations,
    /// Stamps attempts and errors; retry waits stay on real time (a
    /// subscription's task retries in memory, nothing is stored as due).
    pub clock: crate::clock::Clock,
}

/// Where a subscription's deliveries stand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = WebhookState)]
pub enum State {
    /// Everything durable has been acknowledged; waiting for commits.
    #[default]
    Idle,
    /// A batch's first attempt is under way.
    Delivering,
    /// The last attempt failed; the batch is tried again at `next_attempt_at`.
    Retrying,
    /// `enabled: false`: nothing is sent; the cursor waits where it is.
    Disabled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Delivering => "delivering",
            State::Retrying => "retrying",
            State::Disabled => "disabled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastError {
    pub at: i64,
    pub message: String,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
}

/// A subscription's delivery status, kept by its task.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub state: State,
    pub cursor: WebhookCursor,
    /// The batch being delivered, if any.
    pub delivery_id: Option<String>,
    /// Attempts made for that batch.
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<LastError>,
    /// Since this process started.
    pub delivered_batches: u64,
    pub delivered_changes: u64,
    pub delivered_events: u64,
}

pub struct Subscription {
    config: watch::Sender<WebhookRow>,
    status: Mutex<Status>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Subscription {
    fn new(stored: StoredWebhook) -> Arc<Subscription> {
        Arc::new(Subscription {
            config: watch::channel(stored.row).0,
            status: Mutex::new(Status {
                cursor: stored.cursor,
                ..Status::default()
            }),
            task: Mutex::new(None),
        })
    }

    pub fn row(&self) -> WebhookRow {
        self.config.borrow().clone()
    }

    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut status) = self.status.lock() {
            f(&mut status);
        }
    }

    fn stop(&self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

/// A workspace's subscriptions.
pub struct Registry {
    path: PathBuf,
    settings: Settings,
    /// Built on first use, once per workspace.
    client: std::sync::OnceLock<Option<reqwest::Client>>,
    subscriptions: Mutex<BTreeMap<String, Arc<Subscription>>>,
    /// Serializes creates, edits and deletes (read-modify-write of a row).
    edits: tokio::sync::Mutex<()>,
}

/// The HTTP client deliveries use: rustls with ring (the one TLS provider
/// in the tree), the system's root certificates, no redirects (a 3xx is a
/// failed delivery, so a body is never re-sent somewhere unexpected), names
/// resolved under the destination policy.
fn client(settings: &Settings) -> Option<reqwest::Client> {
    // Installing twice (several workspaces, tests) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    settings
        .destinations
        .client()
        .connect_timeout(settings.timeout)
        .user_agent(concat!("Sift-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .inspect_err(
            |error| tracing::error!(%error, "no HTTP client: webhooks will not be delivered"),
        )
        .ok()
}

impl Registry {
    /// Reads the workspace's subscriptions; [`start`] starts their tasks.
    pub fn open(path: &Path, config: &Config) -> Result<Registry, StoreError> {
        let settings = Settings {
            retry_base: Duration::from_millis(config.webhook_retry_base_ms.max(1)),
            retry_max: Duration::from_millis(config.webhook_retry_max_ms.max(1)),
            timeout: Duration::from_millis(config.webhook_timeout_ms.max(1)),
            batch_max: config.webhook_batch_max.max(1),
            destinations: config.destinations(),
            clock: config.clock.clone(),
        };
        let stored = WorkspaceReader::open(path)?.webhooks()?;
        let subscriptions = stored
            .into_iter()
            .map(|w| (w.row.id.clone(), Subscription::new(w)))
            .collect();
        Ok(Registry {
            path: path.to_path_buf(),
            client: std::sync::OnceLock::new(),
            settings,
            subscriptions: Mutex::new(subscriptions),
            edits: tokio::sync::Mutex::new(()),
        })
    }

    /// Every subscription, oldest first.
    pub fn list(&self) -> Vec<Arc<Subscription>> {
        let Ok(map) = self.subscriptions.lock() else {
            return Vec::new();
        };
        let mut all: Vec<Arc<Subscription>> = map.values().cloned().collect();
        all.sort_by_key(|s| {
            let row = s.config.borrow();
            (row.created_at, row.id.clone())
        });
        all
    }

    pub fn get(&self, id: &str) -> Option<Arc<Subscription>> {
        self.subscriptions.lock().ok()?.get(id).cloned()
    }

    fn client(&self) -> Option<reqwest::Client> {
        self.client.get_or_init(|| client(&self.settings)).clone()
    }
}

impl Registry {
    /// Starts the delivery task of every stored subscription.
    pub fn start(&self, service: &Arc<WorkspaceService>) {
        for subscription in self.list() {
            self.spawn(service, &subscription);
        }
    }

    fn spawn(&self, service: &Arc<WorkspaceService>, subscription: &Arc<Subscription>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(workspace = %service.id(), "no async runtime: webhooks are not delivered");
            return;
        };
        let Some(client) = self.client() else {
            return;
        };
        let task = runtime.spawn(deliver::run(
            Arc::downgrade(service),
            subscription.clone(),
            client,
            self.path.clone(),
            self.settings.clone(),
        ));
        if let Ok(mut slot) = subscription.task.lock() {
            *slot = Some(task.abort_handle());
        }
    }

    /// Stores a new subscription (its cursor starts after everything committed
    /// before it) and starts its task.
    pub async fn create(
        &self,
        service: &Arc<WorkspaceService>,
        row: WebhookRow,
    ) -> ApiResult<Arc<Subscription>> {
        let _edit = self.edits.lock().await;
        let id = row.id.clone();
        service
            .commit_webhooks(vec![WebhookWrite::Create(row)])
            .await?;
        let stored = service
            .reader()?
            .webhook(&id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::internal(format!("webhook {id} vanished after its create")))?;
        let subscription = Subscription::new(stored);
        self.subscriptions
            .lock()
            .map_err(|_| ApiError::internal("webhook registry lock poisoned"))?
            .insert(id, subscription.clone());
        self.spawn(service, &subscription);
        Ok(subscription)
    }

    /// Applies `edit` to a subscription's definition, stores it, and hands it to
    /// its task (which picks up a new URL, secret or `enabled` at once; a batch
    /// already built is sent as built).
    pub async fn update(
        &self,
        service: &Arc<WorkspaceService>,
        id: &str,
        edit: impl FnOnce(&mut WebhookRow) -> ApiResult<()>,
    ) -> ApiResult<Arc<Subscription>> {
        let _edit = self.edits.lock().await;
        let subscription = self.get(id).ok_or_else(|| not_found(id))?;
        let mut row = subscription.row();
        edit(&mut row)?;
        row.updated_at = service.clock.now_ms().max(row.updated_at);
        service
            .commit_webhooks(vec![WebhookWrite::Update(row.clone())])
            .await?;
        subscription.config.send_replace(row);
        Ok(subscription)
    }

    /// Deletes a subscription and stops its task (an attempt in flight is
    /// abandoned).
    pub async fn delete(&self, service: &Arc<WorkspaceService>, id: &str) -> ApiResult<()> {
        let _edit = self.edits.lock().await;
        if self.get(id).is_none() {
            return Err(not_found(id));
        }
        service
            .commit_webhooks(vec![WebhookWrite::Delete { id: id.to_string() }])
            .await?;
        let removed = self
            .subscriptions
            .lock()
            .map_err(|_| ApiError::internal("webhook registry lock poisoned"))?
            .remove(id);
        if let Some(subscription) = removed {
            subscription.stop();
        }
        Ok(())
    }
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("webhook {id:?} does not exist"))
        .with(json!({"kind": "webhook", "id": id}))
}

/// The end of a secret, so people can tell which one is set.
pub(crate) fn secret_hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "…".to_string();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("…{tail}")
}

/// How far behind a subscription is: seqs after its cursor, the age of the
/// oldest change it has yet to have acknowledged, events after its cursor.
pub struct Lag {
    pub seqs: u64,
    pub ms: Option<i64>,
    pub events: u64,
}

pub fn lag(service: &WorkspaceService, row: &WebhookRow, status: &Status) -> ApiResult<Lag> {
    let durable = *service.signals.durable.borrow();
    let from = status.cursor.change_seq;
    let reader = service.reader()?;
    let oldest = reader
        .changes_in(from, durable, row.segments.as_deref(), 1)
        .map_err(ApiError::internal)?;
    let events = if row.events {
        reader
            .last_event_seq()
            .map_err(ApiError::internal)?
            .saturating_sub(status.cursor.event_seq)
    } else {
        0
    };
    Ok(Lag {
        seqs: durable.saturating_sub(from),
        ms: oldest
            .first()
            .map(|c| (service.clock.now_ms() - c.at).max(0)),
        events,
    })
}
