//! `leaked_semaphore`: a named semaphore file that no process maps.

use std::collections::{BTreeMap, HashMap};

use semleak_platform::{Process, Semaphore, Snapshot, DEFAULT_SHM_DIR};

use super::creator::Creator;
use super::{
    age_secs, finding_id, human_age_ago, shell_quote, CleanupStep, Confidence, Config, Evidence,
    Finding, Group, Headline, Kind, Severity, Subject,
};

pub fn check(snapshot: &Snapshot, _config: &Config) -> Vec<Finding> {
    let hidden = uninspected_possible_holders(snapshot);
    let sems = unheld(snapshot);
    let keys = group_keys(&sems);
    // One finding per group: a killed pool leaves many semaphores with
    // random names, one problem with one fix.
    let mut groups: BTreeMap<&GroupKey, Vec<&Semaphore>> = BTreeMap::new();
    let mut out = Vec::new();
    for (sem, key) in sems.iter().zip(&keys) {
        match key {
            Some(key) => groups.entry(key).or_default().push(sem),
            None => out.push(finding_with(snapshot, sem, &hidden)),
        }
    }
    for (key, members) in groups {
        out.push(group_finding(snapshot, key, &members, &hidden));
    }
    out
}

/// The semaphores `check` reports: named and mapped by no process.
pub fn unheld(snapshot: &Snapshot) -> Vec<&Semaphore> {
    snapshot
        .shm
        .semaphores
        .iter()
        .filter(|s| !s.unlinked && s.holders.is_empty())
        .collect()
}

/// What gathers unheld semaphores into one finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKey {
    /// A library that names its semaphores randomly per run.
    Family(&'static str),
    /// Two or more names that differ only after their last `-`, `_` or `.`
    /// (`app-lock-1`, `app-lock-2`): one creator's batch.
    Prefix(Vec<u8>),
}

/// The creator family of a library that names its semaphores randomly per
/// run. A file that is not a well-formed semaphore stays on its own (its
/// confidence differs).
fn family_of(sem: &Semaphore) -> Option<&'static str> {
    sem.value?;
    Creator::infer(&sem.name).family()
}

/// `app-lock-` of `app-lock-17`: the name up to its last separator, when
/// something follows it and the name can be shown safely.
fn name_prefix(sem: &Semaphore) -> Option<&[u8]> {
    if sem.value.is_none() || shell_quote(sem.path.as_bytes()).is_none() {
        return None;
    }
    let name = sem.name.as_bytes();
    let cut = name.iter().rposition(|b| matches!(b, b'-' | b'_' | b'.'))?;
    let (prefix, rest) = name.split_at(cut + 1);
    (prefix.len() >= 3 && !rest.is_empty()).then_some(prefix)
}

/// The group of each of `sems` (all unheld), or `None` for one reported on
/// its own: a creator family always groups; a name prefix only when two or
/// more of `sems` share it.
pub fn group_keys(sems: &[&Semaphore]) -> Vec<Option<GroupKey>> {
    // Each name's family or prefix once: the prefix check quotes the path.
    let parts: Vec<Result<&'static str, Option<&[u8]>>> = sems
        .iter()
        .map(|sem| family_of(sem).ok_or_else(|| name_prefix(sem)))
        .collect();
    let mut prefixes: HashMap<&[u8], usize> = HashMap::new();
    for prefix in parts.iter().filter_map(|p| p.err().flatten()) {
        *prefixes.entry(prefix).or_default() += 1;
    }
    parts
        .into_iter()
        .map(|part| match part {
            Ok(family) => Some(GroupKey::Family(family)),
            Err(prefix) => {
                let prefix = prefix?;
                (prefixes[prefix] >= 2).then(|| GroupKey::Prefix(prefix.to_vec()))
            }
        })
        .collect()
}

/// The id of the finding that names a semaphore of group `key` (or, with
/// none, the semaphore alone): for a group the family or name prefix and
/// the directory, never the random part of names, so a baseline made from
/// one run matches the next run's same leak; otherwise the path.
pub fn id_for(sem: &Semaphore, key: Option<&GroupKey>, dir: &str) -> String {
    finding_id(Kind::LeakedSemaphore, &subject(sem, key, dir))
}

/// What [`id_for`] hashes.
pub fn subject(sem: &Semaphore, key: Option<&GroupKey>, dir: &str) -> Vec<u8> {
    match key {
        Some(GroupKey::Family(family)) => format!("family:{family}\0{dir}").into_bytes(),
        Some(GroupKey::Prefix(prefix)) => {
            [b"prefix:", prefix.as_slice(), b"\0", dir.as_bytes()].concat()
        }
        None => sem.path.as_bytes().to_vec(),
    }
}

