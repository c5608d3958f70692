//! The `sift serve` child process `sift bench --suite state` starts,
//! times from spawn to its first answer, asks over HTTP, reads the RSS
//! of, and stops as an operator does (SIGTERM).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

use crate::bench::HttpClient;

/// How long the server is left idle before its RSS is read again.
pub(crate) const SETTLE: Duration = Duration::from_secs(2);
/// Longest a start may take before the bench gives up on it.
const START_DEADLINE: Duration = Duration::from_secs(1_800);

/// A `sift serve` child process on a known port.
pub(crate) struct Server {
    child: Child,
    addr: String,
    key: String,
    client: HttpClient,
    /// From spawn to the first successful answer.
    pub(crate) start: Duration,
}

impl Server {
    /// Spawns the server and waits for its first 2xx answer.
    pub(crate) async fn start(
        data: &Path,
        port: u16,
        key: &str,
        log: &Path,
    ) -> anyhow::Result<Server> {
        Server::start_with(data, port, key, log, &[], None).await
    }

    /// As [`Server::start`], with business time frozen at `at_ms`.
    pub(crate) async fn start_frozen(
        data: &Path,
        port: u16,
        key: &str,
        log: &Path,
        at_ms: i64,
    ) -> anyhow::Result<Server> {
        Server::start_with(data, port, key, log, &[], Some(at_ms)).await
    }

    /// [`Server::start`] with more `sift serve` flags.
    pub(crate) async fn start_with(
        data: &Path,
        port: u16,
        key: &str,
        log: &Path,
        extra: &[&str],
        frozen_at_ms: Option<i64>,
    ) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("cannot find the sift executable")?;
        let addr = format!("127.0.0.1:{port}");
        let spawned = Instant::now();
        let mut command = Command::new(exe);
        match frozen_at_ms {
            Some(at) => command.env("SIFT_TEST_FROZEN_CLOCK_MS", at.to_string()),
            None => command.env_remove("SIFT_TEST_FROZEN_CLOCK_MS"),
        };
        let child = command
            .args(["serve", "--listen", &addr])
            .args(extra)
            .arg("--data")
            .arg(data)
            .env_remove("SIFT_ADMIN_KEY")
            // Info: the checkpoint lines (written, loaded) are read back.
            .env("SIFT_LOG", "warn,sift_server=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .context("cannot start sift serve")?;
        let mut server = Server {
            child,
            addr,
            key: key.to_string(),
            // A fresh client: pooled connections to an earlier server are dead.
            client: Client::builder(TokioExecutor::new()).build_http(),
            start: Duration::ZERO,
        };
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "sift serve exited ({status}) before answering: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if let Ok((200, _)) = server
                .call(hyper::Method::GET, "/v1/segments?limit=1", None)
                .await
            {
                server.start = spawned.elapsed();
                return Ok(server);
            }
            if spawned.elapsed() > START_DEADLINE {
                bail!("sift serve did not answer within {START_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub(crate) async fn call(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Json>,
    ) -> anyhow::Result<(u16, Json)> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map_or_else(String::new, |b| b.to_string()),
            )))?;
        let response = self.client.request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Json::Null)))
    }

    pub(crate) async fn ok(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Json>,
    ) -> anyhow::Result<Json> {
        let (status, json) = self.call(method, path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{path} answered {status}: {json}");
        }
        Ok(json)
    }

    /// Every segment's size, by id.
    pub(crate) async fn sizes(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let page = self
            .ok(hyper::Method::GET, "/v1/segments?limit=1000", None)
            .await?;
        let items = page["items"]
            .as_array()
            .context("no items in the segment list")?;
        Ok(items
            .iter()
            .filter_map(|s| Some((s["id"].as_str()?.to_string(), s["size"].as_u64()?)))
            .collect())
    }

    /// VmRSS of the server process, from /proc.
    pub(crate) fn rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("cannot read the server's /proc status (Linux only)")?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .context("no VmRSS in /proc status")
    }

    /// VmRSS at once and again after `SETTLE` with no request: the start
    /// leaves freed memory the allocator returns to the system only later.
    pub(crate) async fn rss_now_and_settled(&self) -> anyhow::Result<(u64, u64)> {
        let now = self.rss()?;
        tokio::time::sleep(SETTLE).await;
        Ok((now, self.rss()?))
    }

    /// SIGTERM, as an operator stops it, then waits for it to exit.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let asked = Instant::now();
        while self.child.try_wait()?.is_none() {
            if asked.elapsed() > Duration::from_secs(300) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("sift serve did not stop within 300 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only a server still running after an error gets here.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
