//! Connections: idle and dribbling clients are closed on time while others
//! are served, a slow body gets a 408, the connection cap answers 503, and
//! an early answer to a request with a late body leaves the connection
//! usable.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::common::*;

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
    segment_of_all(&server, "first").await;
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
