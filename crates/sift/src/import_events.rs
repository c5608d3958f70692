//! `sift import events FILE`: streams events from a CSV or JSON Lines file
//! into a workspace of a stopped server's data directory, 10,000 rows per
//! durable write, with a progress bar. Rows the engine refuses are reported
//! by line number and skipped; events whose id was already accepted are
//! counted as duplicates and not applied again, so importing a file twice
//! adds only its events without an id.
//!
//! JSON Lines: one event object per line, as `POST /v1/events` takes it:
//! `{"id"?, "contact_id", "type", "at"? (RFC 3339), "properties"? (object),
//! "anonymous"?}`.
//!
//! CSV: a header row naming `contact_id` and `type`, optionally `id`, `at`
//! (RFC 3339) and `anonymous` (`true`/`false`); every other column is a
//! property. CSV has no types, so a property cell that reads as a finite
//! number becomes a number, `true` or `false` a boolean, anything else a
//! string; an empty cell means the event has no such property.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value as Json};
use sift_engine::{EventInput, Write};
use sift_lang::DateTime;
use sift_server::state::WorkspaceHandle;
use sift_store::event_properties;

use crate::import::{BATCH, open_workspace, progress_bar};
use crate::run::{lock_data_dir, runtime};

/// One line of the file, read.
struct Parsed {
    line: u64,
    /// Bytes read so far, for the progress bar.
    offset: u64,
    event: Result<EventInput, String>,
}

#[derive(Default)]
struct Totals {
    accepted: u64,
    duplicates: u64,
    /// (line, why), for rows that were skipped.
    bad: Vec<(u64, String)>,
}

