//! What the gate blames on the command: pure functions of Snapshots and of
//! what the gate observed while the command ran.
//!
//! - Descendants are the process tree under semleak itself. semleak is a
//!   child subreaper and starts no other processes, so every process below
//!   it is the command or something the command started, and a descendant
//!   that loses its parent is reparented to semleak instead of leaving the
//!   tree: orphans are known exactly, not guessed.
//! - Zombies whose parent is a live descendant are leaks seen in
//!   descendants (the general rules report them; we keep those). Zombies
//!   whose parent is semleak are reaped by semleak at once: that is the
//!   subreaper's job, and they are not blamed; reparented descendants that
//!   are still alive at the end are the orphans.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use semleak_platform::{Process, RawName, Semaphore, Snapshot};

use crate::analyze::{
    finding_id, leaked_semaphore, process_label, CleanupStep, Confidence, Evidence, Finding, Group,
    Headline, Kind, Severity, Signal, SignalStep, SignalTarget,
};

/// Every process below `root` in a (pid, ppid) table, `root` excluded.
pub fn tree(pairs: impl IntoIterator<Item = (i32, i32)>, root: i32) -> BTreeSet<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, ppid) in pairs {
        if pid != ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if c != root && out.insert(c) {
                stack.push(c);
            }
        }
    }
    out
}

/// The descendants of `root` in a Snapshot.
pub fn descendants(snapshot: &Snapshot, root: i32) -> BTreeSet<i32> {
    tree(snapshot.processes.iter().map(|p| (p.pid, p.ppid)), root)
}

/// Descendants still running: not zombies, and not processes that existed
/// before the run (by pid and start time).
pub fn leftovers<'a>(before: &Snapshot, after: &'a Snapshot, root: i32) -> Vec<&'a Process> {
    let old: HashSet<(i32, u64)> = before
        .processes
        .iter()
        .map(|p| (p.pid, p.start_ticks))
        .collect();
    let below = descendants(after, root);
    after
        .processes
        .iter()
        .filter(|p| below.contains(&p.pid) && !p.is_zombie())
        .filter(|p| !old.contains(&(p.pid, p.start_ticks)))
        .collect()
}

/// What the gate did about a leftover process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Exited after SIGTERM.
    Terminated,
    /// Still running after `--kill-after`, then SIGKILLed.
    Killed,
    /// Left running (`--keep-leftovers`).
    Kept,
    /// Gone before semleak signalled it.
    ExitedOnItsOwn,
    /// semleak could not signal it (no permission, say): it may still run.
    NotTerminated,
}

/// Runs of digits become `N`, so fd numbers and pids in a worker's command
/// line do not change the finding id from run to run.
fn normalized(cmdline: &[RawName]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, arg) in cmdline.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        let mut in_digits = false;
        for &b in arg.as_bytes() {
            if b.is_ascii_digit() {
                if !in_digits {
                    out.push(b'N');
                }
                in_digits = true;
            } else {
                out.push(b);
                in_digits = false;
            }
        }
    }
    out
}

