//! `semleak scan --format prometheus`: real zombies, whose parent has a name
//! full of bytes the exposition format must escape, scanned and parsed with
//! the Python prometheus-client parser. Linux: the zombies are read from
//! `/proc`.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::pyenv::venv_python;
use common::*;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Prints every sample as JSON: the real parser is the judge of the format.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
out = []
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "help": fam.documentation,
                    "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// A parent renamed (PR_SET_NAME) to a name with a quote, a backslash and
/// a newline, that starts 6 children and never waits for them.
const ZOMBIE_PARENT: &str = r#"
import ctypes, subprocess, time
libc = ctypes.CDLL(None)
libc.prctl(15, b'q"b\\s\nx', 0, 0, 0)  # PR_SET_NAME
kids = [subprocess.Popen(["/bin/true"], start_new_session=True) for _ in range(6)]
for k in kids:
    print(k.pid, flush=True)
print("ready", flush=True)
time.sleep(600)
"#;

fn parse(python: &std::path::Path, file: &std::path::Path) -> Vec<Value> {
    let out = Command::new(python)
        .arg("-c")
        .arg(PARSE)
        .arg(file)
        .output()
        .expect("run the parser");
    assert!(
        out.status.success(),
        "the Prometheus parser rejected the output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn prometheus_output_parses_and_labels_zombies_by_their_parent() {
    let Some(python) = venv_python() else { return };
    let mut parent = common::python(ZOMBIE_PARENT, &[]);
    let kids: Vec<i32> = (0..6)
        .map(|_| parent.read_line().parse().unwrap())
        .collect();
    assert_eq!(parent.read_line(), "ready");
    assert!(
        wait_until(TIMEOUT, || kids.iter().all(|&k| is_zombie(k))),
        "children did not become zombies"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("semleak.prom");
    let out = semleak(&[
        "scan",
        "--format",
        "prometheus",
        "-o",
        file.to_str().unwrap(),
        "--fail-on",
        "never",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "-o writes nothing to stdout");
    // Renamed into place: only the file itself is left in the directory.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["semleak.prom".to_string()]);

    let samples = parse(&python, &file);
    let families: BTreeMap<&str, (&str, &str)> = samples
        .iter()
        .map(|s| {
            (
                s["family"].as_str().unwrap(),
                (s["type"].as_str().unwrap(), s["help"].as_str().unwrap()),
            )
        })
        .collect();
    for (name, (kind, help)) in &families {
        assert!(name.starts_with("semleak_"), "{name}");
        assert_eq!(*kind, "gauge", "{name} has a TYPE");
        assert!(!help.is_empty(), "{name} has a HELP");
    }
    for name in [
        "semleak_build_info",
        "semleak_findings",
        "semleak_leaked_objects",
        "semleak_leaked_bytes",
        "semleak_zombies",
        "semleak_orphans",
        "semleak_wakeup_channels_full",
        "semleak_wakeup_channels_stalled",
        "semleak_scan_duration_seconds",
        "semleak_processes_inspected",
        "semleak_processes_skipped",
        "semleak_visibility_complete",
    ] {
        assert!(families.contains_key(name), "{name} missing: {families:?}");
    }

    let ours: Vec<&Value> = samples
        .iter()
        .filter(|s| {
            s["name"] == "semleak_zombies"
                && s["labels"]["parent_pid"].as_str() == Some(parent.pid().to_string().as_str())
        })
        .collect();
    assert_eq!(ours.len(), 1, "{samples:?}");
    // The exact name back, through escaping and the parser's unescaping.
    assert_eq!(ours[0]["labels"]["parent_comm"], "q\"b\\s\nx");
    assert_eq!(ours[0]["value"], 6.0);
    assert!(samples
        .iter()
        .any(|s| s["name"] == "semleak_zombies" && s["labels"]["parent_pid"] == "other"));
    let zombie_findings: f64 = samples
        .iter()
        .filter(|s| s["name"] == "semleak_findings" && s["labels"]["kind"] == "zombie")
        .map(|s| s["value"].as_f64().unwrap())
        .sum();
    assert!(zombie_findings >= 1.0, "{samples:?}");
    let complete = samples
        .iter()
        .find(|s| s["name"] == "semleak_visibility_complete")
        .unwrap();
    assert!(complete["value"] == 0.0 || complete["value"] == 1.0);
}

#[test]
fn prometheus_on_stdout_is_the_same_format() {
    let Some(python) = venv_python() else { return };
    let out = semleak(&["scan", "--format", "prometheus", "--fail-on", "never"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stdout.prom");
    std::fs::write(&file, &out.stdout).unwrap();
    let samples = parse(&python, &file);
    let build = samples
        .iter()
        .find(|s| s["name"] == "semleak_build_info")
        .expect("build info");
    assert_eq!(build["labels"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build["value"], 1.0);
}
