//! `semaphore_pressure`: named semaphores in use close to the OS limit
//! (macOS `kern.posix.sem.max`, default 10,000; past it sem_open fails with
//! ENOSPC). The limit counts *names* (`psem_cache_add` in XNU's
//! `posix_sem.c`), so a semaphore that was unlinked but is still held no
//! longer counts. Holders are grouped as siblings with one command line
//! ([`super::sem_holders`], shared with `per_worker_semaphores`), and every
//! semaphore is attributed to one holder, so "5 per worker × 1,800
//! workers" reads at a glance and a parent's semaphores passed to its
//! workers are not counted twice.
//!
//! macOS cannot count semaphores: the figure is those held open by the
//! processes we could inspect (plus probed names that exist unheld), a
//! lower bound, and the evidence says what was not seen.

use std::collections::{BTreeSet, HashSet};

use semleak_platform::Snapshot;

use super::sem_holders::{
    cut, per_process, sibling_groups, unlinked_names, SemTable, SiblingGroup,
};
use super::{Confidence, Config, Finding, Kind, Severity, Subject};
use crate::analyze::process_label;

/// Groups of sibling holders shown in the evidence.
const GROUPS_SHOWN: usize = 3;
/// Single processes shown as top holders.
const TOP_HOLDERS: usize = 5;

