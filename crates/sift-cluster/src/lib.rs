//! Cluster mode on NATS JetStream (docs/cluster.md): a workspace's contacts
//! split into a fixed number of partitions by a hash of their id, and
//! leases in a JetStream key-value bucket that give each partition (and
//! each background job) one owning node at a time, shared fairly among
//! the live nodes and taken over when one dies.
//!
//! Sift replicates and elects nothing itself: a lease is a key that a node
//! creates only if absent and renews only at the revision it last wrote,
//! in a bucket whose entries expire; JetStream (RAFT inside NATS) decides.

mod checkpoints;
mod directory;
mod leases;
mod logs;
mod partition;

pub use async_nats::HeaderMap;
pub use checkpoints::CheckpointStore;
pub use directory::Directory;
pub use leases::{LeaseConfig, LeaseEvent, Leases, connect};
pub use logs::{
    AppendError, ChangeLog, ChangePublisher, LoggedChange, PartitionLog, PendingAppend,
};
pub use partition::{PARTITIONS, partition_lease, partition_of};

/// What a cluster operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach NATS at {servers}: {message}")]
    Connect { servers: String, message: String },
    #[error("JetStream refused {what}: {message}")]
    JetStream { what: String, message: String },
    #[error(
        "invalid node name {0:?}: use letters, digits, '-' and '_' (it is a key in the lease buckets)"
    )]
    NodeName(String),
}
