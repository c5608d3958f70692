//! A columnar copy of the stored events, for counting a new aggregate over
//! the whole history (docs/storage.md "Event blocks"). The `events` table
//! keeps one row per event with its properties as JSON text: reading 100M
//! of them and parsing their JSON is what made a new behavioural segment
//! take a minute. Here the events of each sealed range of
//! [`BLOCK_EVENTS`] seqs are kept per type as arrays (seq offsets, contact
//! numbers, instants) and one typed column per property, so that a count
//! reads only its types' arrays and the properties its filter names, with
//! no JSON to parse.
//!
//! The `events` table stays the truth. A block is used only while its
//! marker row in `event_blocks` exists; triggers delete the marker (and
//! count an edit) whenever an event row in its range is updated or deleted
//! (a merge moving events, a contact's deletion, the retention), in the
//! same transaction as the change, so that a scan, which reads markers,
//! blocks and rows in one read transaction, never uses a stale block. The
//! ranges without a marker (the newest, not yet sealed; edited ones until
//! rebuilt) are read from the rows as before.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sift_engine::{PropValues, RawValue};

use crate::StoreError;
use crate::checkpoint_codec::{In, Out};
use crate::codec::event_properties_from_text;
use crate::schema::open;

/// Seqs per block, unless a test sets fewer ([`set_event_block_size`]): a
/// block covers `[k * size + 1, (k + 1) * size]`, sealed once the table's
/// highest seq reaches its end (seqs only grow: `AUTOINCREMENT`). Small
/// enough that building one takes a few ms beside the writer, large enough
/// that 100M events are ~6,000 blocks.
pub const BLOCK_EVENTS: i64 = 16_384;
/// Blocks read before one write transaction stores them (one fsync each).
const BLOCKS_PER_COMMIT: usize = 16;

/// Version 12 (marker `event_blocks`). The triggers fire for every row an
/// update or delete touches; each is a primary-key delete and upsert.
pub(crate) const V12_EVENT_BLOCKS: &str = "
    CREATE TABLE event_blocks (
        block INTEGER PRIMARY KEY,
        events INTEGER NOT NULL
    );
    CREATE TABLE event_block_types (
        block INTEGER NOT NULL,
        type TEXT NOT NULL,
        offsets BLOB NOT NULL,
        contacts BLOB NOT NULL,
        ats BLOB NOT NULL,
        PRIMARY KEY (block, type)
    );
    CREATE TABLE event_block_props (
        block INTEGER NOT NULL,
        type TEXT NOT NULL,
        name TEXT NOT NULL,
        column_values BLOB NOT NULL,
        PRIMARY KEY (block, type, name)
    );
    CREATE TABLE event_block_edits (
        block INTEGER PRIMARY KEY,
        edits INTEGER NOT NULL
    );
    CREATE TABLE event_block_size (events INTEGER NOT NULL);
    INSERT INTO event_block_size (events) VALUES (16384);
    CREATE TRIGGER event_blocks_stale_on_update AFTER UPDATE ON events BEGIN
        DELETE FROM event_blocks
            WHERE block = (OLD.seq - 1) / (SELECT events FROM event_block_size);
        INSERT INTO event_block_edits (block, edits)
            VALUES ((OLD.seq - 1) / (SELECT events FROM event_block_size), 1)
            ON CONFLICT (block) DO UPDATE SET edits = edits + 1;
    END;
    CREATE TRIGGER event_blocks_stale_on_delete AFTER DELETE ON events BEGIN
        DELETE FROM event_blocks
            WHERE block = (OLD.seq - 1) / (SELECT events FROM event_block_size);
        INSERT INTO event_block_edits (block, edits)
            VALUES ((OLD.seq - 1) / (SELECT events FROM event_block_size), 1)
            ON CONFLICT (block) DO UPDATE SET edits = edits + 1;
    END;
";

/// Sets the seqs per block of a database that has built none yet: tests
/// use a few, so that short scripts seal many blocks.
pub fn set_event_block_size(path: &Path, events: i64) -> Result<(), StoreError> {
    let conn = open(path)?;
    let built: i64 = conn.query_row("SELECT COUNT(*) FROM event_blocks", [], |r| r.get(0))?;
    if built > 0 || !(1..=i64::from(u16::MAX) + 1).contains(&events) {
        return Err(StoreError::Corrupt(format!(
            "cannot set {events} events per block: blocks exist, or not within 1..=65536"
        )));
    }
    conn.execute("UPDATE event_block_size SET events = ?1", [events])?;
    Ok(())
}

pub(crate) fn block_size(conn: &Connection) -> Result<i64, StoreError> {
    let size: i64 = conn.query_row("SELECT events FROM event_block_size", [], |r| r.get(0))?;
    if size < 1 {
        return Err(StoreError::Corrupt(format!("{size} events per block")));
    }
    Ok(size)
}

