//! Process-level leaks made for real: zombies, orphaned workers (with and
//! without a known signature), a double-forked daemon that must not be
//! flagged, and a pile of same-named threads. Every process a test starts
//! is killed by pid; findings are filtered by the test's own pids.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

/// `scan --format json` without the wakeup-channel sampling window, which
/// these rules do not need.
fn scan(extra: &[&str]) -> Value {
    let mut args = vec!["--sample-window", "0s"];
    args.extend_from_slice(extra);
    scan_json(&args).1
}

/// (state, ppid) from /proc/PID/stat.
fn stat_of(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn read_pids(helper: &mut Spawned, n: usize) -> Vec<i32> {
    (0..n)
        .map(|_| {
            let line = helper.read_line();
            line.parse()
                .unwrap_or_else(|_| panic!("helper printed {line:?}, expected a pid"))
        })
        .collect()
}

fn expect_ready(helper: &mut Spawned) {
    assert_eq!(helper.read_line(), "ready");
}

fn strings(f: &Value, key: &str) -> Vec<String> {
    f[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// SIGKILL the helper and wait until each of `pids` has been adopted.
fn kill_parent_and_wait_adoption(helper: &mut Spawned, pids: &[i32]) {
    let parent = helper.pid();
    helper.kill_now();
    assert!(
        wait_until(TIMEOUT, || pids
            .iter()
            .all(|&p| stat_of(p).is_some_and(|(_, ppid)| ppid != parent))),
        "children of {parent} were not reparented"
    );
}

const ZOMBIE_PARENT: &str = r#"
import subprocess, sys, time
# A dispatcher that starts workers in their own sessions and never waits.
kids = [subprocess.Popen(["/bin/true"], start_new_session=True) for _ in range(6)]
for k in kids:
    print(k.pid, flush=True)
print("ready", flush=True)
time.sleep(600)
"#;

#[test]
fn zombies_are_grouped_under_the_parent_that_does_not_wait() {
    let mut parent = python(ZOMBIE_PARENT, &[]);
    let zombies = read_pids(&mut parent, 6);
    expect_ready(&mut parent);
    assert!(
        wait_until(TIMEOUT, || zombies
            .iter()
            .all(|&z| stat_of(z).is_some_and(|(s, _)| s == 'Z'))),
        "children did not become zombies"
    );

    let report = scan(&[]);
    let found: Vec<&Value> = findings(&report, "zombie")
        .into_iter()
        .filter(|f| f["parent_pid"] == parent.pid())
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    let f = found[0];
    let mut expected = zombies.clone();
    expected.sort_unstable();
    assert_eq!(pids_of(f), expected);
    assert_eq!(f["severity"], "warning", "6 zombies ≥ --zombie-warning 5");
    assert_eq!(f["confidence"], "certain");
    let evidence = strings(f, "evidence").join("\n");
    assert!(evidence.contains("6 × true"), "{evidence}");
    assert!(evidence.contains("zombie for at most"), "{evidence}");
    assert!(
        evidence.contains("neither catches nor ignores SIGCHLD"),
        "{evidence}"
    );
    assert!(
        evidence.contains("6 of them led their own session"),
        "{evidence}"
    );
    assert!(f["recommendation"]
        .as_str()
        .unwrap()
        .contains("waitpid(-1, WNOHANG)"));
    let cleanup = strings(f, "cleanup");
    // SIGCHLD at its default: a nudge cannot help, so none is suggested.
    assert!(cleanup.iter().all(|l| !l.contains("-CHLD")), "{cleanup:?}");
    // Ending the live parent is commented out: pasting the block whole
    // must not stop a running program.
    assert!(cleanup[0].starts_with(&format!("# kill -TERM {} ", parent.pid())));

    // The thresholds are flags.
    let report = scan(&["--zombie-error", "6"]);
    let f = findings(&report, "zombie")
        .into_iter()
        .find(|f| f["parent_pid"] == parent.pid())
        .expect("zombie finding");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["id"], found[0]["id"], "ids do not depend on counts");
}

const SPAWN_POOL: &str = r#"
import multiprocessing as mp, os, time
from multiprocessing import resource_tracker
os.setpgrp()  # a job of its own, as a shell would start it
ctx = mp.get_context("spawn")
workers = [ctx.Process(target=time.sleep, args=(600,)) for _ in range(3)]
for w in workers:
    w.start()
resource_tracker.ensure_running()
print(resource_tracker._resource_tracker._pid, flush=True)
for w in workers:
    print(w.pid, flush=True)
print("ready", flush=True)
time.sleep(600)
"#;

#[test]
fn spawn_workers_of_a_killed_parent_are_orphans() {
    let mut parent = python(SPAWN_POOL, &[]);
    let pids = read_pids(&mut parent, 4);
    for &p in &pids {
        parent.also_kill(p);
    }
    expect_ready(&mut parent);
    let (tracker, workers) = (pids[0], &pids[1..]);
    kill_parent_and_wait_adoption(&mut parent, &pids);

    let report = scan(&[]);
    let found: Vec<&Value> = findings(&report, "orphan")
        .into_iter()
        .filter(|f| pids_of(f).iter().any(|p| pids.contains(p)))
        .collect();
    assert_eq!(found.len(), 1, "one finding per lost parent: {report:#}");
    let f = found[0];
    let mut expected = pids.clone();
    expected.sort_unstable();
    assert_eq!(pids_of(f), expected, "workers and tracker: {f:#}");
    assert_eq!(f["severity"], "error");
    // Certain when every process was inspected; here pid 1 cannot be.
    assert!(
        f["confidence"] == "certain" || f["confidence"] == "likely",
        "{f:#}"
    );
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains("3 × CPython multiprocessing spawn worker"),
        "{summary}"
    );
    assert!(
        summary.contains("1 × CPython multiprocessing resource tracker"),
        "{summary}"
    );
    let evidence = strings(f, "evidence").join("\n");
    for w in workers {
        // The parent sentinel: its writer died with the parent.
        assert!(
            evidence.contains(&format!("pid {w} (")),
            "{w} in {evidence}"
        );
    }
    assert!(
        evidence.contains("that no live process can write to"),
        "{evidence}"
    );
    assert!(!strings(f, "resources").is_empty());
    // The workers first, by pid (the group includes the tracker); the
    // tracker only if it does not exit by itself once they are gone.
    let mut by_pid: Vec<String> = workers.iter().map(|w| w.to_string()).collect();
    by_pid.sort_by_key(|p| p.parse::<i32>().unwrap());
    let cleanup = strings(f, "cleanup");
    assert_eq!(
        cleanup[0],
        format!("kill -TERM {}", by_pid.join(" ")),
        "{cleanup:?}"
    );
    assert_eq!(
        cleanup[1],
        format!("sleep 5; kill -KILL {}", by_pid.join(" "))
    );
    assert!(
        cleanup[2].starts_with(&format!(
            "sleep 5; kill -KILL {tracker}  # only if still running"
        )),
        "{cleanup:?}"
    );
    assert!(alive(tracker));
}

const FORKED_READER: &str = r#"
import os, time
os.setpgrp()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    time.sleep(600)  # holds the read end, waiting for work that never comes
    os._exit(0)
os.close(r)
print(pid, flush=True)
print("ready", flush=True)
time.sleep(600)
"#;

#[test]
fn forked_child_holding_a_dead_parents_pipe_is_an_orphan() {
    let mut parent = python(FORKED_READER, &[]);
    let child = read_pids(&mut parent, 1)[0];
    parent.also_kill(child);
    expect_ready(&mut parent);
    let pgrp = parent.pid();
    kill_parent_and_wait_adoption(&mut parent, &[child]);

    let report = scan(&[]);
    let found: Vec<&Value> = findings(&report, "orphan")
        .into_iter()
        .filter(|f| pids_of(f).contains(&child))
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    let f = found[0];
    assert_eq!(pids_of(f), vec![child]);
    assert_eq!(f["severity"], "warning", "no signature: {f:#}");
    let evidence = strings(f, "evidence").join("\n");
    assert!(
        evidence.contains(&format!("process-group leader pid {pgrp} is gone")),
        "{evidence}"
    );
    assert!(
        evidence.contains("holds the read end of pipe:["),
        "{evidence}"
    );
    assert!(strings(f, "resources")[0].starts_with("pipe:["));
    assert_eq!(strings(f, "cleanup")[0], format!("kill -TERM -- -{pgrp}"));
}

const FORKED_SOCKET_HOLDER: &str = r#"
import os, socket, time
os.setpgrp()
mine, childs = socket.socketpair()
pid = os.fork()
if pid == 0:
    mine.close()
    time.sleep(600)  # holds its end, waiting for a peer that is gone
    os._exit(0)
print(pid, flush=True)
print(os.fstat(childs.fileno()).st_ino, flush=True)
childs.close()
print("ready", flush=True)
time.sleep(600)
"#;

#[test]
fn forked_child_holding_a_dead_parents_socket_is_an_orphan() {
    let mut parent = python(FORKED_SOCKET_HOLDER, &[]);
    let child = read_pids(&mut parent, 1)[0];
    parent.also_kill(child);
    let inode: u64 = parent.read_line().parse().expect("socket inode");
    expect_ready(&mut parent);
    let pgrp = parent.pid();
    kill_parent_and_wait_adoption(&mut parent, &[child]);

    let report = scan(&[]);
    let found: Vec<&Value> = findings(&report, "orphan")
        .into_iter()
        .filter(|f| pids_of(f).contains(&child))
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    let f = found[0];
    assert_eq!(pids_of(f), vec![child]);
    assert_eq!(f["severity"], "warning", "no signature: {f:#}");
    // The kernel itself says the peer is closed: unreadable processes
    // (pid 1 here) cannot weaken that.
    assert_eq!(f["confidence"], "likely", "{f:#}");
    let evidence = strings(f, "evidence").join("\n");
    assert!(
        evidence.contains(&format!("holds unix socket:[{inode}] (fd ")),
        "{evidence}"
    );
    assert!(evidence.contains("whose peer was closed"), "{evidence}");
    assert!(
        evidence.contains(&format!("process-group leader pid {pgrp} is gone")),
        "{evidence}"
    );
    assert_eq!(strings(f, "resources"), vec![format!("socket:[{inode}]")]);
}

const DAEMON: &str = r#"
import os, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(w, b"%d\n" % os.getpid())
        os.close(w)
        time.sleep(600)
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
print(os.read(r, 64).decode().strip(), flush=True)
print("ready", flush=True)
time.sleep(600)
"#;

#[test]
fn double_forked_daemon_is_not_an_orphan_warning() {
    let mut launcher = python(DAEMON, &[]);
    let daemon = read_pids(&mut launcher, 1)[0];
    launcher.also_kill(daemon);
    expect_ready(&mut launcher);
    assert!(wait_until(TIMEOUT, || stat_of(daemon)
        .is_some_and(|(_, ppid)| ppid != launcher.pid())));
    // Its session and group leader (the intermediate) are gone and it was
    // adopted: exactly what an orphan looks like without further evidence.
    let stat = std::fs::read_to_string(format!("/proc/{daemon}/stat")).unwrap();
    let fields: Vec<i32> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_ascii_whitespace()
        .skip(1)
        .take(3)
        .map(|f| f.parse().unwrap())
        .collect();
    let (pgrp, session) = (fields[1], fields[2]);
    assert!(session != daemon && pgrp != daemon, "{stat}");
    assert!(!alive(session) && !alive(pgrp), "{stat}");

    let report = scan(&[]);
    for f in report["findings"].as_array().unwrap() {
        if pids_of(f).contains(&daemon) {
            assert!(
                f["kind"] != "orphan" && f["severity"] == "info",
                "a daemon is not an orphaned worker: {f:#}"
            );
        }
    }
}

const THREADS: &str = r#"
import ctypes, threading, time
libc = ctypes.CDLL(None)
named = threading.Semaphore(0)
def run(i):
    # Python 3.11 does not name OS threads itself: PR_SET_NAME (15).
    libc.prctl(15, b"semleak-pile[%d]" % i, 0, 0, 0)
    named.release()
    time.sleep(600)
for i in range(20):
    threading.Thread(target=run, args=(i,), daemon=True).start()
for _ in range(20):
    named.acquire()
print("ready", flush=True)
time.sleep(600)
"#;

#[test]
fn twenty_same_named_threads_are_a_pileup() {
    let mut helper = python(THREADS, &[]);
    expect_ready(&mut helper);
    let pid = helper.pid();

    let report = scan(&[]);
    let found: Vec<&Value> = findings(&report, "thread_pileup")
        .into_iter()
        .filter(|f| pids_of(f) == vec![pid])
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    let f = found[0];
    assert_eq!(f["severity"], "warning");
    let summary = f["summary"].as_str().unwrap();
    // `semleak-pile[12]` is cut to 15 bytes: both forms are one pattern.
    assert!(
        summary.contains("20 threads named semleak-pile[*"),
        "{summary}"
    );
    assert!(strings(f, "evidence")[0].starts_with("20 of its 21 threads"));

    // Below the threshold flag: nothing.
    let report = scan(&["--thread-pileup", "21"]);
    assert!(!findings(&report, "thread_pileup")
        .iter()
        .any(|f| pids_of(f).contains(&pid)));
}

/// A forked worker that listens on a TCP port and waits on a pipe from its
/// parent (as an orphaned gRPC server in a worker does); prints its pid and
/// port.
const FORKED_LISTENER: &str = r#"
import os, socket, time
os.setpgrp()
r, w = os.pipe()
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
pid = os.fork()
if pid == 0:
    os.close(w)
    time.sleep(600)
    os._exit(0)
os.close(r)
print(pid, flush=True)
print(s.getsockname()[1], flush=True)
print("ready", flush=True)
time.sleep(600)
"#;

#[test]
fn an_orphan_still_listening_names_its_port() {
    let mut parent = python(FORKED_LISTENER, &[]);
    let child = read_pids(&mut parent, 1)[0];
    parent.also_kill(child);
    let port: u16 = parent.read_line().parse().expect("port");
    expect_ready(&mut parent);
    kill_parent_and_wait_adoption(&mut parent, &[child]);

    let report = scan(&[]);
    let f = findings(&report, "orphan")
        .into_iter()
        .find(|f| pids_of(f).contains(&child))
        .unwrap_or_else(|| panic!("orphan not reported: {report:#}"));
    let evidence = strings(f, "evidence").join("\n");
    assert!(
        evidence.contains(&format!(
            "pid {child} is still listening on tcp 127.0.0.1:{port}"
        )),
        "{evidence}"
    );
}
