//! Golden reports: `semleak analyze` of the fixed Snapshots in
//! `tests/golden/` must print exactly what was pinned, in every format.
//! A deliberate change of wording is made by rewriting the pinned files
//! (`SEMLEAK_UPDATE_GOLDEN=1 cargo test --test golden`) and saying so in
//! CHANGELOG.md; anything else that changes them is a regression.

mod common;

use std::path::{Path, PathBuf};

const FORMATS: [(&str, &str); 3] = [
    ("json", "report.json"),
    ("table", "table.txt"),
    ("prometheus", "prom"),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// What varies by build only, made fixed.
fn normalised(text: &str) -> String {
    text.replace(env!("CARGO_PKG_VERSION"), "VERSION")
}

#[test]
fn analyze_of_each_fixed_snapshot_is_byte_identical() {
    let update = std::env::var_os("SEMLEAK_UPDATE_GOLDEN").is_some();
    let mut snapshots: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".snapshot.json"))
        .collect();
    snapshots.sort();
    assert!(snapshots.len() >= 6, "{snapshots:?}");
    let mut differ = Vec::new();
    for snapshot in &snapshots {
        let name = snapshot
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".snapshot.json")
            .to_string();
        for (format, ext) in FORMATS {
            let out = common::semleak(&[
                "analyze",
                snapshot.to_str().unwrap(),
                "--format",
                format,
                "--color",
                "never",
                "--hold-threshold",
                "2",
            ]);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{name} {format}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got = normalised(&String::from_utf8(out.stdout).unwrap());
            let pinned = golden_dir().join(format!("{name}.{ext}"));
            if update {
                std::fs::write(&pinned, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&pinned)
                .unwrap_or_else(|e| panic!("{}: {e}", pinned.display()));
            if got != want {
                let line = got
                    .lines()
                    .zip(want.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.lines().count().min(want.lines().count()));
                differ.push(format!(
                    "{} differs from line {}:\n  got:  {:?}\n  want: {:?}",
                    pinned.display(),
                    line + 1,
                    got.lines().nth(line).unwrap_or(""),
                    want.lines().nth(line).unwrap_or("")
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

#[test]
fn the_fixed_snapshots_cover_every_finding_kind() {
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".report.json") {
            continue;
        }
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for f in report["findings"].as_array().unwrap() {
            kinds.insert(f["kind"].as_str().unwrap().to_string());
        }
    }
    for kind in [
        "leaked_semaphore",
        "semaphore_pressure",
        "semaphore_hoarding",
        "per_worker_semaphores",
        "shm_pressure",
        "zombie",
        "orphan",
        "full_wakeup_pipe",
        "stalled_wakeup_pipe",
        "thread_pileup",
    ] {
        assert!(
            kinds.contains(kind),
            "no golden report has a {kind} finding"
        );
    }
}
