//! A burst of timers through the server: one window closing for every
//! contact at one instant, fired by the workspace's timer task while
//! clients read. Reports how long the burst took to become visible and
//! durable, and the latency of the reads made meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sift_engine::EventInput;
use sift_server::clock::ManualClock;

use crate::bench::{HttpClient, percentile, timed_request};
use crate::bench_events::{DAY_MS, condition, sift_now};
use crate::generate::Generator;

/// Clients reading while the burst fires.
const READERS: usize = 4;

pub fn run(n_contacts: u64, n_segments: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        let clock = ManualClock::at(sift_now());
        let mut config = sift_server::Config::new(dir.path(), None);
        config.clock = clock.clone().into();
        let state = sift_server::AppState::open(config)?;
        let (ws_id, key) = state.create_workspace("bench-burst")?;
        let handle = state.workspace(&ws_id).context("bench workspace")?;
        let mut generator = Generator::new(29);
        let t = Instant::now();
        crate::bench::fill_server(&handle, &mut generator, n_contacts, n_segments, condition)
            .await?;
        crate::bench::create_segment(&handle, "ping", "Pinged", "performed ping in last 1 days")
            .await?;
        let pinged = clock.now_ms() - DAY_MS + 60_000;
        for start in (0..n_contacts).step_by(10_000) {
            let batch: Vec<EventInput> = (start..(start + 10_000).min(n_contacts))
                .map(|n| EventInput {
                    contact_id: format!("c{n}"),
                    event_type: "ping".into(),
                    at: Some(pinged),
                    properties_json: "{}".into(),
                    ..EventInput::default()
                })
                .collect();
            handle
                .write(|ws, now| Ok((ws.ingest(batch, now)?, ())))
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
        let size = handle.read(|ws| ws.segment("ping").map_or(0, |s| s.members.len()))?;
        println!(
            "burst setup:     {:>10.1} s ({n_contacts} contacts, {n_segments} segments, {size} pinged)",
            t.elapsed().as_secs_f64()
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(sift_server::serve(state.clone(), listener, async {
            let _ = stop_rx.await;
        }));
        let client: Arc<HttpClient> = Arc::new(Client::builder(TokioExecutor::new()).build_http());
        let key = Arc::new(key);
        let reading = Arc::new(AtomicBool::new(true));
        let started = Instant::now();
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (client, key, reading) = (client.clone(), key.clone(), reading.clone());
                tokio::spawn(async move {
                    // (sent, latency) of every read.
                    let mut reads = Vec::new();
                    while reading.load(Ordering::Relaxed) {
                        let sent = started.elapsed();
                        let url = format!("http://{addr}/v1/segments/ping");
                        let took =
                            timed_request(&client, hyper::Method::GET, url, &key, String::new())
                                .await?;
                        reads.push((sent, took));
                    }
                    Ok::<_, anyhow::Error>(reads)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let durable = handle.service.signals.durable.subscribe();
        let seq_before = *durable.borrow();
        let fired = started.elapsed();
        clock.set(pinged + DAY_MS + 1);
        // Visible: the segment is empty to a read; durable: its exits are in
        // the store (the durable seq moved past all of them).
        let visible = loop {
            if handle.read(|ws| ws.segment("ping").map_or(0, |s| s.members.len()))? == 0 {
                break started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let mut durable_rx = durable.clone();
        durable_rx
            .wait_for(|seq| *seq >= seq_before + size)
            .await
            .context("the writer stopped")?;
        let done = started.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        reading.store(false, Ordering::Relaxed);
        let mut during = Vec::new();
        let mut outside = Vec::new();
        for reader in readers {
            for (sent, took) in reader.await?? {
                if sent + took >= fired && sent <= done {
                    during.push(took);
                } else {
                    outside.push(took);
                }
            }
        }
        during.sort();
        outside.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "http burst:      {size} windows closing at one instant: visible in {:.2} s, durable in {:.2} s; {READERS} clients reading meanwhile: {} reads, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (outside the burst: p99 {:.2} ms)",
            (visible - fired).as_secs_f64(),
            (done - fired).as_secs_f64(),
            during.len(),
            ms(percentile(&during, 0.5)),
            ms(percentile(&during, 0.99)),
            ms(during.last().copied().unwrap_or_default()),
            ms(percentile(&outside, 0.99)),
        );
        let _ = stop_tx.send(());
        let _ = server.await;
        Ok::<_, anyhow::Error>(())
    })
}
