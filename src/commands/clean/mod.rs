//! `semleak clean`: plan the cleanup of what a fresh scan found, then (with
//! `--yes`) act on it. [`plan`] is pure; [`execute`] is the only part with
//! side effects.

pub mod execute;
pub mod plan;

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use super::{load_suppressor, suppress, write_stdout};
use crate::analyze::{self, Config};
use crate::cli::{CleanArgs, CleanFormat};
use crate::exit::AppError;
use crate::report::{json, table};

pub use execute::{execute, ExecEnv};
pub use plan::{plan, CleanOptions};

pub fn clean(args: &CleanArgs) -> Result<i32, AppError> {
    // The same suppressions as `scan`: what a baseline or allowlist accepts
    // is never cleaned.
    let suppressor = load_suppressor(&args.suppress)?;
    let mut collect = args.collect.options();
    // Wakeup channels have nothing to clean: skip their sampling window.
    collect.sample_window = std::time::Duration::ZERO;
    let snapshot = semleak_platform::collect(&collect)?;
    let findings = analyze::analyze(&snapshot, &Config::default());
    let (findings, suppressed) = suppress(&suppressor, &snapshot, findings);
    let names = if args.names.is_empty() {
        None
    } else {
        let mut b = globset::GlobSetBuilder::new();
        for g in &args.names {
            // Validated by clap already.
            if let Ok(glob) = globset::Glob::new(g) {
                b.add(glob);
            }
        }
        b.build().ok()
    };
    let opts = CleanOptions {
        yes: args.yes,
        min_age: args.min_age,
        all_users: args.all_users,
        allow_incomplete: args.allow_incomplete,
        orphans: args.orphans,
        likely_orphans: args.likely_orphans,
        nudge_parents: args.nudge_parents,
        kinds: args.kinds.clone(),
        names,
        inodes: args.inodes.clone(),
        invoking_uid: snapshot.host.collector_uid,
    };
    let mut plan = plan(&snapshot, &findings, &opts);
    if suppressed.total() > 0 {
        plan.notes.push(format!(
            "{} finding(s) accepted by a baseline or allowlist are left alone ({} by baseline, {} by allowlist)",
            suppressed.total(),
            suppressed.baseline,
            suppressed.allowlist
        ));
    }
    plan.suppressed = suppressed;
    if args.yes {
        let env = ExecEnv {
            // The directory as collection resolved it (absolute, symlinks
            // followed once): the executor opens it without following links.
            shm_dir: PathBuf::from(&snapshot.shm.dir),
            proc_root: collect.proc_root.clone(),
            kill_after: args.kill_after,
            allow_incomplete: args.allow_incomplete,
        };
        execute(&mut plan, &env);
    }
    let text = match args.format {
        CleanFormat::Json => json::render_clean(&plan),
        CleanFormat::Table => table::render_clean(&plan, io::stdout().is_terminal()),
    };
    write_stdout(&text)?;
    Ok(plan.exit_code())
}
