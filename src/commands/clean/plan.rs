//! Planning `semleak clean`: a pure function of the Snapshot, the findings
//! and the options. It consumes findings generically (`kind`, `pids`,
//! `parent_pid`), so new rules of a cleanable kind need no change here.
//! Skipped actions say why, so the dry run explains itself.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use globset::{Candidate, GlobSet};
use semleak_platform::{Process, RawName, Semaphore, Snapshot};

use crate::analyze::creator::Creator;
use crate::analyze::{
    human_age, human_age_ago, leaked_semaphore, process_label_of, Confidence, Finding, Kind,
    Subject,
};
use crate::report::clean::{Action, ActionKind, CleanSummary, Op, Plan, Status};
use crate::report::SCHEMA_VERSION;
use crate::suppress::Suppressed;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct CleanOptions {
    pub yes: bool,
    pub min_age: Duration,
    pub all_users: bool,
    pub allow_incomplete: bool,
    pub orphans: bool,
    /// With `orphans`: also terminate orphans whose verdict is only `likely`.
    pub likely_orphans: bool,
    pub nudge_parents: bool,
    /// Empty: every kind.
    pub kinds: Vec<Kind>,
    /// `None`: every name.
    pub names: Option<GlobSet>,
    /// Empty: every semaphore; else only these inode numbers (and no
    /// process actions): for names that cannot be typed safely.
    pub inodes: Vec<u64>,
    /// The uid whose resources are cleaned without `--all-users`.
    pub invoking_uid: u32,
}

impl Default for CleanOptions {
    fn default() -> Self {
        CleanOptions {
            yes: false,
            min_age: Duration::from_secs(300),
            all_users: false,
            allow_incomplete: false,
            orphans: false,
            likely_orphans: false,
            nudge_parents: false,
            kinds: Vec::new(),
            names: None,
            inodes: Vec::new(),
            invoking_uid: 0,
        }
    }
}

fn name_matches(opts: &CleanOptions, name: &[u8]) -> bool {
    match &opts.names {
        None => true,
        Some(set) => set.is_match_candidate(&Candidate::new(OsStr::from_bytes(name))),
    }
}

fn kind_selected(opts: &CleanOptions, kind: Kind) -> bool {
    opts.kinds.is_empty() || opts.kinds.contains(&kind)
}

fn skipped(mut a: Action, why: String) -> Action {
    a.status = Status::Skipped;
    a.why = why;
    a.op = Op::None;
    a
}

fn owner_check(opts: &CleanOptions, owner: Option<u32>, what: &str) -> Result<(), String> {
    if opts.all_users {
        return Ok(());
    }
    match owner {
        Some(uid) if uid == opts.invoking_uid => Ok(()),
        Some(uid) => Err(format!(
            "{what} is owned by uid {uid}, not by you (uid {}); --all-users would include it",
            opts.invoking_uid
        )),
        None => Err(format!(
            "{what}'s owner is unknown; --all-users would include it"
        )),
    }
}

/// Lookups the planner makes once per finding, built once: O(N log N)
/// overall instead of a scan of the snapshot per finding.
struct Index<'a> {
    /// Semaphores by the id of the finding that names them (several for
    /// a creator family's finding).
    semaphores: HashMap<String, Vec<&'a Semaphore>>,
    processes: HashMap<i32, &'a Process>,
}

impl<'a> Index<'a> {
    fn new(snapshot: &'a Snapshot, findings: &[Finding]) -> Index<'a> {
        let mut semaphores: HashMap<String, Vec<&Semaphore>> = HashMap::new();
        if findings.iter().any(|f| f.kind == Kind::LeakedSemaphore) {
            // Grouped exactly as the rule grouped them, so ids agree.
            let unheld = leaked_semaphore::unheld(snapshot);
            let keys = leaked_semaphore::group_keys(&unheld);
            for (s, key) in unheld.into_iter().zip(&keys) {
                semaphores
                    .entry(leaked_semaphore::id_for(s, key.as_ref(), &snapshot.shm.dir))
                    .or_default()
                    .push(s);
            }
        }
        Index {
            semaphores,
            processes: snapshot.processes.iter().map(|p| (p.pid, p)).collect(),
        }
    }

    fn process(&self, pid: i32) -> Option<&'a Process> {
        self.processes.get(&pid).copied()
    }

