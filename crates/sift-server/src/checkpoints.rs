//! Periodic checkpoints: one task per open workspace waits for commits and,
//! once `--checkpoint-every` writes have been queued since the newest
//! checkpoint, writes one (`WorkspaceService::checkpoint_blocking`) on a
//! blocking thread, so the async workers never wait for it. The engine's
//! write lock is held only for the copy; the file is written beside the
//! writer, which keeps committing. Graceful shutdown writes one too
//! (`WorkspaceService::close`).

use std::sync::{Arc, Weak};

use tokio::sync::watch;

use crate::workspace::service::WorkspaceService;

pub fn spawn(handle: &Arc<WorkspaceService>) {
    if handle.checkpoint_every() == 0 {
        return;
    }
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
        tokio::select! {
            changed = committed.changed() => if changed.is_err() { return },
            _ = closed.changed() => return,
        }
        if *closed.borrow() {
            return;
        }
        let Some(service) = weak.upgrade() else {
            return;
        };
        if service.writes_since_checkpoint() < service.checkpoint_every() {
            continue;
        }
        let id = service.id().to_string();
        let result = tokio::task::spawn_blocking(move || service.checkpoint_blocking()).await;
        match result {
            Ok(Ok(Some(done))) => tracing::info!(
                workspace = %id,
                file = %done.path.display(),
                bytes = done.bytes,
                write = done.write_number,
                stall_ms = done.stall.as_secs_f64() * 1000.0,
                took_ms = done.took.as_millis() as u64,
                "checkpoint written"
            ),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => {
                metrics::counter!("sift_checkpoint_failures_total").increment(1);
                tracing::error!(workspace = %id, %error, "checkpoint failed; the next one is tried after as many writes again");
            }
            Err(error) => {
                metrics::counter!("sift_checkpoint_failures_total").increment(1);
                tracing::error!(workspace = %id, %error, "checkpoint task panicked");
            }
        }
    }
}
