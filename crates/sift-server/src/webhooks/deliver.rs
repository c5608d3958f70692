//! One subscription's delivery task.
//!
//! The loop: build the next batch from the cursor (changes with seq from the
//! cursor up to the durable end, of the chosen segments, at most
//! `batch_max`; events after the event cursor, if asked), store its range
//! (so that after a crash it is rebuilt and sent under the same delivery
//! id), POST it until the endpoint answers 2xx, then store the new cursor.
//! With nothing to send the task sleeps until the writer reports a commit
//! (`WorkspaceHandle::durable`, or `committed` for events); the only timer
//! is the retry backoff.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Value as Json, json};
use sift_store::{PendingBatch, WebhookCursor, WebhookRow, WebhookWrite, WorkspaceReader};
use tokio::sync::watch;

use super::{LastError, Settings, State, Subscription};
use crate::api::changes::change_json;
use crate::api::datetime;
use crate::state::{WorkspaceHandle, now_ms};

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
/// and the event log, so the same batch has the same id on every attempt
/// and after a restart.
pub fn delivery_id(webhook_id: &str, from: &WebhookCursor, batch: &PendingBatch) -> String {
    format!(
        "{webhook_id}:c{}-{}:e{}-{}",
        from.change_seq, batch.change_end, from.event_seq, batch.event_end
    )
}

struct Batch {
    id: String,
    range: PendingBatch,
    body: Bytes,
    changes: u64,
    events: u64,
}

enum Built {
    /// Nothing to send before `change_to` and up to `event_to`.
    Nothing {
        change_to: u64,
        event_to: u64,
    },
    Batch(Batch),
}

