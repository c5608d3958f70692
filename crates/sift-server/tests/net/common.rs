//! What the socket tests share: a server on a loopback port with its own
//! config, raw HTTP/1.1 requests and responses, reading a chunked event
//! stream, and loading a change log.

use std::time::Duration;

use serde_json::{Value as Json, json};
use sift_server::{AppState, Config};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub const ADMIN_KEY: &str = "admin-key-for-net-tests";

pub struct Served {
    pub addr: std::net::SocketAddr,
    _state: AppState,
    pub key: String,
    pub workspace_id: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: TempDir,
}

impl Served {
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path(), Some(ADMIN_KEY.to_string()));
        configure(&mut config);
        let state = AppState::open(config).unwrap();
        let (workspace_id, key) = state.create_workspace("Acme").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(sift_server::serve(state.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Served {
            addr,
            _state: state,
            key,
            workspace_id,
            stop: Some(stop),
            serving,
            _dir: dir,
        }
    }

    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// One request on a fresh connection; answers status, headers and body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Json>) -> Response {
        let mut conn = self.connect().await;
        send(&mut conn, method, path, Some(&self.key), body).await;
        read_response(&mut conn).await.expect("a response")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.serving)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or(Json::Null)
    }

    pub fn closes(&self) -> bool {
        self.head
            .to_ascii_lowercase()
            .contains("\r\nconnection: close")
    }
}

pub async fn send(
    conn: &mut TcpStream,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Json>,
) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = key.map_or(String::new(), |k| format!("authorization: Bearer {k}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
}

/// Reads one response with a `content-length` body; None if the connection
/// closed first or nothing came within 5 s.
pub async fn read_response(conn: &mut TcpStream) -> Option<Response> {
    tokio::time::timeout(Duration::from_secs(5), read_response_now(conn))
        .await
        .ok()
        .flatten()
}

pub async fn read_response_now(conn: &mut TcpStream) -> Option<Response> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    Some(Response { status, head, body })
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Waits until the server closes `conn` (reading and discarding whatever it
/// sends); answers how long that took, or None if it stayed open `limit`.
pub async fn closed_within(conn: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match conn.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()?;
    Some(started.elapsed())
}

/// Writes `bytes` one at a time, `every` apart, until the server closes the
/// connection or they run out.
pub fn dribble(
    mut conn: TcpStream,
    bytes: Vec<u8>,
    every: Duration,
) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        let started = Instant::now();
        for byte in bytes {
            if conn.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(every).await;
        }
        // Then wait for the close (a 408 may come first).
        let _ = closed_within(&mut conn, Duration::from_secs(3)).await;
        started.elapsed()
    })
}

/// Opens a server-sent-events response with extra header lines; answers
/// the connection after its head was read (status 200 checked).
pub async fn open_events(server: &Served, path: &str, headers: &str) -> (TcpStream, Vec<u8>) {
    let mut conn = server.connect().await;
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n{headers}\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut chunk))
            .await
            .expect("a response head")
            .unwrap();
        assert!(n > 0, "closed before answering");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    (conn, buf[head_end..].to_vec())
}

/// Reads more of a chunked event stream into `seen` until `done` holds of
/// it; false if the stream ended or `wait` passed first.
pub async fn read_until(
    conn: &mut TcpStream,
    seen: &mut Vec<u8>,
    wait: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> bool {
    let mut chunk = [0u8; 65536];
    tokio::time::timeout(wait, async {
        loop {
            if done(seen) {
                return true;
            }
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return done(seen),
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// A chunked response's end (or the connection's).
pub fn ended(seen: &[u8]) -> bool {
    seen.ends_with(b"0\r\n\r\n")
}

/// The payload of the complete chunks of a chunked body.
pub fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    while let Some(end) = find(raw, b"\r\n") {
        let Ok(size) = usize::from_str_radix(&String::from_utf8_lossy(&raw[..end]), 16) else {
            break;
        };
        let start = end + 2;
        if size == 0 || raw.len() < start + size + 2 {
            break;
        }
        payload.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    payload
}

/// The seqs of the change events in a raw chunked stream, in order.
pub fn seqs_in(seen: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(&dechunk(seen)).to_string();
    let mut lines: Vec<&str> = text.split('\n').collect();
    // The last piece may be a line cut short.
    lines.pop();
    lines
        .into_iter()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|s| s.trim().parse().unwrap())
        .collect()
}

/// Writes contact `first` and a segment "All" that takes every contact with
/// an `n`, so that later writes make membership changes.
pub async fn segment_of_all(server: &Served, first: &str) {
    server
        .call(
            "PUT",
            &format!("/v1/contacts/{first}"),
            Some(json!({"properties": {"n": 0}})),
        )
        .await;
    let created = server
        .call(
            "POST",
            "/v1/segments",
            Some(json!({"name": "All", "kind": "dynamic", "condition": "n >= 0"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
}

/// Loads `n` contacts (in batches) into a server with one segment that takes
/// them all: n + 1 changes... one per contact entering.
pub async fn load(server: &Served, n: usize) {
    segment_of_all(server, "seed").await;
    for start in (0..n).step_by(5_000) {
        let contacts: Vec<Json> = (start..(start + 5_000).min(n))
            .map(|i| json!({"id": format!("c{i}"), "properties": {"n": i}}))
            .collect();
        let answer = server
            .call(
                "POST",
                "/v1/contacts:batch",
                Some(json!({"contacts": contacts})),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
}

pub fn bearer(key: &str) -> String {
    format!("authorization: Bearer {key}\r\n")
}

/// A second key of the server's workspace.
pub async fn second_key(server: &Served) -> (String, String) {
    let mut conn = server.connect().await;
    let path = format!("/v1/workspaces/{}/keys", server.workspace_id);
    send(&mut conn, "POST", &path, Some(ADMIN_KEY), None).await;
    let answer = read_response(&mut conn).await.unwrap();
    assert!(answer.status == 201 || answer.status == 200, "{answer:?}");
    let key = answer.json()["key"].as_str().unwrap().to_string();
    let id = key.chars().take(11).collect();
    (key, id)
}

pub async fn revoke(server: &Served, key_id: &str) {
    let mut conn = server.connect().await;
    let path = format!("/v1/workspaces/{}/keys/{key_id}", server.workspace_id);
    send(&mut conn, "DELETE", &path, Some(ADMIN_KEY), None).await;
    let answer = read_response(&mut conn).await.unwrap();
    assert!(answer.status < 300, "{answer:?}");
}
