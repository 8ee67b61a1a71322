//! `semleak run --clean`: remove exactly the semaphores the run blamed on
//! the command, through `semleak clean`'s planner and executor (each one
//! re-checked right before its unlink, never through a symlink).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use semleak_platform::Snapshot;

use crate::analyze::{leaked_semaphore, Confidence, Config, Finding, Kind};
use crate::commands::clean::{execute, plan, CleanOptions, ExecEnv};
use crate::report::clean::{Plan, Status};

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
    let blamed: HashSet<&str> = findings
        .iter()
        .filter(|f| f.kind == Kind::LeakedSemaphore && f.confidence != Confidence::Possible)
        .flat_map(|f| f.resources.iter().map(String::as_str))
        .collect();
    // The scan's own findings narrowed to those semaphores, so the planner
    // matches them exactly as `semleak clean` would (same ids, confidence
    // from this snapshot's visibility).
    let scan: Vec<Finding> = leaked_semaphore::check(snapshot, &Config::default())
        .into_iter()
        .filter_map(|mut f| {
            f.resources.retain(|r| blamed.contains(r.as_str()));
            (!f.resources.is_empty()).then_some(f)
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

/// Paths the plan removed.
pub fn removed(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter(|a| a.status == Status::Done)
        .map(|a| a.target.clone())
        .collect()
}
