//! Reading a workspace's database back into the engine's [`StoredState`].

use std::collections::HashMap;

use roaring::RoaringBitmap;
use rusqlite::Connection;
use serde_json::Value as Json;
use sift_engine::{
    ContactSnapshot, EventRecord, FieldDef, ScoringRule, SegmentDef, SegmentKind, StoredState,
    Workspace,
};
use sift_lang::{FieldType, Schema};

use crate::StoreError;
use crate::codec::{event_properties_from_text, filter_from_json, value_from_json};

/// Everything stored, as the engine restores it.
///
/// Without `with_events` the events stay on disk (`state.events` is empty):
/// the engine streams them itself ([`crate::EventStream`]).
pub(crate) fn stored_state(
    conn: &Connection,
    with_events: bool,
) -> Result<StoredState, StoreError> {
    let (mut state, types) = definitions(conn)?;
    (state.contacts, state.tombstones) = contacts(conn, &types, None)?;
    if with_events {
        state.events = events(conn, None)?;
    }
    Ok(state)
}

/// Adds to `state` (definitions only) what a start from a checkpoint taken
/// after write `after` reloads (see `checkpoint.rs`): only the contacts a
/// later write touched, with their full histories.
pub(crate) fn add_touched(
    conn: &Connection,
    state: &mut StoredState,
    types: &HashMap<String, FieldType>,
    after: u64,
) -> Result<(), StoreError> {
    let touched = crate::write_log::touched_since(conn, after)?;
    (state.contacts, state.tombstones) = contacts(conn, types, Some(&touched))?;
    state.events = events(conn, Some(&touched))?;
    Ok(())
}

/// Everything stored but contacts and events, and every field's type.
pub(crate) fn definitions(
    conn: &Connection,
) -> Result<(StoredState, HashMap<String, FieldType>), StoreError> {
    let (fields, types) = fields(conn)?;
    let segments = segments(conn, &types)?;
    let schema = LoadSchema {
        types: &types,
        names: segments
            .iter()
            .map(|def| (def.id.clone(), def.name.clone()))
            .collect(),
    };
    let workflows = crate::workflow_db::load(conn, &schema)?;
    // An empty log: the first change will be seq 1 (`sift_engine::FIRST_SEQ`).
    let next_seq: i64 =
        conn.query_row("SELECT COALESCE(MAX(seq_end), 1) FROM changes", [], |r| {
            r.get(0)
        })?;
    let state = StoredState {
        fields,
        contacts: Vec::new(),
        tombstones: Vec::new(),
        segments,
        static_members: static_members(conn)?,
        events: Vec::new(),
        scoring_rules: scoring_rules(conn)?,
        workflows: workflows.workflows,
        queue: workflows.queue,
        run_cursor: workflows.cursor,
        next_run_id: workflows.next_id,
        dropped_triggers: workflows.dropped,
        score_grants: workflows.grants,
        aliases: crate::alias_db::load(conn)?,
        next_seq: next_seq as u64,
        clock: clock(conn)?,
    };
    Ok((state, types))
}

/// The instant up to which the workspace has processed time.
pub(crate) fn clock(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COALESCE(MAX(at), 0) FROM clock", [], |r| r.get(0))?)
}

/// Declared and inferred fields in declaration order, and the type of every
/// field (built-ins included) for decoding properties and conditions.
fn fields(conn: &Connection) -> Result<(Vec<FieldDef>, HashMap<String, FieldType>), StoreError> {
    let mut fields = Vec::new();
    let mut types = HashMap::new();
    let mut stmt = conn.prepare("SELECT name, type, label, builtin FROM fields ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let type_name: String = row.get(1)?;
        let field_type = FieldType::from_name(&type_name)
            .ok_or_else(|| StoreError::Corrupt(format!("field type {type_name:?}")))?;
        types.insert(name.clone(), field_type);
        fields.push(FieldDef {
            name,
            field_type,
            label: row.get(2)?,
            builtin: row.get::<_, i64>(3)? != 0,
            system: false,
        });
    }
    // Built-in rows only carry a relabel; the engine keeps their type and
    // flags, so their types come from it.
    for def in Workspace::new().fields() {
        types.insert(def.name.clone(), def.field_type);
    }
    Ok((fields, types))
}

type Tombstones = Vec<(u32, String)>;

/// Every contact row, or only those numbered in `only`.
fn contacts(
    conn: &Connection,
    types: &HashMap<String, FieldType>,
    only: Option<&[u32]>,
) -> Result<(Vec<ContactSnapshot>, Tombstones), StoreError> {
    let mut contacts = Vec::new();
    let mut tombstones = Vec::new();
    const COLUMNS: &str = "SELECT no, id, deleted, anonymous, created_at, updated_at, last_seen_at, lead_score, properties FROM contacts";
    // Two statements: `?1 IS NULL OR no = ?1` would scan every row for
    // each contact asked for.
    let mut stmt = match only {
        None => conn.prepare(&format!("{COLUMNS} ORDER BY no"))?,
        Some(_) => conn.prepare(&format!("{COLUMNS} WHERE no = ?1"))?,
    };
    let each = each_contact(only);
    for no in each {
        let mut rows = match no {
            Some(no) => stmt.query([no])?,
            None => stmt.query([])?,
        };
        while let Some(row) = rows.next()? {
            let no: u32 = row.get(0)?;
            let id: String = row.get(1)?;
            if row.get::<_, i64>(2)? != 0 {
                tombstones.push((no, id));
                continue;
            }
            let properties_text: Option<String> = row.get(8)?;
            let mut properties = Vec::new();
            if let Some(text) = properties_text {
                let json: Json = serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("contact {id:?} properties: {e}")))?;
                if let Json::Object(map) = json {
                    for (name, value) in map {
                        if let Some(value) =
                            types.get(&name).and_then(|t| value_from_json(&value, *t))
                        {
                            properties.push((name, value));
                        }
                    }
                }
            }
            contacts.push(ContactSnapshot {
                no,
                id,
                anonymous: row.get::<_, i64>(3)? != 0,
                created_at: row.get(4)?,
                updated_at: row.get(5)?,
                last_seen_at: row.get(6)?,
                lead_score: row.get(7)?,
                properties,
            });
        }
    }
    Ok((contacts, tombstones))
}

