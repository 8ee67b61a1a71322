//! `orphan`: workers that outlived the process that started them.
//!
//! Being adopted by pid 1 or a subreaper is not enough: a classic
//! double-forked daemon is adopted too, and has a dead session leader. An
//! adopted process is reported only with evidence that it was someone's
//! worker:
//!
//! - a known worker signature (CPython multiprocessing spawn/forkserver
//!   processes and resource tracker, loky, execnet, ray, gunicorn workers):
//!   error;
//! - a dangling IPC endpoint (the read end of a pipe no live process can
//!   write to, or a connected unix socket whose peer was closed or is held
//!   by no live process: whoever fed it died) together with a dead
//!   process-group or session leader while not leading its own session:
//!   warning;
//! - a dangling endpoint alone: info.
//!
//! Orphans are grouped by process group (what the lost parent's job shared).

mod evidence;

use std::collections::{BTreeMap, BTreeSet};

use semleak_platform::{Process, Snapshot};

use super::process_tree::{
    adopter_of, comm, hidden_peers, is_user_process, Adopter, PipeEnds, ProcessTree, SocketHolders,
};
use super::{
    human_age, process_label, CleanupStep, Confidence, Config, Finding, Kind, Severity, Signal,
    SignalNote, SignalStep, SignalTarget,
};
pub use evidence::worker_signature;
use evidence::{dangling_endpoints, Dangling};

/// Evidence lines per finding before the rest is summarised.
const MAX_MEMBER_LINES: usize = 20;
/// Seconds between TERM and KILL in the cleanup commands.
const TERM_GRACE_SECS: u32 = 5;

/// One adopted process with evidence of being an orphaned worker.
struct Orphan<'a> {
    process: &'a Process,
    adopter: Adopter,
    signature: Option<&'static str>,
    dangling: Vec<Dangling>,
    /// Dead process-group / session leaders (pids).
    dead_leaders: Vec<(&'static str, i32)>,
    /// Inspected-process gaps that could hide a writer.
    hidden: Vec<i32>,
    severity: Severity,
    confidence: Confidence,
}

fn lower(c: Confidence) -> Confidence {
    match c {
        Confidence::Certain => Confidence::Likely,
        _ => Confidence::Possible,
    }
}

fn assess<'a>(
    snapshot: &Snapshot,
    tree: &ProcessTree<'a>,
    pipes: &PipeEnds,
    sockets: &SocketHolders,
    p: &'a Process,
) -> Option<Orphan<'a>> {
    let adopter = adopter_of(tree, p)?;
    let signature = worker_signature(p);
    let dangling = if p.inspected {
        dangling_endpoints(p, pipes, sockets)
    } else {
        Vec::new()
    };
    let mut dead_leaders = Vec::new();
    for (what, leader) in [("process-group", p.pgrp), ("session", p.session)] {
        if leader > 0 && leader != p.pid && !tree.alive(leader) {
            dead_leaders.push((what, leader));
        }
    }
    let leads_session = p.session == p.pid;
    let leader_gone = !dead_leaders.is_empty() && !leads_session;
    let has_dangling = !dangling.is_empty();

    let (mut severity, mut confidence) = match (signature, has_dangling, leader_gone) {
        (Some(_), true, _) => (Severity::Error, Confidence::Certain),
        (Some(_), false, _) => (Severity::Error, Confidence::Likely),
        (None, true, true) => (Severity::Warning, Confidence::Likely),
        (None, true, false) => (Severity::Info, Confidence::Possible),
        // Adopted, maybe with a dead leader, nothing else: a daemon.
        (None, false, _) => return None,
    };
    let hidden = if has_dangling && dangling.iter().all(Dangling::needs_full_view) {
        hidden_peers(snapshot, p.uid)
    } else {
        Vec::new()
    };
    if !hidden.is_empty() {
        // A writerless pipe (or unheld peer socket) and nothing else, while
        // a process that could hold the other end went unseen, is no
        // evidence at all.
        if signature.is_none() && !leader_gone {
            return None;
        }
        confidence = lower(confidence);
    }
    // pid 1 that is not an init may be the workers' real parent (an app
    // run as a container's pid 1); only a dangling endpoint shows it died.
    if matches!(
        adopter,
        Adopter::NamespaceInit {
            known_init: false,
            ..
        }
    ) && !has_dangling
    {
        confidence = Confidence::Possible;
        severity = severity.min(Severity::Warning);
    }
    Some(Orphan {
        process: p,
        adopter,
        signature,
        dangling,
        dead_leaders,
        hidden,
        severity,
        confidence,
    })
}

