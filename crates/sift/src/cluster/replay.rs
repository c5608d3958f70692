//! Applying a logged input as it was first applied: on a node taking the
//! lead over (a replay of the log after the newest checkpoint), and the
//! points of the log where timers fire and workflows run, which the
//! leader's write path shares.

use axum::Router;
use sift_server::AppState;
use sift_server::clock::ManualClock;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

use super::record::Input;

/// Applies one logged input as it was first applied; answers the task
/// still committing it, if any.
pub async fn apply(
    state: &AppState,
    app: &Router,
    clock: &ManualClock,
    input: Input,
) -> Option<JoinHandle<()>> {
    let at = match &input {
        Input::Fence => None,
        Input::FirstWorkspace { now_ms, .. }
        | Input::Drain { now_ms }
        | Input::Session { now_ms, .. } => Some(*now_ms),
        Input::Request(recorded) => Some(recorded.now_ms),
    };
    if let Some(at) = at {
        clock.set(clock.now_ms().max(at));
        run_queued_workflows(state).await;
    }
    match input {
        Input::Fence | Input::Drain { .. } => {}
        Input::Session {
            cookie,
            workspace,
            key_hash,
            ..
        } => state.sessions.adopt(&cookie, &workspace, key_hash),
        Input::FirstWorkspace { now_ms, seed } => {
            clock.set(clock.now_ms().max(now_ms));
            let state = state.clone();
            if let Err(e) = sift_server::ids::drawn_from(seed, now_ms, async move {
                state.create_workspace("Default")
            })
            .await
            {
                tracing::warn!(error = %e, "replaying the first workspace failed");
            }
        }
        Input::Request(recorded) => {
            clock.set(clock.now_ms().max(recorded.now_ms));
            let request = recorded.request();
            if let (Some((workspace, key)), Some(cookie)) = (
                &recorded.session,
                sift_server::session::cookie(request.headers()),
            ) {
                state.sessions.adopt(cookie, workspace, key.clone());
            }
            // As when it was first applied, the next input applies once
            // this one is in the engine; its commit goes on meanwhile.
            let (applied, in_engine) = tokio::sync::oneshot::channel::<()>();
            let hook = Box::new(move || {
                let _ = applied.send(());
            });
            let target = recorded.target.clone();
            let work = sift_server::ids::drawn_from(
                recorded.seed,
                recorded.now_ms,
                sift_server::sequenced::on_applied(hook, app.clone().oneshot(request)),
            );
            let mut task = tokio::spawn(async move {
                if let Ok(response) = work.await
                    && response.status().is_server_error()
                {
                    tracing::warn!(%target, status = %response.status(), "a replayed write failed");
                }
            });
            // Either the write reached the engine, or the request ended
            // (the hook dropped unused) without writing to it.
            tokio::select! {
                _ = in_engine => return Some(task),
                _ = &mut task => {}
            }
        }
    }
    None
}

/// What happens at a point of the log before its input applies: timers
/// due by then fire, then the workflow runs they and earlier writes queued.
pub async fn run_queued_workflows(state: &AppState) {
    if let Err(e) = state.fire_due_timers().await {
        tracing::warn!(error = %e, "firing due timers failed");
    }
    if state.has_queued_runs()
        && let Err(e) = state.run_queued_workflows().await
    {
        tracing::warn!(error = %e, "workflow runs failed");
    }
}
