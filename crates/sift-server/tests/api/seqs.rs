//! Seqs start at 1 (docs/api.md "Pagination", "The change stream"): a fresh
//! workspace's first change is seq 1, so 0 is a client's "nothing seen
//! yet": `after=0` and `Last-Event-ID: 0` are the same as no `after`, and
//! resuming after any seq N gets exactly what followed it.

use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::changes::Stream;
use crate::common::Server;

fn seqs(changes: &[Json]) -> Vec<u64> {
    changes.iter().map(|c| c["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn the_first_change_of_a_fresh_workspace_is_seq_1() {
    let server = Server::new();
    let spain = server.segment("Spain", "country = \"ES\"").await;
    server.put_contact("ana", json!({"country": "ES"})).await;
    let log = server.get(&format!("/v1/segments/{spain}/changes")).await;
    assert_eq!(log["items"][0]["seq"], 1, "{log:#}");
    assert_eq!(log["items"][0]["contact_id"], "ana");
    // Numbering goes on across a restart.
    let server = server.restart();
    server.put_contact("bea", json!({"country": "ES"})).await;
    assert_eq!(seqs(&server.changes(&spain).await), [1, 2]);
}

#[tokio::test]
async fn after_0_is_the_same_as_no_after() {
    let server = Server::new();
    let spain = server.segment("Spain", "country = \"ES\"").await;
    for id in ["a", "b", "c"] {
        server.put_contact(id, json!({"country": "ES"})).await;
    }
    let none = server.get(&format!("/v1/segments/{spain}/changes")).await;
    let zero = server
        .get(&format!("/v1/segments/{spain}/changes?after=0"))
        .await;
    assert_eq!(zero, none);
    assert_eq!(seqs(none["items"].as_array().unwrap()), [1, 2, 3]);

    let key = server.key.clone();
    let from_start = Stream::open(&server, &key, "", None).await.take(3).await;
    assert_eq!(seqs(&from_start), [1, 2, 3]);
    let by_query = Stream::open(&server, &key, "?after=0", None)
        .await
        .take(3)
        .await;
    assert_eq!(by_query, from_start);
    let by_header = Stream::open(&server, &key, "", Some("0"))
        .await
        .take(3)
        .await;
    assert_eq!(by_header, from_start);
}

/// A client that handled seqs up to N (0: none) and resumes with
/// `after=N` misses nothing and repeats nothing, in the pages and the
/// stream alike.
#[tokio::test]
async fn resuming_after_any_seq_misses_nothing() {
    let server = Server::new();
    let everyone = server.segment("Everyone", "").await;
    for i in 0..5 {
        server.put_contact(&format!("c{i}"), json!({})).await;
    }
    let all = server.changes(&everyone).await;
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
    let key = server.key.clone();
    for n in 0..=all.len() {
        let page = server
            .get(&format!("/v1/segments/{everyone}/changes?after={n}"))
            .await;
        assert_eq!(page["items"].as_array().unwrap(), &all[n..], "after={n}");
        let mut stream = Stream::open(&server, &key, &format!("?after={n}"), None).await;
        assert_eq!(stream.take(all.len() - n).await, all[n..], "after={n}");
        assert!(
            stream
                .next_within(Duration::from_millis(100))
                .await
                .is_none(),
            "after={n}: nothing more"
        );
    }
}
