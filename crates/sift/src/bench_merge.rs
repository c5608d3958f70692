//! `sift bench --suite merge`: identify latency with 1,000 segments. A
//! workspace holds N known contacts and as many anonymous visitors (cookie
//! ids, four page visits or product views each), segments of mixed kinds
//! (field, behavioural and time-relative, `anonymous`, static ones holding
//! visitors); then visitors are identified into random known contacts one
//! at a time. In-process through the engine, and over HTTP, where each
//! identify is answered after its durable commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sift_engine::{SegmentInput, SegmentKind, Workspace, Write};

use crate::bench::{HttpClient, percentile, timed_request};
use crate::bench_events::{condition, sift_now};
use crate::generate::{Generator, anonymous_id};

const NOW: i64 = 1_790_000_000_000;
const MERGES: u64 = 2_000;
const HTTP_MERGES: u64 = 1_000;

fn fail(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Segment `i` of the bench: every 20th static (holding some visitors),
/// every 50th `anonymous = true`, the rest drawn like the demo's.
fn segment(ws: &Workspace, generator: &mut Generator, i: u64) -> anyhow::Result<SegmentInput> {
    let (kind, condition) = if i % 20 == 19 {
        (SegmentKind::Static, None)
    } else {
        let text = if i % 50 == 7 {
            "anonymous = true".to_string()
        } else {
            condition(generator, i)
        };
        let cond = sift_lang::parse_text(&text, &ws.schema())
            .map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
        (SegmentKind::Dynamic, Some(cond))
    };
    Ok(SegmentInput {
        id: format!("s{i}"),
        name: format!("Segment {i}"),
        description: String::new(),
        kind,
        condition,
        test: false,
    })
}

/// Applies one write-producing step to `ws`: in-process, or through the
/// server's durable write path.
trait Target {
    async fn apply(
        &mut self,
        f: impl FnOnce(&mut Workspace, i64) -> Result<Write, sift_engine::Error>,
    ) -> anyhow::Result<()>;
}

struct Engine(Workspace);

impl Target for Engine {
    async fn apply(
        &mut self,
        f: impl FnOnce(&mut Workspace, i64) -> Result<Write, sift_engine::Error>,
    ) -> anyhow::Result<()> {
        f(&mut self.0, NOW).map_err(fail)?;
        Ok(())
    }
}

struct Server(Arc<sift_server::state::WorkspaceHandle>);

impl Target for Server {
    async fn apply(
        &mut self,
        f: impl FnOnce(&mut Workspace, i64) -> Result<Write, sift_engine::Error>,
    ) -> anyhow::Result<()> {
        self.0
            .write(|ws, now| Ok((f(ws, now)?, ())))
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        Ok(())
    }
}

/// Known contacts, visitors with events, 1,000 segments of mixed kinds.
async fn load(
    target: &mut impl Target,
    generator: &mut Generator,
    n: u64,
    n_segments: u64,
    now: i64,
) -> anyhow::Result<()> {
    let mut next = 0;
    while next < n {
        let end = (next + 10_000).min(n);
        let batch: Vec<_> = (next..end).map(|i| generator.contact(i)).collect();
        target
            .apply(|ws, now| ws.upsert_contacts(&batch, now))
            .await?;
        next = end;
    }
    let mut next = 0;
    while next < n {
        let end = (next + 2_500).min(n);
        let batch: Vec<_> = (next..end)
            .flat_map(|k| (0..4).map(move |_| k))
            .map(|k| generator.anonymous_event(k, now, 60))
            .collect();
        target.apply(|ws, now| ws.ingest(batch, now)).await?;
        let batch: Vec<_> = (next..end).map(|i| generator.event(i, now, 60)).collect();
        target.apply(|ws, now| ws.ingest(batch, now)).await?;
        next = end;
    }
    for i in 0..n_segments {
        let mut seed = Generator::new(1_000 + i);
        target
            .apply(|ws, now| {
                let input = segment(ws, &mut seed, i)
                    .map_err(|e| sift_engine::Error::Invalid(e.to_string()))?;
                ws.create_segment(input, now)
            })
            .await?;
        if i % 20 == 19 {
            let members: Vec<String> = (0..n)
                .filter(|k| k % 7 == i % 7)
                .map(anonymous_id)
                .collect();
            target
                .apply(|ws, now| ws.set_static_members(&format!("s{i}"), &members, true, now))
                .await?;
        }
    }
    Ok(())
}

fn report(label: &str, mut latencies: Vec<Duration>, took: Duration, what: &str) {
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    println!(
        "{label} {:>7.3} ms p50, {:>7.3} ms p99, {:>7.3} ms max ({} {what} in {:.2} s)",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
        latencies.len(),
        took.as_secs_f64()
    );
}

/// Visitor `k`'s pair: every visitor once, in a scrambled order, each into
/// a random known contact.
fn pairs(generator: &mut Generator, n: u64, count: u64) -> Vec<(String, String)> {
    (0..count.min(n))
        .map(|j| {
            let k = (j * 7_919) % n.max(1);
            (
                anonymous_id(k),
                format!("c{}", generator.next_u64() % n.max(1)),
            )
        })
        .collect()
}

pub fn run(n_contacts: u64, n_segments: u64, http_contacts: u64) -> anyhow::Result<()> {
    println!(
        "merge: {n_contacts} known contacts and {n_contacts} anonymous visitors (4 events each), {n_segments} segments (field, behavioural, anonymous, static)"
    );
    let rt = crate::run::runtime()?;
    rt.block_on(async {
        let mut generator = Generator::new(61);
        let mut engine = Engine(Workspace::new());
        let t = Instant::now();
        load(&mut engine, &mut generator, n_contacts, n_segments, NOW).await?;
        println!("merge load:      {:.1} s", t.elapsed().as_secs_f64());
        let mut latencies = Vec::new();
        let mut changes = 0;
        let t = Instant::now();
        for (anonymous, known) in pairs(&mut generator, n_contacts, MERGES) {
            let started = Instant::now();
            let write = engine.0.identify(&anonymous, &known, NOW).map_err(fail)?;
            latencies.push(started.elapsed());
            changes += write.membership_changes;
        }
        report("merge engine:   ", latencies, t.elapsed(), "identifies");
        println!("                 {changes} membership changes recorded");
        Ok::<_, anyhow::Error>(())
    })?;
    if http_contacts > 0 {
        http(http_contacts, n_segments)?;
    }
    Ok(())
}

fn http(n_contacts: u64, n_segments: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        let state = sift_server::AppState::open(sift_server::Config::new(dir.path(), None))?;
        let (ws_id, key) = state.create_workspace("bench-merge")?;
        let handle = state.workspace(&ws_id).context("bench workspace")?;
        let mut generator = Generator::new(62);
        let mut server = Server(handle);
        load(
            &mut server,
            &mut generator,
            n_contacts,
            n_segments,
            sift_now(),
        )
        .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(sift_server::serve(state.clone(), listener, async {
            let _ = stop_rx.await;
        }));
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        // The floor every durable write pays here: a one-property upsert.
        let mut floor = Vec::new();
        let t = Instant::now();
        for i in 0..HTTP_MERGES / 2 {
            let body = serde_json::json!({"properties": {"orders": i % 13}});
            let took = timed_request(
                &client,
                hyper::Method::PUT,
                format!("http://{addr}/v1/contacts/c{}", i % n_contacts.max(1)),
                &key,
                body.to_string(),
            )
            .await?;
            floor.push(took);
        }
        report("upsert http (baseline):", floor, t.elapsed(), "upserts");
        let mut latencies = Vec::new();
        let t = Instant::now();
        for (anonymous, known) in pairs(&mut generator, n_contacts, HTTP_MERGES) {
            let body = serde_json::json!({"anonymous_id": anonymous, "contact_id": known});
            let took = timed_request(
                &client,
                hyper::Method::POST,
                format!("http://{addr}/v1/identify"),
                &key,
                body.to_string(),
            )
            .await?;
            latencies.push(took);
        }
        report(
            &format!("merge http ({n_contacts}+{n_contacts}):"),
            latencies,
            t.elapsed(),
            "identifies",
        );
        let _ = stop_tx.send(());
        let _ = serving.await;
        Ok::<_, anyhow::Error>(())
    })
}
