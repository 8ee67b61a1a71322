//! `semaphore_hoarding`: one process mapping many semaphores — the
//! "N spurious semaphores in every worker" pattern.

use std::collections::HashMap;

use semleak_platform::Snapshot;

use super::{Confidence, Config, Finding, Kind, Severity};
use crate::analyze::process_label;

pub fn check(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    let mut per_pid: HashMap<i32, Vec<&semleak_platform::Semaphore>> = HashMap::new();
    for s in &snapshot.shm.semaphores {
        for &pid in &s.holders {
            per_pid.entry(pid).or_default().push(s);
        }
    }
    let mut out: Vec<Finding> = per_pid
        .into_iter()
        .filter(|(_, sems)| sems.len() >= config.hoard_threshold.max(1))
        .map(|(pid, sems)| {
            let proc = snapshot.processes.iter().find(|p| p.pid == pid);
            let label = process_label(snapshot, pid);
            let subject = format!(
                "{pid}:{}:{label}",
                proc.map(|p| p.start_ticks).unwrap_or_default()
            );
            let mut f = Finding::new(
                Kind::SemaphoreHoarding,
                subject.as_bytes(),
                Severity::Warning,
                Confidence::Certain,
            );
            f.summary = format!("pid {pid} maps {} named semaphores", sems.len());
            f.pids = vec![pid];
            f.resources = sems.iter().take(20).map(|s| s.path.to_lossy()).collect();
            let unlinked = sems.iter().filter(|s| s.unlinked).count();
            f.evidence = vec![
                format!("process: {label}"),
                format!(
                    "{} semaphores mapped ({} still named, {} unlinked); threshold {}",
                    sems.len(),
                    sems.len() - unlinked,
                    unlinked,
                    config.hoard_threshold
                ),
            ];
            f.recommendation = "Find what creates a semaphore per task or per worker and \
                create it once (a multiprocessing.Event costs 5 semaphores, a Lock 1); close \
                objects you no longer need. Semaphores count against the system limit \
                (macOS kern.posix.sem.max) and /dev/shm inodes."
                .into();
            f
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;

    #[test]
    fn threshold_is_inclusive_and_configurable() {
        let mut snap = snapshot();
        snap.processes = vec![
            process(10, 1, "python3 app.py"),
            process(11, 1, "python3 small.py"),
        ];
        snap.shm.semaphores = (0..5)
            .map(|i| sem(&format!("s{i}"), 100 + i, &[10]))
            .chain([sem("t", 200, &[11])])
            .collect();
        let config = Config {
            hoard_threshold: 5,
            ..Config::default()
        };
        let f = check(&snap, &config);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].pids, vec![10]);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].summary.contains("5 named semaphores"));
        assert!(check(&snap, &Config::default()).is_empty());
    }
}