/// One `orphan` finding per distinct (normalised) command line among the
/// leftovers. Confidence is certain: the gate saw them in its own tree.
pub fn orphan_findings(
    snapshot: &Snapshot,
    root: i32,
    leftovers: &[&Process],
    fates: &HashMap<i32, Fate>,
    kill_after_secs: f64,
    detached: &BTreeSet<i32>,
) -> Vec<Finding> {
    let mut groups: BTreeMap<(Vec<u8>, bool), Vec<&Process>> = BTreeMap::new();
    for p in leftovers {
        let key = if p.cmdline.is_empty() {
            p.comm.as_bytes().to_vec()
        } else {
            normalized(&p.cmdline)
        };
        groups
            .entry((key, detached.contains(&p.pid)))
            .or_default()
            .push(p);
    }
    groups
        .into_iter()
        .map(|((subject, daemon), procs)| {
            let mut f = Finding::new(Kind::Orphan, &subject, Severity::Error, Confidence::Certain);
            let first = procs[0];
            f.pids = procs.iter().map(|p| p.pid).collect();
            f.headline(if daemon {
                format!(
                    "{} daemon(s) started by the command and left running: {}",
                    procs.len(),
                    process_label(snapshot, first.pid)
                )
            } else {
                format!(
                    "{} process(es) left running by the command: {}",
                    procs.len(),
                    process_label(snapshot, first.pid)
                )
            });
            for p in &procs {
                let how = if p.ppid == root {
                    "its parent exited and it was reparented to semleak (child subreaper)".to_string()
                } else {
                    format!("child of leftover pid {}", p.ppid)
                };
                let fate = match fates.get(&p.pid) {
                    Some(Fate::Terminated) => "semleak terminated it with SIGTERM".to_string(),
                    Some(Fate::Killed) => format!(
                        "still running {kill_after_secs}s after SIGTERM: semleak killed it with SIGKILL"
                    ),
                    Some(Fate::Kept) => "left running (--keep-leftovers)".to_string(),
                    Some(Fate::ExitedOnItsOwn)
                        if crate::analyze::orphan::is_resource_tracker(&p.command_line()) =>
                    {
                        "a resource tracker, not signalled with the workers: it exited by itself \
                         once they were gone (after unlinking what it tracked)"
                            .to_string()
                    }
                    Some(Fate::ExitedOnItsOwn) => "exited on its own while semleak cleaned up".to_string(),
                    Some(Fate::NotTerminated) => {
                        "semleak could not signal it (no permission?): it may still be running".to_string()
                    }
                    None => "not signalled".to_string(),
                };
                f.say(format!(
                    "{} was still running after the command exited and the grace period passed; {how}; {fate}",
                    process_label(snapshot, p.pid)
                ));
            }
            f.recommendation = if daemon {
                f.say(
                    "it detached deliberately: a session of its own, standard input, output \
                     and error on /dev/null (a daemon, not a worker)"
                        .into(),
                );
                "the command started a daemon and left it running: stop it when the command \
                 ends (its stop command, pid file or service manager), or run it in the \
                 foreground under the command's control if it should not outlive it"
                    .to_string()
            } else {
                "make the command stop and wait for the processes it starts before it exits \
(multiprocessing: use Pool/Process as context managers or call terminate() and join(); \
concurrent.futures: shutdown(wait=True)); workers should also exit when their parent dies"
                    .to_string()
            };
            let kept: Vec<i32> = procs
                .iter()
                .filter(|p| matches!(fates.get(&p.pid), Some(Fate::Kept | Fate::NotTerminated)))
                .map(|p| p.pid)
                .collect();
            if !kept.is_empty() {
                f.cleanup = vec![CleanupStep::Signal(SignalStep::new(
                    Signal::Term,
                    SignalTarget::Pids(kept),
                ))];
            }
            f
        })
        .collect()
}

/// What the gate saw of a semaphore that appeared during the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SemTrace {
    /// A descendant of the command mapped it in some observation.
    pub descendant_holder: Option<(i32, String)>,
    /// A process outside the command's tree mapped it.
    pub outside_holder: bool,
}

/// Semaphores the command left: absent before the run (by device and
/// inode), still named now, and held by no one or only by leftover
/// descendants. One a descendant was seen holding is the command's; one
/// nobody was ever seen holding may be another process's (parallel jobs),
/// so it is only a possible warning; one seen held only outside the tree
/// is not blamed.
pub fn leaked_semaphores(
    before: &Snapshot,
    after: &Snapshot,
    traces: &HashMap<(u64, u64), SemTrace>,
    leftover_pids: &BTreeSet<i32>,
) -> Vec<Finding> {
    let old: HashSet<(u64, u64)> = before
        .shm
        .semaphores
        .iter()
        .map(|s| (s.meta.dev, s.meta.inode))
        .collect();
    let mut out = Vec::new();
    for sem in &after.shm.semaphores {
        let key = (sem.meta.dev, sem.meta.inode);
        if sem.unlinked || old.contains(&key) {
            continue;
        }
        if sem.holders.iter().any(|p| !leftover_pids.contains(p)) {
            continue; // still in use by someone the command did not leave behind
        }
        let trace = traces.get(&key).cloned().unwrap_or_default();
        let held_by_leftovers = !sem.holders.is_empty();
        let mut unheld = sem.clone();
        unheld.holders.clear();
        let mut f = leaked_semaphore::finding(after, &unheld);
        f.evidence.insert(0, Evidence::AppearedDuringRun);
        let name = Group::One(sem.name.to_lossy());
        if held_by_leftovers {
            f.summary = Headline::HeldOnlyByLeftovers(name);
            f.pids = sem.holders.clone();
            // One moment, one story: it is mapped, by the leftovers only.
            f.evidence
                .retain(|e| !matches!(e, Evidence::NoProcessMaps { .. }));
            f.evidence
                .insert(1, Evidence::MappedOnlyByLeftovers(sem.holders.clone()));
        } else if let Some((pid, label)) = &trace.descendant_holder {
            f.summary = Headline::LeftByCommand(name);
            f.pids = vec![*pid];
            f.evidence.insert(
                1,
                Evidence::MappedByDescendant {
                    label: label.clone(),
                },
            );
        } else if trace.outside_holder {
            continue;
        } else {
            f.severity = Severity::Warning;
            f.confidence = Confidence::Possible;
            f.summary = Headline::AppearedUnheld(name);
            f.evidence.insert(1, Evidence::NoDescendantSeen);
        }
        let situation = if held_by_leftovers {
            "held by leftovers"
        } else if trace.descendant_holder.is_none() {
            "appeared"
        } else {
            ""
        };
        out.push((unheld, f, situation));
    }
    let sems: Vec<&Semaphore> = out.iter().map(|(s, _, _)| s).collect();
    let keys = leaked_semaphore::group_keys(&sems);
    let findings = out
        .iter()
        .zip(&keys)
        .map(|((sem, f, situation), key)| {
            let mut f = f.clone();
            f.id = blamed_id(sem, key.as_ref(), &after.shm.dir, situation);
            f
        })
        .collect();
    leaked_semaphore::merge_same_id(findings)
}

