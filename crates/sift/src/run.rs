//! Resolving flags into actions: serving, the demo, checking a condition.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sift_engine::{ScoringRuleInput, SegmentInput, SegmentKind};
use sift_lang::{FieldType, Schema};
use sift_server::{AppState, Config};

use crate::cli::{Args, BenchSuite, Command, ExportFormat, ImportKind, ServeFlags};
use crate::generate::{DEMO_RULES, DEMO_SEGMENTS, Generator, anonymous_id};

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve(flags) => serve(flags, None),
        Command::Demo {
            serve: flags,
            contacts,
        } => serve(flags, Some(contacts)),
        Command::Import {
            what,
            file,
            data,
            workspace,
            max_fields,
        } => match what {
            ImportKind::Contacts => {
                crate::import::import_contacts(&file, &data, workspace.as_deref(), max_fields)
            }
            ImportKind::Events => {
                crate::import_events::import_events(&file, &data, workspace.as_deref())
            }
        },
        Command::Export {
            segment,
            format: ExportFormat::Csv,
            fields,
            raw,
            output,
            as_of,
            data,
            workspace,
        } => crate::export::export_csv(crate::export::ExportArgs {
            segment: &segment,
            fields: fields.as_deref(),
            raw,
            output: output.as_deref(),
            as_of: as_of.as_deref(),
            data: &data,
            workspace: workspace.as_deref(),
        }),
        Command::Backup { dest, data } => crate::backup::backup(&dest, &data),
        Command::Restore { src, data } => crate::backup::restore(&src, &data),
        Command::Check { condition, fields } => check(&condition, &fields),
        Command::BenchLoad {
            url,
            key,
            bodies,
            concurrency,
            per_client,
        } => crate::bench_load::child(&url, &key, &bodies, concurrency, per_client),
        Command::Bench {
            contacts,
            events,
            json,
            duckdb,
            keep,
            segments,
            http_contacts,
            suite,
        } => {
            if suite == BenchSuite::Cluster {
                crate::bench_cluster::run(contacts.unwrap_or(20_000), 10)?;
                return Ok(ExitCode::SUCCESS);
            }
            if suite == BenchSuite::State {
                let contacts = contacts.unwrap_or(100_000);
                let events = events.unwrap_or(1_000_000);
                crate::bench_state::run(
                    contacts,
                    events,
                    json.as_deref(),
                    duckdb.as_deref(),
                    keep.as_deref(),
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            let contacts = contacts.unwrap_or(1_000_000);
            let all = suite == BenchSuite::All;
            if all || suite == BenchSuite::Contacts {
                crate::bench::run(contacts, segments, http_contacts)?;
            }
            if all || suite == BenchSuite::Events {
                crate::bench_events::run(contacts, segments, http_contacts)?;
            }
            if all || suite == BenchSuite::Workflows {
                crate::bench_workflows::run(contacts, segments, http_contacts)?;
            }
            if all || suite == BenchSuite::Merge {
                crate::bench_merge::run(contacts, segments, http_contacts)?;
            }
            if (all || suite == BenchSuite::Webhooks) && http_contacts > 0 {
                crate::bench_webhooks::run(http_contacts, segments)?;
            }
            if suite == BenchSuite::Facebook {
                crate::bench_facebook::run(http_contacts)?;
            }
            if suite == BenchSuite::Streams {
                crate::bench_streams::run()?;
            }
            if suite == BenchSuite::Burst {
                crate::bench_burst::run(contacts, segments)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Holds the data directory's lock file so that only one process writes it.
pub fn lock_data_dir(data: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data directory {}", data.display()))?;
    let file = File::create(data.join("lock")).context("cannot create the lock file")?;
    if file.try_lock().is_err() {
        bail!(
            "another sift process is using {}; stop it first (or send contacts to it with POST /v1/contacts:batch)",
            data.display()
        );
    }
    Ok(file)
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Prints a line of the server's banner. A server whose stdout was closed
/// (its reader went away) keeps serving rather than panicking on EPIPE.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Where `serve` and `demo` keep their data unless told otherwise.
pub const DEFAULT_DATA: &str = "./sift-data";
pub const DEFAULT_DEMO_DATA: &str = "./sift-demo-data";

/// The data directory of `serve` (or `demo`): `--data`, else `SIFT_DATA`
/// for `serve` as for the other commands, else the default. `demo` never
/// reads `SIFT_DATA`, so the demo shop cannot land in a real data directory.
fn data_dir(flag: Option<PathBuf>, env: Option<std::ffi::OsString>, demo: bool) -> PathBuf {
    match (flag, env, demo) {
        (Some(dir), _, _) => dir,
        (None, _, true) => DEFAULT_DEMO_DATA.into(),
        (None, Some(dir), false) if !dir.is_empty() => dir.into(),
        (None, _, false) => DEFAULT_DATA.into(),
    }
}

fn serve(flags: ServeFlags, demo_contacts: Option<u64>) -> anyhow::Result<ExitCode> {
    if let Some(servers) = flags.cluster.clone() {
        if demo_contacts.is_some() {
            bail!("the demo runs on one node only; start it without --cluster (and SIFT_CLUSTER)");
        }
        return serve_cluster(flags, servers);
    }
    let data = data_dir(
        flags.data.clone(),
        std::env::var_os("SIFT_DATA"),
        demo_contacts.is_some(),
    );
    let _lock = lock_data_dir(&data)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let state = AppState::open(serve_config(&flags, &data)?)
            .with_context(|| format!("cannot open data directory {}", data.display()))?;
        let fresh = state.workspace_rows().is_empty();
        let mut first_key = None;
        if fresh {
            let name = if demo_contacts.is_some() {
                "Demo shop"
            } else {
                "Default"
            };
            let (id, key) = state
                .create_workspace(name)
                .context("cannot create the first workspace")?;
            tracing::info!(workspace = %id, "created the first workspace");
            first_key = Some(key);
            if let Some(n) = demo_contacts {
                generate_demo(&state, &id, n).await?;
            }
        }
        let listener = tokio::net::TcpListener::bind(flags.listen)
            .await
            .with_context(|| format!("cannot listen on {}", flags.listen))?;
        let addr = listener.local_addr()?;
        say!("Sift is listening on http://{addr}");
        if let Some(key) = &first_key {
            say!("Workspace key (shown once, keep it): {key}");
        }
        // A fresh sign-in link per workspace at every start: the tokens live
        // in memory only (docs/ui.md).
        let workspaces = state.workspace_rows();
        for (id, name) in workspaces.iter().take(10) {
            let token = state.sessions.mint_login_token(id);
            let url = format!("http://{addr}/ui/login?token={token}");
            if workspaces.len() == 1 {
                say!("Web UI: {url}");
            } else {
                say!("Web UI ({name}): {url}");
            }
        }
        if workspaces.len() > 10 {
            say!("({} more workspaces: sign in to them with their keys at http://{addr}/ui/login)", workspaces.len() - 10);
        }
        match &first_key {
            Some(key) => say!("API: curl -H 'Authorization: Bearer {key}' http://{addr}/v1/segments"),
            None => say!(
                "API: use the workspace key printed on this directory's first start ({}), or make a new one with the admin key: see README, \"A key for an existing data directory\".",
                data.display()
            ),
        }
        sift_server::serve(state, listener, shutdown_signal()).await?;
        say!("Sift stopped; every acknowledged write is on disk.");
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(feature = "cluster")]
fn serve_cluster(flags: ServeFlags, servers: String) -> anyhow::Result<ExitCode> {
    crate::cluster::serve(flags, servers)
}

#[cfg(not(feature = "cluster"))]
fn serve_cluster(_flags: ServeFlags, _servers: String) -> anyhow::Result<ExitCode> {
    bail!(
        "this sift was built without cluster mode (cargo feature \"cluster\"); build it with the default features"
    )
}

/// The server's settings from the flags (and their environment variables).
pub(crate) fn serve_config(flags: &ServeFlags, data: &Path) -> anyhow::Result<Config> {
    use std::time::Duration;
    let mut config = Config::new(data, flags.admin_key.clone());
    config.workflow_retention = flags.workflow_retention;
    config.event_retention_days = flags.event_retention;
    config.workflow_queue_max = flags.workflow_queue_max;
    config.allow_private_destinations = flags.allow_private_destinations;
    config.secret_key = flags
        .secret_key
        .as_deref()
        .map(sift_server::secrets::SecretKey::parse)
        .transpose()
        .map_err(|why| anyhow::anyhow!("--secret-key / SIFT_SECRET_KEY {why}"))?;
    if config.allow_private_destinations {
        tracing::warn!(
            "private destinations are allowed: webhooks and exports may reach this machine and its network"
        );
    }
    config.header_read_timeout = Duration::from_secs(flags.header_read_timeout_secs.max(1));
    config.body_read_timeout = Duration::from_secs(flags.body_read_timeout_secs.max(1));
    config.idle_timeout = Duration::from_secs(flags.idle_timeout_secs.max(1));
    config.max_connections = flags.max_connections.max(1);
    config.read_pool_size = usize::from(flags.read_pool_size);
    config.field_limits = flags.field_limits();
    config.checkpoint_every = flags.checkpoint_every;
    config.checkpoint_pause = checkpoint_pause()?;
    if let Some(at_ms) = frozen_clock()? {
        tracing::warn!(
            at_ms,
            "business time is frozen (SIFT_TEST_FROZEN_CLOCK_MS): no window closes and no timer fires"
        );
        config.clock =
            sift_server::clock::Clock::Manual(sift_server::clock::ManualClock::at(at_ms));
    }
    Ok(config)
}

/// `SIFT_TEST_FROZEN_CLOCK_MS`, for benches and tests only
/// (docs/operations.md "Checkpoints"): business time stands still at this
/// instant, so that sizes taken minutes apart, across restarts and a full
/// rebuild, are evaluations at one instant and must be equal.
fn frozen_clock() -> anyhow::Result<Option<i64>> {
    match std::env::var("SIFT_TEST_FROZEN_CLOCK_MS") {
        Ok(text) => {
            let ms: i64 = text.trim().parse().map_err(|_| {
                anyhow::anyhow!("SIFT_TEST_FROZEN_CLOCK_MS must be milliseconds since 1970-01-01 UTC, not {text:?}")
            })?;
            Ok(Some(ms))
        }
        Err(_) => Ok(None),
    }
}

/// `SIFT_TEST_CHECKPOINT_PAUSE_MS`, for tests only (docs/operations.md
/// "Checkpoints"): a checkpoint write pauses this long before it is
/// published, so that a test can kill the server inside it.
fn checkpoint_pause() -> anyhow::Result<Option<std::time::Duration>> {
    match std::env::var("SIFT_TEST_CHECKPOINT_PAUSE_MS") {
        Ok(text) => {
            let ms: u64 = text.trim().parse().map_err(|_| {
                anyhow::anyhow!("SIFT_TEST_CHECKPOINT_PAUSE_MS must be a whole number of milliseconds, not {text:?}")
            })?;
            Ok(Some(std::time::Duration::from_millis(ms)))
        }
        Err(_) => Ok(None),
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests and queued writes");
}

async fn generate_demo(state: &AppState, workspace_id: &str, n: u64) -> anyhow::Result<()> {
    let handle = state
        .workspace(workspace_id)
        .context("demo workspace vanished")?;
    let bar = ProgressBar::new(n).with_style(
        ProgressStyle::with_template("generating demo contacts {bar:40} {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut generator = Generator::new(42);
    let started = Instant::now();
    let mut next = 0;
    while next < n {
        let end = (next + 10_000).min(n);
        let batch: Vec<_> = (next..end).map(|i| generator.contact(i)).collect();
        handle
            .write(|engine, now| Ok((engine.upsert_contacts(&batch, now)?, ())))
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        bar.set_position(end);
        next = end;
    }
    bar.finish_and_clear();
    for (i, (event_type, filter, points, expires)) in DEMO_RULES.iter().enumerate() {
        handle
            .write(|engine, now| {
                let filter = match filter {
                    Some(text) => {
                        let wrapped = format!("performed {event_type} where ({text})");
                        match sift_lang::parse_text(&wrapped, &engine.schema())? {
                            sift_lang::Condition::Event { filter, .. } => filter.map(|f| *f),
                            _ => None,
                        }
                    }
                    None => None,
                };
                let input = ScoringRuleInput {
                    id: format!("rule_demo{i}"),
                    event_type: (*event_type).to_string(),
                    filter,
                    points: *points,
                    expires_after: expires.and_then(sift_lang::duration_from_json),
                };
                Ok((engine.create_scoring_rule(input, now)?, ()))
            })
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    // Five events per contact over the last 90 days.
    let n_events = n * 5;
    let bar = ProgressBar::new(n_events).with_style(
        ProgressStyle::with_template("generating demo events   {bar:40} {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let now = handle.clock().now_ms();
    let mut next = 0;
    while next < n_events {
        let end = (next + 10_000).min(n_events);
        let batch: Vec<_> = (next..end)
            .map(|i| generator.event((i * 7_919) % n.max(1), now, 90))
            .collect();
        handle
            .write(|engine, now| Ok((engine.ingest(batch, now)?, ())))
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        bar.set_position(end);
        next = end;
    }
    bar.finish_and_clear();
    let (visitors, identified) = anonymous_visitors(&handle, &mut generator, n, now).await?;
    for (i, (name, description, condition)) in DEMO_SEGMENTS.iter().enumerate() {
        handle
            .write(|engine, now| {
                let cond = sift_lang::parse_text(condition, &engine.schema())?;
                let input = SegmentInput {
                    id: format!("seg_demo{i}"),
                    name: (*name).to_string(),
                    description: (*description).to_string(),
                    kind: SegmentKind::Dynamic,
                    condition: Some(cond),
                    test: false,
                };
                Ok((engine.create_segment(input, now)?, ()))
            })
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    handle
        .write(|engine, now| {
            let input = SegmentInput {
                id: "seg_demo_gifted".into(),
                name: "Gifted".into(),
                description: "Filled by hand or by workflows".into(),
                kind: SegmentKind::Static,
                condition: None,
                test: false,
            };
            Ok((engine.create_segment(input, now)?, ()))
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    println!(
        "Generated {n} demo contacts, {n_events} events, {visitors} anonymous visitors ({identified} identified into contacts), {} scoring rules and {} segments in {:.1}s",
        DEMO_RULES.len(),
        DEMO_SEGMENTS.len() + 1,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Anonymous visitors (one per five contacts, three visits or views each);
/// every third identifies into a known contact through the engine's
/// identify, so the demo has anonymous members and merged histories.
/// Returns (visitors, identified).
async fn anonymous_visitors(
    handle: &sift_server::state::WorkspaceHandle,
    generator: &mut Generator,
    n: u64,
    now: i64,
) -> anyhow::Result<(u64, u64)> {
    let visitors = n / 5;
    let mut next = 0;
    while next < visitors {
        let end = (next + 3_000).min(visitors);
        let batch: Vec<_> = (next..end)
            .flat_map(|k| (0..3).map(move |_| k))
            .map(|k| generator.anonymous_event(k, now, 30))
            .collect();
        handle
            .write(|engine, now| Ok((engine.ingest(batch, now)?, ())))
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        next = end;
    }
    let pairs: Vec<(String, String)> = (0..visitors)
        .filter(|k| k % 3 == 0)
        .map(|k| {
            (
                anonymous_id(k),
                format!("c{}", generator.next_u64() % n.max(1)),
            )
        })
        .collect();
    let mut identified = 0;
    for chunk in pairs.chunks(1_000) {
        let merged = handle
            .write(|engine, now| {
                // Many identifies in one durable commit: each is a complete
                // write whose records are already numbered.
                let mut all = sift_engine::Write::default();
                let mut merged = 0;
                for (anonymous_id, contact_id) in chunk {
                    // Two visitors may draw the same contact; both merge. A
                    // refused identify changes nothing, so it is skipped.
                    if let Ok(write) = engine.identify(anonymous_id, contact_id, now) {
                        merged += u64::from(write.merged);
                        all.records.extend(write.records);
                    }
                }
                Ok((all, merged))
            })
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        identified += merged.1;
    }
    Ok((visitors, identified))
}

/// The built-in fields plus `--field NAME:TYPE`; segments are not known offline,
/// so `in segment "X"` resolves to a placeholder id.
struct CheckSchema {
    extra: Vec<(String, FieldType)>,
}

impl Schema for CheckSchema {
    fn field_type(&self, name: &str) -> Option<FieldType> {
        sift_engine::BUILTIN_FIELDS
            .iter()
            .chain(sift_engine::SYSTEM_FIELDS)
            .find(|(n, _, _)| *n == name)
            .map(|(_, t, _)| *t)
            .or_else(|| self.extra.iter().find(|(n, _)| n == name).map(|(_, t)| *t))
    }

    fn segment_id(&self, name: &str) -> Option<String> {
        Some(format!("segment:{name}"))
    }

    fn segment_name(&self, id: &str) -> Option<String> {
        id.strip_prefix("segment:").map(str::to_string)
    }

    fn field_names(&self) -> Vec<String> {
        sift_engine::BUILTIN_FIELDS
            .iter()
            .chain(sift_engine::SYSTEM_FIELDS)
            .map(|(n, _, _)| n.to_string())
            .chain(self.extra.iter().map(|(n, _)| n.clone()))
            .collect()
    }
}

fn check(condition: &str, fields: &[String]) -> anyhow::Result<ExitCode> {
    let mut extra = Vec::new();
    for spec in fields {
        let Some((name, type_name)) = spec.split_once(':') else {
            bail!("--field takes NAME:TYPE, got {spec:?}");
        };
        let field_type = FieldType::from_name(type_name).with_context(|| {
            format!(
                "unknown type {type_name:?} (string, number, boolean, date, datetime, string_list)"
            )
        })?;
        extra.push((name.to_string(), field_type));
    }
    let schema = CheckSchema { extra };
    match sift_lang::parse_text(condition, &schema) {
        Ok(cond) => {
            println!("{}", sift_lang::to_text(&cond, &schema));
            println!(
                "{}",
                serde_json::to_string_pretty(&sift_lang::to_json(&cond))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(pos) = error.position {
                let line = condition.lines().nth(pos.line as usize - 1).unwrap_or("");
                eprintln!("  {line}");
                eprintln!("  {}^", " ".repeat(pos.column as usize - 1));
            }
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_takes_its_data_directory_from_the_flag_then_sift_data_and_demo_never_from_sift_data() {
        let flag = Some(PathBuf::from("/flag"));
        let env = Some(std::ffi::OsString::from("/env"));
        assert_eq!(
            data_dir(flag.clone(), env.clone(), false),
            PathBuf::from("/flag")
        );
        assert_eq!(data_dir(None, env.clone(), false), PathBuf::from("/env"));
        assert_eq!(data_dir(None, None, false), PathBuf::from(DEFAULT_DATA));
        assert_eq!(
            data_dir(None, Some("".into()), false),
            PathBuf::from(DEFAULT_DATA)
        );
        assert_eq!(data_dir(flag, env.clone(), true), PathBuf::from("/flag"));
        assert_eq!(data_dir(None, env, true), PathBuf::from(DEFAULT_DEMO_DATA));
    }
}