pub fn import_events(
    file: &Path,
    data: &Path,
    workspace: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let _lock = lock_data_dir(data)?;
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let reader = BufReader::new(std::fs::File::open(file)?);
    let csv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let rt = runtime()?;
    rt.block_on(async move {
        let (state, id, handle) = open_workspace(data, workspace, sift_engine::FieldLimits::default())?;
        let bar = progress_bar(size);
        let started = Instant::now();
        let rows: Box<dyn Iterator<Item = anyhow::Result<Parsed>>> = if csv {
            Box::new(csv_rows(reader)?)
        } else {
            Box::new(jsonl_rows(reader))
        };
        let mut totals = Totals::default();
        let mut lines: Vec<u64> = Vec::new();
        let mut pending: Vec<EventInput> = Vec::new();
        for parsed in rows {
            let parsed = parsed?;
            bar.set_position(parsed.offset);
            match parsed.event {
                Ok(event) => {
                    lines.push(parsed.line);
                    pending.push(event);
                }
                Err(message) => totals.bad.push((parsed.line, message)),
            }
            if pending.len() == BATCH {
                let batch = std::mem::take(&mut pending);
                flush(&handle, batch, &std::mem::take(&mut lines), &mut totals).await?;
            }
        }
        flush(&handle, pending, &lines, &mut totals).await?;
        bar.finish_and_clear();
        // The columnar copy of the new events (docs/storage.md "Event
        // blocks"), so that the server's first counts need not parse them.
        let blocks = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("columnar copy {bar:40} {pos}/{len} blocks")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        handle.service.history.build_blocks(&mut |done, total| {
            blocks.set_length(total);
            blocks.set_position(done);
        })?;
        blocks.finish_and_clear();
        let took = started.elapsed().as_secs_f64();
        state.close();

        totals.bad.sort();
        for (line, message) in &totals.bad {
            eprintln!("line {line}: {message}");
        }
        // The rate counts duplicates too: they were read and checked like the rest.
        let rate = (totals.accepted + totals.duplicates) as f64 / took.max(1e-6);
        let skipped = match totals.bad.len() {
            0 => String::new(),
            n => format!("; {n} bad rows skipped"),
        };
        println!(
            "imported {} events ({} duplicates) into {id} in {took:.2} s, {rate:.0} events/s{skipped}",
            totals.accepted, totals.duplicates
        );
        Ok(if totals.bad.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// Applies one batch in one durable write: the rows the engine would refuse
/// are set aside with their line numbers and the rest is ingested, both
/// under the same engine lock so nothing changes in between.
async fn flush(
    handle: &Arc<WorkspaceHandle>,
    batch: Vec<EventInput>,
    lines: &[u64],
    totals: &mut Totals,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let (write, refused) = handle
        .write(move |ws, now| {
            let refused: Vec<(usize, String)> = ws
                .check_events(&batch, now)
                .into_iter()
                .map(|(index, error)| (index, error.to_string()))
                .collect();
            let valid: Vec<EventInput> = if refused.is_empty() {
                batch
            } else {
                batch
                    .into_iter()
                    .enumerate()
                    .filter(|(index, _)| !refused.iter().any(|(i, _)| i == index))
                    .map(|(_, event)| event)
                    .collect()
            };
            let write = if valid.is_empty() {
                Write::default()
            } else {
                ws.ingest(valid, now)?
            };
            Ok((write, refused))
        })
        .await
        .map_err(|error| {
            anyhow!(
                "import failed in the batch of lines {}-{}: {}",
                lines.first().copied().unwrap_or_default(),
                lines.last().copied().unwrap_or_default(),
                error.message
            )
        })?;
    for (index, message) in refused {
        totals
            .bad
            .push((lines.get(index).copied().unwrap_or_default(), message));
    }
    totals.accepted += write.accepted;
    totals.duplicates += write.duplicates.len() as u64;
    Ok(())
}

fn jsonl_rows(reader: impl BufRead) -> impl Iterator<Item = anyhow::Result<Parsed>> {
    let mut offset = 0u64;
    reader.lines().enumerate().filter_map(move |(index, line)| {
        let line = match line {
            Ok(line) => line,
            Err(error) => return Some(Err(anyhow!(error).context("cannot read the file"))),
        };
        offset += line.len() as u64 + 1;
        if line.trim().is_empty() {
            return None;
        }
        Some(Ok(Parsed {
            line: index as u64 + 1,
            offset,
            event: json_event(&line),
        }))
    })
}

/// One JSON Lines row: an event object as `POST /v1/events` takes it.
fn json_event(line: &str) -> Result<EventInput, String> {
    let value: Json = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Json::Object(object) = value else {
        return Err("each line must be a JSON object".to_string());
    };
    let required = |key: &str| {
        object
            .get(key)
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("each line needs a {key:?} string"))
    };
    let contact_id = required("contact_id")?;
    let event_type = required("type")?;
    // An optional member may be given as null.
    let optional = |key: &str| object.get(key).filter(|v| !v.is_null());
    let id = match optional("id") {
        None => None,
        Some(Json::String(id)) => Some(id.clone()),
        Some(_) => return Err("\"id\" must be a string".to_string()),
    };
    let at = match optional("at") {
        None => None,
        Some(Json::String(at)) => Some(parse_at(at)?),
        Some(_) => return Err(at_error("not a string")),
    };
    let properties = match optional("properties") {
        None => Map::new(),
        Some(Json::Object(properties)) => properties.clone(),
        Some(_) => return Err("\"properties\" must be an object".to_string()),
    };
    let anonymous = match optional("anonymous") {
        None => None,
        Some(Json::Bool(anonymous)) => Some(*anonymous),
        Some(_) => return Err("\"anonymous\" must be true or false".to_string()),
    };
    Ok(event_input(
        id, contact_id, event_type, at, properties, anonymous,
    ))
}

/// The header's meaning: where the event's own columns are; every other
/// column is a property.
struct Columns {
    contact_id: usize,
    event_type: usize,
    id: Option<usize>,
    at: Option<usize>,
    anonymous: Option<usize>,
    properties: Vec<(usize, String)>,
}

fn csv_rows(reader: impl Read) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Parsed>>> {
    let mut csv_reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let headers = csv_reader
        .headers()
        .context("the CSV has no header row")?
        .clone();
    let position = |name: &str| headers.iter().position(|h| h == name);
    let own = ["contact_id", "type", "id", "at", "anonymous"];
    let columns = Columns {
        contact_id: position("contact_id").context("the CSV header needs a `contact_id` column")?,
        event_type: position("type").context("the CSV header needs a `type` column")?,
        id: position("id"),
        at: position("at"),
        anonymous: position("anonymous"),
        properties: headers
            .iter()
            .enumerate()
            .filter(|(_, name)| !own.contains(name))
            .map(|(index, name)| (index, name.to_string()))
            .collect(),
    };
    Ok(csv_reader.into_records().map(move |record| {
        Ok(match record {
            Ok(record) => {
                let position = record.position();
                Parsed {
                    line: position.map_or(0, |p| p.line()),
                    offset: position.map_or(0, |p| p.byte()),
                    event: csv_event(&columns, &record),
                }
            }
            Err(error) => {
                if matches!(error.kind(), csv::ErrorKind::Io(_)) {
                    return Err(anyhow!(error).context("cannot read the file"));
                }
                let position = error.position();
                Parsed {
                    line: position.map_or(0, |p| p.line()),
                    offset: position.map_or(0, |p| p.byte()),
                    event: Err(error.to_string()),
                }
            }
        })
    }))
}

fn csv_event(columns: &Columns, record: &csv::StringRecord) -> Result<EventInput, String> {
    let cell = |index: usize| record.get(index).unwrap_or_default();
    let optional = |index: Option<usize>| index.map(cell).filter(|c| !c.is_empty());
    let at = optional(columns.at).map(parse_at).transpose()?;
    let anonymous = match optional(columns.anonymous).map(str::trim) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(format!(
                "\"anonymous\" must be true or false, got {other:?}"
            ));
        }
    };
    let properties: Map<String, Json> = columns
        .properties
        .iter()
        .filter(|(index, _)| !cell(*index).is_empty())
        .map(|(index, name)| (name.clone(), csv_property(cell(*index))))
        .collect();
    Ok(event_input(
        optional(columns.id).map(str::to_string),
        cell(columns.contact_id).to_string(),
        cell(columns.event_type).to_string(),
        at,
        properties,
        anonymous,
    ))
}

/// A CSV property cell's JSON value: a finite number, a boolean, or a string.
/// Integers stay integers, so the stored properties read `2`, not `2.0`.
fn csv_property(cell: &str) -> Json {
    let trimmed = cell.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return Json::from(n);
    }
    if let Some(n) = trimmed
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        return Json::Number(n);
    }
    match trimmed {
        "true" => Json::Bool(true),
        "false" => Json::Bool(false),
        _ => Json::String(cell.to_string()),
    }
}

