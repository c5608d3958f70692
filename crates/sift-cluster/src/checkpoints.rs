//! Partition checkpoints in a JetStream object store (docs/cluster.md
//! "Checkpoints and takeover"): the owner puts the newest, tagged with the
//! input sequence it covers; a node taking the partition over gets it,
//! then replays the partition's input after that sequence.

use std::path::Path;

use async_nats::jetstream::object_store::{self, ObjectMetadata};
use async_nats::jetstream::{self, stream::StorageType};

use crate::ClusterError;

/// The metadata key holding the input sequence a checkpoint covers.
const COVERED: &str = "covered";

pub struct CheckpointStore {
    store: object_store::ObjectStore,
}

fn failed(what: String, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::JetStream {
        what,
        message: e.to_string(),
    }
}

impl CheckpointStore {
    /// Opens the bucket `sift_checkpoints`, creating it with `replicas`
    /// copies when missing.
    pub async fn open(
        js: &jetstream::Context,
        replicas: usize,
    ) -> Result<CheckpointStore, ClusterError> {
        let name = "sift_checkpoints";
        let store = match js
            .create_object_store(object_store::Config {
                bucket: name.into(),
                num_replicas: replicas,
                storage: StorageType::File,
                ..Default::default()
            })
            .await
        {
            Ok(store) => store,
            Err(create) => js
                .get_object_store(name)
                .await
                .map_err(|e| failed(format!("the bucket {name}"), format!("{create}; {e}")))?,
        };
        Ok(CheckpointStore { store })
    }

    fn name(workspace: &str, partition: u16) -> String {
        format!("{workspace}.p{partition:02}")
    }

    /// Stores the file at `path` as the partition's newest checkpoint,
    /// covering its input through stream sequence `covered`. The object
    /// replaces the previous one only once wholly stored.
    pub async fn put(
        &self,
        workspace: &str,
        partition: u16,
        covered: u64,
        path: &Path,
    ) -> Result<(), ClusterError> {
        let name = Self::name(workspace, partition);
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| failed(format!("reading {}", path.display()), e))?;
        let meta = ObjectMetadata {
            name: name.clone(),
            metadata: [(COVERED.to_string(), covered.to_string())].into(),
            ..Default::default()
        };
        self.store
            .put(meta, &mut file)
            .await
            .map_err(|e| failed(format!("the checkpoint {name}"), e))?;
        Ok(())
    }

    /// Writes the partition's newest checkpoint to `dest` and answers the
    /// input sequence it covers; `None` when it has none.
    pub async fn get(
        &self,
        workspace: &str,
        partition: u16,
        dest: &Path,
    ) -> Result<Option<u64>, ClusterError> {
        let name = Self::name(workspace, partition);
        let mut object = match self.store.get(&name).await {
            Ok(object) => object,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(format!("the checkpoint {name}"), e)),
        };
        let covered = object
            .info
            .metadata
            .get(COVERED)
            .and_then(|c| c.parse::<u64>().ok())
            .ok_or_else(|| failed(format!("the checkpoint {name}"), "no covered sequence"))?;
        // Written beside, then renamed: a reader never sees half of one.
        let partial = dest.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| failed(format!("writing {}", partial.display()), e))?;
        tokio::io::copy(&mut object, &mut file)
            .await
            .map_err(|e| failed(format!("the checkpoint {name}"), e))?;
        file.sync_all()
            .await
            .map_err(|e| failed(format!("writing {}", partial.display()), e))?;
        tokio::fs::rename(&partial, dest)
            .await
            .map_err(|e| failed(format!("writing {}", dest.display()), e))?;
        Ok(Some(covered))
    }
}
