//! The catalog database: workspaces and their API keys. Keys are stored as
//! SHA-256 hashes; the key itself is shown once, when it is made.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::StoreError;

const MIGRATIONS: &[&str] = &["
    CREATE TABLE workspaces (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE keys (
        key_hash TEXT PRIMARY KEY,
        key_id TEXT NOT NULL UNIQUE,
        workspace_id TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

pub struct Catalog {
    conn: Connection,
}

pub fn hash_key(key: &str) -> String {
    // Every request hashes its key: hex digits by table, not a formatted
    // string per byte.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Catalog, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", crate::schema::synchronous())?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
            tx.commit()?;
        }
        Ok(Catalog { conn })
    }

    pub fn workspaces(&self) -> Result<Vec<WorkspaceRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, created_at FROM workspaces ORDER BY created_at, id")?;
        let rows = stmt.query_map([], |row| {
            Ok(WorkspaceRow {
                id: row.get(0)?,
                name: row.get(1)?,
                created_at: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn create_workspace(&mut self, row: &WorkspaceRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![row.id, row.name, row.created_at],
        )?;
        Ok(())
    }

    /// Stores a key for a workspace. `key_id` names it for revocation.
    pub fn add_key(
        &mut self,
        workspace_id: &str,
        key_id: &str,
        key: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO keys (key_hash, key_id, workspace_id, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash_key(key), key_id, workspace_id, now],
        )?;
        Ok(())
    }

    /// Revokes a key by its id; false when the workspace has no such key.
    pub fn revoke_key(&mut self, workspace_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM keys WHERE workspace_id = ?1 AND key_id = ?2",
            params![workspace_id, key_id],
        )?;
        Ok(n > 0)
    }

    /// (key id, created_at) of a workspace's keys.
    pub fn keys(&self, workspace_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT key_id, created_at FROM keys WHERE workspace_id = ?1 ORDER BY created_at",
        )?;
        let rows = stmt.query_map(params![workspace_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// All (key hash, workspace id) pairs, for the server's in-memory lookup.
    pub fn key_hashes(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key_hash, workspace_id FROM keys")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn workspace_of_key(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT workspace_id FROM keys WHERE key_hash = ?1",
                params![hash_key(key)],
                |row| row.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::hash_key;

    #[test]
    fn a_key_hashes_to_the_lowercase_hex_of_its_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
