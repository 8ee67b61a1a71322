//! The one-way rule of docs/ARCHITECTURE.md: every `crate::` path in a
//! module names a module of a lower layer (or the module itself). A module
//! that imports upward, or a new top-level module not placed in a layer,
//! fails this test.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Layers of the `semleak` crate, top first. A module may use modules of
/// later layers only.
const APP_LAYERS: &[&[&str]] = &[
    &["main", "lib"],
    &["commands"],
    &["cli"],
    &["report"],
    &["suppress"],
    &["analyze"],
    &["exit"],
    &["input"],
];

/// Layers of the `semleak-platform` crate, top first. The OS folders are
/// one layer: `linux` and `macos` never use each other.
const PLATFORM_LAYERS: &[&[&str]] = &[
    &["lib"],
    &["control"],
    &["linux", "macos"],
    &["model", "control_types", "options", "error"],
    &["rawname", "parallel"],
];

fn layer_of(layers: &[&[&str]], module: &str) -> Option<usize> {
    layers.iter().position(|l| l.contains(&module))
}

/// The top-level module a source file belongs to (`src/report/table.rs` →
/// `report`, `src/cli.rs` → `cli`).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).expect("file under root");
    let first = rel.components().next().expect("non-empty path");
    let first = first.as_os_str().to_string_lossy();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// Every top-level module named by a `crate::` path in `source`, comments
/// left out: `crate::a::b`, `crate::{a, b::c}`.
fn crate_references(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in source.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            // `semleak_platform::…` or `my_crate::…` are not `crate::`.
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// Violations of the layer rule in one file's source.
fn violations(layers: &[&[&str]], module: &str, source: &str) -> Vec<String> {
    let Some(own) = layer_of(layers, module) else {
        return vec![format!(
            "module `{module}` is in no layer: place it in the layer list of tests/architecture.rs and docs/ARCHITECTURE.md"
        )];
    };
    let mut out = Vec::new();
    for target in crate_references(source) {
        if target == module {
            continue;
        }
        match layer_of(layers, &target) {
            Some(t) if t > own => {}
            Some(_) => out.push(format!(
                "`{module}` uses `crate::{target}`, which is not below it"
            )),
            None => out.push(format!(
                "`{module}` uses `crate::{target}`, which is not a module of a layer \
                 (name items through their module, e.g. `crate::model::Snapshot`)"
            )),
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn check_crate(root: &Path, layers: &[&[&str]]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    assert!(
        files.len() > 5,
        "found the sources under {}",
        root.display()
    );
    let mut out = Vec::new();
    for file in files {
        let module = module_of(root, &file);
        let source = fs::read_to_string(&file).expect("readable source");
        for v in violations(layers, &module, &source) {
            out.push(format!("{}: {v}", file.display()));
        }
    }
    out
}

#[test]
fn every_import_of_the_app_crate_points_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = check_crate(&root, APP_LAYERS);
    assert!(bad.is_empty(), "upward imports:\n{}", bad.join("\n"));
}

#[test]
fn every_import_of_the_platform_crate_points_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("platform/src");
    let bad = check_crate(&root, PLATFORM_LAYERS);
    assert!(bad.is_empty(), "upward imports:\n{}", bad.join("\n"));
}

#[test]
fn the_check_catches_upward_and_sideways_imports() {
    // A renderer reaching for a command, grouped or not.
    assert_eq!(
        violations(APP_LAYERS, "report", "use crate::commands::run::RunInfo;").len(),
        1
    );
    assert_eq!(
        violations(
            APP_LAYERS,
            "report",
            "use crate::{analyze::Finding, cli::Format};"
        )
        .len(),
        1
    );
    // Downward and self references are fine; comments and other crates are ignored.
    assert!(violations(
        APP_LAYERS,
        "commands",
        "use crate::report::Report;\nuse crate::commands::emit; // crate::commands\nuse semleak_platform::control;"
    )
    .is_empty());
    // The OS folders never use each other; items go through their module.
    assert_eq!(
        violations(PLATFORM_LAYERS, "linux", "use crate::macos::abi;").len(),
        1
    );
    assert_eq!(
        violations(PLATFORM_LAYERS, "linux", "use crate::CollectOptions;").len(),
        1
    );
    assert_eq!(violations(APP_LAYERS, "newthing", "").len(), 1);
}
