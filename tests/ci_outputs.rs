//! `semleak run` as a CI gate CI systems understand: the command without
//! `--`, `--leak-exit-code`, JUnit XML, GitHub Actions annotations and step
//! summary, and a plain summary off a terminal. Each run makes a real leak:
//! a background `sleep` the command leaves running (semleak terminates it).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::semleak_bin;

/// A command that exits `status` and leaves a `sleep` running.
fn leaking(status: i32) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("sleep 30 & exit {status}"),
    ]
}

fn run(flags: &[&str], command: &[String], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(semleak_bin());
    cmd.args([
        "run",
        "--interval",
        "0s",
        "--grace",
        "0s",
        "--kill-after",
        "1s",
    ])
    .args(flags)
    .args(command)
    .env_remove("GITHUB_ACTIONS")
    .env_remove("GITHUB_STEP_SUMMARY")
    .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run semleak")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_command_needs_no_double_dash_and_keeps_its_flags() {
    let echo = |extra: &[&str]| {
        let mut args = vec!["run", "--interval", "0s", "--grace", "0s"];
        args.extend_from_slice(extra);
        common::semleak(&args)
    };
    // Flags after CMD are CMD's, even ones semleak also has.
    let out = echo(&[
        "sh",
        "-c",
        "printf '%s|' \"$@\"",
        "sh",
        "--grace",
        "5s",
        "-x",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "--grace|5s|-x|");
    // `--` still works, and so do flags before CMD.
    let out = echo(&["--fail-on", "never", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    // No command at all is a usage error.
    let out = common::semleak(&["run", "--grace", "0s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("semleak run [OPTIONS] [--] CMD [ARGS]..."));
}

#[test]
fn leak_exit_code_tells_leaks_from_a_failing_command() {
    let out = run(&[], &leaking(0), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = run(&["--leak-exit-code", "7"], &leaking(0), &[]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    // A failing command's own status wins over the leak.
    let out = run(&["--leak-exit-code", "7"], &leaking(5), &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // No leak: 0 whatever the leak code.
    let out = run(&["--leak-exit-code", "7"], &["true".to_string()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = common::semleak(&["run", "--leak-exit-code", "0", "true"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "0 would hide leaks: use --fail-on never"
    );
}

#[test]
fn github_actions_gets_annotations_and_a_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = run(
        &[],
        &leaking(0),
        &[
            ("GITHUB_ACTIONS", Path::new("true")),
            ("GITHUB_STEP_SUMMARY", &summary),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let annotations: Vec<&str> = err.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(annotations.len(), 1, "{err}");
    assert!(
        annotations[0].starts_with("::error title=semleak%3A Orphaned workers::1 process(es) left running by the command: pid "),
        "{}",
        annotations[0]
    );
    assert!(!annotations[0].contains('\n'));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n### semleak: LEAKS: 1 error on "),
        "{md}"
    );
    assert!(md.contains("| error | certain | orphan | `pids "), "{md}");
    assert!(
        md.contains("`sh -c sleep 30 & exit 0` exited with status 0"),
        "{md}"
    );

    // Outside GitHub Actions: none of it.
    let out = run(&[], &leaking(0), &[("GITHUB_STEP_SUMMARY", &summary)]);
    assert!(!stderr(&out).lines().any(|l| l.starts_with("::")));
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), md);
}

#[test]
fn junit_report_is_valid_xml_with_one_case_per_kind() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("semleak.xml");
    let out = run(&["--junit", junit.to_str().unwrap()], &leaking(0), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Python's XML parser reads it; the structure is what JUnit readers expect.
    let check = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET\n\
             root = ET.parse(sys.argv[1]).getroot()\n\
             assert root.tag == 'testsuites', root.tag\n\
             suites = root.findall('testsuite')\n\
             assert len(suites) == 1\n\
             s = suites[0]\n\
             cases = s.findall('testcase')\n\
             assert int(s.get('tests')) == len(cases) == int(sys.argv[2]), len(cases)\n\
             failed = [c for c in cases if c.find('failure') is not None]\n\
             assert int(s.get('failures')) == len(failed) == 1\n\
             assert int(root.get('failures')) == 1\n\
             f = failed[0]\n\
             assert f.get('name') == 'orphan', f.get('name')\n\
             text = f.find('failure').text\n\
             assert 'left running by the command' in text and '(sleep 30)' in text, text\n\
             assert 'sleep 30 & exit 0' in s.get('name'), s.get('name')\n\
             print('ok')",
        ])
        .arg(&junit)
        .arg(semleak::analyze::Kind::ALL.len().to_string())
        .output()
        .expect("python3 is needed for the integration tests");
    assert!(
        check.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&check.stderr),
        std::fs::read_to_string(&junit).unwrap()
    );
}

#[test]
fn summary_off_a_terminal_is_plain_text_at_100_columns() {
    let out = run(&[], &leaking(0), &[]);
    let err = stderr(&out);
    assert!(err.contains("Orphaned workers (1)"), "{err}");
    assert!(!err.contains('┌') && !err.contains('\x1b'), "{err}");
    for line in err.lines().filter(|l| !l.starts_with("    kill ")) {
        assert!(line.chars().count() <= 100, "{line:?}");
    }
    // The verdict opens and closes the findings.
    let verdicts: Vec<&str> = err.lines().filter(|l| l.starts_with("LEAKS: ")).collect();
    assert_eq!(verdicts.len(), 2, "{err}");

    let out = run(&["--color", "always"], &leaking(0), &[]);
    assert!(stderr(&out).contains("\x1b[1;31mLEAKS\x1b[0m"));
}

/// `--report`, `--junit` and `$GITHUB_STEP_SUMMARY` are not written
/// through a symbolic link (another user's, in /tmp): refused before the
/// command runs, the link's target untouched.
#[test]
fn report_files_refuse_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("theirs");
    std::fs::write(&target, "not yours\n").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let marker = dir.path().join("ran");
    let command: Vec<String> = vec!["touch".into(), marker.to_str().unwrap().into()];
    let message = format!(
        "semleak: error: refusing to write {}: it is a symbolic link (name a regular file, not a link)",
        link.display()
    );
    for flag in ["--report", "--junit"] {
        let out = run(&[flag, link.to_str().unwrap()], &command, &[]);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        assert!(stderr(&out).contains(&message), "{flag}: {}", stderr(&out));
        assert!(!marker.exists(), "{flag}: the command must not run");
    }
    let out = run(
        &[],
        &leaking(0),
        &[
            ("GITHUB_ACTIONS", Path::new("true")),
            ("GITHUB_STEP_SUMMARY", &link),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&message), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "not yours\n");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Semaphore names any local user can choose, printed by `semleak run`
/// under GitHub Actions, are never obeyed by the runner as workflow
/// commands: no line (trimmed of leading whitespace, as the runner trims
/// it) starts with `::` except semleak's own annotations, and no line
/// holds `##[`. The names are made by the command in a private directory
/// (`--shm-dir`), so they are blamed on it and printed.
#[test]
fn hostile_names_are_not_obeyed_as_workflow_commands() {
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("shm");
    std::fs::create_dir(&shm).unwrap();
    let summary = dir.path().join("step-summary.md");
    let names = [
        format!("sem.mp-{} ::stop-commands::tok", "A".repeat(60)),
        // 80 characters, then the command: wrapped at 100 columns, the
        // summary line breaks right before `::`.
        format!("sem.{} ::stop-commands::tok", "A".repeat(80)),
        "sem.x ::warning title=FORGED::forged".to_string(),
        "sem.##[error]x".to_string(),
    ];
    let mut script = String::new();
    for name in &names {
        let path = shm.join(name);
        script.push_str(&format!(
            "head -c 32 /dev/zero > '{}'\n",
            path.to_str().unwrap()
        ));
    }
    let out = run(
        &["--shm-dir", shm.to_str().unwrap(), "--allow-non-tmpfs"],
        &["sh".into(), "-c".into(), script],
        &[
            ("GITHUB_ACTIONS", Path::new("true")),
            ("GITHUB_STEP_SUMMARY", &summary),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // Each name was reported (its annotation is there).
    let annotations: Vec<&str> = err.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(annotations.len(), names.len(), "{err}");
    let all = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    // The runner also ends a line at a CR.
    for line in all.split(['\n', '\r']) {
        assert!(!line.contains("##["), "obeyed as a command: {line:?}");
        let trimmed = line.trim_start();
        if !trimmed.starts_with("::") {
            continue;
        }
        // Only semleak's own annotations, whole: the properties are its
        // title, the hostile text is in the (escaped) message.
        let (properties, message) = trimmed[2..].split_once("::").unwrap();
        assert!(
            ["error", "warning", "notice"]
                .iter()
                .any(|level| properties == format!("{level} title=semleak%3A Leaked semaphores")),
            "a forged workflow command: {line:?}"
        );
        assert!(!message.contains('\n'), "{line:?}");
    }
    // The names are still shown, escaped, in the summary and annotations.
    assert!(err.contains("sem.#%23[error]x"), "{err}");
    assert!(err.contains(":%3Astop-commands::tok"), "{err}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(!md.contains("##[") && !md.contains("<"), "{md}");
    assert!(
        !md.lines().any(|l| l.trim_start().starts_with("::")),
        "{md}"
    );
}

/// `semleak scan` in a workflow step prints the same hostile names: its
/// table output is made inert too (JSON and Prometheus lines never start
/// with a name).
#[test]
fn scan_under_github_actions_prints_no_workflow_command() {
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("shm");
    std::fs::create_dir(&shm).unwrap();
    for name in [
        format!("sem.{} ::stop-commands::tok", "A".repeat(80)),
        "sem.##[error]x".to_string(),
    ] {
        std::fs::write(shm.join(name), [0u8; 32]).unwrap();
    }
    let out = std::process::Command::new(common::semleak_bin())
        .args([
            "scan",
            "--shm-dir",
            shm.to_str().unwrap(),
            "--allow-non-tmpfs",
            "--color",
            "never",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sem.#%23[error]x"), "{text}");
    for line in text.split(['\n', '\r']) {
        assert!(!line.contains("##["), "obeyed as a command: {line:?}");
        assert!(
            !line.trim_start().starts_with("::"),
            "obeyed as a command: {line:?}"
        );
    }
}
