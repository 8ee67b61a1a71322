//! The Report (JSON schema version 1; see README "JSON report") and the
//! result types of `run` and `clean`, with one renderer per format.
//! Renderers see only these types.

pub mod clean;
pub mod github;
pub mod json;
pub mod junit;
pub mod prometheus;
pub mod run;
pub mod table;
pub mod text;

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use schemars::JsonSchema;
use semleak_platform::{escape_for_terminal, Snapshot};
use serde::{Deserialize, Serialize};

use crate::analyze::{date_in_range, Finding, Severity};

pub const SCHEMA_VERSION: u32 = 1;

// Serialise-only: a finding's JSON is rendered from its facts, never read back.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub semleak_version: String,
    /// "scan", "analyze", "run", "clean".
    pub command: String,
    pub host: HostInfo,
    pub started_at: String,
    pub duration_ms: u64,
    pub visibility: VisibilityInfo,
    pub limits: LimitsInfo,
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub inventory: Inventory,
    /// Findings dropped by a baseline or an allowlist.
    #[serde(default)]
    pub suppressed: crate::suppress::Suppressed,
    /// `semleak run`: the command and what the gate did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<run::RunInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HostInfo {
    pub os: String,
    pub hostname: String,
    pub kernel: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct VisibilityInfo {
    pub complete: bool,
    pub processes_total: usize,
    pub processes_inspected: usize,
    pub skipped: Vec<SkippedInfo>,
    /// What could not be seen at all, in words.
    pub notes: Vec<String>,
    /// Shared-memory entries that were not examined as semaphores (a
    /// symlink or directory named `sem.*`, an entry lstat failed on), with why.
    pub entries_skipped: Vec<SkippedEntryInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SkippedEntryInfo {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SkippedInfo {
    pub pid: i32,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct LimitsInfo {
    /// The shared-memory filesystem: use against its tmpfs limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm: Option<ShmLimits>,
    /// Named semaphores against the OS limit (macOS `kern.posix.sem.max`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semaphores: Option<SemaphoreLimits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_max: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ShmLimits {
    pub path: String,
    pub bytes_total: u64,
    pub bytes_used: u64,
    pub inodes_total: u64,
    pub inodes_used: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SemaphoreLimits {
    pub max: Option<u64>,
    /// Semaphores seen (Linux: named files + unlinked-but-mapped; macOS:
    /// distinct names held by visible processes or found by probing).
    pub in_use: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    pub by_kind: BTreeMap<String, usize>,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Summary {
        let mut s = Summary::default();
        for f in findings {
            match f.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
                Severity::Info => s.infos += 1,
            }
            *s.by_kind.entry(f.kind.as_str().to_string()).or_default() += 1;
        }
        s
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Inventory {
    pub semaphores: Vec<SemaphoreEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SemaphoreEntry {
    /// The name without `sem.`; bytes that are not UTF-8 appear as `\xNN`
    /// and the exact bytes are in `name_hex`.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name_hex: Option<String>,
    pub path: String,
    pub dev: u64,
    pub inode: u64,
    pub uid: u32,
    pub mode: String,
    pub size: u64,
    pub value: Option<u32>,
    pub waiters: Option<u32>,
    pub modified_at: Option<String>,
    pub unlinked: bool,
    pub holders: Vec<i32>,
}

/// A time in milliseconds since the epoch as RFC 3339, or, beyond year
/// 9999 (a hostile snapshot), `@SECONDS (out of range)`: never a panic.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    rfc3339_secs(secs).unwrap_or_else(|| format!("@{secs} (out of range)"))
}

/// RFC 3339 for a Unix time from 1970 to 9999; `None` outside (a file
/// `touch -d @253402300800` made, dated year 10000, or before 1970).
pub fn rfc3339_secs(secs: i64) -> Option<String> {
    if !date_in_range(secs) {
        return None;
    }
    let time = UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))?;
    Some(humantime::format_rfc3339_seconds(time).to_string())
}

impl Report {
    /// Assemble the report of one snapshot and its findings.
    pub fn new(command: &str, snapshot: &Snapshot, findings: Vec<Finding>) -> Report {
        let vis = &snapshot.visibility;
        let shm = &snapshot.shm;
        let limits = LimitsInfo {
            shm: shm.usage.as_ref().map(|u| ShmLimits {
                path: shm.dir.clone(),
                bytes_total: u.bytes_total,
                bytes_used: u.bytes_total.saturating_sub(u.bytes_free),
                inodes_total: u.inodes_total,
                inodes_used: u.inodes_total.saturating_sub(u.inodes_free),
            }),
            semaphores: semaphore_limits(snapshot),
            pid_max: snapshot.limits.pid_max,
        };
        let semaphores = shm
            .semaphores
            .iter()
            .map(|s| SemaphoreEntry {
                name: s.name.to_lossy(),
                name_hex: (!s.name.is_utf8()).then(|| {
                    s.name
                        .as_bytes()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect()
                }),
                path: s.path.to_lossy(),
                dev: s.meta.dev,
                inode: s.meta.inode,
                uid: s.meta.uid,
                mode: format!("{:04o}", s.meta.mode),
                size: s.meta.size,
                value: s.value,
                waiters: s.waiters,
                modified_at: (!s.unlinked)
                    .then(|| rfc3339_secs(s.meta.modified_at))
                    .flatten(),
                unlinked: s.unlinked,
                holders: s.holders.clone(),
            })
            .collect();
        Report {
            schema_version: SCHEMA_VERSION,
            semleak_version: env!("CARGO_PKG_VERSION").to_string(),
            command: command.to_string(),
            host: HostInfo {
                os: snapshot.host.os.clone(),
                hostname: snapshot.host.hostname.clone(),
                kernel: snapshot.host.kernel.clone(),
            },
            started_at: rfc3339_ms(snapshot.taken_at_ms),
            duration_ms: snapshot.duration_ms,
            visibility: VisibilityInfo {
                complete: vis.skipped.is_empty() && vis.notes.is_empty(),
                processes_total: vis.processes_total,
                processes_inspected: vis.processes_inspected,
                skipped: vis
                    .skipped
                    .iter()
                    .map(|s| SkippedInfo {
                        pid: s.pid,
                        reason: s.reason.clone(),
                    })
                    .collect(),
                notes: vis.notes.clone(),
                entries_skipped: shm
                    .skipped
                    .iter()
                    .map(|e| SkippedEntryInfo {
                        name: e.name.to_lossy(),
                        reason: e.reason.clone(),
                    })
                    .collect(),
            },
            limits,
            summary: Summary::of(&findings),
            findings,
            inventory: Inventory { semaphores },
            suppressed: Default::default(),
            run: None,
        }
    }

    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Replace the findings (after baseline/allowlist filtering) and keep
    /// the summary in step.
    pub fn set_findings(&mut self, findings: Vec<Finding>) {
        self.summary = Summary::of(&findings);
        self.findings = findings;
    }
}

fn semaphore_limits(snapshot: &Snapshot) -> Option<SemaphoreLimits> {
    let in_use = if snapshot.host.os == "macos" {
        crate::analyze::semaphore_pressure::names_in_use(snapshot).len() as u64
    } else {
        snapshot.shm.semaphores.len() as u64
    };
    if snapshot.limits.sem_max.is_none() && in_use == 0 {
        return None;
    }
    Some(SemaphoreLimits {
        max: snapshot.limits.sem_max,
        in_use,
    })
}

/// Text from the system, made safe for a terminal.
pub fn term(s: &str) -> String {
    escape_for_terminal(s)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod process_tests;

#[cfg(test)]
mod golden_fixtures;
