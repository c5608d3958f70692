//! The workflow runner: one task per open workspace. It consumes the
//! engine's queue of triggers (`Workspace::run_workflows`), a batch per
//! write, through the same durable path as any write; each write carries
//! its runs' effects, their history and the advanced cursor, committed
//! together. It sleeps until a durable write has queued triggers
//! (`runs_wake`, signalled after the commit) and never polls.

use std::sync::{Arc, Weak};

use tokio::sync::watch;

use crate::error::Code;
use crate::state::WorkspaceHandle;

/// Triggers run per write: large enough to share a commit, small enough
/// to keep the engine's lock short.
pub const RUN_BATCH: usize = 512;

/// Starts the runner of `handle` on the current tokio runtime (none without
/// one: the queue then waits for the next start).
pub fn spawn(handle: &Arc<WorkspaceHandle>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(workspace = %handle.id, "no async runtime: workflows do not run");
        return;
    };
    let closed = handle.closed.subscribe();
    runtime.spawn(run(Arc::downgrade(handle), closed));
}

async fn run(weak: Weak<WorkspaceHandle>, mut closed: watch::Receiver<bool>) {
    loop {
        if *closed.borrow() {
            return;
        }
        let Some(handle) = weak.upgrade() else {
            return;
        };
        // Drain: a start may find triggers left by the last process, and
        // runs may queue more (cascades).
        loop {
            match handle.run_workflows().await {
                Ok(Some(write)) => {
                    metrics::counter!("sift_workflow_runs_total").increment(write.runs);
                    metrics::counter!("sift_workflow_actions_total").increment(write.actions);
                }
                Ok(None) => break,
                Err(error) if error.code == Code::Unavailable => return,
                Err(error) => {
                    tracing::error!(workspace = %handle.id, message = %error.message, "the workflow runner stops");
                    return;
                }
            }
        }
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            () = handle.runs_wake.notified() => {}
        }
    }
}
