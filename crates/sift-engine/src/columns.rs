//! Columnar property storage: one [`Column`] per field, indexed by contact
//! number. Strings are interned per column so that equality tests compare
//! numbers, and list elements keep an inverted index (element → contacts) so
//! that `contains` is a bitmap lookup.

use std::sync::Arc;

use roaring::RoaringBitmap;
use sift_lang::FieldType;

use crate::bits::Bits;
use crate::eval::ValueRef;
use crate::paged::PagedVec;
use crate::slots::Slots;
use crate::str_index::StrIndex;
use crate::value::Value;

/// Interned strings of one column. Strings are never freed while the process
/// runs (a rebuild on restart drops unused ones).
#[derive(Clone, Debug, Default)]
pub struct Interner {
    strings: PagedVec<Arc<str>>,
    ids: StrIndex,
}

impl Interner {
    /// A copy that can resolve ids but not look strings up, for a
    /// checkpoint taken under the write lock: the index is rebuilt from the
    /// strings when the checkpoint is loaded, and copying it would cost a
    /// hash-table copy per distinct string while writes wait.
    pub fn copy_without_index(&self) -> Interner {
        Interner {
            strings: self.strings.clone(),
            ids: StrIndex::default(),
        }
    }

    pub fn intern(&mut self, text: &str) -> u32 {
        let next = self.strings.len() as u32;
        match self.ids.get_or_insert(text, next, &self.strings) {
            Ok(id) => id,
            Err(id) => {
                self.strings.push(Arc::from(text));
                id
            }
        }
    }

    pub fn lookup(&self, text: &str) -> Option<u32> {
        self.ids.get(text, &self.strings)
    }

    /// Room for `additional` more strings without growing the index.
    pub fn reserve(&mut self, additional: usize) {
        self.ids.reserve(additional, &self.strings);
    }

    pub fn resolve(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
    }

    /// Every string, in id order.
    pub fn strings(&self) -> impl Iterator<Item = &Arc<str>> + '_ {
        self.strings.iter()
    }
}

/// A string column's distinct strings, and (contact number, position
/// among them) of each holder: see [`Column::string_part`].
pub type StringPart = (Vec<Arc<str>>, Vec<(u32, u32)>);

#[derive(Clone, Debug)]
pub enum ColumnData {
    Bool(Slots<Bits>),
    Number(Slots<PagedVec<f64>>),
    Date(Slots<PagedVec<i32>>),
    DateTime(Slots<PagedVec<i64>>),
    Str {
        values: Slots<PagedVec<u32>>,
        dict: Interner,
    },
    List {
        values: Slots<PagedVec<Box<[u32]>>>,
        dict: Interner,
        /// Contacts holding each element, by element id.
        index: Vec<RoaringBitmap>,
    },
}

/// One field's values. Its memory follows the contacts holding a value (see
/// [`crate::slots`]), not the number of contacts.
#[derive(Clone, Debug)]
pub struct Column {
    pub data: ColumnData,
}

impl Column {
    /// A copy for a checkpoint: values shared page by page, string and
    /// element indexes left out (see [`Interner::copy_without_index`]).
    pub fn copy_without_index(&self) -> Column {
        let data = match &self.data {
            ColumnData::Str { values, dict } => ColumnData::Str {
                values: values.clone(),
                dict: dict.copy_without_index(),
            },
            // The element index is left out too: a checkpoint stores the
            // lists, and a start rebuilds the index from them.
            ColumnData::List { values, dict, .. } => ColumnData::List {
                values: values.clone(),
                dict: dict.copy_without_index(),
                index: Vec::new(),
            },
            other => other.clone(),
        };
        Column { data }
    }

    pub fn new(field_type: FieldType) -> Column {
        let data = match field_type {
            FieldType::Boolean => ColumnData::Bool(Slots::default()),
            FieldType::Number => ColumnData::Number(Slots::default()),
            FieldType::Date => ColumnData::Date(Slots::default()),
            FieldType::DateTime => ColumnData::DateTime(Slots::default()),
            FieldType::String => ColumnData::Str {
                values: Slots::default(),
                dict: Interner::default(),
            },
            FieldType::StringList => ColumnData::List {
                values: Slots::default(),
                dict: Interner::default(),
                index: Vec::new(),
            },
        };
        Column { data }
    }

    /// Contacts holding a value.
    pub fn holders(&self) -> usize {
        match &self.data {
            ColumnData::Bool(s) => s.holders(),
            ColumnData::Number(s) => s.holders(),
            ColumnData::Date(s) => s.holders(),
            ColumnData::DateTime(s) => s.holders(),
            ColumnData::Str { values, .. } => values.holders(),
            ColumnData::List { values, .. } => values.holders(),
        }
    }

