//! Web UI sessions: login tokens printed at start, sessions behind an
//! HttpOnly cookie, and the lookup every UI request (and every cookie-signed
//! API request) goes through.
//!
//! Both live in memory only: a restart signs everyone out, and the login URL
//! printed at that restart signs them in again (docs/ui.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use sift_store::hash_key;

pub const COOKIE: &str = "sift_session";
/// A session ends this long after sign-in, used or not.
const LIFETIME: Duration = Duration::from_secs(14 * 24 * 3600);

struct Session {
    workspace_id: String,
    /// The hash of the key it was made from: revoking the key ends it. None
    /// for sessions made from a printed login token.
    key_hash: Option<String>,
    /// The public id of that key, for the history of what the session
    /// changed. None for login tokens and sessions taken on from another
    /// node.
    key_id: Option<String>,
    started: Instant,
}

#[derive(Default)]
pub struct Sessions {
    /// By the hash of the cookie's value, so the map never holds a usable secret.
    sessions: Mutex<HashMap<String, Session>>,
    /// Login token hash → workspace id.
    login_tokens: Mutex<HashMap<String, String>>,
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    crate::ids::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

impl Sessions {
    /// A login token for `workspace_id`, valid until the server stops.
    pub fn mint_login_token(&self, workspace_id: &str) -> String {
        let token = random_token("lt_");
        if let Ok(mut tokens) = self.login_tokens.lock() {
            tokens.insert(hash_key(&token), workspace_id.to_string());
        }
        token
    }

    pub fn redeem_login_token(&self, token: &str) -> Option<String> {
        let tokens = self.login_tokens.lock().ok()?;
        tokens.get(&hash_key(token)).cloned()
    }

    /// Starts a session and returns the cookie's value.
    pub fn start(&self, workspace_id: &str, key: Option<&str>) -> String {
        let value = random_token("ss_");
        if let Ok(mut sessions) = self.sessions.lock() {
            let now = Instant::now();
            sessions.retain(|_, s| now.duration_since(s.started) < LIFETIME);
            sessions.insert(
                hash_key(&value),
                Session {
                    workspace_id: workspace_id.to_string(),
                    key_hash: key.map(hash_key),
                    key_id: key.map(crate::ids::key_id),
                    started: now,
                },
            );
        }
        value
    }

    /// The workspace and key hash of the session behind a cookie's value,
    /// alive or not: what cluster mode logs beside a write signed by the
    /// cookie, so that replaying the write elsewhere can [`adopt`](Self::adopt) it.
    pub fn describe(&self, value: &str) -> Option<(String, Option<String>)> {
        let sessions = self.sessions.lock().ok()?;
        let session = sessions.get(&hash_key(value))?;
        Some((session.workspace_id.clone(), session.key_hash.clone()))
    }

    /// Takes on a session another node started (cluster mode, replaying
    /// its writes): the same cookie works here from now on.
    pub fn adopt(&self, value: &str, workspace_id: &str, key_hash: Option<String>) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.entry(hash_key(value)).or_insert_with(|| Session {
                workspace_id: workspace_id.to_string(),
                key_hash,
                key_id: None,
                started: Instant::now(),
            });
        }
    }

    /// Every live session as (hash of the cookie's value, workspace id,
    /// hash of its key): what cluster mode stores with a checkpoint, since
    /// sessions otherwise live in one process's memory.
    pub fn export(&self) -> Vec<(String, String, Option<String>)> {
        let Ok(sessions) = self.sessions.lock() else {
            return Vec::new();
        };
        sessions
            .iter()
            .filter(|(_, s)| s.started.elapsed() < LIFETIME)
            .map(|(hash, s)| (hash.clone(), s.workspace_id.clone(), s.key_hash.clone()))
            .collect()
    }

    /// Takes on sessions [`export`](Self::export)ed by another process.
    pub fn import(&self, exported: Vec<(String, String, Option<String>)>) {
        if let Ok(mut sessions) = self.sessions.lock() {
            for (hash, workspace_id, key_hash) in exported {
                sessions.entry(hash).or_insert_with(|| Session {
                    workspace_id,
                    key_hash,
                    key_id: None,
                    started: Instant::now(),
                });
            }
        }
    }

    /// The public id of the key a session was made from, if known.
    pub fn key_id(&self, value: &str) -> Option<String> {
        let sessions = self.sessions.lock().ok()?;
        sessions.get(&hash_key(value))?.key_id.clone()
    }

    pub fn end(&self, value: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(&hash_key(value));
        }
    }

    /// Ends every session made from a key that `revoked` says is revoked.
    pub fn end_made_from(&self, revoked: impl Fn(&str) -> bool) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, s| s.key_hash.as_deref().is_none_or(|hash| !revoked(hash)));
        }
    }

    /// The workspace of a live session, given a check that its key (if it
    /// was made from one) is still valid.
    pub fn workspace_of(
        &self,
        value: &str,
        key_still_valid: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let mut sessions = self.sessions.lock().ok()?;
        let hash = hash_key(value);
        let session = sessions.get(&hash)?;
        let alive = session.started.elapsed() < LIFETIME
            && session.key_hash.as_deref().is_none_or(&key_still_valid);
        if !alive {
            sessions.remove(&hash);
            return None;
        }
        Some(session.workspace_id.clone())
    }
}

/// The session cookie's value in a request, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

pub fn set_cookie(value: &str) -> String {
    format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/")
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}
