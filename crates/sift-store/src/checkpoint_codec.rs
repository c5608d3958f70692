//! The byte layout of a checkpoint's parts (docs/storage.md "Checkpoints"):
//! little-endian integers and floats, strings as a `u32` byte length and
//! UTF-8, bitmaps in roaring's portable serialization. Decoding checks every
//! length against what is left, so a damaged part is an error, never a
//! panic or a huge allocation.

use roaring::RoaringBitmap;
use sift_engine::{
    AggregatePart, ColumnPart, Counts, EngineCheckpoint, EventsPart, FieldDef, Prop, SegmentDef,
    SegmentKind, SparseVec, StoredEvent, Value,
};
use sift_lang::{FieldType, Schema};

use crate::StoreError;
use crate::checkpoint_columns::{DICTIONARY, VALUES};
use crate::codec::{filter_from_json, filter_to_json};
use crate::load::LoadSchema;

#[derive(Default)]
pub(crate) struct Out {
    pub(crate) bytes: Vec<u8>,
}

impl Out {
    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i32(&mut self, v: i32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u128(&mut self, v: u128) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.bytes.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    pub(crate) fn bitmap(&mut self, bitmap: &RoaringBitmap) -> Result<(), StoreError> {
        self.len(bitmap.serialized_size());
        bitmap.serialize_into(&mut self.bytes)?;
        Ok(())
    }

    /// Tags: 0 string, 1 number, 2 boolean, 3 date (days), 4 datetime (ms),
    /// 5 list of strings.
    pub(crate) fn value(&mut self, value: &Value) {
        match value {
            Value::String(s) => {
                self.u8(0);
                self.str(s);
            }
            Value::Number(n) => {
                self.u8(1);
                self.f64(*n);
            }
            Value::Boolean(b) => {
                self.u8(2);
                self.u8(u8::from(*b));
            }
            Value::Date(d) => {
                self.u8(3);
                self.i32(*d);
            }
            Value::DateTime(t) => {
                self.u8(4);
                self.i64(*t);
            }
            Value::StringList(items) => {
                self.u8(5);
                self.len(items.len());
                for item in items {
                    self.str(item);
                }
            }
        }
    }

    /// Same tags as [`Out::value`], strings and list elements as ids into
    /// the event strings.
    pub(crate) fn prop(&mut self, prop: &Prop) {
        match prop {
            Prop::Str(id) => {
                self.u8(0);
                self.u32(*id);
            }
            Prop::Num(n) => {
                self.u8(1);
                self.f64(*n);
            }
            Prop::Bool(b) => {
                self.u8(2);
                self.u8(u8::from(*b));
            }
            Prop::Date(d) => {
                self.u8(3);
                self.i32(*d);
            }
            Prop::DateTime(t) => {
                self.u8(4);
                self.i64(*t);
            }
            Prop::List(ids) => {
                self.u8(5);
                self.len(ids.len());
                for id in ids.iter() {
                    self.u32(*id);
                }
            }
        }
    }
}

pub(crate) struct In<'a> {
    bytes: &'a [u8],
    /// What the bytes are, for errors: "checkpoint part", "event block".
    kind: &'static str,
    part: &'a str,
}

