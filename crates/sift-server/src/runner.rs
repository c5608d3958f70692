//! The workflow runner: one task per open workspace. It consumes the
//! engine's queue of triggers (`Workspace::run_workflows`), a batch per
//! write, through the same durable path as any write; each write carries
//! its runs' effects, their history and the advanced cursor, committed
//! together. It sleeps until a durable write has queued triggers
//! (`runs_wake`, signalled after the commit) and never polls.
//!
//! Fan-out is bounded twice. Each workflow's queue holds at most
//! `--workflow-queue-max` triggers (the engine drops and counts the rest,
//! in the causing write), so no write queues more than that per workflow,
//! however many contacts it moves. And the runner takes
//! [`RUN_BATCH`](crate::workspace::service::RUN_BATCH)
//! triggers per write and waits for that write to be durable before the
//! next, so a backlog delays a client write by at most one batch's engine
//! time and one commit: the writer interleaves client writes between
//! batches.

use std::sync::{Arc, Weak};

use tokio::sync::watch;

use crate::workspace::error::WorkspaceError;
use crate::workspace::service::WorkspaceService;

/// Starts the runner of `handle` on the current tokio runtime (none without
/// one: the queue then waits for the next start).
pub fn spawn(handle: &Arc<WorkspaceService>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(workspace = %handle.id(), "no async runtime: workflows do not run");
        return;
    };
    let closed = handle.signals.closed.subscribe();
    runtime.spawn(run(Arc::downgrade(handle), closed));
}

async fn run(weak: Weak<WorkspaceService>, mut closed: watch::Receiver<bool>) {
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
                Err(WorkspaceError::Closed) => return,
                Err(error) => {
                    tracing::error!(workspace = %handle.id(), %error, "the workflow runner stops");
                    return;
                }
            }
        }
        tokio::select! {
            biased;
            _ = closed.changed() => return,
            () = handle.signals.runs_wake.notified() => {}
        }
    }
}