pub fn check(snapshot: &Snapshot, _config: &Config) -> Vec<Finding> {
    let tree = ProcessTree::new(snapshot);
    let pipes = PipeEnds::new(snapshot);
    let sockets = SocketHolders::new(snapshot);
    let mut groups: BTreeMap<(i32, i32), Vec<Orphan<'_>>> = BTreeMap::new();
    for p in snapshot
        .processes
        .iter()
        .filter(|p| is_user_process(snapshot, p) && !p.is_zombie() && p.pid > 1)
    {
        if let Some(o) = assess(snapshot, &tree, &pipes, &sockets, p) {
            groups.entry((p.session, p.pgrp)).or_default().push(o);
        }
    }
    groups
        .into_iter()
        .map(|((session, pgrp), members)| finding(snapshot, &tree, session, pgrp, &members))
        .collect()
}

fn finding(
    snapshot: &Snapshot,
    tree: &ProcessTree<'_>,
    session: i32,
    pgrp: i32,
    members: &[Orphan<'_>],
) -> Finding {
    let severity = members
        .iter()
        .map(|o| o.severity)
        .max()
        .unwrap_or(Severity::Info);
    let confidence = members
        .iter()
        .filter(|o| o.severity == severity)
        .map(|o| o.confidence)
        .max()
        .unwrap_or(Confidence::Possible);
    let subject = format!("session {session} process group {pgrp}");
    let mut f = Finding::new(Kind::Orphan, subject.as_bytes(), severity, confidence);
    let pids: Vec<i32> = members.iter().map(|o| o.process.pid).collect();
    f.pids = pids.clone();

    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for o in members {
        *kinds.entry(o.signature.unwrap_or("worker")).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} × {k}")).collect();
    let leader_note = if tree.alive(pgrp) {
        String::new()
    } else {
        format!(" (leader pid {pgrp} gone)")
    };
    f.headline(format!(
        "{} orphaned process{} of process group {pgrp}{leader_note} outlived the process that started them: {}",
        members.len(),
        if members.len() == 1 { "" } else { "es" },
        kinds.join(", ")
    ));

    let mut resources = Vec::new();
    for o in members.iter().take(MAX_MEMBER_LINES) {
        let p = o.process;
        let mut parts = vec![adopted_by(snapshot, &o.adopter)];
        if let Some(sig) = o.signature {
            parts.push(format!("command line of a {sig}"));
        }
        for d in &o.dangling {
            parts.push(d.describe());
        }
        for (what, pid) in &o.dead_leaders {
            parts.push(format!("its {what} leader pid {pid} is gone"));
        }
        if let Some(start) = p.start_time_ms {
            parts.push(format!(
                "started {} ago",
                human_age((snapshot.taken_at_ms.saturating_sub(start) / 1000) as i64)
            ));
        }
        f.say(format!(
            "{}: {}",
            process_label(snapshot, p.pid),
            parts.join("; ")
        ));
    }
    if members.len() > MAX_MEMBER_LINES {
        f.say(format!(
            "… and {} more with the same evidence kinds",
            members.len() - MAX_MEMBER_LINES
        ));
    }
    for o in members {
        resources.extend(o.dangling.iter().map(Dangling::resource));
    }
    // The operational symptom: ports an orphan keeps taken.
    for o in members {
        let ports: Vec<String> = o
            .process
            .fds
            .iter()
            .filter(|fd| fd.kind == semleak_platform::FdKind::Socket)
            .filter_map(|fd| snapshot.listening.iter().find(|l| l.inode == fd.inode))
            .map(|l| format!("{} {}", l.proto, l.local))
            .collect();
        if !ports.is_empty() {
            f.say(format!(
                "pid {} is still listening on {}: the port stays taken until it exits",
                o.process.pid,
                ports.join(", ")
            ));
        }
    }
    let hidden: BTreeSet<i32> = members
        .iter()
        .flat_map(|o| o.hidden.iter().copied())
        .collect();
    if !hidden.is_empty() {
        let shown: Vec<String> = hidden.iter().take(10).map(|p| p.to_string()).collect();
        let other_end = if members
            .iter()
            .filter(|o| !o.hidden.is_empty())
            .flat_map(|o| o.dangling.iter())
            .all(|d| matches!(d, Dangling::PipeWithoutWriter { .. }))
        {
            "a write end"
        } else {
            "the other end"
        };
        f.say(format!(
            "not certain: {} process(es) could not be inspected and might still hold {other_end} (pids {}{}); {}",
            hidden.len(),
            shown.join(", "),
            if hidden.len() > 10 { ", …" } else { "" },
            crate::analyze::view_advice(snapshot)
        ));
    }
    if let Some(o) = members.iter().find(|o| {
        matches!(
            o.adopter,
            Adopter::NamespaceInit {
                known_init: false,
                ..
            }
        ) && o.dangling.is_empty()
    }) {
        f.say(format!(
            "pid {} ({}) is not a known init: if it started these processes itself, they are not orphaned",
            o.adopter.pid(),
            tree.get(o.adopter.pid()).map(comm).unwrap_or_default()
        ));
    }
    // In the order of their names, each once.
    resources.sort_by_key(super::words::subject);
    resources.dedup();
    f.subjects = resources;

    f.recommendation = "Terminate the orphans (TERM, then KILL after a bound), then make the parent take its workers with it: shut pools down on exit (join/terminate the pool, `with ProcessPoolExecutor()`), have workers watch for the parent's death (PR_SET_PDEATHSIG, the multiprocessing parent sentinel, or a pipe that hits EOF), and run jobs under a supervisor that kills the whole process group on timeout.".to_string();
    f.cleanup = cleanup(snapshot, pgrp, &pids);
    f
}

fn adopted_by(snapshot: &Snapshot, adopter: &Adopter) -> String {
    match adopter {
        Adopter::NamespaceInit { pid: 1, .. } => "adopted by pid 1".to_string(),
        Adopter::NamespaceInit { pid, .. } => format!(
            "adopted by {}, pid 1 of its namespace",
            process_label(snapshot, *pid)
        ),
        Adopter::Subreaper { pid } => {
            format!("adopted by subreaper {}", process_label(snapshot, *pid))
        }
    }
}

/// How long a resource tracker gets, at least, to exit by itself once its
/// workers are gone (`--kill-after` when longer), in `run` and `clean`.
pub const RESOURCE_TRACKER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A multiprocessing or loky resource tracker: the process that unlinks a
/// pool's semaphores once its clients are gone. It ignores SIGTERM and
/// SIGINT and exits by itself at EOF on its pipe, so it is never signalled
/// with the workers: killing it first strands every semaphore it tracks.
pub fn is_resource_tracker(cmdline: &str) -> bool {
    cmdline.contains("resource_tracker import main")
        || cmdline.contains("semaphore_tracker import main")
}

/// TERM then KILL: the whole process group when every live member of it is
/// an orphan (and it is not semleak's own group), else pid by pid.
fn cleanup(snapshot: &Snapshot, pgrp: i32, pids: &[i32]) -> Vec<CleanupStep> {
    let (trackers, workers): (Vec<i32>, Vec<i32>) = pids.iter().partition(|pid| {
        snapshot
            .process(**pid)
            .is_some_and(|p| is_resource_tracker(&super::process_tree::command_text(p)))
    });
    if trackers.is_empty() {
        return signal_lines(snapshot, pgrp, pids);
    }
    // Workers first; the tracker unlinks their semaphores and exits once
    // they are gone, and is killed only if it does not.
    let mut lines = if workers.is_empty() {
        Vec::new()
    } else {
        signal_lines(snapshot, -1, &workers)
    };
    let mut last = SignalStep::new(Signal::Kill, SignalTarget::Pids(trackers));
    last.after_secs = Some(TERM_GRACE_SECS);
    last.note = Some(SignalNote::TrackerLast);
    lines.push(CleanupStep::Signal(last));
    lines
}

/// TERM then KILL `pids`, as the whole group `pgrp` where that is exactly
/// them (`pgrp` -1: never as a group).
fn signal_lines(snapshot: &Snapshot, pgrp: i32, pids: &[i32]) -> Vec<CleanupStep> {
    let collector_pgrp = snapshot
        .process(snapshot.host.collector_pid)
        .map(|p| p.pgrp);
    let whole_group = pgrp > 1
        && collector_pgrp != Some(pgrp)
        && snapshot
            .processes
            .iter()
            .filter(|p| p.pgrp == pgrp && !p.is_zombie())
            .all(|p| pids.contains(&p.pid));
    let target = if whole_group {
        SignalTarget::Group(pgrp)
    } else {
        SignalTarget::Pids(pids.to_vec())
    };
    let mut kill = SignalStep::new(Signal::Kill, target.clone());
    kill.after_secs = Some(TERM_GRACE_SECS);
    vec![
        CleanupStep::Signal(SignalStep::new(Signal::Term, target)),
        CleanupStep::Signal(kill),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;
    use semleak_platform::{Fd, FdKind};

    const SPAWN: &str = "/usr/bin/python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork";
    const TRACKER: &str =
        "/usr/bin/python3 -c from multiprocessing.resource_tracker import main;main(4)";

    fn pipe(fd: i32, inode: u64, write: bool) -> Fd {
        Fd {
            fd,
            kind: FdKind::Pipe,
            inode,
            flags: Some(if write { 0o1 } else { 0o0 }),
            peer_inode: None,
            peer_closed: false,
            access: None,
        }
    }

    fn unix(fd: i32, inode: u64, peer: Option<u64>, peer_closed: bool) -> Fd {
        Fd {
            fd,
            kind: FdKind::UnixSocket,
            inode,
            flags: Some(0o2),
            peer_inode: peer,
            peer_closed,
            access: None,
        }
    }

    /// pid 402 of group 401 (whose leader, its parent, is gone) in a live
    /// login session, adopted by pid 1, holding `fds`.
    fn lost_child(fds: Vec<Fd>) -> Snapshot {
        let mut snap = snapshot();
        let mut c = process(402, 1, "python3 job.py");
        c.pgrp = 401;
        c.session = 100;
        c.fds = fds;
        snap.processes = vec![process(1, 0, "/sbin/init"), process(100, 1, "-bash")];
        snap.processes[1].session = 100;
        snap.processes.push(c);
        snap
    }

    /// A job whose parent (pid 200, group leader) was SIGKILLed: its
    /// spawn workers and resource tracker now belong to pid 1.
    fn killed_pool() -> Snapshot {
        let mut snap = snapshot();
        let mut workers = Vec::new();
        for (i, pid) in [201, 202].into_iter().enumerate() {
            let mut w = process(pid, 1, SPAWN);
            w.pgrp = 200;
            w.session = 100;
            // parent sentinel (writer died with the parent), tracker pipe (write end)
            w.fds = vec![pipe(7, 9000 + i as u64, false), pipe(5, 9100, true)];
            workers.push(w);
        }
        let mut tracker = process(203, 1, TRACKER);
        tracker.pgrp = 200;
        tracker.session = 100;
        tracker.fds = vec![pipe(4, 9100, false)];
        snap.processes = vec![process(1, 0, "/sbin/init"), process(100, 1, "-bash")];
        snap.processes[1].session = 100;
        snap.processes.extend(workers);
        snap.processes.push(tracker);
        snap
    }

    #[test]
    fn killed_pool_is_one_certain_error() {
        let snap = killed_pool();
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1, "{f:#?}");
        let f = &f[0];
        assert_eq!(f.kind, Kind::Orphan);
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.confidence, Confidence::Certain);
        assert_eq!(f.pids, vec![201, 202, 203]);
        assert_eq!(f.resources(), vec!["pipe:[9000]", "pipe:[9001]"]);
        assert!(
            f.summary_text()
                .contains("2 × CPython multiprocessing spawn worker"),
            "{}",
            f.summary_text()
        );
        assert!(f
            .summary_text()
            .contains("1 × CPython multiprocessing resource tracker"));
        assert!(f.summary_text().contains("leader pid 200 gone"));
        let ev = f.evidence_lines().join("\n");
        assert!(
            ev.contains("pid 201 (") && ev.contains("adopted by pid 1"),
            "{ev}"
        );
        assert!(ev.contains("read end of pipe:[9000] (fd 7)"), "{ev}");
        // The tracker's pipe still has writers (the workers): not dangling.
        assert!(!ev.contains("pipe:[9100]"), "{ev}");
        // Workers first, by pid (a group signal would reach the tracker);
        // the tracker only if it does not exit by itself after them.
        assert_eq!(f.cleanup_lines().len(), 3, "{:?}", f.cleanup_lines());
        assert_eq!(f.cleanup_lines()[0], "kill -TERM 201 202");
        assert_eq!(f.cleanup_lines()[1], "sleep 5; kill -KILL 201 202");
        assert!(
            f.cleanup_lines()[2].starts_with("sleep 5; kill -KILL 203  # only if still running"),
            "{}",
            f.cleanup_lines()[2]
        );
        assert!(f.recommendation.contains("PR_SET_PDEATHSIG"));
    }

    #[test]
    fn hidden_processes_lower_confidence_of_dangling_evidence() {
        let mut snap = killed_pool();
        skip(&mut snap, 1, Some(0));
        let f = &check(&snap, &Config::default())[0];
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.confidence, Confidence::Likely);
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("could not be inspected")));
    }

    #[test]
    fn group_shared_with_live_processes_is_killed_by_pid() {
        let mut snap = killed_pool();
        // The group leader is alive (a shell job still running): not orphaned.
        let mut leader = process(200, 100, "make test");
        leader.session = 100;
        snap.processes.push(leader);
        let f = &check(&snap, &Config::default())[0];
        assert_eq!(
            f.cleanup_lines()[..2],
            ["kill -TERM 201 202", "sleep 5; kill -KILL 201 202"]
        );
        assert!(f.cleanup_lines()[2].contains("kill -KILL 203"));
        assert!(!f.summary_text().contains("gone"));
    }

    #[test]
    fn double_forked_daemon_is_not_reported() {
        let mut snap = snapshot();
        // setsid'd intermediate (pid 301) exited: session and group leader
        // dead, adopted by pid 1, stdio on /dev/null (no pipes).
        let mut d = process(302, 1, "/usr/sbin/mydaemon");
        d.session = 301;
        d.pgrp = 301;
        snap.processes = vec![process(1, 0, "/sbin/init"), d];
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn daemon_with_live_pipe_is_not_reported() {
        let mut snap = snapshot();
        let mut d = process(302, 1, "/usr/sbin/mydaemon");
        d.session = 301;
        d.pgrp = 301;
        d.fds = vec![pipe(3, 77, false), pipe(4, 77, true)];
        snap.processes = vec![process(1, 0, "/sbin/init"), d];
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn plain_child_with_dead_feeder_pipe_is_a_warning() {
        let mut snap = snapshot();
        let mut c = process(402, 1, "python3 job.py");
        c.pgrp = 401; // the dead parent led the group
        c.session = 100;
        c.fds = vec![pipe(3, 555, false)];
        snap.processes = vec![process(1, 0, "/sbin/init"), process(100, 1, "-bash")];
        snap.processes[1].session = 100;
        snap.processes.push(c);
        let f = &check(&snap, &Config::default())[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.confidence, Confidence::Likely);
        assert_eq!(f.pids, vec![402]);
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("process-group leader pid 401 is gone")));
        assert_eq!(
            f.cleanup_lines(),
            vec!["kill -TERM -- -401", "sleep 5; kill -KILL -- -401"]
        );
    }

    #[test]
    fn dangling_pipe_alone_is_info() {
        let mut snap = snapshot();
        let mut c = process(402, 1, "cat");
        c.fds = vec![pipe(0, 555, false)];
        snap.processes = vec![process(1, 0, "/sbin/init"), c];
        let f = &check(&snap, &Config::default())[0];
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.confidence, Confidence::Possible);
    }

    #[test]
    fn dangling_pipe_alone_with_hidden_processes_is_not_reported() {
        let mut snap = snapshot();
        let mut c = process(402, 1, "cat");
        c.fds = vec![pipe(0, 555, false)];
        snap.processes = vec![process(1, 0, "/sbin/init"), c];
        skip(&mut snap, 1, Some(0));
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn unknown_access_mode_is_never_dangling() {
        let mut snap = snapshot();
        let mut c = process(402, 1, "cat");
        c.pgrp = 401;
        c.fds = vec![Fd {
            fd: 0,
            kind: FdKind::Pipe,
            inode: 555,
            flags: None,
            peer_inode: None,
            peer_closed: false,
            access: None,
        }];
        snap.processes = vec![process(1, 0, "/sbin/init"), c];
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn workers_of_a_live_parent_are_not_orphans() {
        let mut snap = snapshot();
        snap.processes = vec![
            process(1, 0, "/sbin/init"),
            process(200, 1, "python3 main.py"),
            process(201, 200, SPAWN),
        ];
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn app_as_container_pid1_only_possible_without_dangling_evidence() {
        let mut snap = snapshot();
        let mut app = process(1, 0, "python3 main.py");
        app.comm = "python3".into();
        snap.processes = vec![app, process(201, 1, SPAWN)];
        let f = &check(&snap, &Config::default())[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.confidence, Confidence::Possible);
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("not a known init")));
    }

    #[test]
    fn subreaper_adoption_and_loky_signature() {
        let mut snap = snapshot();
        let mut sd = process(60, 1, "/lib/systemd/systemd --user");
        sd.comm = "systemd".into();
        snap.processes = vec![
            process(1, 0, "/sbin/init"),
            sd,
            process(
                61,
                60,
                "python3 -m joblib.externals.loky.backend.popen_loky_posix --process-name LokyProcess-1 --pipe 12",
            ),
        ];
        let f = &check(&snap, &Config::default())[0];
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.confidence, Confidence::Likely);
        assert!(
            f.evidence_lines()[0].contains("adopted by subreaper pid 60"),
            "{}",
            f.evidence_lines()[0]
        );
        assert!(f.summary_text().contains("loky worker"));
        // Never the collector's own group.
        snap.processes.push(process(99_999, 1, "semleak scan"));
        snap.processes.last_mut().unwrap().pgrp = 61;
        assert_eq!(
            check(&snap, &Config::default())[0].cleanup_lines()[0],
            "kill -TERM 61"
        );
    }

    #[test]
    fn ids_depend_on_the_group_not_the_members() {
        let a = check(&killed_pool(), &Config::default());
        let mut fewer = killed_pool();
        fewer.processes.retain(|p| p.pid != 202);
        let b = check(&fewer, &Config::default());
        assert_eq!(a[0].id, b[0].id);
    }

    #[test]
    fn socket_whose_peer_closed_is_a_warning_even_with_hidden_processes() {
        let mut snap = lost_child(vec![unix(3, 800, None, true)]);
        // The kernel says the peer is closed: no unseen process can hold it.
        skip(&mut snap, 1, Some(0));
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1, "{f:#?}");
        let f = &f[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.confidence, Confidence::Likely);
        assert_eq!(f.pids, vec![402]);
        assert_eq!(f.resources(), vec!["socket:[800]"]);
        let ev = f.evidence_lines().join("\n");
        assert!(
            ev.contains("holds unix socket:[800] (fd 3) whose peer was closed"),
            "{ev}"
        );
        assert!(ev.contains("process-group leader pid 401 is gone"), "{ev}");
        assert!(!ev.contains("could not be inspected"), "{ev}");
    }

    #[test]
    fn socket_whose_peer_nobody_holds_is_dangling_with_the_pipe_caveat() {
        let snap = lost_child(vec![unix(3, 800, Some(801), false)]);
        let f = &check(&snap, &Config::default())[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.confidence, Confidence::Likely);
        assert!(
            f.evidence_lines()[0].contains(
                "holds unix socket:[800] (fd 3) whose peer socket:[801] no live process holds"
            ),
            "{}",
            f.evidence_lines()[0]
        );
        // An uninspected process might hold the peer.
        let mut hidden = snap.clone();
        skip(&mut hidden, 1, Some(0));
        let f = &check(&hidden, &Config::default())[0];
        assert_eq!(f.confidence, Confidence::Possible);
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("might still hold the other end")));
        // Alone (no dead leader): info, and nothing when a process is unseen.
        let mut alone = snapshot();
        let mut c = process(402, 1, "cat");
        c.fds = vec![unix(0, 800, Some(801), false)];
        alone.processes = vec![process(1, 0, "/sbin/init"), c];
        let f = &check(&alone, &Config::default())[0];
        assert_eq!(
            (f.severity, f.confidence),
            (Severity::Info, Confidence::Possible)
        );
        skip(&mut alone, 1, Some(0));
        assert!(check(&alone, &Config::default()).is_empty());
    }

    #[test]
    fn sockets_without_peer_or_with_a_live_peer_are_not_dangling() {
        let mut snap = lost_child(vec![
            // listening socket; unconnected datagram socket (no peer)
            unix(3, 800, None, false),
            unix(4, 801, None, false),
            // both ends of a socket pair in the process itself
            unix(5, 802, Some(803), false),
            unix(6, 803, Some(802), false),
            // peer held by another live process
            unix(7, 804, Some(805), false),
            // not a unix socket (TCP): no peer data at all
            Fd {
                fd: 8,
                kind: FdKind::Socket,
                inode: 806,
                flags: Some(0o2),
                peer_inode: None,
                peer_closed: false,
                access: None,
            },
        ]);
        let mut server = process(500, 1, "/usr/sbin/server");
        server.fds = vec![unix(9, 805, Some(804), false)];
        snap.processes.push(server);
        assert!(check(&snap, &Config::default()).is_empty());
        // The same process once the server is gone: dangling.
        snap.processes.retain(|p| p.pid != 500);
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].resources(), vec!["socket:[804]"]);
    }

    #[test]
    fn an_orphan_still_listening_says_on_which_port() {
        let mut snap = killed_pool();
        let worker = snap.processes.iter_mut().find(|p| p.pid == 201).unwrap();
        worker.fds.push(Fd {
            fd: 9,
            kind: FdKind::Socket,
            inode: 7777,
            flags: None,
            peer_inode: None,
            peer_closed: false,
            access: None,
        });
        snap.listening = vec![semleak_platform::ListeningSocket {
            inode: 7777,
            proto: "tcp".into(),
            local: "127.0.0.1:41987".into(),
        }];
        let f = &check(&snap, &Config::default())[0];
        assert!(
            f.evidence_lines()
                .iter()
                .any(|e| e == "pid 201 is still listening on tcp 127.0.0.1:41987: the port stays taken until it exits"),
            "{:?}",
            f.evidence_lines()
        );
    }
}
