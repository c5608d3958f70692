//! Keeps the columnar copy of a workspace's events (docs/storage.md "Event
//! blocks") close behind its writes: one task per open workspace builds the
//! sealed ranges that lack a block at the start, then again a while after
//! writes were committed, on a blocking thread beside the writer. Ranges
//! not yet built are read from the rows, so a lag costs speed, never
//! exactness.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::workspace::service::WorkspaceService;

/// How long committed writes wait before the next build looks at them:
/// one look per pause however fast writes come, none while idle.
const PAUSE: Duration = Duration::from_secs(5);

pub fn spawn(handle: &Arc<WorkspaceService>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let closed = handle.signals.closed.subscribe();
    let committed = handle.signals.committed_write.subscribe();
    runtime.spawn(run(Arc::downgrade(handle), closed, committed));
}

async fn run(
    weak: Weak<WorkspaceService>,
    mut closed: watch::Receiver<bool>,
    mut committed: watch::Receiver<u64>,
) {
    loop {
        let Some(service) = weak.upgrade() else {
            return;
        };
        let history = service.history.clone();
        let id = service.id().to_string();
        drop(service);
        let result =
            tokio::task::spawn_blocking(move || history.build_blocks(&mut |_, _| {})).await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(workspace = %id, %error, "building the columnar copy of events failed; counts read those ranges from the rows");
            }
            Err(error) => {
                tracing::error!(workspace = %id, %error, "the columnar copy task panicked")
            }
        }
        tokio::select! {
            changed = committed.changed() => if changed.is_err() { return },
            _ = closed.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(PAUSE) => {},
            _ = closed.changed() => return,
        }
        if *closed.borrow() {
            return;
        }
    }
}
