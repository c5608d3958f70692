//! Retention. Workflow history: one task per open workspace deletes
//! finished runs and finished webhook-action deliveries once they are older
//! than the retention (`--workflow-retention`, 30 days by default).
//!
//! The task sleeps until the oldest such row becomes prunable (its instant
//! plus the retention), read from the store's indexes; with no history it
//! sleeps a whole retention, since nothing written meanwhile can fall due
//! sooner. It never scans on a timer. Deleting goes through the writer in
//! chunks of [`CHUNK`] rows per table, each awaited before the next, so a
//! backlog (a first start with a shorter retention) never holds the writer
//! for one long transaction: client writes commit between chunks.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sift_store::Prune;
use tokio::sync::watch;

use crate::workspace::error::WorkspaceError;
use crate::workspace::service::WorkspaceService;

/// Rows of each table deleted per commit.
pub const CHUNK: usize = 1_000;
/// Events examined per chunk of event retention (`--event-retention`):
/// read and rolled up under the engine's read lock, so the chunk bounds
/// how long writes wait behind it.
pub const EVENT_CHUNK: usize = 4_096;
const DAY_MS: i64 = 86_400_000;
/// The wait after a failed read, so that a broken database is not polled.
const RETRY_AFTER: Duration = Duration::from_secs(60);

enum Wait {
    /// Until the clock reads this instant.
    Until(i64),
    Pause(Duration),
}

pub fn spawn(handle: &Arc<WorkspaceService>, retention: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let closed = handle.signals.closed.subscribe();
    runtime.spawn(run(Arc::downgrade(handle), closed, retention));
}

async fn run(weak: Weak<WorkspaceService>, mut closed: watch::Receiver<bool>, retention: Duration) {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    loop {
        if *closed.borrow() {
            return;
        }
        let Some(handle) = weak.upgrade() else {
            return;
        };
        let oldest = match handle.reader().map(|r| r.oldest_history()) {
            Ok(Ok(oldest)) => Ok(oldest),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => return,
        };
        let clock = handle.clock.clone();
        let now = clock.now_ms();
        let cutoff = now.saturating_sub(retention_ms);
        // Business time until a row falls due (a test's manual clock moves
        // it), real time for the pause after a failed read.
        let wait = match oldest {
            Ok(Some(at)) if at < cutoff => {
                let prune = Prune {
                    before: cutoff,
                    limit: CHUNK,
                };
                match handle.prune(prune).await {
                    Ok(()) => {
                        metrics::counter!("sift_workflow_history_prunes_total").increment(1);
                        tracing::debug!(workspace = %handle.id(), before = cutoff, "pruned a chunk of workflow history");
                        // Let other tasks' writes in before the next chunk.
                        tokio::task::yield_now().await;
                        continue;
                    }
                    Err(WorkspaceError::Closed) => return,
                    Err(error) => {
                        tracing::error!(workspace = %handle.id(), %error, "pruning workflow history failed; it stops");
                        return;
                    }
                }
            }
            // The oldest row falls due at its instant plus the retention;
            // rows written later fall due later.
            Ok(Some(at)) => Wait::Until(at.saturating_add(retention_ms).max(now + 1)),
            Ok(None) => Wait::Until(now.saturating_add(retention_ms)),
            Err(error) => {
                tracing::warn!(workspace = %handle.id(), %error, "reading the workflow history's age failed; retrying in a minute");
                Wait::Pause(RETRY_AFTER)
            }
        };
        drop(handle);
        let sleep = async {
            match wait {
                Wait::Until(at) => clock.sleep_until(at).await,
                Wait::Pause(pause) => tokio::time::sleep(pause).await,
            }
        };
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            () = sleep => {}
        }
    }
}

/// Event retention (`--event-retention DAYS`): one task per open workspace
/// deletes the raw events that happened more than `days` ago, a chunk per
/// commit through the writer, with what they gave to all-time counts and
/// lasting rule points (`WorkspaceService::prune_events`). Events are not
/// stored in `at` order (late ones arrive), so a pass walks the table by seq
/// once, in bounded chunks, then sleeps a day of business time: events only
/// become old, and a day's lateness in deleting them is within the rule.
pub fn spawn_events(handle: &Arc<WorkspaceService>, days: Option<u32>) {
    let Some(days) = days else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let closed = handle.signals.closed.subscribe();
    runtime.spawn(run_events(Arc::downgrade(handle), closed, days));
}

async fn run_events(weak: Weak<WorkspaceService>, mut closed: watch::Receiver<bool>, days: u32) {
    let retention_ms = i64::from(days) * DAY_MS;
    loop {
        let Some(handle) = weak.upgrade() else {
            return;
        };
        let clock = handle.clock.clone();
        let now = clock.now_ms();
        let cutoff = now.saturating_sub(retention_ms);
        let mut after = 0;
        let mut deleted = 0u64;
        loop {
            if *closed.borrow() {
                return;
            }
            match handle.prune_events(after, cutoff, EVENT_CHUNK).await {
                Ok(Some((last, gone))) => {
                    after = last;
                    deleted += gone as u64;
                    metrics::counter!("sift_events_retention_deleted_total").increment(gone as u64);
                    tokio::task::yield_now().await;
                }
                Ok(None) => break,
                Err(WorkspaceError::Closed) => return,
                Err(error) => {
                    tracing::error!(workspace = %handle.id(), %error, "deleting events past the retention failed; it stops");
                    return;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(workspace = %handle.id(), deleted, before = cutoff, "deleted events past the retention");
        }
        drop(handle);
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            () = clock.sleep_until(now.saturating_add(DAY_MS)) => {}
        }
    }
}
