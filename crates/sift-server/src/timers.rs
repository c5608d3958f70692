//! The timer task: one per open workspace, it makes time-dependent conditions
//! flip on time (docs/concepts.md "Guarantees" "Exactness": no later than 1 s after the instant)
//! without scanning contacts.
//!
//! The engine keeps the queue of instants at which some contact's result can
//! change by the passing of time alone (`Workspace::next_timer`). The task
//! sleeps until the earliest of them, then fires everything due through
//! [`WorkspaceService::advance`], the same durable path as any client write;
//! the engine records each flip at its due instant with cause `time`. When no
//! timer is pending it sleeps until a write wakes it: every write signals
//! `timer_wake`, since it may have scheduled an earlier timer. It waits on
//! the workspace's clock (`clock.rs`), so a test's manual clock reaching a
//! timer's instant fires it at once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::workspace::error::WorkspaceError;
use crate::workspace::service::WorkspaceService;

/// How long to wait before retrying a timer the engine reported due but did
/// not consume. That would be an engine bug; the pause keeps it from turning
/// into a busy loop.
const STUCK_TIMER_PAUSE: Duration = Duration::from_secs(1);

/// Starts the timer task of `handle` on the current tokio runtime. Without
/// one (a synchronous caller) there is no task, and timers fire only as part
/// of the next write, which advances the engine first.
pub fn spawn(handle: &Arc<WorkspaceService>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(workspace = %handle.id(), "no async runtime: timers fire only with writes");
        return;
    };
    let closed = handle.signals.closed.subscribe();
    runtime.spawn(run(Arc::downgrade(handle), closed));
}

async fn run(weak: Weak<WorkspaceService>, mut closed: watch::Receiver<bool>) {
    // The instant the last firing was for, to notice a timer that stays due.
    let mut fired_for: Option<i64> = None;
    loop {
        if *closed.borrow() {
            return;
        }
        // A weak reference, so that a task whose workspace is gone ends.
        let Some(handle) = weak.upgrade() else {
            return;
        };
        let Ok(next) = handle.read(|ws| ws.next_timer()) else {
            return;
        };
        let clock = handle.clock.clone();
        let sleep = async {
            match next {
                // Real time: the pause is about the server's own load, and
                // a manual clock that never moves must not turn it into a
                // busy loop.
                Some(at) if Some(at) == fired_for => {
                    tracing::warn!(workspace = %handle.id(), at, "a fired timer is still pending; retrying");
                    tokio::time::sleep(STUCK_TIMER_PAUSE).await;
                }
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Closing first: a closed workspace takes no more writes.
            biased;
            _ = closed.changed() => return,
            // Before the wake-up, so a steady stream of writes cannot starve
            // a due timer.
            () = sleep => {}
            () = handle.signals.timer_wake.notified() => {
                fired_for = None;
                continue;
            }
        }
        let started = handle.clock.now_ms();
        match handle.advance().await {
            Ok(Some(write)) => {
                metrics::counter!("sift_timers_fired_total").increment(1);
                metrics::counter!("sift_time_changes_total").increment(write.membership_changes);
            }
            Ok(None) => {}
            Err(WorkspaceError::Closed) => return,
            Err(error) => {
                // The writer has stopped or a lock is poisoned, so later
                // firings would fail the same way.
                tracing::error!(workspace = %handle.id(), %error, "the timer task stops");
                return;
            }
        }
        fired_for = next.filter(|at| *at <= started);
    }
}
