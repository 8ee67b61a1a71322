//! `zombie`: exited children their parent has not reaped, one finding per
//! parent. A zombie cannot be killed; only its parent (or, once the parent
//! is gone, the init that adopts it) can reap it.

use std::collections::BTreeMap;

use semleak_platform::{Process, Snapshot};

use super::process_tree::{
    comm, is_known_init, is_namespace_init, is_user_process, program_subject, ProcessTree,
    SIGCHLD_BIT,
};
use super::{
    human_age, process_label, CleanupStep, Confidence, Config, Finding, Kind, Severity, Signal,
    SignalNote, SignalStep, SignalTarget,
};

pub fn check(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    let tree = ProcessTree::new(snapshot);
    let mut by_parent: BTreeMap<i32, Vec<&Process>> = BTreeMap::new();
    for p in snapshot
        .processes
        .iter()
        .filter(|p| p.is_zombie() && is_user_process(snapshot, p))
    {
        by_parent.entry(p.ppid).or_default().push(p);
    }
    by_parent
        .into_iter()
        .filter(|(ppid, _)| *ppid != snapshot.host.collector_pid)
        .filter(|(_, zombies)| !transient(snapshot, config, zombies))
        .map(|(ppid, zombies)| finding(snapshot, &tree, config, ppid, &zombies))
        .collect()
}

/// A parent reaps on its own schedule: a few zombies that all started
/// (so exited) within the last seconds are a parent between two reaps,
/// not a leak.
const TRANSIENT_MS: u64 = 5_000;

fn transient(snapshot: &Snapshot, config: &Config, zombies: &[&Process]) -> bool {
    zombies.len() < config.zombie_warning_at.max(1)
        && zombies.iter().all(|z| {
            z.start_time_ms
                .is_some_and(|s| snapshot.taken_at_ms.saturating_sub(s) < TRANSIENT_MS)
        })
}

fn severity(config: &Config, count: usize) -> Severity {
    if count >= config.zombie_error_at.max(1) {
        Severity::Error
    } else if count >= config.zombie_warning_at.max(1) {
        Severity::Warning
    } else {
        Severity::Info
    }
}

fn finding(
    snapshot: &Snapshot,
    tree: &ProcessTree<'_>,
    config: &Config,
    ppid: i32,
    zombies: &[&Process],
) -> Finding {
    let parent = tree.get(ppid);
    let count = zombies.len();
    let subject = match parent {
        Some(p) => program_subject(p),
        None => format!("pid {ppid}").into_bytes(),
    };
    let mut f = Finding::new(
        Kind::Zombie,
        &subject,
        severity(config, count),
        Confidence::Certain,
    );
    let parent_label = process_label(snapshot, ppid);
    f.headline(format!(
        "{parent_label} has not reaped {count} exited child{}",
        if count == 1 { "" } else { "ren" }
    ));
    let mut pids: Vec<i32> = zombies.iter().map(|z| z.pid).collect();
    pids.sort_unstable();
    f.pids = pids;
    f.parent_pid = Some(ppid);
    f.parent_comm = parent.map(comm);

    // What the zombies were.
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for z in zombies {
        *names.entry(comm(z)).or_default() += 1;
    }
    let names: Vec<String> = names.iter().map(|(n, c)| format!("{c} × {n}")).collect();
    f.say(format!(
        "{count} zombie (defunct) child{} of pid {ppid}: {}",
        if count == 1 { "" } else { "ren" },
        names.join(", ")
    ));

    // How long: /proc records when a process started, not when it exited,
    // so the start time bounds the time spent as a zombie from above.
    let starts: Vec<u64> = zombies.iter().filter_map(|z| z.start_time_ms).collect();
    if let (Some(oldest), Some(newest)) = (starts.iter().min(), starts.iter().max()) {
        let age = |ms: u64| human_age((snapshot.taken_at_ms.saturating_sub(ms) / 1000) as i64);
        f.say(format!(
            "zombie for at most {} (the oldest started {} ago, the newest {} ago; /proc records when a process started, not when it exited)",
            age(*oldest),
            age(*oldest),
            age(*newest)
        ));
    }

    let Some(parent) = parent else {
        f.say(format!("parent pid {ppid} is not visible in the snapshot"));
        f.recommendation = RECOMMENDATION.to_string();
        return f;
    };

    // SIGCHLD disposition: how the parent learns about exits.
    let sigchld = match (parent.sig_caught, parent.sig_ignored) {
        (Some(c), _) if c & SIGCHLD_BIT != 0 => Some(
            "the parent catches SIGCHLD, but its handler does not reap every child: it must call waitpid(-1, WNOHANG) in a loop until it returns 0",
        ),
        (_, Some(i)) if i & SIGCHLD_BIT != 0 => Some(
            "the parent ignores SIGCHLD (children exiting from now on are reaped by the kernel); these zombies exited before that, or the disposition was reset",
        ),
        (Some(_), Some(_)) => Some(
            "the parent neither catches nor ignores SIGCHLD: it must poll with waitpid (or Popen.poll/wait) to reap",
        ),
        _ => None,
    };
    match sigchld {
        Some(s) => f.say(s.to_string()),
        None => f.say("the parent's signal dispositions could not be read".to_string()),
    }

    let init_without_reaping = is_namespace_init(parent) && !is_known_init(parent);
    if init_without_reaping {
        let scope = if parent.pid == 1 {
            "this pid namespace"
        } else {
            "its pid namespace (a container)"
        };
        f.say(format!(
            "the parent is pid 1 of {scope} but is {}, not a known init: every orphan in the namespace is handed to it, and whatever it does not reap stays a zombie",
            comm(parent)
        ));
    }

    // Session and process group: which job or service the parent belongs to.
    let leader = |pid: i32| {
        if pid <= 0 {
            "none".to_string()
        } else if pid == parent.pid {
            "the parent itself".to_string()
        } else if tree.alive(pid) {
            process_label(snapshot, pid)
        } else {
            format!("pid {pid}, gone")
        }
    };
    f.say(format!(
        "parent session {} (leader: {}), process group {} (leader: {})",
        parent.session,
        leader(parent.session),
        parent.pgrp,
        leader(parent.pgrp)
    ));
    let own_sessions = zombies.iter().filter(|z| z.session == z.pid).count();
    if own_sessions > 0 {
        f.say(format!(
            "{own_sessions} of them led their own session (started with setsid / start_new_session=True), so no shell or job control will reap them"
        ));
    }

    if init_without_reaping {
        f.recommendation = format!(
            "{RECOMMENDATION} As pid 1 of a namespace the parent also inherits every orphan: run it under an init that reaps (docker run --init, tini, dumb-init, catatonit)."
        );
    } else {
        f.recommendation = RECOMMENDATION.to_string();
    }
    let nudge = sigchld_nudge_can_help(parent);
    if parent.pid > 1 && !is_namespace_init(parent) {
        f.cleanup = Vec::new();
        if nudge {
            f.cleanup
                .push(signal(Signal::Chld, ppid, SignalNote::ReapNudge, false));
        }
        // Commented out: the parent is a live program, and a cleanup block
        // pasted whole must not stop it.
        f.cleanup.push(signal(
            Signal::Term,
            ppid,
            SignalNote::StopsLiveParent,
            true,
        ));
    } else if nudge {
        f.cleanup = vec![signal(
            Signal::Chld,
            ppid,
            SignalNote::ReapNudgeThenRestart,
            false,
        )];
    } else {
        f.cleanup = vec![CleanupStep::NoSignalHelps { pid: ppid }];
    }
    f
}

