//! macOS analysis, tested on any OS: Snapshots shaped like a macOS host go
//! through `semleak analyze FILE` (the built binary), as a user's attached
//! `semleak snapshot` would.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use common::{findings, semleak};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/macos")
        .join(name)
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// `semleak analyze PATH --format json EXTRA…`: exit code and report.
fn analyze(path: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["analyze", path.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let out = semleak(&args);
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(code, 2, "{}", String::from_utf8_lossy(&out.stderr));
    (
        code,
        serde_json::from_slice(&out.stdout).expect("JSON report"),
    )
}

fn write_temp(dir: &tempfile::TempDir, name: &str, snapshot: &Value) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_vec(snapshot).unwrap()).unwrap();
    path
}

/// The case-1 host: the compact fixture plus `workers` spawn workers, each
/// holding the 5 semaphores of a spurious multiprocessing.Event, all
/// children of one executor.
fn pressured_host(workers: i32) -> Value {
    let mut snap = load("host.json");
    let procs = snap["processes"].as_array_mut().unwrap();
    procs.push(json!({
        "pid": 3000, "ppid": 1, "pgrp": 3000, "session": 3000, "state": "S", "uid": 501,
        "start_ticks": 1, "comm": "python3.11",
        "cmdline": ["/usr/local/bin/python3.11", "-m", "engine.executor", "--workers", workers.to_string()],
        "threads": 4, "inspected": true
    }));
    for i in 0..workers {
        let pid = 10_000 + i;
        procs.push(json!({
            "pid": pid, "ppid": 3000, "pgrp": 3000, "session": 3000, "state": "S", "uid": 501,
            "start_ticks": 2, "comm": "python3.11",
            "cmdline": ["/usr/local/bin/python3.11", "-c",
                format!("from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=6, pipe_handle={})", 20 + i % 50),
                "--multiprocessing-fork"],
            "threads": 1, "inspected": true,
            "psem_names": (0..5).map(|k| format!("mp-{pid:05}{k:03}")).collect::<Vec<_>>()
        }));
    }
    let total = procs.len();
    snap["visibility"]["processes_total"] = json!(total);
    snap["visibility"]["processes_inspected"] = json!(total - 1);
    snap
}

#[test]
fn compact_macos_host_reports_probed_leak_and_limits() {
    let (code, report) = analyze(&fixture("host.json"), &[]);
    assert_eq!(code, 1, "a leaked semaphore is an error");
    assert_eq!(report["host"]["os"], "macos");
    assert_eq!(
        report["limits"]["semaphores"],
        json!({"max": 10000, "in_use": 2}),
        "held mp-held0001 + probed, unheld mp-leak0001"
    );
    assert_eq!(report["visibility"]["complete"], false);
    assert!(report["visibility"]["notes"][0]
        .as_str()
        .unwrap()
        .contains("cannot list named semaphores"));

    let leaked = findings(&report, "leaked_semaphore");
    assert_eq!(leaked.len(), 1, "{leaked:#?}");
    assert_eq!(leaked[0]["resources"], json!(["/mp-leak0001"]));
    assert_eq!(
        leaked[0]["confidence"], "likely",
        "launchd (pid 1) was not inspected"
    );
    assert!(
        findings(&report, "semaphore_pressure").is_empty(),
        "2 of 10,000 is no pressure"
    );
}

#[test]
fn compact_macos_host_is_certain_when_everything_was_inspected() {
    let mut snap = load("host.json");
    snap["visibility"]["skipped"] = json!([]);
    snap["processes"][0]["inspected"] = json!(true);
    let dir = tempfile::tempdir().unwrap();
    let (_, report) = analyze(&write_temp(&dir, "root.json", &snap), &[]);
    let leaked = findings(&report, "leaked_semaphore");
    assert_eq!(leaked[0]["confidence"], "certain");
}

