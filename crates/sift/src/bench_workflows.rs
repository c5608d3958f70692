//! `sift bench --suite workflows`: workflow actions applied per second with
//! 100 active workflows. In-process: a burst of events, then the engine
//! running every trigger it queued. Over HTTP (durable): events paced at
//! 10,000/s while the server's runner applies the workflows they trigger,
//! and how far behind it is when the events stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sift_engine::{
    Action, EventInput, SegmentInput, SegmentKind, Trigger, WorkflowInput, WorkflowStatus,
    Workspace,
};

use crate::bench::{HttpClient, percentile};
use crate::bench_events::{condition, event_json, paced, sift_now};
use crate::generate::Generator;

const NOW: i64 = 1_790_000_000_000;
const WORKFLOWS: u64 = 100;

fn fail(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The event filters of event-triggered workflows: (type, `where`).
const EVENT_TRIGGERS: [(&str, &str); 8] = [
    ("purchase", "performed purchase where amount > 100"),
    ("purchase", "performed purchase where category = \"shoes\""),
    ("product_view", "performed product_view where price >= 250"),
    (
        "product_view",
        "performed product_view where category = \"bags\"",
    ),
    ("page_visit", "performed page_visit where path = \"/shoes\""),
    (
        "email_open",
        "performed email_open where campaign = \"spring-1\"",
    ),
    ("purchase", "performed purchase"),
    (
        "email_open",
        "performed email_open where campaign = \"spring-2\"",
    ),
];

/// Static segments workflows fill, and workflow `i` of the bench: a third
/// triggered by events (score, property), a third by entering a segment
/// (add to a static segment, score), a third by leaving one (remove, score
/// that expires).
fn workflows(
    ws: &Workspace,
    segments: u64,
) -> anyhow::Result<(Vec<SegmentInput>, Vec<WorkflowInput>)> {
    let targets: Vec<SegmentInput> = (0..10)
        .map(|k| SegmentInput {
            id: format!("target{k}"),
            name: format!("Workflow target {k}"),
            description: String::new(),
            kind: SegmentKind::Static,
            condition: None,
            test: false,
        })
        .collect();
    let mut out = Vec::new();
    for i in 0..WORKFLOWS {
        let target = format!("target{}", i % 10);
        let segment = format!("s{}", (i * 7) % segments.max(1));
        let (trigger, actions) = match i % 3 {
            0 => {
                let (event_type, text) = EVENT_TRIGGERS[(i / 3) as usize % EVENT_TRIGGERS.len()];
                let filter = match sift_lang::parse_text(text, &ws.schema()).map_err(fail)? {
                    sift_lang::Condition::Event { filter, .. } => filter.map(|f| *f),
                    _ => None,
                };
                (
                    Trigger::Event {
                        event_type: event_type.into(),
                        filter,
                    },
                    vec![
                        Action::AddScore {
                            points: 1.0,
                            expires_after: None,
                        },
                        Action::SetProperty {
                            field: "last_workflow".into(),
                            value: sift_engine::RawValue::String(format!("w{i}")),
                        },
                    ],
                )
            }
            1 => (
                Trigger::SegmentEntered(segment),
                vec![
                    Action::AddToSegment(target),
                    Action::AddScore {
                        points: 5.0,
                        expires_after: None,
                    },
                ],
            ),
            _ => (
                Trigger::SegmentExited(segment),
                vec![
                    Action::RemoveFromSegment(target),
                    Action::AddScore {
                        points: -2.0,
                        expires_after: Some(sift_lang::Duration {
                            amount: 7,
                            unit: sift_lang::DurationUnit::Days,
                        }),
                    },
                ],
            ),
        };
        out.push(WorkflowInput {
            id: format!("w{i}"),
            name: format!("Workflow {i}"),
            status: WorkflowStatus::Active,
            test_segment: None,
            trigger,
            filter: None,
            actions,
        });
    }
    Ok((targets, out))
}

pub fn run(n_contacts: u64, n_segments: u64, http_contacts: u64) -> anyhow::Result<()> {
    println!(
        "workflows: {WORKFLOWS} active workflows, {n_contacts} contacts, {n_segments} segments"
    );
    let mut generator = Generator::new(31);
    let mut ws = Workspace::new();
    let mut next = 0;
    while next < n_contacts {
        let end = (next + 10_000).min(n_contacts);
        let batch: Vec<_> = (next..end).map(|i| generator.contact(i)).collect();
        ws.upsert_contacts(&batch, NOW).map_err(fail)?;
        next = end;
    }
    for i in 0..n_segments {
        let text = condition(&mut generator, i);
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
    let (targets, inputs) = workflows(&ws, n_segments)?;
    for target in targets {
        ws.create_segment(target, NOW).map_err(fail)?;
    }
    for input in inputs {
        ws.create_workflow(input, NOW).map_err(fail)?;
    }
    // A burst of events happening now, then every trigger they queued.
    let n_events = 200_000u64;
    let mut clock = NOW;
    let t = Instant::now();
    let mut queued = 0;
    for b in 0..n_events / 1000 {
        clock += 100;
        let batch: Vec<EventInput> = (0..1000)
            .map(|j| {
                let mut e = generator.event(((b * 1000 + j) * 7_919) % n_contacts.max(1), clock, 1);
                e.at = Some(clock);
                e
            })
            .collect();
        queued += ws.ingest(batch, clock).map_err(fail)?.queued;
    }
    let ingest = t.elapsed();
    let t = Instant::now();
    let (mut runs, mut actions, mut changes) = (0, 0, 0);
    let mut writes = Vec::new();
    loop {
        clock += 1;
        let write = ws.run_workflows(clock, 512);
        if write.runs == 0 {
            break;
        }
        runs += write.runs;
        actions += write.actions;
        changes += write.membership_changes;
        writes.push(write.records);
    }
    let took = t.elapsed();
    // What storing those run writes costs, one commit (one fsync) each.
    let dir = tempfile::tempdir()?;
    let mut db = sift_store::WorkspaceDb::open(&dir.path().join("ws.db"))?;
    let stored = Instant::now();
    for records in &writes {
        db.commit(std::iter::once(records.as_slice()))?;
    }
    let stored = stored.elapsed();
    println!(
        "engine:          {:>10.0} actions/s, {:.0} runs/s in-process ({runs} runs of {queued} triggers from {n_events} events, {actions} actions, {changes} membership changes; the events took {:.2} s to ingest)",
        actions as f64 / took.as_secs_f64(),
        runs as f64 / took.as_secs_f64(),
        ingest.as_secs_f64()
    );
    println!(
        "store:           {:>10.0} actions/s committed to SQLite ({} run writes of up to 512 runs, {:.2} s)",
        actions as f64 / stored.as_secs_f64(),
        writes.len(),
        stored.as_secs_f64()
    );
    drop(ws);
    if http_contacts > 0 {
        http(http_contacts, n_segments)?;
    }
    Ok(())
}

/// The value of a counter in the Prometheus text.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn http(n_contacts: u64, n_segments: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        // The receiver is local: private destinations are allowed.
        let mut config = sift_server::Config::new(dir.path(), None);
        config.allow_private_destinations = true;
        let state = sift_server::AppState::open(config)?;
        let (ws_id, key) = state.create_workspace("bench-workflows")?;
        let handle = state.workspace(&ws_id).context("bench workspace")?;
        let mut generator = Generator::new(37);
        crate::bench::fill_server(&handle, &mut generator, n_contacts, n_segments, condition)
            .await?;
        let (targets, inputs) = handle
            .read(|ws| workflows(ws, n_segments))??;
        for target in targets {
            handle
                .write(|ws, now| Ok((ws.create_segment(target, now)?, ())))
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
        for input in inputs {
            handle
                .write(|ws, now| Ok((ws.create_workflow(input, now)?, ())))
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
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
        let before = state.metrics.render();
        let (actions_before, runs_before) = (
            counter(&before, "sift_workflow_actions_total"),
            counter(&before, "sift_workflow_runs_total"),
        );
        // 10,000 events/s for 10 s: 20 clients, 50 events per request.
        let (clients, batch) = (20usize, 50usize);
        let per_client = 100_000 / (clients * batch);
        let interval = Duration::from_micros(1_000_000 * (clients * batch) as u64 / 10_000);
        let bodies: Vec<Vec<String>> = (0..clients)
            .map(|_| {
                (0..per_client)
                    .map(|_| {
                        let events: Vec<serde_json::Value> = (0..batch)
                            .map(|_| {
                                let n = generator.next_u64() % n_contacts.max(1);
                                let mut event = generator.event(n, now, 1);
                                event.at = None;
                                event_json(&event)
                            })
                            .collect();
                        serde_json::json!({ "events": events }).to_string()
                    })
                    .collect()
            })
            .collect();
        let t = Instant::now();
        let (latencies, took) = paced(&client, &key, addr, bodies, interval).await?;
        let during = state.metrics.render();
        let actions_during = counter(&during, "sift_workflow_actions_total") - actions_before;
        let runs_during = counter(&during, "sift_workflow_runs_total") - runs_before;
        let backlog = handle.read(|ws| ws.queued_runs())?;
        // Then until the runner has caught up.
        loop {
            let left = handle.read(|ws| ws.queued_runs())?;
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let drained = t.elapsed();
        let after = state.metrics.render();
        let actions = counter(&after, "sift_workflow_actions_total") - actions_before;
        let runs = counter(&after, "sift_workflow_runs_total") - runs_before;
        println!(
            "http paced:      {:>10.0} events/s achieved of 10,000 offered ({batch} per request, {clients} clients); p50 {:.2} ms, p99 {:.2} ms per request",
            (latencies.len() * batch) as f64 / took.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0
        );
        println!(
            "workflows:       {:>10.0} durable actions/s while ingesting ({runs_during:.0} runs, {actions_during:.0} actions in {:.2} s; {backlog} triggers queued when the events stopped)",
            actions_during / took.as_secs_f64(),
            took.as_secs_f64()
        );
        println!(
            "workflows:       {:>10.0} durable actions/s overall ({runs:.0} runs, {actions:.0} actions, caught up {:.2} s after the first event)",
            actions / drained.as_secs_f64(),
            drained.as_secs_f64()
        );
        // Capacity: 100,000 events as fast as 4 clients send them (1,000 per
        // request), then until the runner has caught up.
        let bodies: Vec<Vec<String>> = (0..4)
            .map(|_| {
                (0..25)
                    .map(|_| {
                        let events: Vec<serde_json::Value> = (0..1000)
                            .map(|_| {
                                let n = generator.next_u64() % n_contacts.max(1);
                                let mut event = generator.event(n, now, 1);
                                event.at = None;
                                event_json(&event)
                            })
                            .collect();
                        serde_json::json!({ "events": events }).to_string()
                    })
                    .collect()
            })
            .collect();
        let start = state.metrics.render();
        let actions_start = counter(&start, "sift_workflow_actions_total");
        let t = Instant::now();
        let (_, took) = paced(&client, &key, addr, bodies, Duration::from_micros(1)).await?;
        let backlog = handle.read(|ws| ws.queued_runs())?;
        loop {
            let left = handle.read(|ws| ws.queued_runs())?;
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let drained = t.elapsed();
        let actions = counter(&state.metrics.render(), "sift_workflow_actions_total") - actions_start;
        println!(
            "workflows:       {:>10.0} durable actions/s at capacity (100,000 events sent in {:.2} s, {backlog} triggers queued then; {actions:.0} actions done {:.2} s after the first)",
            actions / drained.as_secs_f64(),
            took.as_secs_f64(),
            drained.as_secs_f64()
        );
        let _ = stop_tx.send(());
        let _ = server.await;
        Ok::<_, anyhow::Error>(())
    })
}
