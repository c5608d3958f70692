//! The contacts bench's load generator in a process of its own, so that a
//! figure can say what the server does when the generator does not share
//! its runtime (and, with `taskset`, not its core either). `sift bench`
//! starts it as `sift bench-load` (a hidden subcommand) beside the server it
//! runs in-process, and reads one JSON line of figures back.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::bench::{HttpClient, percentile, put_clients};
use crate::bench_cluster::process_cpu_seconds;

/// What a run of single PUTs measured.
pub struct LoadFigures {
    pub writes_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU seconds of the generator's process.
    pub generator_cpu_s: f64,
    /// CPU seconds of the server's process over the same run.
    pub server_cpu_s: f64,
    pub pinned: bool,
}

/// `sift bench-load`: PUTs the bodies of `bodies` (JSON lines `[id, body]`)
/// to `url`, `concurrency` at a time, `per_client` each; prints the figures.
pub fn child(
    url: &str,
    key: &str,
    bodies: &std::path::Path,
    concurrency: usize,
    per_client: usize,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(bodies).context("reading the bodies")?;
    let bodies: Vec<(String, String)> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("a body line is not [id, body]")?;
    anyhow::ensure!(!bodies.is_empty(), "no bodies to send");
    let bodies = Arc::new(bodies);
    let rt = crate::run::runtime()?;
    let url = url.trim_end_matches('/').to_string();
    let key = key.to_string();
    rt.block_on(async move {
        let client: Arc<HttpClient> = Arc::new(Client::builder(TokioExecutor::new()).build_http());
        let started = Instant::now();
        let latencies = put_clients(client, url, key, bodies, concurrency, per_client).await?;
        let took = started.elapsed();
        println!(
            "{}",
            serde_json::json!({
                "writes_per_s": latencies.len() as f64 / took.as_secs_f64(),
                "p50_ms": percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
                "p99_ms": percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
                "cpu_s": process_cpu_seconds(std::process::id()),
            })
        );
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the generator as a child process against the server at `addr` in
/// this process. With `pin`, `taskset` and two or more cores, this process
/// is pinned to core 0 and the child to core 1 for the run; otherwise the
/// system shares the cores between them.
/// Blocks: call it off the server's runtime threads.
pub fn run(
    addr: std::net::SocketAddr,
    key: &str,
    bodies: &[(String, String)],
    concurrency: usize,
    per_client: usize,
    pin: bool,
) -> anyhow::Result<LoadFigures> {
    let mut file = tempfile::NamedTempFile::new()?;
    for body in bodies {
        writeln!(file, "{}", serde_json::to_string(body)?)?;
    }
    file.flush()?;
    let exe = std::env::current_exe()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let me = std::process::id().to_string();
    let pinned = pin
        && cores >= 2
        && std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &me])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let mut command = if pinned {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "1"]).arg(&exe);
        c
    } else {
        std::process::Command::new(&exe)
    };
    command
        .arg("bench-load")
        .arg("--url")
        .arg(format!("http://{addr}"))
        .arg("--key")
        .arg(key)
        .arg("--bodies")
        .arg(file.path())
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .arg("--per-client")
        .arg(per_client.to_string());
    let server_before = process_cpu_seconds(std::process::id());
    let output = command.output().context("starting the load generator")?;
    let server_cpu_s = process_cpu_seconds(std::process::id()) - server_before;
    if pinned {
        let all = format!("0-{}", cores - 1);
        let _ = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", &all, &me])
            .stdout(std::process::Stdio::null())
            .status();
    }
    anyhow::ensure!(
        output.status.success(),
        "the load generator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout)
        .context("the load generator's figures are not JSON")?;
    let number = |k: &str| figures[k].as_f64().unwrap_or(0.0);
    Ok(LoadFigures {
        writes_per_s: number("writes_per_s"),
        p50_ms: number("p50_ms"),
        p99_ms: number("p99_ms"),
        generator_cpu_s: number("cpu_s"),
        server_cpu_s,
        pinned,
    })
}
