//! Server state: the catalog, the keys and the open workspaces
//! (`workspace/`), and whether their background tasks run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sift_engine::{Workspace, Write};
use sift_store::{Catalog, StoreError, WorkspaceRow, hash_key};
use tokio::sync::watch;

pub use crate::config::Config;
use crate::error::ApiError;
pub use crate::workspace::WorkspaceHandle;
use crate::workspace::WorkspaceResult;
pub use crate::written::Written;

/// The handlers' face of a workspace: here, above the service, since it
/// speaks the API's errors and the service does not.
impl WorkspaceHandle {
    /// [`WorkspaceService::write`](crate::workspace::WorkspaceService::write)
    /// for closures that fail with the API's errors: naming the type once
    /// here spares every handler from spelling it out (inference cannot
    /// find it through the two `?`s of a handler).
    pub async fn write<T>(
        &self,
        f: impl FnOnce(&mut Workspace, i64) -> Result<(Write, T), ApiError>,
    ) -> Result<(Write, T), ApiError> {
        self.service.write(f).await
    }
}

pub struct Inner {
    pub config: Config,
    catalog: Mutex<Catalog>,
    keys: RwLock<HashMap<String, String>>,
    workspaces: RwLock<HashMap<String, Arc<WorkspaceHandle>>>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Turns true when the server starts shutting down: responses that would
    /// never end by themselves (the change stream) end on it, so that a
    /// graceful shutdown does not wait for their clients forever.
    pub stopping: watch::Sender<bool>,
    pub sessions: crate::session::Sessions,
    /// Bumped by every key revocation and sign-out; long-lived responses
    /// re-check their credential on it (`revoke.rs`).
    pub revocations: watch::Sender<u64>,
    /// Whether workspaces start their background tasks: a serving state's
    /// do, an offline one's (`sift import`) do not.
    mode: Mode,
}

/// What a state is opened for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    Offline,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

