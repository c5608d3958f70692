//! The web UI through the cluster: a sign-in link followed through a node
//! that does not lead, and the segments page through any node.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Cluster;
use super::support::HttpClient;

/// Follows the printed sign-in link through a node that does not lead;
/// answers the session cookie.
pub async fn sign_in(http: &HttpClient, cluster: &Cluster) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let link = loop {
        if let Some(link) = cluster.seen.lock().unwrap().sign_in.clone() {
            break link;
        }
        assert!(Instant::now() < deadline, "no sign-in link printed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let leader = cluster.leader().unwrap();
    let other = (leader + 1) % 3;
    let addr = cluster.seen.lock().unwrap().addr[&cluster.nodes[other].name].clone();
    let request = hyper::Request::builder()
        .uri(format!("http://{addr}{link}"))
        .body(http_body_util::Full::new(hyper::body::Bytes::new()))
        .unwrap();
    let response = http.request(request).await.unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sift_session="))
        .expect("the sign-in link sets a session cookie");
    cookie.split(';').next().unwrap().to_string()
}

/// The status of the segments page with a session cookie (200 signed in,
/// a redirect to the sign-in page when not), through a random node.
pub async fn ui_status(http: &HttpClient, addrs: &Arc<Mutex<Vec<String>>>, cookie: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let addr = {
            let addrs = addrs.lock().unwrap();
            addrs[rand::random_range(0..addrs.len())].clone()
        };
        let request = hyper::Request::builder()
            .uri(format!("http://{addr}/ui/segments"))
            .header("cookie", cookie)
            .body(http_body_util::Full::new(hyper::body::Bytes::new()))
            .unwrap();
        if let Ok(response) = http.request(request).await {
            let status = response.status().as_u16();
            if status != 503 {
                return status;
            }
        }
        assert!(Instant::now() < deadline, "the web UI never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
