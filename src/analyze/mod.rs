//! Analysis: pure functions from a Snapshot to findings, one module per rule.

pub mod creator;
pub mod leaked_semaphore;
pub mod orphan;
pub mod probed_semaphore;
pub mod process_tree;
pub mod semaphore_hoarding;
pub mod semaphore_pressure;
pub mod shm_pressure;
#[cfg(test)]
pub mod testing;
pub mod thread_pileup;
pub mod wakeup;
pub mod zombie;

use schemars::JsonSchema;
use semleak_platform::Snapshot;
use serde::{Deserialize, Serialize};

/// Rule thresholds. Every rule reads only the Snapshot and this.
#[derive(Debug, Clone)]
pub struct Config {
    /// A process mapping at least this many semaphores is a warning.
    pub hoard_threshold: usize,
    /// Shared-memory use (bytes or inodes) above this percentage is a warning.
    pub shm_pressure_percent: u8,
    /// Zombies under one parent: warning from this many, error from `zombie_error_at`.
    pub zombie_warning_at: usize,
    pub zombie_error_at: usize,
    /// Same-named threads in one process from which a pile-up is reported.
    pub thread_pileup_at: usize,
    /// Named semaphores in use against the OS limit (macOS
    /// `kern.posix.sem.max`): warning from this percentage, error from
    /// `sem_pressure_error_percent`; info from half the warning level.
    pub sem_pressure_warning_percent: u8,
    pub sem_pressure_error_percent: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hoard_threshold: 100,
            shm_pressure_percent: 80,
            zombie_warning_at: 5,
            zombie_error_at: 50,
            thread_pileup_at: 16,
            sem_pressure_warning_percent: 80,
            sem_pressure_error_percent: 95,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Possible,
    Likely,
    Certain,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Possible => "possible",
            Confidence::Likely => "likely",
            Confidence::Certain => "certain",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    LeakedSemaphore,
    SemaphorePressure,
    SemaphoreHoarding,
    ShmPressure,
    Zombie,
    Orphan,
    FullWakeupPipe,
    StalledWakeupPipe,
    ThreadPileup,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::LeakedSemaphore,
        Kind::SemaphorePressure,
        Kind::SemaphoreHoarding,
        Kind::ShmPressure,
        Kind::Zombie,
        Kind::Orphan,
        Kind::FullWakeupPipe,
        Kind::StalledWakeupPipe,
        Kind::ThreadPileup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LeakedSemaphore => "leaked_semaphore",
            Kind::SemaphorePressure => "semaphore_pressure",
            Kind::SemaphoreHoarding => "semaphore_hoarding",
            Kind::ShmPressure => "shm_pressure",
            Kind::Zombie => "zombie",
            Kind::Orphan => "orphan",
            Kind::FullWakeupPipe => "full_wakeup_pipe",
            Kind::StalledWakeupPipe => "stalled_wakeup_pipe",
            Kind::ThreadPileup => "thread_pileup",
        }
    }

    /// Heading for the table renderer.
    pub fn title(self) -> &'static str {
        match self {
            Kind::LeakedSemaphore => "Leaked semaphores",
            Kind::SemaphorePressure => "Semaphore limit pressure",
            Kind::SemaphoreHoarding => "Processes holding many semaphores",
            Kind::ShmPressure => "Shared-memory pressure",
            Kind::Zombie => "Zombies",
            Kind::Orphan => "Orphaned workers",
            Kind::FullWakeupPipe => "Full wakeup channels",
            Kind::StalledWakeupPipe => "Stalled wakeup channels",
            Kind::ThreadPileup => "Thread pile-ups",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One diagnosed problem: a finding of the JSON report (docs/JSON.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub id: String,
    pub kind: Kind,
    pub severity: Severity,
    pub confidence: Confidence,
    pub summary: String,
    pub pids: Vec<i32>,
    pub parent_pid: Option<i32>,
    pub resources: Vec<String>,
    pub evidence: Vec<String>,
    pub recommendation: String,
    pub cleanup: Vec<String>,
}

impl Finding {
    /// A finding with its stable id computed from kind and subject. The
    /// subject names what the finding is about across scans (a semaphore's
    /// path, a parent's command line), never counts or times.
    pub fn new(kind: Kind, subject: &[u8], severity: Severity, confidence: Confidence) -> Self {
        Finding {
            id: finding_id(kind, subject),
            kind,
            severity,
            confidence,
            summary: String::new(),
            pids: Vec::new(),
            parent_pid: None,
            resources: Vec::new(),
            evidence: Vec::new(),
            recommendation: String::new(),
            cleanup: Vec::new(),
        }
    }
}

/// `kind-` + FNV-1a 64 of the subject: short, stable across versions and
/// hosts, no dependency.
pub fn finding_id(kind: Kind, subject: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind
        .as_str()
        .as_bytes()
        .iter()
        .chain([0u8].iter())
        .chain(subject)
    {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{hash:016x}", kind.as_str())
}

/// Run every rule. Findings come back sorted: most severe first, then by
/// kind and id, so output is stable.
pub fn analyze(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(leaked_semaphore::check(snapshot, config));
    findings.extend(semaphore_hoarding::check(snapshot, config));
    findings.extend(shm_pressure::check(snapshot, config));
    findings.extend(wakeup::check(snapshot, config));
    findings.extend(semaphore_pressure::check(snapshot, config));
    findings.extend(probed_semaphore::check(snapshot, config));
    findings.extend(zombie::check(snapshot, config));
    findings.extend(orphan::check(snapshot, config));
    findings.extend(thread_pileup::check(snapshot, config));
    sort_findings(&mut findings);
    findings
}

pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// "pid 123 (python3 worker.py --x)": a process as people recognise it.
/// The command line is cut to 120 characters.
pub fn process_label(snapshot: &Snapshot, pid: i32) -> String {
    match snapshot.processes.iter().find(|p| p.pid == pid) {
        Some(p) => {
            let mut cmd = process_tree::command_text(p);
            if cmd.chars().count() > 120 {
                cmd = cmd.chars().take(119).collect::<String>() + "…";
            }
            format!("pid {pid} ({cmd})")
        }
        None => format!("pid {pid} (gone)"),
    }
}

/// Seconds between the snapshot and a past instant, for "age" evidence.
pub fn age_secs(snapshot: &Snapshot, unix_secs: i64) -> i64 {
    (snapshot.taken_at_ms / 1000) as i64 - unix_secs
}

/// "3d 4h", "12m 5s": short human ages for evidence lines.
pub fn human_age(secs: i64) -> String {
    if secs < 0 {
        return "in the future (clock skew)".into();
    }
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Quote a byte string for a POSIX shell: single quotes for text, ANSI-C
/// `$'…'` when it holds bytes a terminal or shell would mangle.
pub fn shell_quote(bytes: &[u8]) -> String {
    let plain = bytes.iter().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'.' | b'-' | b'_' | b':' | b'+' | b'=' | b',' | b'@'
            )
    });
    if plain && !bytes.is_empty() {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let printable = std::str::from_utf8(bytes)
        .map(|s| !s.chars().any(|c| c.is_control()))
        .unwrap_or(false);
    if printable {
        let s = std::str::from_utf8(bytes).unwrap_or_default();
        return format!("'{}'", s.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for &b in bytes {
        match b {
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_kind_scoped() {
        let a = finding_id(Kind::LeakedSemaphore, b"/dev/shm/sem.mp-1");
        assert_eq!(a, finding_id(Kind::LeakedSemaphore, b"/dev/shm/sem.mp-1"));
        assert_ne!(a, finding_id(Kind::Zombie, b"/dev/shm/sem.mp-1"));
        assert!(a.starts_with("leaked_semaphore-"));
        // Pinned: baselines written by earlier versions must keep matching.
        assert_eq!(
            finding_id(Kind::LeakedSemaphore, b"x"),
            "leaked_semaphore-42f1f7ef398746d2"
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote(b"/dev/shm/sem.mp-ab12"), "/dev/shm/sem.mp-ab12");
        assert_eq!(shell_quote(b"/dev/shm/sem.a b"), "'/dev/shm/sem.a b'");
        assert_eq!(shell_quote(b"it's"), r"'it'\''s'");
        assert_eq!(shell_quote(b"a\nb\xff"), r"$'a\x0ab\xff'");
        assert_eq!(shell_quote(b""), "''");
    }

    #[test]
    fn ages() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(125), "2m 5s");
        assert_eq!(human_age(7260), "2h 1m");
        assert_eq!(human_age(90000), "1d 1h");
    }

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
