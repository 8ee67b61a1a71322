//! `semleak exporter`: started on 127.0.0.1 port 0, scraped with a real
//! HTTP client (Python urllib), parsed with the Python prometheus-client
//! OpenMetrics parser, stopped with SIGTERM. Linux: scans read `/proc`.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pyenv::venv_python;
use common::*;

/// Scrape URL twice and parse with the real parser: prints the value of
/// semleak_scan_duration_seconds of each scrape, the content type, and the
/// families' count.
const SCRAPE: &str = r#"
import sys, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
url = sys.argv[1]
durations = []
for _ in range(2):
    with urllib.request.urlopen(url, timeout=60) as r:
        assert r.status == 200, r.status
        ctype = r.headers["Content-Type"]
        text = r.read().decode("utf-8")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    durations.append(fams["semleak_scan_duration_seconds"].samples[0].value)
    errors = fams["semleak_scan_errors"].samples[0].value
    assert fams["semleak_build_info"].samples[0].value == 1
print(ctype)
print(durations[0] == durations[1])
print(errors)
try:
    urllib.request.urlopen(url.replace("/metrics", "/nope"), timeout=10)
    print("no error")
except urllib.error.HTTPError as e:
    print(e.code)
"#;

/// `semleak exporter --listen 127.0.0.1:0 ARGS…`, its stderr, and the URL it
/// says it serves (killed by pid if it says something else).
fn start_exporter<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
) -> (
    std::process::Child,
    BufReader<std::process::ChildStderr>,
    String,
) {
    let mut child = Command::new(semleak_bin())
        .args(["exporter", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the exporter");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let Some(url) = line.trim().strip_prefix("semleak exporter: serving ") else {
        kill(child.id() as i32, libc::SIGKILL);
        panic!("unexpected first line {line:?}");
    };
    let url = url.to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/metrics"),
        "{url}"
    );
    (child, stderr, url)
}

