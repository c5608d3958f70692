//! A workspace's pool of SQLite read connections for the change log, used
//! off the async workers.
//!
//! 500 clients replaying the log through one shared reader, read inside
//! async tasks, once held tokio's two workers so long that a `PUT` took
//! seconds. Here each read runs on a blocking thread, holding one of a few
//! connections; a request waits its turn for a connection (first come,
//! first served) without occupying a worker, and nothing is held while its
//! answer is being sent.

use std::path::Path;
use std::sync::{Arc, Mutex};

use sift_store::{StoreError, WorkspaceReader};
use tokio::sync::Semaphore;

use super::error::{Lock, WorkspaceError};

pub struct ReadPool {
    idle: Mutex<Vec<WorkspaceReader>>,
    /// One permit per connection in `idle`: holding one means a connection
    /// is there to take.
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// Opens `size` connections now, so that the descriptors they need are
    /// counted before the connection cap is set (`listen.rs`).
    pub fn open(path: &Path, size: usize) -> Result<ReadPool, StoreError> {
        let size = size.max(1);
        let idle = (0..size)
            .map(|_| WorkspaceReader::open(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReadPool {
            idle: Mutex::new(idle),
            permits: Arc::new(Semaphore::new(size)),
        })
    }

    /// Runs `read` with a connection on a blocking thread, once one is free.
    /// `read` fails in the caller's error type, as with
    /// [`WorkspaceService::write`](super::WorkspaceService::write).
    pub async fn run<T, E>(
        self: &Arc<Self>,
        read: impl FnOnce(&WorkspaceReader) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<WorkspaceError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WorkspaceError::Closed)?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let reader = pool
                .idle
                .lock()
                .map_err(|_| WorkspaceError::LockPoisoned(Lock::ReadPool))?
                .pop()
                .ok_or_else(|| {
                    WorkspaceError::ReadFailed("the pool is empty despite a permit".into())
                })?;
            let lent = Lent {
                pool: &pool,
                reader: Some(reader),
                _permit: permit,
            };
            lent.reader.as_ref().map_or_else(
                || Err(WorkspaceError::ReadFailed("a lent connection is missing".into()).into()),
                read,
            )
        })
        .await
        .map_err(|error| WorkspaceError::ReadFailed(error.to_string()))?
    }
}

/// A connection taken from the pool; given back (before its permit is
/// released) even if the read panics.
struct Lent<'a> {
    pool: &'a ReadPool,
    reader: Option<WorkspaceReader>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let (Some(reader), Ok(mut idle)) = (self.reader.take(), self.pool.idle.lock()) {
            idle.push(reader);
        }
    }
}
