//! Property tests for snapshot loading (`semleak analyze`): a snapshot may
//! come from anyone, so any JSON — every number pushed to its extremes,
//! names turned into hostile or malformed `{"hex": …}` values — is either
//! refused with an error or analysed, reported and planned for cleanup
//! without a panic (debug builds: overflow checks on). Also the other text
//! semleak reads from users: allowlists, baselines, durations, probe names.

use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Value};

use semleak::analyze::{analyze, Config};
use semleak::cli::parse_duration;
use semleak::commands::analyze::parse_snapshot;
use semleak::commands::clean::{plan, CleanOptions};
use semleak::commands::parse_probe_names;
use semleak::report::{json as json_report, table, Report};
use semleak::suppress::{check_allowlist, parse_baseline};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 192,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const NOW_MS: u64 = 1_700_000_000_000;

fn process(pid: i32, ppid: i32, state: &str, cmdline: &[&str]) -> Value {
    json!({
        "pid": pid, "ppid": ppid, "pgrp": ppid.max(1), "session": 1, "state": state,
        "uid": 1000, "start_time_ms": NOW_MS - 60_000, "start_ticks": 1000 + pid as u64,
        "comm": cmdline.first().copied().unwrap_or(""), "cmdline": cmdline, "threads": 20,
        "thread_names": vec!["subint-driver[1]"; 20], "sig_caught": 0, "sig_ignored": 0,
        "ns_pids": [pid],
        "shm_maps": [{"dev": 26, "inode": 11, "path": "/dev/shm/sem.held", "deleted": false}],
        "fds": [
            {"fd": 3, "kind": "pipe", "inode": 900, "flags": 2048, "peer_inode": null, "peer_closed": false},
            {"fd": 4, "kind": "pipe", "inode": 900, "flags": 2049, "peer_inode": null, "peer_closed": false},
            {"fd": 5, "kind": "unix_socket", "inode": 901, "flags": 2050, "peer_inode": 0, "peer_closed": true}
        ],
        "psem_names": ["mp-x"], "inspected": true
    })
}

fn semaphore(name: &str, inode: u64, holders: &[i32]) -> Value {
    json!({
        "name": name, "path": format!("/dev/shm/sem.{name}"),
        "meta": {"dev": 26, "inode": inode, "uid": 1000, "gid": 1000, "mode": 384, "size": 32,
                 "modified_at": 1_699_990_000, "changed_at": 1_699_990_000},
        "value": 1, "waiters": 2, "unreadable_reason": null, "unlinked": false, "holders": holders
    })
}

/// A snapshot every rule has something to say about.
fn base() -> Value {
    let spawn = [
        "/usr/bin/python3",
        "-c",
        "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)",
        "--multiprocessing-fork",
    ];
    json!({
        "format": 1,
        "host": {"os": "linux", "hostname": "h", "kernel": "6.1", "boot_time": 1_699_000_000,
                 "clock_ticks": 100, "collector_pid": 99999, "collector_uid": 1000},
        "taken_at_ms": NOW_MS, "duration_ms": 12,
        "shm": {
            "dir": "/dev/shm", "dev": 26,
            "semaphores": [semaphore("mp-ab12cd34", 10, &[]), semaphore("held", 11, &[200]),
                           semaphore("loky-4242-x1y2z3w4", 12, &[])],
            "residents": [{"name": "psm_1", "file_type": "file",
                           "meta": {"dev": 26, "inode": 20, "uid": 1000, "gid": 1000, "mode": 384,
                                    "size": 4096, "modified_at": 0, "changed_at": 0},
                           "holders": []}],
            "skipped": [{"name": "sem.link", "reason": "a symlink"}],
            "usage": {"bytes_total": 1000, "bytes_free": 10, "inodes_total": 100, "inodes_free": 1}
        },
        "processes": [
            process(1, 0, "S", &["/sbin/init"]),
            process(200, 1, "S", &["python3", "server.py"]),
            process(201, 200, "Z", &[]),
            process(202, 200, "Z", &[]),
            process(203, 1, "S", &spawn),
            process(204, 1, "S", &["python3", "-m", "loky.backend.popen_loky_posix"]),
        ],
        "visibility": {"processes_total": 7, "processes_inspected": 6,
                       "skipped": [{"pid": 300, "reason": "permission denied", "uid": 0}], "notes": []},
        "limits": {"sem_max": 10000, "pid_max": 4_194_304},
        "channels": [{"pid": 200, "kind": "pipe", "read_fd": 3, "write_fd": 4, "read_inode": 900,
                      "write_inode": 900, "nonblocking": true, "other_holders": [], "method": "pidfd_getfd",
                      "samples": [{"at_ms": 0, "queued": 65536, "capacity": 65536, "sender_wmem": null, "full": true},
                                  {"at_ms": 300, "queued": 65536, "capacity": 65536, "sender_wmem": 9, "full": true}]}],
        "probed_semaphores": [{"name": "mp-probe", "exists": true}]
    })
}

