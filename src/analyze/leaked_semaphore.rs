//! `leaked_semaphore`: a named semaphore file that no process maps.

use semleak_platform::{Semaphore, Snapshot};

use super::creator::Creator;
use super::{age_secs, human_age, shell_quote, Confidence, Config, Finding, Kind, Severity};

pub fn check(snapshot: &Snapshot, _config: &Config) -> Vec<Finding> {
    snapshot
        .shm
        .semaphores
        .iter()
        .filter(|s| !s.unlinked && s.holders.is_empty())
        .map(|s| finding(snapshot, s))
        .collect()
}

/// Pids that were not inspected but could have the semaphore mapped: root,
/// its owner, anyone when the mode lets group or others open it, and anyone
/// whose uid is unknown.
fn uninspected_possible_holders(snapshot: &Snapshot, sem: &Semaphore) -> Vec<i32> {
    let shared = sem.meta.mode & 0o066 != 0;
    snapshot
        .visibility
        .skipped
        .iter()
        .filter(|s| match s.uid {
            None => true,
            Some(uid) => uid == 0 || uid == sem.meta.uid || shared,
        })
        .map(|s| s.pid)
        .collect()
}

pub(crate) fn finding(snapshot: &Snapshot, sem: &Semaphore) -> Finding {
    let hidden = uninspected_possible_holders(snapshot, sem);
    let well_formed = sem.value.is_some();
    let confidence = if !well_formed
        && sem
            .unreadable_reason
            .as_deref()
            .is_some_and(|r| !r.starts_with("cannot read"))
    {
        Confidence::Possible
    } else if hidden.is_empty() && !snapshot.visibility.nested_pid_namespace {
        Confidence::Certain
    } else {
        Confidence::Likely
    };
    let path = sem.path.as_bytes();
    let mut f = Finding::new(Kind::LeakedSemaphore, path, Severity::Error, confidence);
    let creator = Creator::infer(&sem.name);
    f.summary = format!("semaphore {} is held by no process", sem.name.to_lossy());
    f.resources = vec![sem.path.to_lossy()];
    let age = age_secs(snapshot, sem.meta.modified_at);
    f.evidence.push(format!(
        "no process maps it (matched by device {} and inode {} across {} inspected processes)",
        sem.meta.dev, sem.meta.inode, snapshot.visibility.processes_inspected
    ));
    f.evidence.push(format!(
        "last modified {} ago; owner uid {}, gid {}, mode {:04o}",
        human_age(age),
        sem.meta.uid,
        sem.meta.gid,
        sem.meta.mode
    ));
    match (sem.value, sem.waiters) {
        (Some(value), Some(waiters)) => {
            f.evidence.push(format!("value {value}, waiters {waiters}"));
            if waiters > 0 {
                f.evidence.push(format!(
                    "{waiters} waiter(s) recorded but nobody maps it: they died while blocked"
                ));
            }
        }
        _ => f.evidence.push(format!(
            "value unknown: {}",
            sem.unreadable_reason.as_deref().unwrap_or("not read")
        )),
    }
    f.evidence.push(creator.describe(snapshot));
    if !hidden.is_empty() {
        let shown: Vec<String> = hidden.iter().take(10).map(|p| p.to_string()).collect();
        f.evidence.push(format!(
            "not certain: {} process(es) that could hold it were not inspected (pids {}{}); run as root for a complete view",
            hidden.len(),
            shown.join(", "),
            if hidden.len() > 10 { ", …" } else { "" }
        ));
    }
    if snapshot.visibility.nested_pid_namespace {
        f.evidence.push(
            "not certain: semleak ran in a nested pid namespace, so processes outside it \
             (which may share this directory) were not seen"
                .into(),
        );
    }
    if confidence == Confidence::Possible {
        f.evidence.push(format!(
            "named like a semaphore but is not a well-formed glibc semaphore ({} bytes)",
            sem.meta.size
        ));
    }
    f.recommendation = creator.recommendation().to_string();
    f.cleanup = vec![format!("rm -- {}", shell_quote(path))];
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;

    #[test]
    fn unheld_semaphore_is_certain_when_everything_was_seen() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![sem("mp-ab12cd34", 7, &[]), sem("held", 8, &[100])];
        snap.processes = vec![process(100, 1, "python3 worker.py")];
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::LeakedSemaphore);
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[0].confidence, Confidence::Certain);
        assert_eq!(f[0].resources, vec!["/dev/shm/sem.mp-ab12cd34"]);
        assert_eq!(f[0].cleanup, vec!["rm -- /dev/shm/sem.mp-ab12cd34"]);
        assert!(f[0]
            .evidence
            .iter()
            .any(|e| e.contains("CPython multiprocessing")));
        assert!(f[0]
            .evidence
            .iter()
            .any(|e| e.contains("value 1, waiters 0")));
    }

    #[test]
    fn hidden_processes_lower_confidence() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![sem("x", 7, &[])];
        skip(&mut snap, 555, Some(0));
        let f = check(&snap, &Config::default());
        assert_eq!(f[0].confidence, Confidence::Likely);
        assert!(f[0].evidence.iter().any(|e| e.contains("555")));
    }

    #[test]
    fn hidden_process_of_another_user_cannot_hold_a_private_semaphore() {
        let mut snap = snapshot();
        let mut s = sem("x", 7, &[]);
        s.meta.uid = 1000;
        s.meta.mode = 0o600;
        snap.shm.semaphores = vec![s];
        skip(&mut snap, 555, Some(1001));
        assert_eq!(
            check(&snap, &Config::default())[0].confidence,
            Confidence::Certain
        );
        // …but it could if the mode lets others open it.
        snap.shm.semaphores[0].meta.mode = 0o666;
        assert_eq!(
            check(&snap, &Config::default())[0].confidence,
            Confidence::Likely
        );
    }

    #[test]
    fn unlinked_and_held_are_not_leaks() {
        let mut snap = snapshot();
        let mut s = sem("gone", 9, &[100]);
        s.unlinked = true;
        snap.shm.semaphores = vec![s, sem("held", 8, &[100])];
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn odd_sized_file_is_only_possible() {
        let mut snap = snapshot();
        let mut s = sem("odd", 7, &[]);
        s.value = None;
        s.waiters = None;
        s.meta.size = 5;
        s.unreadable_reason = Some("5 bytes, not a 32-byte glibc semaphore".into());
        snap.shm.semaphores = vec![s];
        let f = check(&snap, &Config::default());
        assert_eq!(f[0].confidence, Confidence::Possible);
    }

    #[test]
    fn loky_creator_liveness() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![sem("loky-4242-abcdefgh", 7, &[])];
        let f = check(&snap, &Config::default());
        assert!(f[0]
            .evidence
            .iter()
            .any(|e| e.contains("pid 4242, which is gone")));
        snap.processes = vec![process(4242, 1, "python3 -m loky")];
        let f = check(&snap, &Config::default());
        assert!(f[0].evidence.iter().any(|e| e.contains("still running")));
    }

    #[test]
    fn odd_names_get_quoted_cleanup() {
        let mut snap = snapshot();
        let mut s = sem("x", 7, &[]);
        s.name = semleak_platform::RawName(b"a\nb".to_vec());
        s.path = semleak_platform::RawName(b"/dev/shm/sem.a\nb".to_vec());
        snap.shm.semaphores = vec![s];
        let f = check(&snap, &Config::default());
        assert_eq!(f[0].cleanup, vec![r"rm -- $'/dev/shm/sem.a\x0ab'"]);
    }
}
