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
    /// Most custom fields a workspace may have (built-in and system fields
    /// not counted); writes creating more are refused with 422.
    #[arg(long, env = "SIFT_MAX_FIELDS", default_value_t = 1_000)]
    pub max_fields: usize,
    /// Most new fields one write may create (a batch counts as one write).
    #[arg(long, env = "SIFT_MAX_NEW_FIELDS", default_value_t = 100)]
    pub max_new_fields: usize,
}

impl ServeFlags {
    pub fn field_limits(&self) -> sift_engine::FieldLimits {
        sift_engine::FieldLimits {
            max_fields: self.max_fields,
            max_new_per_write: self.max_new_fields,
        }
    }
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
        /// Most custom fields the workspace may have, as for `sift serve`
        /// (an import may create up to this many at once).
        #[arg(long, env = "SIFT_MAX_FIELDS", default_value_t = 1_000)]
        max_fields: usize,
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
