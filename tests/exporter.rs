//! `semleak exporter`: started on 127.0.0.1 port 0, scraped with a real
//! HTTP client (Python urllib), parsed with the Python prometheus-client
//! OpenMetrics parser, stopped with SIGTERM. Linux: scans read `/proc`.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

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
