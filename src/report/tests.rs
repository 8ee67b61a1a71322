//! Rendering tests: insta snapshots of the table and JSON output of one
//! Snapshot built in code, and the JSON field set pinned.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{json, table, Report};
use crate::analyze::testing::*;
use crate::analyze::{analyze, Config};

fn example_report() -> Report {
    let mut snap = snapshot();
    let mut unlinked = sem("0MDtNA", 30, &[200]);
    unlinked.unlinked = true;
    unlinked.value = None;
    unlinked.waiters = None;
    snap.shm.semaphores = vec![
        sem("mp-ab12cd34", 10, &[]),
        sem("loky-4242-x1y2z3w4", 11, &[]),
        sem("app-lock", 12, &[200, 201]),
        sem("app-queue", 13, &[200]),
        unlinked,
    ];
    snap.shm.usage = Some(semleak_platform::FsUsage {
        bytes_total: 64 << 20,
        bytes_free: 60 << 20,
        inodes_total: 1000,
        inodes_free: 100,
    });
    snap.processes = vec![
        process(1, 0, "/sbin/init"),
        process(200, 1, "python3 server.py --workers 4"),
        process(201, 200, "python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork"),
    ];
    snap.visibility.processes_total = 4;
    snap.visibility.processes_inspected = 3;
    skip(&mut snap, 300, Some(0));
    let config = Config {
        hoard_threshold: 3,
        ..Config::default()
    };
    let findings = analyze(&snap, &config);
    let mut report = Report::new("scan", &snap, findings);
    report.semleak_version = "0.0.0-test".into();
    report
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn table_rendering() {
    let text = table::render(&example_report(), &table::TableOptions::PLAIN);
    settings().bind(|| insta::assert_snapshot!("scan_table", text));
}

#[test]
fn table_rendering_in_an_80_column_terminal() {
    let opts = table::TableOptions {
        terminal_width: Some(80),
        color: false,
    };
    let text = table::render(&example_report(), &opts);
    // Cards, not boxes; only the copyable cleanup commands may be longer.
    assert!(!text.contains('┌'), "{text}");
    for line in text.lines().filter(|l| !l.starts_with("    rm ")) {
        assert!(line.chars().count() <= 80, "{line:?} is wider than 80");
    }
    settings().bind(|| insta::assert_snapshot!("scan_table_80", text));
}

#[test]
fn table_rendering_in_a_wide_terminal() {
    let opts = table::TableOptions {
        terminal_width: Some(140),
        color: false,
    };
    let text = table::render(&example_report(), &opts);
    assert!(text.contains('┌'), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 140));
    settings().bind(|| insta::assert_snapshot!("scan_table_140", text));
}

#[test]
fn colour_marks_severities_only_when_on() {
    let mut opts = table::TableOptions::PLAIN;
    assert!(!table::render(&example_report(), &opts).contains('\x1b'));
    opts.color = true;
    let text = table::render(&example_report(), &opts);
    assert!(text.starts_with("\x1b[1;31mLEAKS\x1b[0m: "), "{text}");
    assert!(text.contains("\x1b[1;31merror\x1b[0m · "), "{text}");
}

#[test]
fn evidence_every_finding_shares_is_shown_once() {
    let report = example_report();
    let text = table::render(&report, &table::TableOptions::PLAIN);
    let leaks: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == crate::analyze::Kind::LeakedSemaphore)
        .collect();
    assert!(leaks.len() >= 2);
    let first = leaks[0].evidence_lines();
    let shared: Vec<&String> = first
        .iter()
        .filter(|e| leaks.iter().all(|f| f.evidence_lines().contains(e)))
        .collect();
    assert!(!shared.is_empty());
    assert!(text.contains(&format!("common to all {}:", leaks.len())));
    for e in shared {
        let first_words: String = e.chars().take(30).collect();
        assert_eq!(
            text.matches(&first_words).count(),
            1,
            "{e:?} repeated:\n{text}"
        );
    }
    // The verdict opens and closes the output.
    let verdict = text.split("\n\n").next().unwrap();
    assert!(verdict.starts_with("LEAKS: "));
    assert!(text.ends_with(&format!("\n\n{verdict}\n")), "{text}");
}

