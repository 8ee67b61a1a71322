//! Full and stalled wakeup channels, made for real: Python processes whose
//! `signal.set_wakeup_fd` channel is filled and never drained, a healthy
//! asyncio loop with a trio-style tiny-buffer socketpair that must not be
//! flagged, and verdicts on real event loops under load: a healthy, busy
//! trio loop flooded with signals beside CPU hogs is never flagged, while a
//! trio loop blocked in a C call and an asyncio loop blocked in
//! `time.sleep` are reported full, every time, with the loop thread's
//! inactivity as evidence.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// argv[1]: "pipe" or "socket"; argv[2]: "full" or "some" (a few bytes).
/// The channel becomes the process's signal wakeup fd; it is filled the way
/// a stuck loop's is (writes until EAGAIN), a couple of real signals are
/// sent at it, and then nothing reads it.
const PY_STUCK: &str = r#"
import os, signal, socket, sys, time
kind, amount = sys.argv[1], sys.argv[2]
if kind == "pipe":
    r, w = os.pipe()
    os.set_blocking(r, False); os.set_blocking(w, False)
    wfd = w
else:
    a, b = socket.socketpair()
    a.setblocking(False); b.setblocking(False)
    wfd = b.fileno()
signal.signal(signal.SIGUSR1, lambda *_: None)
signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
if amount == "full":
    try:
        while True:
            os.write(wfd, b"\0" * (4096 if kind == "pipe" else 1))
    except BlockingIOError:
        pass
    try:
        while True:
            os.write(wfd, b"\0")
    except BlockingIOError:
        pass
for _ in range(3):
    os.kill(os.getpid(), signal.SIGUSR1)
print(os.getpid(), flush=True)
print("ready", flush=True)
time.sleep(600)
"#;

/// A healthy asyncio loop. Its wakeup fd is a trio-style socketpair with
/// 1-byte buffers, filled to EAGAIN every 50 ms and drained by the loop.
const PY_HEALTHY: &str = r#"
import asyncio, os, signal, socket, time
async def main():
    loop = asyncio.get_running_loop()
    r, w = socket.socketpair()
    for s in (r, w):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        s.setblocking(False)
    signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
    def drain():
        try:
            while r.recv(4096):
                pass
        except BlockingIOError:
            pass
    loop.add_reader(r.fileno(), drain)
    def tick():
        try:
            while True:
                w.send(b"\0")
        except BlockingIOError:
            pass
        loop.call_later(0.05, tick)
    tick()
    print(os.getpid(), flush=True)
    print("ready", flush=True)
    await asyncio.sleep(600)
asyncio.run(main())
"#;

fn start(script: &str, args: &[&str]) -> (Spawned, i32) {
    let mut p = python(script, args);
    let pid: i32 = p.read_line().parse().expect("helper prints its pid");
    assert_eq!(p.read_line(), "ready");
    (p, pid)
}

fn wakeup_findings_for(report: &Value, pid: i32) -> Vec<&Value> {
    report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .filter(|f| {
            (f["kind"] == "full_wakeup_pipe" || f["kind"] == "stalled_wakeup_pipe")
                && f["pids"]
                    .as_array()
                    .is_some_and(|p| p.contains(&pid.into()))
        })
        .collect()
}

fn evidence(f: &Value) -> String {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn full_wakeup_socketpair_is_an_error() {
    let (_p, pid) = start(PY_STUCK, &["socket", "full"]);
    let (code, report) = scan_json(&[]);
    let found = wakeup_findings_for(&report, pid);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = found[0];
    assert_eq!(f["kind"], "full_wakeup_pipe");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["confidence"], "likely");
    assert_eq!(code, 1, "an error finding fails the scan");
    let res = f["resources"].as_array().unwrap();
    assert_eq!(res.len(), 2);
    assert!(res
        .iter()
        .all(|r| r.as_str().unwrap().starts_with("socket:[")));
    let ev = evidence(f);
    assert!(ev.contains("full, a write gets EAGAIN"), "{ev}");
    assert!(ev.contains("sending end, non-blocking"), "{ev}");
    assert!(ev.contains("read with sock_diag"), "{ev}");
}

