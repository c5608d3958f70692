//! One subscription's delivery task.
//!
//! Deliveries move through **windows**: when there is something to send,
//! the task stores the window's end (the durable end of the change log, and
//! of the event log if the webhook sends events) before its first attempt,
//! then cuts batches from its cursor inside that window: at most
//! `batch_max` changes of the chosen segments and `batch_max` events. A
//! batch's ends depend only on where it starts, the window and the log, so
//! after a restart the stored cursor and window give the same batches under
//! the same delivery ids. Each batch is POSTed until the endpoint answers
//! 2xx; then the cursor moves and is queued to the writer (it rides in its
//! next group commit, and a graceful stop commits it). Only opening a window
//! waits for a commit, so a webhook that is behind sends batch after batch
//! without waiting for the disk in between.
//!
//! With nothing to send the task sleeps until the writer reports a commit
//! (`WorkspaceService::signals`, or `committed` for events); the only timer
//! is the retry backoff.
//!
//! This file holds the pieces (cutting, signing and posting batches,
//! waiting); `task.rs` is the loop that strings them together.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Value as Json, json};
use sift_store::{
    PendingBatch, StoredEvent, WebhookCursor, WebhookRow, WebhookWrite, WorkspaceReader,
};
use tokio::sync::watch;

use super::{LastError, Settings, State, Subscription};
use crate::workspace::service::WorkspaceService;
use sift_store::json::datetime;

use crate::reply::Change;

mod task;
pub(super) use task::run;

/// Skipped changes (none for this subscription) are stored as progress once
/// this many have gone by, so a restart does not read them all again.
const SKIP_PERSIST_EVERY: u64 = 10_000;

/// The lower-case hex HMAC-SHA256 of `body` under `secret`: the value of
/// `Sift-Signature` after `sha256=`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A batch's id: the subscription and the batch's place in the change log
/// and the event log (where it starts and ends), so the same batch has the
/// same id on every attempt and after a restart.
pub fn delivery_id(webhook_id: &str, from: &WebhookCursor, to: &PendingBatch) -> String {
    format!(
        "{webhook_id}:c{}-{}:e{}-{}",
        from.change_seq, to.change_end, from.event_seq, to.event_end
    )
}

struct Batch {
    id: String,
    /// Where the cursor goes once the batch is acknowledged.
    end: PendingBatch,
    body: Bytes,
    changes: u64,
    events: u64,
}

/// An erased contact's events keep only their idempotency key: not sent.
fn erased(event: &StoredEvent) -> bool {
    event.event_type.is_empty()
}

/// The batch that starts at `cursor` inside `window`. `None` when it holds
/// nothing to send (changes of other segments, erased events): the cursor
/// then moves to `end` without a delivery.
fn build(
    handle: &WorkspaceService,
    reader: &WorkspaceReader,
    row: &WebhookRow,
    cursor: &WebhookCursor,
    window: &PendingBatch,
    max: usize,
) -> Result<(PendingBatch, Option<Batch>), String> {
    let changes = reader
        .changes_in(
            cursor.change_seq,
            window.change_end,
            row.segments.as_deref(),
            max,
        )
        .map_err(|e| e.to_string())?;
    // A full batch ends after its last item, any other at the window's end.
    let change_end = match changes.last() {
        Some(last) if changes.len() == max => last.seq + 1,
        _ => window.change_end.max(cursor.change_seq),
    };
    let events = reader
        .events_between(cursor.event_seq, window.event_end, max)
        .map_err(|e| e.to_string())?;
    let event_end = match events.last() {
        Some(last) if events.len() == max => last.seq,
        _ => window.event_end.max(cursor.event_seq),
    };
    let end = PendingBatch {
        change_end,
        event_end,
    };
    if changes.is_empty() && events.iter().all(erased) {
        return Ok((end, None));
    }
    let id = delivery_id(&row.id, cursor, &end);
    // Contact ids come from the engine (a deleted contact keeps its id).
    let (changes, events) = handle
        .read(|engine| {
            let contacts = engine.contacts();
            let changes: Vec<Change> = changes
                .iter()
                .map(|c| Change::new(c, contacts.id(c.no)))
                .collect();
            let events: Vec<Json> = events
                .iter()
                .filter(|e| !erased(e))
                .map(|e| {
                    let properties: Json =
                        serde_json::from_str(&e.properties_json).unwrap_or_else(|_| json!({}));
                    json!({
                        "seq": e.seq,
                        "id": e.id,
                        "contact_id": contacts.id(e.contact_no),
                        "type": e.event_type,
                        "at": datetime(e.at),
                        "properties": properties,
                    })
                })
                .collect();
            (changes, events)
        })
        .map_err(|e| e.to_string())?;
    // Written by hand so that delivery_id comes first.
    let mut body = Vec::with_capacity(64 + changes.len() * 160);
    body.extend_from_slice(b"{\"delivery_id\":");
    serde_json::to_writer(&mut body, &id).map_err(|e| e.to_string())?;
    body.extend_from_slice(b",\"changes\":");
    serde_json::to_writer(&mut body, &changes).map_err(|e| e.to_string())?;
    if row.events {
        body.extend_from_slice(b",\"events\":");
        serde_json::to_writer(&mut body, &events).map_err(|e| e.to_string())?;
    }
    body.push(b'}');
    let batch = Batch {
        id,
        end,
        body: Bytes::from(body),
        changes: changes.len() as u64,
        events: events.len() as u64,
    };
    Ok((end, Some(batch)))
}