fn parse_at(text: &str) -> Result<DateTime, String> {
    sift_lang::datetime_in_range(text.trim()).map_err(|error| match error {
        sift_lang::DateError::OutOfRange => {
            format!("\"at\" must be from 0001-01-01 to 9999-12-31 (UTC), got {text:?}")
        }
        sift_lang::DateError::Invalid => at_error(&format!("got {text:?}")),
    })
}

fn at_error(given: &str) -> String {
    format!("\"at\" must be an RFC 3339 datetime such as 2026-01-31T09:30:00Z ({given})")
}

/// An event as the engine takes it: what conditions read is derived from the
/// properties object by the same mapping the server and the store use.
fn event_input(
    id: Option<String>,
    contact_id: String,
    event_type: String,
    at: Option<DateTime>,
    properties: Map<String, Json>,
    anonymous: Option<bool>,
) -> EventInput {
    let read = event_properties(&properties);
    EventInput {
        id,
        contact_id,
        event_type,
        at,
        properties: read,
        properties_json: Json::Object(properties).to_string(),
        anonymous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_read_as_numbers_booleans_or_strings() {
        assert_eq!(csv_property("2"), Json::from(2));
        assert_eq!(csv_property(" 19.5 "), Json::from(19.5));
        assert_eq!(csv_property("true"), Json::Bool(true));
        assert_eq!(csv_property("NaN"), Json::String("NaN".into()));
        assert_eq!(csv_property("inf"), Json::String("inf".into()));
        assert_eq!(csv_property("shoes"), Json::String("shoes".into()));
        assert_eq!(csv_property("TRUE"), Json::String("TRUE".into()));
    }

    #[test]
    fn json_lines_keep_nested_properties_and_reject_bad_members() {
        let event = json_event(
            r#"{"id":"e1","contact_id":"c1","type":"purchase","at":"2026-01-31T09:30:00+01:00","properties":{"amount":30,"cart":{"items":[1]}},"anonymous":true}"#,
        )
        .unwrap();
        assert_eq!(event.id.as_deref(), Some("e1"));
        assert_eq!(
            event.at,
            sift_engine::parse_datetime("2026-01-31T08:30:00Z")
        );
        assert_eq!(event.anonymous, Some(true));
        assert_eq!(
            event.properties_json,
            r#"{"amount":30,"cart":{"items":[1]}}"#
        );
        assert_eq!(
            event.properties,
            vec![
                ("amount".into(), sift_engine::RawValue::Number(30.0)),
                (
                    "cart".into(),
                    sift_engine::RawValue::Unsupported("an object")
                ),
            ]
        );
        let far = json_event(r#"{"contact_id":"c1","type":"x","at":"9999-12-31T12:00:00Z"}"#);
        assert_eq!(
            far.map(|e| e.at),
            Ok(sift_engine::parse_datetime("9999-12-31T12:00:00Z"))
        );
        let bare = json_event(r#"{"contact_id":"c1","type":"login","id":null}"#).unwrap();
        assert_eq!((bare.id, bare.at), (None, None));
        assert_eq!(bare.properties_json, "{}");
        for (line, error) in [
            ("[1]", "a JSON object"),
            (r#"{"type":"x"}"#, "\"contact_id\""),
            (
                r#"{"contact_id":"c","type":"x","at":"yesterday"}"#,
                "RFC 3339",
            ),
            (
                r#"{"contact_id":"c","type":"x","at":"0000-12-31T10:00:00Z"}"#,
                "0001-01-01 to 9999-12-31",
            ),
            (
                r#"{"contact_id":"c","type":"x","properties":[]}"#,
                "an object",
            ),
            (
                r#"{"contact_id":"c","type":"x","anonymous":"no"}"#,
                "true or false",
            ),
        ] {
            let message = json_event(line).unwrap_err();
            assert!(message.contains(error), "{line}: {message}");
        }
    }
}