impl<'a> In<'a> {
    pub(crate) fn new(bytes: &'a [u8], part: &'a str) -> In<'a> {
        In::labelled(bytes, "checkpoint part", part)
    }

    pub(crate) fn labelled(bytes: &'a [u8], kind: &'static str, part: &'a str) -> In<'a> {
        In { bytes, kind, part }
    }

    pub(crate) fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt(format!("{} {:?}: {what}", self.kind, self.part))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if n > self.bytes.len() {
            return Err(self.corrupt("cut short"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, StoreError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub(crate) fn f64(&mut self) -> Result<f64, StoreError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    pub(crate) fn u128(&mut self) -> Result<u128, StoreError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    /// A count of items each at least `min` bytes long: larger than what is
    /// left means damage, refused before anything is allocated for it.
    pub(crate) fn len(&mut self, min: usize) -> Result<usize, StoreError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min.max(1)) > self.bytes.len() {
            return Err(self.corrupt("a length beyond its end"));
        }
        Ok(n)
    }

    pub(crate) fn str(&mut self) -> Result<String, StoreError> {
        self.str_ref().map(str::to_string)
    }

    pub(crate) fn str_ref(&mut self) -> Result<&'a str, StoreError> {
        let n = self.len(1)?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map_err(|_| self.corrupt("a string not UTF-8"))
    }

    pub(crate) fn opt_str(&mut self) -> Result<Option<String>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(self.corrupt("a bad optional tag")),
        }
    }

    pub(crate) fn bitmap(&mut self) -> Result<RoaringBitmap, StoreError> {
        let n = self.len(1)?;
        let bytes = self.take(n)?;
        RoaringBitmap::deserialize_from(bytes).map_err(|e| self.corrupt(&e.to_string()))
    }

    /// A value (see [`Out::value`]) after its tag.
    pub(crate) fn tagged_value(&mut self, tag: u8) -> Result<Value, StoreError> {
        Ok(match tag {
            0 => Value::String(self.str()?),
            1 => Value::Number(self.f64()?),
            2 => Value::Boolean(self.u8()? != 0),
            3 => Value::Date(self.i32()?),
            4 => Value::DateTime(self.i64()?),
            5 => {
                let n = self.len(4)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.str()?);
                }
                Value::StringList(items)
            }
            _ => return Err(self.corrupt("a bad value tag")),
        })
    }

    pub(crate) fn prop(&mut self) -> Result<Prop, StoreError> {
        Ok(match self.u8()? {
            0 => Prop::Str(self.u32()?),
            1 => Prop::Num(self.f64()?),
            2 => Prop::Bool(self.u8()? != 0),
            3 => Prop::Date(self.i32()?),
            4 => Prop::DateTime(self.i64()?),
            5 => {
                let n = self.len(4)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(self.u32()?);
                }
                Prop::List(ids.into_boxed_slice())
            }
            _ => return Err(self.corrupt("a bad property tag")),
        })
    }
}

