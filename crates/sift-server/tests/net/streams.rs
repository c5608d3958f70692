//! Change streams on a socket: every change in order across pages, resumed
//! by `after` and `Last-Event-ID`; a stalled client holds nothing others
//! need; revoking a key ends its streams (API and UI) and sessions.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::common::*;

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
    // Seqs start at 1.
    assert_eq!(seqs_in(&seen), (1..=total).collect::<Vec<_>>());
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
    let total = total + 1;
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
    // Seqs start at 1: the load's changes, then the five writes.
    let end = total + 5;
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
    assert_eq!(seqs_in(&seen), (1..=end).collect::<Vec<_>>());

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
    assert_eq!(body(&seen), (1..=end).collect::<Vec<_>>());
    drop(stalled);
    server.stop().await;
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
