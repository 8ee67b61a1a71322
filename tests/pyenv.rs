//! The test venv really has the libraries the real-library tests drive, at
//! the versions `tests/requirements.txt` pins.

mod common;

use std::process::Command;

#[test]
fn the_test_venv_has_the_real_libraries() {
    let Some(python) = common::pyenv::venv_python() else {
        return;
    };
    let out = Command::new(&python)
        .args([
            "-c",
            "import trio, loky, joblib, prometheus_client, jsonschema, importlib.metadata as m;\
             print(' '.join(f'{p}=={m.version(p)}' for p in ['trio','loky','joblib','prometheus-client','jsonschema']))",
        ])
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let versions = String::from_utf8_lossy(&out.stdout);
    for line in include_str!("requirements.txt").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        assert!(
            versions.split_whitespace().any(|v| v == line),
            "{line} not installed: {versions}"
        );
    }
}
