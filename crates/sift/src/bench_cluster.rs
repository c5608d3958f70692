//! `sift bench --suite cluster`: cluster mode (docs/cluster.md) against the
//! embedded mode, with `sift serve` children pinned to cores (`taskset`) and
//! 3 `nats-server`s beside them; this process is the load generator.
//!
//! Prints, for embedded, one cluster node, and two cluster nodes each on
//! its own core (requests spread over both): single durable contact
//! upserts (rate, p50, p99), batched events (rate), and the Sift processes'
//! CPU per 1,000 writes; then the time from killing the leader to the next
//! acknowledged write, over several kills.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::bench::{HttpClient, percentile, timed_request};

const ADMIN: &str = "bench-cluster-admin-key";
const CONCURRENCY: usize = 32;
const SEGMENTS: u64 = 20;

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn nats_server() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("SIFT_NATS_SERVER") {
        return Ok(path.into());
    }
    let output = Command::new("bash")
        .arg("scripts/nats-tools.sh")
        .stderr(Stdio::inherit())
        .output()
        .context(
            "run scripts/nats-tools.sh (from the repository's root), or set SIFT_NATS_SERVER",
        )?;
    if !output.status.success() {
        bail!("scripts/nats-tools.sh failed; set SIFT_NATS_SERVER to a nats-server 2.15 binary");
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().into())
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nats(dir: &Path) -> anyhow::Result<(Vec<Proc>, String)> {
    let server = nats_server()?;
    let clients = [free_port()?, free_port()?, free_port()?];
    let routes = [free_port()?, free_port()?, free_port()?];
    let route_list = routes.map(|p| format!("nats://127.0.0.1:{p}")).join(", ");
    let mut procs = Vec::new();
    for i in 0..3 {
        let store = dir.join(format!("n{i}"));
        std::fs::create_dir_all(&store)?;
        let config = dir.join(format!("n{i}.conf"));
        std::fs::write(
            &config,
            format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\nmax_payload: 20MB\njetstream {{ store_dir: {:?} }}\ncluster {{ name: bench, listen: 127.0.0.1:{}, routes: [{route_list}] }}\n",
                clients[i],
                store.display().to_string(),
                routes[i]
            ),
        )?;
        let child = Command::new(&server)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start nats-server")?;
        procs.push(Proc(child));
    }
    let urls = clients.map(|p| format!("nats://127.0.0.1:{p}")).join(",");
    Ok((procs, urls))
}

/// What the Sift children printed.
#[derive(Default)]
struct Seen {
    addr: HashMap<String, String>,
    key: Option<String>,
    leader: Option<String>,
}

struct Sift {
    procs: HashMap<String, Proc>,
    seen: Arc<Mutex<Seen>>,
}

impl Sift {
    fn new() -> Sift {
        Sift {
            procs: HashMap::new(),
            seen: Arc::default(),
        }
    }

    /// Starts `sift serve` as `name`, pinned to `core`, in cluster mode when
    /// `cluster` is given; waits until it listens.
    fn start(
        &mut self,
        name: &str,
        core: Option<usize>,
        data: &Path,
        cluster: Option<&str>,
    ) -> anyhow::Result<()> {
        let exe = std::env::current_exe()?;
        let mut command = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &core.to_string()]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("SIFT_ADMIN_KEY", ADMIN)
            .env("SIFT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(urls) = cluster {
            command.args(["--cluster", urls, "--node", name]);
        }
        let mut child = command.spawn().context("start sift serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let seen = self.seen.clone();
        let node = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let Ok(mut seen) = seen.lock() else { return };
                let addr = line
                    .strip_prefix("Sift is listening on http://")
                    .or_else(|| {
                        line.strip_prefix(&format!("Sift node {node} is listening on http://"))
                    });
                if let Some(addr) = addr {
                    let addr = addr.split_whitespace().next().unwrap_or_default();
                    seen.addr.insert(node.clone(), addr.to_string());
                } else if let Some(key) = line.strip_prefix("Workspace key (shown once, keep it): ")
                {
                    seen.key = Some(key.trim().to_string());
                } else if line == format!("Sift node {node} leads the cluster") {
                    seen.leader = Some(node.clone());
                }
            }
        });
        self.procs.insert(name.to_string(), Proc(child));
        self.wait(|seen| seen.addr.contains_key(name), "a node to listen")
    }

    fn wait(&self, ready: impl Fn(&Seen) -> bool, what: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.seen.lock().is_ok_and(|seen| ready(&seen)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("gave up waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn key(&self) -> anyhow::Result<String> {
        self.wait(|seen| seen.key.is_some(), "the workspace key")?;
        self.seen
            .lock()
            .ok()
            .and_then(|s| s.key.clone())
            .context("no key")
    }

    fn addrs(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|s| s.addr.values().cloned().collect())
            .unwrap_or_default()
    }

    /// CPU seconds the Sift children used so far.
    fn cpu_seconds(&self) -> f64 {
        self.procs
            .values()
            .map(|p| process_cpu_seconds(p.0.id()))
            .sum()
    }

    fn kill(&mut self, name: &str) {
        self.procs.remove(name);
        if let Ok(mut seen) = self.seen.lock() {
            seen.addr.remove(name);
            if seen.leader.as_deref() == Some(name) {
                seen.leader = None;
            }
        }
    }
}

