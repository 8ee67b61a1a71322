//! `thread_pileup`: many threads of one process sharing a name pattern
//! (e.g. 16 threads named `subint-driver[N]`), usually one kind of task
//! started again and again and never joined.

use std::collections::BTreeMap;

use semleak_platform::{Process, Snapshot};

use super::process_tree::{is_user_process, program_subject};
use super::{process_label, Confidence, Config, Finding, Kind, Severity};

pub fn check(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    let threshold = config.thread_pileup_at.max(2);
    let mut findings = Vec::new();
    for p in snapshot
        .processes
        .iter()
        .filter(|p| is_user_process(snapshot, p) && !p.is_zombie())
    {
        for (pattern, names) in patterns(p, name_max(snapshot)) {
            if names.len() >= threshold {
                findings.push(finding(snapshot, p, &pattern, &names));
            }
        }
    }
    findings
}

/// Linux keeps thread names to 15 bytes (TASK_COMM_LEN - 1).
const LINUX_NAME_MAX: usize = 15;
/// XNU keeps them to 63 (MAXTHREADNAMESIZE - 1, `sys/proc_info.h`).
const MACOS_NAME_MAX: usize = 63;

/// The longest thread name the Snapshot's kernel keeps.
fn name_max(snapshot: &Snapshot) -> usize {
    if snapshot.host.os == "macos" {
        MACOS_NAME_MAX
    } else {
        LINUX_NAME_MAX
    }
}

/// A thread name with every run of digits replaced by `*`. A name of the
/// full `name_max` bytes may have been cut, so punctuation after its last
/// number is dropped: on Linux `subint-driver[3` (from
/// `subint-driver[3]`) and `semleak-pile[3]` / `semleak-pile[12` fall
/// under one pattern each.
pub fn name_pattern(name: &[u8], name_max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_digit() {
            if out.last() != Some(&b'*') {
                out.push(b'*');
            }
        } else {
            out.push(b);
        }
    }
    if name.len() >= name_max {
        if let Some(star) = out.iter().rposition(|&b| b == b'*') {
            if out[star + 1..].iter().all(|b| b.is_ascii_punctuation()) {
                out.truncate(star + 1);
            }
        }
    }
    out
}

/// Thread names grouped by pattern. Threads still carrying the process's
/// own name are left out: they were never named (Go runtimes, plain
/// pthreads, Python before 3.14), so their number says nothing about one
/// kind of task piling up.
fn patterns(p: &Process, name_max: usize) -> BTreeMap<Vec<u8>, Vec<&[u8]>> {
    let mut groups: BTreeMap<Vec<u8>, Vec<&[u8]>> = BTreeMap::new();
    for name in &p.thread_names {
        let n = name.as_bytes();
        if n == p.comm.as_bytes() || n.is_empty() {
            continue;
        }
        groups.entry(name_pattern(n, name_max)).or_default().push(n);
    }
    groups
}