    fn label(&self, pid: i32) -> String {
        process_label_of(pid, self.process(pid))
    }
}

/// Plan the cleanup of `findings` (from `snapshot`, after suppression:
/// what a baseline or allowlist accepts is never cleaned). Pure.
pub fn plan(snapshot: &Snapshot, findings: &[Finding], opts: &CleanOptions) -> Plan {
    let index = Index::new(snapshot, findings);
    let mut actions = Vec::new();
    for f in findings {
        if !kind_selected(opts, f.kind) {
            continue;
        }
        if !opts.inodes.is_empty() && f.kind != Kind::LeakedSemaphore {
            continue; // --inode picks semaphores only
        }
        match f.kind {
            Kind::LeakedSemaphore => actions.extend(plan_semaphores(snapshot, &index, f, opts)),
            Kind::Orphan => actions.extend(plan_orphans(snapshot, &index, f, opts)),
            Kind::Zombie => actions.extend(plan_zombies(snapshot, &index, f, opts)),
            _ => {} // nothing to clean: diagnostics only
        }
    }
    let visibility_complete =
        snapshot.visibility.skipped.is_empty() && snapshot.visibility.notes.is_empty();
    let mut notes = Vec::new();
    if opts.all_users {
        notes.push(format!(
            "--all-users: acting on resources of every user, not only your own (uid {})",
            opts.invoking_uid
        ));
    }
    if !visibility_complete {
        // Say why: uninspected processes, or the collector's own notes (a
        // nested pid namespace, an unreadable directory) as it wrote them.
        let why = if snapshot.visibility.skipped.is_empty() {
            snapshot.visibility.notes.join("; ")
        } else {
            format!(
                "{} of {} processes could not be inspected",
                snapshot.visibility.skipped.len(),
                snapshot.visibility.processes_total
            )
        };
        notes.push(format!(
            "visibility is incomplete: {why}{}",
            if opts.allow_incomplete {
                "; --allow-incomplete: semaphores they could hold are cleaned anyway"
            } else {
                "; semaphores they could hold are left alone (--allow-incomplete overrides)"
            }
        ));
    }
    let mut plan = Plan {
        schema_version: SCHEMA_VERSION,
        semleak_version: env!("CARGO_PKG_VERSION").to_string(),
        command: "clean".into(),
        dry_run: true,
        invoking_uid: opts.invoking_uid,
        all_users: opts.all_users,
        allow_incomplete: opts.allow_incomplete,
        min_age_secs: opts.min_age.as_secs(),
        shm_dir: snapshot.shm.dir.clone(),
        visibility_complete,
        notes,
        suppressed: Suppressed::default(),
        summary: CleanSummary::default(),
        actions,
    };
    plan.recount();
    plan
}

/// One action per semaphore the finding names (a creator family's finding
/// names many).
fn plan_semaphores(
    snapshot: &Snapshot,
    index: &Index<'_>,
    f: &Finding,
    opts: &CleanOptions,
) -> Vec<Action> {
    let named: HashSet<(u64, u64)> = f.subjects.iter().filter_map(Subject::file_key).collect();
    let sems: Vec<&Semaphore> = index
        .semaphores
        .get(&f.id)
        .map(|all| {
            all.iter()
                .copied()
                .filter(|s| named.contains(&(s.meta.dev, s.meta.inode)))
                .collect()
        })
        .unwrap_or_default();
    if sems.is_empty() {
        if !opts.inodes.is_empty() {
            return Vec::new();
        }
        let a = base_action(ActionKind::UnlinkSemaphore, f, f.resources().join(", "));
        return vec![skipped(a, "not found in the snapshot's inventory".into())];
    }
    sems.into_iter()
        .filter_map(|sem| plan_semaphore(snapshot, f, sem, opts))
        .collect()
}

