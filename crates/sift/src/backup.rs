//! `sift backup` and `sift restore`: a consistent copy of a data directory
//! taken while a server keeps serving on it, and laying one down again.
//!
//! Both write into a `.partial` sibling and rename it into place only when
//! everything is copied and checked, so an interrupted run never leaves a
//! directory that looks like a complete backup or a complete data dir.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sift_store::backup as store;

const CATALOG: &str = "catalog.db";

/// What a data directory holds that a copy must carry.
enum Kind {
    Database,
    /// Copied byte for byte, with its permissions (`secret.key` stays 0600).
    Plain,
}

/// A workspace a catalog names: its id and name.
type Workspace = (String, String);

struct Entry {
    name: String,
    path: PathBuf,
    kind: Kind,
}

/// The files of a data directory worth copying, catalog first, the rest by
/// name. Databases are found by name or header rather than from a fixed
/// list, so any database the server keeps there is carried along.
fn entries(dir: &Path) -> anyhow::Result<(Vec<Entry>, Vec<String>)> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let listing =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for item in listing {
        let item = item.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        // The lock belongs to the running process; a companion's content is
        // inside the snapshot; dot files are drafts (a key being written).
        if name == "lock" || name.starts_with('.') || store::is_companion(&name) {
            continue;
        }
        let path = item.path();
        let file_type = match item.file_type() {
            Ok(t) => t,
            // Removed between the listing and now: nothing to copy.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if !file_type.is_file() {
            skipped.push(name);
            continue;
        }
        let kind = match store::is_database(&path) {
            Ok(true) => Kind::Database,
            Ok(false) => Kind::Plain,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        found.push(Entry { name, path, kind });
    }
    found.sort_by(|a, b| (a.name != CATALOG, &a.name).cmp(&(b.name != CATALOG, &b.name)));
    Ok((found, skipped))
}

/// `DIR.partial` beside `dir`.
fn partial_of(dir: &Path) -> anyhow::Result<PathBuf> {
    let name = dir
        .file_name()
        .with_context(|| format!("{} has no directory name", dir.display()))?;
    let mut partial = name.to_os_string();
    partial.push(".partial");
    Ok(dir.with_file_name(partial))
}

