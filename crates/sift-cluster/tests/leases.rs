//! Leases against a real 3-node NATS JetStream cluster: every partition
//! has exactly one owner, shared fairly; a node that dies has its
//! partitions taken over within 5 s; a node joining gets a fair share; the
//! loss of one NATS node changes nothing.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use sift_cluster::{LeaseConfig, LeaseEvent, Leases, PARTITIONS, connect, partition_lease};
use support::{NatsCluster, within};

fn partitions() -> Vec<String> {
    (0..PARTITIONS).map(partition_lease).collect()
}

async fn node(cluster: &NatsCluster, name: &str) -> Leases {
    // Until the cluster has elected its JetStream leader, creating the
    // buckets fails: retried for a while.
    let mut last = None;
    for _ in 0..100 {
        let js = connect(&cluster.urls()).await.expect("connect");
        match Leases::start(js, name, LeaseConfig::default(), partitions()).await {
            Ok((leases, _events)) => return leases,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("node {name} could not start: {last:?}");
}

/// Whether the nodes' leases cover every partition once, each node within
/// one of a fair share.
fn shared_fairly(nodes: &[&Leases]) -> bool {
    let owned: Vec<Vec<String>> = nodes.iter().map(|n| n.owned()).collect();
    let all: BTreeSet<&String> = owned.iter().flatten().collect();
    let total: usize = owned.iter().map(Vec::len).sum();
    let share = partitions().len().div_ceil(nodes.len());
    total == partitions().len()
        && all.len() == total
        && owned
            .iter()
            .all(|o| o.len() + 1 >= share && o.len() <= share)
}

/// No partition owned by two nodes at once.
fn disjoint(nodes: &[&Leases]) -> bool {
    let owned: Vec<String> = nodes.iter().flat_map(|n| n.owned()).collect();
    let distinct: BTreeSet<&String> = owned.iter().collect();
    distinct.len() == owned.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_shared_taken_over_and_rebalanced() {
    let mut cluster = NatsCluster::start(3);
    let a = node(&cluster, "a").await;
    let b = node(&cluster, "b").await;
    let c = node(&cluster, "c").await;
    let took = within(Duration::from_secs(15), || shared_fairly(&[&a, &b, &c])).await;
    assert!(
        took.is_some(),
        "not shared fairly: a {:?} b {:?} c {:?}",
        a.owned(),
        b.owned(),
        c.owned()
    );

    // A node dies without handing anything back.
    c.abort();
    let took = within(Duration::from_secs(10), || shared_fairly(&[&a, &b])).await;
    let took = took.unwrap_or_else(|| panic!("no takeover: a {:?} b {:?}", a.owned(), b.owned()));
    eprintln!("takeover after a node died: {took:?}");
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    assert!(disjoint(&[&a, &b]));

    // A node joins: it gets a fair share, handed back one at a time.
    let d = node(&cluster, "d").await;
    let mut overlap = false;
    let took = within(Duration::from_secs(15), || {
        overlap |= !disjoint(&[&a, &b, &d]);
        shared_fairly(&[&a, &b, &d])
    })
    .await;
    assert!(took.is_some(), "d got {:?}", d.owned());
    assert!(!overlap, "a partition had two owners while d joined");

    // Every node sees who owns what.
    let seen = within(Duration::from_secs(5), || {
        partitions().iter().all(|key| {
            let owner = [("a", &a), ("b", &b), ("d", &d)]
                .iter()
                .find(|(_, n)| n.owned().contains(key))
                .map(|(name, _)| name.to_string());
            [&a, &b, &d].iter().all(|n| n.owner_of(key) == owner)
        })
    })
    .await;
    assert!(seen.is_some(), "the nodes disagree on the owners");

    // One NATS node lost: the buckets keep a quorum (their RAFT groups
    // may elect new leaders, stalling JetStream for seconds), and nothing
    // moves.
    let before: Vec<Vec<String>> = [&a, &b, &d].iter().map(|n| n.owned()).collect();
    cluster.kill(0);
    let mut moved = None;
    within(Duration::from_secs(12), || {
        let now: Vec<Vec<String>> = [&a, &b, &d].iter().map(|n| n.owned()).collect();
        if now != before && moved.is_none() {
            moved = Some(now);
        }
        false
    })
    .await;
    assert!(
        moved.is_none(),
        "leases moved when one NATS node died: {before:?} then {moved:?}"
    );
    assert!(shared_fairly(&[&a, &b, &d]), "after a NATS node died");
    let after: Vec<Vec<String>> = [&a, &b, &d].iter().map(|n| n.owned()).collect();
    assert_eq!(before, after, "leases moved when one NATS node died");
    cluster.restart(0);

    // A node leaving hands its leases back: the others take them without
    // waiting for them to expire (the NATS node back first).
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.stop().await;
    let took = within(Duration::from_secs(10), || shared_fairly(&[&a, &b])).await;
    eprintln!("takeover after a node left: {took:?}");
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(5)),
        "took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_report_each_lease_taken_and_handed_back() {
    let cluster = NatsCluster::start(1);
    let config = LeaseConfig {
        replicas: 1,
        ..LeaseConfig::default()
    };
    let mut started = None;
    for _ in 0..100 {
        let js = connect(&cluster.urls()).await.expect("connect");
        if let Ok(s) = Leases::start(js, "solo", config.clone(), vec!["w.job.runner".into()]).await
        {
            started = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (leases, mut events) = started.expect("start");
    let first = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
    assert_eq!(
        first.ok().flatten(),
        Some(LeaseEvent::Acquired("w.job.runner".into()))
    );
    // What it covers goes away: handed back.
    leases.set_resources(Vec::new());
    let next = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
    assert_eq!(
        next.ok().flatten(),
        Some(LeaseEvent::Released("w.job.runner".into()))
    );
    assert!(leases.owned().is_empty());

    // A bad node name is refused before anything is written.
    let js = connect(&cluster.urls()).await.expect("connect");
    let refused = Leases::start(js, "a.b", config, Vec::new()).await;
    assert!(matches!(
        refused,
        Err(sift_cluster::ClusterError::NodeName(_))
    ));
}
