//! `semleak run -- CMD`: real commands through the built binary.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `semleak run --report FILE EXTRA… -- CMD…` in a scratch directory (so no
/// `.semleak.toml` above the checkout is picked up); returns the exit code,
/// the report and the output.
fn run_gate(dir: &Path, extra: &[&str], cmd: &[&str]) -> (i32, Value, Output) {
    let report = dir.join(format!("report-{}.json", unique_name("r")));
    let mut args: Vec<String> = vec![
        "run".into(),
        "--report".into(),
        report.display().to_string(),
        "--sample-window".into(),
        "0s".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    let out = Command::new(semleak_bin())
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run semleak");
    let code = out.status.code().unwrap_or(-1);
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); exit {code}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v: Value = serde_json::from_str(&text).expect("report is JSON");
    assert_eq!(v["command"], "run");
    assert_eq!(v["schema_version"], 1);
    (code, v, out)
}

fn sem_path(name: &str) -> String {
    format!("/dev/shm/sem.{name}")
}

fn leaked<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    findings(report, "leaked_semaphore").into_iter().find(|f| {
        f["resources"]
            .as_array()
            .is_some_and(|r| r.contains(&Value::from(sem_path(name))))
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Creates each semaphore named in argv[1:], holds them a moment (so the gate
/// sees who made them) and exits without unlinking them.
const PY_LEAK_SEMS: &str = r#"
for n in sys.argv[1:]:
    sem_open(n)
time.sleep(1.2)
os._exit(0)
"#;

#[test]
fn leaked_semaphore_and_stranded_workers_are_blamed_and_workers_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("gate-leak");
    let _guard = SemGuard(name.clone());
    let pidfile = dir.path().join("workers");
    let script = format!(
        "{PY_SEM}{}",
        r#"
import multiprocessing as mp
name, pidfile = sys.argv[1], sys.argv[2]
sem_open(name)
ctx = mp.get_context("spawn")
workers = [ctx.Process(target=time.sleep, args=(120,)) for _ in range(2)]
for w in workers:
    w.start()
with open(pidfile + ".tmp", "w") as f:
    f.write(" ".join(str(w.pid) for w in workers))
os.rename(pidfile + ".tmp", pidfile)
time.sleep(1.0)
os._exit(0)  # strands the workers and leaks the semaphore
"#
    );
    let (code, report, out) = run_gate(
        dir.path(),
        &["--grace", "500ms", "--kill-after", "3s"],
        &["python3", "-c", &script, &name, pidfile.to_str().unwrap()],
    );
    let workers: Vec<i32> = std::fs::read_to_string(&pidfile)
        .expect("the script wrote its worker pids")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    // Whatever the assertions say, no worker outlives the test.
    for &w in &workers {
        if alive(w) {
            kill(w, libc::SIGKILL);
        }
    }
    assert_eq!(code, 1, "stderr: {}", stderr(&out));
    assert_eq!(workers.len(), 2);
    for &w in &workers {
        assert!(!alive(w), "worker {w} still running after `run` returned");
    }
    let orphans = findings(&report, "orphan");
    for &w in &workers {
        let f = orphans
            .iter()
            .find(|f| f["pids"].as_array().unwrap().contains(&Value::from(w)))
            .unwrap_or_else(|| panic!("worker {w} not reported: {report:#}"));
        assert_eq!(f["severity"], "error");
        assert_eq!(f["confidence"], "certain");
        assert!(f["evidence"][0]
            .as_str()
            .unwrap()
            .contains("reparented to semleak"));
    }
    let sem = leaked(&report, &name).unwrap_or_else(|| panic!("semaphore not blamed: {report:#}"));
    assert_eq!(sem["severity"], "error");
    assert!(report["run"]["leftovers"].as_u64().unwrap() >= 2);
    assert!(stderr(&out).contains("left running by the command"));
    // The summary is about the run: no host-wide totals beside it.
    assert!(!stderr(&out).contains("\nSemaphores: "), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("\nShared memory "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn correct_pool_use_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import multiprocessing as mp
if __name__ == "__main__":
    with mp.get_context("spawn").Pool(2) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]
"#;
    let (code, report, out) = run_gate(dir.path(), &[], &["python3", "-c", script]);
    assert_eq!(code, 0, "stderr: {}", stderr(&out));
    assert!(findings(&report, "orphan").is_empty(), "{report:#}");
    // Other tests leak semaphores at the same time; one nobody in this
    // command's tree was seen holding is at most a "possible" warning.
    for f in report["findings"].as_array().unwrap() {
        assert_eq!(f["confidence"], "possible", "blamed: {f:#}");
        assert_eq!(f["severity"], "warning");
    }
    assert_eq!(report["run"]["leftovers"], 0);
    assert_eq!(report["run"]["exit_status"], 0);
}

#[test]
fn command_status_passes_through() {
    let dir = tempfile::tempdir().unwrap();
    let (code, report, _) = run_gate(dir.path(), &["--grace", "0s"], &["sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    assert_eq!(report["run"]["exit_status"], 7);
    let (code, report, _) = run_gate(
        dir.path(),
        &["--grace", "0s"],
        &["sh", "-c", "kill -TERM $$"],
    );
    assert_eq!(code, 128 + 15);
    assert_eq!(report["run"]["killed_by_signal"], 15);
    let out = semleak(&["run", "--", "/nonexistent/semleak-test-command"]);
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn semaphore_leaked_before_the_run_is_not_blamed() {
    let dir = tempfile::tempdir().unwrap();
    let old = unique_name("gate-old");
    let _guard = SemGuard(old.clone());
    let mut pre = python(&format!("{PY_SEM}{PY_LEAK_SEMS}"), &[&old]);
    assert!(pre.child.wait().unwrap().success());
    assert!(Path::new(&sem_path(&old)).exists());
    // The command opens the old semaphore (a descendant maps it) and leaves it.
    let script = format!(
        "{PY_SEM}\nh = sem_open(sys.argv[1], create=False)\ntime.sleep(1.2)\nsem_close(h)\n"
    );
    let (code, report, out) = run_gate(dir.path(), &[], &["python3", "-c", &script, &old]);
    assert_eq!(code, 0, "stderr: {}", stderr(&out));
    assert!(leaked(&report, &old).is_none(), "{report:#}");
    assert!(
        inventory_semaphore(&report, &old).is_some(),
        "the gate saw it, and still did not blame it"
    );
}

#[test]
fn sigint_to_semleak_reaches_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let ready = dir.path().join("ready");
    let script = r#"
import os, signal, sys, time
marker, ready = sys.argv[1], sys.argv[2]
def on_int(sig, frame):
    with open(marker, "w") as f:
        f.write("SIGINT")
    sys.exit(0)
signal.signal(signal.SIGINT, on_int)
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
time.sleep(120)
sys.exit(3)
"#;
    let mut cmd = Command::new(semleak_bin());
    cmd.args(["run", "--grace", "0s", "--sample-window", "0s", "--"])
        .args(["python3", "-c", script])
        .arg(&marker)
        .arg(&ready)
        .current_dir(dir.path())
        .stdin(Stdio::null());
    let mut gate = spawn(cmd);
    assert!(
        wait_until(Duration::from_secs(60), || ready.exists()),
        "the command never started"
    );
    let cmd_pid: i32 = std::fs::read_to_string(&ready).unwrap().parse().unwrap();
    gate.also_kill(cmd_pid);
    kill(gate.pid(), libc::SIGINT);
    let mut status = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            status = gate.child.try_wait().unwrap();
            status.is_some()
        }),
        "semleak did not finish after SIGINT"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "SIGINT");
    assert_eq!(status.unwrap().code(), Some(0));
}

#[test]
fn baseline_and_allowlist_suppress_exactly_what_they_name_in_run() {
    let dir = tempfile::tempdir().unwrap();
    let base = unique_name("gate-base");
    let allowed = unique_name("gate-allowed");
    let fresh = unique_name("gate-fresh");
    let _g: Vec<SemGuard> = [&base, &allowed, &fresh]
        .iter()
        .map(|n| SemGuard(n.to_string()))
        .collect();
    let script = format!("{PY_SEM}{PY_LEAK_SEMS}");
    let (code, first, out) = run_gate(
        dir.path(),
        &["--grace", "0s"],
        &["python3", "-c", &script, &base],
    );
    assert_eq!(code, 1, "stderr: {}", stderr(&out));
    assert!(leaked(&first, &base).is_some());
    let baseline = dir.path().join("baseline.json");
    std::fs::write(&baseline, first.to_string()).unwrap();
    std::fs::remove_file(sem_path(&base)).unwrap();

    let allow = dir.path().join("allow.toml");
    std::fs::write(
        &allow,
        format!(
            "[[allow]]\nkind = \"leaked_semaphore\"\nname = \"{allowed}\"\nreason = \"test\"\n"
        ),
    )
    .unwrap();
    let (code, report, out) = run_gate(
        dir.path(),
        &[
            "--grace",
            "0s",
            "--baseline",
            baseline.to_str().unwrap(),
            "--allow",
            allow.to_str().unwrap(),
        ],
        &["python3", "-c", &script, &base, &allowed, &fresh],
    );
    assert_eq!(code, 1, "stderr: {}", stderr(&out));
    assert!(leaked(&report, &base).is_none(), "baseline: {report:#}");
    assert!(leaked(&report, &allowed).is_none(), "allowlist: {report:#}");
    assert!(leaked(&report, &fresh).is_some(), "{report:#}");
    // The baseline is a whole report: it also names what other tests leaked
    // meanwhile, so at least ours was dropped.
    assert!(report["suppressed"]["baseline"].as_u64().unwrap() >= 1);
    assert_eq!(report["suppressed"]["allowlist"], 1);

    // Without `fresh`, the same run passes.
    for n in [&base, &allowed, &fresh] {
        let _ = std::fs::remove_file(sem_path(n));
    }
    let (code, _, out) = run_gate(
        dir.path(),
        &[
            "--grace",
            "0s",
            "--baseline",
            baseline.to_str().unwrap(),
            "--allow",
            allow.to_str().unwrap(),
        ],
        &["python3", "-c", &script, &base, &allowed],
    );
    assert_eq!(code, 0, "stderr: {}", stderr(&out));
}

#[test]
fn baseline_and_allowlist_suppress_exactly_what_they_name_in_scan() {
    let dir = tempfile::tempdir().unwrap();
    let base = unique_name("scan-base");
    let allowed = unique_name("scan-allowed");
    let fresh = unique_name("scan-fresh");
    let _g: Vec<SemGuard> = [&base, &allowed, &fresh]
        .iter()
        .map(|n| SemGuard(n.to_string()))
        .collect();
    let mut maker = python(
        &format!("{PY_SEM}\nfor n in sys.argv[1:]:\n    sem_open(n)\n"),
        &[&base, &allowed, &fresh],
    );
    assert!(maker.child.wait().unwrap().success());
    let (_, all) = scan_json(&["--sample-window", "0s"]);
    let base_finding = leaked(&all, &base).expect("scan sees the leak");
    let baseline = dir.path().join("baseline.json");
    std::fs::write(
        &baseline,
        serde_json::json!({ "findings": [{ "id": base_finding["id"] }] }).to_string(),
    )
    .unwrap();
    let allow = dir.path().join("allow.toml");
    std::fs::write(
        &allow,
        format!("[[allow]]\nname = \"sem.{allowed}\"\nreason = \"test\"\n"),
    )
    .unwrap();
    let (code, report) = scan_json(&[
        "--sample-window",
        "0s",
        "--baseline",
        baseline.to_str().unwrap(),
        "--allow",
        allow.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(leaked(&report, &base).is_none());
    assert!(leaked(&report, &allowed).is_none());
    assert!(leaked(&report, &fresh).is_some());
    assert_eq!(report["suppressed"]["baseline"], 1);
    assert!(report["suppressed"]["allowlist"].as_u64().unwrap() >= 1);

    // A reason is required: usage error.
    std::fs::write(&allow, "[[allow]]\nkind = \"zombie\"\n").unwrap();
    let out = semleak(&["scan", "--allow", allow.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("reason"), "{}", stderr(&out));
}

/// A CPython spawn-context program whose resource tracker is SIGKILLed
/// before it exits, so its multiprocessing semaphores (random `mp-` names,
/// new every run) leak; writes their names to argv[1].
const PY_MP_LEAK: &str = r#"
import multiprocessing as mp, os, signal, sys
from multiprocessing import resource_tracker
ctx = mp.get_context("spawn")
locks = [ctx.Lock() for _ in range(3)]
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(" ".join(l._semlock.name.lstrip("/") for l in locks))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
os.kill(resource_tracker._resource_tracker._pid, signal.SIGKILL)
os._exit(0)
"#;

#[test]
fn baseline_of_a_multiprocessing_leak_matches_the_next_runs_leak() {
    let dir = tempfile::tempdir().unwrap();
    // The random names are the ones our own program reported creating:
    // exactly those are removed at the end.
    struct CreatedByUs(Vec<String>);
    impl Drop for CreatedByUs {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = std::fs::remove_file(sem_path(n));
            }
        }
    }
    let mut guards = CreatedByUs(Vec::new());
    let mut leak = |tag: &str, extra: &[&str]| -> (Vec<String>, Value) {
        let names_file = dir.path().join(tag);
        let (_, report, out) = run_gate(
            dir.path(),
            extra,
            &["python3", "-c", PY_MP_LEAK, names_file.to_str().unwrap()],
        );
        let names: Vec<String> = std::fs::read_to_string(&names_file)
            .unwrap_or_else(|e| panic!("no names ({e}); stderr: {}", stderr(&out)))
            .split_whitespace()
            .map(str::to_string)
            .collect();
        guards.0.extend(names.iter().cloned());
        (names, report)
    };
    let (first_names, first) = leak("first", &["--grace", "0s"]);
    assert_eq!(first_names.len(), 3);
    assert!(first_names.iter().all(|n| n.starts_with("mp-")));
    // One finding for the pool's semaphores, not one per random name.
    let ours: Vec<&Value> = findings(&first, "leaked_semaphore")
        .into_iter()
        .filter(|f| {
            f["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| first_names.iter().any(|n| *r == sem_path(n)))
        })
        .collect();
    assert_eq!(ours.len(), 1, "{first:#}");
    for n in &first_names {
        assert!(
            ours[0]["resources"]
                .as_array()
                .unwrap()
                .contains(&Value::from(sem_path(n))),
            "{n} missing: {first:#}"
        );
    }
    let baseline = dir.path().join("baseline.json");
    std::fs::write(&baseline, first.to_string()).unwrap();

    let (second_names, second) = leak(
        "second",
        &["--grace", "0s", "--baseline", baseline.to_str().unwrap()],
    );
    assert_eq!(second_names.len(), 3);
    assert!(
        second_names.iter().all(|n| !first_names.contains(n)),
        "the names are new each run"
    );
    for f in findings(&second, "leaked_semaphore") {
        for n in &second_names {
            assert!(
                !f["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::from(sem_path(n))),
                "the baseline did not match the same leak in the next run: {second:#}"
            );
        }
    }
    assert!(second["suppressed"]["baseline"].as_u64().unwrap() >= 1);
    drop(guards);
}

/// A `ProcessPoolExecutor` (spawn) whose main process dies while its
/// workers take 30 s to drain on SIGTERM; writes the names of the
/// semaphores it created to argv[1].
fn py_slow_draining_pool() -> String {
    [
        r#"
import multiprocessing as mp, multiprocessing.synchronize as sync, os, signal, sys, time
from concurrent.futures import ProcessPoolExecutor

"#,
        PY_RECORD_SEMLOCKS_AND_DRAIN_SLOWLY,
        r#"
if __name__ == "__main__":
    ex = ProcessPoolExecutor(2, mp_context=mp.get_context("spawn"), initializer=init)
    assert list(ex.map(abs, [-1, -2, -3])) == [1, 2, 3]
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(" ".join(names))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    os._exit(0)  # the main process dies; workers and the tracker are left
"#,
    ]
    .concat()
}

/// The same pool with loky (joblib's backend) and its own resource tracker.
fn py_slow_draining_loky() -> String {
    [
        r#"
import os, signal, sys, time
import loky.backend.synchronize as sync
from loky import get_reusable_executor

"#,
        PY_RECORD_SEMLOCKS_AND_DRAIN_SLOWLY,
        r#"
if __name__ == "__main__":
    ex = get_reusable_executor(max_workers=2, initializer=init)
    assert list(ex.map(abs, [-1, -2, -3])) == [1, 2, 3]
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(" ".join(names))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    os._exit(0)
"#,
    ]
    .concat()
}

/// Runs `script` under `semleak run` with workers that drain too slowly
/// for `--kill-after`, and checks that every semaphore the pool made was
/// unlinked by its resource tracker (which a KILL with the workers would
/// have prevented) and none is blamed.
fn tracker_outlives_its_workers(python: &str, script_text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pool.py");
    std::fs::write(&script, script_text).unwrap();
    let names_file = dir.path().join("names");
    // The pool's semaphores, named by the program itself: exactly those are
    // removed at the end whatever happens.
    struct CreatedByUs(std::path::PathBuf);
    impl Drop for CreatedByUs {
        fn drop(&mut self) {
            for n in std::fs::read_to_string(&self.0)
                .unwrap_or_default()
                .split_whitespace()
            {
                let _ = std::fs::remove_file(sem_path(n));
            }
        }
    }
    let _cleanup = CreatedByUs(names_file.clone());
    let (code, report, out) = run_gate(
        dir.path(),
        &["--grace", "0s", "--kill-after", "1s"],
        &[
            python,
            script.to_str().unwrap(),
            names_file.to_str().unwrap(),
        ],
    );
    let names: Vec<String> = std::fs::read_to_string(&names_file)
        .unwrap_or_else(|e| panic!("no names ({e}); stderr: {}", stderr(&out)))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(!names.is_empty(), "the pool made no semaphores?");
    let left: Vec<&String> = names
        .iter()
        .filter(|n| Path::new(&sem_path(n)).exists())
        .collect();
    assert!(
        left.is_empty(),
        "the resource tracker was killed before it unlinked {left:?}; stderr: {}",
        stderr(&out)
    );
    for n in &names {
        assert!(leaked(&report, n).is_none(), "{n} blamed: {report:#}");
    }
    // The workers were leftovers (and killed); the gate still fails.
    assert_eq!(code, 1, "stderr: {}", stderr(&out));
    assert!(
        report["run"]["leftovers"].as_u64().unwrap() >= 2,
        "{report:#}"
    );
}

#[test]
fn terminating_leftovers_never_kills_the_resource_tracker_before_it_unlinks() {
    tracker_outlives_its_workers("python3", &py_slow_draining_pool());
}

#[test]
fn terminating_loky_leftovers_never_kills_its_resource_tracker_first() {
    let Some(python) = common::pyenv::venv_python() else {
        return; // venv_python said why, loudly (and fails under CI)
    };
    tracker_outlives_its_workers(python.to_str().unwrap(), &py_slow_draining_loky());
}

/// Starts a daemon the classic way (double fork, a session of its own,
/// stdio on /dev/null) and exits; the daemon's pid goes to argv[1].
const PY_DAEMONIZE: &str = r#"
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        with open(sys.argv[1] + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        time.sleep(600)
    os._exit(0)
os.wait()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
"#;

#[test]
fn a_detached_daemon_is_reported_as_a_daemon_not_as_a_worker() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("daemon.pid");
    let (code, report, out) = run_gate(
        dir.path(),
        &["--grace", "0s", "--kill-after", "2s"],
        &["python3", "-c", PY_DAEMONIZE, pidfile.to_str().unwrap()],
    );
    let daemon: i32 = std::fs::read_to_string(&pidfile)
        .expect("the daemon wrote its pid")
        .parse()
        .unwrap();
    if alive(daemon) {
        kill(daemon, libc::SIGKILL);
    }
    assert_eq!(code, 1, "stderr: {}", stderr(&out));
    let f = findings(&report, "orphan")
        .into_iter()
        .find(|f| pids_of(f).contains(&daemon))
        .unwrap_or_else(|| panic!("daemon not reported: {report:#}"));
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains("daemon(s) started by the command"),
        "{summary}"
    );
    let rec = f["recommendation"].as_str().unwrap();
    assert!(!rec.contains("multiprocessing"), "{rec}");
    assert!(f["evidence"].to_string().contains("/dev/null"), "{f:#}");
}

#[test]
fn clean_removes_exactly_what_the_command_left() {
    let dir = tempfile::tempdir().unwrap();
    let old = unique_name("gate-clean-old");
    let left = unique_name("gate-clean-left");
    let _g: Vec<SemGuard> = [&old, &left]
        .iter()
        .map(|n| SemGuard(n.to_string()))
        .collect();
    let script = format!("{PY_SEM}{PY_LEAK_SEMS}");
    // One semaphore from before the run: never the command's.
    let status = Command::new("python3")
        .args(["-c", &script, &old])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(Path::new(&sem_path(&old)).exists());

    let (code, report, out) = run_gate(
        dir.path(),
        &["--grace", "0s", "--clean", "--allow-incomplete"],
        &["python3", "-c", &script, &left],
    );
    assert_eq!(code, 1, "still a leak: stderr: {}", stderr(&out));
    assert!(!Path::new(&sem_path(&left)).exists(), "{report:#}");
    assert!(Path::new(&sem_path(&old)).exists(), "not the command's");
    let removed = &report["run"]["clean"]["removed"];
    assert_eq!(removed, &serde_json::json!([sem_path(&left)]), "{report:#}");
    let f = leaked(&report, &left).expect("still reported");
    assert!(f["evidence"]
        .to_string()
        .contains("removed by `semleak run --clean`"));
    assert!(
        stderr(&out).contains("--clean removed 1 semaphore(s)"),
        "{}",
        stderr(&out)
    );
}
