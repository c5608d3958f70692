//! Columnar property storage: one [`Column`] per field, indexed by contact
//! number. Strings are interned per column so that equality tests compare
//! numbers, and list elements keep an inverted index (element → contacts) so
//! that `contains` is a bitmap lookup.

use foldhash::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;
use sift_lang::FieldType;

use crate::bits::Bits;
use crate::eval::ValueRef;
use crate::value::Value;

/// Interned strings of one column. Strings are never freed while the process
/// runs (a rebuild on restart drops unused ones).
#[derive(Clone, Debug, Default)]
pub struct Interner {
    strings: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Interner {
    pub fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = self.strings.len() as u32;
        let shared: Arc<str> = Arc::from(text);
        self.strings.push(shared.clone());
        self.ids.insert(shared, id);
        id
    }

    pub fn lookup(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    pub fn resolve(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
    }

    pub fn strings(&self) -> &[Arc<str>] {
        &self.strings
    }
}

#[derive(Clone, Debug)]
pub enum ColumnData {
    Bool(Bits),
    Number(Vec<f64>),
    Date(Vec<i32>),
    DateTime(Vec<i64>),
    Str {
        values: Vec<u32>,
        dict: Interner,
    },
    List {
        values: Vec<Box<[u32]>>,
        dict: Interner,
        /// Contacts holding each element, by element id.
        index: Vec<RoaringBitmap>,
    },
}

#[derive(Clone, Debug)]
pub struct Column {
    pub present: Bits,
    pub data: ColumnData,
    n_present: u64,
}

fn put<T: Clone + Default>(values: &mut Vec<T>, no: u32, value: T) {
    let index = no as usize;
    if index >= values.len() {
        values.resize(index + 1, T::default());
    }
    values[index] = value;
}

impl Column {
    pub fn new(field_type: FieldType) -> Column {
        let data = match field_type {
            FieldType::Boolean => ColumnData::Bool(Bits::default()),
            FieldType::Number => ColumnData::Number(Vec::new()),
            FieldType::Date => ColumnData::Date(Vec::new()),
            FieldType::DateTime => ColumnData::DateTime(Vec::new()),
            FieldType::String => ColumnData::Str {
                values: Vec::new(),
                dict: Interner::default(),
            },
            FieldType::StringList => ColumnData::List {
                values: Vec::new(),
                dict: Interner::default(),
                index: Vec::new(),
            },
        };
        Column {
            present: Bits::default(),
            data,
            n_present: 0,
        }
    }

    /// Whether any contact holds a value.
    pub fn has_data(&self) -> bool {
        self.n_present > 0
    }

    pub fn is_set(&self, no: u32) -> bool {
        self.present.get(no)
    }

    pub fn get(&self, no: u32) -> Option<Value> {
        if !self.present.get(no) {
            return None;
        }
        let i = no as usize;
        Some(match &self.data {
            ColumnData::Bool(bits) => Value::Boolean(bits.get(no)),
            ColumnData::Number(v) => Value::Number(v[i]),
            ColumnData::Date(v) => Value::Date(v[i]),
            ColumnData::DateTime(v) => Value::DateTime(v[i]),
            ColumnData::Str { values, dict } => Value::String(dict.resolve(values[i]).to_string()),
            ColumnData::List { values, dict, .. } => {
                let mut items: Vec<String> = values[i]
                    .iter()
                    .map(|id| dict.resolve(*id).to_string())
                    .collect();
                items.sort_unstable();
                Value::StringList(items)
            }
        })
    }

    /// Contact `no`'s value, borrowed.
    pub fn get_ref(&self, no: u32) -> Option<ValueRef<'_>> {
        if !self.present.get(no) {
            return None;
        }
        let i = no as usize;
        Some(match &self.data {
            ColumnData::Bool(bits) => ValueRef::Bool(bits.get(no)),
            ColumnData::Number(v) => ValueRef::Num(v[i]),
            ColumnData::Date(v) => ValueRef::Date(v[i]),
            ColumnData::DateTime(v) => ValueRef::DateTime(v[i]),
            ColumnData::Str { values, dict } => ValueRef::Str(dict.resolve(values[i])),
            ColumnData::List { values, dict, .. } => ValueRef::Symbols(&values[i], dict),
        })
    }

    /// Whether contact `no` holds exactly `value` (None: nothing).
    pub fn holds(&self, no: u32, value: Option<&Value>) -> bool {
        match (self.get_ref(no), value) {
            (None, None) => true,
            (Some(ValueRef::Str(a)), Some(Value::String(b))) => a == b,
            (Some(ValueRef::Num(a)), Some(Value::Number(b))) => a == *b,
            (Some(ValueRef::Bool(a)), Some(Value::Boolean(b))) => a == *b,
            (Some(ValueRef::Date(a)), Some(Value::Date(b))) => a == *b,
            (Some(ValueRef::DateTime(a)), Some(Value::DateTime(b))) => a == *b,
            (Some(ValueRef::Symbols(ids, dict)), Some(Value::StringList(items))) => {
                ids.len() == items.len()
                    && items
                        .iter()
                        .all(|s| dict.lookup(s).is_some_and(|id| ids.contains(&id)))
            }
            _ => false,
        }
    }

    /// Sets or clears contact `no`'s value. The value's type must match the
    /// column's (checked by the caller).
    pub fn set(&mut self, no: u32, value: Option<&Value>) {
        self.clear_list_index(no);
        let was = self.present.get(no);
        match (value, &mut self.data) {
            (None, _) => {}
            (Some(Value::Boolean(b)), ColumnData::Bool(bits)) => bits.set(no, *b),
            (Some(Value::Number(n)), ColumnData::Number(v)) => put(v, no, *n),
            (Some(Value::Date(d)), ColumnData::Date(v)) => put(v, no, *d),
            (Some(Value::DateTime(t)), ColumnData::DateTime(v)) => put(v, no, *t),
            (Some(Value::String(s)), ColumnData::Str { values, dict }) => {
                let id = dict.intern(s);
                put(values, no, id)
            }
            (
                Some(Value::StringList(items)),
                ColumnData::List {
                    values,
                    dict,
                    index,
                },
            ) => {
                let mut ids: Vec<u32> = items.iter().map(|s| dict.intern(s)).collect();
                ids.sort_unstable();
                ids.dedup();
                let ids: Box<[u32]> = ids.into();
                for &id in ids.iter() {
                    if id as usize >= index.len() {
                        index.resize(id as usize + 1, RoaringBitmap::new());
                    }
                    index[id as usize].insert(no);
                }
                put(values, no, ids)
            }
            (Some(_), _) => return,
        }
        let now = value.is_some();
        self.present.set(no, now);
        match (was, now) {
            (false, true) => self.n_present += 1,
            (true, false) => self.n_present -= 1,
            _ => {}
        }
    }

    fn clear_list_index(&mut self, no: u32) {
        if !self.present.get(no) {
            return;
        }
        if let ColumnData::List { values, index, .. } = &mut self.data {
            for &id in values[no as usize].iter() {
                index[id as usize].remove(no);
            }
            values[no as usize] = Box::new([]);
        }
    }
}