#[test]
fn exporter_serves_parsable_metrics_and_stops_on_sigterm() {
    let Some(python) = venv_python() else { return };
    let (mut child, mut stderr, url) = start_exporter(&["--min-interval", "1h"]);
    let pid = child.id() as i32;

    let out = Command::new(&python)
        .arg("-c")
        .arg(SCRAPE)
        .arg(&url)
        .output()
        .expect("run the scraper");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        kill(pid, libc::SIGKILL);
        panic!(
            "scrape failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("application/openmetrics-text"),
        "{text}"
    );
    assert_eq!(
        lines[1], "True",
        "the second scrape within --min-interval reuses the scan"
    );
    assert_eq!(lines[2].parse::<f64>().ok(), Some(0.0), "no scan failed");
    assert_eq!(lines[3], "404");

    kill(pid, libc::SIGTERM);
    let stopped = wait_until(Duration::from_secs(10), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !stopped {
        kill(pid, libc::SIGKILL);
        panic!("the exporter did not stop on SIGTERM");
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM: {status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
}

#[test]
fn exporter_refuses_an_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = semleak(&["exporter", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
}

/// Scrapes argv[1] once, waits for argv[2] to disappear, scrapes again;
/// prints each scrape's status and scan-error count.
const SCRAPE_AROUND_A_FAILURE: &str = r#"
import os, sys, time, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
def scrape():
    with urllib.request.urlopen(sys.argv[1], timeout=60) as r:
        fams = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
        return r.status, fams["semleak_scan_errors"].samples[0].value, fams["semleak_processes"].samples[0].value
print(*scrape())
open(sys.argv[2] + ".go", "w").close()
while os.path.exists(sys.argv[2]):
    time.sleep(0.01)
print(*scrape())
"#;

#[test]
fn a_failing_scan_counts_an_error_and_serves_the_last_good_metrics() {
    let Some(python) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let proc_root = dir.path().join("proc");
    let shm = dir.path().join("shm");
    std::fs::create_dir_all(&proc_root).unwrap();
    std::fs::create_dir_all(&shm).unwrap();
    let args = [
        "--min-interval".as_ref(),
        "0s".as_ref(),
        "--allow-non-tmpfs".as_ref(),
        "--sample-window".as_ref(),
        "0s".as_ref(),
        "--proc-root".as_ref(),
        proc_root.as_os_str(),
        "--shm-dir".as_ref(),
        shm.as_os_str(),
    ];
    let (mut child, _stderr, url) = start_exporter(&args);
    let pid = child.id() as i32;
    let scraper = Command::new(&python)
        .arg("-c")
        .arg(SCRAPE_AROUND_A_FAILURE)
        .arg(&url)
        .arg(&proc_root)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the scraper");
    // The scan's input disappears between the two scrapes.
    let go = dir.path().join("proc.go");
    assert!(
        wait_until(Duration::from_secs(30), || go.exists()),
        "first scrape"
    );
    std::fs::remove_dir_all(&proc_root).unwrap();
    let out = scraper.wait_with_output().unwrap();
    kill(pid, libc::SIGTERM);
    let _ = child.wait();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let first: Vec<f64> = lines[0].split(' ').map(|v| v.parse().unwrap()).collect();
    let second: Vec<f64> = lines[1].split(' ').map(|v| v.parse().unwrap()).collect();
    assert_eq!(first, [200.0, 0.0, 0.0], "{text}");
    assert_eq!(
        second,
        [200.0, 1.0, 0.0],
        "the last good data, one error: {text}"
    );
}

// Hostile clients. Each test starts its own exporter on an empty fixture
// tree (a scan takes milliseconds), attacks it with raw TCP, and kills only
// that exporter's pid. Every wait is bounded.

/// An exporter under attack: SIGKILLed by pid on drop unless it exited.
struct Target {
    child: std::process::Child,
    /// Kept open: the exporter's messages must not meet a closed pipe.
    _stderr: BufReader<std::process::ChildStderr>,
    addr: std::net::SocketAddr,
    _fixture: tempfile::TempDir,
}

impl Target {
    fn start() -> Self {
        Self::start_with(Command::new(semleak_bin()))
    }

    /// `cmd` runs `semleak`, or execs it (the pid stays the exporter's).
    fn start_with(mut cmd: Command) -> Self {
        let fixture = tempfile::tempdir().unwrap();
        for dir in ["proc", "shm"] {
            std::fs::create_dir(fixture.path().join(dir)).unwrap();
        }
        let mut child = cmd
            .args([
                "exporter",
                "--listen",
                "127.0.0.1:0",
                "--min-interval",
                "1h",
            ])
            .args(["--allow-non-tmpfs", "--sample-window", "0s"])
            .arg("--proc-root")
            .arg(fixture.path().join("proc"))
            .arg("--shm-dir")
            .arg(fixture.path().join("shm"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the exporter");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("semleak exporter: serving http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            kill(child.id() as i32, libc::SIGKILL);
            let _ = child.wait();
            panic!("unexpected first line {line:?}");
        };
        Self {
            child,
            _stderr: stderr,
            addr,
            _fixture: fixture,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `request` on a new connection and returns the status code of
    /// the answer, `None` if there is none within `timeout`.
    fn ask(&self, request: &[u8], timeout: Duration) -> Option<u16> {
        let mut conn = TcpStream::connect_timeout(&self.addr, timeout).ok()?;
        conn.set_read_timeout(Some(timeout)).unwrap();
        conn.set_write_timeout(Some(timeout)).unwrap();
        conn.write_all(request).ok()?;
        read_status(&mut conn)
    }

    fn scrape(&self, timeout: Duration) -> Option<u16> {
        self.ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", timeout)
    }

    /// Scrapes until one answers 200, for at most `within`.
    fn scrapes_ok_within(&self, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.scrape(Duration::from_secs(2)) == Some(200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// A line of /proc/PID/status, in its unit (`Threads:`, `VmRSS:` kB).
    fn status_field(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{field} in {status}"))
    }

    /// SIGTERM, then how long it took to exit 0 (panics past 5 s).
    fn sigterm(&mut self) -> Duration {
        let start = Instant::now();
        kill(self.pid(), libc::SIGTERM);
        let stopped = wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        let took = start.elapsed();
        assert!(stopped, "the exporter did not stop on SIGTERM");
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{status:?}");
        took
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.running() {
            kill(self.pid(), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The status code of an HTTP response read from `conn`.
fn read_status(conn: &mut TcpStream) -> Option<u16> {
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    // Up to the end of the status line is enough.
    while !answer.contains(&b'\n') {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&answer);
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn huge_content_lengths_are_refused_unread_and_it_keeps_serving() {
    let mut target = Target::start();
    assert_eq!(target.scrape(Duration::from_secs(10)), Some(200));
    // tiny_http allocated the announced body: `capacity overflow` panicked
    // (exit 101), the second aborted (exit 134).
    for length in ["18446744073709551615", "1099511627776"] {
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
        let status = target.ask(request.as_bytes(), Duration::from_secs(2));
        assert_eq!(status, Some(413), "Content-Length: {length}");
        assert!(target.running(), "Content-Length: {length} killed it");
        assert_eq!(
            target.scrape(Duration::from_secs(2)),
            Some(200),
            "after {length}"
        );
    }
    let chunked = b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(target.ask(chunked, Duration::from_secs(2)), Some(413));
    // Routes, methods and statuses as before.
    let ask = |req: &str| target.ask(req.as_bytes(), Duration::from_secs(2));
    assert_eq!(ask("HEAD /metrics HTTP/1.1\r\n\r\n"), Some(200));
    assert_eq!(ask("GET /?x HTTP/1.0\r\n\r\n"), Some(200));
    assert_eq!(ask("GET /nope HTTP/1.1\r\n\r\n"), Some(404));
    assert_eq!(ask("DELETE /metrics HTTP/1.1\r\n\r\n"), Some(405));
    assert_eq!(ask("GET /metrics HTTP/1.1\r\nbroken\r\n\r\n"), Some(400));
    assert!(target.sigterm() < Duration::from_secs(1));
}

#[test]
fn stalled_clients_do_not_hold_up_scrapes_or_sigterm() {
    let mut target = Target::start();
    assert_eq!(target.scrape(Duration::from_secs(10)), Some(200));
    // A body announced and never sent, half a request line, and nothing at
    // all: each used to hold the only serving thread.
    let mut stalled = Vec::new();
    for start in [
        &b"POST /metrics HTTP/1.1\r\nContent-Length: 2000\r\n\r\n"[..],
        b"GET /metr",
        b"",
    ] {
        let mut conn = TcpStream::connect(target.addr).unwrap();
        conn.write_all(start).unwrap();
        stalled.push(conn);
    }
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..3 {
        let start = Instant::now();
        assert_eq!(
            target.scrape(Duration::from_secs(2)),
            Some(200),
            "scrape {i}"
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }
    // The stalled connections are still open: SIGTERM does not wait for them.
    let took = target.sigterm();
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
    drop(stalled);
}

#[test]
fn a_slow_sender_is_cut_off_at_the_read_deadline() {
    let target = Target::start();
    let mut conn = TcpStream::connect(target.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    // One byte a second would have kept a tiny_http thread forever.
    let mut status = None;
    for b in b"GET /metrics HTTP/1.1\r\n".iter().cycle().take(20) {
        if conn.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(400));
        if start.elapsed() > Duration::from_secs(5) {
            status = read_status(&mut conn);
            break;
        }
    }
    let status = status.or_else(|| read_status(&mut conn));
    assert_eq!(status, Some(408));
    assert!(start.elapsed() < Duration::from_secs(9));
}

#[test]
fn a_pipelining_client_that_never_reads_blocks_nobody() {
    let mut target = Target::start();
    assert_eq!(target.scrape(Duration::from_secs(10)), Some(200));
    let pipelined = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    let mut greedy = TcpStream::connect(target.addr).unwrap();
    greedy
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Answered once and closed, so the writes may fail: that is the point.
    let _ = greedy.write_all(&pipelined);
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..3 {
        assert_eq!(
            target.scrape(Duration::from_secs(2)),
            Some(200),
            "scrape {i}"
        );
    }
    assert!(target.running());
    drop(greedy);
}

#[test]
fn idle_connections_are_capped_and_threads_stay_bounded() {
    let mut target = Target::start();
    assert_eq!(target.scrape(Duration::from_secs(10)), Some(200));
    let idle: Vec<TcpStream> = (0..250)
        .filter_map(|_| TcpStream::connect_timeout(&target.addr, Duration::from_secs(2)).ok())
        .collect();
    assert!(idle.len() >= 200, "{} connections", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    // 16 workers and the accepting thread; tiny_http had one per connection.
    let threads = target.status_field("Threads:");
    assert!(
        threads <= 20,
        "{threads} threads for {} connections",
        idle.len()
    );
    // Beyond the cap a connection is answered 503 at once, not queued.
    let mut refused = TcpStream::connect(target.addr).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(read_status(&mut refused), Some(503));
    // The idle connections holding workers reach their read deadline (3 s)
    // and scrapes are served again, the idle sockets still open.
    assert!(target.scrapes_ok_within(Duration::from_secs(8)));
    assert!(target.status_field("Threads:") <= 20);
    let took = target.sigterm();
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
    drop(idle);
}

#[test]
fn a_huge_header_is_refused_and_memory_stays_small() {
    let target = Target::start();
    assert_eq!(target.scrape(Duration::from_secs(10)), Some(200));
    let mut conn = TcpStream::connect(target.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut writer = conn.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sender = std::thread::spawn(move || {
        let mut request = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        request.resize(request.len() + (1 << 20), b'a');
        request.extend_from_slice(b"\r\n\r\n");
        // Refused after 8 KiB and closed, so this fails part way.
        let _ = writer.write_all(&request);
    });
    assert_eq!(read_status(&mut conn), Some(431));
    sender.join().unwrap();
    let rss_kib = target.status_field("VmRSS:");
    assert!(rss_kib < 64 * 1024, "VmRSS {rss_kib} kB");
    assert_eq!(target.scrape(Duration::from_secs(2)), Some(200));
}

/// A pids cgroup (v1 or v2) of our own with `pids.max` set, or `None` where
/// the test cannot make one (not root, no writable pids controller).
struct PidsCgroup(std::path::PathBuf);

impl PidsCgroup {
    fn new(max: u32) -> Option<Self> {
        let tag = format!("semleak-test-exporter-{}-{max}", std::process::id());
        ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
            .iter()
            .map(|root| std::path::Path::new(root).join(&tag))
            .find_map(|dir| {
                std::fs::create_dir(&dir).ok()?;
                let cg = Self(dir);
                std::fs::write(cg.0.join("pids.max"), max.to_string()).ok()?;
                Some(cg)
            })
    }

    /// `sh` moves itself into the cgroup and execs semleak, whose pid is
    /// the one `Command` returns.
    fn command(&self) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
            .arg(&self.0)
            .arg(semleak_bin());
        cmd
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Empty by now: every test waits for its exporter.
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn without_threads_it_exits_with_an_error_instead_of_a_dead_port() {
    let Some(cgroup) = PidsCgroup::new(6) else {
        eprintln!("skipped: no pids cgroup can be made here");
        return;
    };
    let fixture = tempfile::tempdir().unwrap();
    let mut child = cgroup
        .command()
        .args(["exporter", "--listen", "127.0.0.1:0", "--allow-non-tmpfs"])
        .arg("--proc-root")
        .arg(fixture.path())
        .arg("--shm-dir")
        .arg(fixture.path())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_until(Duration::from_secs(10), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        kill(child.id() as i32, libc::SIGKILL);
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(exited, "still running without its threads: {err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot start worker thread"), "{err}");
    assert!(!err.contains("serving"), "{err}");
}

#[test]
fn under_a_pids_limit_a_connection_flood_does_not_kill_the_port() {
    // Room for the exporter's 17 threads, not for one per connection: the
    // accept thread of tiny_http panicked and the port stayed dead.
    let Some(cgroup) = PidsCgroup::new(24) else {
        eprintln!("skipped: no pids cgroup can be made here");
        return;
    };
    let mut target = Target::start_with(cgroup.command());
    assert_eq!(target.scrape(Duration::from_secs(10)), Some(200));
    let flood: Vec<TcpStream> = (0..60)
        .filter_map(|_| TcpStream::connect_timeout(&target.addr, Duration::from_secs(2)).ok())
        .collect();
    drop(flood);
    assert!(target.scrapes_ok_within(Duration::from_secs(8)));
    assert!(target.running());
    target.sigterm();
}