fn plan_semaphore(
    snapshot: &Snapshot,
    f: &Finding,
    sem: &Semaphore,
    opts: &CleanOptions,
) -> Option<Action> {
    if !opts.inodes.is_empty() && !opts.inodes.contains(&sem.meta.inode) {
        return None;
    }
    if !name_matches(opts, sem.name.as_bytes()) {
        return None;
    }
    let mut a = base_action(ActionKind::UnlinkSemaphore, f, sem.path.to_lossy());
    a.owner_uid = Some(sem.meta.uid);
    if sem.unlinked || !sem.holders.is_empty() {
        return Some(skipped(
            a,
            format!("still held by pid(s) {:?}", sem.holders),
        ));
    }
    // Every reason that applies, at once: fixing one should not reveal
    // the next.
    let mut reasons: Vec<String> = Vec::new();
    match f.confidence {
        Confidence::Certain => {}
        Confidence::Likely if opts.allow_incomplete => {}
        Confidence::Likely => reasons.push(
            "leak is only likely: processes that could hold it were not inspected \
             (see the visibility note; --allow-incomplete accepts that)"
                .into(),
        ),
        Confidence::Possible => reasons.push(
            "not a well-formed glibc semaphore: semleak does not remove it; check it by hand"
                .into(),
        ),
    }
    if let Err(why) = owner_check(opts, Some(sem.meta.uid), "it") {
        reasons.push(why);
    }
    // Linking the final name changes ctime, writes change mtime: the newer
    // of the two is the last sign of life.
    let last_change = sem.meta.modified_at.max(sem.meta.changed_at);
    let age = crate::analyze::age_secs(snapshot, last_change);
    // A loky name carries its creator's pid: with that process gone, nobody
    // is about to use the semaphore, however young it is.
    let creator_gone = match Creator::infer(&sem.name) {
        Creator::Loky { pid } => snapshot
            .processes
            .iter()
            .all(|p| p.pid != pid || p.is_zombie()),
        _ => false,
    };
    if (age < 0 || (age as u64) < opts.min_age.as_secs()) && !creator_gone {
        reasons.push(format!(
            "last changed {}, younger than --min-age {}s (its creator may be about to use it)",
            human_age_ago(age, last_change),
            opts.min_age.as_secs()
        ));
    }
    if !reasons.is_empty() {
        return Some(skipped(a, reasons.join("; ")));
    }
    let file_name = RawName([b"sem.".as_slice(), sem.name.as_bytes()].concat());
    a.why = format!(
        "no process maps it ({} confidence), owner uid {}, last changed {} ago",
        f.confidence.as_str(),
        sem.meta.uid,
        human_age(age)
    );
    if sem.meta.uid != opts.invoking_uid {
        a.why.push_str("; owned by another user (--all-users)");
    }
    if creator_gone && (age < 0 || (age as u64) < opts.min_age.as_secs()) {
        a.why.push_str(
            "; younger than --min-age, but its creator (the pid in its loky name) is gone, \
             so nothing is about to use it",
        );
    }
    a.op = Op::Unlink {
        file_name,
        dev: sem.meta.dev,
        inode: sem.meta.inode,
    };
    Some(a)
}

fn base_action(action: ActionKind, f: &Finding, target: String) -> Action {
    Action {
        action,
        finding_id: f.id.clone(),
        kind: f.kind,
        target,
        pids: Vec::new(),
        owner_uid: None,
        why: String::new(),
        status: Status::Planned,
        outcome: Vec::new(),
        op: Op::None,
    }
}

