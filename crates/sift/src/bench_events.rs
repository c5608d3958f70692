//! `sift bench --suite events`: the behavioural figures. In-process: events
//! ingested per second with 1,000 segments live (a third behavioural or
//! time-relative), a million windows expiring at one instant, memory per
//! contact with 50 retained events. Over HTTP (durable): batched ingest and
//! event-to-membership latency at a paced 10,000 events/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sift_engine::{EventInput, SegmentInput, SegmentKind, Workspace};

use crate::bench::{HttpClient, percentile, rss_bytes, timed_request};
use crate::generate::Generator;

const NOW: i64 = 1_790_000_000_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

fn fail(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Segment `i` of the bench: every third one behavioural or time-relative.
pub(crate) fn condition(generator: &mut Generator, i: u64) -> String {
    if i.is_multiple_of(3) {
        generator.behaviour_condition()
    } else {
        generator.segment_condition()
    }
}

fn load(
    ws: &mut Workspace,
    generator: &mut Generator,
    n: u64,
    segments: u64,
) -> anyhow::Result<()> {
    let mut next = 0;
    while next < n {
        let end = (next + 10_000).min(n);
        let batch: Vec<_> = (next..end).map(|i| generator.contact(i)).collect();
        ws.upsert_contacts(&batch, NOW).map_err(fail)?;
        next = end;
    }
    for i in 0..segments {
        let text = condition(generator, i);
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
        .map_err(fail)?;
    }
    Ok(())
}

pub fn run(n_contacts: u64, n_segments: u64, http_contacts: u64) -> anyhow::Result<()> {
    println!(
        "events: {n_contacts} contacts, {n_segments} segments (every third behavioural or time-relative)"
    );
    let mut generator = Generator::new(21);
    // Memory with 50 retained events per contact.
    let m = (n_contacts / 10).max(1_000);
    let before = rss_bytes();
    let mut ws = Workspace::new();
    load(&mut ws, &mut generator, m, n_segments)?;
    let with_contacts = rss_bytes();
    for b in 0..m * 50 / 10_000 {
        let batch: Vec<EventInput> = (0..10_000)
            .map(|j| generator.event((b * 10_000 + j) % m, NOW, 365))
            .collect();
        ws.ingest(batch, NOW).map_err(fail)?;
    }
    let with_events = rss_bytes();
    println!(
        "memory:          {:>10.0} bytes/contact with {} events each ({} contacts, {n_segments} segments; events alone {:.0} bytes/contact, {:.0} bytes/event)",
        with_events.saturating_sub(before) as f64 / m as f64,
        ws.event_count() / m,
        m,
        with_events.saturating_sub(with_contacts) as f64 / m as f64,
        with_events.saturating_sub(with_contacts) as f64 / ws.event_count().max(1) as f64,
    );
    drop(ws);

    let mut ws = Workspace::new();
    let t = Instant::now();
    load(&mut ws, &mut generator, n_contacts, n_segments)?;
    println!(
        "setup:           {:>10.2} s (contacts and segments)",
        t.elapsed().as_secs_f64()
    );

    // History: 5 events per contact over the last 90 days, 1,000 per call.
    // Every first event of a type flips many segments (`not performed`,
    // `last_seen_at in last`...), so this is the costly, cold case.
    let n_events = n_contacts * 5;
    let t = Instant::now();
    let mut changes = 0;
    let mut clock = NOW;
    for b in 0..n_events.div_ceil(1000) {
        let batch: Vec<EventInput> = (b * 1000..((b + 1) * 1000).min(n_events))
            .map(|i| generator.event((i * 7_919) % n_contacts.max(1), NOW, 90))
            .collect();
        clock += 1;
        changes += ws.ingest(batch, clock).map_err(fail)?.membership_changes;
    }
    let took = t.elapsed();
    println!(
        "ingest history:  {:>10.0} events/s in-process, batches of 1,000, 5 per contact over 90 days ({:.1} membership changes per event, {} timers queued)",
        n_events as f64 / took.as_secs_f64(),
        changes as f64 / n_events.max(1) as f64,
        ws.timers_pending()
    );
    // Steady state: new events as they happen, on contacts with a history.
    let steady = 1_000_000u64;
    let mut changes = 0;
    let t = Instant::now();
    for b in 0..steady / 1000 {
        clock += 1_000;
        let batch: Vec<EventInput> = (0..1000)
            .map(|j| {
                let mut e =
                    generator.event(((b * 1000 + j) * 104_729) % n_contacts.max(1), clock, 1);
                e.at = Some(clock);
                e
            })
            .collect();
        changes += ws.ingest(batch, clock).map_err(fail)?.membership_changes;
    }
    let took = t.elapsed();
    println!(
        "ingest steady:   {:>10.0} events/s in-process, batches of 1,000, events happening now ({:.2} membership changes per event)",
        steady as f64 / took.as_secs_f64(),
        changes as f64 / steady as f64
    );
    let t = Instant::now();
    let mut single_changes = 0;
    let singles = 100_000u64;
    for i in 0..singles {
        clock += 10;
        let mut event = generator.event((i * 15_485_863) % n_contacts.max(1), clock, 1);
        event.at = Some(clock);
        single_changes += ws
            .ingest(vec![event], clock)
            .map_err(fail)?
            .membership_changes;
    }
    println!(
        "ingest single:   {:>10.0} events/s in-process, one per call, happening now ({:.2} changes per event)",
        singles as f64 / t.elapsed().as_secs_f64(),
        single_changes as f64 / singles as f64
    );

    // A million windows expiring at once.
    let ping =
        sift_lang::parse_text("performed ping in last 1 days", &ws.schema()).map_err(fail)?;
    ws.create_segment(
        SegmentInput {
            id: "ping".into(),
            name: "Pinged".into(),
            description: String::new(),
            kind: SegmentKind::Dynamic,
            condition: Some(ping),
            test: false,
        },
        ws.clock(),
    )
    .map_err(fail)?;
    let base = ws.clock();
    let at = base - DAY_MS + 60_000;
    for chunk in (0..n_contacts).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<EventInput> = chunk
            .iter()
            .map(|n| EventInput {
                contact_id: format!("c{n}"),
                event_type: "ping".into(),
                at: Some(at),
                properties_json: "{}".into(),
                ..EventInput::default()
            })
            .collect();
        ws.ingest(batch, base).map_err(fail)?;
    }
    let size = ws.segment("ping").map_or(0, |s| s.members.len());
    let due = at + DAY_MS + 1;
    let t = Instant::now();
    let write = ws.advance(due);
    let took = t.elapsed();
    let exits: u64 = write
        .change_batches()
        .filter(|b| b.segment_id == "ping")
        .map(|b| b.len())
        .sum();
    println!(
        "timers:          {:>10.0} timers/s: {exits} of {size} windows expired at one instant, applied in {:.2} s ({} changes in all)",
        exits as f64 / took.as_secs_f64(),
        took.as_secs_f64(),
        write.membership_changes
    );
    drop(ws);

    if http_contacts > 0 {
        http(http_contacts, n_segments)?;
    }
    crate::bench_burst::run(n_contacts, n_segments)
}

