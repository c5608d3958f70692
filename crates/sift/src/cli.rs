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
    /// Data directory, created if missing (default: SIFT_DATA, else
    /// ./sift-data, for `serve`; ./sift-demo-data for `demo`, which ignores
    /// SIFT_DATA, so the demo shop never mixes with yours).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Admin key for managing workspaces (also SIFT_ADMIN_KEY).
    #[arg(long, env = "SIFT_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// How long finished workflow runs and finished webhook-action
    /// deliveries are kept before they are deleted: a whole number and a
    /// unit, d, h, m or s (30d, 12h). Queued runs and pending deliveries
    /// are never deleted.
    #[arg(long, env = "SIFT_WORKFLOW_RETENTION", default_value = "30d",
          value_parser = sift_server::config::parse_retention)]
    pub workflow_retention: std::time::Duration,
    /// Days raw events are kept in the store (default: forever). Older
    /// events are deleted in chunks; what they gave to all-time conditions
    /// and to scoring rules without expiry keeps counting. A start is
    /// refused when a live segment or scoring rule reads a longer window,
    /// and such segments and rules are refused later.
    #[arg(long, env = "SIFT_EVENT_RETENTION", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub event_retention: Option<u32>,
    /// Most triggers of one workflow waiting to run. Beyond it new triggers
    /// of that workflow are dropped, counted in the workflow's `dropped`
    /// and logged, until its queue drains.
    #[arg(long, env = "SIFT_WORKFLOW_QUEUE_MAX", default_value_t = sift_engine::DEFAULT_MAX_QUEUED,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub workflow_queue_max: u64,
    /// Let webhooks, workflow webhooks and Facebook exports reach loopback,
    /// private and other non-public addresses (tests, receivers on the
    /// premises). Off: such destinations are refused when saved and when sent to.
    #[arg(long, env = "SIFT_ALLOW_PRIVATE_DESTINATIONS",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_private_destinations: bool,
    /// Key encrypting secrets at rest (Facebook sync tokens): 64 hex digits,
    /// e.g. from `openssl rand -hex 32`. Without it, `secret.key` in the data
    /// directory, created with mode 0600 when first needed.
    #[arg(long, env = "SIFT_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
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
    /// Most custom fields a workspace may have (built-in and system fields
    /// not counted); writes creating more are refused with 422.
    #[arg(long, env = "SIFT_MAX_FIELDS", default_value_t = 1_000)]
    pub max_fields: usize,
    /// Most new fields one write may create (a batch counts as one write).
    #[arg(long, env = "SIFT_MAX_NEW_FIELDS", default_value_t = 100)]
    pub max_new_fields: usize,
    /// Writes between two checkpoints of a workspace (a snapshot of its
    /// engine in the data directory, from which the next start catches up
    /// instead of rebuilding everything). 0: only at a graceful stop
    /// (SIGTERM, Ctrl-C), which always writes one.
    #[arg(long, env = "SIFT_CHECKPOINT_EVERY",
          default_value_t = sift_server::config::DEFAULT_CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Serve as a node of a cluster on NATS JetStream (docs/cluster.md):
    /// the NATS servers, `nats://host:port`, comma-separated. Every node
    /// answers the whole API; the data directory holds only a cache.
    #[arg(long, env = "SIFT_CLUSTER")]
    pub cluster: Option<String>,
    /// This node's name in the cluster (letters, digits, `-`, `_`),
    /// unique among its nodes. Its data directory defaults to
    /// ./sift-node-NAME.
    #[arg(long, env = "SIFT_NODE")]
    pub node: Option<String>,
    /// The URL other nodes reach this one at (default: http:// and the
    /// address it listens on).
    #[arg(long, env = "SIFT_ADVERTISE")]
    pub advertise: Option<String>,
    /// Copies JetStream keeps of the cluster's logs, buckets and
    /// checkpoints: 3 survives the loss of any one NATS server of three;
    /// 1 for a single NATS server.
    #[arg(long, env = "SIFT_CLUSTER_REPLICAS", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=5))]
    pub cluster_replicas: u64,
    /// Seconds between two checkpoints of the cluster's state in
    /// JetStream (when anything was written): a takeover replays the
    /// writes since the last one.
    #[arg(long, env = "SIFT_CLUSTER_CHECKPOINT_SECS", default_value_t = 5)]
    pub cluster_checkpoint_secs: u64,
    /// Most writes between two such checkpoints.
    #[arg(long, env = "SIFT_CLUSTER_CHECKPOINT_WRITES", default_value_t = 2_000)]
    pub cluster_checkpoint_writes: u64,
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
        #[arg(long, env = "SIFT_DATA", default_value = "./sift-data")]
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
        /// Write cells exactly as stored, for programs. By default a cell
        /// starting with =, +, -, @, a tab or a carriage return gets a
        /// leading ' so a spreadsheet does not run it as a formula (plain
        /// negative numbers excepted); the same as the API's ?raw=true.
        #[arg(long)]
        raw: bool,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The members at this past instant (RFC 3339, e.g.
        /// 2026-03-01T00:00:00Z), replayed from the change log, instead of
        /// now; the same as the API's ?as_of=.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, env = "SIFT_DATA", default_value = "./sift-data")]
        data: PathBuf,
        /// Workspace id (default: the only workspace).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Copy a data directory, while a server keeps serving on it, into a
    /// new directory DEST: every database as a consistent snapshot (the
    /// catalog first), plus secret.key.
    Backup {
        /// Where the copy goes: a new or empty directory.
        dest: PathBuf,
        /// The data directory to copy (as for `sift serve`).
        #[arg(long, env = "SIFT_DATA", default_value = "./sift-data")]
        data: PathBuf,
    },
    /// Lay a backup made by `sift backup` down as a data directory: every
    /// database is checked before anything is written.
    Restore {
        /// The backup directory.
        src: PathBuf,
        /// The data directory to create: new or empty.
        #[arg(long, env = "SIFT_DATA")]
        data: PathBuf,
    },
    /// Validate a condition and print its tree, or a pointed error.
    Check {
        condition: String,
        /// Extra fields, as NAME:TYPE (e.g. orders:number).
        #[arg(long = "field")]
        fields: Vec<String>,
    },
    /// The contacts bench's load generator, run by `sift bench` as a
    /// process of its own.
    #[command(hide = true)]
    BenchLoad {
        #[arg(long)]
        url: String,
        #[arg(long)]
        key: String,
        /// JSON lines `[contact id, PUT body]`.
        #[arg(long)]
        bodies: PathBuf,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 400)]
        per_client: usize,
    },
    /// Measure the engine and the HTTP API on generated data.
    Bench {
        /// Generated contacts (default: 1,000,000; 100,000 for `state`).
        #[arg(long)]
        contacts: Option<u64>,
        /// Generated events, for `state` only (default: 1,000,000).
        #[arg(long)]
        events: Option<u64>,
        /// Also write the figures as JSON to this file (`state` only).
        #[arg(long)]
        json: Option<PathBuf>,
        /// A Python interpreter with the duckdb package (`scripts/bench-tools.sh`
        /// prints one): `state` then times DuckDB's GROUP BY over the same
        /// stored events beside the new behavioural segment.
        #[arg(long, value_name = "PYTHON")]
        duckdb: Option<PathBuf>,
        /// `state` only: work in this directory and leave it; a later run of
        /// the same size on it reuses the loaded data instead of importing
        /// it again (at 10M contacts the import takes over an hour).
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
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
    /// A burst of timers through the server (one window closing for every
    /// one of `--contacts` at one instant) while clients read; also the
    /// last part of `events`.
    Burst,
    /// Restart time, memory per contact and per stored event, and the time
    /// to create a behavioural segment, against a real `sift serve` on a
    /// directory loaded through `sift import`; not part of `all`.
    State,
    /// Cluster mode against the embedded mode: `sift serve` children pinned
    /// to cores beside 3 nats-servers (`--contacts`: single PUTs, default
    /// 20,000), then 10 kills of the leader; not part of `all`.
    Cluster,
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