fn plan_orphans(
    snapshot: &Snapshot,
    index: &Index<'_>,
    f: &Finding,
    opts: &CleanOptions,
) -> Vec<Action> {
    let mut out = Vec::new();
    for &pid in &f.pids {
        let proc_ = index.process(pid);
        if let Some(p) = proc_ {
            if !name_matches(opts, p.comm.as_bytes()) {
                continue;
            }
        } else if opts.names.is_some() {
            continue;
        }
        let mut a = base_action(ActionKind::Terminate, f, index.label(pid));
        a.pids = vec![pid];
        let Some(p) = proc_ else {
            out.push(skipped(a, "not in the snapshot any more".into()));
            continue;
        };
        a.owner_uid = p.uid;
        if pid <= 1 || pid == snapshot.host.collector_pid {
            out.push(skipped(a, "never signals init or semleak itself".into()));
            continue;
        }
        if p.is_zombie() {
            out.push(skipped(a, "already exited; its parent must reap it".into()));
            continue;
        }
        if let Err(why) = owner_check(opts, p.uid, "the process") {
            out.push(skipped(a, why));
            continue;
        }
        // Only a certain verdict is acted on by default: a `possible` orphan
        // (a setsid daemon reading a closed pipe, say) is never terminated.
        match f.confidence {
            Confidence::Possible => {
                out.push(skipped(
                    a,
                    "the orphan verdict is only possible: semleak never terminates it; \
                     check it by hand"
                        .into(),
                ));
                continue;
            }
            Confidence::Likely if !(opts.orphans && opts.likely_orphans) => {
                out.push(skipped(
                    a,
                    "the orphan verdict is only likely; --orphans --likely-orphans would \
                     terminate it (SIGTERM, then SIGKILL)"
                        .into(),
                ));
                continue;
            }
            _ => {}
        }
        if !opts.orphans {
            out.push(skipped(
                a,
                "orphaned worker; --orphans would terminate it (SIGTERM, then SIGKILL)".into(),
            ));
            continue;
        }
        let tracker = crate::analyze::orphan::is_resource_tracker(
            &crate::analyze::process_tree::command_text(p),
        );
        a.why = if tracker {
            format!(
                "orphaned resource tracker (parent pid {}, {} verdict): given time to unlink its \
                 workers' semaphores and exit by itself once they are gone, then SIGTERM and \
                 SIGKILL",
                p.ppid,
                f.confidence.as_str()
            )
        } else {
            format!(
                "orphaned worker (parent pid {}, {} verdict): SIGTERM, then SIGKILL if it outlives --kill-after",
                p.ppid,
                f.confidence.as_str()
            )
        };
        a.op = Op::Terminate {
            pid,
            start_ticks: p.start_ticks,
            tracker,
        };
        out.push(a);
    }
    out
}