#[test]
fn full_wakeup_pipe_is_an_error() {
    let (_p, pid) = start(PY_STUCK, &["pipe", "full"]);
    let (_, report) = scan_json(&[]);
    let found = wakeup_findings_for(&report, pid);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = found[0];
    assert_eq!(f["kind"], "full_wakeup_pipe");
    assert_eq!(f["severity"], "error");
    assert!(f["resources"][0].as_str().unwrap().starts_with("pipe:["));
    let ev = evidence(f);
    // Default pipe: 16 pages.
    assert!(ev.contains("65536 of 65536 bytes queued"), "{ev}");
    assert!(ev.contains("write end, non-blocking"), "{ev}");
}

#[test]
fn stalled_wakeup_pipe_is_a_warning() {
    let (_p, pid) = start(PY_STUCK, &["pipe", "some"]);
    let (_, report) = scan_json(&[]);
    let found = wakeup_findings_for(&report, pid);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["kind"], "stalled_wakeup_pipe");
    assert_eq!(found[0]["severity"], "warning");
    // Three SIGUSR1 wakeup bytes, never read.
    assert!(evidence(found[0]).contains("3 of 65536 bytes queued"));
}

#[test]
fn healthy_asyncio_loop_with_tiny_socketpair_is_not_flagged() {
    let (_p, pid) = start(PY_HEALTHY, &[]);
    let dir = tempfile::tempdir().unwrap();
    let snap_path = dir.path().join("snap.json");
    let out = semleak(&["snapshot", "-o", snap_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap: Value = serde_json::from_slice(&std::fs::read(&snap_path).unwrap()).unwrap();

    // The test can fail: the tiny socketpair was found and sampled (twice,
    // or four times when it held bytes at the first look),
    // and so was asyncio's own self-pipe socketpair.
    let channels: Vec<&Value> = snap["channels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pid"] == pid && c["kind"] == "socketpair")
        .collect();
    assert!(
        channels.iter().any(|c| c["samples"]
            .as_array()
            .is_some_and(|s| s.len() >= 2 && s[0]["capacity"].as_u64().unwrap() < 16_384)),
        "tiny socketpair not sampled: {channels:#?}"
    );
    assert!(channels.len() >= 2, "{channels:#?}");
    // The two samples are one window (300ms by default) apart, not more.
    for c in &channels {
        let s = c["samples"].as_array().unwrap();
        let gap = s[1]["at_ms"].as_u64().unwrap() - s[0]["at_ms"].as_u64().unwrap();
        assert!((300..300 + 1500).contains(&gap), "samples {gap} ms apart");
    }

    let out = semleak(&["analyze", snap_path.to_str().unwrap(), "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = wakeup_findings_for(&report, pid);
    assert!(found.is_empty(), "healthy loop flagged: {found:#?}");
}

#[test]
fn sampling_window_adds_only_the_window() {
    // A self-pipe guarantees there is something to sample. The host's own
    // scan time varies with its load, so the window's cost is measured
    // against a scan without sampling, back to back.
    let (_p, _pid) = start(PY_STUCK, &["pipe", "some"]);
    let begin = Instant::now();
    let (_, report) = scan_json(&["--sample-window", "0s"]);
    let without = begin.elapsed();
    assert!(report["duration_ms"].as_u64().is_some());
    let begin = Instant::now();
    let (_, report) = scan_json(&[]);
    let with = begin.elapsed();
    let duration_ms = report["duration_ms"].as_u64().unwrap();
    assert!(
        duration_ms >= 300,
        "the default 300ms window was not waited: {duration_ms} ms"
    );
    assert!(
        with < without + Duration::from_millis(300 + 2000),
        "scan took {with:?} with the 300ms window, {without:?} without"
    );
}

/// A healthy, busy trio loop that receives SIGUSR1 through
/// `trio.open_signal_receiver`: every signal writes to trio's 1-byte-buffer
/// wakeup socketpair, which the loop drains once per pass, and each batch
/// of signals costs it 10 ms of work, so the channel is refilled (full)
/// most of the time. A second task churns `trio.to_thread.run_sync`, whose
/// every completion also writes to that channel. SIGUSR2 makes it print
/// how many batches it took in.
const PY_TRIO_HEALTHY: &str = r#"
import os, signal, time, trio
def work():
    t = time.perf_counter()
    while time.perf_counter() - t < 0.01:
        pass
async def churn():
    while True:
        await trio.to_thread.run_sync(time.sleep, 0)
async def main():
    batches = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(churn)
        with trio.open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as sigs:
            print(os.getpid(), flush=True)
            print("ready", flush=True)
            async for sig in sigs:
                if sig == signal.SIGUSR2:
                    print(batches, flush=True)
                    nursery.cancel_scope.cancel()
                    return
                batches += 1
                work()
trio.run(main)
"#;

/// Sends SIGUSR1 to argv[1] at argv[2] signals a second until killed;
/// SIGTERM makes it print how many it sent and in how many seconds.
const PY_SIGNAL_SENDER: &str = r#"
import os, signal, sys, time
pid, rate = int(sys.argv[1]), int(sys.argv[2])
start = time.monotonic(); sent = 0
def report(*_):
    print(sent, time.monotonic() - start, flush=True)
    os._exit(0)
signal.signal(signal.SIGTERM, report)
print("ready", flush=True)
while True:
    due = int((time.monotonic() - start) * rate)
    while sent < due:
        os.kill(pid, signal.SIGUSR1)
        sent += 1
    time.sleep(0.001)
"#;

/// A trio loop whose only task blocks its thread in a C call no signal
/// ends: a default pthread mutex locked twice waits in futex forever.
const PY_TRIO_BLOCKED_IN_C: &str = r#"
import ctypes, os, signal, trio
# A job started in the background by a non-interactive shell inherits
# SIGINT ignored, and then neither Python nor trio handles it: as at a
# terminal, Ctrl-C must reach the loop.
signal.signal(signal.SIGINT, signal.default_int_handler)
libc = ctypes.CDLL(None)
async def main():
    mutex = ctypes.create_string_buffer(64)  # pthread_mutex_t: 40 or 48 bytes
    libc.pthread_mutex_init(mutex, None)
    libc.pthread_mutex_lock(mutex)
    print(os.getpid(), flush=True)
    print("ready", flush=True)
    libc.pthread_mutex_lock(mutex)
trio.run(main)
"#;

/// An asyncio loop that handles SIGINT through `add_signal_handler` (so
/// every SIGINT writes a byte to its self-pipe socketpair) and then blocks
/// its own thread in `time.sleep`; 16 threads named `subint-driver[N]`
/// (OS names set with prctl, as CPython 3.14 would) pile up beside it.
const PY_ASYNCIO_SLEEPING: &str = r#"
import asyncio, ctypes, os, signal, threading, time
libc = ctypes.CDLL(None)
def driver(n, started):
    libc.prctl(15, f"subint-driver[{n}]".encode(), 0, 0, 0)  # PR_SET_NAME
    started.release()
    time.sleep(600)
async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    started = threading.Semaphore(0)
    for n in range(16):
        threading.Thread(target=driver, args=(n, started), daemon=True).start()
    for _ in range(16):
        started.acquire()
    # Each SIGINT past a full channel makes CPython warn on stderr.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    print(os.getpid(), flush=True)
    print("ready", flush=True)
    time.sleep(600)
asyncio.run(main())
"#;

fn venv_spawn(python: &std::path::Path, script: &str, args: &[&str]) -> Spawned {
    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    spawn(cmd)
}

fn venv_start(python: &std::path::Path, script: &str) -> (Spawned, i32) {
    let mut p = venv_spawn(python, script, &[]);
    let pid: i32 = p.read_line().parse().expect("helper prints its pid");
    assert_eq!(p.read_line(), "ready");
    (p, pid)
}

/// The main thread of `pid` waits in the kernel (in a futex or a sleep).
fn blocked_in(pid: i32, what: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/wchan")).is_ok_and(|w| w.contains(what))
}

/// SIGINT pending for the process (ShdPnd bit 1) or its main thread.
fn sigint_pending(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            (k == "ShdPnd" || k == "SigPnd")
                && u64::from_str_radix(v.trim(), 16).is_ok_and(|m| m & 0b10 != 0)
        })
    })
}