/// The window a webhook would open now: up to the durable end of the
/// change log (and of the event log, if it sends events). `None` when it
/// holds nothing to send; the ends are answered either way.
fn probe(
    reader: &WorkspaceReader,
    row: &WebhookRow,
    cursor: &WebhookCursor,
    durable: u64,
) -> Result<(PendingBatch, bool), String> {
    let event_end = if row.events {
        reader.last_event_seq().map_err(|e| e.to_string())?
    } else {
        cursor.event_seq
    };
    let window = PendingBatch {
        change_end: durable.max(cursor.change_seq),
        event_end: event_end.max(cursor.event_seq),
    };
    let changes = reader
        .changes_in(
            cursor.change_seq,
            window.change_end,
            row.segments.as_deref(),
            1,
        )
        .map_err(|e| e.to_string())?;
    let any = !changes.is_empty() || window.event_end > cursor.event_seq;
    Ok((window, any))
}

/// The delay before attempt `failures + 1`: `base * 2^(failures - 1)`, at
/// most `max`, of which a random half ("equal jitter"), so endpoints that
/// failed together are not retried in step.
fn backoff(failures: u32, settings: &Settings) -> Duration {
    let doubled = settings
        .retry_base
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(30)));
    let delay = doubled.min(settings.retry_max);
    delay / 2 + (delay / 2).mul_f64(rand::random::<f64>())
}

/// Sends one attempt; a 2xx is success, anything else (another status, no
/// answer within the timeout, no connection) a failure to retry.
async fn post(
    client: &reqwest::Client,
    row: &WebhookRow,
    batch: &Batch,
    attempt: u32,
    settings: &Settings,
) -> Result<(), LastError> {
    let (timeout, destinations) = (settings.timeout, &settings.destinations);
    let failure = |message: String, status: Option<u16>| LastError {
        at: settings.clock.now_ms(),
        message,
        status,
    };
    // Checked at every attempt: the policy may have changed since the URL
    // was saved, and a literal address never reaches the resolver.
    if let Err(why) = reqwest::Url::parse(&row.url)
        .map_err(|e| e.to_string())
        .and_then(|url| destinations.check(&url))
    {
        return Err(failure(format!("destination refused: \"url\" {why}"), None));
    }
    let signature = sign(row.secret.as_bytes(), &batch.body);
    let started = Instant::now();
    let sent = client
        .post(&row.url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Sift-Delivery", &batch.id)
        .header("Sift-Signature", format!("sha256={signature}"))
        .header("Sift-Attempt", attempt.to_string())
        .body(batch.body.clone())
        .send()
        .await;
    metrics::histogram!("sift_webhook_attempt_seconds").record(started.elapsed().as_secs_f64());
    match sent {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) if response.status().is_redirection() => {
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            Err(failure(
                crate::destination::redirect_message(status, location),
                Some(status.as_u16()),
            ))
        }
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let text: String = text.trim().chars().take(200).collect();
            let message = if text.is_empty() {
                format!("the endpoint answered {status}")
            } else {
                format!("the endpoint answered {status}: {text}")
            };
            Err(failure(message, Some(status.as_u16())))
        }
        Err(error) if error.is_timeout() => Err(failure(
            format!("no answer within {} ms", timeout.as_millis()),
            None,
        )),
        Err(error) => Err(failure(crate::destination::describe(&error), None)),
    }
}

/// Resolves when `rx` sees a new value; never without one (or once its
/// sender is gone).
async fn changed(rx: Option<&mut watch::Receiver<u64>>) {
    if let Some(rx) = rx
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// Waits for one of the wake-ups; `false` when the task must end.
async fn wait(
    closed: &mut watch::Receiver<bool>,
    config: &mut watch::Receiver<WebhookRow>,
    durable: Option<&mut watch::Receiver<u64>>,
    committed: Option<&mut watch::Receiver<u64>>,
    sleep: Option<Duration>,
) -> bool {
    let sleep = async {
        match sleep {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = closed.changed() => false,
        changed = config.changed() => changed.is_ok(),
        () = changed(durable) => true,
        () = changed(committed) => true,
        () = sleep => true,
    }
}

/// Runs `f` with the task's reader in a blocking thread.
async fn with_reader<T: Send + 'static>(
    reader: &Arc<Mutex<WorkspaceReader>>,
    f: impl FnOnce(&WorkspaceReader) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let reader = reader.clone();
    tokio::task::spawn_blocking(move || {
        let reader = reader
            .lock()
            .map_err(|_| "reader lock poisoned".to_string())?;
        f(&reader)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
}

fn advance(row: &WebhookRow, cursor: &WebhookCursor, acked_at: Option<i64>) -> WebhookWrite {
    WebhookWrite::Advance {
        id: row.id.clone(),
        change_seq: cursor.change_seq,
        event_seq: cursor.event_seq,
        acked_at,
    }
}

fn read_failed(subscription: &Subscription, row: &WebhookRow, message: &str, at: i64) {
    tracing::error!(webhook = %row.id, %message, "reading a webhook batch failed");
    subscription.update(|s| {
        s.last_error = Some(LastError {
            at,
            message: "Sift could not read the change log; see its log".into(),
            status: None,
        })
    });
}
