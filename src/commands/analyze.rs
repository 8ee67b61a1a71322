//! `semleak analyze FILE`: the rules over a saved Snapshot (`-` for stdin),
//! so a snapshot attached to a bug report is analysed anywhere; baselines
//! and allowlists apply as in `scan`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use semleak_platform::Snapshot;

use super::{emit, load_suppressor, note_suppressed, suppress, Ui};
use crate::analyze::{self, MAX_DATE_SECS};
use crate::cli::AnalyzeArgs;
use crate::exit::{AppError, EXIT_FINDINGS, EXIT_OK};
use crate::input;
use crate::report::Report;

pub fn analyze_file(args: &AnalyzeArgs, ui: &Ui) -> Result<i32, AppError> {
    let suppressor = load_suppressor(&args.suppress)?;
    let snapshot = load_snapshot(&args.snapshot)?;
    let findings = analyze::analyze(&snapshot, &args.rules.config());
    let (findings, suppressed) = suppress(&suppressor, &snapshot, findings);
    let mut report = Report::new("analyze", &snapshot, findings);
    report.suppressed = suppressed;
    emit(&report, &args.output, ui)?;
    note_suppressed(&report, args.output.format);
    Ok(if args.output.fail_on.fails(report.worst()) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

pub fn load_snapshot(path: &Path) -> Result<Snapshot, AppError> {
    let read_err = |source| AppError::ReadSnapshot {
        path: path.to_path_buf(),
        source,
    };
    let text = input::read_capped_text(path, input::SNAPSHOT_LIMIT, true).map_err(read_err)?;
    parse_snapshot(&text, path)
}

/// Parse and validate a snapshot's JSON text (`path` names it in errors).
/// Anything a collector cannot have written is refused with a clear error
/// rather than analysed: a snapshot may come from anyone.
pub fn parse_snapshot(text: &str, path: &Path) -> Result<Snapshot, AppError> {
    let snapshot: Snapshot =
        serde_json::from_str(text).map_err(|source| AppError::ParseSnapshot {
            path: path.to_path_buf(),
            source,
        })?;
    if snapshot.format != semleak_platform::SNAPSHOT_FORMAT {
        return Err(AppError::SnapshotFormat {
            path: path.to_path_buf(),
            found: snapshot.format,
            expected: semleak_platform::SNAPSHOT_FORMAT,
        });
    }
    validate(&snapshot).map_err(|detail| {
        AppError::Module(Box::new(InvalidSnapshot {
            path: path.to_path_buf(),
            detail,
        }))
    })?;
    Ok(snapshot)
}

/// A snapshot that parses but holds values no collector writes.
#[derive(Debug, thiserror::Error)]
#[error("{} is not a valid semleak snapshot: {detail}", path.display())]
pub struct InvalidSnapshot {
    pub path: PathBuf,
    pub detail: String,
}

/// The longest host name a snapshot may hold: 255 bytes (a DNS name's
/// limit; Linux allows 64, macOS 255).
const MAX_HOSTNAME_BYTES: usize = 255;

/// The last millisecond RFC 3339 can write (year 9999).
const MAX_DATE_MS: u64 = MAX_DATE_SECS as u64 * 1000 + 999;

/// Check what collection guarantees: times a clock can show, positive pids
/// and tick rates. File times are not checked: any user can set them to
/// anything (`touch -d @253402300800`), and reports say so.
fn validate(s: &Snapshot) -> Result<(), String> {
    let time_ms = |field: &str, ms: u64| {
        if ms > MAX_DATE_MS {
            Err(format!(
                "{field} is {ms} ms after 1970, beyond the year 9999: no clock reads that"
            ))
        } else {
            Ok(())
        }
    };
    time_ms("taken_at_ms", s.taken_at_ms)?;
    if s.host.hostname.len() > MAX_HOSTNAME_BYTES {
        return Err(format!(
            "host.hostname is {} bytes long: host names are at most {MAX_HOSTNAME_BYTES}",
            s.host.hostname.len()
        ));
    }
    if let Some(boot) = s.host.boot_time {
        time_ms("host.boot_time", boot.saturating_mul(1000))?;
    }
    if s.host.clock_ticks == 0 {
        return Err("host.clock_ticks is 0: the kernel's tick rate is never 0".into());
    }
    let mut pids = HashSet::with_capacity(s.processes.len());
    for (i, p) in s.processes.iter().enumerate() {
        if p.pid <= 0 {
            return Err(format!(
                "processes[{i}].pid is {}: pids are positive",
                p.pid
            ));
        }
        if !pids.insert(p.pid) {
            return Err(format!("processes[{i}]: pid {} appears twice", p.pid));
        }
        if let Some(ms) = p.start_time_ms {
            time_ms(&format!("processes[{i}].start_time_ms"), ms)?;
        }
    }
    for (i, c) in s.channels.iter().enumerate() {
        for (j, sample) in c.samples.iter().enumerate() {
            time_ms(&format!("channels[{i}].samples[{j}].at_ms"), sample.at_ms)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::to_value(crate::analyze::testing::snapshot()).unwrap()
    }

    fn load(v: &serde_json::Value) -> Result<Snapshot, String> {
        parse_snapshot(&v.to_string(), Path::new("host.json")).map_err(|e| e.to_string())
    }

    #[test]
    fn hostile_snapshots_are_refused_with_a_clear_error() {
        assert!(load(&base()).is_ok());
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "/taken_at_ms",
                u64::MAX.into(),
                "taken_at_ms is 18446744073709551615 ms",
            ),
            ("/host/boot_time", i64::MAX.into(), "host.boot_time"),
            ("/host/clock_ticks", 0.into(), "clock_ticks is 0"),
            (
                "/host/hostname",
                "h".repeat(256).into(),
                "host.hostname is 256 bytes long",
            ),
        ];
        for (ptr, value, expected) in cases {
            let mut v = base();
            *v.pointer_mut(ptr).unwrap() = value;
            let err = load(&v).unwrap_err();
            assert!(
                err.contains("host.json is not a valid semleak snapshot"),
                "{err}"
            );
            assert!(err.contains(expected), "{ptr}: {err}");
        }
        let mut v = base();
        v["processes"] = serde_json::json!([{
            "pid": 7, "ppid": 1, "pgrp": 7, "session": 7, "state": "S", "uid": 0,
            "start_time_ms": u64::MAX, "start_ticks": 1, "comm": "x", "cmdline": [],
            "threads": 1, "sig_caught": null, "sig_ignored": null, "inspected": true
        }]);
        assert!(load(&v).unwrap_err().contains("processes[0].start_time_ms"));
        let mut v = base();
        v["shm"]["semaphores"] = serde_json::json!([{
            "name": {"hex": "0é0"}, "path": "/dev/shm/sem.x",
            "meta": {"dev": 1, "inode": 2, "uid": 0, "gid": 0, "mode": 384, "size": 32,
                     "modified_at": 0, "changed_at": 0},
            "value": 1, "waiters": 0, "unreadable_reason": null, "unlinked": false, "holders": []
        }]);
        let err = load(&v).unwrap_err();
        assert!(
            err.contains("not a semleak snapshot") && err.contains("hex"),
            "{err}"
        );
    }

    #[test]
    fn extreme_file_times_are_accepted_and_analysed() {
        let mut v = base();
        v["shm"]["semaphores"] = serde_json::json!([{
            "name": "x", "path": "/dev/shm/sem.x",
            "meta": {"dev": 1, "inode": 2, "uid": 0, "gid": 0, "mode": 384, "size": 32,
                     "modified_at": i64::MAX, "changed_at": i64::MIN},
            "value": 1, "waiters": 0, "unreadable_reason": null, "unlinked": false, "holders": []
        }]);
        let snap = load(&v).unwrap();
        let findings = analyze::analyze(&snap, &crate::analyze::Config::default());
        let report = Report::new("analyze", &snap, findings);
        crate::report::json::render(&report);
    }
}