/// The id of a blamed semaphore's finding: a scan's id (so one baseline
/// serves both), except that a group's semaphores in different situations
/// get distinct ids, so one finding never says both "held by a leftover"
/// and "held by no process".
fn blamed_id(
    sem: &Semaphore,
    key: Option<&leaked_semaphore::GroupKey>,
    dir: &str,
    situation: &str,
) -> String {
    let mut subject = leaked_semaphore::subject(sem, key, dir);
    if key.is_some() && !situation.is_empty() {
        subject.push(0);
        subject.extend_from_slice(situation.as_bytes());
    }
    finding_id(Kind::LeakedSemaphore, &subject)
}

/// Findings of the general rules, from a sample taken while the command
/// ran, that are about the command's descendants. Semaphores and orphans
/// are the gate's own business; host-wide pressure is not the command's.
pub fn descendant_findings(
    findings: Vec<Finding>,
    descendants: &BTreeSet<i32>,
    root: i32,
) -> Vec<Finding> {
    findings
        .into_iter()
        .filter(|f| {
            !matches!(
                f.kind,
                Kind::LeakedSemaphore | Kind::Orphan | Kind::SemaphorePressure | Kind::ShmPressure
            )
        })
        .filter(|f| match (f.kind, f.parent_pid) {
            // semleak reaps its own zombie children: not a leak.
            (Kind::Zombie, Some(parent)) => parent != root && descendants.contains(&parent),
            _ => f
                .pids
                .iter()
                .chain(f.parent_pid.iter())
                .any(|p| descendants.contains(p)),
        })
        .collect()
}

