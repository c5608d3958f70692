//! `sift bench --suite facebook`: the full Facebook Custom Audience export
//! of a segment of N members (email, phone, names, country, birth date):
//! reading, normalizing, hashing, JSON and HTTP to a fake Graph API on
//! 127.0.0.1, which parses each batch and answers as Facebook does. Reports
//! rows per second from the `POST` that starts the job to the job's `done`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value as Json, json};

use crate::bench::HttpClient;

const FIRST: [&str; 8] = [
    "Ana",
    "Zoë",
    "José",
    "Marie-Claire",
    "John",
    "Ümit",
    "Li",
    "O'Neil",
];
const LAST: [&str; 6] = [
    "García",
    "O'Brien",
    "Smith",
    "Müller",
    "Núñez-Ruiz",
    "Dupont",
];
const COUNTRIES: [&str; 6] = ["ES", "FR", "DE", "US", "PT", "United Kingdom"];

async fn call(
    client: &HttpClient,
    method: hyper::Method,
    url: &str,
    key: &str,
    body: Option<Json>,
) -> anyhow::Result<Json> {
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
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

/// The fake Graph API: counts the rows it parsed.
async fn fake_graph(rows: Arc<AtomicU64>) -> anyhow::Result<std::net::SocketAddr> {
    let handler = move |body: axum::body::Bytes| {
        let rows = rows.clone();
        async move {
            let parsed: Json = serde_json::from_slice(&body).unwrap_or_default();
            let n = parsed["payload"]["data"].as_array().map_or(0, Vec::len);
            rows.fetch_add(n as u64, Ordering::Relaxed);
            axum::Json(
                json!({"audience_id": "1", "session_id": 1, "num_received": n, "num_invalid_entries": 0}),
            )
        }
    };
    // A batch of 10,000 rows of nine hashes is about 6 MB.
    let app = axum::Router::new()
        .fallback(handler)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

fn contact(i: u64) -> Json {
    let pick = |list: &[&'static str]| list[(i as usize * 7 + 3) % list.len()];
    json!({"id": format!("fb{i:07}"), "properties": {
        "email": format!("  Person.{i}@Example.com "),
        "phone": format!("+34 6{:02} {:03} {:03}", i % 100, (i / 100) % 1000, i % 997),
        "first_name": pick(&FIRST), "last_name": pick(&LAST), "country": pick(&COUNTRIES),
        "birth_date": format!("{}-{:02}-{:02}", 1950 + i % 50, 1 + i % 12, 1 + i % 28),
    }})
}

pub fn run(n_members: u64) -> anyhow::Result<()> {
    let n_members = n_members.max(1_000);
    println!("facebook: export of a {n_members}-member segment to a local fake Graph API");
    let dir = tempfile::tempdir()?;
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        // The receiver is local: private destinations are allowed.
        let mut config = sift_server::Config::new(dir.path(), None);
        config.allow_private_destinations = true;
        let state = sift_server::AppState::open(config)?;
        let (_, key) = state.create_workspace("bench-facebook")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(sift_server::serve(state.clone(), listener, async {
            let _ = stop_rx.await;
        }));
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let base = format!("http://{addr}");
        let loading = Instant::now();
        for start in (0..n_members).step_by(10_000) {
            let contacts: Vec<Json> = (start..(start + 10_000).min(n_members)).map(contact).collect();
            call(&client, hyper::Method::POST, &format!("{base}/v1/contacts:batch"), &key, Some(json!({"contacts": contacts}))).await?;
        }
        let segment = call(&client, hyper::Method::POST, &format!("{base}/v1/segments"), &key,
            Some(json!({"name": "Everyone with an email", "kind": "dynamic", "condition": "email is set"}))).await?;
        let segment_id = segment["id"].as_str().context("segment id")?;
        println!("  loaded {n_members} contacts in {:.1} s", loading.elapsed().as_secs_f64());

        let rows = Arc::new(AtomicU64::new(0));
        let graph = fake_graph(rows.clone()).await?;
        let started = Instant::now();
        let job = call(&client, hyper::Method::POST, &format!("{base}/v1/segments/{segment_id}/exports/facebook"), &key,
            Some(json!({"audience_id": "1", "access_token": "bench-token", "graph_url": format!("http://{graph}")}))).await?;
        let job_id = job["id"].as_str().context("job id")?.to_string();
        let job = loop {
            let job = call(&client, hyper::Method::GET, &format!("{base}/v1/exports/{job_id}"), &key, None).await?;
            if matches!(job["state"].as_str(), Some("done" | "failed")) {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(job["state"] == "done", "the export failed: {job}");
        let sent = job["sent"].as_u64().unwrap_or(0);
        println!(
            "  export: {sent} rows × {} identifiers in {} batches, {:.2} s → {:.0} rows/s (the fake parsed {} rows)",
            job["identifiers"].as_array().map_or(0, Vec::len),
            job["batch_count"],
            seconds,
            sent as f64 / seconds,
            rows.load(Ordering::Relaxed)
        );

        // The same upload as a sync, which also stores every row it sends
        // (committed before each batch) so that it can resume after a restart.
        let started = Instant::now();
        let job = call(&client, hyper::Method::POST, &format!("{base}/v1/segments/{segment_id}/exports/facebook"), &key,
            Some(json!({"audience_id": "1", "access_token": "bench-token", "graph_url": format!("http://{graph}"), "sync": true}))).await?;
        let job_id = job["id"].as_str().context("job id")?.to_string();
        let job = loop {
            let job = call(&client, hyper::Method::GET, &format!("{base}/v1/exports/{job_id}"), &key, None).await?;
            if job["phase"] == "syncing" || job["state"] == "failed" {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(job["state"] == "running", "the sync failed: {job}");
        let sent = job["sent"].as_u64().unwrap_or(0);
        println!(
            "  sync, initial upload with its rows stored: {sent} rows in {:.2} s → {:.0} rows/s",
            seconds,
            sent as f64 / seconds
        );
        call(&client, hyper::Method::DELETE, &format!("{base}/v1/exports/{job_id}"), &key, None).await?;
        let _ = stop_tx.send(());
        let _ = server.await;
        Ok(())
    })
}