/// Refuses a target that exists and holds anything: a backup or a restore
/// never mixes with, or overwrites, what is there.
fn require_empty(dir: &Path, what: &str) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut listing) => {
            if listing.next().is_some() {
                bail!(
                    "{} exists and is not empty; {what} only into a new or empty directory",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            bail!("{} exists and is not a directory", dir.display())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Makes the `.partial` directory, owner-only: it will hold the workspace
/// keys' hashes and the secret key.
fn make_partial(partial: &Path) -> anyhow::Result<()> {
    if partial.exists() {
        bail!(
            "{} is left from an interrupted run; remove it and try again",
            partial.display()
        );
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(partial)
        .with_context(|| format!("cannot create {}", partial.display()))
}

/// Moves the finished `.partial` directory into place (over an empty
/// directory if one is there) and makes the rename durable.
fn publish(partial: &Path, target: &Path) -> anyhow::Result<()> {
    sync_dir(partial)?;
    if target.exists() {
        std::fs::remove_dir(target)
            .with_context(|| format!("cannot replace the empty {}", target.display()))?;
    }
    std::fs::rename(partial, target).with_context(|| {
        format!(
            "cannot rename {} to {}",
            partial.display(),
            target.display()
        )
    })?;
    if let Some(parent) = target.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

fn copy_plain(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let bytes = std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", to.display()))?;
    Ok(bytes)
}

fn progress(len: usize, verb: &str) -> ProgressBar {
    // indicatif draws nothing when stderr is not a terminal.
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template(&format!("{verb} {{bar:30}} {{pos}}/{{len}} {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

/// Removes a `.partial` directory after a failure, so a retry can start.
fn discard(partial: &Path, result: anyhow::Result<()>) -> anyhow::Result<()> {
    if result.is_err() {
        let _ = std::fs::remove_dir_all(partial);
    }
    result
}

/// Why a backup cannot start: the arguments, not a failure of Sift.
fn backup_refusal(dest: &Path, data: &Path) -> anyhow::Result<()> {
    if !data.join(CATALOG).is_file() {
        bail!(
            "{} holds no {CATALOG}: not a Sift data directory (pass --data or set SIFT_DATA)",
            data.display()
        );
    }
    if let (Ok(data_full), Some(Ok(dest_parent))) = (
        data.canonicalize(),
        dest.parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .map(Path::canonicalize),
    ) && dest_parent.starts_with(&data_full)
    {
        bail!(
            "{} is inside the data directory {}; back up to somewhere else",
            dest.display(),
            data.display()
        );
    }
    require_empty(dest, "back up")
}

/// Prints why the command will not run and answers exit code 1 (the
/// input was wrong), as `sift check` does for a bad condition.
fn refuse(why: &anyhow::Error) -> ExitCode {
    eprintln!("sift: {why:#}");
    ExitCode::from(1)
}

pub fn backup(dest: &Path, data: &Path) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if let Err(why) = backup_refusal(dest, data) {
        return Ok(refuse(&why));
    }
    let partial = partial_of(dest)?;
    make_partial(&partial)?;
    let mut totals = (0usize, 0u64);
    let result = copy_data_dir(data, &partial, &mut totals).and_then(|()| publish(&partial, dest));
    discard(&partial, result)?;
    println!(
        "Backed up {} files, {:.1} MB, from {} to {} in {:.1}s",
        totals.0,
        megabytes(totals.1),
        data.display(),
        dest.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn copy_data_dir(
    data: &Path,
    partial: &Path,
    totals: &mut (usize, u64),
) -> anyhow::Result<()> {
    // The catalog first, alone: a workspace's database is created before
    // the catalog names it, so every workspace in this snapshot of the
    // catalog has a database on disk by the time the directory is listed.
    let catalog_bytes = store::snapshot(&data.join(CATALOG), &partial.join(CATALOG))
        .with_context(|| format!("cannot copy {}", data.join(CATALOG).display()))?;
    *totals = (1, catalog_bytes);
    let (entries, skipped) = entries(data)?;
    for name in skipped {
        tracing::warn!("{name} in the data directory is not a file; not copied");
    }
    let bar = progress(entries.len(), "backing up");
    bar.inc(1);
    for entry in entries.iter().filter(|e| e.name != CATALOG) {
        bar.set_message(entry.name.clone());
        let to = partial.join(&entry.name);
        let copied = match entry.kind {
            Kind::Database => store::snapshot(&entry.path, &to).map_err(anyhow::Error::from),
            Kind::Plain => copy_plain(&entry.path, &to),
        };
        match copied {
            Ok(bytes) => {
                totals.0 += 1;
                totals.1 += bytes;
            }
            // Gone since the listing (never a workspace the copied catalog
            // names: those are checked below).
            Err(_) if !entry.path.exists() => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot copy {}", entry.path.display()));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    for (id, _) in store::catalog_workspaces(&partial.join(CATALOG))? {
        if !partial.join(format!("{id}.db")).is_file() {
            bail!("workspace {id} is named in the catalog but its database {id}.db was not copied");
        }
    }
    Ok(())
}

/// A data directory held at one instant ([`freeze_data_dir`]), to be
/// written out later ([`FrozenDir::write_to`]) while the server goes on.
#[cfg(feature = "cluster")]
pub(crate) struct FrozenDir {
    databases: Vec<(String, store::Frozen)>,
}

/// Holds every database of `data` at this instant (an open read
/// transaction each) and copies its other files into `partial` now: cluster
/// mode calls it while it holds its writes, which takes milliseconds, and
/// writes the databases out after letting writes go on.
#[cfg(feature = "cluster")]
pub(crate) fn freeze_data_dir(data: &Path, partial: &Path) -> anyhow::Result<FrozenDir> {
    // The catalog first, as in `copy_data_dir`: every workspace it names
    // has a database on disk by the time the directory is listed.
    let catalog = store::freeze(&data.join(CATALOG))
        .with_context(|| format!("cannot read {}", data.join(CATALOG).display()))?;
    let mut databases = vec![(CATALOG.to_string(), catalog)];
    let (entries, _) = entries(data)?;
    for entry in entries.into_iter().filter(|e| e.name != CATALOG) {
        let held = match entry.kind {
            Kind::Database => store::freeze(&entry.path)
                .map(|frozen| databases.push((entry.name.clone(), frozen)))
                .map_err(anyhow::Error::from),
            Kind::Plain => copy_plain(&entry.path, &partial.join(&entry.name)).map(|_| ()),
        };
        match held {
            Ok(()) => {}
            Err(_) if !entry.path.exists() => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot copy {}", entry.path.display()));
            }
        }
    }
    Ok(FrozenDir { databases })
}

#[cfg(feature = "cluster")]
impl FrozenDir {
    /// Writes every held database into `partial`, checked.
    pub(crate) fn write_to(self, partial: &Path) -> anyhow::Result<()> {
        for (name, frozen) in self.databases {
            frozen
                .write_to(&partial.join(&name))
                .with_context(|| format!("cannot copy {name}"))?;
        }
        for (id, _) in store::catalog_workspaces(&partial.join(CATALOG))? {
            if !partial.join(format!("{id}.db")).is_file() {
                bail!(
                    "workspace {id} is named in the catalog but its database {id}.db was not copied"
                );
            }
        }
        Ok(())
    }
}

/// What a restore will copy, once every check passed, and the workspaces
/// the backup's catalog names; Err: why it will not start.
fn restore_plan(src: &Path, data: &Path) -> anyhow::Result<(Vec<Entry>, Vec<Workspace>)> {
    if !src.join(CATALOG).is_file() {
        bail!(
            "{} holds no {CATALOG}: not a Sift backup (make one with `sift backup DEST`)",
            src.display()
        );
    }
    require_empty(data, "restore")?;
    let (entries, skipped) = entries(src)?;
    if !skipped.is_empty() {
        bail!(
            "{} holds directories ({}), which a backup never does; refusing to restore from it",
            src.display(),
            skipped.join(", ")
        );
    }
    // Everything is checked before anything is written.
    let bar = progress(entries.len(), "checking");
    for entry in &entries {
        bar.set_message(entry.name.clone());
        if let Kind::Database = entry.kind {
            store::check(&entry.path).with_context(|| {
                format!(
                    "{} failed its integrity check; nothing was restored",
                    entry.path.display()
                )
            })?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let workspaces = store::catalog_workspaces(&src.join(CATALOG))
        .with_context(|| format!("cannot read {}", src.join(CATALOG).display()))?;
    for (id, _) in &workspaces {
        if !src.join(format!("{id}.db")).is_file() {
            bail!(
                "{} names workspace {id} but holds no {id}.db; nothing was restored",
                src.join(CATALOG).display()
            );
        }
    }
    Ok((entries, workspaces))
}

pub fn restore(src: &Path, data: &Path) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (entries, workspaces) = match restore_plan(src, data) {
        Ok(plan) => plan,
        Err(why) => return Ok(refuse(&why)),
    };
    let partial = partial_of(data)?;
    make_partial(&partial)?;
    let bar = progress(entries.len(), "restoring");
    let mut bytes = 0;
    let result = (|| {
        for entry in &entries {
            bar.set_message(entry.name.clone());
            bytes += copy_plain(&entry.path, &partial.join(&entry.name))?;
            bar.inc(1);
        }
        publish(&partial, data)
    })();
    bar.finish_and_clear();
    discard(&partial, result)?;
    println!(
        "Restored {} workspaces ({} files, {:.1} MB) from {} into {} in {:.1}s:",
        workspaces.len(),
        entries.len(),
        megabytes(bytes),
        src.display(),
        data.display(),
        started.elapsed().as_secs_f64()
    );
    for (id, name) in &workspaces {
        println!("  {id}  {name}");
    }
    println!("Start it with: sift serve --data {}", data.display());
    Ok(ExitCode::SUCCESS)
}
