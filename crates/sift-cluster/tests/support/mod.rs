#![allow(dead_code)] // each test binary uses part of it
//! A NATS JetStream cluster of real `nats-server` processes on loopback,
//! for the tests: the binary comes from `SIFT_NATS_SERVER` or, when unset,
//! from `scripts/nats-tools.sh` (which installs it under target/ once).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn nats_server() -> PathBuf {
    if let Ok(path) = std::env::var("SIFT_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("bash")
        .arg(root.join("scripts/nats-tools.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/nats-tools.sh");
    assert!(
        output.status.success(),
        "scripts/nats-tools.sh failed: nats-server is needed for the cluster tests"
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Node {
    pub url: String,
    config: PathBuf,
    child: Option<Child>,
}

/// Nodes forming one JetStream cluster; killed when dropped.
pub struct NatsCluster {
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
    server: PathBuf,
}

impl NatsCluster {
    pub fn start(size: usize) -> NatsCluster {
        let server = nats_server();
        let dir = tempfile::tempdir().expect("temp dir");
        let clients: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let route_list = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for i in 0..size {
            let store = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&store).expect("store dir");
            let config = dir.path().join(format!("n{i}.conf"));
            // One node alone runs JetStream unclustered (a cluster of one
            // would wait for peers).
            let cluster = if size > 1 {
                format!(
                    "cluster {{ name: test, listen: 127.0.0.1:{}, routes: [{route_list}] }}\n",
                    routes[i]
                )
            } else {
                String::new()
            };
            std::fs::write(
                &config,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{}\nmax_payload: 20MB\njetstream {{ store_dir: {:?} }}\n{cluster}",
                    clients[i],
                    store.display().to_string(),
                ),
            )
            .expect("write config");
            let mut node = Node {
                url: format!("nats://127.0.0.1:{}", clients[i]),
                config,
                child: None,
            };
            node.child = Some(spawn(&server, &node.config));
            nodes.push(node);
        }
        NatsCluster {
            nodes,
            _dir: dir,
            server,
        }
    }

    /// Every node's URL, comma-separated (what `--cluster` takes).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.url.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.nodes[i].child = Some(spawn(&self.server, &self.nodes[i].config));
    }
}

fn spawn(server: &Path, config: &Path) -> Child {
    Command::new(server)
        .arg("-c")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server")
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Polls `check` until it holds or `limit` passes; answers how long it took.
pub async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
