//! Collection on fixture /proc trees: what the kernel says about kernel
//! threads, hard-linked semaphore names and nested pid namespaces reaches
//! the report.
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A `/proc/PID` with the given stat flags (field 9) and maps text.
fn add_process(root: &Path, pid: i32, ppid: i32, comm: &str, state: char, flags: u64, maps: &str) {
    let dir = root.join(pid.to_string());
    write(
        &dir.join("stat"),
        format!("{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 5000 1000 10 18446744073709551615\n").as_bytes(),
    );
    write(
        &dir.join("status"),
        format!("Name:\t{comm}\nUid:\t1000\t1000\t1000\t1000\nThreads:\t1\nSigCgt:\t0\nSigIgn:\t0\nNSpid:\t{pid}\n").as_bytes(),
    );
    if state != 'Z' {
        write(&dir.join("cmdline"), format!("{comm}\0").as_bytes());
        write(&dir.join("maps"), maps.as_bytes());
        fs::create_dir_all(dir.join("fd")).unwrap();
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    proc_root: PathBuf,
    shm: PathBuf,
}

const USER_FLAGS: u64 = 4194560;
const KTHREAD_FLAGS: u64 = 69238880; // includes PF_KTHREAD 0x00200000

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let proc_root = tmp.path().join("proc");
    let shm = tmp.path().join("shm");
    fs::create_dir_all(&shm).unwrap();
    write(&proc_root.join("stat"), b"cpu 1 2 3\nbtime 1700000000\n");
    add_process(&proc_root, 1, 0, "tini", 'S', USER_FLAGS, "");
    fs::create_dir_all(proc_root.join("self")).unwrap();
    write(
        &proc_root.join("self/status"),
        b"Name:\tsemleak\nNSpid:\t1\n",
    );
    Fixture {
        _tmp: tmp,
        proc_root,
        shm,
    }
}

fn scan(fx: &Fixture) -> serde_json::Value {
    let out = semleak(&[
        "scan",
        "--format",
        "json",
        "--sample-window",
        "0s",
        "--proc-root",
        fx.proc_root.to_str().unwrap(),
        "--shm-dir",
        fx.shm.to_str().unwrap(),
        "--allow-non-tmpfs",
    ]);
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

fn semaphore_file() -> [u8; 32] {
    let mut sem = [0u8; 32];
    sem[..8].copy_from_slice(&1u64.to_ne_bytes());
    sem
}

fn maps_line(file: &Path) -> String {
    let md = fs::metadata(file).unwrap();
    format!(
        "7f00-7f01 rw-s 00000000 {:02x}:{:02x} {} {}\n",
        libc::major(md.dev()),
        libc::minor(md.dev()),
        md.ino(),
        file.display()
    )
}

#[test]
fn zombies_under_a_containers_pid_2_are_reported_and_kernel_threads_are_not() {
    let fx = fixture();
    // Inside a container pid 2 is whatever the entrypoint started.
    add_process(&fx.proc_root, 2, 1, "dispatcher", 'S', USER_FLAGS, "");
    for pid in 10..16 {
        add_process(&fx.proc_root, pid, 2, "worker", 'Z', USER_FLAGS, "");
    }
    // A real kernel thread (PF_KTHREAD) with an ordinary-looking parent.
    add_process(&fx.proc_root, 30, 1, "kworker/0:1", 'I', KTHREAD_FLAGS, "");
    let report = scan(&fx);
    let zombies = findings(&report, "zombie");
    assert_eq!(zombies.len(), 1, "{zombies:?}");
    assert_eq!(zombies[0]["parent_pid"], 2);
    assert_eq!(
        zombies[0]["pids"],
        serde_json::json!([10, 11, 12, 13, 14, 15])
    );
    let all = report["findings"].to_string();
    assert!(
        !all.contains("kworker"),
        "kernel threads are not user processes: {all}"
    );
}

#[test]
fn every_name_of_a_hard_linked_semaphore_gets_its_holders() {
    let fx = fixture();
    let a = fx.shm.join("sem.first-name");
    write(&a, &semaphore_file());
    fs::hard_link(&a, fx.shm.join("sem.second-name")).unwrap();
    add_process(
        &fx.proc_root,
        100,
        1,
        "holder",
        'S',
        USER_FLAGS,
        &maps_line(&a),
    );
    let report = scan(&fx);
    for name in ["first-name", "second-name"] {
        let sem = inventory_semaphore(&report, name).unwrap();
        assert_eq!(sem["holders"], serde_json::json!([100]), "{name}: {sem}");
    }
    assert!(
        findings(&report, "leaked_semaphore").is_empty(),
        "a mapped file is held under every name"
    );
}

#[test]
fn a_nested_pid_namespace_makes_visibility_incomplete_and_leaks_uncertain() {
    let fx = fixture();
    write(&fx.shm.join("sem.unheld"), &semaphore_file());
    add_process(&fx.proc_root, 100, 1, "app", 'S', USER_FLAGS, "");

    let report = scan(&fx);
    assert_eq!(
        report["visibility"]["complete"], true,
        "{}",
        report["visibility"]
    );
    assert_eq!(
        findings(&report, "leaked_semaphore")[0]["confidence"],
        "certain"
    );

    // Now semleak's own NSpid says it runs in a child pid namespace.
    write(
        &fx.proc_root.join("self/status"),
        b"Name:\tsemleak\nNSpid:\t48213\t7\n",
    );
    let report = scan(&fx);
    let vis = &report["visibility"];
    assert_eq!(vis["complete"], false, "{vis}");
    assert!(vis.to_string().contains("nested pid namespace"), "{vis}");
    let leak = &findings(&report, "leaked_semaphore")[0];
    assert_eq!(leak["confidence"], "likely", "{leak}");
}
