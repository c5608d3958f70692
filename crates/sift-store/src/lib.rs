//! Sift's embedded store: one SQLite database (WAL, `synchronous=FULL`) per
//! workspace for its fields, contacts, segments, static members, events,
//! scoring rules, clock, change log, aliases (identify), webhook subscriptions and workflows
//! (definitions, trigger queue, runs, score grants, webhook outbox), Facebook
//! export jobs, and a catalog database for
//! workspaces and their keys.
//!
//! Only this crate touches the database. A workspace's writes arrive as the
//! engine's [`Record`]s and are committed in groups: one transaction, one
//! fsync, for every write that queued up meanwhile. The layout is described
//! in `docs/storage.md`.

mod alias_db;
pub mod backup;
mod block_scan;
mod catalog;
mod change_index;
pub mod checkpoint;
mod checkpoint_codec;
mod checkpoint_columns;
mod codec;
mod error;
mod event_blocks;
mod event_retention;
mod event_stream;
mod exports;
pub mod json;
mod load;
mod prune;
mod schema;
mod segment_history;
mod seq_migration;
mod webhooks;
mod workflow_db;
mod workspace_db;
mod write_log;

pub use catalog::{Catalog, WorkspaceRow, hash_key};
pub use codec::{event_properties, raw_value};
pub use error::StoreError;
pub use event_blocks::{BLOCK_EVENTS, BlocksBuilt, build_event_blocks, set_event_block_size};
pub use event_retention::EventPrune;
pub use event_stream::EventStream;
pub use exports::{ConnectionRow, ExportRow, ExportWrite};
pub use prune::Prune;
pub use schema::set_sync_commits;
pub use segment_history::{RevisionRow, SizeAt};
pub use webhooks::{
    PendingBatch, StoredEvent, StoredWebhook, WebhookCursor, WebhookRow, WebhookWrite,
};
pub use workflow_db::{Delivery, RunFilter};
pub use workspace_db::{Pending, StoredChange, WorkspaceDb, WorkspaceReader};

pub use sift_engine::Record;