/// Semaphore names (macOS descriptors) that descendants hold in `snap` and
/// that no process held in `before`: the ones the command made or opened.
pub fn new_psem_names(
    before: &Snapshot,
    snap: &Snapshot,
    descendants: &BTreeSet<i32>,
) -> Vec<RawName> {
    let old: BTreeSet<&RawName> = before
        .processes
        .iter()
        .flat_map(|p| p.psem_names.iter())
        .collect();
    let mut names: Vec<_> = snap
        .processes
        .iter()
        .filter(|p| descendants.contains(&p.pid))
        .flat_map(|p| p.psem_names.iter())
        .filter(|n| !old.contains(n))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Merge findings seen across samples by id: the most severe wins, and
/// among equals the latest.
pub fn merge_by_id(into: &mut BTreeMap<String, Finding>, findings: Vec<Finding>) {
    for f in findings {
        match into.get(&f.id) {
            Some(old) if old.severity > f.severity => {}
            _ => {
                into.insert(f.id.clone(), f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;

    const ME: i32 = 500;

    #[test]
    fn psem_names_probed_are_the_commands_new_ones() {
        let mut before = macos_snapshot();
        let mut outsider = process(50, 1, "launchd-helper");
        outsider.psem_names = vec!["shared-old".into()];
        before.processes = vec![outsider.clone()];
        let mut snap = macos_snapshot();
        let mut worker = process(501, ME, "python3 worker.py");
        worker.psem_names = vec!["mp-new1".into(), "shared-old".into(), "mp-new1".into()];
        let mut stranger = process(60, 1, "other");
        stranger.psem_names = vec!["mp-theirs".into()];
        snap.processes = vec![outsider, worker, stranger];
        let desc = descendants(&snap, ME);
        assert_eq!(
            new_psem_names(&before, &snap, &desc),
            vec![RawName::from("mp-new1")]
        );
    }

    #[test]
    fn tree_follows_parent_links_below_root_only() {
        let pairs = [
            (500, 1),
            (501, 500),
            (502, 501),
            (503, 1),
            (504, 503),
            (505, 502),
        ];
        assert_eq!(
            tree(pairs, ME),
            [501, 502, 505].into_iter().collect::<BTreeSet<_>>()
        );
        assert!(tree([(1, 0)], ME).is_empty());
    }

    fn run_snapshots() -> (Snapshot, Snapshot) {
        let mut before = snapshot();
        before.processes = vec![
            process(ME, 1, "semleak run -- python3 t.py"),
            process(42, 1, "bash"),
        ];
        let mut after = before.clone();
        let mut zombie = process(512, 510, "");
        zombie.state = 'Z';
        after.processes.extend([
            process(510, ME, "python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork"),
            process(511, ME, "python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=9) --multiprocessing-fork"),
            zombie,
            process(513, 510, "sleep 100"),
            process(600, 42, "vim"),
        ]);
        (before, after)
    }

    #[test]
    fn leftovers_are_live_new_descendants() {
        let (before, after) = run_snapshots();
        let pids: Vec<i32> = leftovers(&before, &after, ME)
            .iter()
            .map(|p| p.pid)
            .collect();
        assert_eq!(pids, vec![510, 511, 513]);
        // A process present before the run is never blamed.
        let mut before2 = before.clone();
        before2.processes.push(process(513, 510, "sleep 100"));
        let pids: Vec<i32> = leftovers(&before2, &after, ME)
            .iter()
            .map(|p| p.pid)
            .collect();
        assert_eq!(pids, vec![510, 511]);
    }

    #[test]
    fn orphans_group_by_command_line_with_stable_ids() {
        let (before, after) = run_snapshots();
        let left = leftovers(&before, &after, ME);
        let fates: HashMap<i32, Fate> = [
            (510, Fate::Terminated),
            (511, Fate::Killed),
            (513, Fate::Kept),
        ]
        .into();
        let f = orphan_findings(&after, ME, &left, &fates, 5.0, &BTreeSet::new());
        assert_eq!(f.len(), 2);
        let workers = f
            .iter()
            .find(|f| f.pids == vec![510, 511])
            .expect("workers grouped");
        assert_eq!(workers.kind, Kind::Orphan);
        assert_eq!(workers.severity, Severity::Error);
        assert_eq!(workers.confidence, Confidence::Certain);
        assert!(workers.evidence_lines()[0].contains("reparented to semleak"));
        assert!(workers.evidence_lines()[0].contains("SIGTERM"));
        assert!(workers.evidence_lines()[1].contains("SIGKILL"));
        assert!(workers.cleanup_lines().is_empty());
        let sleeper = f.iter().find(|f| f.pids == vec![513]).unwrap();
        assert!(sleeper.evidence_lines()[0].contains("child of leftover pid 510"));
        assert_eq!(sleeper.cleanup_lines(), vec!["kill -TERM 513"]);
        // Other pids and fds on the next run: same id.
        let mut again = after.clone();
        for p in &mut again.processes {
            if p.pid == 510 {
                p.pid = 910;
                p.cmdline[4] = "spawn_main(tracker_fd=6, pipe_handle=12)".into();
            }
        }
        let left2 = leftovers(&before, &again, ME);
        let f2 = orphan_findings(&again, ME, &left2, &HashMap::new(), 5.0, &BTreeSet::new());
        assert!(f2.iter().any(|g| g.id == workers.id));
    }

    #[test]
    fn semaphores_new_and_unheld_are_blamed_by_what_was_seen() {
        let mut before = snapshot();
        before.shm.semaphores = vec![sem("old-leak", 1, &[])];
        let mut after = before.clone();
        after.shm.semaphores.extend([
            sem("mp-seen", 2, &[]),
            sem("nobody-seen", 3, &[]),
            sem("outsider", 4, &[]),
            sem("held-by-leftover", 5, &[510]),
            sem("held-by-other", 6, &[600]),
        ]);
        let mut gone = sem("unlinked", 7, &[510]);
        gone.unlinked = true;
        after.shm.semaphores.push(gone);
        after.processes = vec![process(510, ME, "python3 w.py"), process(600, 1, "vim")];
        let traces: HashMap<(u64, u64), SemTrace> = [
            (
                (0x1a, 2),
                SemTrace {
                    descendant_holder: Some((505, "pid 505 (python3 t.py)".into())),
                    outside_holder: false,
                },
            ),
            (
                (0x1a, 4),
                SemTrace {
                    descendant_holder: None,
                    outside_holder: true,
                },
            ),
        ]
        .into();
        let leftover: BTreeSet<i32> = [510].into();
        let f = leaked_semaphores(&before, &after, &traces, &leftover);
        let by_name = |n: &str| {
            f.iter()
                .find(|f| f.resources()[0].ends_with(&format!("sem.{n}")))
                .cloned()
        };
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(by_name("old-leak").is_none(), "present before the run");
        assert!(by_name("outsider").is_none());
        assert!(by_name("held-by-other").is_none());
        let seen = by_name("mp-seen").unwrap();
        assert_eq!(seen.severity, Severity::Error);
        assert_eq!(seen.confidence, Confidence::Certain);
        assert_eq!(seen.pids, vec![505]);
        assert_eq!(
            seen.id,
            crate::analyze::finding_id(Kind::LeakedSemaphore, b"/dev/shm/sem.mp-seen"),
            "same id as `scan` gives, so baselines carry over"
        );
        let held = by_name("held-by-leftover").unwrap();
        assert_eq!(held.severity, Severity::Error);
        assert_eq!(held.pids, vec![510]);
        assert!(held
            .evidence_lines()
            .iter()
            .any(|e| e.contains("leftover descendant(s) 510")));
        assert!(
            !held
                .evidence_lines()
                .iter()
                .any(|e| e.starts_with("no process maps it")),
            "one moment, one story: {:?}",
            held.evidence_lines()
        );
        let unknown = by_name("nobody-seen").unwrap();
        assert_eq!(unknown.severity, Severity::Warning);
        assert_eq!(unknown.confidence, Confidence::Possible);
    }

    #[test]
    fn sample_findings_are_kept_only_for_descendants() {
        let desc: BTreeSet<i32> = [510, 511].into();
        let mk = |kind, subject: &[u8], pids: &[i32], parent| {
            let mut f = Finding::new(kind, subject, Severity::Warning, Confidence::Certain);
            f.pids = pids.to_vec();
            f.parent_pid = parent;
            f
        };
        let fs = vec![
            mk(Kind::Zombie, b"a", &[512], Some(510)), // parent is a descendant: kept
            mk(Kind::Zombie, b"b", &[511], Some(ME)),  // semleak reaps it: dropped
            mk(Kind::Zombie, b"c", &[700], Some(42)),  // elsewhere: dropped
            mk(Kind::StalledWakeupPipe, b"d", &[511], None), // kept
            mk(Kind::FullWakeupPipe, b"e", &[42], None), // elsewhere: dropped
            mk(Kind::Orphan, b"f", &[510], None),      // the gate's own: dropped
            mk(Kind::ThreadPileup, b"g", &[510], None), // kept
        ];
        let kept: Vec<String> = descendant_findings(fs, &desc, ME)
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(
            kept,
            vec![
                crate::analyze::finding_id(Kind::Zombie, b"a"),
                crate::analyze::finding_id(Kind::StalledWakeupPipe, b"d"),
                crate::analyze::finding_id(Kind::ThreadPileup, b"g"),
            ]
        );
    }

    #[test]
    fn merge_keeps_the_most_severe() {
        let mut map = BTreeMap::new();
        let mut a = Finding::new(Kind::Zombie, b"x", Severity::Error, Confidence::Certain);
        a.headline("first".to_string());
        let mut b = a.clone();
        b.severity = Severity::Warning;
        b.headline("second".to_string());
        merge_by_id(&mut map, vec![a]);
        merge_by_id(&mut map, vec![b]);
        assert_eq!(map.values().next().unwrap().summary_text(), "first");
    }
}