fn prometheus() -> metrics_exporter_prometheus::PrometheusHandle {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // A second server in the same process (tests) shares the first recorder.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

pub use crate::ids::new_key;

impl AppState {
    /// Opens the data directory to serve it: the catalog and every
    /// workspace in it, each with its background tasks running.
    pub fn open(config: Config) -> WorkspaceResult<AppState> {
        AppState::open_as(config, Mode::Serve)
    }

    /// Opens the data directory for an offline tool (`sift import`): the
    /// workspaces load, with their timers caught up, but no background task
    /// starts, so nothing is delivered, run or synced from here.
    pub fn open_offline(config: Config) -> WorkspaceResult<AppState> {
        AppState::open_as(config, Mode::Offline)
    }

    fn open_as(config: Config, mode: Mode) -> WorkspaceResult<AppState> {
        // Before the workspaces load: what their starts record is kept.
        let metrics = prometheus();
        std::fs::create_dir_all(&config.data_dir).map_err(StoreError::from)?;
        let catalog = Catalog::open(&config.data_dir.join("catalog.db"))?;
        let mut workspaces = HashMap::new();
        for row in catalog.workspaces()? {
            workspaces.insert(row.id.clone(), open_workspace(&config, &row, mode)?);
        }
        let keys = catalog.key_hashes()?.into_iter().collect();
        Ok(AppState(Arc::new(Inner {
            config,
            catalog: Mutex::new(catalog),
            keys: RwLock::new(keys),
            workspaces: RwLock::new(workspaces),
            metrics,
            stopping: watch::channel(false).0,
            sessions: crate::session::Sessions::default(),
            revocations: watch::channel(0).0,
            mode,
        })))
    }

    pub fn workspace_for_key(&self, key: &str) -> Option<Arc<WorkspaceHandle>> {
        let hash = hash_key(key);
        let ws_id = read_lock(&self.keys).get(&hash)?.clone();
        self.workspace(&ws_id)
    }

    /// The workspace of a UI session cookie, while the session (and the key
    /// it was made from) is valid.
    pub fn workspace_for_session(&self, cookie: &str) -> Option<Arc<WorkspaceHandle>> {
        let keys = read_lock(&self.keys);
        let ws_id = self
            .sessions
            .workspace_of(cookie, |hash| keys.contains_key(hash))?;
        drop(keys);
        self.workspace(&ws_id)
    }

    pub fn key_hash_valid(&self, hash: &str) -> bool {
        read_lock(&self.keys).contains_key(hash)
    }

    /// Waits until every workspace has committed every write queued
    /// before now (cluster mode, before it copies the databases).
    pub async fn committed(&self) -> WorkspaceResult<()> {
        let handles: Vec<_> = read_lock(&self.workspaces).values().cloned().collect();
        for handle in handles {
            handle.service.committed().await?;
        }
        Ok(())
    }

    /// Fires every timer due by now in every workspace (what the timer
    /// tasks do when they wake): cluster mode fires them at the points of
    /// its log where they are due, so that a replay fires them at the same
    /// points whenever its timer tasks wake.
    pub async fn fire_due_timers(&self) -> WorkspaceResult<()> {
        let handles: Vec<_> = read_lock(&self.workspaces).values().cloned().collect();
        for handle in handles {
            handle.service.advance().await?;
        }
        Ok(())
    }

    /// Whether any workspace has workflow triggers waiting.
    pub fn has_queued_runs(&self) -> bool {
        read_lock(&self.workspaces)
            .values()
            .any(|handle| handle.service.queued_runs() > 0)
    }

    /// Runs every workflow trigger waiting in every workspace, cascades
    /// included. Cluster mode calls it at the points of its log where the
    /// runs happen, with no runner task (`Config::run_workflows` off), so
    /// that a replay of the log runs them at the same points.
    pub async fn run_queued_workflows(&self) -> WorkspaceResult<()> {
        let handles: Vec<_> = read_lock(&self.workspaces).values().cloned().collect();
        for handle in handles {
            while handle.service.queued_runs() > 0 {
                if handle.service.run_workflows().await?.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    pub fn workspace(&self, id: &str) -> Option<Arc<WorkspaceHandle>> {
        read_lock(&self.workspaces).get(id).cloned()
    }

    pub fn workspace_rows(&self) -> Vec<(String, String)> {
        let map = read_lock(&self.workspaces);
        let mut rows: Vec<(String, String)> = map
            .values()
            .map(|w| (w.id.clone(), w.name.clone()))
            .collect();
        rows.sort();
        rows
    }

    pub fn is_admin(&self, key: &str) -> bool {
        self.config.admin_key.as_deref().is_some_and(|admin| {
            !admin.is_empty() && constant_time_eq(admin.as_bytes(), key.as_bytes())
        })
    }

    /// Creates a workspace and its first key. Returns (id, key).
    pub fn create_workspace(&self, name: &str) -> WorkspaceResult<(String, String)> {
        let id = crate::ids::new_id("ws");
        let row = WorkspaceRow {
            id: id.clone(),
            name: name.to_string(),
            created_at: self.config.clock.now_ms(),
        };
        let handle = open_workspace(&self.config, &row, self.mode)?;
        let key = new_key();
        {
            let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
            catalog.create_workspace(&row)?;
            catalog.add_key(&id, &key_id(&key), &key, self.config.clock.now_ms())?;
        }
        write_lock(&self.keys).insert(hash_key(&key), id.clone());
        write_lock(&self.workspaces).insert(id.clone(), handle);
        Ok((id, key))
    }

    pub fn add_key(&self, workspace_id: &str) -> Result<String, StoreError> {
        let key = new_key();
        let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        catalog.add_key(
            workspace_id,
            &key_id(&key),
            &key,
            self.config.clock.now_ms(),
        )?;
        write_lock(&self.keys).insert(hash_key(&key), workspace_id.to_string());
        Ok(key)
    }

    pub fn keys(&self, workspace_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        catalog.keys(workspace_id)
    }

    /// Revokes a key by its id (or by the key itself).
    pub fn revoke_key(&self, workspace_id: &str, key_or_id: &str) -> Result<bool, StoreError> {
        let id = if key_or_id.starts_with("sk_") {
            key_id(key_or_id)
        } else {
            key_or_id.to_string()
        };
        let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        let revoked = catalog.revoke_key(workspace_id, &id)?;
        if revoked {
            let hashes = catalog.key_hashes()?;
            let mut keys = write_lock(&self.keys);
            *keys = hashes.into_iter().collect();
            // Sessions made from the key end with it.
            self.sessions.end_made_from(|hash| !keys.contains_key(hash));
            drop(keys);
            drop(catalog);
            self.announce_revocation();
        }
        Ok(revoked)
    }

    /// Finishes every queued write and stops the writers.
    pub fn close(&self) {
        let handles: Vec<Arc<WorkspaceHandle>> =
            read_lock(&self.workspaces).values().cloned().collect();
        for handle in handles {
            handle.close();
        }
    }
}

/// Loads a workspace, and starts its tasks when serving.
fn open_workspace(
    config: &Config,
    row: &WorkspaceRow,
    mode: Mode,
) -> WorkspaceResult<Arc<WorkspaceHandle>> {
    let serving = mode == Mode::Serve;
    let (handle, startup) = WorkspaceHandle::load(config, row, serving && config.resume_syncs)?;
    if serving {
        crate::workspace::tasks::start(&handle, startup, config);
    }
    Ok(handle)
}

pub use crate::ids::key_id;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// A lock is poisoned only by a panic while it was held. The key and
// workspace maps stay consistent through any such panic (each change is one
// insert or one replacement), so the server goes on with them rather than
// ignoring the lock: ignoring it once let a key reach the catalog without
// reaching memory, and a revoked key stay usable.
fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