/// `kill -SIG PID  # why`, commented out when it stops a live program.
fn signal(signal: Signal, pid: i32, note: SignalNote, commented_out: bool) -> CleanupStep {
    let mut step = SignalStep::new(signal, SignalTarget::Pids(vec![pid]));
    step.note = Some(note);
    step.commented_out = commented_out;
    CleanupStep::Signal(step)
}

/// Whether SIGCHLD can make `parent` reap: only a handler reaps on it. A
/// parent that ignores it, or leaves it at the default, is unmoved (unknown
/// dispositions count as possible).
pub fn sigchld_nudge_can_help(parent: &Process) -> bool {
    parent
        .sig_caught
        .is_none_or(|caught| caught & SIGCHLD_BIT != 0)
}

const RECOMMENDATION: &str = "The parent must reap its children: call waitpid for each one (a non-blocking waitpid(-1, WNOHANG) loop on every dispatch tick or in the SIGCHLD handler; in Python, Popen.wait()/poll() for every Popen). A zombie cannot be killed: signalling the parent so it reaps, or restarting it, clears them.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;

    fn zombie(pid: i32, ppid: i32, started_ago_ms: u64) -> Process {
        let mut z = process(pid, ppid, "");
        z.state = 'Z';
        z.cmdline.clear();
        z.comm = "worker".into();
        z.start_time_ms = Some(NOW_MS - started_ago_ms);
        z
    }

    fn dispatcher_with(n: i32) -> Snapshot {
        let mut snap = snapshot();
        let mut parent = process(500, 1, "python3 dispatcher.py");
        parent.sig_caught = Some(0);
        parent.sig_ignored = Some(0);
        parent.pgrp = 400;
        parent.session = 400;
        snap.processes = vec![process(1, 0, "/sbin/init"), parent];
        for i in 0..n {
            let mut z = zombie(1000 + i, 500, 3_600_000 + i as u64 * 1000);
            // start_new_session=True: each child leads its own session.
            z.session = z.pid;
            z.pgrp = z.pid;
            snap.processes.push(z);
        }
        snap
    }

    #[test]
    fn groups_by_parent_with_evidence() {
        let snap = dispatcher_with(6);
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.kind, Kind::Zombie);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.confidence, Confidence::Certain);
        assert_eq!(f.parent_pid, Some(500));
        assert_eq!(f.pids, vec![1000, 1001, 1002, 1003, 1004, 1005]);
        assert!(
            f.summary_text().contains("python3 dispatcher.py"),
            "{}",
            f.summary_text()
        );
        assert!(f.summary_text().contains("6 exited children"));
        let ev = f.evidence_lines().join("\n");
        assert!(ev.contains("6 × worker"), "{ev}");
        assert!(ev.contains("neither catches nor ignores SIGCHLD"), "{ev}");
        assert!(ev.contains("zombie for at most 1h 0m"), "{ev}");
        assert!(
            ev.contains("parent session 400 (leader: pid 400, gone)"),
            "{ev}"
        );
        assert!(ev.contains("6 of them led their own session"), "{ev}");
        assert!(f.recommendation.contains("waitpid(-1, WNOHANG)"));
        // It neither catches nor ignores SIGCHLD: a nudge cannot help, so none
        // is suggested.
        assert!(
            f.cleanup_lines().iter().all(|l| !l.contains("-CHLD")),
            "{:?}",
            f.cleanup_lines()
        );
        assert!(f.cleanup_lines()[0].starts_with("# kill -TERM 500"));
    }

    #[test]
    fn severity_scales_with_count_and_thresholds() {
        let config = Config::default();
        assert_eq!(
            check(&dispatcher_with(1), &config)[0].severity,
            Severity::Info
        );
        assert_eq!(
            check(&dispatcher_with(4), &config)[0].severity,
            Severity::Info
        );
        assert_eq!(
            check(&dispatcher_with(5), &config)[0].severity,
            Severity::Warning
        );
        assert_eq!(
            check(&dispatcher_with(50), &config)[0].severity,
            Severity::Error
        );
        let strict = Config {
            zombie_warning_at: 1,
            zombie_error_at: 2,
            ..Config::default()
        };
        assert_eq!(
            check(&dispatcher_with(1), &strict)[0].severity,
            Severity::Warning
        );
        assert_eq!(
            check(&dispatcher_with(2), &strict)[0].severity,
            Severity::Error
        );
    }

    #[test]
    fn id_is_stable_across_counts_and_pids() {
        let a = check(&dispatcher_with(5), &Config::default());
        let mut other = dispatcher_with(60);
        other.processes[1].pid = 777;
        for p in other.processes.iter_mut().filter(|p| p.is_zombie()) {
            p.ppid = 777;
        }
        let b = check(&other, &Config::default());
        assert_eq!(a[0].id, b[0].id);
    }

    #[test]
    fn sigchld_dispositions() {
        let mut snap = dispatcher_with(1);
        snap.processes[1].sig_caught = Some(SIGCHLD_BIT);
        let f = check(&snap, &Config::default());
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("catches SIGCHLD")));
        assert!(
            f[0].cleanup_lines()[0].starts_with("kill -CHLD 500"),
            "{:?}",
            f[0].cleanup_lines()
        );
        snap.processes[1].sig_caught = Some(0);
        snap.processes[1].sig_ignored = Some(SIGCHLD_BIT);
        let f = check(&snap, &Config::default());
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("ignores SIGCHLD")));
        snap.processes[1].sig_caught = None;
        snap.processes[1].sig_ignored = None;
        let f = check(&snap, &Config::default());
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("could not be read")));
    }

    #[test]
    fn container_pid1_that_is_not_an_init() {
        let mut snap = snapshot();
        let mut app = process(700, 650, "node server.js");
        app.ns_pids = vec![700, 1];
        snap.processes = vec![app, zombie(701, 700, 5_000), zombie(702, 700, 9_000)];
        let f = &check(&snap, &Config::default())[0];
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("pid 1 of its pid namespace (a container)")));
        assert!(f.recommendation.contains("--init"));
        assert_eq!(f.cleanup_lines().len(), 1);
        assert!(f.cleanup_lines()[0].starts_with("kill -CHLD 700"));
    }

    #[test]
    fn collector_and_missing_parent() {
        let mut snap = snapshot();
        snap.processes = vec![zombie(10, 99_999, 60_000), zombie(11, 4242, 60_000)];
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1, "zombies of semleak itself are not reported");
        assert_eq!(f[0].parent_pid, Some(4242));
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("not visible")));
    }

    #[test]
    fn a_few_fresh_zombies_are_a_parent_between_reaps() {
        let mut snap = snapshot();
        snap.processes = vec![process(500, 1, "make"), zombie(501, 500, 1_000)];
        assert!(check(&snap, &Config::default()).is_empty());
        // Older than the grace, or many: reported.
        snap.processes[1].start_time_ms = Some(NOW_MS - 6_000);
        assert_eq!(check(&snap, &Config::default()).len(), 1);
        let mut many = snapshot();
        many.processes = vec![process(500, 1, "make")];
        many.processes
            .extend((0..5).map(|i| zombie(600 + i, 500, 1_000)));
        assert_eq!(
            check(&many, &Config::default())[0].severity,
            Severity::Warning
        );
    }

    #[test]
    fn live_children_are_not_zombies() {
        let mut snap = snapshot();
        snap.processes = vec![process(500, 1, "a"), process(501, 500, "b")];
        assert!(check(&snap, &Config::default()).is_empty());
    }
}
