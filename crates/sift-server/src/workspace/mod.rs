//! An open workspace: the service (`service.rs`: engine, writer, readers,
//! the one durable write path, its own error type in `error.rs`) and what
//! its background tasks share with the handlers (`tasks.rs`).
//!
//! Opening and starting are two steps. [`WorkspaceHandle::load`] loads the
//! engine, fires the timers that fell due while it was closed and opens the
//! writer and readers, and starts nothing else: `sift import` works on a
//! loaded workspace, so no webhook, workflow run or audience sync goes out
//! from an import. [`tasks::start`] then starts the timer task, webhook
//! delivery, the workflow runner, the outbox, history retention and the
//! Facebook syncs that resume; `sift serve` does both.

mod bursts;
pub mod error;
pub mod history;
pub mod reads;
pub mod segment_refs;
pub mod service;
pub mod tasks;
mod writer;

use std::sync::{Arc, MutexGuard};

use sift_engine::Workspace;
use sift_store::{WorkspaceReader, WorkspaceRow};

pub use error::{Lock, WorkspaceError, WorkspaceResult};
pub use service::{RUN_BATCH, Signals, WorkspaceService};
pub use tasks::{Startup, TaskState};

use crate::config::Config;

/// One open workspace.
pub struct WorkspaceHandle {
    pub id: String,
    pub name: String,
    /// Engine, writer and readers; the tasks that only write through it
    /// (timers, runner, retention) hold it alone.
    pub service: Arc<WorkspaceService>,
    /// Registries and settings the background tasks share with handlers.
    pub tasks: TaskState,
    /// Segment ids and names rendered for answers.
    pub segment_refs: segment_refs::SegmentRefs,
}

impl WorkspaceHandle {
    /// Loads a workspace without starting any background task; see
    /// [`tasks::start`] for those, which answers what they need from here.
    pub fn load(
        config: &Config,
        row: &WorkspaceRow,
        resume_syncs: bool,
    ) -> WorkspaceResult<(Arc<WorkspaceHandle>, Startup)> {
        let path = config.data_dir.join(format!("{}.db", row.id));
        let service = Arc::new(WorkspaceService::load(config, &row.id, &path)?);
        let (tasks, startup) = TaskState::load(config, &path, &service, resume_syncs)?;
        let handle = Arc::new(WorkspaceHandle {
            id: row.id.clone(),
            name: row.name.clone(),
            service,
            tasks,
            segment_refs: Default::default(),
        });
        Ok((handle, startup))
    }

    /// Business time (`clock.rs`), the one the service writes with.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.service.clock
    }

    pub fn signals(&self) -> &Signals {
        &self.service.signals
    }

    pub fn read<T>(&self, f: impl FnOnce(&Workspace) -> T) -> WorkspaceResult<T> {
        self.service.read(f)
    }

    pub fn reader(&self) -> WorkspaceResult<MutexGuard<'_, WorkspaceReader>> {
        self.service.reader()
    }

    /// Stops taking writes (every task ends) and waits until every queued
    /// write is committed.
    pub fn close(&self) {
        self.service.close();
    }
}
