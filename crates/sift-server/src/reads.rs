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

use crate::error::{ApiError, ApiResult, Code};

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
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&WorkspaceReader) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::new(Code::Unavailable, "the workspace is closed"))?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let reader = pool
                .idle
                .lock()
                .map_err(|_| ApiError::internal("read pool lock poisoned"))?
                .pop()
                .ok_or_else(|| ApiError::internal("read pool empty despite a permit"))?;
            let lent = Lent {
                pool: &pool,
                reader: Some(reader),
                _permit: permit,
            };
            lent.reader.as_ref().map_or_else(
                || Err(ApiError::internal("read pool connection missing")),
                read,
            )
        })
        .await
        .map_err(|error| ApiError::internal(format!("a read failed: {error}")))?
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