fn finding(snapshot: &Snapshot, p: &Process, pattern: &[u8], names: &[&[u8]]) -> Finding {
    let mut subject = program_subject(p);
    subject.push(0);
    subject.extend_from_slice(pattern);
    let mut f = Finding::new(
        Kind::ThreadPileup,
        &subject,
        Severity::Warning,
        Confidence::Likely,
    );
    let pattern_text = String::from_utf8_lossy(pattern).into_owned();
    let total = p.threads.max(p.thread_names.len() as u32);
    f.headline(format!(
        "{} has {} threads named {pattern_text}",
        process_label(snapshot, p.pid),
        names.len()
    ));
    f.pids = vec![p.pid];
    let mut distinct: Vec<String> = names
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    distinct.sort();
    distinct.dedup();
    let shown: Vec<&str> = distinct.iter().take(5).map(String::as_str).collect();
    f.say(format!(
        "{} of its {total} threads match {pattern_text} ({} distinct name{}: {}{})",
        names.len(),
        distinct.len(),
        if distinct.len() == 1 { "" } else { "s" },
        shown.join(", "),
        if distinct.len() > 5 { ", …" } else { "" }
    ));
    let max = name_max(snapshot);
    if names.iter().any(|n| n.len() >= max) {
        f.say(format!(
            "the kernel cuts thread names to {max} bytes, so longer names (and their numbers) are truncated"
        ));
    }
    f.recommendation = "Threads sharing one name are usually one kind of task started repeatedly; if their number grows between scans they are not being joined. Make them finish and join them (or bound the pool): piled-up threads starve the event loop, whose wakeup channel then stops draining.".to_string();
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;
    use semleak_platform::RawName;

    fn with_threads(names: &[String]) -> Snapshot {
        let mut snap = snapshot();
        let mut p = process(300, 1, "python3 app.py");
        p.threads = names.len() as u32 + 1;
        p.thread_names = std::iter::once(RawName::from("python3"))
            .chain(names.iter().map(|n| RawName::from(n.as_str())))
            .collect();
        snap.processes = vec![p];
        snap
    }

    fn indexed(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}[{i}]")).collect()
    }

    #[test]
    fn patterns_fold_numbers_and_truncation() {
        let linux = |n: &[u8]| name_pattern(n, LINUX_NAME_MAX);
        assert_eq!(linux(b"pool[3]"), b"pool[*]");
        assert_eq!(linux(b"subint-driver[1"), b"subint-driver[*");
        assert_eq!(linux(b"w-10-2"), b"w-*-*");
        // 15 bytes, maybe cut: `]` may or may not have fitted.
        assert_eq!(linux(b"semleak-pile[3]"), b"semleak-pile[*");
        assert_eq!(linux(b"semleak-pile[12"), b"semleak-pile[*");
        assert_eq!(linux(b"worker-1-abcdef"), b"worker-*-abcdef");
        // macOS keeps 63 bytes: a 15-byte name is whole.
        assert_eq!(
            name_pattern(b"semleak-pile[3]", MACOS_NAME_MAX),
            b"semleak-pile[*]"
        );
    }

    #[test]
    fn pileup_of_indexed_threads() {
        // As the kernel shows them: cut to 15 bytes.
        let names: Vec<String> = indexed("subint-driver", 16)
            .into_iter()
            .map(|n| n.chars().take(15).collect())
            .collect();
        let snap = with_threads(&names);
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::ThreadPileup);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].pids, vec![300]);
        assert!(
            f[0].summary_text()
                .contains("16 threads named subint-driver[*"),
            "{}",
            f[0].summary_text()
        );
        assert!(
            f[0].evidence_lines()[0].starts_with("16 of its 17 threads"),
            "{}",
            f[0].evidence_lines()[0]
        );
        assert!(f[0].evidence_lines().iter().any(|e| e.contains("15 bytes")));
    }

    #[test]
    fn below_threshold_and_unnamed_threads_are_quiet() {
        assert!(check(&with_threads(&indexed("pool", 15)), &Config::default()).is_empty());
        // Threads that kept the process name were never named.
        let unnamed: Vec<String> = (0..40).map(|_| "python3".to_string()).collect();
        assert!(check(&with_threads(&unnamed), &Config::default()).is_empty());
        let low = Config {
            thread_pileup_at: 4,
            ..Config::default()
        };
        assert_eq!(check(&with_threads(&indexed("pool", 4)), &low).len(), 1);
    }

    #[test]
    fn one_finding_per_pattern_with_stable_ids() {
        let mut names = indexed("io", 20);
        names.extend(indexed("cpu-worker", 18));
        let f = check(&with_threads(&names), &Config::default());
        assert_eq!(f.len(), 2);
        assert_ne!(f[0].id, f[1].id);
        let more = check(&with_threads(&indexed("io", 30)), &Config::default());
        let io = f
            .iter()
            .find(|x| x.summary_text().contains("io[*]"))
            .unwrap();
        assert_eq!(io.id, more[0].id, "the count is not part of the id");
    }

    #[test]
    fn macos_names_are_not_cut_at_15_bytes() {
        // `worker-pool[10]` … `worker-pool[25]`: 15 bytes each, whole on
        // macOS (up to 63 bytes), where the Linux heuristic would read a
        // cut `]` and claim truncation.
        let mut snap = with_threads(
            &(10..26)
                .map(|i| format!("worker-pool[{i}]"))
                .collect::<Vec<_>>(),
        );
        snap.host.os = "macos".into();
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert!(
            f[0].summary_text()
                .contains("16 threads named worker-pool[*]"),
            "{}",
            f[0].summary_text()
        );
        assert!(
            !f[0]
                .evidence_lines()
                .iter()
                .any(|e| e.contains("cuts thread names")),
            "{:#?}",
            f[0].evidence_lines()
        );
        // A 63-byte macOS name may have been cut.
        let long = |i: usize| format!("{}[{i}]", "x".repeat(59));
        let mut snap = with_threads(&(10..26).map(long).collect::<Vec<_>>());
        snap.host.os = "macos".into();
        let f = check(&snap, &Config::default());
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("cuts thread names to 63 bytes")));
    }

    #[test]
    fn collector_is_left_out() {
        let mut snap = with_threads(&indexed("pool", 20));
        snap.processes[0].pid = snap.host.collector_pid;
        assert!(check(&snap, &Config::default()).is_empty());
    }
}
