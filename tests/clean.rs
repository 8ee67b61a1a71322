//! `semleak clean` against real semaphores, a private shared-memory
//! directory, and processes the tests start themselves.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

use semleak::analyze::{self, Confidence, Config, Finding, Kind, Severity};
use semleak::commands::clean::{self, CleanOptions, ExecEnv};
use semleak::platform::{self, CollectOptions, Snapshot};
use semleak::report::clean::{ActionKind, Plan, Status};

/// `semleak clean --format json ARGS…`, parsed; panics on exit status 2.
fn clean_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["clean", "--format", "json"];
    all.extend_from_slice(args);
    let out = semleak(&all);
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(
        code,
        2,
        "semleak {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (code, v)
}

fn actions_for<'a>(plan: &'a Value, target_suffix: &str) -> Vec<&'a Value> {
    plan["actions"]
        .as_array()
        .expect("actions array")
        .iter()
        .filter(|a| a["target"].as_str().unwrap_or("").ends_with(target_suffix))
        .collect()
}

fn private_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("semleak-test-clean-")
        .tempdir()
        .expect("tempdir")
}

/// A regular 32-byte file shaped like an unheld glibc semaphore (value 1).
fn fake_sem(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(format!("sem.{name}"));
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    fs::write(&p, bytes).unwrap();
    p
}

fn collect_private(dir: &Path) -> Snapshot {
    platform::collect(&CollectOptions {
        shm_dir: Some(dir.to_path_buf()),
        allow_non_tmpfs: true,
        sample_window: Duration::ZERO,
        ..CollectOptions::default()
    })
    .expect("collect")
}

