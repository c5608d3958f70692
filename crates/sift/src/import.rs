//! `sift import contacts FILE`: streams a CSV or JSON Lines file into a
//! workspace of a stopped server's data directory, 10,000 rows per durable
//! write, with a progress bar. Bad rows are reported by line number and
//! skipped; the rest is imported. `import_events.rs` does the same for
//! events with the helpers here.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sift_engine::{ContactInput, RawValue};
use sift_lang::FieldType;
use sift_server::state::WorkspaceHandle;
use sift_server::{AppState, Config};

use crate::run::{lock_data_dir, runtime};

/// Rows per durable write.
pub(crate) const BATCH: usize = 10_000;

struct Row {
    line: u64,
    input: ContactInput,
}

pub fn import_contacts(
    file: &Path,
    data: &Path,
    workspace: Option<&str>,
    max_fields: usize,
) -> anyhow::Result<ExitCode> {
    let _lock = lock_data_dir(data)?;
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let reader = BufReader::new(std::fs::File::open(file)?);
    let rt = runtime()?;
    rt.block_on(async move {
        // A file's columns arrive in its first write: only the workspace's
        // total is limited, not the fields one write creates.
        let limits = sift_engine::FieldLimits {
            max_fields,
            max_new_per_write: max_fields,
        };
        let (state, id, handle) = open_workspace(data, workspace, limits)?;
        let bar = progress_bar(size);
        let csv = file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let mut bad: Vec<(u64, String)> = Vec::new();
        let mut imported = 0u64;
        let mut pending: Vec<Row> = Vec::new();
        let types = |name: &str| {
            handle
                .read(|ws| ws.field(name).map(|f| f.field_type))
                .ok()
                .flatten()
        };
        if csv {
            let mut csv_reader = csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(reader);
            let headers = csv_reader
                .headers()
                .context("the CSV has no header row")?
                .clone();
            let id_column = headers
                .iter()
                .position(|h| h == "id")
                .context("the CSV header needs an `id` column")?;
            for record in csv_reader.records() {
                let record = match record {
                    Ok(r) => r,
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        bad.push((line, e.to_string()));
                        continue;
                    }
                };
                let line = record.position().map_or(0, |p| p.line());
                bar.set_position(record.position().map_or(0, |p| p.byte()));
                let mut input = ContactInput {
                    id: record.get(id_column).unwrap_or_default().to_string(),
                    ..ContactInput::default()
                };
                for (i, (header, cell)) in headers.iter().zip(record.iter()).enumerate() {
                    if i == id_column || cell.is_empty() {
                        continue;
                    }
                    input
                        .properties
                        .push((header.to_string(), csv_value(cell, types(header))));
                }
                pending.push(Row { line, input });
                if pending.len() == BATCH {
                    imported +=
                        flush(&handle, std::mem::take(&mut pending), &mut bad, imported).await?;
                }
            }
        } else {
            let mut offset = 0u64;
            for (index, line) in reader.lines().enumerate() {
                let line_no = index as u64 + 1;
                let line = line?;
                offset += line.len() as u64 + 1;
                bar.set_position(offset);
                if line.trim().is_empty() {
                    continue;
                }
                match json_row(&line) {
                    Ok(input) => pending.push(Row {
                        line: line_no,
                        input,
                    }),
                    Err(message) => bad.push((line_no, message)),
                }
                if pending.len() == BATCH {
                    imported +=
                        flush(&handle, std::mem::take(&mut pending), &mut bad, imported).await?;
                }
            }
        }
        imported += flush(&handle, std::mem::take(&mut pending), &mut bad, imported).await?;
        bar.finish_and_clear();
        state.close();
        bad.sort();
        for (line, message) in &bad {
            eprintln!("line {line}: {message}");
        }
        println!(
            "imported {imported} contacts into {id}; {} bad rows skipped",
            bad.len()
        );
        Ok(if bad.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// Opens the data directory offline (its workspaces are restored and
/// caught up with time; no background task starts) and picks the workspace
/// to import into: the one named, or the only one there is.
pub(crate) fn open_workspace(
    data: &Path,
    workspace: Option<&str>,
    limits: sift_engine::FieldLimits,
) -> anyhow::Result<(AppState, String, Arc<WorkspaceHandle>)> {
    let mut config = Config::new(data, None);
    config.field_limits = limits;
    // Webhooks, workflow runs and audience syncs are the server's: an
    // import beside it starts none of them.
    let state = AppState::open_offline(config)?;
    let rows = state.workspace_rows();
    let id = match (workspace, rows.as_slice()) {
        (Some(id), _) => id.to_string(),
        (None, [(id, _)]) => id.clone(),
        (None, []) => bail!(
            "{} has no workspace yet; run `sift serve --data {}` once",
            data.display(),
            data.display()
        ),
        (None, _) => bail!(
            "{} has several workspaces; choose one with --workspace",
            data.display()
        ),
    };
    let handle = state
        .workspace(&id)
        .with_context(|| format!("no workspace {id:?}"))?;
    Ok((state, id, handle))
}

/// A progress bar over the file's bytes.
pub(crate) fn progress_bar(size: u64) -> ProgressBar {
    ProgressBar::new(size).with_style(
        ProgressStyle::with_template("importing {bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// A CSV cell as the field's type wants it; for a new field, a number or
/// boolean when it reads as one. Lists are separated by `|`.
fn csv_value(cell: &str, field_type: Option<FieldType>) -> RawValue {
    match field_type {
        Some(FieldType::Number) => cell
            .trim()
            .parse()
            .map_or_else(|_| RawValue::String(cell.into()), RawValue::Number),
        Some(FieldType::Boolean) => match cell.trim() {
            "true" => RawValue::Bool(true),
            "false" => RawValue::Bool(false),
            _ => RawValue::String(cell.into()),
        },
        Some(FieldType::StringList) => RawValue::StringList(
            cell.split('|')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        Some(_) => RawValue::String(cell.into()),
        None => {
            if let Ok(n) = cell.trim().parse::<f64>() {
                RawValue::Number(n)
            } else if cell == "true" || cell == "false" {
                RawValue::Bool(cell == "true")
            } else {
                RawValue::String(cell.into())
            }
        }
    }
}

fn json_row(line: &str) -> Result<ContactInput, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let id = value
        .get("id")
        .and_then(|v| v.as_str())
        .ok_or("each line needs an \"id\" string")?
        .to_string();
    let mut input = ContactInput {
        id,
        ..ContactInput::default()
    };
    if let Some(props) = value.get("properties") {
        let map = props
            .as_object()
            .ok_or("\"properties\" must be an object")?;
        input.properties = map
            .iter()
            .map(|(k, v)| (k.clone(), sift_server::api::raw_value(v)))
            .collect();
    }
    if let Some(anonymous) = value.get("anonymous") {
        input.anonymous = Some(
            anonymous
                .as_bool()
                .ok_or("\"anonymous\" must be true or false")?,
        );
    }
    Ok(input)
}

/// Writes rows durably; rows the engine rejects are reported and the rest retried.
async fn flush(
    handle: &Arc<WorkspaceHandle>,
    mut rows: Vec<Row>,
    bad: &mut Vec<(u64, String)>,
    imported: u64,
) -> anyhow::Result<u64> {
    loop {
        if rows.is_empty() {
            return Ok(0);
        }
        let inputs: Vec<ContactInput> = rows.iter().map(|r| r.input.clone()).collect();
        match handle
            .write(|ws, now| Ok((ws.upsert_contacts(&inputs, now)?, ())))
            .await
        {
            Ok(_) => return Ok(rows.len() as u64),
            Err(error) => {
                let items = error
                    .details
                    .get("items")
                    .and_then(|i| i.as_array())
                    .cloned()
                    .unwrap_or_default();
                let failing: Vec<usize> = if items.is_empty() && rows.len() == 1 {
                    vec![0]
                } else {
                    items
                        .iter()
                        .filter_map(|i| i["index"].as_u64().map(|n| n as usize))
                        .collect()
                };
                if failing.is_empty() {
                    bail!(
                        "import stopped after {imported} contacts were imported: {}",
                        error.message
                    );
                }
                for index in failing.iter().rev() {
                    let message = items
                        .iter()
                        .find(|i| i["index"].as_u64() == Some(*index as u64))
                        .and_then(|i| i["message"].as_str())
                        .unwrap_or(&error.message)
                        .to_string();
                    if *index < rows.len() {
                        let row = rows.remove(*index);
                        bad.push((row.line, message));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sift_server::workspace::tasks::Task;

    /// An import runs beside a stopped server and must send nothing: its
    /// open once started webhook delivery, the workflow runner, the outbox
    /// and the rest, which then worked from the import's writes.
    #[test]
    fn an_import_opens_its_workspace_without_starting_any_task() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime().unwrap();
        rt.block_on(async {
            let served = AppState::open(Config::new(dir.path(), None)).unwrap();
            let (id, _) = served.create_workspace("Shop").unwrap();
            // A served workspace does start them, so the check below can fail.
            let started = served.workspace(&id).unwrap().tasks.started();
            assert!(started.contains(&Task::Timers), "{started:?}");
            assert!(started.contains(&Task::Outbox), "{started:?}");
            served.close();

            let (state, found, handle) =
                open_workspace(dir.path(), None, sift_engine::FieldLimits::default()).unwrap();
            assert_eq!(found, id);
            assert_eq!(handle.tasks.started(), Vec::<Task>::new());
            state.close();
        });
    }
}
