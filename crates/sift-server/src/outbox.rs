//! Webhook actions: the delivery task of a workspace's outbox. A run's
//! webhook is stored with the run (`webhook_outbox`); this task posts it
//! after the commit, at least once, signed when the action has a secret:
//! `Sift-Signature: sha256=<hex HMAC-SHA256 of the body>`, with the
//! delivery id in `Sift-Delivery` (the receiver's idempotency key). A
//! failure (not 2xx, a timeout, no connection) is retried with exponential
//! backoff and jitter, up to [`MAX_ATTEMPTS`]; each outcome is recorded on
//! the outbox row, which the run history shows. Deliveries run in their
//! own tasks, so a slow endpoint holds up neither the runner nor other
//! deliveries.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sift_engine::WebhookAttempt;
use sift_store::Delivery;
use tokio::sync::{Semaphore, watch};

use crate::clock::Clock;
use crate::destination::Destinations;
use crate::workspace::error::WorkspaceError;
use crate::workspace::service::WorkspaceService;

/// Attempts before a delivery is given up (the last waits about 4 minutes
/// at the default base of 1 s).
pub const MAX_ATTEMPTS: u32 = 10;
/// Deliveries in flight per workspace.
const CONCURRENCY: usize = 8;
/// Longest wait between two attempts.
const MAX_BACKOFF_MS: u64 = 3_600_000;

/// The HMAC-SHA256 of `body` under `secret`, as the header's value.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The wait after failed attempt `attempts` (1-based): `base · 2^(n-1)`,
/// capped, with up to a quarter of it as random jitter.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let base_ms = base.as_millis().max(1) as u64;
    let exp = base_ms.saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
    let capped = exp.min(MAX_BACKOFF_MS);
    let jitter = rand::random_range(0..=capped / 4);
    Duration::from_millis(capped + jitter)
}

pub fn spawn(
    handle: &Arc<WorkspaceService>,
    destinations: &Destinations,
    retry_base: Duration,
    timeout: Duration,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    // One TLS provider for the process; a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No redirects: a 3xx is a failed attempt, so a body is never re-sent
    // to an address the workflow did not name.
    let client = match destinations.client().timeout(timeout).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "no HTTP client: workflow webhooks are not delivered");
            return;
        }
    };
    let closed = handle.signals.closed.subscribe();
    let destinations = destinations.clone();
    runtime.spawn(run(
        Arc::downgrade(handle),
        closed,
        client,
        destinations,
        retry_base,
    ));
}

async fn run(
    weak: Weak<WorkspaceService>,
    mut closed: watch::Receiver<bool>,
    client: reqwest::Client,
    destinations: Destinations,
    retry_base: Duration,
) {
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        if *closed.borrow() {
            return;
        }
        let Some(handle) = weak.upgrade() else {
            return;
        };
        let busy = in_flight.lock().map_or(0, |set| set.len());
        let clock = handle.clock.clone();
        let now = clock.now_ms();
        let rows = match handle
            .reader()
            .map(|r| r.due_deliveries(i64::MAX, busy + 64))
        {
            Ok(Ok(rows)) => rows,
            Ok(Err(error)) => {
                tracing::error!(%error, "reading the webhook outbox failed; retrying in a second");
                Vec::new()
            }
            Err(_) => return,
        };
        let mut next_due: Option<i64> = None;
        for delivery in rows {
            let fresh = in_flight
                .lock()
                .is_ok_and(|set| !set.contains(&delivery.id));
            if !fresh {
                continue;
            }
            if delivery.next_attempt_at > now {
                next_due = Some(next_due.map_or(delivery.next_attempt_at, |t: i64| {
                    t.min(delivery.next_attempt_at)
                }));
                continue;
            }
            if let Ok(mut set) = in_flight.lock() {
                set.insert(delivery.id.clone());
            }
            let task = deliver(
                weak.clone(),
                client.clone(),
                destinations.clone(),
                delivery,
                retry_base,
                in_flight.clone(),
                slots.clone(),
            );
            tokio::spawn(task);
        }
        drop(handle);
        // A retry's instant is business time: a test's manual clock
        // reaching it wakes the task.
        let sleep = async {
            match next_due {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let Some(handle) = weak.upgrade() else {
            return;
        };
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            () = handle.signals.outbox_wake.notified() => {}
            () = sleep => {}
        }
    }
}

