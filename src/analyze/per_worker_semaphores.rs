//! `per_worker_semaphores`: sibling workers (one parent, one command line)
//! that each hold semaphores of their own — the first motivating incident,
//! where every spawned worker made a spurious `multiprocessing.Event()` (5
//! semaphores) until macOS ran out at `kern.posix.sem.max`. One finding
//! per group lists every worker, counting only the semaphores each maps
//! alone, never those its parent passed in or it shares with siblings.
//!
//! Info by default; a warning when the group's private semaphores reach
//! `--per-worker-semaphores` or a tenth of a limit they use up: the
//! shared-memory filesystem's inodes (Linux, one per semaphore file),
//! `vm.max_map_count` for the worker mapping the most (Linux, one mapping
//! per semaphore), or `kern.posix.sem.max` (macOS, names).

use semleak_platform::Snapshot;

use super::creator::Creator;
use super::sem_holders::{
    group_key, per_process, short_command, sibling_groups, SemTable, SiblingGroup,
};
use super::{process_label, Confidence, Config, Finding, Kind, Severity};

/// Workers with private semaphores that make a pattern.
const MIN_WORKERS: usize = 2;
/// Share of a limit (percent) from which the pattern is a warning.
pub const LIMIT_SHARE_PERCENT: u64 = 10;
/// Private semaphores named in the evidence as examples.
const EXAMPLES: usize = 5;

