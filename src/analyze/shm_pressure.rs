//! `shm_pressure`: the shared-memory filesystem is close to its size or
//! inode limit (a full /dev/shm makes sem_open fail with ENOSPC).

use semleak_platform::Snapshot;

use super::{said, Confidence, Config, Finding, Kind, Severity, Subject};

pub fn check(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    let Some(usage) = &snapshot.shm.usage else {
        return Vec::new();
    };
    let pct = |used: u64, total: u64| -> Option<f64> {
        (total > 0).then(|| used as f64 * 100.0 / total as f64)
    };
    let bytes_used = usage.bytes_total.saturating_sub(usage.bytes_free);
    let inodes_used = usage.inodes_total.saturating_sub(usage.inodes_free);
    let limit = f64::from(config.shm_pressure_percent);
    let mut evidence = Vec::new();
    if let Some(p) = pct(bytes_used, usage.bytes_total).filter(|p| *p > limit) {
        evidence.push(format!(
            "bytes: {bytes_used} of {} used ({p:.0}%)",
            usage.bytes_total
        ));
    }
    if let Some(p) = pct(inodes_used, usage.inodes_total).filter(|p| *p > limit) {
        evidence.push(format!(
            "inodes: {inodes_used} of {} used ({p:.0}%)",
            usage.inodes_total
        ));
    }
    if evidence.is_empty() {
        return Vec::new();
    }
    let dir = &snapshot.shm.dir;
    let mut f = Finding::new(
        Kind::ShmPressure,
        dir.as_bytes(),
        Severity::Warning,
        Confidence::Certain,
    );
    f.headline(format!(
        "{dir} is over {}% full",
        config.shm_pressure_percent
    ));
    f.subjects = vec![Subject::Directory(dir.clone())];
    f.evidence = said(evidence);
    f.say(format!(
        "{} semaphores and {} other entries in {dir}",
        snapshot
            .shm
            .semaphores
            .iter()
            .filter(|s| !s.unlinked)
            .count(),
        snapshot.shm.residents.len()
    ));
    f.recommendation = format!(
        "Remove leaked entries (see the leaked_semaphore findings, or `semleak clean`), then \
         find what keeps creating them; if the load is legitimate, enlarge the tmpfs \
         (`mount -o remount,size=…,nr_inodes=… {dir}`, or docker --shm-size)."
    );
    vec![f]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;
    use semleak_platform::FsUsage;

    #[test]
    fn warns_above_threshold_on_bytes_or_inodes() {
        let mut snap = snapshot();
        snap.shm.usage = Some(FsUsage {
            bytes_total: 1000,
            bytes_free: 500,
            inodes_total: 100,
            inodes_free: 10,
        });
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert!(f[0].evidence_lines()[0].contains("inodes: 90 of 100"));
        snap.shm.usage.as_mut().unwrap().inodes_free = 50;
        assert!(check(&snap, &Config::default()).is_empty());
        // Unlimited inodes (0 total) never divide by zero.
        snap.shm.usage.as_mut().unwrap().inodes_total = 0;
        snap.shm.usage.as_mut().unwrap().inodes_free = 0;
        assert!(check(&snap, &Config::default()).is_empty());
    }
}
