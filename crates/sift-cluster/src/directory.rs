//! Where each node answers HTTP: the bucket `sift_nodes`, node name →
//! base URL, so that a node can pass a request to the node that owns what
//! it is about.

use async_nats::jetstream::{self, kv};

use crate::ClusterError;

pub struct Directory {
    store: kv::Store,
}

fn failed(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::JetStream {
        what: what.to_string(),
        message: e.to_string(),
    }
}

impl Directory {
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Directory, ClusterError> {
        let store = match js.get_key_value("sift_nodes").await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: "sift_nodes".into(),
                    history: 1,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| failed("the bucket sift_nodes", e))?,
        };
        Ok(Directory { store })
    }

    /// Records that `node` answers at `url`. Retried for a few seconds: a
    /// bucket another node has just created takes a moment to accept writes.
    pub async fn publish(&self, node: &str, url: &str) -> Result<(), ClusterError> {
        let mut tries = 0;
        loop {
            match self.store.put(node, url.to_string().into()).await {
                Ok(_) => return Ok(()),
                Err(e) if tries >= 25 => return Err(failed("the bucket sift_nodes", e)),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Where `node` answers, if it said.
    pub async fn url_of(&self, node: &str) -> Result<Option<String>, ClusterError> {
        let value = self
            .store
            .get(node)
            .await
            .map_err(|e| failed("the bucket sift_nodes", e))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
