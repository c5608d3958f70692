//! A workspace's background tasks: what they share with the handlers
//! ([`TaskState`]: the webhook and Facebook registries, where deliveries may
//! go), and the one place they are started ([`start`]), after loading and
//! only for a serving workspace.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::WorkspaceHandle;
use super::error::WorkspaceResult;
use super::service::WorkspaceService;
use crate::config::Config;

/// What the background tasks share with the handlers.
pub struct TaskState {
    /// The webhook subscriptions and their delivery tasks (`webhooks/`).
    pub webhooks: crate::webhooks::Registry,
    /// Facebook export jobs (in memory, see `facebook/`).
    pub exports: crate::facebook::Registry,
    /// Where webhooks, workflow webhooks and Facebook exports may send
    /// (`destination.rs`).
    pub destinations: crate::destination::Destinations,
    /// The kinds of task [`start`] started, in order: none for a workspace
    /// only loaded (`sift import`).
    started: Mutex<Vec<Task>>,
}

/// What [`start`] needs from loading: the Facebook syncs to resume.
pub struct Startup {
    resumable: Vec<crate::facebook::Resumable>,
}

/// The kinds of background task a workspace runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Timers,
    Webhooks,
    Runner,
    Outbox,
    Retention,
    Checkpoints,
    EventBlocks,
    FacebookResume,
}

impl TaskState {
    pub(super) fn load(
        config: &Config,
        path: &Path,
        service: &WorkspaceService,
        resume_syncs: bool,
    ) -> WorkspaceResult<(TaskState, Startup)> {
        let (stored_exports, resumable) =
            crate::facebook::resumable(&*service.reader()?, resume_syncs)?;
        let tasks = TaskState {
            webhooks: crate::webhooks::Registry::open(path, config)?,
            exports: crate::facebook::Registry::restore(stored_exports, service.clock.now_ms()),
            destinations: config.destinations(),
            started: Mutex::new(Vec::new()),
        };
        Ok((tasks, Startup { resumable }))
    }

    /// The tasks started so far.
    pub fn started(&self) -> Vec<Task> {
        self.started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, task: Task) {
        self.started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }
}

/// Starts a loaded workspace's background tasks on the current tokio
/// runtime. Without one (a synchronous caller) none starts: timers then
/// fire only as part of the next write, which advances the engine first.
pub fn start(handle: &Arc<WorkspaceHandle>, startup: Startup, config: &Config) {
    if tokio::runtime::Handle::try_current().is_err() {
        tracing::warn!(workspace = %handle.id, "no async runtime: no background task starts");
        return;
    }
    let tasks = &handle.tasks;
    crate::timers::spawn(&handle.service);
    tasks.record(Task::Timers);
    tasks.webhooks.start(&handle.service);
    tasks.record(Task::Webhooks);
    if config.run_workflows {
        crate::runner::spawn(&handle.service);
        tasks.record(Task::Runner);
    }
    crate::outbox::spawn(
        &handle.service,
        &tasks.destinations,
        config.action_retry_base,
        config.action_timeout,
    );
    tasks.record(Task::Outbox);
    crate::retention::spawn(&handle.service, config.workflow_retention);
    crate::retention::spawn_events(&handle.service, config.event_retention_days);
    tasks.record(Task::Retention);
    crate::checkpoints::spawn(&handle.service);
    tasks.record(Task::Checkpoints);
    crate::event_blocks::spawn(&handle.service);
    tasks.record(Task::EventBlocks);
    if !startup.resumable.is_empty() {
        crate::facebook::resume(
            &handle.service,
            &tasks.exports,
            &tasks.destinations,
            startup.resumable,
            config,
        );
        tasks.record(Task::FacebookResume);
    }
    tracing::debug!(workspace = %handle.id, tasks = ?tasks.started(), "background tasks started");
}