fn plan_zombies(
    snapshot: &Snapshot,
    index: &Index<'_>,
    f: &Finding,
    opts: &CleanOptions,
) -> Option<Action> {
    let parent = f.parent_pid?;
    let parent_proc = index.process(parent);
    if opts.names.is_some() && !parent_proc.is_some_and(|p| name_matches(opts, p.comm.as_bytes())) {
        return None;
    }
    let mut a = base_action(ActionKind::Explain, f, index.label(parent));
    a.pids = f.pids.clone();
    let n = f.pids.len();
    let reaper = format!(
        "{n} zombie(s) cannot be removed directly; they go away when {} calls waitpid(), \
         or when it exits and init or a subreaper adopts and reaps them",
        index.label(parent)
    );
    let Some(p) = parent_proc else {
        return Some(skipped(a, reaper));
    };
    a.owner_uid = p.uid;
    if !opts.nudge_parents {
        return Some(skipped(
            a,
            format!("{reaper}; --nudge-parents would send it SIGCHLD"),
        ));
    }
    if parent <= 1 || parent == snapshot.host.collector_pid {
        return Some(skipped(a, format!("{reaper}; init is never signalled")));
    }
    if let Err(why) = owner_check(opts, p.uid, "the parent") {
        return Some(skipped(a, format!("{reaper}; {why}")));
    }
    if !crate::analyze::zombie::sigchld_nudge_can_help(p) {
        return Some(skipped(
            a,
            format!(
                "{reaper}; it neither catches SIGCHLD nor reaps on it (ignored or default), \
                 so a nudge cannot help: restart it"
            ),
        ));
    }
    a.action = ActionKind::NudgeParent;
    a.why = format!(
        "{n} zombie(s) wait for their parent to reap them: SIGCHLD asks it to \
         (effective only if it reaps in a SIGCHLD handler)"
    );
    a.op = Op::Nudge {
        pid: parent,
        start_ticks: p.start_ticks,
    };
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;
    use crate::analyze::{leaked_semaphore, Config, Severity};

    fn opts() -> CleanOptions {
        CleanOptions {
            invoking_uid: 1000,
            ..CleanOptions::default()
        }
    }

    fn leaked(snap: &Snapshot) -> Vec<Finding> {
        leaked_semaphore::check(snap, &Config::default())
    }

    fn orphan_finding(pids: &[i32]) -> Finding {
        let mut f = Finding::new(
            Kind::Orphan,
            b"worker",
            Severity::Error,
            Confidence::Certain,
        );
        f.pids = pids.to_vec();
        f
    }

    fn zombie_finding(parent: i32, zombies: &[i32]) -> Finding {
        let mut f = Finding::new(
            Kind::Zombie,
            b"parent",
            Severity::Warning,
            Confidence::Certain,
        );
        f.pids = zombies.to_vec();
        f.parent_pid = Some(parent);
        f
    }

    #[test]
    fn a_family_finding_plans_every_one_of_its_semaphores_and_nothing_held() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![
            sem("mp-aaaa1111", 1, &[]),
            sem("mp-bbbb2222", 2, &[]),
            sem("mp-cccc3333", 3, &[100]),
        ];
        snap.processes = vec![process(100, 1, "python3 w.py")];
        let findings = leaked(&snap);
        assert_eq!(findings.len(), 1);
        let plan = plan(&snap, &findings, &opts());
        let targets: Vec<&str> = plan.actions.iter().map(|a| a.target.as_str()).collect();
        assert_eq!(
            targets,
            ["/dev/shm/sem.mp-aaaa1111", "/dev/shm/sem.mp-bbbb2222"]
        );
        assert!(plan.actions.iter().all(|a| a.status == Status::Planned));
    }

    #[test]
    fn every_skip_reason_is_given_at_once() {
        let mut snap = snapshot();
        let mut s = sem("young", 7, &[]);
        s.meta.uid = 2000;
        s.meta.modified_at = (snap.taken_at_ms / 1000) as i64;
        s.meta.changed_at = s.meta.modified_at;
        snap.shm.semaphores = vec![s];
        skip(&mut snap, 555, None);
        let p = plan(&snap, &leaked(&snap), &opts());
        let why = &p.actions[0].why;
        assert!(why.contains("only likely"), "{why}");
        assert!(why.contains("--all-users"), "{why}");
        assert!(why.contains("--min-age"), "{why}");
    }

    #[test]
    fn a_young_loky_semaphore_whose_creator_is_gone_is_not_waited_for() {
        let mut snap = snapshot();
        let now = (snap.taken_at_ms / 1000) as i64;
        let mut mine = sem("loky-4242-abcdefgh", 7, &[]);
        mine.meta.modified_at = now;
        mine.meta.changed_at = now;
        let mut live = sem("loky-5151-abcdefgh", 8, &[]);
        live.meta.modified_at = now;
        live.meta.changed_at = now;
        snap.shm.semaphores = vec![mine, live];
        snap.processes = vec![process(5151, 1, "python3 -m loky")];
        let p = plan(&snap, &leaked(&snap), &opts());
        let gone = p
            .actions
            .iter()
            .find(|a| a.target.contains("4242"))
            .unwrap();
        assert_eq!(gone.status, Status::Planned, "{}", gone.why);
        assert!(gone.why.contains("creator"), "{}", gone.why);
        let running = p
            .actions
            .iter()
            .find(|a| a.target.contains("5151"))
            .unwrap();
        assert_eq!(running.status, Status::Skipped);
        assert!(
            running.why.contains("may be about to use it"),
            "{}",
            running.why
        );
    }

    #[test]
    fn unheld_old_own_semaphore_is_planned_with_its_inode() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![sem("mp-old", 7, &[]), sem("held", 8, &[100])];
        snap.processes = vec![process(100, 1, "python3 w.py")];
        let plan = plan(&snap, &leaked(&snap), &opts());
        assert_eq!(plan.actions.len(), 1, "{:?}", plan.actions);
        let a = &plan.actions[0];
        assert_eq!(a.status, Status::Planned);
        assert_eq!(a.action, ActionKind::UnlinkSemaphore);
        assert_eq!(a.target, "/dev/shm/sem.mp-old");
        assert_eq!(
            a.op,
            Op::Unlink {
                file_name: RawName(b"sem.mp-old".to_vec()),
                dev: 0x1a,
                inode: 7
            }
        );
        assert!(plan.dry_run);
        assert_eq!(plan.exit_code(), 0);
        assert_eq!(plan.summary.planned, 1);
    }

    #[test]
    fn min_age_uses_the_newer_of_mtime_and_ctime() {
        let mut snap = snapshot();
        let mut s = sem("young", 7, &[]);
        s.meta.changed_at = (NOW_MS / 1000) as i64 - 60; // linked a minute ago
        snap.shm.semaphores = vec![s];
        let p = plan(&snap, &leaked(&snap), &opts());
        assert_eq!(p.actions[0].status, Status::Skipped);
        assert!(
            p.actions[0].why.contains("--min-age"),
            "{}",
            p.actions[0].why
        );
        let o = CleanOptions {
            min_age: Duration::from_secs(30),
            ..opts()
        };
        assert_eq!(
            plan(&snap, &leaked(&snap), &o).actions[0].status,
            Status::Planned
        );
    }

    #[test]
    fn other_users_semaphores_need_all_users() {
        let mut snap = snapshot();
        let mut s = sem("theirs", 7, &[]);
        s.meta.uid = 1001;
        snap.shm.semaphores = vec![s];
        let p = plan(&snap, &leaked(&snap), &opts());
        assert_eq!(p.actions[0].status, Status::Skipped);
        assert!(p.actions[0].why.contains("uid 1001"));
        assert!(p.actions[0].why.contains("--all-users"));
        assert!(p.notes.is_empty());

        let o = CleanOptions {
            all_users: true,
            ..opts()
        };
        let p = plan(&snap, &leaked(&snap), &o);
        assert_eq!(p.actions[0].status, Status::Planned);
        assert!(p.actions[0].why.contains("another user"));
        assert!(p.notes.iter().any(|n| n.contains("--all-users")));
        assert!(p.all_users);
    }

    #[test]
    fn likely_leaks_need_allow_incomplete_and_possible_ones_are_never_cleaned() {
        let mut snap = snapshot();
        let mut odd = sem("odd", 9, &[]);
        odd.value = None;
        odd.unreadable_reason = Some("5 bytes".into());
        snap.shm.semaphores = vec![sem("x", 7, &[]), odd];
        skip(&mut snap, 555, Some(0));
        let p = plan(&snap, &leaked(&snap), &opts());
        assert!(p.actions.iter().all(|a| a.status == Status::Skipped));
        assert!(!p.visibility_complete);
        assert!(p.notes.iter().any(|n| n.contains("incomplete")));
        let o = CleanOptions {
            allow_incomplete: true,
            ..opts()
        };
        let p = plan(&snap, &leaked(&snap), &o);
        let by_target = |t: &str| p.actions.iter().find(|a| a.target.ends_with(t)).unwrap();
        assert_eq!(by_target("sem.x").status, Status::Planned);
        assert_eq!(by_target("sem.odd").status, Status::Skipped);
    }

    #[test]
    fn kind_and_name_filters() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![sem("mp-1", 7, &[]), sem("loky-1-x", 8, &[])];
        snap.processes = vec![process(300, 1, "python3 worker")];
        let mut findings = leaked(&snap);
        findings.push(orphan_finding(&[300]));
        let names = |g: &str| {
            let mut b = globset::GlobSetBuilder::new();
            b.add(globset::Glob::new(g).unwrap());
            Some(b.build().unwrap())
        };
        let o = CleanOptions {
            names: names("mp-*"),
            ..opts()
        };
        let p = plan(&snap, &findings, &o);
        let targets: Vec<&str> = p.actions.iter().map(|a| a.target.as_str()).collect();
        assert_eq!(targets, ["/dev/shm/sem.mp-1"]);
        let o = CleanOptions {
            kinds: vec![Kind::Orphan],
            ..opts()
        };
        let p = plan(&snap, &findings, &o);
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.actions[0].action, ActionKind::Terminate);
        let o = CleanOptions {
            names: names("python*"),
            ..opts()
        };
        let p = plan(&snap, &findings, &o);
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.actions[0].pids, [300]);
    }

    #[test]
    fn orphans_are_terminated_only_with_the_flag_and_when_owned() {
        let mut snap = snapshot();
        let mut theirs = process(301, 1, "python3 worker");
        theirs.uid = Some(0);
        snap.processes = vec![process(300, 1, "python3 worker"), theirs];
        let findings = vec![orphan_finding(&[300, 301, 302])];
        let p = plan(&snap, &findings, &opts());
        assert_eq!(p.actions.len(), 3);
        assert!(p.actions.iter().all(|a| a.status == Status::Skipped));
        assert!(p.actions[0].why.contains("--orphans"));

        let o = CleanOptions {
            orphans: true,
            ..opts()
        };
        let p = plan(&snap, &findings, &o);
        assert_eq!(p.actions[0].status, Status::Planned);
        assert_eq!(
            p.actions[0].op,
            Op::Terminate {
                pid: 300,
                start_ticks: 1300,
                tracker: false
            }
        );
        assert_eq!(p.actions[1].status, Status::Skipped);
        assert!(p.actions[1].why.contains("uid 0"));
        assert_eq!(p.actions[2].status, Status::Skipped);
        assert!(p.actions[2].target.contains("gone"));
    }

    #[test]
    fn only_certain_orphans_by_default_likely_behind_a_flag_possible_never() {
        let mut snap = snapshot();
        snap.processes = vec![
            process(300, 1, "python3 certain"),
            process(301, 1, "python3 likely"),
            process(302, 1, "setsid-daemon"),
        ];
        let with = |pid: i32, c: Confidence| {
            let mut f = orphan_finding(&[pid]);
            f.id = format!("orphan-{pid}");
            f.confidence = c;
            f
        };
        let findings = vec![
            with(300, Confidence::Certain),
            with(301, Confidence::Likely),
            with(302, Confidence::Possible),
        ];
        let status = |p: &Plan, pid: i32| {
            let a = p.actions.iter().find(|a| a.pids == [pid]).unwrap();
            (a.status, a.why.clone())
        };
        let o = CleanOptions {
            orphans: true,
            ..opts()
        };
        let p = plan(&snap, &findings, &o);
        assert_eq!(status(&p, 300).0, Status::Planned);
        let (st, why) = status(&p, 301);
        assert_eq!(st, Status::Skipped);
        assert!(why.contains("--likely-orphans"), "{why}");
        let (st, why) = status(&p, 302);
        assert_eq!(st, Status::Skipped);
        assert!(why.contains("never terminates"), "{why}");

        let o = CleanOptions {
            orphans: true,
            likely_orphans: true,
            all_users: true,
            ..opts()
        };
        let p = plan(&snap, &findings, &o);
        assert_eq!(status(&p, 300).0, Status::Planned);
        assert_eq!(status(&p, 301).0, Status::Planned);
        assert_eq!(status(&p, 302).0, Status::Skipped, "possible: never");
        // The flag alone (without --orphans) terminates nothing.
        let o = CleanOptions {
            likely_orphans: true,
            ..opts()
        };
        assert_eq!(plan(&snap, &findings, &o).summary.planned, 0);
    }

    #[test]
    fn inode_picks_one_semaphore_and_no_process() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![sem("a", 7, &[]), sem("b", 8, &[])];
        snap.processes = vec![process(300, 1, "python3 worker")];
        let mut findings = leaked(&snap);
        findings.push(orphan_finding(&[300]));
        let o = CleanOptions {
            inodes: vec![8],
            orphans: true,
            ..opts()
        };
        let p = plan(&snap, &findings, &o);
        assert_eq!(p.actions.len(), 1, "{:?}", p.actions);
        assert_eq!(p.actions[0].target, "/dev/shm/sem.b");
        assert_eq!(p.actions[0].status, Status::Planned);
    }

    #[test]
    fn planning_many_semaphores_matches_each_finding_once() {
        let mut snap = snapshot();
        snap.shm.semaphores = (0..5000)
            .map(|i| sem(&format!("mp-{i:05}"), i, &[]))
            .collect();
        let p = plan(&snap, &leaked(&snap), &opts());
        assert_eq!(p.summary.planned, 5000);
        assert!(p
            .actions
            .iter()
            .zip(&snap.shm.semaphores)
            .all(|(a, s)| a.target == s.path.to_lossy()));
    }

    #[test]
    fn out_of_range_file_times_are_said_not_panicked_on() {
        let mut snap = snapshot();
        let mut s = sem("future", 7, &[]);
        s.meta.modified_at = 253_402_300_800; // touch -d @253402300800: year 10000
        s.meta.changed_at = i64::MAX;
        snap.shm.semaphores = vec![s];
        let p = plan(&snap, &leaked(&snap), &opts());
        assert_eq!(p.actions[0].status, Status::Skipped);
        assert!(
            p.actions[0].why.contains("out-of-range"),
            "{}",
            p.actions[0].why
        );
    }

    #[test]
    fn init_and_semleak_are_never_targets() {
        let mut snap = snapshot();
        snap.processes = vec![process(1, 0, "init"), process(99_999, 1, "semleak clean")];
        let o = CleanOptions {
            orphans: true,
            all_users: true,
            ..opts()
        };
        let p = plan(&snap, &[orphan_finding(&[1, 99_999])], &o);
        assert!(p.actions.iter().all(|a| a.status == Status::Skipped));
    }

    #[test]
    fn zombies_are_explained_or_their_parent_nudged() {
        let mut snap = snapshot();
        let mut z = process(401, 400, "");
        z.state = 'Z';
        snap.processes = vec![process(400, 1, "python3 dispatcher.py"), z];
        let findings = vec![zombie_finding(400, &[401])];
        let p = plan(&snap, &findings, &opts());
        let a = &p.actions[0];
        assert_eq!(a.action, ActionKind::Explain);
        assert_eq!(a.status, Status::Skipped);
        assert!(a
            .why
            .contains("pid 400 (python3 dispatcher.py) calls waitpid()"));
        assert!(a.why.contains("--nudge-parents"));
        assert_eq!(p.exit_code(), 0);

        let o = CleanOptions {
            nudge_parents: true,
            ..opts()
        };
        let p = plan(&snap, &findings, &o);
        let a = &p.actions[0];
        assert_eq!(a.action, ActionKind::NudgeParent);
        assert_eq!(a.status, Status::Planned);
        assert_eq!(a.pids, [401]);
        assert_eq!(
            a.op,
            Op::Nudge {
                pid: 400,
                start_ticks: 1400
            }
        );

        // A parent known to leave SIGCHLD at its default gets no nudge.
        snap.processes[0].sig_caught = Some(0);
        snap.processes[0].sig_ignored = Some(0);
        let p = plan(&snap, &findings, &o);
        let a = &p.actions[0];
        assert_eq!(a.status, Status::Skipped);
        assert!(a.why.contains("a nudge cannot help"), "{}", a.why);
    }

    #[test]
    fn undiagnosable_kinds_produce_no_actions() {
        let snap = snapshot();
        let f = Finding::new(
            Kind::FullWakeupPipe,
            b"x",
            Severity::Error,
            Confidence::Certain,
        );
        assert!(plan(&snap, &[f], &opts()).actions.is_empty());
    }

    #[test]
    fn exit_code_reflects_refusals_and_failures() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![sem("a", 7, &[])];
        let mut p = plan(&snap, &leaked(&snap), &opts());
        p.actions[0].status = Status::Done;
        assert_eq!(p.exit_code(), 0);
        p.actions[0].status = Status::Refused;
        assert_eq!(p.exit_code(), 1);
        p.actions[0].status = Status::Failed;
        assert_eq!(p.exit_code(), 1);
    }

    #[test]
    fn plan_json_shape() {
        let mut snap = snapshot();
        snap.shm.semaphores = vec![sem("mp-old", 7, &[])];
        let p = plan(&snap, &leaked(&snap), &opts());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["command"], "clean");
        assert_eq!(v["dry_run"], true);
        assert_eq!(v["actions"][0]["action"], "unlink_semaphore");
        assert_eq!(v["actions"][0]["kind"], "leaked_semaphore");
        assert_eq!(v["actions"][0]["status"], "planned");
        assert_eq!(v["summary"]["planned"], 1);
        assert!(v["actions"][0].get("op").is_none());
    }
}
