//! `sift bench --suite webhooks`: webhook delivery lag to a local receiver
//! while events arrive at a paced 10,000 per second, and durable ingest
//! throughput with no webhook, with an endpoint that refuses connections,
//! with one that never answers, and with a healthy one. Everything runs in
//! this process: the server on a temporary data directory (fsynced writes)
//! and the receiver, an axum server on 127.0.0.1, both over real sockets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value as Json, json};

use crate::bench::{HttpClient, percentile, timed_request};
use crate::bench_events::{condition, event_json, paced, sift_now};
use crate::generate::Generator;

const SECRET: &str = "bench-secret-0123456789";

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    deliveries: u64,
    bad_signatures: u64,
    events: u64,
    changes: u64,
    /// From an event's `at` (the server's clock when it accepted it) to its
    /// delivery's arrival.
    event_lag: Vec<Duration>,
    /// From a change's `at` to its delivery's arrival.
    change_lag: Vec<Duration>,
}

fn since(at: &Json, now: i64) -> Option<Duration> {
    let at = sift_engine::parse_datetime(at.as_str()?)?;
    Some(Duration::from_millis((now - at).max(0) as u64))
}

/// A receiver on 127.0.0.1:0: `/ok` records and answers 200, `/hang` never
/// answers.
async fn receiver() -> anyhow::Result<(SocketAddr, Arc<Mutex<Seen>>)> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    let ok = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let shared = shared.clone();
        async move {
            let now = sift_now();
            let signature = headers
                .get("sift-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let good = signature
                == format!(
                    "sha256={}",
                    sift_server::webhooks::sign(SECRET.as_bytes(), &body)
                );
            let parsed: Json = serde_json::from_slice(&body).unwrap_or_default();
            let empty = Vec::new();
            let events = parsed["events"].as_array().unwrap_or(&empty);
            let changes = parsed["changes"].as_array().unwrap_or(&empty);
            if let Ok(mut seen) = shared.lock() {
                seen.deliveries += 1;
                seen.bad_signatures += u64::from(!good);
                seen.events += events.len() as u64;
                seen.changes += changes.len() as u64;
                seen.event_lag
                    .extend(events.iter().filter_map(|e| since(&e["at"], now)));
                seen.change_lag
                    .extend(changes.iter().filter_map(|c| since(&c["at"], now)));
            }
            "ok"
        }
    };
    let app = axum::Router::new()
        .route("/ok", axum::routing::post(ok))
        .route(
            "/hang",
            axum::routing::post(|| async {
                std::future::pending::<()>().await;
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, seen))
}

/// Sends a JSON request and answers the JSON body; fails unless 2xx.
async fn call(
    client: &HttpClient,
    method: hyper::Method,
    url: &str,
    key: &str,
    body: Json,
) -> anyhow::Result<Json> {
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            body.to_string(),
        )))?;
    let response = client.request(request).await?;
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await?
        .to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{url} answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(serde_json::from_slice(&bytes)?)
}

/// Subscribes `url` to every segment and every event; answers the id and
/// the seq it starts at.
async fn subscribe(
    client: &HttpClient,
    hooks: &str,
    key: &str,
    url: String,
) -> anyhow::Result<(String, u64)> {
    let body = json!({"url": url, "secret": SECRET, "events": true});
    let created = call(client, hyper::Method::POST, hooks, key, body).await?;
    let id = created["id"]
        .as_str()
        .map(str::to_string)
        .context("the created webhook has no id")?;
    Ok((
        id,
        created["delivery"]["change_cursor"].as_u64().unwrap_or(0),
    ))
}

/// Bodies of `per_client` requests of `batch` events for each of `clients`.
fn bodies(
    generator: &mut Generator,
    n_contacts: u64,
    clients: usize,
    per_client: usize,
    batch: usize,
) -> Vec<Vec<String>> {
    let now = sift_now();
    (0..clients)
        .map(|_| {
            (0..per_client)
                .map(|_| {
                    let events: Vec<Json> = (0..batch)
                        .map(|_| {
                            let n = generator.next_u64() % n_contacts.max(1);
                            event_json(&generator.event(n, now, 30))
                        })
                        .collect();
                    json!({ "events": events }).to_string()
                })
                .collect()
        })
        .collect()
}