/// One finding for every unheld semaphore of one group.
fn group_finding(
    snapshot: &Snapshot,
    key: &GroupKey,
    sems: &[&Semaphore],
    hidden: &[i32],
) -> Finding {
    let mut f = finding_with(snapshot, sems[0], hidden);
    f.id = id_for(sems[0], Some(key), &snapshot.shm.dir);
    if sems.len() == 1 {
        return f;
    }
    let creator = Creator::infer(&sems[0].name);
    f.summary = Headline::Unheld(match key {
        GroupKey::Family(_) => Group::Family(creator.label().to_string()),
        GroupKey::Prefix(prefix) => Group::Prefix(String::from_utf8_lossy(prefix).into_owned()),
    });
    f.subjects = sems.iter().map(|s| file_subject(s)).collect();
    let caveats: Vec<Evidence> = f
        .evidence
        .iter()
        .filter(|e| e.is_caveat())
        .cloned()
        .collect();
    f.evidence = vec![Evidence::NoneOfThemMapped {
        inspected: snapshot.visibility.processes_inspected,
    }];
    f.say(batches(snapshot, sems));
    let waiting = sems.iter().filter(|s| s.waiters.unwrap_or(0) > 0).count();
    if waiting > 0 {
        f.say(format!(
            "{waiting} of them record waiters but nobody maps them: they died while blocked"
        ));
    }
    let mut uids: Vec<u32> = sems.iter().map(|s| s.meta.uid).collect();
    uids.sort_unstable();
    uids.dedup();
    let uids: Vec<String> = uids.iter().map(u32::to_string).collect();
    f.say(format!("owner uid {}", uids.join(", ")));
    f.say(match creator {
        Creator::Loky { .. } => loky_creators(snapshot, sems),
        _ => creator.describe(snapshot),
    });
    f.evidence.extend(caveats);
    f.cleanup = sems.iter().map(|s| cleanup_step(snapshot, s)).collect();
    f
}

/// A semaphore file as a finding's subject.
pub fn file_subject(sem: &Semaphore) -> Subject {
    Subject::SemaphoreFile {
        dev: sem.meta.dev,
        inode: sem.meta.inode,
        path: sem.path.clone(),
        name: sem.name.clone(),
    }
}

/// When the group's semaphores were made, in batches (made within a minute
/// of each other: usually one pool each).
fn batches(snapshot: &Snapshot, sems: &[&Semaphore]) -> String {
    const BATCH_GAP_SECS: i64 = 60;
    let mut times: Vec<i64> = sems.iter().map(|s| s.meta.modified_at).collect();
    times.sort_unstable();
    let batches = 1 + times
        .windows(2)
        .filter(|w| w[1].saturating_sub(w[0]) > BATCH_GAP_SECS)
        .count();
    let ago = |t: i64| human_age_ago(age_secs(snapshot, t), t);
    format!(
        "last modified from {} to {}, in {batches} batch(es) made within a minute of \
         each other (usually one pool each)",
        ago(times[0]),
        ago(times[times.len() - 1])
    )
}