#[test]
fn json_rendering() {
    let text = json::render(&example_report());
    settings().bind(|| insta::assert_snapshot!("scan_json", text));
}

#[test]
fn clean_host_table() {
    let snap = snapshot();
    let mut report = Report::new("scan", &snap, analyze(&snap, &Config::default()));
    report.semleak_version = "0.0.0-test".into();
    let text = table::render(&report, &table::TableOptions::PLAIN);
    settings().bind(|| insta::assert_snapshot!("scan_table_clean", text));
}

fn keys(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone());
                keys(v, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                keys(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The JSON contract of docs/JSON.md (schema_version 1). Adding a field means
/// adding it here; renaming or removing one means bumping schema_version.
#[test]
fn json_field_set_is_pinned() {
    let v: Value = serde_json::from_str(&json::render(&example_report())).unwrap();
    let mut got = BTreeSet::new();
    keys(&v, "", &mut got);
    let expected: BTreeSet<String> = [
        "schema_version",
        "semleak_version",
        "command",
        "host",
        "host.os",
        "host.hostname",
        "host.kernel",
        "started_at",
        "duration_ms",
        "visibility",
        "visibility.complete",
        "visibility.processes_total",
        "visibility.processes_inspected",
        "visibility.skipped",
        "visibility.skipped[].pid",
        "visibility.skipped[].reason",
        "visibility.notes",
        "visibility.entries_skipped",
        "limits",
        "limits.shm",
        "limits.shm.path",
        "limits.shm.bytes_total",
        "limits.shm.bytes_used",
        "limits.shm.inodes_total",
        "limits.shm.inodes_used",
        "limits.semaphores",
        "limits.semaphores.max",
        "limits.semaphores.in_use",
        "summary",
        "summary.errors",
        "summary.warnings",
        "summary.infos",
        "summary.by_kind",
        "summary.by_kind.leaked_semaphore",
        "summary.by_kind.semaphore_hoarding",
        "summary.by_kind.shm_pressure",
        "findings",
        "findings[].id",
        "findings[].kind",
        "findings[].severity",
        "findings[].confidence",
        "findings[].summary",
        "findings[].pids",
        "findings[].parent_pid",
        "findings[].resources",
        "findings[].evidence",
        "findings[].recommendation",
        "findings[].cleanup",
        "inventory",
        "inventory.semaphores",
        "inventory.semaphores[].name",
        "inventory.semaphores[].path",
        "inventory.semaphores[].dev",
        "inventory.semaphores[].inode",
        "inventory.semaphores[].uid",
        "inventory.semaphores[].mode",
        "inventory.semaphores[].size",
        "inventory.semaphores[].value",
        "inventory.semaphores[].waiters",
        "inventory.semaphores[].modified_at",
        "inventory.semaphores[].unlinked",
        "inventory.semaphores[].holders",
        "suppressed",
        "suppressed.baseline",
        "suppressed.allowlist",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let unexpected: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "missing {missing:?}, unexpected {unexpected:?}"
    );
    assert_eq!(v["schema_version"], 1);
}

#[test]
fn out_of_range_dates_render_as_such() {
    let mut snap = snapshot();
    let mut future = sem("future", 40, &[]);
    future.meta.modified_at = 253_402_300_800; // touch -d @253402300800: year 10000
    let mut past = sem("past", 41, &[]);
    past.meta.modified_at = i64::MIN;
    snap.shm.semaphores = vec![future, past];
    snap.taken_at_ms = u64::MAX;
    let findings = analyze(&snap, &Config::default());
    let report = Report::new("scan", &snap, findings);
    assert_eq!(
        report.started_at,
        format!("@{} (out of range)", u64::MAX / 1000)
    );
    assert!(report
        .inventory
        .semaphores
        .iter()
        .all(|s| s.modified_at.is_none()));
    let evidence: Vec<String> = report
        .findings
        .iter()
        .flat_map(|f| f.evidence_lines())
        .collect();
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("out-of-range time (@253402300800)")),
        "{evidence:?}"
    );
    table::render(&report, &table::TableOptions::PLAIN);
    json::render(&report);
    assert_eq!(
        super::rfc3339_secs(253_402_300_799).unwrap(),
        "9999-12-31T23:59:59Z"
    );
}
