//! The byte layout of a checkpoint's parts (docs/storage.md "Checkpoints"):
//! little-endian integers and floats, strings as a `u32` byte length and
//! UTF-8, bitmaps in roaring's portable serialization. Decoding checks every
//! length against what is left, so a damaged part is an error, never a
//! panic or a huge allocation.

use roaring::RoaringBitmap;
use sift_engine::{Prop, Value};

use crate::StoreError;

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
    part: &'a str,
}

fn corrupt(part: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("checkpoint part {part:?}: {what}"))
}

impl<'a> In<'a> {
    pub(crate) fn new(bytes: &'a [u8], part: &'a str) -> In<'a> {
        In { bytes, part }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if n > self.bytes.len() {
            return Err(corrupt(self.part, "cut short"));
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
            return Err(corrupt(self.part, "a length beyond its end"));
        }
        Ok(n)
    }

    pub(crate) fn str(&mut self) -> Result<String, StoreError> {
        let n = self.len(1)?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(self.part, "a string not UTF-8"))
    }

    pub(crate) fn opt_str(&mut self) -> Result<Option<String>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(corrupt(self.part, "a bad optional tag")),
        }
    }

    pub(crate) fn bitmap(&mut self) -> Result<RoaringBitmap, StoreError> {
        let n = self.len(1)?;
        let bytes = self.take(n)?;
        RoaringBitmap::deserialize_from(bytes).map_err(|e| corrupt(self.part, &e.to_string()))
    }

    pub(crate) fn value(&mut self) -> Result<Value, StoreError> {
        Ok(match self.u8()? {
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
            _ => return Err(corrupt(self.part, "a bad value tag")),
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
            _ => return Err(corrupt(self.part, "a bad property tag")),
        })
    }
}