/// loky names carry the creating pid: which of them are still running.
fn loky_creators(snapshot: &Snapshot, sems: &[&Semaphore]) -> String {
    let mut pids: Vec<i32> = sems
        .iter()
        .filter_map(|s| match Creator::infer(&s.name) {
            Creator::Loky { pid } => Some(pid),
            _ => None,
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let shown: Vec<String> = pids
        .iter()
        .take(10)
        .map(|pid| {
            let alive = snapshot
                .processes
                .iter()
                .any(|p| p.pid == *pid && !p.is_zombie());
            format!("{pid} ({})", if alive { "running" } else { "gone" })
        })
        .collect();
    format!(
        "creator: loky (joblib / ProcessPoolExecutor backend), created by pid(s) {}{}",
        shown.join(", "),
        if pids.len() > 10 { ", …" } else { "" }
    )
}

/// Leaked-semaphore findings that name the same thing (a group)
/// made into one, as `check` does: used by `run`, which builds one finding
/// per semaphore with its own run evidence. The weakest confidence and the
/// highest severity of the merged findings win.
pub fn merge_same_id(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut members: Vec<usize> = Vec::new();
    for f in findings {
        let Some(&i) = at.get(&f.id) else {
            at.insert(f.id.clone(), out.len());
            out.push(f);
            members.push(1);
            continue;
        };
        let into = &mut out[i];
        members[i] += 1;
        into.severity = into.severity.max(f.severity);
        into.confidence = into.confidence.min(f.confidence);
        into.subjects.extend(f.subjects);
        for pid in f.pids {
            if !into.pids.contains(&pid) {
                into.pids.push(pid);
            }
        }
        // Only what every member says holds for the group (inodes and
        // values differ per semaphore).
        into.evidence.retain(|e| f.evidence.contains(e));
        into.cleanup.extend(f.cleanup);
    }
    // The headline counts the subjects, so a merged finding says how many.
    for (f, n) in out.iter_mut().zip(members) {
        if n >= 2 {
            f.evidence
                .insert(0, Evidence::NoneOfManyMapped { count: n });
        }
    }
    out
}

/// Pids that were not inspected and so could have any semaphore mapped.
/// Owners and modes prove nothing: a process can map a file and then change
/// its uids, receive the descriptor over a socket, or run with mixed uids.
/// Only what the kernel shows excludes one: a zombie or a kernel thread has
/// no user mappings at all.
pub fn uninspected_possible_holders(snapshot: &Snapshot) -> Vec<i32> {
    let by_pid: HashMap<i32, &Process> = snapshot.processes.iter().map(|p| (p.pid, p)).collect();
    let mut pids: Vec<i32> = snapshot
        .visibility
        .skipped
        .iter()
        .filter(|s| {
            by_pid
                .get(&s.pid)
                .is_none_or(|p| !p.is_zombie() && !p.is_kernel_thread())
        })
        .map(|s| s.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The finding for one unheld semaphore (used by `run` for a single one).
pub(crate) fn finding(snapshot: &Snapshot, sem: &Semaphore) -> Finding {
    finding_with(snapshot, sem, &uninspected_possible_holders(snapshot))
}

fn finding_with(snapshot: &Snapshot, sem: &Semaphore, hidden: &[i32]) -> Finding {
    let well_formed = sem.value.is_some();
    let confidence = if !well_formed
        && sem
            .unreadable_reason
            .as_deref()
            .is_some_and(|r| !r.starts_with("cannot read"))
    {
        Confidence::Possible
    } else if hidden.is_empty()
        && !snapshot.visibility.nested_pid_namespace
        && !snapshot.visibility.proc_root_mismatch
    {
        Confidence::Certain
    } else {
        Confidence::Likely
    };
    let path = sem.path.as_bytes();
    let mut f = Finding::new(Kind::LeakedSemaphore, path, Severity::Error, confidence);
    let creator = Creator::infer(&sem.name);
    f.summary = Headline::Unheld(Group::One(sem.name.to_lossy()));
    f.subjects = vec![file_subject(sem)];
    let age = age_secs(snapshot, sem.meta.modified_at);
    f.evidence.push(Evidence::NoProcessMaps {
        dev: sem.meta.dev,
        inode: sem.meta.inode,
        inspected: snapshot.visibility.processes_inspected,
    });
    f.say(format!(
        "last modified {}; owner uid {}, gid {}, mode {:04o}",
        human_age_ago(age, sem.meta.modified_at),
        sem.meta.uid,
        sem.meta.gid,
        sem.meta.mode
    ));
    match (sem.value, sem.waiters) {
        (Some(value), Some(waiters)) => {
            f.say(format!("value {value}, waiters {waiters}"));
            if waiters > 0 {
                f.say(format!(
                    "{waiters} waiter(s) recorded but nobody maps it: they died while blocked"
                ));
            }
        }
        _ => f.say(format!(
            "value unknown: {}",
            sem.unreadable_reason.as_deref().unwrap_or("not read")
        )),
    }
    f.say(creator.describe(snapshot));
    if !hidden.is_empty() {
        f.evidence.push(Evidence::Uninspected {
            pids: hidden.to_vec(),
            whatever_uid: true,
            advice: super::view_advice(snapshot),
        });
    }
    if snapshot.visibility.nested_pid_namespace {
        f.evidence.push(Evidence::NestedPidNamespace);
    }
    if snapshot.visibility.proc_root_mismatch {
        f.evidence.push(Evidence::ProcRootMismatch);
    }
    if confidence == Confidence::Possible {
        f.say(format!(
            "named like a semaphore but is not a well-formed glibc semaphore ({} bytes)",
            sem.meta.size
        ));
    }
    f.recommendation = creator.recommendation().to_string();
    let step = cleanup_step(snapshot, sem);
    if !matches!(step, CleanupStep::RemoveFile { .. }) {
        f.evidence.push(Evidence::UnsafeName);
    }
    f.cleanup = vec![step];
    f
}

/// `rm -- PATH`, quoted for any POSIX shell; for a path that cannot be shown
/// safely (control or invisible characters, not UTF-8), a `semleak clean`
/// that picks the file by inode instead, so no part of the name is pasted
/// into a shell.
fn cleanup_step(snapshot: &Snapshot, sem: &Semaphore) -> CleanupStep {
    if shell_quote(sem.path.as_bytes()).is_some() {
        return CleanupStep::RemoveFile {
            dev: sem.meta.dev,
            inode: sem.meta.inode,
            path: sem.path.clone(),
        };
    }
    let shm_dir = if snapshot.shm.dir == DEFAULT_SHM_DIR {
        None
    } else {
        match shell_quote(snapshot.shm.dir.as_bytes()) {
            Some(dir) => Some(dir),
            None => return CleanupStep::NoSafeCommandForDirectory,
        }
    };
    CleanupStep::CleanByInode {
        dev: sem.meta.dev,
        inode: sem.meta.inode,
        shm_dir,
        all_users: sem.meta.uid != snapshot.host.collector_uid,
    }
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
        assert_eq!(f[0].resources(), vec!["/dev/shm/sem.mp-ab12cd34"]);
        assert_eq!(f[0].cleanup_lines(), vec!["rm -- /dev/shm/sem.mp-ab12cd34"]);
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("CPython multiprocessing")));
        assert!(f[0]
            .evidence_lines()
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
        assert!(f[0].evidence_lines().iter().any(|e| e.contains("555")));
    }

    #[test]
    fn any_uninspected_process_could_hold_it_whatever_its_uid() {
        let mut snap = snapshot();
        let mut s = sem("x", 7, &[]);
        s.meta.uid = 1000;
        s.meta.mode = 0o600;
        snap.shm.semaphores = vec![s];
        // Another user's process with a private semaphore: it may have
        // mapped it before dropping privileges, or been passed the fd.
        skip(&mut snap, 555, Some(1001));
        let f = check(&snap, &Config::default());
        assert_eq!(f[0].confidence, Confidence::Likely);
        assert!(
            f[0].evidence_lines().iter().any(|e| e.contains("555")),
            "{:?}",
            f[0].evidence_lines()
        );
    }

    #[test]
    fn zombies_and_kernel_threads_cannot_hold_anything() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![sem("x", 7, &[])];
        let mut zombie = process(555, 1, "");
        zombie.state = 'Z';
        let mut kthread = process(2, 0, "");
        kthread.kernel_thread = true;
        snap.processes = vec![zombie, kthread];
        skip(&mut snap, 555, None);
        skip(&mut snap, 2, None);
        assert_eq!(
            check(&snap, &Config::default())[0].confidence,
            Confidence::Certain
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
            .evidence_lines()
            .iter()
            .any(|e| e.contains("pid 4242, which is gone")));
        snap.processes = vec![process(4242, 1, "python3 -m loky")];
        let f = check(&snap, &Config::default());
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("still running")));
    }

    #[test]
    fn odd_names_get_quoted_cleanup() {
        let mut snap = snapshot();
        let mut s = sem("x", 7, &[]);
        s.name = semleak_platform::RawName(b"a\nb".to_vec());
        s.path = semleak_platform::RawName(b"/dev/shm/sem.a\nb".to_vec());
        snap.shm.semaphores = vec![s];
        let f = check(&snap, &Config::default());
        assert_eq!(
            f[0].cleanup_lines(),
            vec!["semleak clean --kind leaked_semaphore --inode 7 --all-users --yes"]
        );
        assert!(f[0].evidence_lines().iter().any(|e| e.contains("by inode")));
    }

    #[test]
    fn quoted_cleanup_and_inode_line_for_a_private_dir() {
        let mut snap = snapshot();
        snap.host.collector_uid = 1000;
        snap.shm.dir = "/tmp/my shm".into();
        let mut s = sem("x", 7, &[]);
        s.meta.uid = 1000;
        s.path = semleak_platform::RawName(b"/tmp/my shm/sem.it's".to_vec());
        let mut hostile = sem("y", 8, &[]);
        hostile.meta.uid = 1000;
        hostile.path = semleak_platform::RawName(b"/tmp/my shm/sem.\n'$(touch pwned)0".to_vec());
        snap.shm.semaphores = vec![s, hostile];
        let f = check(&snap, &Config::default());
        assert_eq!(
            f[0].cleanup_lines(),
            vec![r"rm -- '/tmp/my shm/sem.it'\''s'"]
        );
        assert_eq!(
            f[1].cleanup_lines(),
            vec!["semleak clean --kind leaked_semaphore --inode 8 --shm-dir '/tmp/my shm' --yes"]
        );
    }

    #[test]
    fn a_creator_familys_semaphores_are_one_finding_with_an_id_stable_across_runs() {
        let mut snap = snapshot();
        let mut late = sem("mp-cccc3333", 3, &[]);
        late.meta.modified_at += 600;
        snap.shm.semaphores = vec![
            sem("mp-aaaa1111", 1, &[]),
            sem("mp-bbbb2222", 2, &[]),
            late,
            sem("stable-name", 4, &[]),
        ];
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 2, "{f:#?}");
        let group = f.iter().find(|f| f.resources().len() == 3).unwrap();
        assert!(group
            .summary_text()
            .starts_with("3 CPython multiprocessing"));
        assert_eq!(group.cleanup_lines().len(), 3);
        assert!(group
            .evidence_lines()
            .iter()
            .any(|e| e.contains("in 2 batch(es)")));
        let single = f.iter().find(|f| f.resources().len() == 1).unwrap();
        assert_eq!(
            single.id,
            finding_id(Kind::LeakedSemaphore, b"/dev/shm/sem.stable-name")
        );

        // The next run leaks the same way under new random names.
        let mut next = snapshot();
        next.shm.semaphores = vec![sem("mp-zzzz9999", 9, &[])];
        let f2 = check(&next, &Config::default());
        assert_eq!(f2[0].id, group.id);
        // Another directory is another subject.
        next.shm.dir = "/run/other".into();
        assert_ne!(check(&next, &Config::default())[0].id, group.id);
    }

    #[test]
    fn loky_groups_name_every_creator_and_whether_it_runs() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![
            sem("loky-4242-aaaaaaaa", 1, &[]),
            sem("loky-4242-bbbbbbbb", 2, &[]),
            sem("loky-5151-cccccccc", 3, &[]),
        ];
        snap.processes = vec![process(5151, 1, "python3 -m loky")];
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert!(
            f[0].evidence_lines()
                .iter()
                .any(|e| e.contains("4242 (gone), 5151 (running)")),
            "{:?}",
            f[0].evidence_lines()
        );
    }

    #[test]
    fn merged_run_findings_keep_the_weakest_confidence() {
        let mut a = Finding::new(
            Kind::LeakedSemaphore,
            b"x",
            Severity::Warning,
            Confidence::Certain,
        );
        a.subjects = vec![Subject::SemaphoreName("/a".into())];
        a.summary = Headline::LeftByCommand(Group::One("mp-a".into()));
        a.evidence = vec![
            Evidence::AppearedDuringRun,
            Evidence::Said("inode 1".into()),
        ];
        let mut b = a.clone();
        b.subjects = vec![Subject::SemaphoreName("/b".into())];
        b.evidence = vec![
            Evidence::AppearedDuringRun,
            Evidence::Said("inode 2".into()),
        ];
        b.severity = Severity::Error;
        b.confidence = Confidence::Possible;
        let other = Finding::new(
            Kind::LeakedSemaphore,
            b"y",
            Severity::Error,
            Confidence::Certain,
        );
        let m = merge_same_id(vec![a, other, b]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].resources(), vec!["/a", "/b"]);
        assert_eq!(m[0].severity, Severity::Error);
        assert_eq!(m[0].confidence, Confidence::Possible);
        assert_eq!(
            m[0].summary_text(),
            "2 semaphores were left by the command, held by no process"
        );
        assert_eq!(
            m[0].evidence_lines().len(),
            2,
            "{:?}",
            m[0].evidence_lines()
        );
        assert_eq!(
            m[0].evidence_lines()[1],
            "appeared while the command ran (absent from the snapshot before it)"
        );
    }

    #[test]
    fn names_sharing_a_prefix_are_one_finding_and_a_lone_name_stays_alone() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![
            sem("app-lock-1", 1, &[]),
            sem("app-lock-2", 2, &[]),
            sem("app-lock-3", 3, &[100]),
            sem("other-1", 4, &[]),
        ];
        snap.processes = vec![process(100, 1, "app")];
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 2, "{f:#?}");
        let group = f.iter().find(|f| f.resources().len() == 2).unwrap();
        assert_eq!(
            group.summary_text(),
            "2 semaphores named app-lock-* are held by no process"
        );
        let lone = f.iter().find(|f| f.resources().len() == 1).unwrap();
        assert_eq!(
            lone.id,
            finding_id(Kind::LeakedSemaphore, b"/dev/shm/sem.other-1")
        );
        // The next batch under other numbers has the same id.
        let mut next = snapshot();
        next.shm.semaphores = vec![sem("app-lock-7", 7, &[]), sem("app-lock-8", 8, &[])];
        assert_eq!(check(&next, &Config::default())[0].id, group.id);
    }
}