/// The parts of a checkpoint, by name, as bytes.
pub(crate) fn encode(ckpt: &EngineCheckpoint) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut parts = Vec::new();
    let mut out = Out::default();
    out.len(ckpt.fields.len());
    for def in &ckpt.fields {
        out.str(&def.name);
        out.str(def.field_type.name());
        out.str(&def.label);
        out.u8(u8::from(def.builtin));
        out.u8(u8::from(def.system));
    }
    parts.push(("fields".to_string(), std::mem::take(&mut out.bytes)));
    out.len(ckpt.contacts.len());
    for (no, id, alive) in &ckpt.contacts {
        out.u32(*no);
        out.u8(u8::from(*alive));
        out.str(id);
    }
    parts.push(("contacts".to_string(), std::mem::take(&mut out.bytes)));
    for (index, column) in ckpt.columns.iter().enumerate() {
        match column {
            ColumnPart::Values(values) => {
                out.u8(VALUES);
                out.len(values.len());
                for (no, value) in values {
                    out.u32(*no);
                    out.value(value);
                }
            }
            ColumnPart::Strings {
                dictionary,
                positions,
            } => {
                out.u8(DICTIONARY);
                out.len(dictionary.len());
                for text in dictionary {
                    out.str(text);
                }
                out.len(positions.len());
                for (no, position) in positions {
                    out.u32(*no);
                    out.u32(*position);
                }
            }
        }
        parts.push((format!("column.{index}"), std::mem::take(&mut out.bytes)));
    }
    out.len(ckpt.segments.len());
    for (def, members) in &ckpt.segments {
        out.str(&def.id);
        out.str(&def.name);
        out.str(&def.description);
        out.str(def.kind.as_str());
        let condition = def
            .condition
            .as_ref()
            .map(|c| sift_lang::to_json(c).to_string());
        out.opt_str(condition.as_deref());
        out.u8(u8::from(def.test));
        out.i64(def.created_at);
        out.i64(def.updated_at);
        out.bitmap(members)?;
    }
    parts.push(("segments".to_string(), std::mem::take(&mut out.bytes)));
    out.len(ckpt.aggregates.len());
    for a in &ckpt.aggregates {
        out.str(&a.event_type);
        out.opt_str(a.filter.as_ref().map(filter_to_json).as_deref());
        out.opt_str(a.window.map(sift_lang::duration_to_json).as_deref());
        out.opt_str(a.property.as_deref());
        encode_counts(&mut out, &a.counts);
        encode_sums(&mut out, &a.sums);
    }
    parts.push(("aggregates".to_string(), std::mem::take(&mut out.bytes)));
    let events = &ckpt.events;
    for list in [&events.types, &events.names, &events.strings] {
        out.len(list.len());
        for s in list {
            out.str(s);
        }
    }
    out.u32(events.next_arrival);
    match &events.held {
        None => out.u8(0),
        Some(kinds) => {
            out.u8(1);
            out.len(kinds.len());
            for (kind, names) in kinds {
                out.u32(*kind);
                out.len(names.len());
                for name in names {
                    out.u32(*name);
                }
            }
        }
    }
    out.len(events.by_contact.len());
    for (no, list) in &events.by_contact {
        out.u32(*no);
        out.len(list.len());
        for event in list {
            out.i64(event.at);
            out.u32(event.kind);
            out.u32(event.arrival);
            out.len(event.props.len());
            for (name, prop) in event.props.iter() {
                out.u32(*name);
                out.prop(prop);
            }
        }
    }
    parts.push(("events".to_string(), std::mem::take(&mut out.bytes)));
    out.len(events.ids.len());
    for id in &events.ids {
        out.u128(*id);
    }
    parts.push((
        "idempotency_keys".to_string(),
        std::mem::take(&mut out.bytes),
    ));
    out.len(ckpt.timers.len());
    for at in &ckpt.timers {
        out.i64(*at);
    }
    parts.push(("timers".to_string(), std::mem::take(&mut out.bytes)));
    out.u32(u32::from(ckpt.on_disk));
    out.len(ckpt.lasting.len());
    for points in &ckpt.lasting {
        out.f64(*points);
    }
    parts.push(("lasting".to_string(), std::mem::take(&mut out.bytes)));
    Ok(parts)
}

/// Decodes the `fields` part.
pub(crate) fn decode_fields(bytes: &[u8]) -> Result<Vec<FieldDef>, StoreError> {
    let mut fields = Vec::new();
    let mut r = In::new(bytes, "fields");
    for _ in 0..r.len(8)? {
        let name = r.str()?;
        let type_name = r.str()?;
        let field_type = FieldType::from_name(&type_name)
            .ok_or_else(|| StoreError::Corrupt(format!("field type {type_name:?}")))?;
        fields.push(FieldDef {
            name,
            field_type,
            label: r.str()?,
            builtin: r.u8()? != 0,
            system: r.u8()? != 0,
        });
    }
    Ok(fields)
}

/// A form tag: every entry in order, or only the non-zero ones.
const DENSE: u8 = 0;
const SPARSE: u8 = 1;

/// An aggregate's counts: `u8` form; dense: `u8` width (1, 2, 4), `u32`
/// length, the counts in that width; sparse (when fewer bytes): `u32`
/// length, list of (`u32` number, `u32` count) of the non-zero ones.
fn encode_counts(out: &mut Out, counts: &Counts) {
    let nonzero = counts.nonzero().count();
    if nonzero * 8 < counts.len() * counts.width() {
        out.u8(SPARSE);
        out.len(counts.len());
        out.len(nonzero);
        for (no, count) in counts.nonzero() {
            out.u32(no as u32);
            out.u32(count);
        }
    } else {
        out.u8(DENSE);
        out.u8(counts.width() as u8);
        out.len(counts.len());
        counts.le_bytes(&mut out.bytes);
    }
}

