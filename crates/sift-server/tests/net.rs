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
    _state: AppState,
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
            _state: state,
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

/// Opens a server-sent-events response with extra header lines; answers
/// the connection after its head was read (status 200 checked).
async fn open_events(server: &Served, path: &str, headers: &str) -> (TcpStream, Vec<u8>) {
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
async fn read_until(
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
fn ended(seen: &[u8]) -> bool {
    seen.ends_with(b"0\r\n\r\n")
}

/// The payload of the complete chunks of a chunked body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
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
fn seqs_in(seen: &[u8]) -> Vec<u64> {
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

/// Loads `n` contacts (in batches) into a server with one segment that takes
/// them all: n + 1 changes... one per contact entering.
async fn load(server: &Served, n: usize) {
    server
        .call(
            "PUT",
            "/v1/contacts/seed",
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

fn bearer(key: &str) -> String {
    format!("authorization: Bearer {key}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_replays_every_change_in_order_across_pages_and_resumes() {
    let server = Served::start(|_| {}).await;
    load(&server, 1_800).await;
    // The seed's entry, then one per contact.
    let total = 1_801u64;
    let (mut conn, mut seen) =
        open_events(&server, "/v1/changes/stream", &bearer(&server.key)).await;
    assert!(
        read_until(
            &mut conn,
            &mut seen,
            Duration::from_secs(10),
            |s| seqs_in(s).len() as u64 >= total
        )
        .await
    );
    assert_eq!(seqs_in(&seen), (0..total).collect::<Vec<_>>());
    // Live changes follow.
    server
        .call(
            "PUT",
            "/v1/contacts/live",
            Some(json!({"properties": {"n": 1}})),
        )
        .await;
    assert!(
        read_until(
            &mut conn,
            &mut seen,
            Duration::from_secs(5),
            |s| seqs_in(s).len() as u64 > total
        )
        .await
    );
    assert_eq!(seqs_in(&seen).last(), Some(&total));

    let (mut conn, mut seen) = open_events(
        &server,
        "/v1/changes/stream?after=700",
        &bearer(&server.key),
    )
    .await;
    assert!(
        read_until(&mut conn, &mut seen, Duration::from_secs(10), |s| seqs_in(
            s
        )
        .last()
            == Some(&total))
        .await
    );
    assert_eq!(seqs_in(&seen), (701..=total).collect::<Vec<_>>());
    let headers = format!("{}last-event-id: 1500\r\n", bearer(&server.key));
    let (mut conn, mut seen) = open_events(&server, "/v1/changes/stream?after=3", &headers).await;
    assert!(
        read_until(&mut conn, &mut seen, Duration::from_secs(10), |s| seqs_in(
            s
        )
        .last()
            == Some(&total))
        .await
    );
    assert_eq!(seqs_in(&seen), (1501..=total).collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_holds_nothing_other_clients_need() {
    // One read connection: a stalled stream holding it would stop everyone.
    let server = Served::start(|c| c.read_pool_size = 1).await;
    load(&server, 20_000).await;
    let total = 20_001u64;
    let segment = server.call("GET", "/v1/segments", None).await.json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Three clients open the stream and read nothing: their socket buffers
    // fill (each replay is megabytes) and the server must wait on them.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut conn = socket.connect(server.addr).await.unwrap();
        let request = format!(
            "GET /v1/changes/stream HTTP/1.1\r\nhost: test\r\n{}\r\n",
            bearer(&server.key)
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        stalled.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Meanwhile writes, pages of the log and other streams go on.
    for i in 0..5 {
        let asked = Instant::now();
        let answer = server
            .call(
                "PUT",
                &format!("/v1/contacts/w{i}"),
                Some(json!({"properties": {"n": i}})),
            )
            .await;
        assert_eq!(answer.status, 200);
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "a write took {:?}",
            asked.elapsed()
        );
    }
    let asked = Instant::now();
    let page = server
        .call(
            "GET",
            &format!("/v1/segments/{segment}/changes?limit=10"),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "a page took {:?}",
        asked.elapsed()
    );
    let end = total + 4;
    let (mut conn, mut seen) =
        open_events(&server, "/v1/changes/stream", &bearer(&server.key)).await;
    assert!(
        read_until(&mut conn, &mut seen, Duration::from_secs(20), |s| seqs_in(
            s
        )
        .last()
            == Some(&end))
        .await
    );
    assert_eq!(seqs_in(&seen), (0..=end).collect::<Vec<_>>());

    // A stalled client that reads at last gets everything, in order.
    let mut conn = stalled.pop().unwrap();
    let mut seen = Vec::new();
    let body = |s: &[u8]| find(s, b"\r\n\r\n").map_or(Vec::new(), |at| seqs_in(&s[at + 4..]));
    assert!(
        read_until(&mut conn, &mut seen, Duration::from_secs(20), |s| body(s)
            .last()
            == Some(&end))
        .await
    );
    assert_eq!(body(&seen), (0..=end).collect::<Vec<_>>());
    drop(stalled);
    server.stop().await;
}

/// A second key of the server's workspace.
async fn second_key(server: &Served) -> (String, String) {
    let mut conn = server.connect().await;
    let path = format!("/v1/workspaces/{}/keys", server.workspace_id);
    send(&mut conn, "POST", &path, Some(ADMIN_KEY), None).await;
    let answer = read_response(&mut conn).await.unwrap();
    assert!(answer.status == 201 || answer.status == 200, "{answer:?}");
    let key = answer.json()["key"].as_str().unwrap().to_string();
    let id = key.chars().take(11).collect();
    (key, id)
}

async fn revoke(server: &Served, key_id: &str) {
    let mut conn = server.connect().await;
    let path = format!("/v1/workspaces/{}/keys/{key_id}", server.workspace_id);
    send(&mut conn, "DELETE", &path, Some(ADMIN_KEY), None).await;
    let answer = read_response(&mut conn).await.unwrap();
    assert!(answer.status < 300, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_ends_its_change_streams_within_a_second() {
    let server = Served::start(|_| {}).await;
    load(&server, 10).await;
    let (key, key_id) = second_key(&server).await;
    let (mut revoked, mut seen) = open_events(&server, "/v1/changes/stream", &bearer(&key)).await;
    assert!(
        read_until(
            &mut revoked,
            &mut seen,
            Duration::from_secs(5),
            |s| seqs_in(s).len() == 11
        )
        .await
    );
    let (mut kept, mut kept_seen) =
        open_events(&server, "/v1/changes/stream", &bearer(&server.key)).await;
    assert!(
        read_until(
            &mut kept,
            &mut kept_seen,
            Duration::from_secs(5),
            |s| seqs_in(s).len() == 11
        )
        .await
    );

    revoke(&server, &key_id).await;
    let asked = Instant::now();
    assert!(
        read_until(&mut revoked, &mut seen, Duration::from_secs(1), ended).await,
        "the stream outlived its key"
    );
    assert!(asked.elapsed() < Duration::from_secs(1));
    // The other key's stream goes on.
    server
        .call(
            "PUT",
            "/v1/contacts/after",
            Some(json!({"properties": {"n": 1}})),
        )
        .await;
    assert!(
        read_until(
            &mut kept,
            &mut kept_seen,
            Duration::from_secs(5),
            |s| seqs_in(s).len() == 12
        )
        .await
    );
    assert_eq!(
        seqs_in(&seen).len(),
        11,
        "a change reached the revoked stream"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_ends_the_ui_sessions_made_from_it_and_their_live_streams() {
    let server = Served::start(|_| {}).await;
    load(&server, 10).await;
    let (key, key_id) = second_key(&server).await;
    let mut conn = server.connect().await;
    let form = format!("key={key}");
    let request = format!(
        "POST /ui/login HTTP/1.1\r\nhost: test\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
        form.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let signed = read_response(&mut conn).await.unwrap();
    assert_eq!(signed.status, 303, "{signed:?}");
    let cookie = signed
        .head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l[11..].trim().to_string())
        })
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let with_cookie = format!("cookie: {cookie}\r\n");
    let segment = server.call("GET", "/v1/segments", None).await.json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut streams = Vec::new();
    for path in [
        "/ui/live/sizes".to_string(),
        format!("/ui/live/segments/{segment}"),
        "/v1/changes/stream".to_string(),
    ] {
        let (mut conn, mut seen) = open_events(&server, &path, &with_cookie).await;
        assert!(
            read_until(&mut conn, &mut seen, Duration::from_secs(5), |s| find(
                s, b"\n\n"
            )
            .is_some())
            .await,
            "{path}"
        );
        streams.push((path, conn, seen));
    }

    revoke(&server, &key_id).await;
    let asked = Instant::now();
    for (path, mut conn, mut seen) in streams {
        let left = Duration::from_secs(1).saturating_sub(asked.elapsed());
        assert!(
            read_until(&mut conn, &mut seen, left, ended).await,
            "{path} outlived the key"
        );
    }
    // The session itself is over.
    let mut conn = server.connect().await;
    conn.write_all(
        format!("GET /ui/segments HTTP/1.1\r\nhost: test\r\n{with_cookie}\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let page = read_response(&mut conn).await.unwrap();
    assert_eq!(page.status, 303, "{page:?}");
    assert!(page.head.contains("/ui/login"));
    server.stop().await;
}
