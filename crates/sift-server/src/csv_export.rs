//! A segment's members as CSV (RFC 4180: CRLF line ends, fields quoted
//! when they hold a comma, a quote or a line break, quotes doubled), read a
//! chunk of members at a time. `GET /v1/segments/{id}/export.csv` and
//! `sift export` both go through here, so the two give the same bytes.
//!
//! A chunk is read under one short engine read lock; between chunks the
//! caller lets go of the lock, so an export of any size holds neither the
//! whole file in memory nor the engine for long.
//!
//! Cells are neutralised by default (see [`neutralise`]): contact data
//! comes from anyone who fills a form, and a spreadsheet runs a cell such
//! as `=HYPERLINK(...)` as a formula. Machine consumers ask for raw cells.

use sift_engine::{ContactView, Workspace};

/// Members per chunk: about 100 KB of CSV for a typical contact.
pub const CHUNK: usize = 1000;

/// List values are joined with this inside one cell: the separator
/// `sift import contacts` splits on, so an export imports back as it was.
pub const LIST_SEPARATOR: &str = "|";

/// The columns of an export: `fields` is the comma-separated list a client
/// gave (`id`, any field name, a system field); none or blank means `id`
/// and every non-system field. An unknown column is returned as the error.
pub fn columns(engine: &Workspace, fields: Option<&str>) -> Result<Vec<String>, String> {
    let columns: Vec<String> = match fields.map(str::trim).filter(|f| !f.is_empty()) {
        None => std::iter::once("id".to_string())
            .chain(
                engine
                    .fields()
                    .iter()
                    .filter(|f| !f.system)
                    .map(|f| f.name.clone()),
            )
            .collect(),
        Some(list) => list
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
    };
    match columns
        .iter()
        .find(|c| *c != "id" && engine.field(c).is_none())
    {
        Some(unknown) => Err(unknown.clone()),
        None => Ok(columns),
    }
}

fn writer(out: &mut Vec<u8>) -> csv::Writer<&mut Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out)
}

/// The header row.
pub fn header(columns: &[String], out: &mut Vec<u8>) {
    let mut writer = writer(out);
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(columns);
    let _ = writer.flush();
}

/// Where an export stands after a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// More members may follow the one with this contact number.
    After(u32),
    /// That was the last chunk.
    Done,
}

/// How cells are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cells {
    /// Safe to open in a spreadsheet ([`neutralise`]); the default.
    #[default]
    Neutralised,
    /// As stored, for programs (`?raw=true`, `sift export --raw`).
    Raw,
}

/// Characters that make a spreadsheet read a cell as a formula (OWASP,
/// "CSV Injection"): tab and carriage return because some spreadsheets
/// strip them and then see the character after.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Prefixes `'` to a cell that starts with a formula character, as OWASP
/// recommends; the spreadsheet then shows the text as typed, without the
/// quote. A cell that is a plain negative number (`-5`, `-2.5`, `-1e3`) is
/// left alone: no spreadsheet reads it as anything but that number, and
/// prefixing it would turn every negative score into text.
pub fn neutralise(cell: String) -> String {
    if cell.starts_with(FORMULA_STARTS) && !is_negative_number(&cell) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// `-` then digits, an optional fraction and an optional exponent: the
/// shape a number field's value is written in, and nothing else.
fn is_negative_number(cell: &str) -> bool {
    let Some(rest) = cell.strip_prefix('-') else {
        return false;
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole)
        && fraction.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

/// Whose rows an export writes.
#[derive(Clone, Copy)]
pub enum Members<'a> {
    /// A segment's members now.
    Now(&'a str),
    /// Members at a past instant (contacts erased since have no row).
    Past(&'a roaring::RoaringBitmap),
}

/// Appends the rows of up to [`CHUNK`] members that come after contact
/// number `after` (from the first member when `None`) and answers how many
/// rows it wrote and where the next chunk starts. `None` when the segment
/// no longer exists.
pub fn chunk(
    engine: &Workspace,
    members: Members<'_>,
    columns: &[String],
    cells_as: Cells,
    after: Option<u32>,
    out: &mut Vec<u8>,
) -> Option<(usize, Next)> {
    let (numbers, more) = match members {
        Members::Now(segment_id) => engine
            .list_contacts(None, Some(segment_id), after, CHUNK)
            .ok()?,
        Members::Past(members) => {
            let start = after.map_or(0, |a| a.saturating_add(1));
            let mut numbers: Vec<u32> = members.range(start..).take(CHUNK + 1).collect();
            let more = numbers.len() > CHUNK;
            numbers.truncate(CHUNK);
            (numbers, more)
        }
    };
    let mut writer = writer(out);
    let mut rows = 0;
    let mut cells: Vec<String> = Vec::with_capacity(columns.len());
    for view in numbers.iter().filter_map(|no| engine.contact_data(*no)) {
        cells.clear();
        cells.extend(columns.iter().map(|c| {
            let text = cell(&view, c, LIST_SEPARATOR);
            match cells_as {
                Cells::Neutralised => neutralise(text),
                Cells::Raw => text,
            }
        }));
        let _ = writer.write_record(&cells);
        rows += 1;
    }
    let _ = writer.flush();
    let next = match numbers.last() {
        Some(last) if more => Next::After(*last),
        _ => Next::Done,
    };
    Some((rows, next))
}

/// A column's value as text: `id`, a system field or a property; lists
/// are joined with `separator`, a missing value is empty.
pub fn cell(view: &ContactView, column: &str, separator: &str) -> String {
    use serde_json::Value as Json;
    use sift_store::json::{datetime, number, value_json};
    let value = match column {
        "id" => return view.id.clone(),
        "lead_score" => number(view.lead_score),
        "created_at" => datetime(view.created_at),
        "updated_at" => datetime(view.updated_at),
        "last_seen_at" => view.last_seen_at.map_or(Json::Null, datetime),
        "anonymous" => Json::Bool(view.anonymous),
        name => view
            .properties
            .iter()
            .find(|(n, _)| n == name)
            .map_or(Json::Null, |(_, v)| value_json(v)),
    };
    match value {
        Json::Null => String::new(),
        Json::String(s) => s,
        Json::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(separator),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn only_plain_negative_numbers_escape_the_prefix() {
        for number in ["-5", "-0", "-2.5", "-1e3", "-1E-3", "-12.5e+10"] {
            assert_eq!(neutralise(number.to_string()), number);
        }
        for formula in [
            "-", "-.5", "-5.", "-1e", "-1e+", "-1.2.3", "-5 ", "-5+1", "-0x10", "--5", "-inf",
        ] {
            assert_eq!(neutralise(formula.to_string()), format!("'{formula}"));
        }
        for start in ['=', '+', '@', '\t', '\r'] {
            let cell = format!("{start}5");
            assert_eq!(neutralise(cell.clone()), format!("'{cell}"));
        }
        for safe in ["", "5", "a=b", " =1", "'=1", "\n=1"] {
            assert_eq!(neutralise(safe.to_string()), safe);
        }
    }
}
