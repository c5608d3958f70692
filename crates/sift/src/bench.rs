//! `sift bench`: the figures the foundation issue asks for, on generated data.
//! In-process: load rate, the spec's example segment over N contacts, S
//! random segments, single-contact updates per second with S segments live,
//! memory per contact. Over HTTP (a server in this process on a temporary
//! data directory, durable writes): single and batched writes per second with
//! concurrent clients, and p50/p99 latency of a write to visible membership.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sift_engine::{SegmentInput, SegmentKind, Workspace};

use crate::generate::{EXAMPLE, Generator};

pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

const NOW: i64 = 1_790_000_000_000;

pub fn run(n_contacts: u64, n_segments: u64, http_contacts: u64) -> anyhow::Result<ExitCode> {
    println!(
        "sift bench: {n_contacts} contacts, {n_segments} segments, {} threads",
        rayon_threads()
    );
    let rss_before = rss_bytes();
    let mut ws = Workspace::new();
    let mut generator = Generator::new(7);
    // Only the engine's work is timed, not generating the data.
    let mut load = Duration::ZERO;
    let mut next = 0;
    while next < n_contacts {
        let end = (next + 10_000).min(n_contacts);
        let batch: Vec<_> = (next..end).map(|i| generator.contact(i)).collect();
        let started = Instant::now();
        ws.upsert_contacts(&batch, NOW)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        load += started.elapsed();
        next = end;
    }
    let rss_loaded = rss_bytes();
    println!(
        "load:            {:>10.0} contacts/s ({:.2}s)",
        n_contacts as f64 / load.as_secs_f64(),
        load.as_secs_f64()
    );
    println!(
        "memory:          {:>10.0} bytes/contact resident (RSS {} MiB)",
        rss_loaded.saturating_sub(rss_before) as f64 / n_contacts.max(1) as f64,
        rss_loaded / (1 << 20)
    );

    let example =
        sift_lang::parse_text(EXAMPLE, &ws.schema()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..20 {
        let t = Instant::now();
        size = ws
            .preview(&example, NOW)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .len();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "example segment: {:>10.2} ms median, {:.2} ms min over {n_contacts} contacts ({size} members)",
        percentile(&times, 0.5).as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    ws.create_segment(
        SegmentInput {
            id: "example".into(),
            name: "Example".into(),
            description: String::new(),
            kind: SegmentKind::Dynamic,
            condition: Some(example),
            test: false,
        },
        NOW,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "example create:  {:>10.2} ms (engine, with change records)",
        t.elapsed().as_secs_f64() * 1000.0
    );

    let t = Instant::now();
    for i in 0..n_segments {
        let text = generator.segment_condition();
        let cond = sift_lang::parse_text(&text, &ws.schema())
            .map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
        ws.create_segment(
            SegmentInput {
                id: format!("s{i}"),
                name: format!("Segment {i}"),
                description: String::new(),
                kind: SegmentKind::Dynamic,
                condition: Some(cond),
                test: false,
            },
            NOW,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let created = t.elapsed();
    println!(
        "segments:        {:>10.2} ms per create on average ({n_segments} created in {:.2}s)",
        created.as_secs_f64() * 1000.0 / n_segments.max(1) as f64,
        created.as_secs_f64()
    );
    println!(
        "memory:          {:>10} MiB RSS with segments",
        rss_bytes() / (1 << 20)
    );

    let n_updates = 200_000.min(n_contacts.max(1) * 4);
    let updates: Vec<_> = (0..n_updates)
        .map(|i| generator.update((i * 7_919) % n_contacts.max(1)))
        .collect();
    let t = Instant::now();
    let mut changes = 0;
    for update in &updates {
        changes += ws
            .upsert_contacts(std::slice::from_ref(update), NOW + 1)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .membership_changes;
    }
    let took = t.elapsed();
    println!(
        "updates (mixed): {:>10.0} updates/s in-process with {} segments live ({changes} membership changes)",
        n_updates as f64 / took.as_secs_f64(),
        ws.segments().len()
    );
    // Most writes in a shop touch properties few segments test (names, phone).
    let renames: Vec<_> = (0..n_updates)
        .map(|i| sift_engine::ContactInput {
            id: format!("c{}", (i * 7_919) % n_contacts.max(1)),
            properties: vec![(
                "phone".to_string(),
                sift_engine::RawValue::String(format!("+34 600 {i:06}")),
            )],
            anonymous: None,
        })
        .collect();
    let t = Instant::now();
    let mut rename_changes = 0;
    for update in &renames {
        rename_changes += ws
            .upsert_contacts(std::slice::from_ref(update), NOW + 2)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .membership_changes;
    }
    println!(
        "updates (phone): {:>10.0} updates/s in-process, a field only the demo's \"No phone\"-style segments test ({rename_changes} changes)",
        n_updates as f64 / t.elapsed().as_secs_f64()
    );
    drop(ws);

    if http_contacts > 0 {
        http(http_contacts, n_segments)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads `n_contacts` generated contacts (10,000 per durable write) and
/// `n_segments` segments, segment `i` with condition `condition(generator, i)`.
pub async fn fill_server(
    handle: &sift_server::state::WorkspaceHandle,
    generator: &mut Generator,
    n_contacts: u64,
    n_segments: u64,
    condition: impl Fn(&mut Generator, u64) -> String,
) -> anyhow::Result<()> {
    let mut next = 0;
    while next < n_contacts {
        let end = (next + 10_000).min(n_contacts);
        let batch: Vec<_> = (next..end).map(|i| generator.contact(i)).collect();
        handle
            .write(|ws, now| Ok((ws.upsert_contacts(&batch, now)?, ())))
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        next = end;
    }
    for i in 0..n_segments {
        let text = condition(generator, i);
        create_segment(handle, &format!("s{i}"), &format!("Segment {i}"), &text).await?;
    }
    Ok(())
}

/// Creates a dynamic segment through the workspace's write path.
pub async fn create_segment(
    handle: &sift_server::state::WorkspaceHandle,
    id: &str,
    name: &str,
    text: &str,
) -> anyhow::Result<()> {
    handle
        .write(|ws, now| {
            let cond = sift_lang::parse_text(text, &ws.schema())?;
            let input = SegmentInput {
                id: id.into(),
                name: name.into(),
                description: String::new(),
                kind: SegmentKind::Dynamic,
                condition: Some(cond),
                test: false,
            };
            Ok((ws.create_segment(input, now)?, ()))
        })
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(())
}

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Sends one JSON request with the workspace key, reads the whole answer and
/// fails unless it is a 2xx; returns the time from sending to the last byte.
pub async fn timed_request(
    client: &HttpClient,
    method: hyper::Method,
    url: String,
    key: &str,
    body: String,
) -> anyhow::Result<Duration> {
    let request = hyper::Request::builder()
        .method(method)
        .uri(&url)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let sent = Instant::now();
    let response = client.request(request).await?;
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    let took = sent.elapsed();
    anyhow::ensure!(
        status.is_success(),
        "{url} answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    Ok(took)
}

/// `concurrency` clients each PUT `per_client` of `bodies` (`(contact id,
/// body)`, taken in turn) to `base_url`, one after another; answers every
/// latency, sorted.
pub async fn put_clients(
    client: Arc<HttpClient>,
    base_url: String,
    key: String,
    bodies: Arc<Vec<(String, String)>>,
    concurrency: usize,
    per_client: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let (client, bodies, base_url, key) = (
            client.clone(),
            bodies.clone(),
            base_url.clone(),
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for j in 0..per_client {
                let (id, body) = &bodies[(c * per_client + j) % bodies.len()];
                let url = format!("{base_url}/v1/contacts/{id}");
                latencies.push(
                    timed_request(&client, hyper::Method::PUT, url, &key, body.clone()).await?,
                );
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort();
    Ok(latencies)
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn http(n_contacts: u64, n_segments: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        let state = sift_server::AppState::open(sift_server::Config::new(dir.path(), None))?;
        let (ws_id, key) = state.create_workspace("bench")?;
        let handle = state.workspace(&ws_id).context("bench workspace")?;
        let mut generator = Generator::new(11);
        fill_server(&handle, &mut generator, n_contacts, n_segments, |g, _| {
            g.segment_condition()
        })
        .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server_state = state.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(sift_server::serve(server_state, listener, async {
            let _ = stop_rx.await;
        }));
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let client = Arc::new(client);
        let key = Arc::new(key);
        // Each run below updates contacts of its own (wrapping around only
        // when there are too few): a PUT repeating values an earlier run set
        // would change no membership and cost less.
        let per_run = 64 * 400;
        let fresh = |run: usize, bodies: &Arc<Vec<(String, String)>>| -> Arc<Vec<(String, String)>> {
            Arc::new(
                (0..per_run)
                    .map(|i| bodies[(run * per_run + i) % bodies.len()].clone())
                    .collect(),
            )
        };
        let bodies = Arc::new(
            (0..n_contacts.min(3 * per_run as u64 + 40_000))
                .map(|i| {
                    let u = generator.update(i);
                    let props: serde_json::Map<String, serde_json::Value> = u
                        .properties
                        .iter()
                        .map(|(k, v)| {
                            let json = match v {
                                sift_engine::RawValue::Bool(b) => serde_json::json!(b),
                                sift_engine::RawValue::Number(n) => serde_json::json!(n),
                                sift_engine::RawValue::String(s) => serde_json::json!(s),
                                sift_engine::RawValue::StringList(l) => serde_json::json!(l),
                                _ => serde_json::Value::Null,
                            };
                            (k.clone(), json)
                        })
                        .collect();
                    (u.id, serde_json::json!({"properties": props}).to_string())
                })
                .collect::<Vec<_>>(),
        );
        // The spec's first example created through the API: evaluation,
        // durable commit of the definition and of every entry, answer.
        let mut create_times = Vec::new();
        for attempt in 0..5 {
            let body = serde_json::json!({"name": format!("Example {attempt}"), "kind": "dynamic", "condition": EXAMPLE}).to_string();
            let url = format!("http://{addr}/v1/segments");
            create_times.push(timed_request(&client, hyper::Method::POST, url, &key, body).await?);
        }
        create_times.sort();
        println!(
            "http create:     {:>10.2} ms median for the example segment over {n_contacts} contacts (min {:.2} ms)",
            percentile(&create_times, 0.5).as_secs_f64() * 1000.0,
            create_times[0].as_secs_f64() * 1000.0
        );
        // A new number each run (`prefix`), so that every PUT stores a value.
        let phones = |prefix: u32| -> Vec<(String, String)> {
            (0..n_contacts.min(per_run as u64))
                .map(|i| (format!("c{i}"), serde_json::json!({"properties": {"phone": format!("+34 {prefix} {i:06}")}}).to_string()))
                .collect()
        };
        let concurrency = 64usize;
        for (label, bodies) in [("mixed", bodies.clone()), ("phone", Arc::new(phones(611)))] {
            let per_client = 400;
            let cpu_before = crate::bench_cluster::process_cpu_seconds(std::process::id());
            let t = Instant::now();
            let latencies = put_clients(
                client.clone(),
                format!("http://{addr}"),
                key.to_string(),
                bodies,
                concurrency,
                per_client,
            )
            .await?;
            let took = t.elapsed();
            let cpu = crate::bench_cluster::process_cpu_seconds(std::process::id()) - cpu_before;
            println!(
                "http single {label}: {:>8.0} durable writes/s with {concurrency} clients; write-to-visible p50 {:.2} ms, p99 {:.2} ms; CPU per write (server and generator) {:.0} us",
                latencies.len() as f64 / took.as_secs_f64(),
                percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
                percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
                cpu * 1e6 / latencies.len() as f64
            );
        }
        // The same PUTs from a generator in a process of its own, with the
        // CPU each used: pinned to the other core when it can be, then (mixed)
        // with both processes free to use both cores.
        for (label, run, pin) in [("mixed", 1, true), ("mixed", 2, false), ("phone", 3, true)] {
            let bodies = match label {
                "phone" => phones(622),
                _ => fresh(run, &bodies).to_vec(),
            };
            let key = key.to_string();
            let run = tokio::task::spawn_blocking(move || {
                crate::bench_load::run(addr, &key, &bodies, concurrency, 400, pin)
            })
            .await??;
            let writes = (concurrency * 400) as f64;
            println!(
                "http single {label}, generator in its own process{}: {:>8.0} durable writes/s; p50 {:.2} ms, p99 {:.2} ms; CPU per write: server {:.0} us, generator {:.0} us",
                if run.pinned {
                    " (server on core 0, generator on core 1)"
                } else {
                    " (both unpinned, sharing 2 cores)"
                },
                run.writes_per_s,
                run.p50_ms,
                run.p99_ms,
                run.server_cpu_s * 1e6 / writes,
                run.generator_cpu_s * 1e6 / writes,
            );
        }
        // Batched: 1,000 contacts per request, 4 clients.
        let t = Instant::now();
        let mut tasks = Vec::new();
        let batches = 40usize;
        for c in 0..4usize {
            let (client, key, bodies) = (client.clone(), key.clone(), bodies.clone());
            tasks.push(tokio::spawn(async move {
                for b in 0..batches / 4 {
                    let items: Vec<serde_json::Value> = (0..1000)
                        .map(|j| {
                            let (id, body) = &bodies[(3 * per_run + (c * 10 + b) * 1000 + j) % bodies.len()];
                            let mut v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                            v["id"] = serde_json::json!(id);
                            v
                        })
                        .collect();
                    let body = serde_json::json!({"contacts": items}).to_string();
                    let url = format!("http://{addr}/v1/contacts:batch");
                    timed_request(&client, hyper::Method::POST, url, &key, body).await?;
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        println!(
            "http batched:    {:>10.0} durable contact writes/s (1,000 per request, 4 clients)",
            (batches * 1000) as f64 / t.elapsed().as_secs_f64()
        );
        for line in state.metrics.render().lines() {
            if line.starts_with("sift_store_commit") && !line.contains("quantile") {
                println!("  {line}");
            }
        }
        let _ = stop_tx.send(());
        let _ = server.await;
        Ok::<_, anyhow::Error>(())
    })
}