pub fn run(n_contacts: u64, n_segments: u64) -> anyhow::Result<()> {
    let n_contacts = n_contacts.max(1_000);
    println!(
        "webhooks: {n_contacts} contacts, {n_segments} segments (every third behavioural or time-relative)"
    );
    let dir = tempfile::tempdir()?;
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        // The receiver is local: private destinations are allowed.
        let mut config = sift_server::Config::new(dir.path(), None);
        config.allow_private_destinations = true;
        let state = sift_server::AppState::open(config)?;
        let (ws_id, key) = state.create_workspace("bench-webhooks")?;
        let handle = state.workspace(&ws_id).context("bench workspace")?;
        let mut generator = Generator::new(29);
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
        let (receiver, seen) = receiver().await?;
        let hooks = format!("http://{addr}/v1/webhooks");

        // Lag at a paced 10,000 events/s, 50 per request from 10 clients,
        // to a webhook of every segment and every event.
        let (lag_hook, first_seq) =
            subscribe(&client, &hooks, &key, format!("http://{receiver}/ok")).await?;
        let (clients, batch, per_client) = (10usize, 50usize, 100usize);
        let total = (clients * batch * per_client) as u64;
        let interval = Duration::from_micros(1_000_000 * (clients * batch) as u64 / 10_000);
        let paced_bodies = bodies(&mut generator, n_contacts, clients, per_client, batch);
        let (latencies, took) = paced(&client, &key, addr, paced_bodies, interval).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let changes = handle.signals().durable.borrow().saturating_sub(first_seq);
        while seen
            .lock()
            .map(|s| s.events < total || s.changes < changes)
            .unwrap_or(true)
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the receiver did not get every event and change within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        {
            let mut seen = seen.lock().map_err(|_| anyhow::anyhow!("receiver lock"))?;
            seen.event_lag.sort();
            seen.change_lag.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "webhook lag:     {:>10.0} events/s achieved of 10,000 offered ({batch} per request, {clients} clients; ingest p99 {:.2} ms); event accepted → delivered p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                latencies.len() as f64 * batch as f64 / took.as_secs_f64(),
                ms(percentile(&latencies, 0.99)),
                ms(percentile(&seen.event_lag, 0.5)),
                ms(percentile(&seen.event_lag, 0.99)),
                ms(seen.event_lag.last().copied().unwrap_or_default()),
            );
            println!(
                "                 {} events and {} membership changes in {} POSTs ({:.0} items per POST, {} bad signatures); change → delivered p50 {:.0} ms, p99 {:.0} ms",
                seen.events,
                seen.changes,
                seen.deliveries,
                (seen.events + seen.changes) as f64 / seen.deliveries.max(1) as f64,
                seen.bad_signatures,
                ms(percentile(&seen.change_lag, 0.5)),
                ms(percentile(&seen.change_lag, 0.99)),
            );
        }
        for line in state.metrics.render().lines() {
            if (line.starts_with("sift_webhook_commit_seconds")
                || line.starts_with("sift_store_commit_seconds"))
                && (line.contains("0.5\"") || line.contains("0.99\""))
            {
                println!("  {line}");
            }
        }
        let url = format!("{hooks}/{lag_hook}");
        call(&client, hyper::Method::DELETE, &url, &key, Json::Null).await?;

        // Durable ingest, 1,000 events per request from 4 clients, with
        // each kind of endpoint (one at a time) and with none.
        let refused = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            format!("http://{}/hook", l.local_addr()?)
        };
        let round = [
            ("none", None),
            ("down", Some(refused)),
            ("hanging", Some(format!("http://{receiver}/hang"))),
            ("healthy", Some(format!("http://{receiver}/ok"))),
        ];
        // Rounds of the four, so that noise and the log growing in between
        // fall on each alike; the median of each is printed.
        let mut rates: Vec<(&str, Vec<f64>)> =
            round.iter().map(|(l, _)| (*l, Vec::new())).collect();
        for (label, url) in std::iter::repeat_n(round.iter(), 5).flatten().cloned() {
            let id = match url {
                Some(url) => Some(subscribe(&client, &hooks, &key, url).await?.0),
                None => None,
            };
            let all = bodies(&mut generator, n_contacts, 4, 25, 1000);
            let t = Instant::now();
            let mut tasks = Vec::new();
            for bodies in all {
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
            let rate = 100_000.0 / t.elapsed().as_secs_f64();
            if let Some((_, list)) = rates.iter_mut().find(|(l, _)| *l == label) {
                list.push(rate);
            }
            if let Some(id) = id {
                let url = format!("{hooks}/{id}");
                call(&client, hyper::Method::DELETE, &url, &key, Json::Null).await?;
            }
        }
        for (label, mut list) in rates {
            list.sort_by(f64::total_cmp);
            let what = match label {
                "none" => "no webhook",
                "down" => "a webhook whose endpoint refuses connections (retrying)",
                "hanging" => "a webhook whose endpoint never answers (10 s timeouts)",
                _ => "a healthy webhook receiving every event",
            };
            let runs: Vec<String> = list.iter().map(|r| format!("{r:.0}")).collect();
            println!(
                "ingest, {label:<8} {:>10.0} durable events/s median (runs {}; 100,000 events, 1,000 per request, 4 clients) with {what}",
                list.get(list.len() / 2).copied().unwrap_or_default(),
                runs.join(", ")
            );
        }
        let _ = stop_tx.send(());
        let _ = server.await;
        Ok::<_, anyhow::Error>(())
    })
}
