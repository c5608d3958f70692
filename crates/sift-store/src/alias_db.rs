//! Identify's records in SQLite: a merge moves the anonymous contact's
//! event rows, score grants and aliases to the contact it was merged into
//! and leaves it a tombstone, all inside the write's transaction (its
//! static memberships move by the write's `StaticMembers` records: a
//! lookup of `static_members` by contact alone would scan the table); the
//! alias row keeps its id naming that contact.

use rusqlite::{Connection, params};

use crate::StoreError;

/// Applies `Record::Merge`.
pub(crate) fn merge(
    tx: &rusqlite::Transaction<'_>,
    from: Option<u32>,
    into: u32,
    alias: &str,
) -> Result<(), StoreError> {
    if let Some(from) = from {
        tx.prepare_cached("UPDATE events SET contact_no = ?2 WHERE contact_no = ?1")?
            .execute(params![from, into])?;
        tx.prepare_cached("UPDATE score_grants SET contact_no = ?2 WHERE contact_no = ?1")?
            .execute(params![from, into])?;
        tx.prepare_cached("UPDATE aliases SET contact_no = ?2 WHERE contact_no = ?1")?
            .execute(params![from, into])?;
        crate::event_retention::merge(tx, from, into)?;
        // The id stays as a tombstone: the change log still names it.
        tx.prepare_cached("UPDATE contacts SET deleted = 1, properties = NULL WHERE no = ?1")?
            .execute(params![from])?;
    }
    tx.prepare_cached(
        "INSERT INTO aliases (id, contact_no) VALUES (?1, ?2)
         ON CONFLICT(id) DO UPDATE SET contact_no = excluded.contact_no",
    )?
    .execute(params![alias, into])?;
    Ok(())
}

/// Erasing a contact erases the ids that named it.
pub(crate) fn contact_deleted(tx: &rusqlite::Transaction<'_>, no: u32) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM aliases WHERE contact_no = ?1")?
        .execute(params![no])?;
    Ok(())
}

/// Every (alias, contact number).
pub(crate) fn load(conn: &Connection) -> Result<Vec<(String, u32)>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, contact_no FROM aliases ORDER BY id")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
