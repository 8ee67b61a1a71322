//! Analysis: pure functions from a Snapshot to findings, one module per rule.

pub mod creator;
pub mod facts;
pub mod finding;
pub mod leaked_semaphore;
pub mod orphan;
pub mod per_worker_semaphores;
pub mod probed_semaphore;
pub mod process_tree;
pub mod sem_holders;
pub mod semaphore_hoarding;
pub mod semaphore_pressure;
pub mod shm_pressure;
#[cfg(test)]
pub mod testing;
pub mod thread_pileup;
pub mod wakeup;
pub mod words;
pub mod zombie;

use semleak_platform::Snapshot;

pub use facts::{
    said, CleanupStep, Evidence, ForeignPids, Group, Headline, Signal, SignalNote, SignalStep,
    SignalTarget, Subject,
};
pub use finding::{finding_id, sort_findings, Confidence, Finding, Kind, Severity};

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
    /// Private semaphores of one group of sibling workers from which the
    /// per-worker pattern is a warning (else info, unless it uses a tenth
    /// of a limit).
    pub per_worker_warning_at: usize,
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
            per_worker_warning_at: 100,
        }
    }
}

/// Run every rule. Findings come back sorted: most severe first, then by
/// kind and id, so output is stable.
pub fn analyze(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(leaked_semaphore::check(snapshot, config));
    findings.extend(semaphore_hoarding::check(snapshot, config));
    findings.extend(per_worker_semaphores::check(snapshot, config));
    findings.extend(shm_pressure::check(snapshot, config));
    findings.extend(wakeup::check(snapshot, config));
    findings.extend(semaphore_pressure::check(snapshot, config));
    findings.extend(probed_semaphore::check(snapshot, config));
    findings.extend(zombie::check(snapshot, config));
    findings.extend(orphan::check(snapshot, config));
    findings.extend(thread_pileup::check(snapshot, config));
    wakeup::link_thread_pileups(&mut findings);
    attach_containers(snapshot, &mut findings);
    sort_findings(&mut findings);
    findings
}

/// Attributes each finding to the container of its parent process, else of
/// its first process that has one.
fn attach_containers(snapshot: &Snapshot, findings: &mut [Finding]) {
    let container_of = |pid: i32| snapshot.process(pid).and_then(|p| p.container.clone());
    for f in findings.iter_mut().filter(|f| f.container.is_none()) {
        f.container = f
            .parent_pid
            .and_then(container_of)
            .or_else(|| f.pids.iter().find_map(|&pid| container_of(pid)));
    }
}

/// What would widen an incomplete view. Never "run as root" to root: there
/// the limit is something else, and the first skipped process's reason
/// shows what.
pub fn view_advice(snapshot: &Snapshot) -> String {
    if snapshot.host.collector_uid != 0 {
        return "run as root for a complete view".into();
    }
    let first = snapshot
        .visibility
        .skipped
        .first()
        .map(|s| format!(" (pid {}: {})", s.pid, s.reason))
        .unwrap_or_default();
    format!(
        "semleak already runs as root, so something else hides them{first}: a missing \
         CAP_SYS_PTRACE, a security module (AppArmor, SELinux, Yama) or a sandbox"
    )
}

/// "pid 123 (python3 worker.py --x)": a process as people recognise it.
/// The command line is cut to 120 characters.
pub fn process_label(snapshot: &Snapshot, pid: i32) -> String {
    process_label_of(pid, snapshot.process(pid))
}