/// `contacts` bounds a sparse form's length: past it, a damaged part.
fn decode_counts(r: &mut In<'_>, contacts: usize) -> Result<Counts, StoreError> {
    match r.u8()? {
        DENSE => {
            let width = usize::from(r.u8()?);
            let n = r.len(width.max(1))?;
            let bytes = r.take(n * width)?;
            Counts::from_le_bytes(width, bytes).ok_or_else(|| r.corrupt("a bad count width"))
        }
        SPARSE => {
            let len = r.u32()? as usize;
            if len > contacts {
                return Err(r.corrupt("more counts than contacts"));
            }
            let mut counts = Counts::default();
            counts.resize(len);
            for _ in 0..r.len(8)? {
                let no = r.u32()? as usize;
                let count = r.u32()?;
                if no >= len {
                    return Err(r.corrupt("a count past the end"));
                }
                counts.set(no, count);
            }
            Ok(counts)
        }
        _ => Err(r.corrupt("a bad counts form")),
    }
}

/// An aggregate's sums: `u8` form; dense: list of `f64`; sparse (when
/// fewer bytes): `u32` length, list of (`u32` number, `f64` sum) of the
/// non-zero ones (a zero's sign is not kept: it compares as zero).
fn encode_sums(out: &mut Out, sums: &SparseVec<f64>) {
    let nonzero = sums.nonzero().count();
    if nonzero * 12 < sums.len() * 8 {
        out.u8(SPARSE);
        out.len(sums.len());
        out.len(nonzero);
        for (no, sum) in sums.nonzero() {
            out.u32(no as u32);
            out.f64(sum);
        }
    } else {
        out.u8(DENSE);
        out.len(sums.len());
        for sum in sums.iter() {
            out.f64(sum);
        }
    }
}

fn decode_sums(r: &mut In<'_>, contacts: usize) -> Result<SparseVec<f64>, StoreError> {
    match r.u8()? {
        DENSE => {
            let n = r.len(8)?;
            let mut sums = Vec::with_capacity(n);
            for _ in 0..n {
                sums.push(r.f64()?);
            }
            Ok(sums.into_iter().collect())
        }
        SPARSE => {
            let len = r.u32()? as usize;
            if len > contacts {
                return Err(r.corrupt("more sums than contacts"));
            }
            let mut sums = SparseVec::new();
            sums.resize(len);
            for _ in 0..r.len(12)? {
                let no = r.u32()? as usize;
                let sum = r.f64()?;
                if no >= len {
                    return Err(r.corrupt("a sum past the end"));
                }
                sums.set(no, sum);
            }
            Ok(sums)
        }
        _ => Err(r.corrupt("a bad sums form")),
    }
}

