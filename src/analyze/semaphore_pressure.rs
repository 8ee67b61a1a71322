//! `semaphore_pressure`: named semaphores in use close to the OS limit
//! (macOS `kern.posix.sem.max`, default 10,000; past it sem_open fails with
//! ENOSPC). Holders are grouped by command line so that "5 per worker ×
//! 1,800 workers" reads at a glance.
//!
//! macOS cannot count semaphores: the figure is those held open by the
//! processes we could inspect (plus probed names that exist unheld), a
//! lower bound, and the evidence says what was not seen.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use semleak_platform::{Process, Snapshot};

use super::{Confidence, Config, Finding, Kind, Severity};
use crate::analyze::process_label;

/// Groups of same-command-line holders shown in the evidence.
const GROUPS_SHOWN: usize = 3;
/// Single processes shown as top holders.
const TOP_HOLDERS: usize = 5;

/// Distinct semaphore names counted against the limit: held by a visible
/// process, or probed and found to exist.
pub fn names_in_use(snapshot: &Snapshot) -> BTreeSet<&[u8]> {
    let mut names: BTreeSet<&[u8]> = snapshot
        .processes
        .iter()
        .flat_map(|p| p.psem_names.iter().map(|n| n.as_bytes()))
        .collect();
    names.extend(
        snapshot
            .probed_semaphores
            .iter()
            .filter(|s| s.exists)
            .map(|s| s.name.as_bytes()),
    );
    names
}