    /// Whether the values are in the dense form (one slot per contact number).
    pub fn is_dense(&self) -> bool {
        match &self.data {
            ColumnData::Bool(s) => s.is_dense(),
            ColumnData::Number(s) => s.is_dense(),
            ColumnData::Date(s) => s.is_dense(),
            ColumnData::DateTime(s) => s.is_dense(),
            ColumnData::Str { values, .. } => values.is_dense(),
            ColumnData::List { values, .. } => values.is_dense(),
        }
    }

    /// Bytes the column's values take on the heap (interned strings and list
    /// element indexes excluded: they follow distinct values, not contacts).
    pub fn heap_bytes(&self) -> usize {
        match &self.data {
            ColumnData::Bool(s) => s.heap_bytes(),
            ColumnData::Number(s) => s.heap_bytes(),
            ColumnData::Date(s) => s.heap_bytes(),
            ColumnData::DateTime(s) => s.heap_bytes(),
            ColumnData::Str { values, .. } => values.heap_bytes(),
            ColumnData::List { values, index, .. } => {
                values.heap_bytes()
                    + values.holders() * size_of::<u32>()
                    + index.iter().map(|b| b.serialized_size()).sum::<usize>()
            }
        }
    }

    /// A string column's values as a checkpoint stores them: the distinct
    /// strings the contacts of `alive` hold (in id order; strings no one
    /// holds any more are left out) and each contact's position among
    /// them, by number. `None` for other types.
    pub fn string_part(&self, alive: &RoaringBitmap) -> Option<StringPart> {
        let ColumnData::Str { values, dict } = &self.data else {
            return None;
        };
        let mut position = vec![u32::MAX; dict.strings.len()];
        let mut held: Vec<(u32, u32)> = alive
            .iter()
            .filter_map(|no| Some((no, *values.get(no)?)))
            .collect();
        for (_, id) in &held {
            if let Some(slot) = position.get_mut(*id as usize) {
                *slot = 0;
            }
        }
        let mut dictionary = Vec::new();
        for (id, slot) in position.iter_mut().enumerate() {
            if *slot == 0 {
                *slot = dictionary.len() as u32;
                dictionary.push(
                    dict.strings
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| Arc::from("")),
                );
            }
        }
        for (_, id) in &mut held {
            *id = position.get(*id as usize).copied().unwrap_or(0);
        }
        Some((dictionary, held))
    }

    /// Whether any contact holds a value.
    pub fn has_data(&self) -> bool {
        self.holders() > 0
    }

    pub fn is_set(&self, no: u32) -> bool {
        match &self.data {
            ColumnData::Bool(s) => s.contains(no),
            ColumnData::Number(s) => s.contains(no),
            ColumnData::Date(s) => s.contains(no),
            ColumnData::DateTime(s) => s.contains(no),
            ColumnData::Str { values, .. } => values.contains(no),
            ColumnData::List { values, .. } => values.contains(no),
        }
    }

    /// Words `start..end` (64 contacts each) of the contacts holding a value.
    pub fn present_words(&self, start: usize, end: usize) -> Vec<u64> {
        match &self.data {
            ColumnData::Bool(s) => s.present_words(start, end),
            ColumnData::Number(s) => s.present_words(start, end),
            ColumnData::Date(s) => s.present_words(start, end),
            ColumnData::DateTime(s) => s.present_words(start, end),
            ColumnData::Str { values, .. } => values.present_words(start, end),
            ColumnData::List { values, .. } => values.present_words(start, end),
        }
    }

    pub fn get(&self, no: u32) -> Option<Value> {
        Some(match &self.data {
            ColumnData::Bool(s) => Value::Boolean(*s.get(no)?),
            ColumnData::Number(s) => Value::Number(*s.get(no)?),
            ColumnData::Date(s) => Value::Date(*s.get(no)?),
            ColumnData::DateTime(s) => Value::DateTime(*s.get(no)?),
            ColumnData::Str { values, dict } => {
                Value::String(dict.resolve(*values.get(no)?).to_string())
            }
            ColumnData::List { values, dict, .. } => {
                let mut items: Vec<String> = values
                    .get(no)?
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
        Some(match &self.data {
            ColumnData::Bool(s) => ValueRef::Bool(*s.get(no)?),
            ColumnData::Number(s) => ValueRef::Num(*s.get(no)?),
            ColumnData::Date(s) => ValueRef::Date(*s.get(no)?),
            ColumnData::DateTime(s) => ValueRef::DateTime(*s.get(no)?),
            ColumnData::Str { values, dict } => ValueRef::Str(dict.resolve(*values.get(no)?)),
            ColumnData::List { values, dict, .. } => ValueRef::Symbols(values.get(no)?, dict),
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
    /// column's (checked by the caller); a value of another type changes nothing.
    pub fn set(&mut self, no: u32, value: Option<&Value>) {
        match (value, &mut self.data) {
            (None, ColumnData::Bool(s)) => {
                s.set(no, None);
            }
            (None, ColumnData::Number(s)) => {
                s.set(no, None);
            }
            (None, ColumnData::Date(s)) => {
                s.set(no, None);
            }
            (None, ColumnData::DateTime(s)) => {
                s.set(no, None);
            }
            (None, ColumnData::Str { values, .. }) => {
                values.set(no, None);
            }
            (None, ColumnData::List { values, index, .. }) => {
                unindex(index, no, values.set(no, None));
            }
            (Some(Value::Boolean(b)), ColumnData::Bool(s)) => {
                s.set(no, Some(*b));
            }
            (Some(Value::Number(n)), ColumnData::Number(s)) => {
                s.set(no, Some(*n));
            }
            (Some(Value::Date(d)), ColumnData::Date(s)) => {
                s.set(no, Some(*d));
            }
            (Some(Value::DateTime(t)), ColumnData::DateTime(s)) => {
                s.set(no, Some(*t));
            }
            (Some(Value::String(text)), ColumnData::Str { values, dict }) => {
                let id = dict.intern(text);
                values.set(no, Some(id));
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
                unindex(index, no, values.set(no, Some(ids.into())));
                for &id in values.get(no).map_or(&[][..], |ids| &ids[..]) {
                    if id as usize >= index.len() {
                        index.resize(id as usize + 1, RoaringBitmap::new());
                    }
                    index[id as usize].insert(no);
                }
            }
            (Some(_), _) => {}
        }
    }
}

/// Removes contact `no` from the element index of the list it held.
fn unindex(index: &mut [RoaringBitmap], no: u32, old: Option<Box<[u32]>>) {
    for id in old.iter().flat_map(|ids| ids.iter()) {
        if let Some(members) = index.get_mut(*id as usize) {
            members.remove(no);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTACTS: u32 = 100_000;

    #[test]
    fn a_sparse_column_costs_its_holders_not_the_contacts() {
        let mut column = Column::new(FieldType::Number);
        // One value at the last contact number: the case that used to allocate
        // a slot for every contact before it.
        column.set(CONTACTS - 1, Some(&Value::Number(1.5)));
        assert!(!column.is_dense());
        assert!(column.heap_bytes() < 1024, "{}", column.heap_bytes());
        assert_eq!(column.get(CONTACTS - 1), Some(Value::Number(1.5)));
        assert_eq!(column.get(CONTACTS - 2), None);

        // A thousand holders spread over every contact: about a hundred bytes
        // each at most, a small share of the dense form's 800 KB.
        for no in (0..CONTACTS).step_by(100) {
            column.set(no, Some(&Value::Number(f64::from(no))));
        }
        assert_eq!(column.holders(), 1001);
        assert!(!column.is_dense());
        assert!(column.heap_bytes() < 1001 * 100, "{}", column.heap_bytes());
    }

    #[test]
    fn a_column_most_contacts_hold_is_dense_and_turns_sparse_rather_than_grow_far() {
        let mut column = Column::new(FieldType::String);
        for no in 0..CONTACTS {
            column.set(no, Some(&Value::String(format!("v{}", no % 7))));
        }
        assert!(column.is_dense());
        let dense = column.heap_bytes();
        assert!(dense < CONTACTS as usize * 6, "{dense}");
        for no in (0..CONTACTS).step_by(997) {
            assert_eq!(column.get(no), Some(Value::String(format!("v{}", no % 7))));
        }

        // A field a few early contacts hold, then one value far away: no dense
        // growth over the gap.
        let mut early = Column::new(FieldType::Date);
        for no in 0..2000 {
            early.set(no, Some(&Value::Date(no as i32)));
        }
        assert!(early.is_dense());
        early.set(10_000_000, Some(&Value::Date(7)));
        assert!(!early.is_dense());
        assert!(early.heap_bytes() < 2001 * 100, "{}", early.heap_bytes());
        assert_eq!(early.get(1999), Some(Value::Date(1999)));
        assert_eq!(early.get(10_000_000), Some(Value::Date(7)));
        assert_eq!(early.holders(), 2001);
    }

    #[test]
    fn bulk_words_agree_between_sparse_and_dense_forms() {
        let mut sparse = Column::new(FieldType::Boolean);
        let mut dense = Column::new(FieldType::Boolean);
        for no in 0..5000u32 {
            dense.set(no, Some(&Value::Boolean(no % 3 == 0)));
        }
        for no in (0..5000u32).step_by(50) {
            sparse.set(no, Some(&Value::Boolean(no % 3 == 0)));
        }
        assert!(dense.is_dense() && !sparse.is_dense());
        let (ColumnData::Bool(d), ColumnData::Bool(s)) = (&dense.data, &sparse.data) else {
            panic!("boolean columns");
        };
        let words = 5000usize.div_ceil(64);
        let d_true = d.words_where(0, words, |v| *v);
        let s_true = s.words_where(0, words, |v| *v);
        for no in (0..5000usize).step_by(50) {
            let bit = |w: &[u64]| w[no / 64] >> (no % 64) & 1 == 1;
            assert_eq!(bit(&d_true), bit(&s_true), "contact {no}");
            assert_eq!(bit(&s_true), no % 3 == 0);
        }
        assert_eq!(
            s.present_words(0, words)
                .iter()
                .map(|w| w.count_ones())
                .sum::<u32>(),
            100
        );

        // Clearing keeps the count and the words right in both forms.
        dense.set(3, None);
        sparse.set(50, None);
        assert_eq!(dense.holders(), 4999);
        assert_eq!(sparse.holders(), 99);
        assert!(!dense.is_set(3) && !sparse.is_set(50));
    }

    #[test]
    fn a_string_part_holds_the_strings_live_contacts_hold_once_each() {
        let mut column = Column::new(FieldType::String);
        for (no, text) in [
            (0, "gold"),
            (1, "silver"),
            (2, "gold"),
            (3, "bronze"),
            (4, "tin"),
        ] {
            column.set(no, Some(&Value::String(text.into())));
        }
        // "silver" is no one's any more, "tin" only a dead contact's.
        column.set(1, Some(&Value::String("gold".into())));
        let alive: RoaringBitmap = [0, 1, 2, 3].into_iter().collect();
        let Some((dictionary, positions)) = column.string_part(&alive) else {
            panic!("a string column");
        };
        let dictionary: Vec<&str> = dictionary.iter().map(|s| &**s).collect();
        assert_eq!(dictionary, ["gold", "bronze"]);
        assert_eq!(positions, [(0, 0), (1, 0), (2, 0), (3, 1)]);
        assert!(Column::new(FieldType::Number).string_part(&alive).is_none());
    }

    #[test]
    fn a_list_moves_between_elements_in_the_index() {
        let mut column = Column::new(FieldType::StringList);
        let list =
            |items: &[&str]| Value::StringList(items.iter().map(|s| s.to_string()).collect());
        column.set(9, Some(&list(&["a", "b"])));
        column.set(9, Some(&list(&["b", "c"])));
        let ColumnData::List { dict, index, .. } = &column.data else {
            panic!("list column");
        };
        let members = |s: &str| dict.lookup(s).map(|id| index[id as usize].len());
        assert_eq!(
            (members("a"), members("b"), members("c")),
            (Some(0), Some(1), Some(1))
        );
        column.set(9, None);
        assert!(!column.has_data());
    }
}

#[cfg(test)]
mod model {
    use std::collections::BTreeMap;

    use super::*;

    /// Random writes through every density, read back as values and as bulk
    /// words, against a plain map: promotion and demotion lose nothing.
    #[test]
    fn random_writes_read_back_in_both_forms() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let mut column = Column::new(FieldType::Number);
        let mut model: BTreeMap<u32, f64> = BTreeMap::new();
        let mut forms = (false, false);
        for round in 0..40_000u64 {
            // Dense phases write low numbers; sparse phases far ones.
            let span = if (round / 5_000) % 2 == 0 {
                3_000
            } else {
                400_000
            };
            let no = next(span) as u32;
            if next(5) == 0 {
                column.set(no, None);
                model.remove(&no);
            } else {
                let value = next(1_000) as f64;
                column.set(no, Some(&Value::Number(value)));
                model.insert(no, value);
            }
            if column.is_dense() {
                forms.0 = true;
            } else {
                forms.1 = true;
            }
        }
        assert!(forms.0 && forms.1, "both forms were exercised: {forms:?}");
        assert_eq!(column.holders(), model.len());
        for no in 0..400_000u32 {
            assert_eq!(column.get(no), model.get(&no).map(|v| Value::Number(*v)));
        }
        let ColumnData::Number(slots) = &column.data else {
            panic!("number column");
        };
        let words = 400_000usize.div_ceil(64);
        let low = slots.words_where(0, words, |v| *v < 500.0);
        let present = slots.present_words(0, words);
        for no in 0..400_000usize {
            let bit = |w: &[u64]| w[no / 64] >> (no % 64) & 1 == 1;
            let held = model.get(&(no as u32));
            assert_eq!(bit(&present), held.is_some(), "{no}");
            assert_eq!(bit(&low), held.is_some_and(|v| *v < 500.0), "{no}");
        }
    }
}