fn env_for(dir: &Path, kill_after: Duration) -> ExecEnv {
    ExecEnv {
        shm_dir: dir.to_path_buf(),
        proc_root: PathBuf::from("/proc"),
        kill_after,
        allow_incomplete: true,
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

#[test]
fn dry_run_changes_nothing_then_yes_removes_only_what_is_eligible() {
    let dir = private_dir();
    let outside = private_dir();
    let d = dir.path().to_str().unwrap();
    let old = fake_sem(dir.path(), "mp-leaked01");
    // A `sem.*` symlink to a file outside the directory: never followed.
    let precious = fake_sem(outside.path(), "precious");
    std::os::unix::fs::symlink(&precious, dir.path().join("sem.mp-link0001")).unwrap();

    // --min-age is honoured: a fresh file is left alone.
    let (code, plan) = clean_json(&[
        "--shm-dir",
        d,
        "--allow-non-tmpfs",
        "--allow-incomplete",
        "--yes",
    ]);
    assert_eq!(code, 0, "{plan:#}");
    let a = actions_for(&plan, "sem.mp-leaked01");
    assert_eq!(a.len(), 1, "{plan:#}");
    assert_eq!(a[0]["status"], "skipped");
    assert!(
        a[0]["why"].as_str().unwrap().contains("--min-age 300s"),
        "{}",
        a[0]["why"]
    );
    assert!(old.exists());

    // Dry run: planned, nothing changed.
    let (code, plan) = clean_json(&[
        "--shm-dir",
        d,
        "--allow-non-tmpfs",
        "--allow-incomplete",
        "--min-age",
        "0s",
    ]);
    assert_eq!(code, 0);
    assert_eq!(plan["dry_run"], true);
    let a = actions_for(&plan, "sem.mp-leaked01");
    assert_eq!(a[0]["status"], "planned", "{plan:#}");
    assert_eq!(a[0]["action"], "unlink_semaphore");
    assert!(actions_for(&plan, "sem.mp-link0001").is_empty(), "{plan:#}");
    assert!(old.exists(), "a dry run must not remove anything");

    // --yes: the leaked file goes; the symlink and its target stay.
    let (code, plan) = clean_json(&[
        "--shm-dir",
        d,
        "--allow-non-tmpfs",
        "--allow-incomplete",
        "--min-age",
        "0s",
        "--yes",
    ]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(plan["dry_run"], false);
    let a = actions_for(&plan, "sem.mp-leaked01");
    assert_eq!(a[0]["status"], "done", "{plan:#}");
    assert!(!old.exists());
    assert!(fs::symlink_metadata(dir.path().join("sem.mp-link0001")).is_ok());
    assert_eq!(fs::read(&precious).unwrap().len(), 32);
}

#[test]
fn incomplete_visibility_is_respected_without_allow_incomplete() {
    let dir = private_dir();
    let d = dir.path().to_str().unwrap();
    let p = fake_sem(dir.path(), "mp-vis00001");
    let (code, plan) = clean_json(&[
        "--shm-dir",
        d,
        "--allow-non-tmpfs",
        "--min-age",
        "0s",
        "--yes",
    ]);
    assert_eq!(code, 0, "{plan:#}");
    let a = actions_for(&plan, "sem.mp-vis00001");
    if plan["visibility_complete"] == true {
        // Every process was inspected: a certain leak is cleaned.
        assert_eq!(a[0]["status"], "done", "{plan:#}");
        assert!(!p.exists());
    } else {
        assert_eq!(a[0]["status"], "skipped", "{plan:#}");
        assert!(a[0]["why"].as_str().unwrap().contains("--allow-incomplete"));
        assert!(p.exists());
    }
}

#[test]
fn real_semaphores_held_one_is_kept_unheld_one_is_removed() {
    let base = unique_name("clean");
    let held = format!("{base}-held");
    let free = format!("{base}-free");
    let _g1 = SemGuard(held.clone());
    let _g2 = SemGuard(free.clone());
    let script = format!(
        "{PY_SEM}\nh = sem_open(sys.argv[1])\nf = sem_open(sys.argv[2])\nsem_close(f)\nprint('ready', flush=True)\ntime.sleep(600)\n"
    );
    let mut creator = python(&script, &[&held, &free]);
    assert_eq!(creator.read_line(), "ready");
    let held_path = PathBuf::from(format!("/dev/shm/sem.{held}"));
    let free_path = PathBuf::from(format!("/dev/shm/sem.{free}"));
    assert!(held_path.exists() && free_path.exists());

    // The creator holds `held` through glibc's deleted temporary: only the
    // inode matches.
    let (_, report) = scan_json(&["--sample-window", "0s"]);
    let inv = inventory_semaphore(&report, &held).expect("held semaphore in inventory");
    assert_eq!(inv["holders"], serde_json::json!([creator.pid()]));
    assert_eq!(
        inv["inode"].as_u64().unwrap(),
        fs::metadata(&held_path).unwrap().ino()
    );

    let glob = format!("{base}-*");
    let (code, plan) = clean_json(&[
        "--name",
        &glob,
        "--min-age",
        "0s",
        "--allow-incomplete",
        "--yes",
    ]);
    assert_eq!(code, 0, "{plan:#}");
    let actions = plan["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "only our unheld semaphore: {plan:#}");
    assert_eq!(actions[0]["target"], free_path.to_str().unwrap());
    assert_eq!(actions[0]["status"], "done");
    assert!(!free_path.exists(), "the unheld semaphore is removed");
    assert!(held_path.exists(), "the held semaphore is kept");
    assert!(alive(creator.pid()));
}

#[test]
fn entry_swapped_between_plan_and_act_is_not_removed() {
    let dir = private_dir();
    let p = fake_sem(dir.path(), "mp-swapped1");
    let q = fake_sem(dir.path(), "mp-tolink01");
    let snap = collect_private(dir.path());
    let findings = analyze::analyze(&snap, &Config::default());
    let opts = CleanOptions {
        min_age: Duration::ZERO,
        allow_incomplete: true,
        invoking_uid: snap.host.collector_uid,
        ..CleanOptions::default()
    };
    let mut plan = clean::plan(&snap, &findings, &opts);
    let planned = |plan: &Plan, suffix: &str| {
        plan.actions
            .iter()
            .find(|a| a.target.ends_with(suffix))
            .map(|a| (a.status, a.outcome.join("; ")))
            .expect("action")
    };
    assert_eq!(planned(&plan, "sem.mp-swapped1").0, Status::Planned);
    assert_eq!(planned(&plan, "sem.mp-tolink01").0, Status::Planned);

    // Replace the first by another inode (the old one stays linked, so its
    // number cannot be reused), the second by a symlink.
    fs::hard_link(&p, dir.path().join("keep-old-inode")).unwrap();
    let replacement = dir.path().join("replacement");
    fs::write(&replacement, b"another file, 32 bytes long.....").unwrap();
    fs::rename(&replacement, &p).unwrap();
    fs::remove_file(&q).unwrap();
    std::os::unix::fs::symlink(dir.path().join("keep-old-inode"), &q).unwrap();

    clean::execute(&mut plan, &env_for(dir.path(), Duration::from_secs(1)));
    let (status, outcome) = planned(&plan, "sem.mp-swapped1");
    assert_eq!(status, Status::Refused, "{outcome}");
    assert!(outcome.contains("replaced"), "{outcome}");
    let (status, outcome) = planned(&plan, "sem.mp-tolink01");
    assert_eq!(status, Status::Refused, "{outcome}");
    assert!(outcome.contains("symlink"), "{outcome}");
    assert_eq!(fs::read(&p).unwrap(), b"another file, 32 bytes long.....");
    assert!(fs::symlink_metadata(&q).unwrap().file_type().is_symlink());
    assert!(dir.path().join("keep-old-inode").exists());
    assert_eq!(plan.exit_code(), 1);
}

#[test]
fn other_users_semaphores_need_all_users() {
    if euid() != 0 {
        eprintln!("needs root to chown a test file; checked by the planner's unit tests");
        return;
    }
    let dir = private_dir();
    let d = dir.path().to_str().unwrap();
    let p = fake_sem(dir.path(), "mp-theirs01");
    std::os::unix::fs::chown(&p, Some(4242), Some(4242)).unwrap();
    let args = [
        "--shm-dir",
        d,
        "--allow-non-tmpfs",
        "--min-age",
        "0s",
        "--allow-incomplete",
        "--yes",
    ];
    let (code, plan) = clean_json(&args);
    assert_eq!(code, 0);
    let a = actions_for(&plan, "sem.mp-theirs01");
    assert_eq!(a[0]["status"], "skipped", "{plan:#}");
    assert!(a[0]["why"].as_str().unwrap().contains("uid 4242"));
    assert!(p.exists());

    let mut all = args.to_vec();
    all.push("--all-users");
    let (code, plan) = clean_json(&all);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(plan["all_users"], true);
    assert!(plan["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("--all-users")));
    assert_eq!(actions_for(&plan, "sem.mp-theirs01")[0]["status"], "done");
    assert!(!p.exists());
}

/// A finding as the orphan rule reports it: the orphans in `pids` (certain:
/// only certain verdicts are terminated by `--orphans` alone).
fn orphan_finding(pids: &[i32]) -> Finding {
    let mut f = Finding::new(
        Kind::Orphan,
        b"test-workers",
        Severity::Error,
        Confidence::Certain,
    );
    f.pids = pids.to_vec();
    f
}

const PY_IGNORES_TERM: &str = r#"
import signal, time
signal.signal(signal.SIGTERM, lambda *a: print("TERM", flush=True))
print("ready", flush=True)
while True:
    time.sleep(0.05)
"#;

const PY_SLEEPER: &str = r#"
import time
print("ready", flush=True)
time.sleep(600)
"#;

#[test]
fn orphans_get_term_then_kill_and_nothing_else_is_touched() {
    let mut stubborn = python(PY_IGNORES_TERM, &[]);
    let mut polite = python(PY_SLEEPER, &[]);
    let mut reused = python(PY_SLEEPER, &[]);
    let mut bystander = python(PY_SLEEPER, &[]);
    for p in [&mut stubborn, &mut polite, &mut reused, &mut bystander] {
        assert_eq!(p.read_line(), "ready");
    }
    let dir = private_dir();
    let mut snap = collect_private(dir.path());
    // `reused` stands for a pid that now belongs to another process.
    snap.processes
        .iter_mut()
        .find(|p| p.pid == reused.pid())
        .expect("reused in snapshot")
        .start_ticks += 1;
    let findings = vec![orphan_finding(&[
        stubborn.pid(),
        polite.pid(),
        reused.pid(),
    ])];

    // Without --orphans nothing is planned.
    let opts = CleanOptions {
        invoking_uid: snap.host.collector_uid,
        ..CleanOptions::default()
    };
    let plan = clean::plan(&snap, &findings, &opts);
    assert_eq!(plan.summary.planned, 0);
    assert_eq!(plan.summary.skipped, 3);

    let opts = CleanOptions {
        orphans: true,
        ..opts
    };
    let mut plan = clean::plan(&snap, &findings, &opts);
    assert_eq!(plan.summary.planned, 3);
    assert!(plan
        .actions
        .iter()
        .all(|a| a.action == ActionKind::Terminate));
    let kill_after = Duration::from_secs(2);
    let started = Instant::now();
    clean::execute(&mut plan, &env_for(dir.path(), kill_after));
    let elapsed = started.elapsed();
    let outcome_of = |pid: i32| {
        let a = plan.actions.iter().find(|a| a.pids == [pid]).unwrap();
        (a.status, a.outcome.join("; "))
    };

    let (status, outcome) = outcome_of(stubborn.pid());
    assert_eq!(status, Status::Done, "{outcome}");
    assert!(
        outcome.contains("sent SIGTERM") && outcome.contains("SIGKILL"),
        "{outcome}"
    );
    assert_eq!(stubborn.read_line(), "TERM", "SIGTERM came first");
    assert_eq!(stubborn.child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(
        elapsed >= kill_after,
        "KILL only after the bound: {elapsed:?}"
    );

    let (status, outcome) = outcome_of(polite.pid());
    assert_eq!(status, Status::Done, "{outcome}");
    assert!(!outcome.contains("SIGKILL"), "{outcome}");
    assert_eq!(polite.child.wait().unwrap().signal(), Some(libc::SIGTERM));

    let (status, outcome) = outcome_of(reused.pid());
    assert_eq!(status, Status::Refused, "{outcome}");
    assert!(outcome.contains("another process"), "{outcome}");
    assert!(alive(reused.pid()), "a reused pid is never signalled");
    assert!(alive(bystander.pid()), "untargeted processes are untouched");
    assert_eq!(plan.exit_code(), 1);
}

const PY_ZOMBIE_PARENT: &str = r#"
import os, signal, time
pid = os.fork()
if pid == 0:
    os._exit(0)
def state():
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]
while state() != "Z":
    time.sleep(0.01)
def reap(*a):
    while True:
        try:
            p, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if p == 0:
            return
        print(f"reaped {p}", flush=True)
signal.signal(signal.SIGCHLD, reap)
print(pid, flush=True)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"#;

#[test]
fn zombie_parents_are_explained_or_nudged() {
    let mut parent = python(PY_ZOMBIE_PARENT, &[]);
    let zombie: i32 = parent.read_line().parse().expect("zombie pid");
    assert_eq!(parent.read_line(), "ready");
    let dir = private_dir();
    let snap = collect_private(dir.path());
    let mut f = Finding::new(
        Kind::Zombie,
        b"test-parent",
        Severity::Warning,
        Confidence::Certain,
    );
    f.pids = vec![zombie];
    f.parent_pid = Some(parent.pid());
    let findings = vec![f];

    let opts = CleanOptions {
        invoking_uid: snap.host.collector_uid,
        ..CleanOptions::default()
    };
    let plan = clean::plan(&snap, &findings, &opts);
    assert_eq!(plan.actions[0].action, ActionKind::Explain);
    assert!(plan.actions[0].why.contains("waitpid()"));

    let opts = CleanOptions {
        nudge_parents: true,
        ..opts
    };
    let mut plan = clean::plan(&snap, &findings, &opts);
    assert_eq!(plan.actions[0].action, ActionKind::NudgeParent);
    clean::execute(&mut plan, &env_for(dir.path(), Duration::from_secs(1)));
    assert_eq!(
        plan.actions[0].status,
        Status::Done,
        "{:?}",
        plan.actions[0]
    );
    assert_eq!(parent.read_line(), format!("reaped {zombie}"));
    assert!(alive(parent.pid()), "SIGCHLD does not hurt the parent");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["clean", "--kind", "nonsense"][..],
        &["clean", "--name", "a[b"],
        &["clean", "--min-age", "5"],
    ] {
        let out = semleak(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn table_output_says_dry_run() {
    let dir = private_dir();
    fake_sem(dir.path(), "mp-table001");
    let out = semleak(&[
        "clean",
        "--shm-dir",
        dir.path().to_str().unwrap(),
        "--allow-non-tmpfs",
        "--min-age",
        "0s",
        "--allow-incomplete",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Dry run: 1 action(s) planned"), "{text}");
    assert!(text.contains("sem.mp-table001"), "{text}");
    assert!(dir.path().join("sem.mp-table001").exists());
}

/// A spawn `ProcessPoolExecutor` whose workers take 30 s to drain on
/// SIGTERM; prints its resource tracker's pid, its workers' pids and its
/// semaphores' names, then its main process dies.
fn py_pool_then_die() -> String {
    [
        r#"
import multiprocessing as mp, multiprocessing.synchronize as sync, os, signal, sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import resource_tracker

"#,
        PY_RECORD_SEMLOCKS_AND_DRAIN_SLOWLY,
        r#"
def hang():
    time.sleep(600)

if __name__ == "__main__":
    ex = ProcessPoolExecutor(2, mp_context=mp.get_context("spawn"), initializer=init)
    assert list(ex.map(abs, [-1, -2, -3])) == [1, 2, 3]
    ex.submit(hang); ex.submit(hang)  # both workers busy when the main process dies
    time.sleep(0.5)
    print(resource_tracker._resource_tracker._pid, flush=True)
    print(" ".join(str(p) for p in ex._processes), flush=True)
    print(" ".join(names), flush=True)
    os._exit(0)
"#,
    ]
    .concat()
}

#[test]
fn orphaned_pool_workers_go_first_and_their_tracker_unlinks_before_exiting() {
    let dir = private_dir();
    let script = dir.path().join("pool.py");
    fs::write(&script, py_pool_then_die()).unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script);
    let mut parent = spawn(cmd);
    let tracker: i32 = parent.read_line().parse().expect("tracker pid");
    parent.also_kill(tracker);
    let workers: Vec<i32> = parent
        .read_line()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    for &w in &workers {
        parent.also_kill(w);
    }
    let names: Vec<String> = parent
        .read_line()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // The pool's own semaphores, named by the program: exactly those are
    // removed at the end whatever happens.
    struct CreatedByUs(Vec<String>);
    impl Drop for CreatedByUs {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = fs::remove_file(format!("/dev/shm/sem.{n}"));
            }
        }
    }
    let _cleanup = CreatedByUs(names.clone());
    assert!(
        !names.is_empty() && workers.len() == 2,
        "{names:?} {workers:?}"
    );
    parent.child.wait().unwrap();

    let snap = collect_private(dir.path());
    let mut pids = workers.clone();
    pids.push(tracker);
    let findings = vec![orphan_finding(&pids)];
    let opts = CleanOptions {
        invoking_uid: snap.host.collector_uid,
        orphans: true,
        ..CleanOptions::default()
    };
    let mut plan = clean::plan(&snap, &findings, &opts);
    assert_eq!(plan.summary.planned, 3, "{:#?}", plan.actions);
    clean::execute(&mut plan, &env_for(dir.path(), Duration::from_secs(1)));
    let tracker_action = plan.actions.iter().find(|a| a.pids == [tracker]).unwrap();
    let outcome = tracker_action.outcome.join("; ");
    assert_eq!(tracker_action.status, Status::Done, "{outcome}");
    assert!(outcome.contains("exited by itself"), "{outcome}");
    for w in &workers {
        let a = plan.actions.iter().find(|a| a.pids == [*w]).unwrap();
        assert!(a.outcome.join("; ").contains("SIGKILL"), "{:?}", a.outcome);
    }
    let left: Vec<&String> = names
        .iter()
        .filter(|n| Path::new(&format!("/dev/shm/sem.{n}")).exists())
        .collect();
    assert!(left.is_empty(), "semaphores stranded: {left:?}");
}

fn is_root() -> bool {
    euid() == 0
}

/// `unshare --pid --fork --mount-proc semleak ARGS…`: semleak in a nested
/// pid namespace with that namespace's own `/proc` (as in a container).
/// `None`, said loudly, where namespaces cannot be made here.
fn semleak_in_nested_pid_namespace(args: &[&str]) -> Option<std::process::Output> {
    let usable = is_root()
        && std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("SKIPPED: a nested pid namespace cannot be made here (needs root and unshare)");
        return None;
    }
    let out = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(semleak_bin())
        .args(args)
        .output()
        .expect("unshare semleak");
    Some(out)
}

#[test]
fn a_nested_pid_namespace_with_its_own_proc_never_removes_what_outsiders_hold() {
    let name = unique_name("nested-ns");
    let _guard = SemGuard(name.clone());
    let script = format!(
        "{PY_SEM}\nh = sem_open(sys.argv[1])\nprint('ready', flush=True)\ntime.sleep(600)\n"
    );
    let mut holder = python(&script, &[&name]);
    assert_eq!(holder.read_line(), "ready");
    let path = PathBuf::from(format!("/dev/shm/sem.{name}"));

    // Inside the namespace `NSpid` shows one pid and the holder is
    // invisible: only the namespace link tells semleak where it runs.
    let Some(out) =
        semleak_in_nested_pid_namespace(&["scan", "--format", "json", "--sample-window", "0s"])
    else {
        return;
    };
    let report: Value = serde_json::from_slice(&out.stdout).expect("scan JSON");
    let vis = &report["visibility"];
    assert_eq!(vis["complete"], false, "{vis}");
    assert!(vis.to_string().contains("nested pid namespace"), "{vis}");
    let leak = findings(&report, "leaked_semaphore")
        .into_iter()
        .find(|f| f["resources"].to_string().contains(&name))
        .expect("the held semaphore looks unheld from inside");
    assert_eq!(leak["confidence"], "likely", "{leak}");

    let out = semleak_in_nested_pid_namespace(&[
        "clean",
        "--format",
        "json",
        "--name",
        &name,
        "--min-age",
        "0s",
        "--yes",
    ])
    .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).expect("clean JSON");
    assert!(
        path.exists(),
        "a semaphore a process outside maps is kept: {plan:#}"
    );
    assert!(
        plan["notes"].to_string().contains("nested pid namespace"),
        "clean says why: {plan:#}"
    );
    for a in actions_for(&plan, &format!("sem.{name}")) {
        assert_ne!(a["status"], "done", "{a}");
    }
    assert!(alive(holder.pid()));
}

#[test]
fn a_thread_group_leader_that_exited_still_holds_through_its_threads() {
    let name = unique_name("leader-exited");
    let _guard = SemGuard(name.clone());
    // The main thread opens the semaphore, starts a thread that keeps
    // running, and calls pthread_exit: the process shows state Z and
    // empty maps while its thread still maps the semaphore.
    let script = format!(
        "{PY_SEM}\nimport threading\nh = sem_open(sys.argv[1])\n\
         def keep():\n    while True:\n        time.sleep(0.1)\n\
         threading.Thread(target=keep).start()\nprint('ready', flush=True)\n\
         _libc.pthread_exit(None)\n"
    );
    let mut proc_ = python(&script, &[&name]);
    assert_eq!(proc_.read_line(), "ready");
    let pid = proc_.pid();
    assert!(
        wait_until(Duration::from_secs(10), || {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        }),
        "the leader exits"
    );
    assert_eq!(
        fs::read(format!("/proc/{pid}/maps")).unwrap(),
        b"",
        "leader maps are empty"
    );

    let (_, report) = scan_json(&["--sample-window", "0s"]);
    let inv = inventory_semaphore(&report, &name).expect("listed");
    assert_eq!(inv["holders"], serde_json::json!([pid]), "{inv}");
    assert!(
        !report["findings"].to_string().contains(&name),
        "a held semaphore is no finding: {:#}",
        report["findings"]
    );
    assert!(
        findings(&report, "zombie")
            .iter()
            .all(|f| !pids_of(f).contains(&pid)),
        "a live process is not a zombie"
    );

    let path = PathBuf::from(format!("/dev/shm/sem.{name}"));
    let (_, plan) = clean_json(&[
        "--name",
        &name,
        "--min-age",
        "0s",
        "--allow-incomplete",
        "--yes",
    ]);
    assert!(path.exists(), "the held semaphore is kept: {plan:#}");

    // The unlink path's own re-check sees the holder too.
    let st = fs::metadata(&path).unwrap();
    let dir = semleak::platform::control::ShmDir::open(Path::new("/dev/shm")).unwrap();
    let refused = dir.unlink_semaphore(
        format!("sem.{name}").as_bytes(),
        semleak::platform::control::ExpectedFile {
            dev: st.dev(),
            inode: st.ino(),
        },
        Path::new("/proc"),
        semleak::platform::control::Unverifiable::Accept,
    );
    assert!(
        matches!(refused, Err(semleak::platform::control::UnlinkRefused::Held(ref p)) if p == &[pid]),
        "{refused:?}"
    );
    assert!(path.exists());
}

/// A private directory on a real shared-memory filesystem (a fresh
/// directory under `/dev/shm`, a tmpfs), so `--shm-dir` needs no
/// `--allow-non-tmpfs` and the proc-root checks apply. `None`, said loudly,
/// where `/dev/shm` is not writable.
fn private_shm_dir() -> Option<tempfile::TempDir> {
    match tempfile::Builder::new()
        .prefix("semleak-test-procroot-")
        .tempdir_in("/dev/shm")
    {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("SKIPPED: no private directory in /dev/shm ({e})");
            None
        }
    }
}

/// A process that maps `file` shared (as a semaphore's user does) until
/// killed; the returned [`Spawned`] kills it by pid on drop.
fn map_holder(file: &Path) -> Spawned {
    let mut holder = python(
        "import mmap, sys, time\nf = open(sys.argv[1], 'r+b')\nm = mmap.mmap(f.fileno(), 32)\n\
         print('ready', flush=True)\ntime.sleep(600)\n",
        &[file.to_str().unwrap()],
    );
    assert_eq!(holder.read_line(), "ready");
    holder
}

/// Scan and clean `--yes` through `proc_root` a private shared-memory
/// directory holding `sem.<tag>`, mapped by a live process: the verdict is
/// not certain, visibility is incomplete with the reason, and the file is
/// kept — also by the unlink path itself.
fn a_held_semaphore_survives_proc_root(proc_root: &Path, tag: &str) {
    let Some(dir) = private_shm_dir() else {
        return;
    };
    let d = dir.path().to_str().unwrap();
    let root = proc_root.to_str().unwrap();
    let held = fake_sem(dir.path(), tag);
    let holder = map_holder(&held);

    let (_, report) = scan_json(&["--sample-window", "0s", "--proc-root", root, "--shm-dir", d]);
    let vis = &report["visibility"];
    assert_eq!(vis["complete"], false, "{vis:#}");
    let notes = vis["notes"].to_string();
    assert!(
        notes.contains("--proc-root") && notes.contains("not a proc filesystem"),
        "{vis:#}"
    );
    let leak = findings(&report, "leaked_semaphore")
        .into_iter()
        .find(|f| f["resources"].to_string().contains(tag))
        .unwrap_or_else(|| panic!("the held file looks unheld through {root}: {report:#}"));
    assert_eq!(leak["confidence"], "likely", "{leak:#}");
    assert!(
        leak["evidence"].to_string().contains("--proc-root"),
        "{leak:#}"
    );

    let (_, plan) = clean_json(&[
        "--proc-root",
        root,
        "--shm-dir",
        d,
        "--min-age",
        "0s",
        "--yes",
    ]);
    assert!(held.exists(), "a mapped file was removed: {plan:#}");
    assert_eq!(plan["visibility_complete"], false, "{plan:#}");
    assert!(
        plan["notes"].to_string().contains("not a proc filesystem"),
        "clean says why: {plan:#}"
    );
    let a = actions_for(&plan, &format!("sem.{tag}"));
    assert_eq!(a.len(), 1, "{plan:#}");
    assert_eq!(a[0]["status"], "skipped", "{plan:#}");

    // The unlink path itself refuses, whatever a plan said.
    let st = fs::metadata(&held).unwrap();
    let shm = semleak::platform::control::ShmDir::open(dir.path()).unwrap();
    let refused = shm.unlink_semaphore(
        format!("sem.{tag}").as_bytes(),
        semleak::platform::control::ExpectedFile {
            dev: st.dev(),
            inode: st.ino(),
        },
        proc_root,
        semleak::platform::control::Unverifiable::Refuse,
    );
    assert!(
        matches!(
            refused,
            Err(semleak::platform::control::UnlinkRefused::ProcRootMismatch { .. })
        ),
        "{refused:?}"
    );
    assert!(held.exists());
    assert!(alive(holder.pid()));
}

/// An empty `--proc-root` lists no process: every held semaphore of the
/// real shared-memory directory would look unheld.
#[test]
fn an_empty_proc_root_proves_nothing_and_clean_keeps_held_files() {
    let empty = private_dir();
    a_held_semaphore_survives_proc_root(empty.path(), "mp-emptyproc");
}

/// A directory dressed up as /proc — pid 1 with a status, empty maps and a
/// mountinfo naming the shared-memory directory's device — is still not a
/// proc filesystem.
#[test]
#[cfg(target_os = "linux")]
fn a_fake_proc_tree_is_not_a_proc_filesystem() {
    let Some(probe) = private_shm_dir() else {
        return;
    };
    let dev = fs::metadata(probe.path()).unwrap().dev();
    let fake = private_dir();
    let one = fake.path().join("1");
    fs::create_dir_all(one.join("fd")).unwrap();
    fs::write(
        one.join("stat"),
        "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 1000 10 0\n",
    )
    .unwrap();
    fs::write(
        one.join("status"),
        "Name:\tinit\nUid:\t0\t0\t0\t0\nNSpid:\t1\n",
    )
    .unwrap();
    fs::write(one.join("cmdline"), "init\0").unwrap();
    fs::write(one.join("maps"), "").unwrap();
    fs::write(
        one.join("mountinfo"),
        format!(
            "25 1 {}:{} / /dev/shm rw - tmpfs tmpfs rw\n",
            libc::major(dev),
            libc::minor(dev)
        ),
    )
    .unwrap();
    drop(probe);
    a_held_semaphore_survives_proc_root(fake.path(), "mp-fakeproc");
    // `/tmp` itself, the mistake as typed.
    a_held_semaphore_survives_proc_root(Path::new("/tmp"), "mp-tmpproc");
}

/// Regression: the real /proc with a shared-memory directory of its mount
/// namespace keeps certain verdicts; an unheld file is cleaned, a held one
/// kept.
#[test]
fn the_real_proc_with_its_own_shm_still_cleans_what_is_unheld() {
    let Some(dir) = private_shm_dir() else {
        return;
    };
    let d = dir.path().to_str().unwrap();
    let held = fake_sem(dir.path(), "mp-realheld");
    let free = fake_sem(dir.path(), "mp-realfree");
    let holder = map_holder(&held);

    let (_, report) = scan_json(&["--sample-window", "0s", "--shm-dir", d]);
    let vis = &report["visibility"];
    assert!(
        !vis["notes"].to_string().contains("--proc-root"),
        "the real /proc sees this directory: {vis:#}"
    );
    let inv = inventory_semaphore(&report, "mp-realheld").expect("listed");
    assert_eq!(inv["holders"], serde_json::json!([holder.pid()]), "{inv}");
    let leak = findings(&report, "leaked_semaphore")
        .into_iter()
        .find(|f| f["resources"].to_string().contains("mp-realfree"))
        .expect("the unheld file is a leak");
    if vis["complete"] == true {
        assert_eq!(leak["confidence"], "certain", "{leak:#}");
    }

    // --allow-incomplete only for processes this host hides (pid 1 under a
    // sandbox): the proc root itself is accepted.
    let (code, plan) = clean_json(&[
        "--shm-dir",
        d,
        "--min-age",
        "0s",
        "--allow-incomplete",
        "--yes",
    ]);
    assert_eq!(code, 0, "{plan:#}");
    let a = actions_for(&plan, "sem.mp-realfree");
    assert_eq!(a[0]["status"], "done", "{plan:#}");
    assert!(!free.exists());
    assert!(held.exists());
    assert!(alive(holder.pid()));

    // Through the unlink path with nothing to forgive: not refused for the
    // proc root.
    let again = fake_sem(dir.path(), "mp-realagain");
    let st = fs::metadata(&again).unwrap();
    let shm = semleak::platform::control::ShmDir::open(dir.path()).unwrap();
    let r = shm.unlink_semaphore(
        b"sem.mp-realagain",
        semleak::platform::control::ExpectedFile {
            dev: st.dev(),
            inode: st.ino(),
        },
        Path::new("/proc"),
        semleak::platform::control::Unverifiable::Refuse,
    );
    assert!(
        !matches!(
            r,
            Err(semleak::platform::control::UnlinkRefused::ProcRootMismatch { .. })
        ),
        "{r:?}"
    );
}

/// A tmpfs mounted only in a private mount namespace (`unshare --mount`),
/// scanned through the host's `/proc`, whose pid 1 does not mount it: the
/// verdict is not certain and `clean --yes` keeps the file.
#[test]
#[cfg(target_os = "linux")]
fn a_tmpfs_the_proc_roots_mount_namespace_lacks_is_not_certain() {
    let usable = is_root()
        && std::process::Command::new("unshare")
            .args(["--mount", "true"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("SKIPPED: a mount namespace cannot be made here (needs root and unshare)");
        return;
    }
    let mnt = private_dir();
    let m = mnt.path().to_str().unwrap();
    let bin = semleak_bin();
    let bin = bin.to_str().unwrap();
    // 32 bytes shaped like an unheld glibc semaphore (value 1), an hour old.
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs none '{m}' || exit 3; \
         printf '\\001' > '{m}/sem.mp-mntns001'; truncate -s 32 '{m}/sem.mp-mntns001'; \
         touch -d '1 hour ago' '{m}/sem.mp-mntns001'; \
         '{bin}' scan --format json --sample-window 0s --shm-dir '{m}'; echo; \
         '{bin}' clean --format json --shm-dir '{m}' --min-age 0s --yes; echo; \
         test -e '{m}/sem.mp-mntns001' && echo kept"
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut docs = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let report = docs.next().expect("scan JSON").expect("scan JSON");
    let plan = docs.next().expect("clean JSON").expect("clean JSON");
    let vis = &report["visibility"];
    assert_eq!(vis["complete"], false, "{vis:#}");
    assert!(vis["notes"].to_string().contains("not mounted"), "{vis:#}");
    let leak = findings(&report, "leaked_semaphore")
        .into_iter()
        .find(|f| f["resources"].to_string().contains("mp-mntns001"))
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(leak["confidence"], "likely", "{leak:#}");
    let a = actions_for(&plan, "sem.mp-mntns001");
    assert_eq!(a[0]["status"], "skipped", "{plan:#}");
    assert!(
        text.trim_end().ends_with("kept"),
        "clean --yes removed it: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
