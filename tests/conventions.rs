//! Command-line conventions: shell completions, value lists in help, only
//! the options a subcommand uses, durations, `analyze` with baselines and
//! allowlists, and `snapshot --redact` for bug reports.

mod common;

use std::process::Command;

use common::{semleak, unique_name};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = semleak(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains("semleak"), "{shell}");
        assert!(
            script.contains("leak-exit-code"),
            "{shell}: run's flags are completed"
        );
    }
    // The bash script is valid bash.
    let out = semleak(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("semleak.bash");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert_eq!(semleak(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn help_lists_kinds_and_leaves_out_what_does_nothing() {
    let clean = text(&semleak(&["clean", "--help"]).stdout);
    for kind in [
        "leaked_semaphore",
        "orphan",
        "zombie",
        "full_wakeup_pipe",
        "thread_pileup",
    ] {
        assert!(clean.contains(kind), "clean --help lists {kind}:\n{clean}");
    }
    // clean does not sample wakeup channels: the option is gone.
    assert!(!clean.contains("--sample-window"));
    assert_eq!(
        semleak(&["clean", "--sample-window", "1s"]).status.code(),
        Some(2)
    );
    let bad = semleak(&["clean", "--kind", "leak"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("possible values"),
        "{}",
        text(&bad.stderr)
    );

    // --probe-names only does something on macOS.
    let scan = text(&semleak(&["scan", "--help"]).stdout);
    assert_eq!(scan.contains("--probe-names"), cfg!(target_os = "macos"));
    let run = text(&semleak(&["run", "--help"]).stdout);
    assert!(!run.contains("--probe-names"), "run probes by itself");
    assert!(run.contains("--leak-exit-code") && run.contains("--junit"));
    assert!(text(&semleak(&["--help"]).stdout).contains("--color <WHEN>"));
}

#[test]
fn durations_are_read_with_clear_errors() {
    for good in ["500ms", "2s", "5m", "0s", "1m 30s"] {
        let out = semleak(&[
            "scan",
            "--format",
            "json",
            "--sample-window",
            good,
            "--proc-root",
            "/nonexistent",
        ]);
        assert!(
            !text(&out.stderr).contains("invalid value"),
            "{good}: {}",
            text(&out.stderr)
        );
    }
    for (bad, says) in [
        ("5", "has no unit"),
        ("5parsecs", "unknown time unit"),
        ("-1s", "not a duration"),
    ] {
        let out = semleak(&["scan", &format!("--sample-window={bad}")]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = text(&out.stderr);
        assert!(err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn analyze_takes_a_baseline_and_an_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("host.json");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/macos/host.json"
    );
    std::fs::copy(fixture, &snapshot).unwrap();
    let snap = snapshot.to_str().unwrap();
    let out = semleak(&["analyze", snap, "--format", "json", "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = report["findings"].as_array().unwrap().len();
    assert!(found > 0, "the fixture has findings");

    // The report itself as a baseline: everything is known.
    let baseline = dir.path().join("baseline.json");
    std::fs::write(&baseline, &out.stdout).unwrap();
    let out = semleak(&[
        "analyze",
        snap,
        "--format",
        "json",
        "--baseline",
        baseline.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    assert_eq!(v["suppressed"]["baseline"], found);
    assert_eq!(out.status.code(), Some(0));

    // An allowlist by kind.
    let kind = report["findings"][0]["kind"].as_str().unwrap();
    let allow = dir.path().join("allow.toml");
    std::fs::write(
        &allow,
        format!("[[allow]]\nkind = \"{kind}\"\nreason = \"known\"\n"),
    )
    .unwrap();
    let out = semleak(&[
        "analyze",
        snap,
        "--format",
        "json",
        "--fail-on",
        "never",
        "--allow",
        allow.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["kind"] != kind));
    assert!(v["suppressed"]["allowlist"].as_u64().unwrap() > 0);
}

#[test]
fn snapshot_warns_about_command_lines_and_redacts_them() {
    let secret = unique_name("secret-token");
    let mut holder = common::python(
        "import sys, time; print('ready', flush=True); time.sleep(60)",
        &["--password", &secret],
    );
    assert_eq!(holder.read_line().trim(), "ready");
    let pid = holder.pid();

    let plain = semleak(&["snapshot", "--sample-window", "0s"]);
    assert_eq!(plain.status.code(), Some(0));
    assert!(
        text(&plain.stdout).contains(&secret),
        "the plain snapshot has argv"
    );
    assert!(
        text(&plain.stderr).contains("--redact"),
        "{}",
        text(&plain.stderr)
    );

    let redacted = semleak(&["snapshot", "--sample-window", "0s", "--redact"]);
    assert_eq!(redacted.status.code(), Some(0));
    assert!(!text(&redacted.stdout).contains(&secret));
    assert!(!text(&redacted.stderr).contains("--redact"));
    let snap: serde_json::Value = serde_json::from_slice(&redacted.stdout).unwrap();
    assert_eq!(snap["host"]["hostname"], "<redacted>");
    let me = snap["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .expect("the test's process is in the snapshot");
    let argv: Vec<&str> = me["cmdline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(argv.len(), 5, "{argv:?}");
    assert!(argv[0].contains("python"), "{argv:?}");
    assert!(argv[1..].iter().all(|a| *a == "<redacted>"), "{argv:?}");
    // A redacted snapshot still analyses.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("redacted.json");
    std::fs::write(&file, &redacted.stdout).unwrap();
    let out = semleak(&["analyze", file.to_str().unwrap(), "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
