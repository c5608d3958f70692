//! The workspace's Facebook connection: an ad account and the access token
//! for it, entered once and reused by every export, audience list and
//! retry. The token is stored sealed exactly as a sync's is (`secrets.rs`,
//! key outside the database), bound to the workspace so a sealed value
//! cannot be moved to another; only its last characters are ever shown.

use sift_store::{ConnectionRow, ExportWrite};

use super::Settings;
use super::audiences::Account;
use super::graph::Secret;
use crate::config::Config;
use crate::secrets::Sealer;
use crate::workspace::service::WorkspaceService;

/// How many of the token's last characters are shown, to tell tokens apart.
const HINT_CHARS: usize = 4;

/// A stored connection, opened: ready to call Facebook.
pub struct Connection {
    pub ad_account_id: String,
    /// Where the Graph API is and its version: the connection's, else the
    /// server's settings.
    pub graph_url: String,
    pub version: String,
    pub token: Secret,
}

impl Connection {
    /// Where its ad account's audiences are, and the token to read them.
    pub fn account(&self) -> Account<'_> {
        Account {
            graph_url: &self.graph_url,
            version: &self.version,
            ad_account_id: &self.ad_account_id,
            token: &self.token,
        }
    }
}

/// What the sealed token is bound to.
fn context(workspace_id: &str) -> String {
    format!("facebook_connection:{workspace_id}")
}

/// The token's last characters (all of it never), for "ends in …".
pub fn hint(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    // A token this short is not a real one; showing part of it would show
    // most of it.
    if chars.len() < HINT_CHARS * 3 {
        return String::new();
    }
    chars[chars.len() - HINT_CHARS..].iter().collect()
}

/// The stored connection as it is (token sealed), if there is one.
pub fn stored(ws: &WorkspaceService) -> Result<Option<ConnectionRow>, String> {
    ws.reader()
        .map_err(|e| e.to_string())?
        .facebook_connection()
        .map_err(|e| e.to_string())
}

/// Opens a stored connection's token with the server's key.
pub fn open(
    ws: &WorkspaceService,
    row: ConnectionRow,
    config: &Config,
) -> Result<Connection, String> {
    let sealer = Sealer::load(config.secret_key.as_ref(), &config.data_dir, false)?;
    let plain = sealer.open(&context(ws.id()), &row.sealed)?;
    let token = String::from_utf8(plain).map_err(|_| "the stored token is damaged".to_string())?;
    Ok(Connection {
        graph_url: row
            .graph_url
            .unwrap_or_else(|| config.facebook.graph_url.clone()),
        version: row
            .version
            .unwrap_or_else(|| config.facebook.version.clone()),
        ad_account_id: row.ad_account_id,
        token: Secret::new(token),
    })
}

/// What to store for a new connection (the token sealed).
pub struct NewConnection<'a> {
    pub ad_account_id: String,
    pub graph_url: Option<String>,
    pub version: Option<String>,
    pub token: &'a Secret,
}

/// Seals the token and stores the connection, replacing any; answers once
/// it is durable.
pub async fn save(
    ws: &WorkspaceService,
    new: NewConnection<'_>,
    config: &Config,
) -> Result<ConnectionRow, String> {
    let sealer = Sealer::load(config.secret_key.as_ref(), &config.data_dir, true)?;
    let row = ConnectionRow {
        ad_account_id: new.ad_account_id,
        graph_url: new.graph_url,
        version: new.version,
        token_hint: hint(new.token.expose()),
        sealed: sealer.seal(&context(ws.id()), new.token.expose().as_bytes())?,
        updated_at: ws.clock.now_ms(),
    };
    ws.commit_exports(vec![ExportWrite::Connection(Some(row.clone()))])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row)
}

/// Removes the connection; answers once that is durable. Running syncs
/// keep the token they were started with (sealed with the job).
pub async fn remove(ws: &WorkspaceService) -> Result<(), String> {
    ws.commit_exports(vec![ExportWrite::Connection(None)])
        .await
        .map_err(|e| e.to_string())
}

/// The Graph URL and version a connection row means, with the defaults.
pub fn effective(row: Option<&ConnectionRow>, settings: &Settings) -> (String, String) {
    (
        row.and_then(|r| r.graph_url.clone())
            .unwrap_or_else(|| settings.graph_url.clone()),
        row.and_then(|r| r.version.clone())
            .unwrap_or_else(|| settings.version.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_characters_of_a_real_token_are_shown() {
        assert_eq!(hint("EAAB-test-token-that-must-stay-secret"), "cret");
        assert_eq!(hint("short"), "");
    }
}
