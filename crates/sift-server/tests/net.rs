//! The server on a real loopback socket: connection timeouts, the
//! connection cap, late request bodies, and change streams under load and
//! revocation. Timeouts are shortened in each test's `Config`, so the whole
//! file runs in seconds.

use std::time::Duration;

use serde_json::{Value as Json, json};
use sift_server::{AppState, Config};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const ADMIN_KEY: &str = "admin-key-for-net-tests";

struct Served {
    addr: std::net::SocketAddr,
    state: AppState,
    key: String,
    workspace_id: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: TempDir,
}

impl Served {
    async fn start(configure: impl FnOnce(&mut Config)) -> Served {
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
            state,
            key,
            workspace_id,
            stop: Some(stop),
            serving,
            _dir: dir,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// One request on a fresh connection; answers status, headers and body.
    async fn call(&self, method: &str, path: &str, body: Option<Json>) -> Response {
        let mut conn = self.connect().await;
        send(&mut conn, method, path, Some(&self.key), body).await;
        read_response(&mut conn).await.expect("a response")
    }

    async fn stop(mut self) {
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
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or(Json::Null)
    }

    fn closes(&self) -> bool {
        self.head
            .to_ascii_lowercase()
            .contains("\r\nconnection: close")
    }
}

async fn send(
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
async fn read_response(conn: &mut TcpStream) -> Option<Response> {
    tokio::time::timeout(Duration::from_secs(5), read_response_now(conn))
        .await
        .ok()
        .flatten()
}

async fn read_response_now(conn: &mut TcpStream) -> Option<Response> {
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Waits until the server closes `conn` (reading and discarding whatever it
/// sends); answers how long that took, or None if it stayed open `limit`.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> Option<Duration> {
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
fn dribble(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_dribbling_connections_are_closed_on_time_while_others_are_served() {
    let header = Duration::from_millis(400);
    let body = Duration::from_millis(600);
    let idle = Duration::from_millis(800);
    let server = Served::start(|c| {
        c.header_read_timeout = header;
        c.body_read_timeout = body;
        c.idle_timeout = idle;
    })
    .await;
    // Membership changes need a segment.
    server
        .call(
            "PUT",
            "/v1/contacts/first",
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
    let started = Instant::now();

    // Connected, never sends a byte.
    let mut conn = server.connect().await;
    let silent =
        tokio::spawn(async move { closed_within(&mut conn, Duration::from_secs(3)).await });
    // One request, then idles on keep-alive.
    let mut conn = server.connect().await;
    send(&mut conn, "GET", "/healthz", None, None).await;
    assert_eq!(read_response(&mut conn).await.unwrap().status, 200);
    let kept = tokio::spawn(async move { closed_within(&mut conn, Duration::from_secs(3)).await });
    // A request head, a byte every 50 ms.
    let head = b"GET /healthz HTTP/1.1\r\nhost: test\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n".to_vec();
    let slow_head = dribble(server.connect().await, head, Duration::from_millis(50));
    // A complete head, then a small body a byte every 50 ms.
    let mut small = server.connect().await;
    let payload = json!({"properties": {"note": "x".repeat(200)}}).to_string();
    let prefix = format!(
        "PUT /v1/contacts/slow HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n\r\n",
        server.key,
        payload.len()
    );
    small.write_all(prefix.as_bytes()).await.unwrap();
    let slow_body = dribble(small, payload.into_bytes(), Duration::from_millis(50));
    // The same with a body too big to be read ahead of the handler.
    let mut large = server.connect().await;
    let big = json!({"contacts": [{"id": "big", "properties": {"note": "y".repeat(100_000)}}]})
        .to_string();
    let prefix = format!(
        "POST /v1/contacts:batch HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n\r\n",
        server.key,
        big.len()
    );
    large.write_all(prefix.as_bytes()).await.unwrap();
    let slow_large = dribble(large, big.into_bytes(), Duration::from_millis(50));
    // A change stream: a request in flight, never idle, however quiet.
    let mut stream = server.connect().await;
    send(
        &mut stream,
        "GET",
        "/v1/changes/stream",
        Some(&server.key),
        None,
    )
    .await;

    // Meanwhile a normal client is served, promptly, every 100 ms.
    let mut served = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        let asked = Instant::now();
        let answer = server
            .call(
                "PUT",
                &format!("/v1/contacts/c{served}"),
                Some(json!({"properties": {"n": served}})),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "a normal request took {:?}",
            asked.elapsed()
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served >= 8);

    let margin = Duration::from_millis(700);
    let took = silent
        .await
        .unwrap()
        .expect("a silent connection is closed");
    assert!(
        took >= idle - Duration::from_millis(50) && took < idle + margin,
        "silent: {took:?}"
    );
    let took = kept
        .await
        .unwrap()
        .expect("an idle keep-alive connection is closed");
    assert!(
        took >= idle - Duration::from_millis(50) && took < idle + margin,
        "kept: {took:?}"
    );
    let took = slow_head.await.unwrap();
    assert!(
        took < header + margin,
        "a dribbled head was cut after {took:?}"
    );
    let took = slow_body.await.unwrap();
    assert!(
        took >= body - Duration::from_millis(50) && took < body + margin,
        "a dribbled small body was cut after {took:?}"
    );
    let took = slow_large.await.unwrap();
    assert!(
        took < body + margin,
        "a dribbled large body was cut after {took:?}"
    );

    // The stream outlived every timeout, and still delivers.
    server
        .call(
            "PUT",
            "/v1/contacts/late",
            Some(json!({"properties": {"n": 1}})),
        )
        .await;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 8192];
    let delivered = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the change stream was closed");
            seen.extend_from_slice(&chunk[..n]);
            if find(&seen, b"event: change").is_some() {
                return;
            }
        }
    })
    .await;
    assert!(
        delivered.is_ok(),
        "the stream delivered no change: {}",
        String::from_utf8_lossy(&seen)
    );
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_is_answered_408_and_the_connection_closed() {
    let server = Served::start(|c| c.body_read_timeout = Duration::from_millis(300)).await;
    let mut conn = server.connect().await;
    let prefix = format!(
        "PUT /v1/contacts/slow HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\ncontent-length: 40\r\n\r\n{{\"prop",
        server.key
    );
    conn.write_all(prefix.as_bytes()).await.unwrap();
    let answer = read_response(&mut conn).await.expect("an answer");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.json()["error"]["code"], "request_timeout");
    assert!(answer.closes(), "{}", answer.head);
    assert!(
        closed_within(&mut conn, Duration::from_secs(2))
            .await
            .is_some()
    );
    // Nothing was written.
    let missing = server.call("GET", "/v1/contacts/slow", None).await;
    assert_eq!(missing.status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_client_gets_a_503_and_a_freed_slot_is_reused() {
    let server = Served::start(|c| {
        c.max_connections = 3;
        c.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = server.connect().await;
        send(&mut conn, "GET", "/healthz", None, None).await;
        assert_eq!(read_response(&mut conn).await.unwrap().status, 200);
        held.push(conn);
    }
    for _ in 0..5 {
        let refused = server.call("GET", "/healthz", None).await;
        assert_eq!(refused.status, 503, "{refused:?}");
        assert_eq!(refused.json()["error"]["code"], "unavailable");
        assert!(
            refused.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("connections")
        );
        assert!(refused.closes());
        assert!(refused.head.to_ascii_lowercase().contains("retry-after: 1"));
    }
    // A held connection is still served.
    send(&mut held[0], "GET", "/healthz", None, None).await;
    assert_eq!(read_response(&mut held[0]).await.unwrap().status, 200);
    // Closing one frees its slot for the next client.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let answer = server.call("GET", "/healthz", None).await;
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 503);
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_rejected_before_its_late_body_leaves_the_connection_usable() {
    let server = Served::start(|_| {}).await;
    let mut conn = server.connect().await;
    // No key: the handler answers 401 without needing the body, which
    // arrives after a pause.
    let body = json!({"properties": {"email": "late@example.com"}}).to_string();
    let head = format!(
        "PUT /v1/contacts/late HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    conn.write_all(body.as_bytes()).await.unwrap();
    let first = read_response(&mut conn).await.expect("a first answer");
    assert_eq!(first.status, 401, "{first:?}");
    // A small body is read, so the connection stays open for the next one.
    assert!(!first.closes(), "{}", first.head);
    send(&mut conn, "GET", "/healthz", None, None).await;
    let second = read_response(&mut conn)
        .await
        .expect("the connection still serves");
    assert_eq!(second.status, 200, "{second:?}");

    // A body too large to read ahead: the answer says the connection closes.
    let mut conn = server.connect().await;
    let big = "z".repeat(200_000);
    let head = format!(
        "GET /v1/nowhere HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n",
        big.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&big.as_bytes()[..1000]).await.unwrap();
    let first = read_response(&mut conn).await.expect("an answer");
    assert_eq!(first.status, 404, "{first:?}");
    assert!(
        first.closes(),
        "an unread body must close the connection: {}",
        first.head
    );
    server.stop().await;
}