/// Reads the batch after `cursor` (or, with `rebuild`, exactly the stored
/// range) and serializes it.
fn build(
    handle: &WorkspaceHandle,
    reader: &WorkspaceReader,
    row: &WebhookRow,
    cursor: &WebhookCursor,
    rebuild: Option<PendingBatch>,
    durable: u64,
    max: usize,
) -> Result<Built, String> {
    let segments = row.segments.as_deref();
    let (changes, change_end) = match rebuild {
        Some(range) => (
            reader
                .changes_in(cursor.change_seq, range.change_end, segments, usize::MAX)
                .map_err(|e| e.to_string())?,
            range.change_end,
        ),
        None => {
            let changes = reader
                .changes_in(cursor.change_seq, durable, segments, max)
                .map_err(|e| e.to_string())?;
            // A full batch ends after its last change; otherwise it has
            // looked at every durable seq.
            let end = match changes.last() {
                Some(last) if changes.len() == max => last.seq + 1,
                _ => durable.max(cursor.change_seq),
            };
            (changes, end)
        }
    };
    let (events, event_end) = match (rebuild, row.events) {
        (Some(range), _) => (
            reader
                .events_between(cursor.event_seq, range.event_end, usize::MAX)
                .map_err(|e| e.to_string())?,
            range.event_end,
        ),
        (None, true) => {
            let events = reader
                .events_between(cursor.event_seq, u64::MAX, max)
                .map_err(|e| e.to_string())?;
            let end = events.last().map_or(cursor.event_seq, |e| e.seq);
            (events, end)
        }
        (None, false) => (Vec::new(), cursor.event_seq),
    };
    // An erased contact's events keep only their idempotency key: not sent.
    let erased = |e: &&sift_store::StoredEvent| e.event_type.is_empty();
    if rebuild.is_none() && changes.is_empty() && events.iter().all(|e| erased(&e)) {
        return Ok(Built::Nothing {
            change_to: change_end,
            event_to: event_end,
        });
    }
    let range = PendingBatch {
        change_end,
        event_end,
    };
    let id = delivery_id(&row.id, cursor, &range);
    // Contact ids come from the engine (a deleted contact keeps its id).
    let (changes, events) = handle
        .read(|engine| {
            let contacts = engine.contacts();
            let changes: Vec<Json> = changes
                .iter()
                .map(|c| change_json(c, contacts.id(c.no)))
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
        .map_err(|e| e.message)?;
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
    Ok(Built::Batch(Batch {
        id,
        range,
        body: Bytes::from(body),
        changes: changes.len() as u64,
        events: events.len() as u64,
    }))
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
    timeout: Duration,
) -> Result<(), LastError> {
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
    let failure = |message: String, status: Option<u16>| LastError {
        at: now_ms(),
        message,
        status,
    };
    match sent {
        Ok(response) if response.status().is_success() => Ok(()),
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
        Err(error) => {
            // The innermost cause says what happened ("Connection refused").
            let mut cause: &dyn std::error::Error = &error;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            let what = if error.is_connect() {
                "could not connect"
            } else {
                "the request failed"
            };
            Err(failure(format!("{what}: {cause}"), None))
        }
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

/// Reads the next batch in a blocking thread: the one after `cursor`, or
/// exactly `rebuild`. Marks the commit watches seen first, so a commit after
/// the read wakes the task.
async fn next_batch(
    handle: &Arc<WorkspaceHandle>,
    reader: &Arc<Mutex<WorkspaceReader>>,
    row: &WebhookRow,
    cursor: WebhookCursor,
    rebuild: Option<PendingBatch>,
    watches: (&mut watch::Receiver<u64>, &mut watch::Receiver<u64>),
    max: usize,
) -> Result<Built, String> {
    let target = *watches.0.borrow_and_update();
    watches.1.borrow_and_update();
    let (handle, reader, row) = (handle.clone(), reader.clone(), row.clone());
    tokio::task::spawn_blocking(move || {
        let reader = reader
            .lock()
            .map_err(|_| "reader lock poisoned".to_string())?;
        build(&handle, &reader, &row, &cursor, rebuild, target, max)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
}

fn begin(row: &WebhookRow, batch: &Batch) -> WebhookWrite {
    WebhookWrite::Begin {
        id: row.id.clone(),
        batch: batch.range,
    }
}

pub(super) async fn run(
    weak: Weak<WorkspaceHandle>,
    subscription: Arc<Subscription>,
    client: reqwest::Client,
    path: std::path::PathBuf,
    settings: Settings,
) {
    let Some(handle) = weak.upgrade() else {
        return;
    };
    let mut closed = handle.closed.subscribe();
    let mut durable = handle.durable.subscribe();
    let mut committed = handle.committed.subscribe();
    drop(handle);
    let mut config = subscription.config.subscribe();
    let reader = match WorkspaceReader::open(&path) {
        Ok(reader) => Arc::new(Mutex::new(reader)),
        Err(error) => {
            tracing::error!(%error, "a webhook cannot read the change log; it stops");
            return;
        }
    };
    let stored = subscription.status().cursor;
    let mut cursor = WebhookCursor {
        pending: None,
        ..stored
    };
    // After a restart, the batch that was in flight is sent again first.
    let mut rebuild = stored.pending;
    let mut persisted_change = cursor.change_seq;
    let mut batch: Option<Batch> = None;
    // What was read right after an acknowledgement, when it was no batch.
    let mut read_ahead: Option<Result<Built, String>> = None;
    loop {
        if *closed.borrow() {
            return;
        }
        let row = config.borrow_and_update().clone();
        if !row.enabled {
            subscription.update(|s| {
                s.state = State::Disabled;
                s.next_attempt_at = None;
            });
            if !wait(&mut closed, &mut config, None, None, None).await {
                return;
            }
            continue;
        }
        let Some(handle) = weak.upgrade() else {
            return;
        };
        if batch.is_none() {
            let is_rebuild = rebuild.is_some();
            let built = match read_ahead.take() {
                Some(built) => built,
                None => {
                    let watches = (&mut durable, &mut committed);
                    let max = settings.batch_max;
                    next_batch(&handle, &reader, &row, cursor, rebuild, watches, max).await
                }
            };
            match built {
                Err(message) => {
                    tracing::error!(webhook = %row.id, %message, "reading a webhook batch failed");
                    subscription.update(|s| {
                        s.last_error = Some(LastError {
                            at: now_ms(),
                            message: "Sift could not read the change log; see its log".into(),
                            status: None,
                        })
                    });
                    drop(handle);
                    let pause = Some(settings.retry_max.min(Duration::from_secs(5)));
                    if !wait(&mut closed, &mut config, None, None, pause).await {
                        return;
                    }
                    continue;
                }
                Ok(Built::Nothing {
                    change_to,
                    event_to,
                }) => {
                    cursor.change_seq = cursor.change_seq.max(change_to);
                    cursor.event_seq = cursor.event_seq.max(event_to);
                    if cursor.change_seq - persisted_change >= SKIP_PERSIST_EVERY {
                        let advance = WebhookWrite::Advance {
                            id: row.id.clone(),
                            change_seq: cursor.change_seq,
                            event_seq: cursor.event_seq,
                            acked_at: None,
                        };
                        if handle.commit_webhooks(vec![advance]).await.is_err() {
                            return;
                        }
                        persisted_change = cursor.change_seq;
                    }
                    subscription.update(|s| {
                        s.state = State::Idle;
                        s.cursor.change_seq = cursor.change_seq;
                        s.cursor.event_seq = cursor.event_seq;
                        s.delivery_id = None;
                        s.attempts = 0;
                        s.next_attempt_at = None;
                    });
                    drop(handle);
                    let events = row.events.then_some(&mut committed);
                    if !wait(&mut closed, &mut config, Some(&mut durable), events, None).await {
                        return;
                    }
                    continue;
                }
                Ok(Built::Batch(built)) => {
                    // A rebuilt batch's range is already stored.
                    if !is_rebuild
                        && handle
                            .commit_webhooks(vec![begin(&row, &built)])
                            .await
                            .is_err()
                    {
                        return;
                    }
                    rebuild = None;
                    subscription.update(|s| {
                        s.state = State::Delivering;
                        s.delivery_id = Some(built.id.clone());
                        s.attempts = 0;
                        s.cursor.pending = Some(built.range);
                    });
                    batch = Some(built);
                }
            }
        }
        let Some(current) = batch.take() else {
            continue;
        };
        let attempt = subscription.status().attempts + 1;
        subscription.update(|s| s.attempts = attempt);
        let result = tokio::select! {
            biased;
            _ = closed.changed() => return,
            result = post(&client, &row, &current, attempt, settings.timeout) => result,
        };
        match result {
            Ok(()) => {
                metrics::counter!("sift_webhook_deliveries_total", "result" => "ok").increment(1);
                let acked_at = now_ms();
                cursor.change_seq = current.range.change_end;
                cursor.event_seq = current.range.event_end;
                // The next batch is read now, so that its range is stored in
                // the same commit as this acknowledgement.
                let watches = (&mut durable, &mut committed);
                let max = settings.batch_max;
                let next = next_batch(&handle, &reader, &row, cursor, None, watches, max).await;
                let mut writes = vec![WebhookWrite::Advance {
                    id: row.id.clone(),
                    change_seq: cursor.change_seq,
                    event_seq: cursor.event_seq,
                    acked_at: Some(acked_at),
                }];
                match next {
                    Ok(Built::Batch(next)) => {
                        writes.push(begin(&row, &next));
                        batch = Some(next);
                    }
                    other => read_ahead = Some(other),
                }
                if handle.commit_webhooks(writes).await.is_err() {
                    return;
                }
                persisted_change = cursor.change_seq;
                subscription.update(|s| {
                    s.cursor = WebhookCursor {
                        acked_at: Some(acked_at),
                        pending: batch.as_ref().map(|b| b.range),
                        ..cursor
                    };
                    s.state = if batch.is_some() {
                        State::Delivering
                    } else {
                        State::Idle
                    };
                    s.delivery_id = batch.as_ref().map(|b| b.id.clone());
                    s.attempts = 0;
                    s.next_attempt_at = None;
                    s.delivered_batches += 1;
                    s.delivered_changes += current.changes;
                    s.delivered_events += current.events;
                });
            }
            Err(error) => {
                metrics::counter!("sift_webhook_deliveries_total", "result" => "error")
                    .increment(1);
                let delay = backoff(attempt, &settings);
                tracing::debug!(webhook = %row.id, attempt, message = %error.message, "webhook delivery failed");
                subscription.update(|s| {
                    s.state = State::Retrying;
                    s.next_attempt_at = Some(now_ms() + delay.as_millis() as i64);
                    s.last_error = Some(error);
                });
                batch = Some(current);
                drop(handle);
                // A new URL, secret or `enabled` is tried at once.
                if !wait(&mut closed, &mut config, None, None, Some(delay)).await {
                    return;
                }
            }
        }
    }
}
