//! `sift bench --suite streams`: write latency while 500 clients replay
//! the whole change log. A server in this process (on a temporary data
//! directory, durable writes) holds a segment that 32,500 contacts entered,
//! so the log has 32,501 changes; then 500 clients open
//! `GET /v1/changes/stream` without `after` and read it to its end, while
//! one client sends `PUT /v1/contacts/{id}` (a change that moves no
//! membership, so the streams' work stays the replay) one after another.
//!
//! The load generator runs in this process too, on its own thread and
//! runtime (the server keeps the usual multi-threaded runtime), so the
//! figures include the clients' own CPU on the same cores.

use std::time::{Duration, Instant};

use anyhow::Context;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bench::{HttpClient, percentile, timed_request};

const CONTACTS: u64 = 32_500;
const STREAMS: usize = 500;
/// Writes measured with no stream open, for comparison.
const QUIET_WRITES: usize = 200;

pub fn run() -> anyhow::Result<()> {
    println!(
        "streams: PUT latency while {STREAMS} clients replay a {}-change log (server and clients in this process)",
        CONTACTS + 1
    );
    let dir = tempfile::tempdir()?;
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        let mut config = sift_server::Config::new(dir.path(), None);
        // The serve flag's variable, to compare pool sizes.
        if let Some(size) = std::env::var("SIFT_READ_POOL_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.read_pool_size = size;
        }
        println!("  read pool: {} connections", config.read_pool_size);
        let state = sift_server::AppState::open(config)?;
        let (_, key) = state.create_workspace("bench-streams")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(sift_server::serve(state.clone(), listener, async {
            let _ = stop_rx.await;
        }));
        let base = format!("http://{addr}");
        let loading = Instant::now();
        let setup: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        timed_request(
            &setup,
            hyper::Method::PUT,
            format!("{base}/v1/contacts/c0"),
            &key,
            json!({"properties": {"n": 0}}).to_string(),
        )
        .await?;
        let segment = json!({"name": "Everyone", "kind": "dynamic", "condition": "n >= 0"});
        timed_request(
            &setup,
            hyper::Method::POST,
            format!("{base}/v1/segments"),
            &key,
            segment.to_string(),
        )
        .await?;
        for start in (1..=CONTACTS).step_by(10_000) {
            let contacts: Vec<Json> = (start..(start + 10_000).min(CONTACTS + 1))
                .map(|i| json!({"id": format!("c{i}"), "properties": {"n": i}}))
                .collect();
            timed_request(
                &setup,
                hyper::Method::POST,
                format!("{base}/v1/contacts:batch"),
                &key,
                json!({"contacts": contacts}).to_string(),
            )
            .await?;
        }
        let last_seq = CONTACTS;
        println!(
            "  loaded {} contacts ({} changes) in {:.1} s",
            CONTACTS + 1,
            CONTACTS + 1,
            loading.elapsed().as_secs_f64()
        );

        // Writes with nothing else going on.
        let quiet = writes(base.clone(), key.clone(), QUIET_WRITES, None).await?;
        report("  PUT, no stream open:", &quiet);

        // The streams, on their own runtime and thread.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<anyhow::Result<Vec<Duration>>>();
        let replaying = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = replaying.clone();
        let stream_key = key.clone();
        std::thread::Builder::new()
            .name("bench-streams".into())
            .spawn(move || {
                let result = (|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(replay_all(addr, stream_key, last_seq))
                })();
                flag.store(false, std::sync::atomic::Ordering::Release);
                let _ = done_tx.send(result);
            })?;
        let started = Instant::now();
        let loaded = writes(base.clone(), key.clone(), usize::MAX, Some(replaying)).await?;
        let replays = done_rx.recv().context("the stream clients stopped")??;
        let took = started.elapsed();
        let mut replays = replays;
        replays.sort();
        println!(
            "  {STREAMS} replays of {} changes done in {:.1} s (each: p50 {:.1} s, max {:.1} s)",
            last_seq + 1,
            took.as_secs_f64(),
            percentile(&replays, 0.5).as_secs_f64(),
            percentile(&replays, 1.0).as_secs_f64(),
        );
        report(&format!("  PUT, while {STREAMS} streams replay:"), &loaded);
        let _ = stop_tx.send(());
        let _ = server.await;
        anyhow::Ok(())
    })
}

fn report(label: &str, latencies: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // Which write was slowest tells a stall at the start (connecting while
    // 500 streams connect) from one in the middle.
    let slowest = latencies
        .iter()
        .enumerate()
        .max_by_key(|(_, d)| **d)
        .map_or(0, |(i, _)| i);
    println!(
        "{label} {} writes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (write #{slowest})",
        sorted.len(),
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.99)),
        ms(percentile(&sorted, 1.0)),
    );
}

/// PUTs one after another (a 5 ms pause between), on their own thread and
/// runtime, until `count` are done or `while_set` turns false.
async fn writes(
    base: String,
    key: String,
    count: usize,
    while_set: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> anyhow::Result<Vec<Duration>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-writes".into())
        .spawn(move || {
            let result = (|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
                    let mut latencies = Vec::new();
                    let mut i = 0u64;
                    while latencies.len() < count
                        && while_set
                            .as_ref()
                            .is_none_or(|f| f.load(std::sync::atomic::Ordering::Acquire))
                    {
                        // A property no segment reads: the write moves no membership.
                        let body = json!({"properties": {"note": format!("w{i}")}}).to_string();
                        let url = format!("{base}/v1/contacts/c{}", i % CONTACTS);
                        latencies.push(
                            timed_request(&client, hyper::Method::PUT, url, &key, body).await?,
                        );
                        i += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    anyhow::Ok(latencies)
                })
            })();
            let _ = tx.send(result);
        })?;
    rx.await.context("the writing client stopped")?
}

/// Opens every stream, reads each to the change `last_seq`; answers each
/// replay's duration.
async fn replay_all(
    addr: std::net::SocketAddr,
    key: String,
    last_seq: u64,
) -> anyhow::Result<Vec<Duration>> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..STREAMS {
        let key = key.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let mut conn = tokio::net::TcpStream::connect(addr).await?;
            let request = format!(
                "GET /v1/changes/stream HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {key}\r\n\r\n"
            );
            conn.write_all(request.as_bytes()).await?;
            let end = format!("\nid: {last_seq}\n");
            let mut buf = vec![0u8; 64 * 1024];
            let mut tail: Vec<u8> = Vec::new();
            loop {
                let n = conn.read(&mut buf).await?;
                anyhow::ensure!(n > 0, "a stream ended before its replay did");
                // Only the last bytes can hold the end, however the reads split it.
                tail.extend_from_slice(&buf[..n]);
                if tail.windows(end.len()).any(|w| w == end.as_bytes()) {
                    return anyhow::Ok(started.elapsed());
                }
                let keep = tail.len().saturating_sub(end.len());
                tail.drain(..keep);
            }
        });
    }
    let mut replays = Vec::with_capacity(STREAMS);
    while let Some(joined) = tasks.join_next().await {
        replays.push(joined??);
    }
    Ok(replays)
}