pub(crate) fn event_json(event: &EventInput) -> serde_json::Value {
    let properties: serde_json::Value =
        serde_json::from_str(&event.properties_json).unwrap_or_default();
    serde_json::json!({
        "contact_id": event.contact_id,
        "type": event.event_type,
        "properties": properties,
    })
}

fn http(n_contacts: u64, n_segments: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        let state = sift_server::AppState::open(sift_server::Config::new(dir.path(), None))?;
        let (ws_id, key) = state.create_workspace("bench-events")?;
        let handle = state.workspace(&ws_id).context("bench workspace")?;
        let mut generator = Generator::new(23);
        crate::bench::fill_server(&handle, &mut generator, n_contacts, n_segments, condition)
            .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(sift_server::serve(state.clone(), listener, async {
            let _ = stop_rx.await;
        }));
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let client = Arc::new(client);
        let key = Arc::new(key);
        let now = sift_now();

        // Batched: 1,000 events per request, 4 clients.
        let clients = 4usize;
        let per_client = 25usize;
        let bodies: Vec<Vec<String>> = (0..clients)
            .map(|_| {
                (0..per_client)
                    .map(|_| {
                        let events: Vec<serde_json::Value> = (0..1000)
                            .map(|_| {
                                let n = generator.next_u64() % n_contacts.max(1);
                                event_json(&generator.event(n, now, 30))
                            })
                            .collect();
                        serde_json::json!({ "events": events }).to_string()
                    })
                    .collect()
            })
            .collect();
        let t = Instant::now();
        let mut tasks = Vec::new();
        for bodies in bodies {
            let (client, key) = (client.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                for body in bodies {
                    let url = format!("http://{addr}/v1/events");
                    timed_request(&client, hyper::Method::POST, url, &key, body).await?;
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let total = clients * per_client * 1000;
        println!(
            "http batched:    {:>10.0} durable events/s (1,000 per request, {clients} clients, {n_contacts} contacts, {n_segments} segments)",
            total as f64 / t.elapsed().as_secs_f64()
        );

        // Paced at 10,000 events/s: latency from send to the 2xx, which
        // comes after the membership the events cause is visible and durable.
        for (clients, batch) in [(100usize, 1usize), (10, 50)] {
            let per_client = 20_000 / (clients * batch);
            let interval = Duration::from_micros(1_000_000 * (clients * batch) as u64 / 10_000);
            let bodies: Vec<Vec<String>> = (0..clients)
                .map(|_| {
                    (0..per_client)
                        .map(|_| {
                            let events: Vec<serde_json::Value> = (0..batch)
                                .map(|_| {
                                    let n = generator.next_u64() % n_contacts.max(1);
                                    event_json(&generator.event(n, now, 30))
                                })
                                .collect();
                            match events.as_slice() {
                                [one] => one.to_string(),
                                _ => serde_json::json!({ "events": events }).to_string(),
                            }
                        })
                        .collect()
                })
                .collect();
            let (latencies, took) = paced(&client, &key, addr, bodies, interval).await?;
            println!(
                "http paced:      {:>10.0} events/s achieved of 10,000 offered ({batch} per request, {clients} clients); event-to-membership p50 {:.2} ms, p99 {:.2} ms",
                (latencies.len() * batch) as f64 / took.as_secs_f64(),
                percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
                percentile(&latencies, 0.99).as_secs_f64() * 1000.0
            );
        }
        for line in state.metrics.render().lines() {
            if line.starts_with("sift_store_commit")
                && (!line.contains("quantile") || line.contains("0.99"))
            {
                println!("  {line}");
            }
        }
        let _ = stop_tx.send(());
        let _ = server.await;
        Ok::<_, anyhow::Error>(())
    })
}

/// Sends each client's bodies one at a time at `interval`; returns every
/// request's latency and the wall time.
pub(crate) async fn paced(
    client: &Arc<HttpClient>,
    key: &Arc<String>,
    addr: std::net::SocketAddr,
    bodies: Vec<Vec<String>>,
    interval: Duration,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let clients = bodies.len().max(1) as u32;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (c, bodies) in bodies.into_iter().enumerate() {
        let (client, key) = (client.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let start = tokio::time::Instant::now() + interval * c as u32 / clients;
            let mut ticker = tokio::time::interval_at(start, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut latencies = Vec::with_capacity(bodies.len());
            for body in bodies {
                ticker.tick().await;
                let url = format!("http://{addr}/v1/events");
                latencies.push(timed_request(&client, hyper::Method::POST, url, &key, body).await?);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let took = t.elapsed();
    latencies.sort();
    Ok((latencies, took))
}

pub(crate) fn sift_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
