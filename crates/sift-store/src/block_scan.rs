//! Reading events for a new count (docs/storage.md "Event blocks"): range
//! by range, from a built block's columns or, for a range without one,
//! from its rows, into column buffers that travel from the reading thread
//! to the folding one and back, so that a scan of 100M events allocates a
//! few buffers rather than one record per event.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use sift_engine::{EventColumns, PropValues, RawValue};

use crate::StoreError;
use crate::codec::event_properties_from_text;
use crate::event_blocks::{block_range, block_size, built_blocks, decode_values, le_array};

/// One type's events of one range, in seq order.
#[derive(Debug, Default)]
pub(crate) struct TypeEvents {
    event_type: String,
    seqs: Vec<u64>,
    contacts: Vec<u32>,
    ats: Vec<i64>,
    /// The properties asked for: (name, one value per event). Only the
    /// first `props_used` are this range's; the others are buffers.
    props: Vec<(String, PropValues)>,
    props_used: usize,
}

impl TypeEvents {
    fn reset(&mut self, event_type: &str) {
        self.event_type.clear();
        self.event_type.push_str(event_type);
        self.seqs.clear();
        self.contacts.clear();
        self.ats.clear();
        self.props_used = 0;
    }

    /// A property column to fill (its values are what a previous range
    /// left: the filler empties them).
    fn column(&mut self, name: &str) -> &mut PropValues {
        if self.props_used == self.props.len() {
            self.props.push((String::new(), PropValues::default()));
        }
        let (own, values) = &mut self.props[self.props_used];
        self.props_used += 1;
        own.clear();
        own.push_str(name);
        values
    }

    fn len(&self) -> usize {
        self.seqs.len()
    }
}

/// A range's events of the types asked for, one [`TypeEvents`] each.
#[derive(Debug, Default)]
pub(crate) struct RangeEvents {
    types: Vec<TypeEvents>,
    used: usize,
}

impl RangeEvents {
    fn reset(&mut self) {
        self.used = 0;
    }

    fn next_type(&mut self, event_type: &str) -> &mut TypeEvents {
        if self.used == self.types.len() {
            self.types.push(TypeEvents::default());
        }
        let events = &mut self.types[self.used];
        self.used += 1;
        events.reset(event_type);
        events
    }

    pub(crate) fn len(&self) -> usize {
        self.types[..self.used].iter().map(TypeEvents::len).sum()
    }

