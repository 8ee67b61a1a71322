//! Shared by the integration tests: run the built binary, make unique
//! names, and own the processes a test starts (killed by pid on drop).
#![allow(dead_code)]

pub mod pyenv;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn semleak_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_semleak"))
}

pub fn semleak(args: &[&str]) -> Output {
    Command::new(semleak_bin())
        .args(args)
        .output()
        .expect("run semleak")
}

/// `semleak scan --format json` plus `extra`, parsed. Panics with stderr on
/// exit status 2.
pub fn scan_json(extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["scan", "--format", "json"];
    args.extend_from_slice(extra);
    let out = semleak(&args);
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(
        code,
        2,
        "semleak {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (code, v)
}

/// A name no other test (or test run) uses: `semleak-test-PID-N-TAG`.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "semleak-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn findings<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// A finding's `pids`.
pub fn pids_of(f: &Value) -> Vec<i32> {
    f["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap() as i32)
        .collect()
}

pub fn inventory_semaphore<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["inventory"]["semaphores"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

/// A process started by a test. Dropping it SIGKILLs and reaps it, and
/// SIGKILLs every extra pid registered with [`Spawned::also_kill`] — by pid,
/// never by name.
pub struct Spawned {
    pub child: Child,
    pub stdout: Option<BufReader<ChildStdout>>,
    extra: Vec<i32>,
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Read one line the helper printed (helpers print pids and "ready").
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .as_mut()
            .expect("stdout piped")
            .read_line(&mut line)
            .expect("read helper stdout");
        line.trim_end().to_string()
    }

    pub fn also_kill(&mut self, pid: i32) {
        self.extra.push(pid);
    }

    pub fn kill_now(&mut self) {
        kill(self.pid(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        for &pid in &self.extra {
            kill(pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn kill(pid: i32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill(2) with a positive pid the test itself started.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Run `python3 -c SCRIPT ARGS…` with stdout piped.
pub fn python(script: &str, args: &[&str]) -> Spawned {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 is needed for the integration tests");
    let stdout = child.stdout.take().map(BufReader::new);
    Spawned {
        child,
        stdout,
        extra: Vec::new(),
    }
}

/// Is `pid` still a live (non-zombie) process?
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Poll `cond` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Removes `/dev/shm/sem.NAME` on drop, for semaphores a test created.
pub struct SemGuard(pub String);

impl Drop for SemGuard {
    fn drop(&mut self) {
        assert!(self.0.starts_with("semleak-test-"));
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(format!("sem.{}", self.0)));
    }
}

/// Python snippet defining `sem_open(name)`, `sem_close(h)` and
/// `sem_unlink(name)` over glibc with ctypes.
pub const PY_SEM: &str = r#"
import ctypes, os, sys, time, signal
_libc = ctypes.CDLL(None, use_errno=True)
_libc.sem_open.restype = ctypes.c_void_p
_libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
_libc.sem_close.argtypes = [ctypes.c_void_p]
_libc.sem_unlink.argtypes = [ctypes.c_char_p]
def sem_open(name, create=True):
    h = _libc.sem_open(("/" + name).encode(), os.O_CREAT if create else 0, 0o600, 1)
    if h in (None, 0) or h == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), "sem_open " + name)
    return h
def sem_close(h):
    _libc.sem_close(h)
def sem_unlink(name):
    _libc.sem_unlink(("/" + name).encode())
"#;

/// Start `cmd` (stdout piped) as a [`Spawned`], killed by pid on drop.
pub fn spawn(mut cmd: Command) -> Spawned {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn");
    let stdout = child.stdout.take().map(BufReader::new);
    Spawned {
        child,
        stdout,
        extra: Vec::new(),
    }
}

/// Python for pool tests: with `sync` imported as the module whose
/// `SemLock` the pool uses (`multiprocessing.synchronize`, or loky's), it
/// records in `names` every semaphore created, and defines `init`, a pool
/// initializer after which a worker takes 30 s to drain on SIGTERM.
pub const PY_RECORD_SEMLOCKS_AND_DRAIN_SLOWLY: &str = r#"
import os, signal, time
names = []
_init = sync.SemLock.__init__
def _recording_init(self, *a, **k):
    _init(self, *a, **k)
    names.append(self._semlock.name.lstrip("/"))
sync.SemLock.__init__ = _recording_init

def _drain_slowly(*_):
    time.sleep(30)
    os._exit(0)

def init():
    signal.signal(signal.SIGTERM, _drain_slowly)
"#;
