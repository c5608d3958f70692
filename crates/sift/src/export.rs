//! `sift export SEGMENT --format csv`: a segment's members as CSV, to a
//! file or stdout, with a progress bar on stderr.
//!
//! It reads the data directory itself, so it works whether or not a server
//! is running on it: SQLite's WAL lets a reader take a consistent snapshot
//! beside the server's writer, and nothing here writes. The workspace is
//! rebuilt from that snapshot and brought to the current time in memory
//! (the timers the server would fire), so the members are the ones the
//! server answers with now. The rows are the same bytes as
//! `GET /v1/segments/{id}/export.csv` gives (`sift_server::csv_export`).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sift_server::csv_export::{self, Next};
use sift_store::{Catalog, WorkspaceDb, WorkspaceReader};

pub struct ExportArgs<'a> {
    pub segment: &'a str,
    pub fields: Option<&'a str>,
    /// Cells as stored, not neutralised for spreadsheets.
    pub raw: bool,
    pub output: Option<&'a Path>,
    /// Export the members at this past instant (RFC 3339) instead of now.
    pub as_of: Option<&'a str>,
    pub data: &'a Path,
    pub workspace: Option<&'a str>,
}

pub fn export_csv(args: ExportArgs<'_>) -> anyhow::Result<ExitCode> {
    let catalog_path = args.data.join("catalog.db");
    if !catalog_path.exists() {
        bail!(
            "{} is not a Sift data directory (no catalog.db); pass the server's --data",
            args.data.display()
        );
    }
    let catalog = Catalog::open(&catalog_path)?;
    let rows = catalog.workspaces()?;
    let id = match (args.workspace, rows.as_slice()) {
        (Some(id), _) if rows.iter().any(|r| r.id == id) => id.to_string(),
        (Some(id), _) => bail!(
            "no workspace {id:?} in {}; it has: {}",
            args.data.display(),
            rows.iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, [row]) => row.id.clone(),
        (None, []) => bail!("{} has no workspace yet", args.data.display()),
        (None, _) => bail!(
            "{} has several workspaces; choose one with --workspace ({})",
            args.data.display(),
            rows.iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let started = Instant::now();
    let db_path = args.data.join(format!("{id}.db"));
    let db = WorkspaceDb::open(&db_path)?;
    let mut engine = db.load()?;
    // Timers that fell due since the stored clock fire here, in memory only:
    // the server makes them durable itself.
    let _ = engine.advance(sift_server::clock::system_now_ms());
    drop(db);
    let loaded = started.elapsed();

    let segment = match engine
        .segment(args.segment)
        .or_else(|| engine.segments().by_name(args.segment))
    {
        Some(segment) => segment,
        None => {
            eprintln!(
                "sift: no segment with id or name {:?} in workspace {id}",
                args.segment
            );
            return Ok(ExitCode::from(1));
        }
    };
    let (segment_id, name, mut size) = (
        segment.def.id.clone(),
        segment.def.name.clone(),
        segment.members.len(),
    );
    let past = match args.as_of {
        Some(text) => {
            let Some(at) = sift_lang::parse_datetime(text) else {
                eprintln!(
                    "sift: --as-of must be an RFC 3339 instant like 2026-03-01T00:00:00Z, got {text:?}"
                );
                return Ok(ExitCode::from(1));
            };
            if at < segment.def.created_at {
                eprintln!(
                    "sift: segment {name:?} did not exist yet at {}: it was created at {}",
                    sift_lang::format_datetime(at),
                    sift_lang::format_datetime(segment.def.created_at)
                );
                return Ok(ExitCode::from(1));
            }
            let members = WorkspaceReader::open(&db_path)?.members_as_of(&segment_id, at)?;
            size = members.len();
            Some(members)
        }
        None => None,
    };
    let columns = match csv_export::columns(&engine, args.fields) {
        Ok(columns) => columns,
        Err(column) => {
            eprintln!(
                "sift: unknown column {column:?} in --fields: use id or a field name ({})",
                engine
                    .fields()
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(ExitCode::from(1));
        }
    };

    let mut out: Box<dyn Write> = match args.output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("exporting {bar:40} {pos}/{len} contacts {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut buffer = Vec::with_capacity(256 * 1024);
    csv_export::header(&columns, &mut buffer);
    let cells = if args.raw {
        csv_export::Cells::Raw
    } else {
        csv_export::Cells::Neutralised
    };
    let mut after = None;
    let mut written = 0u64;
    loop {
        let (rows, next) = csv_export::chunk(
            &engine,
            match &past {
                Some(members) => csv_export::Members::Past(members),
                None => csv_export::Members::Now(&segment_id),
            },
            &columns,
            cells,
            after,
            &mut buffer,
        )
        .context("the segment vanished during the export")?;
        out.write_all(&buffer).context("cannot write the CSV")?;
        buffer.clear();
        written += rows as u64;
        bar.set_position(written);
        match next {
            Next::After(no) => after = Some(no),
            Next::Done => break,
        }
    }
    out.flush().context("cannot write the CSV")?;
    bar.finish_and_clear();
    let writing = (started.elapsed() - loaded).as_secs_f64();
    eprintln!(
        "exported {written} contacts of {name:?} ({segment_id}) to {}: loading the workspace took {:.2} s, writing {:.2} s ({:.0} rows/s)",
        args.output
            .map_or("stdout".to_string(), |p| p.display().to_string()),
        loaded.as_secs_f64(),
        writing,
        written as f64 / writing.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
