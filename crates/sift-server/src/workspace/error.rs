//! How a workspace's own operations fail, in the service's words rather
//! than HTTP's: `error.rs` turns each variant into the API's code, and the
//! background tasks tell a closed workspace (stop quietly) from a broken
//! one (log and stop) by variant.

use sift_store::StoreError;

/// Which of the service's locks a panic poisoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Engine,
    Writer,
    Reader,
    ReadPool,
}

impl std::fmt::Display for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lock::Engine => "engine",
            Lock::Writer => "writer",
            Lock::Reader => "reader",
            Lock::ReadPool => "read pool",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The workspace was closed (the server is shutting down): it takes no
    /// more writes, and its tasks end.
    #[error("the workspace is closed: the server is shutting down")]
    Closed,
    /// The writer thread is gone without having been closed (it stops after
    /// a failed commit, since memory is then ahead of disk).
    #[error("the workspace's writer has stopped")]
    WriterStopped,
    /// A commit failed; the writer stops taking writes after it.
    #[error("the commit failed: {0}")]
    CommitFailed(String),
    /// A panic while the lock was held; what it guards may be half-changed.
    #[error("the workspace's {0} lock is poisoned")]
    LockPoisoned(Lock),
    /// A read on a blocking thread panicked, or found the read pool in a
    /// state it cannot be in.
    #[error("a read failed: {0}")]
    ReadFailed(String),
    /// The event retention is shorter than a window the workspace reads.
    #[error("{0}")]
    Retention(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type WorkspaceResult<T> = Result<T, WorkspaceError>;
