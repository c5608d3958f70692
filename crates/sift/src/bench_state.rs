//! `sift bench --suite state`: what it costs to hold a shop's history, measured
//! from outside the server as an operator sees it. Generated contacts and a
//! two-year event history go into a fresh data directory through the same
//! import code as `sift import`; 30 live segments (windowed event conditions
//! of at most 90 days and a few field conditions) are created; then a real
//! `sift serve` (this executable, a child process) is started on it three
//! times, each time timed from spawn to its first answer on a known port,
//! with every segment's size compared with its size before. The figures are
//! the server's RSS, the time to create a behavioural segment over every
//! event, and checkpoint figures once there are checkpoints.
//!
//! Every event lies at least an hour away from any whole-day window
//! boundary, so no window opens or closes while the bench runs (under an
//! hour) and sizes compared across restarts must be equal.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value as Json, json};
use sift_engine::RawValue;

use crate::bench_events::sift_now;
use crate::bench_state_kept::{KeptSegments, Loaded};
use crate::bench_state_server::{SETTLE, Server, free_port};
use crate::generate::{COUNTRIES, EVENT_TYPES, Generator};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Days of history the generated events span.
const HISTORY_DAYS: i64 = 730;
const RESTARTS: usize = 3;
/// Events per `sift import events` file, at least (see `run`); a larger
/// history is loaded in ten files, since each import opens the workspace
/// from its checkpoint and writes one at its end (at 10M contacts, ~30 s
/// each).
const EVENTS_PER_IMPORT: u64 = 1_000_000;
const IMPORT_FILES: u64 = 10;
/// The behavioural segment created last: it reads every purchase ever made.
const NEW_SEGMENT: &str = "performed purchase where amount > 150 at least 2 times";
/// [`NEW_SEGMENT`] as DuckDB's GROUP BY asks it.
const NEW_SEGMENT_SQL: crate::bench_duckdb::GroupBy = crate::bench_duckdb::GroupBy {
    event_type: "purchase",
    min_amount: 150.0,
    min_count: 2,
};

/// The 30 live segments: 24 windowed event conditions (7 to 90 days), some
/// with a field condition beside them, and 6 field conditions.
fn conditions(generator: &mut Generator) -> Vec<String> {
    const CATEGORIES: [&str; 6] = ["shoes", "bags", "hats", "watches", "jeans", "dresses"];
    let days = [7, 14, 30, 60, 90];
    let mut out = Vec::new();
    for i in 0..24usize {
        let d = days[i % days.len()];
        let kind = EVENT_TYPES[i % EVENT_TYPES.len()];
        let part = match i % 6 {
            0 => format!("performed {kind} in last {d} days"),
            1 => format!(
                "performed purchase where amount > {} at least {} times in last {d} days",
                [20, 50, 100][i % 3],
                1 + i % 3
            ),
            2 => format!("not performed {kind} in last {d} days"),
            3 => format!(
                "total purchase.amount >= {} in last {d} days",
                [50, 100, 250][i % 3]
            ),
            4 => format!(
                "performed product_view where category = \"{}\" at least 2 times in last {d} days",
                CATEGORIES[i % CATEGORIES.len()]
            ),
            _ => format!("last_seen_at in last {d} days"),
        };
        if i % 4 == 3 {
            out.push(format!(
                "{part} and country = \"{}\"",
                COUNTRIES[i % COUNTRIES.len()]
            ));
        } else {
            out.push(part);
        }
    }
    out.extend((0..6).map(|_| generator.segment_condition()));
    out
}

