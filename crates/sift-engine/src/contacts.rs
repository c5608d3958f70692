//! The contact table: dense internal numbers for client ids, the set of live
//! contacts, and one column per field.
//!
//! Numbers are assigned in creation order and never reused, so a number in
//! the change log always names the same contact.

use std::sync::Arc;

use roaring::RoaringBitmap;
use sift_lang::FieldType;

use crate::bits::Bits;
use crate::columns::{Column, ColumnData};
use crate::fields::ANONYMOUS;
use crate::paged::PagedVec;
use crate::str_index::StrIndex;
use crate::value::Value;

#[derive(Clone, Debug, Default)]
pub struct Contacts {
    /// A copy of the table (a checkpoint's) bumps counts instead of
    /// copying strings.
    ids: PagedVec<Arc<str>>,
    /// The live contacts' numbers, found by their ids in `ids`.
    by_id: StrIndex,
    alive: Bits,
    alive_set: RoaringBitmap,
    /// Live contacts with `anonymous: true`, so that a segment's anonymous
    /// members are one bitmap intersection away.
    anonymous_set: RoaringBitmap,
    columns: Vec<Column>,
}

impl Contacts {
    /// A copy without the index from ids to numbers, which a checkpoint
    /// does not need (it is rebuilt from the ids) and which was the
    /// costliest part to copy while writes wait. The live and anonymous
    /// sets are left out too (bitmaps copied whole: at ten million contacts
    /// ~12 ms of fresh memory while writes wait): the copy's
    /// [`Contacts::alive`] and [`Contacts::anonymous`] are empty, and
    /// [`Contacts::alive_from_bits`] gives the live set from the paged bits.
    pub fn copy_without_index(&self) -> Contacts {
        Contacts {
            ids: self.ids.clone(),
            by_id: StrIndex::default(),
            alive: self.alive.clone(),
            alive_set: RoaringBitmap::new(),
            anonymous_set: RoaringBitmap::new(),
            columns: self
                .columns
                .iter()
                .map(Column::copy_without_index)
                .collect(),
        }
    }

    pub fn lookup(&self, id: &str) -> Option<u32> {
        self.by_id.get(id, &self.ids)
    }

    /// The client id of contact `no` (also of a deleted one).
    pub fn id(&self, no: u32) -> &str {
        self.ids.get(no as usize).map_or("", |s| s)
    }

    /// Numbers handed out so far (deleted ones included).
    pub fn capacity(&self) -> u32 {
        self.ids.len() as u32
    }

    pub fn alive(&self) -> &RoaringBitmap {
        &self.alive_set
    }