/// Decodes the parts after the columns, each read (and verified) by `take`
/// in turn; the checkpoint's fields, contacts and columns are left empty.
pub(crate) fn decode_rest(
    take: &mut dyn FnMut(&str) -> Result<Vec<u8>, StoreError>,
    clock: i64,
    schema: &LoadSchema<'_>,
    contacts: usize,
) -> Result<EngineCheckpoint, StoreError> {
    let mut ckpt = EngineCheckpoint {
        clock,
        ..EngineCheckpoint::default()
    };
    let bytes = take("segments")?;
    let mut r = In::new(&bytes, "segments");
    for _ in 0..r.len(40)? {
        let id = r.str()?;
        let name = r.str()?;
        let description = r.str()?;
        let kind_text = r.str()?;
        let kind = SegmentKind::parse(&kind_text)
            .ok_or_else(|| StoreError::Corrupt(format!("segment kind {kind_text:?}")))?;
        // A condition that no longer reads against the stored schema (a
        // segment it names is gone) cannot equal the stored one: the
        // segment is then evaluated afresh.
        let condition = r.opt_str()?.and_then(|text| {
            let json = serde_json::from_str(&text).ok()?;
            sift_lang::from_json(&json, schema as &dyn Schema).ok()
        });
        let def = SegmentDef {
            id,
            name,
            description,
            kind,
            condition,
            test: r.u8()? != 0,
            created_at: r.i64()?,
            updated_at: r.i64()?,
        };
        ckpt.segments.push((def, r.bitmap()?));
    }
    let bytes = take("aggregates")?;
    let mut r = In::new(&bytes, "aggregates");
    for _ in 0..r.len(8)? {
        let event_type = r.str()?;
        let filter = match r.opt_str()? {
            Some(text) => Some(
                filter_from_json(&event_type, &text)
                    .map_err(|e| StoreError::Corrupt(format!("aggregate filter {text:?}: {e}")))?,
            ),
            None => None,
        };
        let window = match r.opt_str()? {
            Some(text) => Some(
                sift_lang::duration_from_json(&text)
                    .ok_or_else(|| StoreError::Corrupt(format!("aggregate window {text:?}")))?,
            ),
            None => None,
        };
        let property = r.opt_str()?;
        let counts = decode_counts(&mut r, contacts)?;
        let sums = decode_sums(&mut r, contacts)?;
        ckpt.aggregates.push(AggregatePart {
            event_type,
            filter,
            window,
            property,
            counts,
            sums,
        });
    }
    let bytes = take("events")?;
    let mut r = In::new(&bytes, "events");
    let mut events = EventsPart::default();
    for list in [&mut events.types, &mut events.names, &mut events.strings] {
        for _ in 0..r.len(4)? {
            list.push(r.str()?);
        }
    }
    events.next_arrival = r.u32()?;
    events.held = match r.u8()? {
        0 => None,
        _ => {
            let mut kinds = Vec::new();
            for _ in 0..r.len(8)? {
                let kind = r.u32()?;
                let mut names = Vec::new();
                for _ in 0..r.len(4)? {
                    names.push(r.u32()?);
                }
                kinds.push((kind, names));
            }
            Some(kinds)
        }
    };
    for _ in 0..r.len(8)? {
        let no = r.u32()?;
        let n = r.len(20)?;
        let mut list = Vec::with_capacity(n);
        for _ in 0..n {
            let at = r.i64()?;
            let kind = r.u32()?;
            let arrival = r.u32()?;
            let props_len = r.len(5)?;
            let mut props = Vec::with_capacity(props_len);
            for _ in 0..props_len {
                let name = r.u32()?;
                props.push((name, r.prop()?));
            }
            list.push(StoredEvent {
                at,
                kind,
                arrival,
                props: props.into_boxed_slice(),
            });
        }
        events.by_contact.push((no, list));
    }
    let bytes = take("idempotency_keys")?;
    let mut r = In::new(&bytes, "idempotency_keys");
    for _ in 0..r.len(16)? {
        events.ids.push(r.u128()?);
    }
    ckpt.events = events;
    let bytes = take("timers")?;
    let mut r = In::new(&bytes, "timers");
    for _ in 0..r.len(8)? {
        ckpt.timers.push(r.i64()?);
    }
    if !r.is_empty() {
        return Err(StoreError::Corrupt(
            "part \"timers\": bytes after its end".into(),
        ));
    }
    let bytes = take("lasting")?;
    let mut r = In::new(&bytes, "lasting");
    ckpt.on_disk = match r.u32()? {
        0 => false,
        1 => true,
        _ => return Err(StoreError::Corrupt("part \"lasting\": a bad mode".into())),
    };
    for _ in 0..r.len(8)? {
        ckpt.lasting.push(r.f64()?);
    }
    if !r.is_empty() {
        return Err(StoreError::Corrupt(
            "part \"lasting\": bytes after its end".into(),
        ));
    }
    Ok(ckpt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint_columns::decode_column;

    fn round_trip(counts: &Counts, sums: &SparseVec<f64>) -> (Counts, SparseVec<f64>, usize) {
        let mut out = Out::default();
        encode_counts(&mut out, counts);
        encode_sums(&mut out, sums);
        let size = out.bytes.len();
        let mut r = In::new(&out.bytes, "aggregates");
        let back = (
            decode_counts(&mut r, 10_000).unwrap(),
            decode_sums(&mut r, 10_000).unwrap(),
        );
        assert!(r.is_empty());
        (back.0, back.1, size)
    }

    /// Counts and sums come back equal in either form; a sparse one takes
    /// the fewer bytes, and a length past the contacts is refused.
    /// A format 3 column part (values, no form tag) still decodes, as the
    /// same values do in format 4's values form and a string column in its
    /// dictionary form.
    #[test]
    fn column_parts_of_format_3_and_4_decode_alike() {
        let values: Vec<(u32, Value)> = (0..3000u32)
            .filter(|no| no % 5 != 0)
            .map(|no| (no, Value::String(format!("v{}", no % 17))))
            .collect();
        let mut v3 = Out::default();
        v3.len(values.len());
        for (no, value) in &values {
            v3.u32(*no);
            v3.value(value);
        }
        let mut v4 = Out::default();
        v4.u8(VALUES);
        v4.bytes.extend_from_slice(&v3.bytes);
        let old = decode_column(&v3.bytes, "column.0", FieldType::String, false).unwrap();
        let new = decode_column(&v4.bytes, "column.0", FieldType::String, true).unwrap();
        let mut dictionary = Out::default();
        dictionary.u8(DICTIONARY);
        dictionary.len(17);
        for i in 0..17 {
            dictionary.str(&format!("v{i}"));
        }
        dictionary.len(values.len());
        for (no, _) in &values {
            dictionary.u32(*no);
            dictionary.u32(no % 17);
        }
        let from_dictionary =
            decode_column(&dictionary.bytes, "column.0", FieldType::String, true).unwrap();
        for no in 0..3001 {
            let expected = values
                .iter()
                .find(|(n, _)| *n == no)
                .map(|(_, v)| v.clone());
            assert_eq!(old.get(no), expected);
            assert_eq!(new.get(no), expected);
            assert_eq!(from_dictionary.get(no), expected);
        }
        // A position past the dictionary is damage, not a panic.
        let mut bad = dictionary.bytes.clone();
        let last = bad.len() - 4;
        bad[last..].copy_from_slice(&17u32.to_le_bytes());
        assert!(decode_column(&bad, "column.0", FieldType::String, true).is_err());
    }

    #[test]
    fn aggregate_counts_and_sums_round_trip_dense_or_sparse() {
        let mut dense: Vec<u32> = (0..5_000).map(|i| i % 3).collect();
        dense[7] = 300;
        let mut sparse = vec![0u32; 5_000];
        sparse[4_999] = 70_000;
        sparse[12] = 1;
        for counts in [dense, sparse, Vec::new()] {
            let sums: SparseVec<f64> = counts.iter().map(|c| f64::from(*c) * 1.5).collect();
            let counts = Counts::from(counts);
            let (c, s, size) = round_trip(&counts, &sums);
            assert_eq!(c, counts);
            assert_eq!(c.width(), counts.width());
            assert_eq!(s, sums);
            let nonzero = counts.nonzero().count();
            assert!(size <= 2 + 8 + counts.len() * counts.width() + 9 + sums.len() * 8);
            if nonzero * 8 < counts.len() * counts.width() {
                assert!(size <= 58, "sparse: {size} bytes");
            }
        }
        let mut out = Out::default();
        out.u8(SPARSE);
        out.len(20_000);
        out.len(0);
        let mut r = In::new(&out.bytes, "aggregates");
        assert!(decode_counts(&mut r, 10_000).is_err());
    }
}
