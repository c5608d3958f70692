//! The server crate's layers, checked: each module imports only from the
//! layers below it (or its own), so the crate reads bottom-up and no change
//! down low can depend on a handler. ARCHITECTURE.md draws the same table.
//!
//! The check reads the sources as text: every `crate::<module>` path, and
//! inside `workspace/` every `super::<file>` path, outside comments and test
//! modules. A path into `workspace` that names no file of it (`WorkspaceHandle`,
//! re-exported by `workspace/mod.rs`) counts as `workspace/mod`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom first. A module not in the table fails the check, so a new one
/// has to be given its place.
const LAYERS: &[&[&str]] = &[
    // Leaves: they import nothing from the crate.
    &["ids", "sequenced", "workspace/segment_refs"],
    // Nearly leaves: at most the made-up ids.
    &[
        "clock",
        "reply",
        "destination",
        "secrets",
        "written",
        "session",
        "csv_export",
        "workspace/error",
    ],
    &["config"],
    &["error"],
    &["workspace/writer", "workspace/reads", "workspace/bursts"],
    &["workspace/history"],
    &["workspace/service"],
    // The background tasks: they hold the service, never the handle.
    &[
        "timers",
        "runner",
        "retention",
        "checkpoints",
        "event_blocks",
        "outbox",
        "webhooks",
        "facebook",
    ],
    &["workspace/mod"],
    &["workspace/tasks"],
    &["state"],
    &["body", "listen", "revoke"],
    &["api"],
    &["ui"],
    &["lib"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The module a source file belongs to: its top-level folder or file,
/// except inside `workspace/`, whose files are layered one by one.
fn module_of(relative: &Path) -> String {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [dir, file, ..] if dir == "workspace" => format!("workspace/{file}"),
        [first, ..] => first.clone(),
        [] => String::new(),
    }
}

/// The source without comments and without its `#[cfg(test)]` part.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules `code` (in `module`) imports from, as the layer table names them.
fn imports(module: &str, code: &str) -> BTreeSet<String> {
    let workspace_files = [
        "error", "writer", "reads", "bursts", "history", "service", "tasks", "mod",
    ];
    let mut found = BTreeSet::new();
    let mut targets: Vec<(String, Option<String>)> = Vec::new();
    for (prefix, inside_workspace) in [("crate::", false), ("super::", true)] {
        if inside_workspace && !module.starts_with("workspace/") {
            continue;
        }
        for (at, _) in code.match_indices(prefix) {
            let path: Vec<String> = code[at + prefix.len()..]
                .split("::")
                .take(2)
                .map(|s| {
                    s.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect()
                })
                .collect();
            match (inside_workspace, path.as_slice()) {
                (false, [first, second, ..]) => targets.push((first.clone(), Some(second.clone()))),
                (false, [first]) => targets.push((first.clone(), None)),
                (true, [first, ..]) => targets.push(("workspace".into(), Some(first.clone()))),
                _ => {}
            }
        }
    }
    for (first, second) in targets {
        let target = if first == "workspace" {
            match second {
                Some(file) if workspace_files.contains(&file.as_str()) => {
                    format!("workspace/{file}")
                }
                _ => "workspace/mod".to_string(),
            }
        } else {
            first
        };
        if target != module && !target.is_empty() {
            found.insert(target);
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(files.len() > 30, "read {} files from {root:?}", files.len());
    let mut faults = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap_or(&file);
        let module = module_of(relative);
        // Test-only files and this check itself are not part of the layering.
        if module.ends_with("_tests") || module == "layers" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            faults.push(format!("{module} ({relative:?}) has no place in LAYERS"));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for target in imports(&module, &code_of(&text)) {
            match layer_of(&target) {
                Some(layer) if layer > own => faults.push(format!(
                    "{relative:?} ({module}, layer {own}) imports {target} (layer {layer})"
                )),
                Some(_) => {}
                None => faults.push(format!("{relative:?} imports {target}, not in LAYERS")),
            }
        }
    }
    assert!(
        faults.is_empty(),
        "imports that run up:\n{}",
        faults.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_that_runs_up() {
    let code = code_of("use crate::state::AppState;\n// crate::api::x in a comment\n");
    assert_eq!(
        imports("timers", &code),
        BTreeSet::from(["state".to_string()])
    );
    let code = code_of("use super::service::WorkspaceService;\nuse super::WorkspaceHandle;");
    assert_eq!(
        imports("workspace/tasks", &code),
        BTreeSet::from(["workspace/mod".to_string(), "workspace/service".to_string()])
    );
    assert!(layer_of("state") > layer_of("timers"));
}
