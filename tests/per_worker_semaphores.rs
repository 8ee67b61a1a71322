//! The first motivating incident, on Linux with real CPython
//! `multiprocessing` spawn workers: each worker keeps a spurious
//! `multiprocessing.Event()` (5 named semaphores) besides the one its
//! parent passed in. `semleak scan` must report the pattern as one
//! `per_worker_semaphores` finding naming every worker, counting only the
//! workers' own semaphores.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::*;

/// The executor: one Event per worker, passed in; every worker makes a
/// spurious Event of its own (at import of the task module, as in the
/// incident) and waits. The parent prints the workers' pids, then "ready";
/// on stdin EOF it stops and joins them (their semaphores are unlinked by
/// multiprocessing's own finalizers and resource tracker).
const EXECUTOR: &str = r#"
import multiprocessing as mp, os, sys

spurious = None

def work(passed, ready, stop):
    global spurious
    spurious = mp.Event()          # the spurious per-worker primitive
    ready.put(os.getpid())
    stop.wait()
    passed.set()

if __name__ == "__main__":
    mp.set_start_method("spawn")
    n = int(sys.argv[1])
    stop = mp.Event()
    ready = mp.Queue()
    passed = [mp.Event() for _ in range(n)]
    procs = [mp.Process(target=work, args=(passed[i], ready, stop)) for i in range(n)]
    for p in procs:
        p.start()
    pids = sorted(ready.get(timeout=60) for _ in range(n))
    print(" ".join(map(str, pids)), flush=True)
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    for p in procs:
        p.join(30)
"#;

struct Pool {
    executor: Spawned,
    workers: Vec<i32>,
    _dir: tempfile::TempDir,
}

impl Pool {
    /// Run `script` with `workers` workers. Spawn workers re-import the
    /// main module, so it must be a file, not `python3 -c`.
    fn start(script: &str, workers: usize) -> Pool {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("executor.py");
        std::fs::write(&path, script).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(&path)
            .arg(workers.to_string())
            .stdin(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut executor = spawn(cmd);
        let line = executor.read_line();
        let pids: Vec<i32> = line
            .split_whitespace()
            .map(|p| p.parse().unwrap_or_else(|_| panic!("pids, got {line:?}")))
            .collect();
        for &pid in &pids {
            executor.also_kill(pid);
        }
        assert_eq!(executor.read_line(), "ready");
        assert_eq!(pids.len(), workers);
        Pool {
            executor,
            workers: pids,
            _dir: dir,
        }
    }

    /// Let the executor stop its workers and exit on its own.
    fn stop(mut self) {
        drop(self.executor.child.stdin.take());
        let pid = self.executor.pid();
        assert!(
            wait_until(Duration::from_secs(60), || !alive(pid)),
            "executor did not stop"
        );
    }
}

/// The `per_worker_semaphores` findings about these workers.
fn about<'a>(report: &'a Value, workers: &[i32]) -> Vec<&'a Value> {
    findings(report, "per_worker_semaphores")
        .into_iter()
        .filter(|f| {
            f["pids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| workers.contains(&(p.as_i64().unwrap() as i32)))
        })
        .collect()
}

#[test]
fn eight_spawn_workers_with_a_spurious_event_are_one_finding() {
    let pool = Pool::start(EXECUTOR, 8);
    let (_, report) = scan_json(&["--sample-window", "0s", "--fail-on", "never"]);
    let found = about(&report, &pool.workers);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = found[0];
    assert_eq!(pids_of(f), pool.workers, "every worker, and only them");
    assert_eq!(f["parent_pid"], pool.executor.pid());
    assert_eq!(f["severity"], "info", "40 is below the default of 100");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("8 workers (`python3")
            && summary.contains("-c from multiprocessing.spawn import spawn_main")
            && summary.contains("each hold 5 private semaphores, 40 in all; a per-worker primitive created in every child"),
        "{summary}"
    );
    assert_eq!(f["resources"].as_array().unwrap().len(), 40);
    let evidence = f["evidence"].to_string();
    // The passed-in Event (5), the shared stop Event (5) and the queue (3).
    assert!(
        evidence.contains("and 13 shared with other processes"),
        "{evidence}"
    );
    assert!(evidence.contains("CPython multiprocessing"), "{evidence}");
    assert!(f["recommendation"]
        .as_str()
        .unwrap()
        .contains("created when a module is imported"));
    pool.stop();
}

#[test]
fn twenty_four_workers_warn_about_their_own_semaphores_not_the_parents() {
    let pool = Pool::start(EXECUTOR, 24);
    let (_, report) = scan_json(&["--sample-window", "0s", "--fail-on", "never"]);
    let found = about(&report, &pool.workers);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = found[0];
    assert_eq!(f["severity"], "warning", "120 private semaphores ≥ 100");
    assert_eq!(pids_of(f), pool.workers);
    assert!(f["summary"].as_str().unwrap().contains("120 in all"));
    // Every resource is a semaphore one worker maps alone, never one the
    // parent passed in (those the parent maps too).
    let resources: BTreeSet<&str> = f["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(resources.len(), 120);
    let workers: BTreeSet<i64> = pool.workers.iter().map(|&p| i64::from(p)).collect();
    for sem in report["inventory"]["semaphores"].as_array().unwrap() {
        let path = sem["path"].as_str().unwrap();
        let holders: Vec<i64> = sem["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_i64().unwrap())
            .collect();
        if resources.contains(path) {
            assert!(
                holders.len() == 1 && workers.contains(&holders[0]),
                "{path} is held by {holders:?}"
            );
        }
        if holders.contains(&i64::from(pool.executor.pid())) {
            assert!(
                !resources.contains(path),
                "the parent's {path} is not the workers'"
            );
        }
    }
    // The parent's 120 passed-in semaphores are what the hoarding rule sees.
    let parent = pool.executor.pid();
    assert!(findings(&report, "semaphore_hoarding")
        .iter()
        .any(|h| h["pids"] == serde_json::json!([parent])));
    // The threshold is a flag.
    let (_, relaxed) = scan_json(&[
        "--sample-window",
        "0s",
        "--fail-on",
        "never",
        "--per-worker-semaphores",
        "500",
    ]);
    assert_eq!(about(&relaxed, &pool.workers)[0]["severity"], "info");
    pool.stop();
}

#[test]
fn workers_without_their_own_semaphores_are_not_reported() {
    // The same pool without the spurious Event: every semaphore a worker
    // maps is its parent's.
    let script = EXECUTOR.replace(
        "spurious = mp.Event()          # the spurious per-worker primitive",
        "pass",
    );
    let pool = Pool::start(&script, 6);
    let (_, report) = scan_json(&["--sample-window", "0s", "--fail-on", "never"]);
    assert!(about(&report, &pool.workers).is_empty());
    pool.stop();
}