fn raw_json(value: &RawValue) -> Json {
    match value {
        RawValue::Bool(b) => json!(b),
        RawValue::Number(x) => json!(x),
        RawValue::String(s) => json!(s),
        RawValue::StringList(list) => json!(list),
        RawValue::Null | RawValue::Unsupported(_) => Json::Null,
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    ProgressBar::new(len).with_style(
        ProgressStyle::with_template(&format!("{what} {{bar:40}} {{pos}}/{{len}} ({{per_sec}})"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// Writes the contacts as a JSON Lines file `sift import contacts` reads.
fn contacts_file(dir: &Path, generator: &mut Generator, contacts: u64) -> anyhow::Result<PathBuf> {
    let file = dir.join("contacts.jsonl");
    let mut out = BufWriter::new(std::fs::File::create(&file)?);
    let progress = bar(contacts, "generating contacts");
    for n in 0..contacts {
        let contact = generator.contact(n);
        let properties: serde_json::Map<String, Json> = contact
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), raw_json(v)))
            .collect();
        writeln!(
            out,
            "{}",
            json!({"id": contact.id, "properties": properties})
        )?;
        if n % 10_000 == 0 {
            progress.set_position(n);
        }
    }
    out.flush()?;
    progress.finish_and_clear();
    Ok(file)
}

/// Writes `count` events of random contacts as a JSON Lines file `sift
/// import events` reads.
fn events_file(
    dir: &Path,
    generator: &mut Generator,
    contacts: u64,
    count: u64,
    now: i64,
) -> anyhow::Result<PathBuf> {
    let file = dir.join("events.jsonl");
    let mut out = BufWriter::new(std::fs::File::create(&file)?);
    for _ in 0..count {
        let contact = generator.next_u64() % contacts.max(1);
        let event = generator.event(contact, now, HISTORY_DAYS);
        // Moves the event into the hours 1..23 of its day before `now`, an
        // hour or more from any window edge (see the module comment).
        let ago = now - event.at.unwrap_or(now);
        let at = now - (ago / DAY_MS * DAY_MS + HOUR_MS + ago % DAY_MS * 22 / 24);
        let properties: Json = serde_json::from_str(&event.properties_json)?;
        let line = json!({
            "contact_id": event.contact_id,
            "type": event.event_type,
            "at": sift_engine::format_datetime(at),
            "properties": properties,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(file)
}

/// Creates the directory's first workspace, as a first `sift serve` would,
/// and returns its key.
fn first_workspace(data: &Path) -> anyhow::Result<String> {
    let _lock = crate::run::lock_data_dir(data)?;
    let rt = crate::run::runtime()?;
    rt.block_on(async {
        let state = sift_server::AppState::open_offline(sift_server::Config::new(data, None))?;
        let (_, key) = state.create_workspace("Bench")?;
        state.close();
        Ok(key)
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The `key=value` fields of the last line of the server's log holding
/// `message` (tracing's text format).
fn log_fields(log: &Path, message: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rfind(|line| line.contains(message))
        .map(|line| {
            line.split_whitespace()
                .filter_map(|token| token.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Every line of the log holding `message`, as its fields.
fn log_lines(log: &Path, message: &str) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|line| line.contains(message))
        .map(|line| {
            line.split_whitespace()
                .filter_map(|token| token.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn number(fields: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    fields.get(key)?.parse().ok()
}

/// Moves the data directory's checkpoint files into `aside` (a full
/// rebuild is then all a start can do), after removing what an earlier
/// run of a kept directory left there: nothing reads those again, and at
/// 100M events they are 2.6 GB each.
fn set_checkpoints_aside(data: &Path, aside: &Path) -> anyhow::Result<usize> {
    if aside.exists() {
        std::fs::remove_dir_all(aside)?;
    }
    std::fs::create_dir_all(aside)?;
    let mut moved = 0;
    for entry in std::fs::read_dir(data)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".checkpoint.") {
            std::fs::rename(entry.path(), aside.join(&name))?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Writes one contact after another for up to `limit`, with a periodic
/// checkpoint every few writes, until at least one checkpoint was written:
/// answers the slowest write's latency and the writes made.
async fn writes_during_checkpoints(
    server: &Server,
    log: &Path,
    limit: Duration,
) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let mut slowest: f64 = 0.0;
    let mut n = 0u64;
    while started.elapsed() < limit {
        let t = Instant::now();
        let body = json!({"properties": {"country": "FR"}});
        server
            .ok(
                hyper::Method::PUT,
                &format!("/v1/contacts/bench-stall-{}", n % 1000),
                Some(body),
            )
            .await?;
        slowest = slowest.max(t.elapsed().as_secs_f64() * 1000.0);
        n += 1;
        if n >= 400
            && n.is_multiple_of(100)
            && !log_lines(log, "checkpoint written workspace").is_empty()
        {
            break;
        }
    }
    Ok((slowest, n))
}

fn import(what: &str, result: anyhow::Result<ExitCode>) -> anyhow::Result<()> {
    if result? != ExitCode::SUCCESS {
        bail!("the {what} import skipped rows");
    }
    Ok(())
}

/// Generates and imports the contacts and events into `dir/data` through
/// `sift import`'s code, measuring the server's RSS empty and with the
/// contacts only on the way.
fn load(
    dir: &Path,
    generator: &mut Generator,
    contacts: u64,
    events: u64,
    now: i64,
    port: u16,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Loaded> {
    let data = dir.join("data");
    let empty = dir.join("empty");
    let log = dir.join("serve.log");
    let contacts_file = contacts_file(dir, generator, contacts)?;
    let key = first_workspace(&data)?;
    let empty_key = first_workspace(&empty)?;

    let t = Instant::now();
    import(
        "contacts",
        crate::import::import_contacts(&contacts_file, &data, None, 1_000),
    )?;
    let contacts_s = t.elapsed().as_secs_f64();
    std::fs::remove_file(&contacts_file)?;

    let (rss_empty, rss_contacts) = rt.block_on(async {
        let server = Server::start(&empty, port, &empty_key, &log).await?;
        let rss_empty = server.rss_now_and_settled().await?;
        server.stop()?;
        let server = Server::start(&data, port, &key, &log).await?;
        let rss_contacts = server.rss_now_and_settled().await?;
        server.stop()?;
        Ok::<_, anyhow::Error>((rss_empty, rss_contacts))
    })?;

    // In files of a million events or a tenth of them, one `sift import
    // events` each: the generated file is on disk beside the database.
    let per_import = EVENTS_PER_IMPORT.max(events.div_ceil(IMPORT_FILES));
    let mut events_s = 0.0;
    let mut imported = 0;
    while imported < events {
        let count = (events - imported).min(per_import);
        let file = events_file(dir, generator, contacts, count, now)?;
        let t = Instant::now();
        import(
            "events",
            crate::import_events::import_events(&file, &data, None),
        )?;
        events_s += t.elapsed().as_secs_f64();
        std::fs::remove_file(&file)?;
        imported += count;
        println!("events:          {imported:>10} of {events} imported");
    }
    Ok(Loaded {
        contacts,
        events,
        key,
        contacts_s,
        events_s,
        rss_empty,
        rss_contacts,
    })
}

pub fn run(
    contacts: u64,
    events: u64,
    json_file: Option<&Path>,
    duckdb: Option<&Path>,
    keep: Option<&Path>,
) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = load_average();
    println!(
        "state: {contacts} contacts, {events} events over {HISTORY_DAYS} days, 30 live segments; {cpus} CPUs, load average {load_before}"
    );
    // A kept directory outlives the run; a temporary one is removed with it.
    let (_temporary, dir) = match keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            (None, dir.to_path_buf())
        }
        None => {
            let temporary = tempfile::tempdir()?;
            let dir = temporary.path().to_path_buf();
            (Some(temporary), dir)
        }
    };
    let data = dir.join("data");
    let empty = dir.join("empty");
    let log = dir.join("serve.log");
    let now = sift_now();
    let mut generator = Generator::new(57);
    let port = free_port()?;
    let rt = crate::run::runtime()?;
    let loaded = match Loaded::read(&dir, contacts, events) {
        Some(loaded) => {
            println!(
                "reusing the data loaded into {} by an earlier run (imports skipped; their figures are that run's)",
                dir.display()
            );
            loaded
        }
        None => {
            if keep.is_some() && (data.exists() || empty.exists()) {
                bail!(
                    "{} holds data that is not a finished load of {contacts} contacts and {events} events: remove it or choose another --keep directory",
                    dir.display()
                );
            }
            let loaded = load(&dir, &mut generator, contacts, events, now, port, &rt)?;
            if keep.is_some() {
                loaded.write(&dir)?;
            }
            loaded
        }
    };
    let Loaded {
        key,
        contacts_s,
        events_s,
        rss_empty,
        rss_contacts,
        ..
    } = loaded;

    // A generator of their own: a run reusing a load draws the same ones.
    let conditions = conditions(&mut Generator::new(58));
    let aside = dir.join("checkpoints-aside");
    // From here on business time stands at one instant, after every import:
    // each size below is an evaluation at that instant, however long the
    // restarts take, so every size must equal its first.
    let frozen = sift_now();
    let figures = rt.block_on(async {
        let server = Server::start_frozen(&data, port, &key, &log, frozen).await?;
        // A reused load still holds the segments of the run before: kept
        // when they are these (creating them again reloads memory from
        // the whole history for each windowed one: minutes at 100M).
        let held: Vec<String> = server.sizes().await?.into_keys().collect();
        let segments = match KeptSegments::read(&dir, &conditions, &held) {
            Some(kept) => (kept.created_s, true),
            None => {
                for id in &held {
                    server.ok(hyper::Method::DELETE, &format!("/v1/segments/{id}"), None).await?;
                }
                let t = Instant::now();
                let mut ids = Vec::new();
                for (i, condition) in conditions.iter().enumerate() {
                    let body = json!({"name": format!("State {i}"), "condition": condition});
                    let made = server.ok(hyper::Method::POST, "/v1/segments", Some(body)).await?;
                    ids.push(made["id"].as_str().unwrap_or_default().to_string());
                }
                let created_s = t.elapsed().as_secs_f64();
                if keep.is_some() {
                    KeptSegments { conditions: conditions.clone(), ids, created_s }.write(&dir)?;
                }
                (created_s, false)
            }
        };
        let before = server.sizes().await?;
        // SIGTERM writes a checkpoint of everything loaded so far.
        server.stop()?;
        let shutdown = log_fields(&log, "checkpoint written at shutdown");

        let (mut starts, mut rss, mut mismatches) = (Vec::new(), Vec::new(), Vec::new());
        let mut from_checkpoint = 0;
        let mut new_segment = Json::Null;
        let check = |server_sizes: BTreeMap<String, u64>, run: usize, mismatches: &mut Vec<Json>| {
            for (id, size) in &before {
                if server_sizes.get(id) != Some(size) {
                    mismatches.push(json!({"run": run, "segment": id, "before": size, "after": server_sizes.get(id)}));
                }
            }
        };
        for run in 0..RESTARTS {
            let server = Server::start_frozen(&data, port, &key, &log, frozen).await?;
            starts.push(server.start.as_secs_f64());
            if log_fields(&log, "workspace loaded").get("checkpoint").is_some_and(|c| c != "none") {
                from_checkpoint += 1;
            }
            check(server.sizes().await?, run + 1, &mut mismatches);
            rss.push(server.rss_now_and_settled().await?);
            println!("restart {}:        {:>10.2} s to the first answer (from a checkpoint)", run + 1, server.start.as_secs_f64());
            if run + 1 == RESTARTS {
                // Three times, as DuckDB answers three times: the first
                // reads the database from the page cache as it was left.
                let mut runs = Vec::new();
                let mut size = Json::Null;
                for _ in 0..3 {
                    let body = json!({"name": "State new", "condition": NEW_SEGMENT});
                    let t = Instant::now();
                    let answer = server.ok(hyper::Method::POST, "/v1/segments", Some(body)).await?;
                    runs.push(json!({
                        "took_ms": answer["evaluation"]["took_ms"],
                        "wall_ms": t.elapsed().as_secs_f64() * 1000.0,
                    }));
                    size = answer["size"].clone();
                    // Not one of the 30: leaves the comparison below alone.
                    let id = answer["id"].as_str().unwrap_or_default().to_string();
                    server.ok(hyper::Method::DELETE, &format!("/v1/segments/{id}"), None).await?;
                }
                let fastest = |key: &str| {
                    runs.iter()
                        .filter_map(|r| r[key].as_f64())
                        .fold(f64::INFINITY, f64::min)
                };
                new_segment = json!({
                    "condition": NEW_SEGMENT,
                    "took_ms": fastest("took_ms"),
                    "wall_ms": fastest("wall_ms"),
                    "first_took_ms": runs[0]["took_ms"],
                    "runs": runs,
                    "size": size,
                });
            }
            server.stop()?;
        }

        // The same start without checkpoints: the full rebuild.
        set_checkpoints_aside(&data, &aside)?;
        let server = Server::start_frozen(&data, port, &key, &log, frozen).await?;
        let full_start = server.start.as_secs_f64();
        check(server.sizes().await?, RESTARTS + 1, &mut mismatches);
        println!("full rebuild:    {full_start:>10.2} s to the first answer (checkpoints set aside)");
        server.stop()?;

        // Writes timed from outside while periodic checkpoints are taken.
        let server = Server::start_with(&data, port, &key, &log, &["--checkpoint-every", "200"], Some(frozen)).await?;
        let (slowest_write_ms, stall_writes) =
            writes_during_checkpoints(&server, &log, Duration::from_secs(600)).await?;
        let periodic = log_lines(&log, "checkpoint written workspace");
        server.stop()?;
        let figures = json!({
            "shutdown": {
                "write_ms": number(&shutdown, "took_ms"),
                "bytes": number(&shutdown, "bytes"),
            },
            "periodic": periodic.iter().map(|f| json!({
                "write_ms": number(f, "took_ms"),
                "bytes": number(f, "bytes"),
                "stall_ms": number(f, "stall_ms"),
            })).collect::<Vec<_>>(),
            "longest_stall_ms": periodic.iter().filter_map(|f| number(f, "stall_ms")).fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
            "slowest_write_during_ms": slowest_write_ms,
            "writes_during": stall_writes,
            "restarts_from_checkpoint": from_checkpoint,
            "full_rebuild_s": full_start,
        });
        Ok::<_, anyhow::Error>((segments, before, starts, rss, mismatches, new_segment, figures))
    })?;
    let ((segments_s, segments_kept), before, mut starts, rss, mismatches, new_segment, checkpoint) =
        figures;
    // After the last server stopped, so that DuckDB has the machine to itself
    // as the server had while it created the segment.
    let duckdb = match duckdb {
        Some(python) => {
            let db = crate::bench_duckdb::workspace_db(&data)?;
            crate::bench_duckdb::compare(python, &db, &NEW_SEGMENT_SQL)?
        }
        None => Json::Null,
    };
    starts.sort_by(f64::total_cmp);
    // The restart with the most memory, as it was once settled.
    let rss_loaded = rss.iter().copied().max_by_key(|r| r.1).unwrap_or_default();
    let per = |high: u64, low: u64, n: u64| high.saturating_sub(low) as f64 / n.max(1) as f64;
    let per_contact = per(rss_contacts.1, rss_empty.1, contacts);
    let per_event = per(rss_loaded.1, rss_contacts.1, events);
    let per_contact_at_start = per(rss_contacts.0, rss_empty.0, contacts);
    let per_event_at_start = per(rss_loaded.0, rss_contacts.0, events);
    let exact = mismatches.is_empty();
    let load_after = load_average();

    println!(
        "load:            {contacts_s:>10.2} s contacts, {events_s:.2} s events through `sift import`; 30 segments created in {segments_s:.2} s{}",
        if segments_kept {
            " (by that run: kept, same conditions)"
        } else {
            ""
        }
    );
    println!(
        "restart:         {:>10.2} s min, {:.2} s median of {RESTARTS} from a checkpoint ({} of them), {:.2} s full rebuild (spawn to first answer); membership {}",
        starts.first().copied().unwrap_or(0.0),
        starts.get(RESTARTS / 2).copied().unwrap_or(0.0),
        checkpoint["restarts_from_checkpoint"],
        checkpoint["full_rebuild_s"].as_f64().unwrap_or(0.0),
        if exact {
            "exact (30 sizes equal before and after every restart)"
        } else {
            "NOT exact"
        }
    );
    let mib = |b: u64| b as f64 / 1_048_576.0;
    println!(
        "rss:             {:>10.1} MiB loaded, {:.1} MiB contacts only, {:.1} MiB empty server ({} s after the first answer; at it: {:.1}, {:.1}, {:.1})",
        mib(rss_loaded.1),
        mib(rss_contacts.1),
        mib(rss_empty.1),
        SETTLE.as_secs(),
        mib(rss_loaded.0),
        mib(rss_contacts.0),
        mib(rss_empty.0),
    );
    let lowest = rss.iter().map(|r| r.1).min().unwrap_or_default();
    println!(
        "                 {:>10.1} MiB the least loaded restart ({:.1} B per event from it)",
        mib(lowest),
        per(lowest, rss_contacts.1, events)
    );
    println!(
        "per contact:     {per_contact:>10.0} B  (contacts-only RSS - empty RSS) / contacts ({per_contact_at_start:.0} B at the first answer)"
    );
    println!(
        "per event:       {per_event:>10.1} B  (loaded RSS with 30 segments - contacts-only RSS) / stored events ({per_event_at_start:.1} B at the first answer)"
    );
    println!(
        "new segment:     {:>10.1} ms took_ms fastest, {:.1} ms first of 3, {:.0} ms wall fastest ({NEW_SEGMENT}; size {})",
        new_segment["took_ms"].as_f64().unwrap_or(f64::NAN),
        new_segment["first_took_ms"].as_f64().unwrap_or(f64::NAN),
        new_segment["wall_ms"].as_f64().unwrap_or(0.0),
        new_segment["size"]
    );
    print_duckdb(&duckdb, &new_segment);
    println!(
        "checkpoint:      {:>10.0} ms write at shutdown, {:.1} MiB; periodic under writes: {} written, longest stall {} ms, slowest write {:.1} ms over {} writes",
        checkpoint["shutdown"]["write_ms"].as_f64().unwrap_or(0.0),
        checkpoint["shutdown"]["bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0,
        checkpoint["periodic"].as_array().map_or(0, Vec::len),
        checkpoint["longest_stall_ms"],
        checkpoint["slowest_write_during_ms"]
            .as_f64()
            .unwrap_or(0.0),
        checkpoint["writes_during"],
    );
    println!("machine:         {cpus} CPUs, load average {load_before} before, {load_after} after");

    let figures = json!({
        "contacts": contacts,
        "events": events,
        "segments": before.len(),
        "history_days": HISTORY_DAYS,
        "load_s": {"contacts": contacts_s, "events": events_s, "segments": segments_s, "segments_kept": segments_kept},
        "restart_s": {"runs": starts, "min": starts.first(), "median": starts.get(RESTARTS / 2), "full_rebuild": checkpoint["full_rebuild_s"]},
        "membership_exact": exact,
        "mismatches": mismatches,
        "rss_bytes": {"empty": rss_empty.1, "contacts_only": rss_contacts.1, "loaded": rss_loaded.1},
        "rss_bytes_loaded_runs": rss.iter().map(|r| r.1).collect::<Vec<_>>(),
        "rss_bytes_at_first_answer": {"empty": rss_empty.0, "contacts_only": rss_contacts.0, "loaded": rss_loaded.0},
        "bytes_per_contact": per_contact,
        "bytes_per_event": per_event,
        "bytes_per_contact_at_first_answer": per_contact_at_start,
        "bytes_per_event_at_first_answer": per_event_at_start,
        "derivation": format!("per contact: (RSS with contacts only - RSS of an empty server) / contacts; per event: (RSS with events and 30 segments - RSS with contacts only) / stored events; RSS is the server's VmRSS {} s after its first answer with no request meanwhile (loaded: the largest of the {RESTARTS} restarts), and also at the first answer", SETTLE.as_secs()),
        "new_segment": new_segment,
        "duckdb": duckdb,
        "checkpoint": checkpoint,
        "machine": {"cpus": cpus, "load_average_before": load_before, "load_average_after": load_after},
    });
    if let Some(path) = json_file {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !exact {
        bail!("membership after a restart differs from before: {mismatches:?}");
    }
    Ok(())
}

/// DuckDB's fastest answer beside the segment's creation, and their ratio.
fn print_duckdb(duckdb: &Json, new_segment: &Json) {
    if duckdb.is_null() {
        println!(
            "duckdb:          {:>10} (pass --duckdb PYTHON; scripts/bench-tools.sh)",
            "skipped"
        );
        return;
    }
    let fastest = duckdb["query_ms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_f64)
        .fold(f64::INFINITY, f64::min);
    let first = duckdb["query_ms"][0].as_f64().unwrap_or(f64::NAN);
    let sift = new_segment["took_ms"].as_f64().unwrap_or(f64::NAN);
    let same = duckdb["size"] == new_segment["size"];
    println!(
        "duckdb:          {fastest:>10.1} ms fastest, {first:.1} ms first of {} (DuckDB {}, {} events); sift/duckdb {:.2}x; sizes {}",
        duckdb["query_ms"].as_array().map_or(0, Vec::len),
        duckdb["duckdb_version"].as_str().unwrap_or("?"),
        duckdb["events"],
        sift / fastest,
        if same { "equal" } else { "DIFFER" }
    );
}