/// A command line with free-standing numbers masked, so workers that
/// differ only in a pid, fd or handle number
/// (`spawn_main(tracker_fd=5, pipe_handle=11)`) group together; digits
/// inside a word (`python3.11`) stay.
fn group_key(p: &Process) -> String {
    let text = super::process_tree::command_text(p);
    let mut out = String::with_capacity(text.len());
    let mut masking = false;
    let mut prev: Option<char> = None;
    for c in text.chars() {
        if c.is_ascii_digit() {
            let starts_number = !prev.is_some_and(|p| p.is_alphanumeric() || p == '.' || p == '_');
            if masking {
                // still inside a masked number
            } else if starts_number {
                masking = true;
                out.push('N');
            } else {
                out.push(c);
            }
        } else {
            masking = false;
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

struct Group<'a> {
    key: String,
    members: Vec<(&'a Process, usize)>,
}

impl Group<'_> {
    fn total(&self) -> usize {
        self.members.iter().map(|(_, n)| n).sum()
    }

    /// "5 per process" or "3–7 per process (mostly 5)".
    fn per_process(&self) -> String {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for (_, n) in &self.members {
            *counts.entry(*n).or_default() += 1;
        }
        let min = *counts.keys().next().unwrap_or(&0);
        let max = *counts.keys().next_back().unwrap_or(&0);
        if min == max {
            return format!("{min} per process");
        }
        let mode = counts
            .iter()
            .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
            .map(|(n, _)| *n)
            .unwrap_or(0);
        format!("{min}–{max} per process (mostly {mode})")
    }

    /// The parent all members share, if they share one.
    fn common_parent(&self) -> Option<i32> {
        let first = self.members.first()?.0.ppid;
        self.members
            .iter()
            .all(|(p, _)| p.ppid == first)
            .then_some(first)
            .filter(|&pp| pp > 1)
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}

pub fn check(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    let Some(max) = snapshot.limits.sem_max.filter(|m| *m > 0) else {
        return Vec::new();
    };
    let in_use = names_in_use(snapshot).len() as u64;
    let pct = in_use as f64 * 100.0 / max as f64;
    let warning = f64::from(config.sem_pressure_warning_percent);
    let error = f64::from(config.sem_pressure_error_percent);
    let severity = if pct >= error {
        Severity::Error
    } else if pct >= warning {
        Severity::Warning
    } else if pct >= warning / 2.0 {
        Severity::Info
    } else {
        return Vec::new();
    };

    let holders: Vec<(&Process, usize)> = snapshot
        .processes
        .iter()
        .filter_map(|p| {
            let distinct: BTreeSet<&[u8]> = p.psem_names.iter().map(|n| n.as_bytes()).collect();
            (!distinct.is_empty()).then_some((p, distinct.len()))
        })
        .collect();
    let mut by_key: HashMap<String, Vec<(&Process, usize)>> = HashMap::new();
    for (p, n) in &holders {
        by_key.entry(group_key(p)).or_default().push((p, *n));
    }
    let mut groups: Vec<Group> = by_key
        .into_iter()
        .map(|(key, mut members)| {
            members.sort_by_key(|(p, _)| p.pid);
            Group { key, members }
        })
        .collect();
    groups.sort_by(|a, b| b.total().cmp(&a.total()).then_with(|| a.key.cmp(&b.key)));

    let mut f = Finding::new(
        Kind::SemaphorePressure,
        b"kern.posix.sem.max",
        severity,
        Confidence::Certain,
    );
    f.resources = vec!["kern.posix.sem.max".into()];
    let headline = groups.first().map(|g| {
        format!(
            "; {} × {} process(es) running `{}`",
            g.per_process(),
            g.members.len(),
            cut(&g.key, 60)
        )
    });
    f.summary = format!(
        "{in_use} of {max} POSIX semaphores in use ({pct:.0}% of kern.posix.sem.max){}",
        headline.unwrap_or_default()
    );
    f.evidence.push(format!(
        "{in_use} distinct named semaphores held open by {} visible process(es); the limit kern.posix.sem.max is {max}; sem_open fails with ENOSPC (errno 28) once it is reached",
        holders.len()
    ));
    let probed_unheld = snapshot
        .probed_semaphores
        .iter()
        .filter(|s| s.exists)
        .filter(|s| {
            !holders
                .iter()
                .any(|(p, _)| p.psem_names.iter().any(|n| n == &s.name))
        })
        .count();
    if probed_unheld > 0 {
        f.evidence.push(format!(
            "{probed_unheld} of them are held by no visible process but exist (found by probing their names)"
        ));
    }
    for g in groups.iter().take(GROUPS_SHOWN) {
        let example = process_label(snapshot, g.members[0].0.pid);
        let mut line = format!(
            "{} × {} process(es) = {} semaphores ({:.0}% of the limit): {example}",
            g.per_process(),
            g.members.len(),
            g.total(),
            g.total() as f64 * 100.0 / max as f64,
        );
        if g.members.len() > 1 {
            if let Some(parent) = g.common_parent() {
                line.push_str(&format!(
                    "; all children of {}",
                    process_label(snapshot, parent)
                ));
            }
        }
        f.evidence.push(line);
    }
    if groups.len() > GROUPS_SHOWN {
        let rest: usize = groups[GROUPS_SHOWN..].iter().map(Group::total).sum();
        f.evidence.push(format!(
            "{} other command line(s) hold {rest} more",
            groups.len() - GROUPS_SHOWN
        ));
    }
    let mut top = holders.clone();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.pid.cmp(&b.0.pid)));
    if !top.is_empty() {
        let shown: Vec<String> = top
            .iter()
            .take(TOP_HOLDERS)
            .map(|(p, n)| format!("pid {} ({n})", p.pid))
            .collect();
        f.evidence
            .push(format!("top holders: {}", shown.join(", ")));
    }
    // What the count could not include.
    f.evidence.push(
        "not counted: named semaphores that no process holds open (macOS cannot list them; \
         only names given to --probe-names are checked), so the true use can only be higher"
            .into(),
    );
    let skipped = snapshot.visibility.skipped.len();
    if skipped > 0 {
        f.evidence.push(format!(
            "not counted: the semaphores of {skipped} process(es) that could not be inspected (other users' processes; run as root for a complete count)"
        ));
    }

    f.pids = groups
        .iter()
        .take(GROUPS_SHOWN)
        .flat_map(|g| g.members.iter().map(|(p, _)| p.pid))
        .collect();
    f.pids.sort_unstable();
    f.parent_pid = groups.first().and_then(Group::common_parent);
    f.recommendation = "Find what creates semaphores in every worker and create them once \
        (in the parent, passed to workers) or not at all: a multiprocessing.Event costs 5 \
        semaphores, a Lock or Semaphore 1, and spawned workers that build their own multiply \
        that by the pool size. Shut idle workers down. As a stopgap, raise the limit with \
        `sudo sysctl -w kern.posix.sem.max=N` (lost at reboot)."
        .into();
    vec![f]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;

    fn mac_worker(pid: i32, ppid: i32, n: usize) -> Process {
        let mut p = process(
            pid,
            ppid,
            &format!("python3.11 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle={}) --multiprocessing-fork", pid % 97),
        );
        p.psem_names = (0..n)
            .map(|i| format!("mp-{pid:04}{i:04}").into())
            .collect();
        p
    }

    fn mac_snapshot(workers: i32, per_worker: usize) -> Snapshot {
        let mut snap = macos_snapshot();
        snap.processes.push(process(500, 1, "python3.11 engine.py"));
        for i in 0..workers {
            snap.processes.push(mac_worker(1000 + i, 500, per_worker));
        }
        snap
    }

    #[test]
    fn five_per_worker_pattern_is_obvious() {
        let snap = mac_snapshot(1_900, 5);
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.kind, Kind::SemaphorePressure);
        assert_eq!(f.severity, Severity::Error, "9,500 of 10,000 is 95%");
        assert!(f.summary.contains("9500 of 10000"), "{}", f.summary);
        assert!(
            f.summary.contains("5 per process × 1900 process(es)"),
            "{}",
            f.summary
        );
        assert!(f.evidence.iter().any(|e| e
            .starts_with("5 per process × 1900 process(es) = 9500 semaphores (95% of the limit)")
            && e.contains("all children of pid 500 (python3.11 engine.py)")));
        assert_eq!(f.parent_pid, Some(500));
        assert_eq!(f.pids.len(), 1_900);
        assert!(f.evidence.iter().any(|e| e.contains("cannot list them")));
        assert_eq!(
            f.id,
            crate::analyze::finding_id(Kind::SemaphorePressure, b"kern.posix.sem.max")
        );
    }

    #[test]
    fn thresholds_and_silence_far_from_the_limit() {
        let config = Config::default();
        let sev = |workers| {
            check(&mac_snapshot(workers, 5), &config)
                .first()
                .map(|f| f.severity)
        };
        assert_eq!(sev(1_500), Some(Severity::Info)); // 75%
        assert_eq!(sev(1_600), Some(Severity::Warning)); // 80%
        assert_eq!(sev(1_000), Some(Severity::Info)); // 50%
        assert_eq!(sev(100), None); // 5%
        let strict = Config {
            sem_pressure_warning_percent: 10,
            sem_pressure_error_percent: 20,
            ..Config::default()
        };
        assert_eq!(
            check(&mac_snapshot(500, 5), &strict)[0].severity,
            Severity::Error
        );
    }

    #[test]
    fn linux_snapshots_have_no_limit_and_no_finding() {
        let mut snap = mac_snapshot(1_900, 5);
        snap.limits.sem_max = None;
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn what_was_not_seen_is_said() {
        let mut snap = mac_snapshot(1_700, 5);
        skip(&mut snap, 77, Some(0));
        snap.probed_semaphores
            .push(semleak_platform::ProbedSemaphore {
                name: "mp-orphan01".into(),
                exists: true,
            });
        let f = &check(&snap, &Config::default())[0];
        assert!(f.summary.contains("8501 of 10000"), "{}", f.summary);
        assert!(f
            .evidence
            .iter()
            .any(|e| e.contains("1 process(es) that could not be inspected")));
        assert!(f
            .evidence
            .iter()
            .any(|e| e.contains("1 of them are held by no visible process")));
    }

    #[test]
    fn shared_names_count_once_and_groups_mask_numbers() {
        let mut snap = macos_snapshot();
        let mut a = process(10, 1, "worker --id 1");
        let mut b = process(11, 1, "worker --id 2");
        a.psem_names = vec!["s1".into(), "s2".into(), "s2".into()];
        b.psem_names = vec!["s1".into(), "s3".into()];
        snap.processes = vec![a, b];
        snap.limits.sem_max = Some(4);
        let f = &check(&snap, &Config::default())[0];
        assert!(f.summary.starts_with("3 of 4"), "{}", f.summary);
        assert!(f
            .summary
            .contains("2 per process × 2 process(es) running `worker --id N`"));
        assert_eq!(
            f.parent_pid, None,
            "pid 1 is not a meaningful common parent"
        );
    }

    #[test]
    fn group_keys_mask_free_standing_numbers_only() {
        let key = |cmd: &str| group_key(&process(1, 0, cmd));
        assert_eq!(
            key("python3.11 -c spawn_main(tracker_fd=5, pipe_handle=11) --workers 1800 mp-123 x2"),
            "python3.11 -c spawn_main(tracker_fd=N, pipe_handle=N) --workers N mp-N x2"
        );
    }

    #[test]
    fn varying_counts_show_range_and_mode() {
        let mut snap = mac_snapshot(0, 0);
        for (i, n) in [5, 5, 5, 3, 7].into_iter().enumerate() {
            snap.processes.push(mac_worker(2000 + i as i32, 500, n));
        }
        snap.limits.sem_max = Some(30);
        let f = &check(&snap, &Config::default())[0];
        assert!(
            f.summary.contains("3–7 per process (mostly 5) × 5"),
            "{}",
            f.summary
        );
        assert!(f.evidence.iter().any(|e| {
            e == "top holders: pid 2004 (7), pid 2000 (5), pid 2001 (5), pid 2002 (5), pid 2003 (3)"
        }));
    }
}