    /// Calls `visit` with each type's events, in column form.
    pub(crate) fn each_type(&self, visit: &mut dyn FnMut(&EventColumns<'_>)) {
        for events in &self.types[..self.used] {
            visit(&EventColumns {
                event_type: &events.event_type,
                seqs: &events.seqs,
                contacts: &events.contacts,
                ats: &events.ats,
                props: &events.props[..events.props_used],
            });
        }
    }
}

/// Reads the events of `types` range by range inside the caller's read
/// transaction: a built block's columns, or a range's rows when it has
/// none. `buffer` hands a range buffer to fill (a returned one when there
/// is), `out` takes it filled and answers false to stop.
pub(crate) fn read_ranges(
    conn: &Connection,
    types: &[String],
    names: &[String],
    buffer: &mut dyn FnMut() -> RangeEvents,
    out: &mut dyn FnMut(RangeEvents) -> bool,
) -> Result<(), StoreError> {
    let last: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    let size = block_size(conn)?;
    let built = built_blocks(conn)?;
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut block = 0;
    while block * size < last {
        let range = block_range(size, block);
        let mut events = buffer();
        events.reset();
        if built.contains(&block) {
            columns_of(conn, block, range.0, types, &wanted, &mut events)?;
        } else {
            rows_of(conn, range, types, &wanted, &mut events)?;
        }
        if events.len() > 0 && !out(events) {
            return Ok(());
        }
        block += 1;
    }
    Ok(())
}

fn text(value: rusqlite::types::ValueRef<'_>) -> Result<&str, StoreError> {
    value
        .as_str()
        .map_err(|e| StoreError::Corrupt(format!("events: {e}")))
}

fn columns_of(
    conn: &Connection,
    block: i64,
    first: i64,
    types: &[String],
    wanted: &HashSet<&str>,
    out: &mut RangeEvents,
) -> Result<(), StoreError> {
    let mut of_type = conn.prepare_cached(
        "SELECT offsets, contacts, ats FROM event_block_types WHERE block = ?1 AND type = ?2",
    )?;
    let mut props_of = conn.prepare_cached(
        "SELECT name, column_values FROM event_block_props WHERE block = ?1 AND type = ?2",
    )?;
    let mut offsets: Vec<u16> = Vec::new();
    for event_type in types {
        let arrays: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = of_type
            .query_row(params![block, event_type], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((offset_bytes, contact_bytes, at_bytes)) = arrays else {
            continue;
        };
        let events = out.next_type(event_type);
        le_array(&offset_bytes, u16::from_le_bytes, &mut offsets)?;
        events
            .seqs
            .extend(offsets.iter().map(|&o| (first + i64::from(o)) as u64));
        le_array(&contact_bytes, u32::from_le_bytes, &mut events.contacts)?;
        le_array(&at_bytes, i64::from_le_bytes, &mut events.ats)?;
        let n = events.seqs.len();
        if events.contacts.len() != n || events.ats.len() != n {
            return Err(StoreError::Corrupt(format!(
                "event block {block}: arrays of different lengths"
            )));
        }
        let mut rows = props_of.query(params![block, event_type])?;
        while let Some(row) = rows.next()? {
            let name = text(row.get_ref(0)?)?;
            if wanted.contains(name) {
                let name = name.to_string();
                let bytes = row
                    .get_ref(1)?
                    .as_blob()
                    .map_err(|e| StoreError::Corrupt(format!("event block {block}: {e}")))?;
                decode_values(bytes, n, events.column(&name))?;
            }
        }
    }
    Ok(())
}

/// A range without a block: its rows of `types`, grouped by type.
fn rows_of(
    conn: &Connection,
    (first, last): (i64, i64),
    types: &[String],
    wanted: &HashSet<&str>,
    out: &mut RangeEvents,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, contact_no, type, at, properties FROM events
         WHERE seq BETWEEN ?1 AND ?2 AND type IN ({}) ORDER BY seq",
        vec!["?"; types.len()].join(", ")
    ))?;
    let bounds = [first, last].map(rusqlite::types::Value::Integer);
    let mut rows = stmt.query(rusqlite::params_from_iter(
        bounds.into_iter().chain(
            types
                .iter()
                .map(|t| rusqlite::types::Value::Text(t.clone())),
        ),
    ))?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let event_type = text(row.get_ref(2)?)?;
        let t = match out.types[..out.used]
            .iter()
            .position(|e| e.event_type == event_type)
        {
            Some(t) => t,
            None => {
                out.next_type(event_type);
                out.used - 1
            }
        };
        let properties = event_properties_from_text(text(row.get_ref(4)?)?)
            .map_err(|e| StoreError::Corrupt(format!("event {seq} properties: {e}")))?;
        let events = &mut out.types[t];
        let index = events.seqs.len();
        events.seqs.push(seq as u64);
        events.contacts.push(row.get(1)?);
        events.ats.push(row.get(3)?);
        // As in a block: what no condition can read is left out.
        for (name, value) in properties {
            if !wanted.contains(name.as_str())
                || matches!(value, RawValue::Null | RawValue::Unsupported(_))
            {
                continue;
            }
            let c = match events.props[..events.props_used]
                .iter()
                .position(|(own, _)| *own == name)
            {
                Some(c) => c,
                None => {
                    let column = events.column(&name);
                    *column = PropValues::Raw(column.take_raw());
                    events.props_used - 1
                }
            };
            if let PropValues::Raw(column) = &mut events.props[c].1 {
                column.resize(index + 1, None);
                column[index] = Some(value);
            }
        }
    }
    for events in &mut out.types[..out.used] {
        let n = events.seqs.len();
        for (_, column) in &mut events.props[..events.props_used] {
            if let PropValues::Raw(column) = column {
                column.resize(n, None);
            }
        }
    }
    Ok(())
}