/// Send `n` SIGINTs, each once the one before it was delivered: signals
/// still pending are merged by the kernel, and each delivered one writes
/// one wakeup byte.
fn send_sigints(pid: i32, n: usize) {
    for i in 0..n {
        kill(pid, libc::SIGINT);
        assert!(
            wait_until(Duration::from_secs(10), || !sigint_pending(pid)),
            "SIGINT {i} was not delivered"
        );
    }
}

/// A busy CPU hog the test owns (killed by pid on drop).
fn cpu_hog() -> Spawned {
    python("print('ready', flush=True)\nwhile True: pass", &[])
}

#[test]
fn healthy_trio_loop_at_5000_signals_a_second_beside_cpu_hogs_is_never_flagged() {
    let Some(py) = pyenv::venv_python() else {
        return;
    };
    let mut hogs: Vec<Spawned> = (0..3).map(|_| cpu_hog()).collect();
    for h in &mut hogs {
        assert_eq!(h.read_line(), "ready");
    }
    let (mut trio_loop, pid) = venv_start(&py, PY_TRIO_HEALTHY);
    let mut sender = venv_spawn(&py, PY_SIGNAL_SENDER, &[&pid.to_string(), "5000"]);
    assert_eq!(sender.read_line(), "ready");
    std::thread::sleep(Duration::from_millis(300));

    let dir = tempfile::tempdir().unwrap();
    let snap_path = dir.path().join("snap.json");
    let snap_arg = snap_path.to_str().unwrap();
    let (mut flagged, mut judged, mut two_sample_verdicts, mut levels_alone) =
        (Vec::new(), 0, 0, 0);
    for scan in 0..20 {
        // snapshot + analyze is scan in two steps, and shows the samples.
        let out = semleak(&["snapshot", "-o", snap_arg]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let snap: Value = serde_json::from_slice(&std::fs::read(&snap_path).unwrap()).unwrap();
        for ch in snap["channels"].as_array().unwrap() {
            if ch["pid"] != pid || ch["kind"] != "socketpair" {
                continue;
            }
            if ch["loop_thread"].as_array().is_some_and(|t| !t.is_empty()) {
                judged += 1;
            }
            // What a verdict from the first and last fill level alone
            // (the rule before this one) said: not shrunk, never empty.
            let s = ch["samples"].as_array().unwrap();
            let (a, b) = (&s[0], &s[s.len() - 1]);
            let level = |x: &Value| (x["queued"].as_u64().unwrap(), x["sender_wmem"].as_u64());
            let ((qa, wa), (qb, wb)) = (level(a), level(b));
            if s.len() >= 2
                && qa > 0
                && qb >= qa
                && !matches!((wa, wb), (Some(x), Some(y)) if y < x)
            {
                two_sample_verdicts += 1;
            }
            // What the fill levels of every look say without the loop
            // thread: never shrank, never empty.
            let never_shrank = s.windows(2).all(|w| {
                let ((q0, w0), (q1, w1)) = (level(&w[0]), level(&w[1]));
                q1 >= q0 && !matches!((w0, w1), (Some(x), Some(y)) if y < x)
            });
            if never_shrank && s.iter().all(|x| level(x).0 > 0) {
                levels_alone += 1;
            }
        }
        let out = semleak(&[
            "analyze",
            snap_arg,
            "--format",
            "json",
            "--fail-on",
            "never",
        ]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let found = wakeup_findings_for(&report, pid);
        if !found.is_empty() {
            let found: Vec<Value> = found.into_iter().cloned().collect();
            flagged.push((scan, found));
        }
    }
    kill(sender.pid(), libc::SIGTERM);
    let sent_line = sender.read_line();
    kill(pid, libc::SIGUSR2);
    let batches: u64 = trio_loop
        .read_line()
        .parse()
        .expect("trio prints its count");
    eprintln!(
        "healthy trio: sender {sent_line} (signals, seconds); loop took {batches} batches; \
         its channel was judged (had bytes queued) in {judged} samplings; the first and last \
         fill levels alone would have flagged it in {two_sample_verdicts}, the levels of all \
         looks in {levels_alone}"
    );
    assert!(
        flagged.is_empty(),
        "healthy trio loop flagged: {flagged:#?}"
    );

    // The load was real: ~5,000 signals a second reached a loop that kept
    // up, and its wakeup channel had bytes queued when semleak looked.
    let mut parts = sent_line.split_whitespace();
    let sent: f64 = parts.next().unwrap().parse().unwrap();
    let secs: f64 = parts.next().unwrap().parse().unwrap();
    assert!(sent / secs > 4000.0, "only {sent} signals in {secs} s");
    assert!(batches > 100, "the loop took in {batches} signal batches");
    assert!(
        judged > 0,
        "the trio channel never had bytes queued: nothing was tested"
    );
    assert!(
        two_sample_verdicts > 0,
        "the channel was never refilled between looks: the case a refill fakes was not tested"
    );
}

#[test]
fn trio_loop_blocked_in_a_c_call_is_reported_full_every_time() {
    let Some(py) = pyenv::venv_python() else {
        return;
    };
    let (_trio_loop, pid) = venv_start(&py, PY_TRIO_BLOCKED_IN_C);
    assert!(
        wait_until(Duration::from_secs(10), || blocked_in(pid, "futex")),
        "the loop thread never blocked in the mutex"
    );
    send_sigints(pid, 12);
    // Each signal interrupts the wait for a moment; on a loaded machine the
    // thread may not be back in it yet, and a thread that runs in the window
    // is (rightly) not judged.
    assert!(
        wait_until(Duration::from_secs(10), || blocked_in(pid, "futex")),
        "the loop thread never went back to the mutex"
    );

    let begin = Instant::now();
    for scan in 0..20 {
        let (_, report) = scan_json(&["--sample-window", "100ms", "--fail-on", "never"]);
        let found = wakeup_findings_for(&report, pid);
        assert_eq!(found.len(), 1, "scan {scan}: {found:#?}");
        let f = &found[0];
        assert_eq!(f["kind"], "full_wakeup_pipe", "scan {scan}: {f:#?}");
        assert_eq!(f["severity"], "error");
        assert_eq!(f["confidence"], "likely");
        let ev = evidence(f);
        assert!(ev.contains(&format!("its main thread (tid {pid})")), "{ev}");
        assert!(ev.contains("did not run once"), "{ev}");
        assert!(ev.contains("(4 looks)"), "{ev}");
        assert!(ev.contains("futex"), "{ev}");
    }
    eprintln!("20 scans of the blocked trio loop in {:?}", begin.elapsed());
}

#[test]
fn asyncio_loop_blocked_in_time_sleep_is_reported_full_and_linked_to_its_thread_pileup() {
    let Some(py) = pyenv::venv_python() else {
        return;
    };
    let (_loop, pid) = venv_start(&py, PY_ASYNCIO_SLEEPING);
    assert!(
        wait_until(Duration::from_secs(10), || blocked_in(pid, "nanosleep")),
        "the loop thread never slept"
    );
    send_sigints(pid, 400);
    assert!(alive(pid), "the SIGINTs ended the loop");
    assert!(
        wait_until(Duration::from_secs(10), || blocked_in(pid, "nanosleep")),
        "the loop thread never went back to sleep"
    );

    let (code, report) = scan_json(&["--sample-window", "100ms"]);
    assert_eq!(code, 1, "a full wakeup channel is an error");
    let found = wakeup_findings_for(&report, pid);
    assert_eq!(found.len(), 1, "{found:#?}");
    let wake = &found[0];
    assert_eq!(wake["kind"], "full_wakeup_pipe");
    let ev = evidence(wake);
    assert!(ev.contains("did not run once"), "{ev}");
    assert!(ev.contains("nanosleep"), "{ev}");
    assert!(ev.contains("catches SIGINT"), "{ev}");

    // The 16 named threads are a pile-up, and the two findings point at
    // each other.
    let piles: Vec<&Value> = findings(&report, "thread_pileup")
        .into_iter()
        .filter(|f| pids_of(f).contains(&pid))
        .collect();
    assert_eq!(piles.len(), 1, "{piles:#?}");
    let pile = piles[0];
    assert!(
        ev.contains(&format!(
            "likely cause: the same process has a thread pile-up ({})",
            pile["id"].as_str().unwrap()
        )),
        "{ev}"
    );
    assert!(
        evidence(pile).contains(&format!(
            "wakeup channel is not draining ({}); this pile-up is the likely cause",
            wake["id"].as_str().unwrap()
        )),
        "{pile:#?}"
    );
}
