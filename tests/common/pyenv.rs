//! The Python the real-library tests run: a virtual environment under
//! `target/tmp/semleak-test-venv` with `tests/requirements.txt` installed,
//! made on first use (once per machine; later runs reuse it). A test that
//! needs a library calls [`venv_python`]; where Python or pip is missing it
//! skips with a loud message, unless `SEMLEAK_REQUIRE_PYTHON_LIBS=1` (set by
//! `.ci/run`) turns that into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const REQUIREMENTS: &str = include_str!("../requirements.txt");

fn venv_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("semleak-test-venv")
}

/// What the stamp file holds once the venv is complete: the requirements it
/// was made from, so a changed requirements file makes a new venv.
fn stamp() -> String {
    REQUIREMENTS.to_string()
}

fn required() -> bool {
    std::env::var("SEMLEAK_REQUIRE_PYTHON_LIBS").is_ok_and(|v| v == "1")
}

fn build(dir: &Path) -> Result<(), String> {
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&tmp))?;
    let req = tmp.join("requirements.txt");
    std::fs::write(&req, REQUIREMENTS).map_err(|e| e.to_string())?;
    run(Command::new(tmp.join("bin/python3"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&req))?;
    std::fs::write(tmp.join("semleak-stamp"), stamp()).map_err(|e| e.to_string())?;
    // Another test binary may have finished first: theirs is as good.
    if std::fs::rename(&tmp, dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

fn ready(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("semleak-stamp")).is_ok_and(|s| s == stamp())
}

/// The venv's `python3`, with trio, loky, joblib, prometheus-client and jsonschema
/// importable; `None` (after a loud message) when it cannot be made and
/// `SEMLEAK_REQUIRE_PYTHON_LIBS` is not set.
pub fn venv_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let dir = venv_dir();
            if !ready(&dir) {
                if dir.exists() {
                    // Made from other requirements: start again.
                    let old = dir.with_extension(format!("old-{}", std::process::id()));
                    let _ = std::fs::rename(&dir, &old);
                    let _ = std::fs::remove_dir_all(&old);
                }
                if let Err(e) = build(&dir) {
                    let msg = format!(
                        "cannot make the test venv with {} ({e}); tests that need real \
                         Python libraries are SKIPPED",
                        "tests/requirements.txt"
                    );
                    if required() {
                        panic!("{msg} (SEMLEAK_REQUIRE_PYTHON_LIBS=1)");
                    }
                    eprintln!("\n*** SKIPPED: {msg} ***\n");
                    return None;
                }
            }
            Some(dir.join("bin/python3"))
        })
        .clone()
}
