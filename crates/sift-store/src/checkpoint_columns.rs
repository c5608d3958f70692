//! The contact and column parts of a checkpoint, decoded straight into a
//! workspace being built (docs/storage.md "Checkpoints"): ids borrowed from
//! the bytes, each column built whole by a `ColumnBuilder`.

use sift_engine::columns::Column;
use sift_engine::{CheckpointLoad, ColumnBuilder};
use sift_lang::FieldType;

use crate::StoreError;
use crate::checkpoint_codec::In;

/// Decodes the `contacts` part into `load`, without a `String` per id;
/// the number of contacts it holds.
pub(crate) fn decode_contacts(
    bytes: &[u8],
    load: &mut CheckpointLoad,
) -> Result<usize, StoreError> {
    let mut r = In::new(bytes, "contacts");
    let n = r.len(9)?;
    let mut entries = ContactEntries {
        r,
        left: n,
        next_no: 0,
        error: None,
    };
    load.contacts(&mut entries);
    match entries.error {
        Some(error) => Err(error),
        None => Ok(n),
    }
}

/// The entries of a `contacts` part as an iterator; the first damage found
/// ends it and is kept in `error`.
struct ContactEntries<'a> {
    r: In<'a>,
    left: usize,
    /// Numbers ascend: the least the next one may be.
    next_no: u32,
    error: Option<StoreError>,
}

impl<'a> ContactEntries<'a> {
    fn entry(&mut self) -> Result<(u32, &'a str, bool), StoreError> {
        let no = self.r.u32()?;
        if no < self.next_no {
            return Err(self.r.corrupt("contact numbers out of order"));
        }
        self.next_no = no.saturating_add(1);
        let alive = self.r.u8()? != 0;
        Ok((no, self.r.str_ref()?, alive))
    }
}

impl<'a> Iterator for ContactEntries<'a> {
    type Item = (u32, &'a str, bool);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.error.is_some() {
            return None;
        }
        self.left -= 1;
        match self.entry() {
            Ok(entry) => Some(entry),
            Err(error) => {
                self.error = Some(error);
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

impl ExactSizeIterator for ContactEntries<'_> {
    fn len(&self) -> usize {
        self.left
    }
}

/// Column part forms (format 4 on; format 3 has only values, untagged).
pub(crate) const VALUES: u8 = 0;
pub(crate) const DICTIONARY: u8 = 1;

/// Decodes a `column.<i>` part of a column of `field_type` into a column
/// built whole (strings borrowed from the bytes, with no `Value` each).
/// `tagged`: the part starts with its form (format 4 on).
pub(crate) fn decode_column(
    bytes: &[u8],
    name: &str,
    field_type: FieldType,
    tagged: bool,
) -> Result<Column, StoreError> {
    let mut r = In::new(bytes, name);
    let form = if tagged { r.u8()? } else { VALUES };
    let column = match form {
        VALUES => {
            let n = r.len(6)?;
            let mut column = ColumnBuilder::new(field_type, n);
            for _ in 0..n {
                let no = r.u32()?;
                match r.u8()? {
                    0 => column.push_str(no, r.str_ref()?),
                    tag => column.push(no, &r.tagged_value(tag)?),
                }
            }
            column
        }
        DICTIONARY => {
            let distinct = r.len(4)?;
            let mut dictionary = Vec::with_capacity(distinct);
            for _ in 0..distinct {
                dictionary.push(r.str_ref()?);
            }
            let n = r.len(8)?;
            let mut column = ColumnBuilder::with_dictionary(field_type, dictionary.into_iter(), n);
            for _ in 0..n {
                let no = r.u32()?;
                if !column.push_position(no, r.u32()?) {
                    return Err(r.corrupt("a position past its dictionary"));
                }
            }
            column
        }
        _ => return Err(r.corrupt("a bad column form")),
    };
    Ok(column.finish())
}
