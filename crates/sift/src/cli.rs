//! Command-line flags, as typed; `run` resolves them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "sift",
    version,
    about = "Real-time segmentation of marketing contacts"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeFlags {
    /// Data directory (created if missing).
    #[arg(long, default_value = "./sift-data")]
    pub data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Admin key for managing workspaces (also SIFT_ADMIN_KEY).
    #[arg(long, env = "SIFT_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Seconds a request head may take from its first byte before the
    /// connection is closed.
    #[arg(long, env = "SIFT_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may take to arrive after its head (then 408).
    #[arg(long, env = "SIFT_BODY_READ_TIMEOUT_SECS", default_value_t = 60)]
    pub body_read_timeout_secs: u64,
    /// Seconds a connection may stay open with no request in flight (a
    /// change stream is a request in flight).
    #[arg(long, env = "SIFT_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Most connections open at once; lowered at start to what the
    /// open-file limit (ulimit -n) leaves after the store's reserve.
    #[arg(long, env = "SIFT_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// SQLite read connections per workspace for the change log (change
    /// streams and pages read through them, off the async workers).
    #[arg(long, env = "SIFT_READ_POOL_SIZE", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub read_pool_size: u16,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server on an embedded store in a data directory.
    Serve(ServeFlags),
    /// Generate a demo shop (contacts and segments), then serve it.
    Demo {
        #[command(flatten)]
        serve: ServeFlags,
        /// Number of demo contacts.
        #[arg(long, default_value_t = 100_000)]
        contacts: u64,
    },
    /// Import contacts or events from a CSV or JSON Lines file into a stopped server's data directory.
    Import {
        #[arg(value_enum)]
        what: ImportKind,
        /// The file: `.csv` with a header row (`id` for contacts; `contact_id`, `type` for events)
        /// or `.jsonl` (one contact `{"id", "properties"}` or event `{"contact_id", "type", ...}` per line).
        file: PathBuf,
        #[arg(long, default_value = "./sift-data")]
        data: PathBuf,
        /// Workspace id (default: the only workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Export a segment's members (by id or name) as CSV, to a file or stdout.
    /// Reads the data directory, whether or not a server is running on it.
    Export {
        /// The segment's id or name.
        segment: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// Comma-separated columns: id, any field name or a system field
        /// (default: id and every non-system field).
        #[arg(long)]
        fields: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[arg(long, default_value = "./sift-data")]
        data: PathBuf,
        /// Workspace id (default: the only workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Validate a condition and print its tree, or a pointed error.
    Check {
        condition: String,
        /// Extra fields, as NAME:TYPE (e.g. orders:number).
        #[arg(long = "field")]
        fields: Vec<String>,
    },
    /// Measure the engine and the HTTP API on generated data.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        contacts: u64,
        #[arg(long, default_value_t = 1_000)]
        segments: u64,
        /// Contacts loaded into the HTTP server for the durable-write part (0 skips it).
        #[arg(long, default_value_t = 100_000)]
        http_contacts: u64,
        /// Which figures: contact writes and segments, events and timers,
        /// webhook deliveries, workflows, identify merges, a Facebook export
        /// (only when asked for), or all of them.
        #[arg(long, value_enum, default_value_t = BenchSuite::All)]
        suite: BenchSuite,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchSuite {
    Contacts,
    Events,
    Webhooks,
    Workflows,
    /// Identify (merge) latency.
    Merge,
    /// Facebook Custom Audience export to a local fake Graph API
    /// (`--http-contacts` members); not part of `all`.
    Facebook,
    /// PUT latency while 500 change streams replay a 32,501-change log;
    /// not part of `all`.
    Streams,
    All,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header row; list values joined with `|`.
    Csv,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Contacts,
    Events,
}
