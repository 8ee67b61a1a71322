//! Fixture /proc and shared-memory trees full of odd entries: semleak
//! reports or skips each with a reason, never panics, escapes names on a
//! terminal and keeps JSON valid.
#![cfg(target_os = "linux")]

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use common::*;

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn stat_line(pid: i32, comm: &str, state: char, ppid: i32) -> String {
    format!("{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5000 1000 10 18446744073709551615\n")
}

fn add_process(proc_root: &Path, pid: i32, comm: &str, maps: &str) {
    let dir = proc_root.join(pid.to_string());
    write(&dir.join("stat"), stat_line(pid, comm, 'S', 1).as_bytes());
    write(
        &dir.join("status"),
        format!("Name:\t{comm}\nUid:\t1000\t1000\t1000\t1000\nThreads:\t1\n").as_bytes(),
    );
    write(&dir.join("cmdline"), format!("{comm}\0--flag\0").as_bytes());
    write(&dir.join("maps"), maps.as_bytes());
    fs::create_dir_all(dir.join("fd")).unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    proc_root: std::path::PathBuf,
    shm: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let proc_root = tmp.path().join("proc");
    let shm = tmp.path().join("shm");
    fs::create_dir_all(&shm).unwrap();
    write(&proc_root.join("stat"), b"cpu 1 2 3\nbtime 1700000000\n");
    write(&proc_root.join("sys/kernel/hostname"), b"fixture-host\n");
    write(&proc_root.join("sys/kernel/osrelease"), b"6.1.0-fixture\n");

    let mut sem = [0u8; 32];
    sem[..8].copy_from_slice(&1u64.to_ne_bytes());
    write(&shm.join("sem.held"), &sem);
    write(&shm.join("sem.unheld"), &sem);
    write(&shm.join("sem.empty"), b"");
    write(&shm.join("sem.odd"), b"12345");
    write(&shm.join("sem.red\x1b[31mALERT"), &sem);
    write(&shm.join(OsStr::from_bytes(b"sem.bytes\xff\xfe")), &sem);
    write(&shm.join("psm_12345"), b"shared memory");
    fs::create_dir(shm.join("sem.dir")).unwrap();
    fs::create_dir(shm.join("joblib_memmapping_folder_1")).unwrap();
    let outside = tmp.path().join("outside-target");
    write(&outside, &sem);
    symlink(&outside, shm.join("sem.link")).unwrap();

    let held = fs::metadata(shm.join("sem.held")).unwrap();
    let (major, minor) = (libc::major(held.dev()), libc::minor(held.dev()));
    let maps = format!(
        "7f00-7f01 rw-s 00000000 {major:02x}:{minor:02x} {} {}/sem.Xy12Ab (deleted)\n\
         7f01-7f02 rw-p 00000000 00:00 0 \n",
        held.ino(),
        shm.display()
    );
    add_process(&proc_root, 100, "holder", &maps);
    // comm with ") (" in it.
    add_process(&proc_root, 101, "x) (y", "");
    // maps unreadable: a directory where a file should be.
    add_process(&proc_root, 102, "secret", "");
    fs::remove_file(proc_root.join("102/maps")).unwrap();
    fs::create_dir(proc_root.join("102/maps")).unwrap();
    // garbage stat.
    write(&proc_root.join("103/stat"), b"not a stat line");
    // vanished: the directory is there, its files are not.
    fs::create_dir_all(proc_root.join("104")).unwrap();
    // non-pid entries.
    fs::create_dir_all(proc_root.join("sys/fs")).unwrap();
    symlink("100", proc_root.join("self")).unwrap();
    Fixture {
        _tmp: tmp,
        proc_root,
        shm,
        outside,
    }
}

fn args<'a>(fx: &'a Fixture, format: &'a str) -> Vec<&'a str> {
    vec![
        "scan",
        "--format",
        format,
        "--sample-window",
        "0s",
        "--proc-root",
        fx.proc_root.to_str().unwrap(),
        "--shm-dir",
        fx.shm.to_str().unwrap(),
        "--allow-non-tmpfs",
    ]
}

