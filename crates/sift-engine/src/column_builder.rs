//! A column built whole from its values in contact order, as a start reads
//! them from a checkpoint.
//!
//! Setting ten million values one by one checks each page's sharing, grows
//! the vector by one slot and walks the sparse-to-dense promotion several
//! times; the builder gathers the values, then lays the column out in its
//! final form in one pass. It owns nothing of a workspace, so the columns
//! of one start are built on several threads.

use sift_lang::FieldType;

use crate::columns::{Column, ColumnData, Interner};
use crate::slots::Slots;
use crate::value::Value;

pub struct ColumnBuilder {
    data: Gathered,
}

enum Gathered {
    Bool(Vec<(u32, bool)>),
    Number(Vec<(u32, f64)>),
    Date(Vec<(u32, i32)>),
    DateTime(Vec<(u32, i64)>),
    /// Values as interned ids; with a dictionary, the id of each of its
    /// positions.
    Str(Vec<(u32, u32)>, Interner, Vec<u32>),
    /// Lists keep an element index that setting maintains; they are set
    /// one by one.
    List(Column),
}

impl ColumnBuilder {
    /// A builder for a column of `field_type`, expecting about `holders`
    /// values.
    pub fn new(field_type: FieldType, holders: usize) -> ColumnBuilder {
        let data = match field_type {
            FieldType::Boolean => Gathered::Bool(Vec::with_capacity(holders)),
            FieldType::Number => Gathered::Number(Vec::with_capacity(holders)),
            FieldType::Date => Gathered::Date(Vec::with_capacity(holders)),
            FieldType::DateTime => Gathered::DateTime(Vec::with_capacity(holders)),
            FieldType::String => {
                Gathered::Str(Vec::with_capacity(holders), Interner::default(), Vec::new())
            }
            FieldType::StringList => Gathered::List(Column::new(FieldType::StringList)),
        };
        ColumnBuilder { data }
    }

    /// A builder for a string column whose values are given as positions
    /// in `dictionary` ([`ColumnBuilder::push_position`]): each distinct
    /// string is interned once, into an index sized for them all. For
    /// another type, the dictionary is ignored.
    pub fn with_dictionary<'a>(
        field_type: FieldType,
        dictionary: impl ExactSizeIterator<Item = &'a str>,
        holders: usize,
    ) -> ColumnBuilder {
        let mut builder = ColumnBuilder::new(field_type, holders);
        if let Gathered::Str(_, dict, ids) = &mut builder.data {
            dict.reserve(dictionary.len());
            ids.extend(dictionary.map(|text| dict.intern(text)));
        }
        builder
    }

    /// Contact `no` holds the string at `position` in the builder's
    /// dictionary; false (nothing done) when there is no such position.
    pub fn push_position(&mut self, no: u32, position: u32) -> bool {
        match &mut self.data {
            Gathered::Str(values, _, ids) => match ids.get(position as usize) {
                Some(&id) => {
                    values.push((no, id));
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// Contact `no`'s value; like [`Column::set`], a value of another type
    /// than the column's is ignored.
    pub fn push(&mut self, no: u32, value: &Value) {
        match (&mut self.data, value) {
            (Gathered::Bool(v), Value::Boolean(b)) => v.push((no, *b)),
            (Gathered::Number(v), Value::Number(n)) => v.push((no, *n)),
            (Gathered::Date(v), Value::Date(d)) => v.push((no, *d)),
            (Gathered::DateTime(v), Value::DateTime(t)) => v.push((no, *t)),
            (Gathered::Str(..), Value::String(text)) => self.push_str(no, text),
            (Gathered::List(column), Value::StringList(_)) => column.set(no, Some(value)),
            _ => {}
        }
    }

    /// Contact `no`'s string value, borrowed (no `Value` is made for it).
    pub fn push_str(&mut self, no: u32, text: &str) {
        if let Gathered::Str(values, dict, _) = &mut self.data {
            values.push((no, dict.intern(text)));
        }
    }

    pub fn finish(self) -> Column {
        let data = match self.data {
            Gathered::Bool(v) => ColumnData::Bool(Slots::from_sorted(v)),
            Gathered::Number(v) => ColumnData::Number(Slots::from_sorted(v)),
            Gathered::Date(v) => ColumnData::Date(Slots::from_sorted(v)),
            Gathered::DateTime(v) => ColumnData::DateTime(Slots::from_sorted(v)),
            Gathered::Str(v, dict, _) => ColumnData::Str {
                values: Slots::from_sorted(v),
                dict,
            },
            Gathered::List(column) => return column,
        };
        Column { data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A built column answers like one set value by value, in both forms
    /// and for every type.
    #[test]
    fn a_built_column_equals_one_set_value_by_value() {
        type ValueOf = fn(u32) -> Value;
        let cases: [(FieldType, ValueOf); 6] = [
            (FieldType::Boolean, |no| Value::Boolean(no % 3 == 0)),
            (FieldType::Number, |no| Value::Number(f64::from(no) / 4.0)),
            (FieldType::Date, |no| Value::Date(no as i32 - 500)),
            (FieldType::DateTime, |no| {
                Value::DateTime(i64::from(no) * 1000)
            }),
            (FieldType::String, |no| {
                Value::String(format!("s{}", no % 13))
            }),
            (FieldType::StringList, |no| {
                Value::StringList(vec![format!("a{}", no % 5), "b".into()])
            }),
        ];
        for (field_type, value) in cases {
            // Dense (most contacts hold one), sparse (a few spread far), and
            // out of order (set one by one).
            let shapes: [Vec<u32>; 3] = [
                (0..5000).filter(|no| no % 7 != 0).collect(),
                (0..200).map(|i| i * 997).collect(),
                vec![9, 3, 12],
            ];
            for numbers in shapes {
                let mut built = ColumnBuilder::new(field_type, numbers.len());
                let mut set = Column::new(field_type);
                for &no in &numbers {
                    built.push(no, &value(no));
                    set.set(no, Some(&value(no)));
                }
                // A value of another type is ignored by both.
                let last = numbers.iter().max().copied().unwrap_or(0) + 2;
                let other = match field_type {
                    FieldType::Boolean => Value::Number(1.0),
                    _ => Value::Boolean(true),
                };
                built.push(last - 1, &other);
                set.set(last - 1, Some(&other));
                let built = built.finish();
                assert_eq!(built.is_dense(), set.is_dense(), "{field_type:?}");
                assert_eq!(built.holders(), set.holders(), "{field_type:?}");
                for no in 0..last {
                    assert_eq!(built.get(no), set.get(no), "{field_type:?} contact {no}");
                }
            }
        }
    }
}