/// The tag before each value of a property column.
const ABSENT: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const NUMBER: u8 = 3;
const STRING: u8 = 4;
const LIST: u8 = 5;

/// What [`build_event_blocks`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlocksBuilt {
    pub blocks: u64,
    pub events: u64,
    /// Blocks edited while being read: left for the next call.
    pub raced: u64,
    /// After the pass: sealed ranges, and those with a valid block.
    pub sealed: u64,
    pub valid: u64,
}

/// Builds every sealed block that has no marker (never built, or edited
/// since): reads its rows, then stores its columns in a short write
/// transaction of its own, unless an edit landed in between. `progress`
/// hears (blocks done, blocks to build) after each commit.
pub fn build_event_blocks(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BlocksBuilt, StoreError> {
    let mut conn = open(path)?;
    let size = block_size(&conn)?;
    let missing = missing_blocks(&conn, size)?;
    let mut done = BlocksBuilt::default();
    for (i, chunk) in missing.chunks(BLOCKS_PER_COMMIT).enumerate() {
        let mut built = Vec::with_capacity(chunk.len());
        {
            let tx = conn.transaction()?;
            for &block in chunk {
                built.push((block, edits(&tx, block)?, read_block(&tx, size, block)?));
            }
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (block, seen, columns) in &built {
            if edits(&tx, *block)? != *seen {
                done.raced += 1;
                continue;
            }
            store_block(&tx, *block, columns)?;
            done.blocks += 1;
            done.events += columns
                .values()
                .map(|c| c.contacts.len() as u64)
                .sum::<u64>();
        }
        tx.commit()?;
        progress(
            ((i + 1) * BLOCKS_PER_COMMIT).min(missing.len()) as u64,
            missing.len() as u64,
        );
    }
    let last: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    let valid: i64 = conn.query_row("SELECT COUNT(*) FROM event_blocks", [], |r| r.get(0))?;
    done.sealed = (last / size) as u64;
    done.valid = valid as u64;
    Ok(done)
}

/// Sealed blocks without a marker, in order.
fn missing_blocks(conn: &Connection, size: i64) -> Result<Vec<i64>, StoreError> {
    let last: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    let built = built_blocks(conn)?;
    Ok((0..last / size).filter(|b| !built.contains(b)).collect())
}

pub(crate) fn built_blocks(conn: &Connection) -> Result<HashSet<i64>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT block FROM event_blocks")?;
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn edits(conn: &Connection, block: i64) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT edits FROM event_block_edits WHERE block = ?1")?
        .query_row([block], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// One type's events in a block, in seq order.
#[derive(Debug, Default, PartialEq)]
struct TypeColumns {
    offsets: Vec<u16>,
    contacts: Vec<u32>,
    ats: Vec<i64>,
    /// By property name: one value per event (`None`: the event lacks it).
    props: BTreeMap<String, Vec<Option<RawValue>>>,
}

pub(crate) fn block_range(size: i64, block: i64) -> (i64, i64) {
    (block * size + 1, (block + 1) * size)
}

fn read_block(
    conn: &Connection,
    size: i64,
    block: i64,
) -> Result<BTreeMap<String, TypeColumns>, StoreError> {
    let (first, last) = block_range(size, block);
    let mut stmt = conn.prepare_cached(
        "SELECT seq, contact_no, type, at, properties FROM events
         WHERE seq BETWEEN ?1 AND ?2 AND type != '' ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![first, last])?;
    let mut out: BTreeMap<String, TypeColumns> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let event_type: String = row.get(2)?;
        let text: String = row.get(4)?;
        let properties = event_properties_from_text(&text)
            .map_err(|e| StoreError::Corrupt(format!("event {seq} properties: {e}")))?;
        let columns = out.entry(event_type).or_default();
        let index = columns.contacts.len();
        columns.offsets.push((seq - first) as u16);
        columns.contacts.push(row.get(1)?);
        columns.ats.push(row.get(3)?);
        for (name, value) in properties {
            if matches!(value, RawValue::Null | RawValue::Unsupported(_)) {
                continue;
            }
            let column = columns.props.entry(name).or_default();
            column.resize(index + 1, None);
            column[index] = Some(value);
        }
    }
    for columns in out.values_mut() {
        for column in columns.props.values_mut() {
            column.resize(columns.contacts.len(), None);
        }
    }
    Ok(out)
}

fn store_block(
    conn: &Connection,
    block: i64,
    columns: &BTreeMap<String, TypeColumns>,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM event_block_types WHERE block = ?1")?
        .execute([block])?;
    conn.prepare_cached("DELETE FROM event_block_props WHERE block = ?1")?
        .execute([block])?;
    let mut types = conn.prepare_cached(
        "INSERT INTO event_block_types (block, type, offsets, contacts, ats) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut props = conn.prepare_cached(
        "INSERT INTO event_block_props (block, type, name, column_values) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut events = 0;
    for (event_type, c) in columns {
        let offsets: Vec<u8> = c.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        let contacts: Vec<u8> = c.contacts.iter().flat_map(|n| n.to_le_bytes()).collect();
        let ats: Vec<u8> = c.ats.iter().flat_map(|a| a.to_le_bytes()).collect();
        types.execute(params![block, event_type, offsets, contacts, ats])?;
        for (name, values) in &c.props {
            props.execute(params![block, event_type, name, encode_values(values)])?;
        }
        events += c.contacts.len() as i64;
    }
    conn.prepare_cached("INSERT OR REPLACE INTO event_blocks (block, events) VALUES (?1, ?2)")?
        .execute(params![block, events])?;
    Ok(())
}

fn encode_values(values: &[Option<RawValue>]) -> Vec<u8> {
    let mut out = Out::default();
    for value in values {
        match value {
            Some(RawValue::Bool(false)) => out.u8(FALSE),
            Some(RawValue::Bool(true)) => out.u8(TRUE),
            Some(RawValue::Number(x)) => {
                out.u8(NUMBER);
                out.f64(*x);
            }
            Some(RawValue::String(s)) => {
                out.u8(STRING);
                out.str(s);
            }
            Some(RawValue::StringList(items)) => {
                out.u8(LIST);
                out.len(items.len());
                for item in items {
                    out.str(item);
                }
            }
            Some(RawValue::Null | RawValue::Unsupported(_)) | None => out.u8(ABSENT),
        }
    }
    out.bytes
}

/// Decodes a property column of `n` events into `out`: as numbers while
/// every value is a number or absent (most columns a count reads: amounts,
/// quantities), as any values from the first that is not.
pub(crate) fn decode_values(
    bytes: &[u8],
    n: usize,
    out: &mut PropValues,
) -> Result<(), StoreError> {
    let mut numbers = out.take_numbers();
    numbers.reserve(n);
    let mut at = 0;
    // The numbers' loop reads the bytes directly: it is the one a count
    // over 100M events spends its time in.
    while numbers.len() < n {
        match bytes.get(at) {
            Some(&ABSENT) => {
                numbers.push(f64::NAN);
                at += 1;
            }
            Some(&NUMBER) => {
                let value = bytes
                    .get(at + 1..at + 9)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .ok_or_else(|| {
                        StoreError::Corrupt("event block: a property column cut short".into())
                    })?;
                numbers.push(f64::from_le_bytes(value));
                at += 9;
            }
            _ => break,
        }
    }
    if numbers.len() == n {
        *out = PropValues::Numbers(numbers);
        return finished(&bytes[at..]);
    }
    let mut raw: Vec<Option<RawValue>> = numbers
        .iter()
        .map(|x| (!x.is_nan()).then_some(RawValue::Number(*x)))
        .collect();
    let mut input = In::labelled(&bytes[at..], "event block", "property column");
    while raw.len() < n {
        raw.push(match input.u8()? {
            ABSENT => None,
            FALSE => Some(RawValue::Bool(false)),
            TRUE => Some(RawValue::Bool(true)),
            NUMBER => Some(RawValue::Number(input.f64()?)),
            STRING => Some(RawValue::String(input.str()?)),
            LIST => {
                let count = input.len(4)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(input.str()?);
                }
                Some(RawValue::StringList(items))
            }
            tag => {
                return Err(StoreError::Corrupt(format!(
                    "event block: unknown value tag {tag}"
                )));
            }
        });
    }
    *out = PropValues::Raw(raw);
    if input.is_empty() {
        Ok(())
    } else {
        finished(&bytes[bytes.len() - 1..])
    }
}

fn finished(rest: &[u8]) -> Result<(), StoreError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Corrupt(
            "event block: a property column longer than its events".into(),
        ))
    }
}

/// Decodes a little-endian array into `out` (emptied first).
pub(crate) fn le_array<const N: usize, T>(
    bytes: &[u8],
    from: fn([u8; N]) -> T,
    out: &mut Vec<T>,
) -> Result<(), StoreError> {
    if !bytes.len().is_multiple_of(N) {
        return Err(StoreError::Corrupt(
            "event block: an array of a partial item".into(),
        ));
    }
    out.clear();
    out.extend(bytes.chunks_exact(N).map(|chunk| {
        let mut item = [0u8; N];
        item.copy_from_slice(chunk);
        from(item)
    }));
    Ok(())
}
