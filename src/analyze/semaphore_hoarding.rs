//! `semaphore_hoarding`: one process holding many named semaphores — on
//! Linux mapped (`/dev/shm/sem.*`, matched by device and inode), on macOS
//! held open (`PROX_FDTYPE_PSEM` descriptors). Read through the shared
//! attribution of [`super::sem_holders`].

use semleak_platform::Snapshot;

use super::sem_holders::SemTable;
use super::{said, Confidence, Config, Finding, Kind, Severity};
use crate::analyze::process_label;

pub fn check(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    let table = SemTable::of(snapshot);
    let macos = snapshot.host.os == "macos";
    let mut out: Vec<Finding> = table
        .held
        .iter()
        .filter(|(_, sems)| sems.len() >= config.hoard_threshold.max(1))
        .map(|(&pid, sems)| {
            let proc = snapshot.process(pid);
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
            let verb = if macos { "holds" } else { "maps" };
            f.headline(format!("pid {pid} {verb} {} named semaphores", sems.len()));
            f.pids = vec![pid];
            // Every one: the JSON carries them all, the table says how many
            // it leaves out.
            f.subjects = sems
                .iter()
                .map(|&i| table.entries[i].subject.clone())
                .collect();
            let unlinked = sems.iter().filter(|&&i| !table.entries[i].named).count();
            f.evidence = said(vec![
                format!("process: {label}"),
                format!(
                    "{} semaphores {} ({} still named, {} unlinked); threshold {}",
                    sems.len(),
                    if macos { "held open" } else { "mapped" },
                    sems.len() - unlinked,
                    unlinked,
                    config.hoard_threshold
                ),
            ]);
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
        assert!(f[0].summary_text().contains("5 named semaphores"));
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn macos_holders_hoard_too() {
        let mut snap = macos_snapshot();
        let mut p = process(10, 1, "python3 app.py");
        p.psem_names = (0..120).map(|i| format!("/mp-{i:08}").into()).collect();
        p.psem_names.push("/mp-00000000".into()); // a second descriptor
        snap.processes = vec![p];
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1, "120 distinct names held open");
        assert_eq!(f[0].summary_text(), "pid 10 holds 120 named semaphores");
        assert_eq!(f[0].resources()[0], "/mp-00000000");
        assert!(f[0].evidence_lines()[1].starts_with("120 semaphores held open (120 still named"));
    }
}
