//! DuckDB beside `sift bench --suite state`: the GROUP BY that the bench's
//! new behavioural segment asks, answered by DuckDB over the same stored
//! events on the same machine in the same run, so the two times can be
//! compared. DuckDB runs in a Python interpreter the operator names (`--duckdb
//! PYTHON`; `scripts/bench-tools.sh` installs one); the script it runs is
//! `bench_duckdb.py`, carried in this executable.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value as Json;

const SCRIPT: &str = include_str!("bench_duckdb.py");
/// How many times DuckDB answers the query, each from a fresh connection.
const RUNS: u32 = 3;

/// What the segment asks, in the terms of the SQL query.
pub struct GroupBy<'a> {
    pub event_type: &'a str,
    pub min_amount: f64,
    pub min_count: u32,
}

/// The workspace database in a data directory that holds one workspace.
pub fn workspace_db(data: &Path) -> anyhow::Result<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(data)? {
        let path = entry?.path();
        // `<workspace>.db`: not the catalog, nor a checkpoint beside it
        // (`<workspace>.checkpoint.<write>.db`).
        let is_db = path.extension().is_some_and(|e| e == "db");
        let plain = path
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| !s.contains('.') && s != "catalog");
        if is_db && plain {
            found.push(path);
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one workspace database in {}, found {found:?}",
            data.display()
        ),
    }
}

/// Copies the events of `db` into DuckDB and times the query there; answers
/// the script's figures (`query_ms`, `size`, `events`, ...).
pub fn compare(python: &Path, db: &Path, query: &GroupBy) -> anyhow::Result<Json> {
    let work = tempfile::tempdir()?;
    let script = work.path().join("bench_duckdb.py");
    std::fs::write(&script, SCRIPT)?;
    let output = Command::new(python)
        .arg(&script)
        .arg(db)
        .arg(work.path())
        .arg(query.event_type)
        .arg(query.min_amount.to_string())
        .arg(query.min_count.to_string())
        .arg(RUNS.to_string())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "the DuckDB comparison failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("the DuckDB comparison printed no JSON")
}
