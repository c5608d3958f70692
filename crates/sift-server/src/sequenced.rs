//! A hook run once a request's write has been applied to the engine (its
//! records queued for the durable commit, not yet committed).
//!
//! Cluster mode applies writes in the order of its log, one at a time; it
//! lets the next write apply as soon as the previous one is in the engine,
//! while the previous one's commit is still under way, so that commits
//! group as they do on one node.

use std::cell::RefCell;

type Hook = Box<dyn FnOnce() + Send>;

tokio::task_local! {
    static ON_APPLIED: RefCell<Option<Hook>>;
}

/// Runs `work` with `hook` called after its first write reaches the engine.
pub async fn on_applied<F: std::future::Future>(hook: Hook, work: F) -> F::Output {
    ON_APPLIED.scope(RefCell::new(Some(hook)), work).await
}

/// Called by the workspace service after a client write reached the engine.
pub(crate) fn applied() {
    let hook = ON_APPLIED
        .try_with(|hook| hook.borrow_mut().take())
        .ok()
        .flatten();
    if let Some(hook) = hook {
        hook();
    }
}