    /// The live contacts, read from the paged bits (also right in a
    /// [`Contacts::copy_without_index`]).
    pub fn alive_from_bits(&self) -> RoaringBitmap {
        let numbers = self.alive.words().enumerate().flat_map(|(w, word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let no = (w * 64) as u32 + bits.trailing_zeros();
                    bits &= bits - 1;
                    no
                })
            })
        });
        RoaringBitmap::from_sorted_iter(numbers).unwrap_or_default()
    }

    pub fn anonymous(&self) -> &RoaringBitmap {
        &self.anonymous_set
    }

    pub fn alive_bits(&self) -> &Bits {
        &self.alive
    }

    /// The live contacts' bits, 64 to a word, from contact 0.
    pub fn alive_words(&self) -> impl Iterator<Item = u64> + '_ {
        self.alive.words()
    }

    pub fn is_alive(&self, no: u32) -> bool {
        self.alive.get(no)
    }

    pub fn count(&self) -> u64 {
        self.alive_set.len()
    }

    /// Creates a contact with the next number.
    pub fn insert(&mut self, id: &str) -> u32 {
        let no = self.ids.len() as u32;
        self.insert_at(no, id);
        no
    }

    /// Creates (or revives, on restore) contact `no` with `id`.
    pub fn insert_at(&mut self, no: u32, id: &str) {
        let index = no as usize;
        if index >= self.ids.len() {
            self.ids.resize(index + 1, Arc::from(""));
        }
        if self.alive.get(no) {
            self.by_id.remove(no, &self.ids);
        }
        // One probe when the id is new (every write creating a contact);
        // another live contact holding it loses it, as the id maps to one.
        let taken = self.by_id.get_or_insert(id, no, &self.ids);
        self.ids[index] = Arc::from(id);
        if let Ok(other) = taken {
            self.by_id.remove(other, &self.ids);
            self.by_id.insert(no, &self.ids);
        }
        self.alive.set(no, true);
        self.alive_set.insert(no);
    }

    /// Fills an empty table with `contacts` (number, id, alive), numbers
    /// ascending (an entry that does not ascend is skipped), in one pass: a
    /// start's ten million ids cost one hash each, with no per-contact
    /// growth of the vectors.
    pub fn load<'a>(&mut self, contacts: impl ExactSizeIterator<Item = (u32, &'a str, bool)>) {
        let n = contacts.len();
        let empty: Arc<str> = Arc::from("");
        let mut ids: Vec<Arc<str>> = Vec::with_capacity(n);
        let mut alive = Vec::with_capacity(n);
        for (no, id, live) in contacts {
            let index = no as usize;
            if index < ids.len() {
                continue;
            }
            ids.resize(index, empty.clone());
            ids.push(Arc::from(id));
            if live {
                alive.push(no);
            }
        }
        self.ids = PagedVec::from(ids);
        self.by_id = StrIndex::default();
        self.by_id.reserve(alive.len(), &self.ids);
        for &no in &alive {
            // Two live contacts never share an id; should a damaged
            // checkpoint hold one twice, the first number keeps it.
            let id = self.ids.get(no as usize).map_or("", |s| s);
            let _ = self.by_id.get_or_insert(id, no, &self.ids);
        }
        self.alive = Bits::from_sorted(alive.iter().copied());
        self.alive_set = RoaringBitmap::from_sorted_iter(alive).unwrap_or_default();
    }

    /// Records the id of contact `no`, deleted before a restart, so that the
    /// change log still names it; unlike [`Contacts::insert_at`] it leaves the
    /// contact dead and its id free for a live contact.
    pub fn insert_tombstone(&mut self, no: u32, id: &str) {
        let index = no as usize;
        if index >= self.ids.len() {
            self.ids.resize(index + 1, Arc::from(""));
        }
        self.ids[index] = Arc::from(id);
    }

    /// Erases contact `no`'s data; its id stays readable for the change log.
    pub fn delete(&mut self, no: u32) {
        if self.alive.get(no) {
            self.by_id.remove(no, &self.ids);
        }
        self.alive.set(no, false);
        self.alive_set.remove(no);
        self.anonymous_set.remove(no);
        for column in &mut self.columns {
            column.set(no, None);
        }
    }

    pub fn add_column(&mut self, field_type: FieldType) {
        self.columns.push(Column::new(field_type));
    }

    /// Puts a column built whole in place of column `index` (a start's,
    /// over the contacts [`Contacts::load`] laid down).
    pub fn replace_column(&mut self, index: usize, column: Column) {
        if index == ANONYMOUS {
            let ColumnData::Bool(values) = &column.data else {
                return;
            };
            self.anonymous_set = RoaringBitmap::from_sorted_iter(
                self.alive_set
                    .iter()
                    .filter(|no| values.get(*no) == Some(&true)),
            )
            .unwrap_or_default();
        }
        if let Some(slot) = self.columns.get_mut(index) {
            *slot = column;
        }
    }

    /// Replaces an empty column with one of another type.
    pub fn retype_column(&mut self, index: usize, field_type: FieldType) {
        self.columns[index] = Column::new(field_type);
    }

    pub fn column(&self, index: usize) -> &Column {
        &self.columns[index]
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn get(&self, no: u32, field: usize) -> Option<Value> {
        self.columns[field].get(no)
    }

    pub fn set(&mut self, no: u32, field: usize, value: Option<&Value>) {
        if field == ANONYMOUS {
            if matches!(value, Some(Value::Boolean(true))) {
                self.anonymous_set.insert(no);
            } else {
                self.anonymous_set.remove(no);
            }
        }
        self.columns[field].set(no, value)
    }
}