async fn deliver(
    weak: Weak<WorkspaceService>,
    client: reqwest::Client,
    destinations: Destinations,
    delivery: Delivery,
    retry_base: Duration,
    in_flight: Arc<Mutex<HashSet<String>>>,
    slots: Arc<Semaphore>,
) {
    let Ok(_slot) = slots.acquire_owned().await else {
        return;
    };
    // A workspace that is gone sends nothing more.
    let Some(clock) = weak.upgrade().map(|service| service.clock.clone()) else {
        return;
    };
    let outcome = send(&client, &delivery, &destinations).await;
    record(weak, delivery, outcome, retry_base, in_flight, &clock).await;
}

/// One attempt: the URL checked against the destination policy again (it
/// may have changed, and a literal address never reaches the resolver),
/// then the signed POST.
async fn send(
    client: &reqwest::Client,
    delivery: &Delivery,
    destinations: &crate::destination::Destinations,
) -> Result<(), String> {
    if let Err(why) = reqwest::Url::parse(&delivery.url)
        .map_err(|e| e.to_string())
        .and_then(|url| destinations.check(&url))
    {
        return Err(format!("destination refused: the URL {why}"));
    }
    let mut request = client
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("user-agent", "sift-workflows")
        .header("sift-delivery", &delivery.id);
    if let Some(secret) = &delivery.secret {
        request = request.header(
            "sift-signature",
            signature(secret, delivery.body.as_bytes()),
        );
    }
    match request.body(delivery.body.clone()).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) if response.status().is_redirection() => {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            Err(crate::destination::redirect_message(
                response.status(),
                location,
            ))
        }
        Ok(response) => Err(format!("the endpoint answered {}", response.status())),
        Err(error) if error.is_timeout() => Err("the endpoint did not answer in time".to_string()),
        Err(error) => Err(format!(
            "could not reach the endpoint: {}",
            crate::destination::describe(&error)
        )),
    }
}

/// Records an attempt's outcome through the writer, then frees its slot.
async fn record(
    weak: Weak<WorkspaceService>,
    delivery: Delivery,
    outcome: Result<(), String>,
    retry_base: Duration,
    in_flight: Arc<Mutex<HashSet<String>>>,
    clock: &Clock,
) {
    let attempts = delivery.attempts + 1;
    let now = clock.now_ms();
    let delivered = outcome.is_ok();
    let given_up = !delivered && attempts >= MAX_ATTEMPTS;
    let attempt = WebhookAttempt {
        id: delivery.id.clone(),
        attempts,
        delivered,
        given_up,
        next_attempt_at: (!delivered && !given_up)
            .then(|| now + backoff(retry_base, attempts).as_millis() as i64),
        last_error: outcome.err(),
        at: now,
    };
    metrics::counter!("sift_workflow_webhook_attempts_total", "outcome" => if delivered { "delivered" } else if given_up { "given_up" } else { "retry" })
        .increment(1);
    if let Some(handle) = weak.upgrade() {
        let recorded = handle
            .write(|engine, _| Ok::<_, WorkspaceError>((engine.webhook_attempt(attempt), ())))
            .await;
        if let Err(error) = recorded {
            tracing::warn!(delivery = %delivery.id, %error, "a webhook attempt was not recorded; it will be retried");
        }
        if let Ok(mut set) = in_flight.lock() {
            set.remove(&delivery.id);
        }
        handle.signals.outbox_wake.notify_one();
    }
}