/// utime + stime of a process, including its threads; the child of
/// `taskset` is `taskset` itself until it execs, so the pid is the server's.
pub(crate) fn process_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat (utime, stime), 1-based, after "(comm)": 12 and 13.
    (ticks(11) + ticks(12)) / 100.0
}

struct Figures {
    puts_per_s: f64,
    put_p50_ms: f64,
    put_p99_ms: f64,
    events_per_s: f64,
    cpu_ms_per_1000: f64,
}

async fn load(
    client: &HttpClient,
    addrs: &[String],
    key: &str,
    sift: &Sift,
    puts: usize,
    batches: usize,
) -> anyhow::Result<Figures> {
    let cpu_before = sift.cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let (client, key) = (client.clone(), key.to_string());
        let addrs = addrs.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for i in (t..puts).step_by(CONCURRENCY) {
                let addr = &addrs[i % addrs.len()];
                let tier = ["gold", "silver", "bronze"][i % 3];
                let body =
                    serde_json::json!({"properties": {"age": 18 + (i * 7) % 60, "tier": tier}});
                let url = format!("http://{addr}/v1/contacts/c{}", i % 20_000);
                times.push(
                    timed_request(&client, hyper::Method::PUT, url, &key, body.to_string()).await?,
                );
            }
            anyhow::Ok(times)
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await??);
    }
    let put_seconds = started.elapsed().as_secs_f64();
    let cpu_puts = sift.cpu_seconds() - cpu_before;
    times.sort();
    let events_started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (client, key) = (client.clone(), key.to_string());
        let addrs = addrs.to_vec();
        tasks.push(tokio::spawn(async move {
            for b in (t..batches).step_by(4) {
                let events: Vec<_> = (0..1_000)
                    .map(|e| serde_json::json!({"id": format!("b{b}-{e}"), "contact_id": format!("c{}", (b * 1_000 + e) % 20_000), "type": "purchase", "properties": {"amount": e % 100}}))
                    .collect();
                let url = format!("http://{}/v1/events", addrs[b % addrs.len()]);
                timed_request(&client, hyper::Method::POST, url, &key, serde_json::json!({"events": events}).to_string()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let event_seconds = events_started.elapsed().as_secs_f64();
    Ok(Figures {
        puts_per_s: puts as f64 / put_seconds,
        put_p50_ms: percentile(&times, 0.5).as_secs_f64() * 1000.0,
        put_p99_ms: percentile(&times, 0.99).as_secs_f64() * 1000.0,
        events_per_s: (batches * 1_000) as f64 / event_seconds,
        cpu_ms_per_1000: cpu_puts * 1000.0 / puts as f64 * 1000.0,
    })
}

async fn prepare(client: &HttpClient, addr: &str, key: &str) -> anyhow::Result<()> {
    for (field, kind) in [("age", "number"), ("tier", "string")] {
        let url = format!("http://{addr}/v1/fields/{field}");
        timed_request(
            client,
            hyper::Method::PUT,
            url,
            key,
            serde_json::json!({"type": kind}).to_string(),
        )
        .await?;
    }
    for i in 0..SEGMENTS {
        let condition = match i % 4 {
            0 => format!("age >= {}", 20 + i),
            1 => format!("tier = \"gold\" and age < {}", 30 + i),
            2 => format!("performed purchase at least {} times", 1 + i % 5),
            _ => format!("performed purchase where amount > {}", i * 4),
        };
        let body = serde_json::json!({"name": format!("s{i}"), "condition": condition});
        timed_request(
            client,
            hyper::Method::POST,
            format!("http://{addr}/v1/segments"),
            key,
            body.to_string(),
        )
        .await?;
    }
    Ok(())
}

fn report(label: &str, f: &Figures) {
    println!(
        "{label:<34} {:>8.0} PUT/s  p50 {:>6.1} ms  p99 {:>6.1} ms  {:>9.0} events/s (batches of 1,000)  {:>6.1} ms CPU per 1,000 PUTs",
        f.puts_per_s, f.put_p50_ms, f.put_p99_ms, f.events_per_s, f.cpu_ms_per_1000
    );
}

pub fn run(puts: u64, kills: u64) -> anyhow::Result<()> {
    let puts = usize::try_from(puts).unwrap_or(usize::MAX).max(CONCURRENCY);
    let batches = 40;
    let dir = tempfile::tempdir()?;
    let rt = crate::run::runtime()?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    println!(
        "cluster bench: {puts} single PUTs ({CONCURRENCY} at a time), {batches} batches of 1,000 events (4 at a time), {SEGMENTS} segments; Sift pinned with taskset, 3 nats-servers unpinned, this load generator unpinned"
    );
    // Embedded, one core.
    let mut sift = Sift::new();
    sift.start("embedded", Some(0), &dir.path().join("embedded"), None)?;
    let key = sift.key()?;
    let addrs = sift.addrs();
    let embedded = rt.block_on(async {
        prepare(&client, &addrs[0], &key).await?;
        load(&client, &addrs, &key, &sift, puts, batches).await
    })?;
    report("embedded, 1 core", &embedded);
    drop(sift);

    // Cluster: one node, then two nodes each on its own core.
    let mut figures = Vec::new();
    for nodes in [1usize, 2] {
        let (nats, urls) = start_nats(&dir.path().join(format!("nats{nodes}")))?;
        let mut sift = Sift::new();
        for n in 0..nodes {
            let name = format!("s{n}");
            sift.start(
                &name,
                Some(n),
                &dir.path().join(format!("c{nodes}-{name}")),
                Some(&urls),
            )?;
        }
        let key = sift.key()?;
        let addrs = sift.addrs();
        let figure = rt.block_on(async {
            prepare(&client, &addrs[0], &key).await?;
            load(&client, &addrs, &key, &sift, puts, batches).await
        })?;
        report(&format!("cluster, {nodes} node(s), 1 core each"), &figure);
        figures.push(figure);
        drop(sift);
        drop(nats);
    }
    println!(
        "scaling 1 -> 2 nodes: {:.2}x PUT/s, {:.2}x events/s; cluster 1 node / embedded: {:.2}x PUT/s, {:.2}x events/s",
        figures[1].puts_per_s / figures[0].puts_per_s,
        figures[1].events_per_s / figures[0].events_per_s,
        figures[0].puts_per_s / embedded.puts_per_s,
        figures[0].events_per_s / embedded.events_per_s,
    );
    if kills > 0 {
        failovers(&rt, &client, dir.path(), kills)?;
    }
    Ok(())
}

/// Kills the leader of a 3-node cluster `kills` times while a client keeps
/// writing; the time from each kill to the next acknowledged write.
fn failovers(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    dir: &Path,
    kills: u64,
) -> anyhow::Result<()> {
    let (_nats, urls) = start_nats(&dir.join("nats-failover"))?;
    let mut sift = Sift::new();
    for n in 0..3 {
        sift.start(
            &format!("f{n}"),
            None,
            &dir.join(format!("f{n}")),
            Some(&urls),
        )?;
    }
    let key = sift.key()?;
    let mut times = Vec::new();
    for round in 0..kills {
        sift.wait(|seen| seen.leader.is_some(), "a leader")?;
        let leader = sift
            .seen
            .lock()
            .ok()
            .and_then(|s| s.leader.clone())
            .context("no leader")?;
        sift.kill(&leader);
        let killed = Instant::now();
        let addrs = sift.addrs();
        let took = rt.block_on(async {
            let mut i = 0usize;
            loop {
                let url = format!("http://{}/v1/contacts/probe", addrs[i % addrs.len()]);
                let body = serde_json::json!({"properties": {"round": round}}).to_string();
                if timed_request(client, hyper::Method::PUT, url, &key, body)
                    .await
                    .is_ok()
                {
                    return killed.elapsed();
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        times.push(took);
        sift.start(&leader, None, &dir.join(&leader), Some(&urls))?;
    }
    times.sort();
    println!(
        "failover over {kills} kills of the leader (3 nodes): min {:.2} s, median {:.2} s, p90 {:.2} s, max {:.2} s",
        times[0].as_secs_f64(),
        percentile(&times, 0.5).as_secs_f64(),
        percentile(&times, 0.9).as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
    Ok(())
}
