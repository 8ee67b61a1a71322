//! The JSON contracts: `docs/report.schema.json` and
//! `docs/snapshot.schema.json` are generated from the types (schemars); this
//! fails when a committed schema is stale, and validates real output of
//! `scan`, `run` and `snapshot` against them (Python's `jsonschema`, from
//! the test venv). Regenerate with `SEMLEAK_UPDATE_SCHEMA=1 cargo test --test schema`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn docs(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name)
}

fn generated() -> [(&'static str, String); 2] {
    let text = |schema: schemars::Schema| {
        let mut s = serde_json::to_string_pretty(&schema).unwrap();
        s.push('\n');
        s
    };
    [
        (
            "report.schema.json",
            text(schemars::schema_for!(semleak::report::Report)),
        ),
        (
            "snapshot.schema.json",
            text(schemars::schema_for!(semleak::platform::Snapshot)),
        ),
    ]
}

#[test]
fn committed_schemas_match_the_types() {
    let update = std::env::var_os("SEMLEAK_UPDATE_SCHEMA").is_some();
    for (name, want) in generated() {
        let path = docs(name);
        if update {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/{name} is stale: run `SEMLEAK_UPDATE_SCHEMA=1 cargo test --test schema` and commit it"
        );
    }
}

/// Validate `instance` against `docs/<schema>` with Python's jsonschema;
/// `Err` carries the validator's message.
fn validate(python: &Path, schema: &str, instance: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("instance.json");
    std::fs::write(&file, serde_json::to_vec(instance).unwrap()).unwrap();
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             cls = jsonschema.validators.validator_for(schema)\n\
             cls.check_schema(schema)\n\
             errors = sorted(cls(schema).iter_errors(json.load(open(sys.argv[2]))), key=str)\n\
             for e in errors[:5]: print(list(e.absolute_path), e.message)\n\
             sys.exit(1 if errors else 0)",
        ])
        .arg(docs(schema))
        .arg(&file)
        .output()
        .expect("run python");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn json_of(args: &[&str]) -> Value {
    let out = common::semleak(args);
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[test]
fn real_output_follows_the_committed_schemas() {
    let Some(python) = common::pyenv::venv_python() else {
        return;
    };
    let scan = json_of(&["scan", "--format", "json", "--sample-window", "0s"]);
    validate(&python, "report.schema.json", &scan).unwrap();

    let snapshot = json_of(&["snapshot", "--sample-window", "0s"]);
    assert!(!snapshot["processes"].as_array().unwrap().is_empty());
    validate(&python, "snapshot.schema.json", &snapshot).unwrap();

    // A run report, with the additive `run` object.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.json");
    let out = common::semleak(&[
        "run",
        "--interval",
        "0s",
        "--grace",
        "0s",
        "--report",
        report.to_str().unwrap(),
        "true",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let run: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(run["run"].is_object());
    validate(&python, "report.schema.json", &run).unwrap();

    // The check can fail: a renamed field and a wrong type are caught.
    let mut broken = scan.clone();
    broken["summary"]["errors"] = Value::from("none");
    let err = validate(&python, "report.schema.json", &broken).unwrap_err();
    assert!(err.contains("'summary', 'errors'"), "{err}");
    let mut broken = snapshot.clone();
    broken.as_object_mut().unwrap().remove("processes");
    assert!(validate(&python, "snapshot.schema.json", &broken).is_err());
}
