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
/// The metadata key listing a directory checkpoint's files, `/`-separated.
const FILES: &str = "files";

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
    /// Stores every file of `dir` as the newest checkpoint named `name`,
    /// covering the input through stream sequence `covered`: each file as
    /// an object `name.<covered>.<file>`, then the object `name` listing
    /// them, so that a reader finds either the previous checkpoint or this
    /// one whole. The previous one's files are deleted afterwards.
    pub async fn put_dir(&self, name: &str, covered: u64, dir: &Path) -> Result<(), ClusterError> {
        let previous = self.manifest(name).await?;
        let mut files = Vec::new();
        let mut listing = tokio::fs::read_dir(dir)
            .await
            .map_err(|e| failed(format!("reading {}", dir.display()), e))?;
        while let Some(entry) = listing
            .next_entry()
            .await
            .map_err(|e| failed(format!("reading {}", dir.display()), e))?
        {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let mut file = tokio::fs::File::open(entry.path())
                .await
                .map_err(|e| failed(format!("reading {file_name}"), e))?;
            let object = format!("{name}.{covered}.{file_name}");
            self.store
                .put(object.as_str(), &mut file)
                .await
                .map_err(|e| failed(format!("the object {object}"), e))?;
            files.push(file_name);
        }
        let meta = ObjectMetadata {
            name: name.to_string(),
            metadata: [
                (COVERED.to_string(), covered.to_string()),
                (FILES.to_string(), files.join("/")),
            ]
            .into(),
            ..Default::default()
        };
        self.store
            .put(meta, &mut &b""[..])
            .await
            .map_err(|e| failed(format!("the checkpoint {name}"), e))?;
        if let Some((old, old_files)) = previous
            && old != covered
        {
            for file in old_files {
                let _ = self.store.delete(format!("{name}.{old}.{file}")).await;
            }
        }
        Ok(())
    }

    /// The covered sequence and file names of checkpoint `name`.
    async fn manifest(&self, name: &str) -> Result<Option<(u64, Vec<String>)>, ClusterError> {
        let info = match self.store.info(name).await {
            Ok(info) => info,
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(format!("the checkpoint {name}"), e)),
        };
        let covered = info
            .metadata
            .get(COVERED)
            .and_then(|c| c.parse::<u64>().ok())
            .ok_or_else(|| failed(format!("the checkpoint {name}"), "no covered sequence"))?;
        let files = info
            .metadata
            .get(FILES)
            .map(|f| {
                f.split('/')
                    .filter(|f| !f.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some((covered, files)))
    }

    /// Writes the files of checkpoint `name` into `dest` (a directory that
    /// exists) and answers the sequence it covers; `None` when there is
    /// none yet.
    pub async fn get_dir(&self, name: &str, dest: &Path) -> Result<Option<u64>, ClusterError> {
        let Some((covered, files)) = self.manifest(name).await? else {
            return Ok(None);
        };
        for file_name in files {
            let object = format!("{name}.{covered}.{file_name}");
            let mut reader = self
                .store
                .get(object.as_str())
                .await
                .map_err(|e| failed(format!("the object {object}"), e))?;
            let path = dest.join(&file_name);
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| failed(format!("writing {}", path.display()), e))?;
            tokio::io::copy(&mut reader, &mut file)
                .await
                .map_err(|e| failed(format!("the object {object}"), e))?;
            file.sync_all()
                .await
                .map_err(|e| failed(format!("writing {}", path.display()), e))?;
        }
        Ok(Some(covered))
    }
}