#[test]
fn odd_entries_are_reported_or_skipped_with_a_reason() {
    let fx = fixture();
    let out = semleak(&args(&fx, "json"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");

    let vis = &report["visibility"];
    assert_eq!(vis["complete"], false);
    assert_eq!(vis["processes_total"], 4, "104 vanished; 100-103 seen");
    assert_eq!(vis["processes_inspected"], 2);
    let skipped = vis["skipped"].to_string();
    assert!(skipped.contains("/102/maps"), "{skipped}");
    assert!(skipped.contains("malformed stat"), "{skipped}");
    let entries = vis["entries_skipped"].to_string();
    assert!(
        entries.contains("sem.link") && entries.contains("symlink (not followed)"),
        "{entries}"
    );
    assert!(
        entries.contains("sem.dir") && entries.contains("directory"),
        "{entries}"
    );

    let held = inventory_semaphore(&report, "held").unwrap();
    assert_eq!(held["holders"], serde_json::json!([100]));
    let odd = inventory_semaphore(&report, "odd").unwrap();
    assert_eq!(odd["value"], serde_json::Value::Null);
    let empty = inventory_semaphore(&report, "empty").unwrap();
    assert_eq!(empty["size"], 0);
    // Non-UTF-8 names keep their bytes in name_hex.
    let bytes = inventory_semaphore(&report, "bytes\\xff\\xfe").unwrap();
    assert_eq!(bytes["name_hex"], "6279746573fffe");

    let leaks = findings(&report, "leaked_semaphore");
    let confidence = |name: &str| {
        leaks
            .iter()
            .find(|f| f["resources"][0].as_str().unwrap().ends_with(name))
            .map(|f| f["confidence"].as_str().unwrap().to_string())
    };
    // Process 102 (uid 1000, maps unreadable) could hold any of them.
    assert_eq!(confidence("sem.unheld").as_deref(), Some("likely"));
    assert_eq!(confidence("sem.odd").as_deref(), Some("possible"));
    assert_eq!(confidence("sem.empty").as_deref(), Some("possible"));
    assert_eq!(confidence("sem.held"), None);
    assert_eq!(confidence("sem.link"), None, "symlinks are not semaphores");
    // The symlink's target was not touched or read as a semaphore.
    assert!(fx.outside.exists());
}

#[test]
fn terminal_output_escapes_control_characters() {
    let fx = fixture();
    let out = semleak(&args(&fx, "table"));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).expect("table output is UTF-8");
    assert!(!text.contains('\x1b'), "raw escape reached the terminal");
    assert!(text.contains("red\\x1b[31mALERT"), "{text}");
    assert!(text.contains("bytes\\xff\\xfe"), "{text}");
    assert!(text.starts_with("LEAKS:"), "verdict first: {text}");
}

#[test]
fn snapshot_round_trips_through_analyze() {
    let fx = fixture();
    let mut snap_args = vec!["snapshot"];
    snap_args.extend_from_slice(&args(&fx, "json")[3..]);
    let out = semleak(&snap_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = fx.shm.parent().unwrap().join("snap.json");
    fs::write(&file, &out.stdout).unwrap();

    let live = semleak(&args(&fx, "json"));
    let offline = semleak(&["analyze", file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(offline.status.code(), Some(1));
    let strip = |bytes: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        for k in ["started_at", "duration_ms", "command", "limits"] {
            v[k] = serde_json::Value::Null;
        }
        v
    };
    assert_eq!(strip(&live.stdout), strip(&offline.stdout));
}

#[test]
fn bad_arguments_and_files_exit_2_with_a_clear_message() {
    let out = semleak(&["scan", "--shm-dir", "/nonexistent/semleak-test"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/semleak-test"), "{err}");

    let out = semleak(&["scan", "--sample-window", "5parsecs"]);
    assert_eq!(out.status.code(), Some(2));

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.json");
    fs::write(&bad, "{\"not\": \"a snapshot\"}").unwrap();
    let out = semleak(&["analyze", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a semleak snapshot"));
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// `-o` replaces only a regular file or a missing name: a FIFO or a
/// symbolic link (say another user's, in /tmp) is refused and left as it
/// was, and so is the link's target.
#[test]
fn output_refuses_a_fifo_or_a_symlink_and_leaves_it_alone() {
    use std::os::unix::fs::FileTypeExt;
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    mkfifo(&fifo);
    let target = tmp.path().join("theirs");
    fs::write(&target, "not yours\n").unwrap();
    let link = tmp.path().join("link");
    symlink(&target, &link).unwrap();

    for (path, kind) in [(&fifo, "a FIFO"), (&link, "a symbolic link")] {
        let scan = {
            let mut a = args(&fx, "json");
            a.extend(["-o", path.to_str().unwrap()]);
            a
        };
        let snapshot = {
            let mut a = vec!["snapshot"];
            a.extend_from_slice(&args(&fx, "json")[3..]);
            a.extend(["-o", path.to_str().unwrap()]);
            a
        };
        for argv in [scan, snapshot] {
            let out = semleak(&argv);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{argv:?}: {err}");
            assert!(
                err.contains(&format!(
                    "semleak: error: refusing to replace {}: it is {kind}, not a regular file \
                     (write to a regular file, or omit -o to print to stdout)",
                    path.display()
                )),
                "{argv:?}: {err}"
            );
        }
    }
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_link(&link).unwrap(), target);
    assert_eq!(fs::read_to_string(&target).unwrap(), "not yours\n");
    // No temporary file left behind.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 3);

    // A regular file is still replaced.
    let mut a = args(&fx, "json");
    a.extend(["-o", target.to_str().unwrap()]);
    let out = semleak(&a);
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fs::read_to_string(&target).unwrap().starts_with('{'));
}

/// Run semleak with `args`, killing it (by its pid) if it has not exited
/// within `limit`: the output, or `None` when it had to be killed.
fn semleak_within(args: &[&str], limit: std::time::Duration) -> Option<std::process::Output> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(semleak_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run semleak");
    if wait_until(limit, || child.try_wait().is_ok_and(|s| s.is_some())) {
        return Some(child.wait_with_output().expect("semleak output"));
    }
    kill(child.id() as i32, libc::SIGKILL);
    let _ = child.wait();
    None
}

const PROMPTLY: std::time::Duration = std::time::Duration::from_secs(30);

#[test]
fn absurd_durations_are_usage_errors_not_panics() {
    let out = semleak_within(&["run", "--grace", "584542046090y", "--", "true"], PROMPTLY)
        .expect("exits promptly");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(
            "invalid value '584542046090y' for '--grace <DURATION>': too long (at most 1h)"
        ),
        "{err}"
    );

    for (flag, value) in [
        ("--kill-after", "584542046090y"),
        ("--interval", "584542046090y"),
        ("--sample-window", "584542046090y"),
    ] {
        let out =
            semleak_within(&["run", flag, value, "--", "true"], PROMPTLY).expect("exits promptly");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains("too long"), "{flag}: {err}");
    }

    let out = semleak_within(
        &["scan", "--sample-window", "18446744073709551615s"],
        PROMPTLY,
    )
    .expect("scan --sample-window 18446744073709551615s exits promptly");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--sample-window"), "{err}");
}

#[test]
fn endless_input_files_are_refused_promptly() {
    let out = semleak_within(&["analyze", "/dev/zero"], PROMPTLY)
        .expect("analyze /dev/zero exits promptly");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("larger than 64 MiB"),
        "{err}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("snap.json");
    let out = semleak(&[
        "snapshot",
        "--sample-window",
        "0s",
        "-o",
        snap.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = semleak_within(
        &["analyze", snap.to_str().unwrap(), "--baseline", "/dev/zero"],
        PROMPTLY,
    )
    .expect("--baseline /dev/zero exits promptly");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("larger than 16 MiB"),
        "{err}"
    );
}

/// A named pipe nobody writes to, given as a snapshot or a baseline: the
/// open does not wait for a writer (it used to block forever), and the
/// empty read is a clear error.
#[test]
fn a_fifo_with_no_writer_is_refused_promptly() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let out = semleak_within(&["analyze", fifo], PROMPTLY).expect("analyze FIFO exits promptly");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(fifo) && err.contains("is a FIFO"), "{err}");

    let snap = "tests/golden/odd_names.snapshot.json";
    let out = semleak_within(&["analyze", snap, "--baseline", fifo], PROMPTLY)
        .expect("--baseline FIFO exits promptly");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(fifo) && err.contains("is a FIFO"), "{err}");

    let out = semleak_within(&["analyze", "/dev/null"], PROMPTLY).expect("exits promptly");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a semleak snapshot"), "{err}");
}

/// A shell's process substitution is a pipe with a writer: still read.
#[test]
fn process_substitution_is_still_read() {
    let snap = "tests/golden/odd_names.snapshot.json";
    let script = format!(
        "exec '{}' analyze --format json <(cat {snap})",
        semleak_bin().display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert!(report["findings"].is_array(), "{report}");
}

/// `main` prints the error chain: an OS error is named once, not by both
/// a message and its source.
#[test]
fn a_missing_snapshot_names_the_os_error_once() {
    let out = semleak(&["analyze", "/nonexistent/semleak-snapshot.json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