/// [`process_label`] for a process already looked up (`None`: gone).
pub fn process_label_of(pid: i32, process: Option<&semleak_platform::Process>) -> String {
    match process {
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
/// Saturates: any file time (`touch -d @…`) or snapshot time is accepted.
pub fn age_secs(snapshot: &Snapshot, unix_secs: i64) -> i64 {
    i64::try_from(snapshot.taken_at_ms / 1000)
        .unwrap_or(i64::MAX)
        .saturating_sub(unix_secs)
}

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z).
pub const MAX_DATE_SECS: i64 = 253_402_300_799;

/// Is a Unix time writable as an RFC 3339 date (years 1970 to 9999)?
pub fn date_in_range(unix_secs: i64) -> bool {
    (0..=MAX_DATE_SECS).contains(&unix_secs)
}

/// "3d 4h ago", "in the future (clock skew)", or for a time no calendar
/// date can show (anyone can `touch -d @253402300800` a file: year 10000)
/// "at an out-of-range time (@253402300800)".
pub fn human_age_ago(age_secs: i64, unix_secs: i64) -> String {
    if !date_in_range(unix_secs) {
        format!("at an out-of-range time (@{unix_secs})")
    } else if age_secs < 0 {
        "in the future (clock skew)".into()
    } else {
        format!("{} ago", human_age(age_secs))
    }
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

/// Quote bytes as one word for any POSIX shell (sh/dash, bash, zsh): bare
/// when every byte is plainly safe, else in single quotes with each `'`
/// written `'\''` — the only quoting every shell reads the same way.
///
/// `None` when the bytes cannot be shown safely for a person to copy and
/// paste: not UTF-8, or holding control characters, line or paragraph
/// separators, bidirectional controls or other invisible characters. The
/// caller then prints a command that does the job without the name (e.g.
/// `semleak clean --inode N`).
pub fn shell_quote(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.chars().any(semleak_platform::is_hidden_or_control) {
        return None;
    }
    let plain = text.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'.' | b'-' | b'_' | b':' | b'+' | b'=' | b',' | b'@'
            )
    });
    if plain && !text.is_empty() {
        return Some(text.to_string());
    }
    Some(format!("'{}'", text.replace('\'', r"'\''")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_carry_the_parent_process_container() {
        use semleak_platform::{Container, ContainerRuntime};
        let container = Container {
            runtime: ContainerRuntime::Containerd,
            id: "ab".repeat(32),
            pod_uid: Some("1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d".into()),
            source: semleak_platform::ContainerSource::SystemdScope,
            user_uid: None,
        };
        let mut snap = testing::snapshot();
        let mut parent = testing::process(500, 1, "python3 dispatcher.py");
        parent.container = Some(container.clone());
        let mut zombie = testing::process(1000, 500, "");
        zombie.state = 'Z';
        snap.processes = vec![parent, zombie];
        let mut findings = vec![Finding::new(
            Kind::Zombie,
            b"x",
            Severity::Warning,
            Confidence::Certain,
        )];
        findings[0].parent_pid = Some(500);
        findings[0].pids = vec![1000];
        let mut unrelated =
            Finding::new(Kind::Orphan, b"y", Severity::Warning, Confidence::Certain);
        unrelated.pids = vec![42];
        findings.push(unrelated);
        attach_containers(&snap, &mut findings);
        assert_eq!(findings[0].container, Some(container));
        assert_eq!(findings[1].container, None);
        let json = serde_json::to_string(&findings[0]).unwrap();
        assert!(json.contains(r#""runtime":"containerd""#), "{json}");
        assert!(!serde_json::to_string(&findings[1])
            .unwrap()
            .contains("container"));
    }

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
    fn shell_quoting_is_posix_single_quotes_only() {
        let q = |b: &[u8]| shell_quote(b);
        assert_eq!(q(b"/dev/shm/sem.mp-ab12").unwrap(), "/dev/shm/sem.mp-ab12");
        assert_eq!(q(b"/dev/shm/sem.a b").unwrap(), "'/dev/shm/sem.a b'");
        assert_eq!(q(b"it's").unwrap(), r"'it'\''s'");
        assert_eq!(q(b"$(touch x)`y`\\").unwrap(), r"'$(touch x)`y`\'");
        assert_eq!(q("grüße".as_bytes()).unwrap(), "'grüße'");
        assert_eq!(q(b"").unwrap(), "''");
        // Nothing a person cannot see or paste safely: no `$'…'` (dash
        // runs it as `$` + a quoted string), no quoting at all.
        for unsafe_name in [
            &b"sem.\n'$(touch pwned)0"[..],
            b"a\xffb",
            b"tab\there",
            b"esc\x1b[31m",
            "bidi\u{202e}txt".as_bytes(),
            "line\u{2028}sep".as_bytes(),
            "zero\u{200b}width".as_bytes(),
            "c1\u{85}".as_bytes(),
        ] {
            assert_eq!(q(unsafe_name), None, "{unsafe_name:?}");
        }
    }

    #[test]
    fn ages() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(125), "2m 5s");
        assert_eq!(human_age(7260), "2h 1m");
        assert_eq!(human_age(90000), "1d 1h");
        assert_eq!(human_age(i64::MAX), "106751991167300d 15h");
        assert_eq!(human_age_ago(60, 1_000), "1m 0s ago");
        assert_eq!(human_age_ago(-5, 1_000), "in the future (clock skew)");
        assert_eq!(
            human_age_ago(-5, 253_402_300_800),
            "at an out-of-range time (@253402300800)"
        );
    }

    #[test]
    fn ages_saturate_on_extreme_times() {
        let mut snap = testing::snapshot();
        assert!(age_secs(&snap, i64::MIN) == i64::MAX);
        assert!(age_secs(&snap, i64::MAX) < 0);
        snap.taken_at_ms = u64::MAX;
        assert_eq!(age_secs(&snap, 0), (u64::MAX / 1000) as i64);
    }

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[test]
    fn root_is_never_told_to_run_as_root() {
        let mut snap = crate::analyze::testing::snapshot();
        crate::analyze::testing::skip(&mut snap, 1, Some(0));
        snap.host.collector_uid = 1000;
        assert_eq!(view_advice(&snap), "run as root for a complete view");
        snap.host.collector_uid = 0;
        let advice = view_advice(&snap);
        assert!(!advice.contains("run as root"), "{advice}");
        assert!(advice.contains("CAP_SYS_PTRACE"), "{advice}");
        assert!(advice.contains("pid 1:"), "{advice}");
    }
}
