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

// ---- xnu.json: the behaviours a line-by-line reading of XNU corrected ----
//
// A Snapshot as the corrected collector records it on a Mac (collected as
// root, everything inspected): a dated zombie and a just-exited one, a
// 16 KiB and a 64 KiB self-pipe, a socketpair whose peer closed, `foo` and
// `/foo`, held names that were unlinked, a spawn pool whose workers each
// make an Event, and a process whose KERN_PROCARGS2 did not come back whole.

fn xnu(extra: &[&str]) -> Value {
    analyze(&fixture("xnu.json"), extra).1
}

fn evidence(f: &Value) -> Vec<&str> {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect()
}

#[test]
fn xnu_zombie_with_a_start_time_is_dated_and_a_fresh_one_spared() {
    let report = xnu(&["--fail-on", "never"]);
    let zombies = findings(&report, "zombie");
    assert_eq!(
        zombies.len(),
        1,
        "pid 451 exited 2 s ago: its parent is between reaps"
    );
    assert_eq!(zombies[0]["pids"], json!([401]));
    assert!(
        evidence(zombies[0])
            .iter()
            .any(|e| e.starts_with("zombie for at most 2h 0m")),
        "{:#?}",
        zombies[0]
    );
}

#[test]
fn xnu_pipe_at_16_kib_is_stalled_and_at_64_kib_full() {
    let report = xnu(&["--fail-on", "never"]);
    let full = findings(&report, "full_wakeup_pipe");
    let stalled = findings(&report, "stalled_wakeup_pipe");
    assert_eq!(full.len(), 1);
    assert_eq!(full[0]["pids"], json!([710]));
    assert_eq!(
        stalled.len(),
        1,
        "16 KiB queued: the buffer can still grow to 64 KiB"
    );
    assert_eq!(stalled[0]["pids"], json!([700]));
    assert!(evidence(stalled[0])
        .iter()
        .any(|e| e.ends_with("16384 of 65536 bytes queued")));
}

#[test]
fn xnu_disconnected_socketpair_makes_an_orphan() {
    let report = xnu(&["--fail-on", "never"]);
    let orphans = findings(&report, "orphan");
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0]["pids"], json!([720]));
    assert_eq!(orphans[0]["severity"], "warning");
    assert!(evidence(orphans[0])
        .iter()
        .any(|e| e.contains("whose peer was closed")));
}

#[test]
fn xnu_foo_and_slash_foo_are_two_semaphores() {
    let report = xnu(&["--fail-on", "never"]);
    let leaked = findings(&report, "leaked_semaphore");
    assert_eq!(leaked.len(), 1, "/foo is held by pid 800; foo by nobody");
    assert_eq!(leaked[0]["resources"], json!(["foo"]));
    assert_eq!(leaked[0]["confidence"], "certain");
    assert_eq!(
        leaked[0]["cleanup"],
        json!(["python3 -c 'import _multiprocessing; _multiprocessing.sem_unlink(\"foo\")'"])
    );
}

#[test]
fn xnu_held_but_unlinked_names_are_not_counted_against_the_limit() {
    // 80 names of the pool, /foo and foo; not pid 3100's 5 unlinked ones.
    let report = xnu(&["--fail-on", "never", "--sem-pressure-warning", "1"]);
    assert_eq!(
        report["limits"]["semaphores"],
        json!({"max": 10000, "in_use": 82})
    );
    let pressure = findings(&report, "semaphore_pressure");
    assert_eq!(pressure.len(), 1);
    let f = pressure[0];
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .starts_with("82 of 10000 POSIX semaphores in use"),
        "{f:#?}"
    );
    let ev = evidence(f);
    assert!(
        ev.iter()
            .any(|e| e.starts_with("5 more held, unlinked, not counted")),
        "{ev:#?}"
    );
    // The pool's 80 are counted once: the parent's 40 (passed to its
    // workers) and the workers' own 40, not 40 + 80.
    let groups: Vec<&&str> = ev
        .iter()
        .filter(|e| e.contains(" per process × "))
        .collect();
    assert!(
        groups
            .iter()
            .any(|g| g.starts_with("5 per process × 8 process(es) = 40 semaphores")),
        "{groups:#?}"
    );
    assert!(
        groups.iter().any(
            |g| g.starts_with("40 per process × 1 process(es) = 40 semaphores")
                && g.contains("40 of them also held by other processes")
        ),
        "{groups:#?}"
    );
}

#[test]
fn xnu_per_worker_pattern_names_every_worker() {
    let report = xnu(&["--fail-on", "never"]);
    let per_worker = findings(&report, "per_worker_semaphores");
    assert_eq!(per_worker.len(), 1, "{per_worker:#?}");
    let f = per_worker[0];
    assert_eq!(f["pids"], json!((3001..=3008).collect::<Vec<_>>()));
    assert_eq!(f["parent_pid"], 3000);
    assert_eq!(f["severity"], "info");
    assert!(f["summary"]
        .as_str()
        .unwrap()
        .contains("each hold 5 private semaphores, 40 in all"));
    let resources: Vec<&str> = f["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(resources.len(), 40);
    assert!(
        resources.iter().all(|r| r.starts_with("/mp-own")),
        "not the passed-in ones"
    );
    // A tenth of kern.posix.sem.max makes it a warning.
    let mut snap = load("xnu.json");
    snap["limits"]["sem_max"] = json!(400);
    let dir = tempfile::tempdir().unwrap();
    let (_, report) = analyze(
        &write_temp(&dir, "small-limit.json", &snap),
        &["--fail-on", "never"],
    );
    assert_eq!(
        findings(&report, "per_worker_semaphores")[0]["severity"],
        "warning"
    );
}

#[test]
fn xnu_truncated_procargs_leaves_the_command_line_unknown() {
    let snap: semleak::platform::Snapshot =
        serde_json::from_value(load("xnu.json")).expect("fixture is a Snapshot");
    let p = snap.processes.iter().find(|p| p.pid == 900).unwrap();
    assert!(p.cmdline.is_empty(), "never a tail of the string area");
    let report = xnu(&["--fail-on", "never"]);
    assert!(report["visibility"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n
            .as_str()
            .unwrap()
            .starts_with("the command lines of 1 process(es) are unknown")));
}

#[test]
fn macos_thread_pileup_reads_whole_63_byte_names() {
    let (_, report) = analyze(&fixture("host.json"), &["--fail-on", "never"]);
    let piles = findings(&report, "thread_pileup");
    assert_eq!(piles.len(), 1, "{piles:#?}");
    assert_eq!(piles[0]["pids"], json!([700]));
    assert!(piles[0]["summary"]
        .as_str()
        .unwrap()
        .contains("17 threads named subint-driver[*]"));
    assert!(
        !evidence(piles[0]).iter().any(|e| e.contains("15 bytes")),
        "Linux's 15-byte limit is not macOS's: {piles:#?}"
    );
}
