//! `semleak run --clean`: remove exactly the semaphores the run blamed on
//! the command, through `semleak clean`'s planner and executor (each one
//! re-checked right before its unlink, never through a symlink).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use semleak_platform::Snapshot;

use crate::analyze::{leaked_semaphore, Confidence, Config, Finding, Kind, Subject};
use crate::commands::clean::{execute, plan, CleanOptions, ExecEnv};
use crate::report::clean::{Op, Plan, Status};

/// Plan and carry out the removal of the semaphores that `findings` (the
/// run's, after suppression) blame on the command, from `snapshot` (the
/// look after the leftovers were gone). A semaphore only `possible`ly the
/// command's (nobody was seen holding it) is never touched.
pub fn remove_blamed(
    findings: &[Finding],
    snapshot: &Snapshot,
    proc_root: PathBuf,
    allow_incomplete: bool,
) -> Plan {
    let blamed: HashSet<(u64, u64)> = findings
        .iter()
        .filter(|f| f.kind == Kind::LeakedSemaphore && f.confidence != Confidence::Possible)
        .flat_map(|f| f.subjects.iter().filter_map(Subject::file_key))
        .collect();
    // The scan's own findings narrowed to those semaphores, so the planner
    // matches them exactly as `semleak clean` would (same ids, confidence
    // from this snapshot's visibility).
    let scan: Vec<Finding> = leaked_semaphore::check(snapshot, &Config::default())
        .into_iter()
        .filter_map(|mut f| {
            f.subjects
                .retain(|s| s.file_key().is_some_and(|k| blamed.contains(&k)));
            f.cleanup
                .retain(|c| c.file_key().is_some_and(|k| blamed.contains(&k)));
            (!f.subjects.is_empty()).then_some(f)
        })
        .collect();
    let opts = CleanOptions {
        yes: true,
        // The command made them and has ended: nobody is about to use them.
        min_age: Duration::ZERO,
        allow_incomplete,
        kinds: vec![Kind::LeakedSemaphore],
        invoking_uid: snapshot.host.collector_uid,
        ..CleanOptions::default()
    };
    let mut plan = plan(snapshot, &scan, &opts);
    let env = ExecEnv {
        shm_dir: PathBuf::from(&snapshot.shm.dir),
        proc_root,
        kill_after: Duration::ZERO,
        allow_incomplete,
    };
    execute(&mut plan, &env);
    plan
}

/// The files (device, inode) the plan removed.
pub fn removed_files(plan: &Plan) -> HashSet<(u64, u64)> {
    plan.actions
        .iter()
        .filter(|a| a.status == Status::Done)
        .filter_map(|a| match &a.op {
            Op::Unlink { dev, inode, .. } => Some((*dev, *inode)),
            _ => None,
        })
        .collect()
}

/// Paths the plan removed.
pub fn removed(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter(|a| a.status == Status::Done)
        .map(|a| a.target.clone())
        .collect()
}