#[test]
fn nine_thousand_semaphores_five_per_worker() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "pressure.json", &pressured_host(1_800));

    let (code, report) = analyze(&path, &["--fail-on", "warning"]);
    assert_eq!(code, 1);
    assert_eq!(
        report["limits"]["semaphores"],
        json!({"max": 10000, "in_use": 9002})
    );
    let pressure = findings(&report, "semaphore_pressure");
    assert_eq!(pressure.len(), 1);
    let f = pressure[0];
    assert_eq!(
        f["severity"], "warning",
        "90% is above the 80% warning level"
    );
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("9002 of 10000 POSIX semaphores in use (90%"),
        "{summary}"
    );
    assert!(
        summary.contains("5 per process × 1800 process(es) running `/usr/local/bin/python3.11 -c from multiprocessing.spawn"),
        "{summary}"
    );
    let evidence: Vec<&str> = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        evidence.iter().any(|e| e.starts_with("5 per process × 1800 process(es) = 9000 semaphores (90% of the limit)")
            && e.contains("all children of pid 3000 (/usr/local/bin/python3.11 -m engine.executor --workers 1800)")),
        "{evidence:#?}"
    );
    assert!(evidence
        .iter()
        .any(|e| e.contains("1 process(es) that could not be inspected")));
    assert!(evidence.iter().any(|e| e.contains("cannot list them")));
    assert_eq!(f["parent_pid"], 3000);
    assert_eq!(
        f["pids"].as_array().unwrap().len(),
        1_800 + 1,
        "workers + app.py's group"
    );

    // The thresholds are flags; the id does not move with the figures.
    let (code, strict) = analyze(&path, &["--sem-pressure-error", "90"]);
    assert_eq!(code, 1);
    let g = findings(&strict, "semaphore_pressure")[0];
    assert_eq!(g["severity"], "error");
    assert_eq!(g["id"], f["id"]);
    let (code, relaxed) = analyze(
        &path,
        &["--sem-pressure-warning", "95", "--sem-pressure-error", "99"],
    );
    assert_eq!(
        findings(&relaxed, "semaphore_pressure")[0]["severity"],
        "info"
    );
    assert_eq!(code, 1, "the probed leak is still an error");
}

#[test]
fn table_output_shows_the_limit_and_the_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "pressure.json", &pressured_host(1_900));
    let out = semleak(&["analyze", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "95% is an error");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Semaphore limit pressure (1)"), "{text}");
    assert!(text.contains("5 per process × 1900 process(es)"), "{text}");
    assert!(
        text.contains("Semaphores: 9502 in use by visible processes (kern.posix.sem.max 10000)"),
        "{text}"
    );
}

/// The fields the zombie, orphan, wakeup-channel and thread rules read are
/// present in a macOS-shaped Snapshot exactly as on Linux, and survive the
/// round trip through `semleak analyze`.
#[test]
fn macos_snapshot_carries_what_the_process_rules_read() {
    let snap: semleak::platform::Snapshot =
        serde_json::from_value(load("host.json")).expect("fixture is a Snapshot");
    let zombies: Vec<_> = snap.processes.iter().filter(|p| p.is_zombie()).collect();
    assert_eq!(zombies.len(), 3);
    assert!(zombies.iter().all(|z| z.ppid == 400));
    let orphan = snap.processes.iter().find(|p| p.pid == 600).unwrap();
    assert_eq!((orphan.ppid, orphan.pgrp, orphan.session), (1, 550, 550));
    let server = snap.processes.iter().find(|p| p.pid == 700).unwrap();
    assert_eq!(
        server.fds[0].inode, server.fds[1].inode,
        "both pipe ends share an id"
    );
    assert_eq!(server.fds[1].nonblocking(), Some(true));
    assert_eq!(server.fds[1].access_mode(), Some(1));
    assert_eq!(server.thread_names.len(), 19);
    assert_eq!(snap.channels.len(), 1);
    assert!(snap.channels[0].samples.iter().all(|s| s.full));

    let (_, report) = analyze(&fixture("host.json"), &["--fail-on", "never"]);
    assert_eq!(report["visibility"]["processes_total"], 9);
}