pub fn check(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    let table = SemTable::of(snapshot);
    let mut out: Vec<Finding> = sibling_groups(snapshot, &table)
        .iter()
        .filter(|g| g.members.iter().filter(|m| !m.private.is_empty()).count() >= MIN_WORKERS)
        .map(|g| finding(snapshot, config, &table, g))
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// A limit the group's semaphores use a share of, in words, and whether
/// that share reaches [`LIMIT_SHARE_PERCENT`].
fn limit_shares(snapshot: &Snapshot, table: &SemTable, g: &SiblingGroup) -> Vec<(String, bool)> {
    let workers = g.members.iter().filter(|m| !m.private.is_empty());
    let private: Vec<usize> = workers
        .clone()
        .flat_map(|m| m.private.iter().copied())
        .collect();
    let share = |used: u64, limit: u64| {
        (
            used * 100 / limit.max(1),
            used * 100 >= limit * LIMIT_SHARE_PERCENT,
        )
    };
    let mut out = Vec::new();
    if let Some(usage) = snapshot.shm.usage.as_ref().filter(|u| u.inodes_total > 0) {
        let (pct, over) = share(private.len() as u64, usage.inodes_total);
        out.push((
            format!(
                "they use {} of the {} inodes of {} ({pct}%): one per semaphore file",
                private.len(),
                usage.inodes_total,
                snapshot.shm.dir
            ),
            over,
        ));
    }
    if let Some(max_maps) = snapshot.limits.max_map_count.filter(|m| *m > 0) {
        if let Some(m) = workers
            .clone()
            .max_by_key(|m| m.private.len() + m.shared.len())
        {
            let maps = (m.private.len() + m.shared.len()) as u64;
            let (pct, over) = share(maps, max_maps);
            out.push((
                format!(
                    "the worker mapping the most, pid {}, maps {maps} semaphores: {maps} of the {max_maps} mappings vm.max_map_count allows it ({pct}%)",
                    m.process.pid
                ),
                over,
            ));
        }
    }
    if let Some(max) = snapshot.limits.sem_max.filter(|m| *m > 0) {
        let named = private.iter().filter(|&&i| table.entries[i].named).count() as u64;
        let (pct, over) = share(named, max);
        out.push((
            format!("{named} of them are named, {pct}% of kern.posix.sem.max {max}"),
            over,
        ));
    }
    out
}

fn finding(snapshot: &Snapshot, config: &Config, table: &SemTable, g: &SiblingGroup) -> Finding {
    let workers: Vec<_> = g.members.iter().filter(|m| !m.private.is_empty()).collect();
    let total = g.private_total();
    let shares = limit_shares(snapshot, table, g);
    let over_limit = shares.iter().any(|(_, over)| *over);
    let over_count = total >= config.per_worker_warning_at.max(1);
    let severity = if over_count || over_limit {
        Severity::Warning
    } else {
        Severity::Info
    };
    let confidence = if snapshot.visibility.skipped.is_empty() {
        Confidence::Certain
    } else {
        Confidence::Likely
    };
    let parent = snapshot.process(g.parent);
    let mut subject = g.key.clone().into_bytes();
    subject.push(0);
    subject.extend_from_slice(parent.map(group_key).unwrap_or_default().as_bytes());
    let mut f = Finding::new(Kind::PerWorkerSemaphores, &subject, severity, confidence);

    let each = per_process(workers.iter().map(|m| m.private.len()));
    f.headline(format!(
        "{} workers (`{}`) each hold {each} private semaphore{}, {total} in all; a per-worker primitive created in every child",
        workers.len(),
        short_command(workers[0].process, 72),
        if each == "1" { "" } else { "s" },
    ));
    f.pids = workers.iter().map(|m| m.process.pid).collect();
    f.parent_pid = (g.parent > 1).then_some(g.parent);
    f.subjects = workers
        .iter()
        .flat_map(|m| m.private.iter().map(|&i| table.entries[i].subject.clone()))
        .collect();

    f.say(format!(
        "{} sibling process(es) with this command line, children of {}",
        g.members.len(),
        process_label(snapshot, g.parent)
    ));
    let shared = per_process(workers.iter().map(|m| m.shared.len()));
    f.say(format!(
        "each worker maps {each} semaphore(s) no other process maps (private) and {shared} shared with other processes (inherited from or passed in by the parent, or shared with siblings); only the private ones are counted here"
    ));
    let idle = g.members.len() - workers.len();
    if idle > 0 {
        f.say(format!(
            "{idle} more sibling(s) with the same command line hold none of their own"
        ));
    }
    let first = workers[0];
    let examples: Vec<&str> = first
        .private
        .iter()
        .take(EXAMPLES)
        .map(|&i| table.entries[i].label.as_str())
        .collect();
    f.say(format!(
        "pid {}'s own: {}{}",
        first.process.pid,
        examples.join(", "),
        if first.private.len() > EXAMPLES {
            ", …"
        } else {
            ""
        }
    ));
    let display = |i: usize| {
        let n = table.entries[i].name.as_slice();
        semleak_platform::RawName::from(n.strip_prefix(b"/").unwrap_or(n))
    };
    if first
        .private
        .iter()
        .all(|&i| Creator::infer(&display(i)) == Creator::CpythonMultiprocessing)
    {
        f.say(
            "the names are CPython multiprocessing's (`mp-`): a multiprocessing Event() costs 5 \
             semaphores, a Lock(), RLock() or Semaphore() 1, a Condition() 4"
                .into(),
        );
    }
    for (line, _) in &shares {
        f.say(line.clone());
    }
    f.say(format!(
        "{total} private semaphores in all; a warning from {} (--per-worker-semaphores) or from {LIMIT_SHARE_PERCENT}% of a limit",
        config.per_worker_warning_at
    ));

    f.recommendation = "Every worker creates semaphores that nothing else uses: usually a \
        multiprocessing Event(), Lock(), Semaphore() or Condition() created when a module is \
        imported (a module-level global: spawn and forkserver workers import the main module \
        and its imports again, each making its own) or per task inside the worker function and \
        kept alive. Create such primitives once in the parent and pass them to the workers \
        (Process arguments or the pool's initializer), or do without them. Each one costs named \
        semaphores that count against /dev/shm inodes and vm.max_map_count (Linux) and \
        kern.posix.sem.max (macOS) for as long as the worker lives."
        .into();
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;
    use semleak_platform::{FsUsage, RawName};

    const SPAWN: &str =
        "python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=N) --multiprocessing-fork";

    /// The scenario on Linux: `workers` spawn workers, each mapping
    /// the 5 semaphores of an Event its parent passed in and 5 of its own.
    fn pool(workers: i32) -> Snapshot {
        let mut snap = snapshot();
        snap.processes.push(process(500, 1, "python3 executor.py"));
        let mut inode = 1;
        for w in 0..workers {
            let pid = 1000 + w;
            snap.processes.push(process(
                pid,
                500,
                &SPAWN.replace('N', &(10 + w).to_string()),
            ));
            for k in 0..5 {
                snap.shm
                    .semaphores
                    .push(sem(&format!("mp-pass{w:02}{k:02}"), inode, &[500, pid]));
                snap.shm
                    .semaphores
                    .push(sem(&format!("mp-own0{w:02}{k:02}"), inode + 1, &[pid]));
                inode += 2;
            }
        }
        snap
    }

    #[test]
    fn eight_spawn_workers_with_a_spurious_event_are_one_finding() {
        let snap = pool(8);
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1, "{f:#?}");
        let f = &f[0];
        assert_eq!(f.kind, Kind::PerWorkerSemaphores);
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.confidence, Confidence::Certain);
        assert_eq!(f.pids, (1000..1008).collect::<Vec<_>>());
        assert_eq!(f.parent_pid, Some(500));
        assert!(
            f.summary_text().starts_with("8 workers (`python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tra…`) each hold 5 private semaphores, 40 in all; a per-worker primitive created in every child"),
            "{}",
            f.summary_text()
        );
        assert_eq!(f.resources().len(), 40);
        assert!(f
            .resources()
            .iter()
            .all(|r| r.starts_with("/dev/shm/sem.mp-own0")));
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("5 shared with other processes")));
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("an Event() costs 5") || e.contains("Event() costs 5")));
        assert!(f.recommendation.contains("imported"));
    }

    #[test]
    fn twenty_four_workers_warn_about_their_own_not_the_parents() {
        let snap = pool(24);
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning, "120 ≥ 100");
        assert!(
            f[0].summary_text().contains("120 in all"),
            "{}",
            f[0].summary_text()
        );
        assert!(!f[0].pids.contains(&500));
        assert!(!f[0].resources().iter().any(|r| r.contains("mp-pass")));
        let lenient = Config {
            per_worker_warning_at: 121,
            ..Config::default()
        };
        assert_eq!(check(&snap, &lenient)[0].severity, Severity::Info);
    }

    #[test]
    fn a_tenth_of_a_limit_is_a_warning() {
        let mut snap = pool(8);
        snap.shm.usage = Some(FsUsage {
            bytes_total: 1 << 30,
            bytes_free: 1 << 29,
            inodes_total: 400,
            inodes_free: 300,
        });
        let f = &check(&snap, &Config::default())[0];
        assert_eq!(f.severity, Severity::Warning, "40 of 400 inodes");
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("40 of the 400 inodes of /dev/shm (10%)")));

        let mut snap = pool(8);
        snap.limits.max_map_count = Some(100);
        let f = &check(&snap, &Config::default())[0];
        assert_eq!(f.severity, Severity::Warning, "10 of 100 mappings");
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e.contains("10 of the 100 mappings vm.max_map_count allows it (10%)")));
        snap.limits.max_map_count = Some(65_530);
        assert_eq!(check(&snap, &Config::default())[0].severity, Severity::Info);
    }

    #[test]
    fn shared_only_pools_and_lone_holders_are_quiet() {
        let mut snap = pool(8);
        snap.shm
            .semaphores
            .retain(|s| s.name.as_bytes().starts_with(b"mp-pass"));
        assert!(check(&snap, &Config::default()).is_empty());
        // One worker with private semaphores is no pattern.
        let mut snap = pool(1);
        snap.processes.push(process(1001, 500, "python3 other.py"));
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn macos_workers_count_names_against_the_limit() {
        let mut snap = macos_snapshot();
        snap.limits.sem_max = Some(100);
        snap.processes.push(process(500, 1, "python3.11 engine.py"));
        for w in 0..4 {
            let mut p = process(1000 + w, 500, &SPAWN.replace('N', &w.to_string()));
            p.psem_names = (0..5)
                .map(|k| RawName::from(format!("/mp-{w:03}{k:04}")))
                .collect();
            snap.processes.push(p);
        }
        // One worker's names were unlinked: held, not counted.
        snap.probed_semaphores = (0..5)
            .map(|k| semleak_platform::ProbedSemaphore {
                name: format!("/mp-000{k:04}").into(),
                exists: false,
            })
            .collect();
        let f = &check(&snap, &Config::default())[0];
        assert!(
            f.summary_text().contains("4 workers"),
            "{}",
            f.summary_text()
        );
        assert!(
            f.summary_text().contains("20 in all"),
            "{}",
            f.summary_text()
        );
        assert!(f
            .evidence_lines()
            .iter()
            .any(|e| e == "15 of them are named, 15% of kern.posix.sem.max 100"));
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.resources().contains(&"/mp-0010000".to_string()));
    }

    #[test]
    fn the_id_survives_new_pids_and_counts() {
        let a = check(&pool(8), &Config::default());
        let b = check(&pool(24), &Config::default());
        assert_eq!(a[0].id, b[0].id);
    }
}