fn static_members(conn: &Connection) -> Result<HashMap<String, RoaringBitmap>, StoreError> {
    let mut static_members: HashMap<String, RoaringBitmap> = HashMap::new();
    let mut stmt = conn.prepare("SELECT segment_id, no FROM static_members")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        static_members
            .entry(row.get(0)?)
            .or_default()
            .insert(row.get(1)?);
    }
    Ok(static_members)
}

/// Segment definitions with their conditions checked against the stored
/// schema (segment references by id).
fn segments(
    conn: &Connection,
    types: &HashMap<String, FieldType>,
) -> Result<Vec<SegmentDef>, StoreError> {
    let mut raw_segments = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT id, name, description, kind, condition, test, created_at, updated_at FROM segments",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let kind: String = row.get(3)?;
        let condition: Option<String> = row.get(4)?;
        raw_segments.push((
            SegmentDef {
                id: row.get(0)?,
                name: row.get(1)?,
                description: row.get(2)?,
                kind: SegmentKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("segment kind {kind:?}")))?,
                condition: None,
                test: row.get::<_, i64>(5)? != 0,
                created_at: row.get(6)?,
                updated_at: row.get(7)?,
            },
            condition,
        ));
    }
    let schema = LoadSchema {
        types,
        names: raw_segments
            .iter()
            .map(|(def, _)| (def.id.clone(), def.name.clone()))
            .collect(),
    };
    let mut segments = Vec::new();
    for (mut def, condition) in raw_segments {
        if let Some(text) = condition {
            let json: Json = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("segment {:?} condition: {e}", def.id)))?;
            let cond = sift_lang::from_json(&json, &schema)
                .map_err(|e| StoreError::Corrupt(format!("segment {:?} condition: {e}", def.id)))?;
            def.condition = Some(cond);
        }
        segments.push(def);
    }
    Ok(segments)
}

/// Every event in arrival order, or only those of the contacts in `only`
/// (each contact's in arrival order); what conditions read is rebuilt from
/// the stored JSON text.
fn events(conn: &Connection, only: Option<&[u32]>) -> Result<Vec<EventRecord>, StoreError> {
    let mut events = Vec::new();
    let mut stmt = match only {
        None => conn
            .prepare("SELECT seq, id, contact_no, type, at, properties FROM events ORDER BY seq")?,
        Some(_) => conn.prepare(
            "SELECT seq, id, contact_no, type, at, properties FROM events
             WHERE contact_no = ?1 ORDER BY seq",
        )?,
    };
    let each = each_contact(only);
    for no in each {
        let mut rows = match no {
            Some(no) => stmt.query([no])?,
            None => stmt.query([])?,
        };
        while let Some(row) = rows.next()? {
            let properties_json: String = row.get(5)?;
            let properties = event_properties_from_text(&properties_json).map_err(|e| {
                StoreError::Corrupt(format!(
                    "event {} properties: {e}",
                    row.get::<_, i64>(0).unwrap_or_default()
                ))
            })?;
            events.push(EventRecord {
                no: row.get(2)?,
                id: row.get(1)?,
                event_type: row.get(3)?,
                at: row.get(4)?,
                properties,
                properties_json,
            });
        }
    }
    Ok(events)
}

fn scoring_rules(conn: &Connection) -> Result<Vec<ScoringRule>, StoreError> {
    let mut rules = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT id, event_type, filter, points, expires_after, created_at, updated_at
         FROM scoring_rules ORDER BY rowid",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let event_type: String = row.get(1)?;
        let filter = match row.get::<_, Option<String>>(2)? {
            Some(text) => Some(
                filter_from_json(&event_type, &text)
                    .map_err(|e| StoreError::Corrupt(format!("scoring rule {id:?} filter: {e}")))?,
            ),
            None => None,
        };
        let expires_after = match row.get::<_, Option<String>>(4)? {
            Some(text) => Some(sift_lang::duration_from_json(&text).ok_or_else(|| {
                StoreError::Corrupt(format!("scoring rule {id:?} expires_after {text:?}"))
            })?),
            None => None,
        };
        rules.push(ScoringRule {
            id,
            event_type,
            filter,
            points: row.get(3)?,
            expires_after,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        });
    }
    Ok(rules)
}

pub(crate) struct LoadSchema<'a> {
    pub(crate) types: &'a HashMap<String, FieldType>,
    pub(crate) names: HashMap<String, String>,
}

impl Schema for LoadSchema<'_> {
    fn field_type(&self, name: &str) -> Option<FieldType> {
        self.types.get(name).copied()
    }

    fn segment_id(&self, name: &str) -> Option<String> {
        self.names
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(id, _)| id.clone())
    }

    fn segment_name(&self, id: &str) -> Option<String> {
        self.names.get(id).cloned()
    }
}

/// One query per contact asked for, or one for them all.
fn each_contact(only: Option<&[u32]>) -> Vec<Option<u32>> {
    match only {
        Some(list) => list.iter().map(|no| Some(*no)).collect(),
        None => vec![None],
    }
}