/// Every leaf of a JSON value, as a JSON pointer.
fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| leaves(x, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| leaves(x, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

fn extreme() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(u32::MAX)),
        Just(json!(i32::MAX)),
        Just(json!(i32::MIN)),
        Just(json!(253_402_300_800i64)),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!("")),
        Just(json!("Z")),
        Just(json!("\u{1b}[31m\u{202e}\n'$(x)")),
        "\\PC{0,12}".prop_map(Value::from),
        "[0-9a-fé]{0,6}".prop_map(|h| json!({"hex": h})),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
    ]
}

/// The base snapshot with up to 8 leaves replaced.
fn hostile_snapshot() -> impl Strategy<Value = Value> {
    let base = base();
    let mut paths = Vec::new();
    leaves(&base, String::new(), &mut paths);
    prop::collection::vec((prop::sample::select(paths), extreme()), 1..8).prop_map(move |edits| {
        let mut v = base.clone();
        for (path, value) in edits {
            if let Some(slot) = v.pointer_mut(&path) {
                *slot = value;
            }
        }
        v
    })
}

fn analyse_everything(text: &str) {
    let Ok(snapshot) = parse_snapshot(text, Path::new("prop.json")) else {
        return;
    };
    for config in [
        Config::default(),
        Config {
            hoard_threshold: 0,
            zombie_warning_at: 0,
            zombie_error_at: 0,
            thread_pileup_at: 0,
            shm_pressure_percent: 1,
            sem_pressure_warning_percent: 1,
            sem_pressure_error_percent: 1,
            per_worker_warning_at: 0,
        },
    ] {
        let findings = analyze(&snapshot, &config);
        let _ = plan(
            &snapshot,
            &findings,
            &CleanOptions {
                all_users: true,
                allow_incomplete: true,
                orphans: true,
                likely_orphans: true,
                nudge_parents: true,
                ..CleanOptions::default()
            },
        );
        let report = Report::new("analyze", &snapshot, findings);
        let _ = json_report::render(&report);
        let _ = table::render(&report, &table::TableOptions::PLAIN);
        let narrow = table::TableOptions {
            terminal_width: Some(60),
            color: true,
        };
        let _ = table::render(&report, &narrow);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_snapshot_is_refused_or_analysed_without_panic(v in hostile_snapshot()) {
        analyse_everything(&v.to_string());
    }

    #[test]
    fn arbitrary_text_is_refused_without_panic(text in "\\PC{0,200}") {
        analyse_everything(&text);
    }

    #[test]
    fn allowlists_never_panic(
        entries in prop::collection::vec(
            ("\\PC{0,12}", "[*?\\[\\]{},!a-z.\\-/\\\\]{0,10}", "[*?\\[\\]a-z ]{0,10}", "\\PC{0,8}"),
            0..4,
        ),
        junk in "\\PC{0,40}",
    ) {
        let mut text = String::new();
        for (kind, name, cmdline, reason) in entries {
            text.push_str(&format!(
                "[[allow]]\nkind = {kind:?}\nname = {name:?}\ncmdline = {cmdline:?}\nreason = {reason:?}\n"
            ));
        }
        let _ = check_allowlist(&text);
        text.push_str(&junk);
        if let Err(e) = check_allowlist(&text) {
            prop_assert!(!e.chars().any(|c| c.is_control()), "unescaped: {e:?}");
            prop_assert!(e.chars().count() < 400, "long: {e}");
        }
    }

    #[test]
    fn baselines_never_panic(ids in prop::collection::vec(prop_oneof![
        "\\PC{0,20}".prop_map(Value::from), Just(json!(null)), any::<i64>().prop_map(Value::from)
    ], 0..5), junk in "\\PC{0,30}") {
        let findings: Vec<Value> = ids.into_iter().map(|id| json!({"id": id})).collect();
        let _ = parse_baseline(&json!({"findings": findings}).to_string());
        let _ = parse_baseline(&junk);
    }

    #[test]
    fn durations_never_panic(s in "[0-9.e+\\-]{0,25}[a-z]{0,4}") {
        if let Ok(d) = parse_duration(&s) {
            prop_assert!(d.as_secs() <= 1_000_000_000);
        }
    }

    #[test]
    fn probe_name_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for name in parse_probe_names(&bytes) {
            prop_assert!(!name.as_bytes().contains(&b'\n'));
        }
    }
}
