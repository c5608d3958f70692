//! What the process-level tests share: a real `sift serve` in a child
//! process (killed with SIGKILL when dropped) and an HTTP client for it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

/// A running `sift serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The workspace key, printed only on first start.
    pub key: Option<String>,
    /// What the server printed after its banner.
    pub lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `sift serve` on `data` (with `extra` flags) and reads its
    /// banner up to the key (first start) or the sign-in link (a restart).
    pub fn start(data: &Path, stderr: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(data, stderr, extra, &[])
    }

    /// [`Server::start`] with environment variables set for the server.
    pub fn start_with_env(
        data: &Path,
        stderr: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sift"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--data")
            .arg(data)
            .env_remove("SIFT_ADMIN_KEY")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Server {
            child,
            addr: String::new(),
            key: None,
            lines,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = match server.lines.recv_timeout(wait) {
                Ok(line) => line,
                Err(_) => panic!(
                    "sift serve did not start; stderr:\n{}",
                    std::fs::read_to_string(stderr).unwrap_or_default()
                ),
            };
            if let Some(addr) = line.strip_prefix("Sift is listening on http://") {
                server.addr = addr.trim().to_string();
            } else if let Some(key) = line.strip_prefix("Workspace key (shown once, keep it): ") {
                server.key = Some(key.trim().to_string());
                return server;
            } else if line.starts_with("Web UI") {
                // A restart prints no key; its sign-in link ends the banner's part we need.
                return server;
            }
        }
    }

    pub fn kill(&mut self) {
        // Child::kill sends SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One request; Err when the server did not answer (it was killed).
pub async fn call(
    client: &HttpClient,
    addr: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Json>,
) -> Result<(u16, Json), String> {
    let bytes = body.map_or_else(Vec::new, |b| serde_json::to_vec(b).unwrap());
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap();
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    Ok((status, json))
}

/// A request that must succeed (2xx) while the server is up.
pub async fn ok(
    client: &HttpClient,
    addr: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Json>,
) -> Json {
    let (status, json) = call(client, addr, key, method, path, body.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert!(
        (200..300).contains(&status),
        "{method} {path} answered {status}: {json:#}"
    );
    json
}
