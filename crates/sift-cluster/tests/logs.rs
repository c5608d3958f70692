//! The partition input log, the change log and the checkpoint store
//! against a real 3-node NATS JetStream cluster: a stale owner is fenced
//! off, a replay sees a partition's inputs in order, a partition replayed
//! after a takeover records each change exactly once with gapless seqs,
//! a checkpoint comes back whole, and all of it survives one NATS node.

mod support;

use std::time::Duration;

use bytes::Bytes;
use sift_cluster::{
    AppendError, ChangeLog, ChangePublisher, CheckpointStore, PartitionLog, connect,
};
use support::NatsCluster;

/// Retries `open` until the cluster has a JetStream leader.
async fn ready<T, F, Fut>(mut open: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sift_cluster::ClusterError>>,
{
    let mut last = None;
    for _ in 0..100 {
        match open().await {
            Ok(t) => return t,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("JetStream never became ready: {last:?}");
}

fn text(payload: &Bytes) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_are_fenced_and_replayed_in_order() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let log = ready(|| async { PartitionLog::open(connect(&urls).await?, "ws_a", 3).await }).await;
    // The owner of partition 3 writes, with another partition between.
    let mut last = log.last(3).await.unwrap();
    assert_eq!(last, 0);
    for i in 0..3 {
        last = log
            .append(3, last, Bytes::from(format!("p3 #{i}")))
            .await
            .unwrap();
        log.append(
            4,
            log.last(4).await.unwrap(),
            Bytes::from(format!("p4 #{i}")),
        )
        .await
        .unwrap();
    }
    // Another node that still thinks the partition is at its first input.
    let other = PartitionLog::open(connect(&urls).await.unwrap(), "ws_a", 3)
        .await
        .unwrap();
    let stale = other.append(3, 1, Bytes::from("stale")).await;
    assert!(matches!(stale, Err(AppendError::Fenced(3))), "{stale:?}");

    let mut seen = Vec::new();
    let end = log
        .replay(3, 0, &mut |seq, payload| seen.push((seq, text(&payload))))
        .await
        .unwrap();
    assert_eq!(end, last);
    let texts: Vec<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["p3 #0", "p3 #1", "p3 #2"]);
    // After a checkpoint covering the first input: the two after it.
    let mut after = Vec::new();
    log.replay(3, seen[0].0, &mut |_, payload| after.push(text(&payload)))
        .await
        .unwrap();
    assert_eq!(after, ["p3 #1", "p3 #2"]);

    // One NATS node lost: the stream keeps a quorum and takes writes.
    cluster.kill(1);
    let more = log.append(3, last, Bytes::from("p3 #3")).await;
    assert!(more.is_ok(), "{more:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_partition_records_each_change_once() {
    let cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let log = ready(|| async { ChangeLog::open(connect(&urls).await?, "ws_b", 3).await }).await;

    // Owner A publishes changes 1..5 of partition 7, partition 2's owner
    // publishes beside it; then A dies.
    let mut a = ChangePublisher::resume(log.clone(), 7).await.unwrap();
    let mut other = ChangePublisher::resume(log.clone(), 2).await.unwrap();
    for n in 1..=5 {
        assert!(
            a.publish(n, Bytes::from(format!("7:{n}")))
                .await
                .unwrap()
                .is_some()
        );
        if n % 2 == 0 {
            other
                .publish(n / 2, Bytes::from(format!("2:{}", n / 2)))
                .await
                .unwrap();
        }
    }
    // Owner B replays the partition: it produces changes 1..8 again.
    let mut b = ChangePublisher::resume(log.clone(), 7).await.unwrap();
    assert_eq!(b.last_number(), 5);
    let mut published = 0;
    for n in 1..=8 {
        if b.publish(n, Bytes::from(format!("7:{n}")))
            .await
            .unwrap()
            .is_some()
        {
            published += 1;
        }
    }
    assert_eq!(published, 3, "only 6, 7 and 8 were new");
    // A, stale, cannot write after B.
    let stale = a.publish(6, Bytes::from("stale")).await;
    assert!(matches!(stale, Err(AppendError::Fenced(7))), "{stale:?}");

    let all = log.read(0, 1_000).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|c| c.seq).collect();
    assert_eq!(
        seqs,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "gapless from 1"
    );
    let of_7: Vec<u64> = all
        .iter()
        .filter(|c| c.partition == 7)
        .map(|c| c.number)
        .collect();
    assert_eq!(
        of_7,
        (1..=8).collect::<Vec<_>>(),
        "each change of partition 7 once, in order"
    );
    assert!(
        all.iter()
            .all(|c| text(&c.payload) == format!("{}:{}", c.partition, c.number))
    );
    // Reading from the middle, a page at a time.
    let page = log.read(3, 4).await.unwrap();
    assert_eq!(page.iter().map(|c| c.seq).collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert!(log.read(all.len() as u64, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_comes_back_whole_with_what_it_covers() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let js = connect(&urls).await.unwrap();
    let store = ready(|| CheckpointStore::open(&js, 3)).await;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("p05.db");
    // 3 MB that are not all alike (chunks must come back in order).
    let bytes: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&source, &bytes).unwrap();

    let dest = dir.path().join("restored.db");
    assert_eq!(store.get("ws_c", 5, &dest).await.unwrap(), None);
    store.put("ws_c", 5, 42, &source).await.unwrap();
    // A newer one replaces it.
    store.put("ws_c", 5, 57, &source).await.unwrap();
    cluster.kill(2);
    // A client that was connected to the killed node answers "no
    // responders" until it has moved to another: a taker retries.
    let mut got = None;
    for _ in 0..50 {
        match store.get("ws_c", 5, &dest).await {
            Ok(covered) => {
                got = Some(covered);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(got, Some(Some(57)));
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
}