/// Distinct semaphore names counted against the limit: held by a visible
/// process and not found unlinked when probed, or probed and found to
/// exist.
pub fn names_in_use(snapshot: &Snapshot) -> BTreeSet<&[u8]> {
    let unlinked = unlinked_names(snapshot);
    let mut names: BTreeSet<&[u8]> = snapshot
        .processes
        .iter()
        .flat_map(|p| p.psem_names.iter().map(|n| n.as_bytes()))
        .filter(|n| !unlinked.contains(n))
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

/// A sibling group's counted semaphores: what each member owns and is
/// still named.
struct Counted<'g, 'a> {
    group: &'g SiblingGroup<'a>,
    /// (pid, counted semaphores it owns), members owning none left out.
    members: Vec<(i32, usize)>,
    /// Of those, also held by other processes (passed to children).
    shared: usize,
}

impl Counted<'_, '_> {
    fn total(&self) -> usize {
        self.members.iter().map(|(_, n)| n).sum()
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

    let table = SemTable::of(snapshot);
    let groups = sibling_groups(snapshot, &table);
    let mut counted: Vec<Counted> = groups
        .iter()
        .map(|g| {
            let mut shared = 0;
            let members = g
                .members
                .iter()
                .filter_map(|m| {
                    let named: Vec<usize> = m
                        .owned
                        .iter()
                        .copied()
                        .filter(|&i| table.entries[i].named)
                        .collect();
                    shared += named
                        .iter()
                        .filter(|&&i| table.entries[i].holders.len() > 1)
                        .count();
                    (!named.is_empty()).then_some((m.process.pid, named.len()))
                })
                .collect();
            Counted {
                group: g,
                members,
                shared,
            }
        })
        .filter(|c| !c.members.is_empty())
        .collect();
    counted.sort_by(|a, b| {
        b.total()
            .cmp(&a.total())
            .then(a.group.parent.cmp(&b.group.parent))
            .then_with(|| a.group.key.cmp(&b.group.key))
    });
    let holders = table.held.len();
    let unlinked_held = table.entries.iter().filter(|e| !e.named).count();

    let mut f = Finding::new(
        Kind::SemaphorePressure,
        b"kern.posix.sem.max",
        severity,
        Confidence::Certain,
    );
    f.subjects = vec![Subject::Limit("kern.posix.sem.max".into())];
    let headline = counted.first().map(|c| {
        format!(
            "; {} per process × {} process(es) running `{}`",
            per_process(c.members.iter().map(|(_, n)| *n)),
            c.members.len(),
            cut(&c.group.key, 60)
        )
    });
    f.headline(format!(
        "{in_use} of {max} POSIX semaphores in use ({pct:.0}% of kern.posix.sem.max){}",
        headline.unwrap_or_default()
    ));
    f.say(format!(
        "{in_use} distinct semaphore names in use, held open by {holders} visible process(es) or found by probing; the limit kern.posix.sem.max is {max} names; sem_open fails with ENOSPC (errno 28) once it is reached"
    ));
    if unlinked_held > 0 {
        f.say(format!(
            "{unlinked_held} more held, unlinked, not counted: their names were removed (sem_unlink, or Python's fork context), so they live on for their holders but no longer use up the limit"
        ));
    }
    let held_named: HashSet<&[u8]> = table
        .entries
        .iter()
        .filter(|e| e.named)
        .map(|e| e.name.as_slice())
        .collect();
    let probed_unheld = snapshot
        .probed_semaphores
        .iter()
        .filter(|s| s.exists && !held_named.contains(s.name.as_bytes()))
        .count();
    if probed_unheld > 0 {
        f.say(format!(
            "{probed_unheld} of them are held by no visible process but exist (found by probing their names)"
        ));
    }
    for c in counted.iter().take(GROUPS_SHOWN) {
        let g = c.group;
        let example = process_label(snapshot, c.members[0].0);
        let mut line = format!(
            "{} per process × {} process(es) = {} semaphores ({:.0}% of the limit): {example}",
            per_process(c.members.iter().map(|(_, n)| *n)),
            c.members.len(),
            c.total(),
            c.total() as f64 * 100.0 / max as f64,
        );
        if c.shared > 0 {
            line.push_str(&format!(
                "; {} of them also held by other processes (passed to children), counted here once",
                c.shared
            ));
        }
        if c.members.len() > 1 && g.parent > 1 {
            line.push_str(&format!(
                "; all children of {}",
                process_label(snapshot, g.parent)
            ));
        }
        f.say(line);
    }
    if counted.len() > GROUPS_SHOWN {
        let rest: usize = counted[GROUPS_SHOWN..].iter().map(Counted::total).sum();
        f.say(format!(
            "{} other group(s) of processes hold {rest} more",
            counted.len() - GROUPS_SHOWN
        ));
    }
    let mut top: Vec<(i32, usize)> = table
        .held
        .iter()
        .map(|(pid, sems)| (*pid, sems.len()))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if !top.is_empty() {
        let shown: Vec<String> = top
            .iter()
            .take(TOP_HOLDERS)
            .map(|(pid, n)| format!("pid {pid} ({n})"))
            .collect();
        f.say(format!("top holders: {}", shown.join(", ")));
    }
    // What the count could not include.
    f.say(
        "not counted: named semaphores that no process holds open (macOS cannot list them; \
         only names given to --probe-names are checked), so the true use can only be higher"
            .into(),
    );
    let skipped = snapshot.visibility.skipped.len();
    if skipped > 0 {
        f.say(format!(
            "not counted: the semaphores of {skipped} process(es) that could not be inspected (other users' processes; run as root for a complete count)"
        ));
    }

    f.pids = counted
        .iter()
        .take(GROUPS_SHOWN)
        .flat_map(|c| c.members.iter().map(|(pid, _)| *pid))
        .collect();
    f.pids.sort_unstable();
    f.parent_pid = counted
        .first()
        .filter(|c| c.members.len() > 1)
        .map(|c| c.group.parent)
        .filter(|&pp| pp > 1);
    f.recommendation = "Find what creates semaphores in every worker and create them once \
        (in the parent, passed to workers) or not at all: a multiprocessing.Event costs 5 \
        semaphores, a Lock or Semaphore 1, and spawned workers that build their own multiply \
        that by the pool size (the per_worker_semaphores finding names such workers). Shut \
        idle workers down. As a stopgap, raise the limit with \
        `sudo sysctl -w kern.posix.sem.max=N` (lost at reboot)."
        .into();
    vec![f]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;
    use semleak_platform::{ProbedSemaphore, Process};

    fn mac_worker(pid: i32, ppid: i32, n: usize) -> Process {
        let mut p = process(
            pid,
            ppid,
            &format!("python3.11 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle={}) --multiprocessing-fork", pid % 97),
        );
        p.psem_names = (0..n)
            .map(|i| format!("/mp-{pid:04}{i:04}").into())
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
        assert!(
            f.summary_text().contains("9500 of 10000"),
            "{}",
            f.summary_text()
        );
        assert!(
            f.summary_text()
                .contains("5 per process × 1900 process(es)"),
            "{}",
            f.summary_text()
        );
        assert!(f.evidence_lines().iter().any(|e| e
            .starts_with("5 per process × 1900 process(es) = 9500 semaphores (95% of the limit)")
            && e.contains("all children of pid 500 (python3.11 engine.py)")));
        assert_eq!(f.parent_pid, Some(500));
        assert_eq!(f.pids.len(), 1_900);
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("cannot list them")));
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
                name: "/mp-orphan01".into(),
                exists: true,
            });
        let f = &check(&snap, &Config::default())[0];
        assert!(
            f.summary_text().contains("8501 of 10000"),
            "{}",
            f.summary_text()
        );
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("1 process(es) that could not be inspected")));
        assert!(f
            .evidence_lines()
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
        assert!(
            f.summary_text().starts_with("3 of 4"),
            "{}",
            f.summary_text()
        );
        // s1 is attributed to the lower pid only: 2 + 1, not 2 + 2.
        assert!(
            f.summary_text()
                .contains("1–2 (mostly 1) per process × 2 process(es) running `worker --id N`"),
            "{}",
            f.summary_text()
        );
        assert_eq!(
            f.parent_pid, None,
            "pid 1 is not a meaningful common parent"
        );
    }

    #[test]
    fn unlinked_held_names_are_not_counted() {
        // fork context / sem_open+sem_unlink: 1,000 workers each hold 5
        // semaphores whose names are gone, and 2 named ones in all.
        let mut snap = mac_snapshot(1_000, 5);
        snap.probed_semaphores = snap
            .processes
            .iter()
            .flat_map(|p| p.psem_names.iter())
            .map(|n| ProbedSemaphore {
                name: n.clone(),
                exists: false,
            })
            .collect();
        snap.processes[0].psem_names = vec!["/named-1".into(), "/named-2".into()];
        snap.limits.sem_max = Some(4);
        let f = &check(&snap, &Config::default())[0];
        assert!(
            f.summary_text().starts_with("2 of 4 "),
            "{}",
            f.summary_text()
        );
        assert!(
            f.evidence_lines()
                .iter()
                .any(|e| e.starts_with("5000 more held, unlinked, not counted")),
            "{:#?}",
            f.evidence_lines()
        );
    }

    #[test]
    fn parent_and_workers_sharing_are_not_counted_twice() {
        // The parent passes one Event (5 semaphores) to each of 8 workers;
        // each worker also makes one of its own. 80 names are in use.
        let mut snap = macos_snapshot();
        let mut parent = process(500, 1, "python3.11 engine.py");
        for w in 0..8 {
            let mut worker = mac_worker(1000 + w, 500, 5);
            let passed: Vec<semleak_platform::RawName> = (0..5)
                .map(|k| format!("/mp-pass{w:02}{k:02}").into())
                .collect();
            parent.psem_names.extend(passed.iter().cloned());
            worker.psem_names.extend(passed);
            snap.processes.push(worker);
        }
        snap.processes.push(parent);
        snap.limits.sem_max = Some(90);
        let f = &check(&snap, &Config::default())[0];
        assert!(
            f.summary_text().starts_with("80 of 90 "),
            "{}",
            f.summary_text()
        );
        let lines = f.evidence_lines();
        let groups: Vec<&String> = lines
            .iter()
            .filter(|e| e.contains(" per process × "))
            .collect();
        assert_eq!(groups.len(), 2, "{groups:#?}");
        assert!(
            groups[0]
                .starts_with("40 per process × 1 process(es) = 40 semaphores (44% of the limit)")
                && groups[0].contains("40 of them also held by other processes"),
            "{}",
            groups[0]
        );
        assert!(
            groups[1]
                .starts_with("5 per process × 8 process(es) = 40 semaphores (44% of the limit)"),
            "{}",
            groups[1]
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
            f.summary_text().contains("3–7 (mostly 5) per process × 5"),
            "{}",
            f.summary_text()
        );
        assert!(f.evidence_lines().iter().any(|e| {
            e == "top holders: pid 2004 (7), pid 2000 (5), pid 2001 (5), pid 2002 (5), pid 2003 (3)"
        }));
    }
}
