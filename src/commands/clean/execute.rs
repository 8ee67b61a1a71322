//! Executing a `semleak clean` plan: the only part with side effects. Every
//! OS step goes through `semleak_platform::control`, which re-checks its
//! target right before it acts; each action records what happened.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use semleak_platform::control::{
    self, ExpectedFile, ShmDir, Signal, SignalOutcome, UnlinkRefused, Unverifiable,
};

use crate::report::clean::{Op, Plan, Status};

/// Where and how to act.
#[derive(Debug, Clone)]
pub struct ExecEnv {
    pub shm_dir: PathBuf,
    pub proc_root: PathBuf,
    /// SIGTERM → SIGKILL bound.
    pub kill_after: Duration,
    pub allow_incomplete: bool,
}

/// Carry out every planned action, re-checking each target right before it
/// acts, and record what happened.
pub fn execute(plan: &mut Plan, env: &ExecEnv) {
    plan.dry_run = false;
    execute_unlinks(plan, env);
    execute_terminations(plan, env);
    execute_nudges(plan, env);
    plan.recount();
}

fn execute_unlinks(plan: &mut Plan, env: &ExecEnv) {
    let policy = if env.allow_incomplete {
        Unverifiable::Accept
    } else {
        Unverifiable::Refuse
    };
    let planned: Vec<usize> = (0..plan.actions.len())
        .filter(|&i| {
            plan.actions[i].status == Status::Planned
                && matches!(plan.actions[i].op, Op::Unlink { .. })
        })
        .collect();
    if planned.is_empty() {
        return;
    }
    // Resolved once (a symlinked /dev/shm), then opened without following
    // links; each entry is still checked by device and inode.
    let shm = match ShmDir::resolve(&env.shm_dir).and_then(|resolved| ShmDir::open(&resolved)) {
        Ok(d) => d,
        Err(e) => {
            let why = format!("cannot open {}: {e}", env.shm_dir.display());
            for i in planned {
                plan.actions[i].status = Status::Failed;
                plan.actions[i].outcome.push(why.clone());
            }
            return;
        }
    };
    // One holder index for the batch (control rebuilds it when it ages),
    // and each entry re-checked right before its unlink.
    let batch: Vec<(&[u8], ExpectedFile)> = planned
        .iter()
        .filter_map(|&i| match &plan.actions[i].op {
            Op::Unlink {
                file_name,
                dev,
                inode,
            } => Some((
                file_name.as_bytes(),
                ExpectedFile {
                    dev: *dev,
                    inode: *inode,
                },
            )),
            _ => None,
        })
        .collect();
    let results = shm.unlink_semaphores(&batch, &env.proc_root, policy);
    for (i, result) in planned.into_iter().zip(results) {
        let a = &mut plan.actions[i];
        match result {
            Ok(done) => {
                a.status = Status::Done;
                a.outcome
                    .push("re-checked (same inode, no holder) and unlinked".into());
                if !done.unverified.is_empty() {
                    let shown: Vec<String> = done
                        .unverified
                        .iter()
                        .take(10)
                        .map(|p| p.to_string())
                        .collect();
                    a.outcome.push(format!(
                        "unverified: the maps of {} process(es) could not be read (pids {}{}; --allow-incomplete)",
                        done.unverified.len(),
                        shown.join(", "),
                        if done.unverified.len() > 10 { ", …" } else { "" }
                    ));
                }
            }
            Err(UnlinkRefused::Gone) => {
                a.status = Status::Done;
                a.outcome
                    .push("already gone (removed by someone else)".into());
            }
            Err(e @ UnlinkRefused::Io { .. }) => {
                a.status = Status::Failed;
                a.outcome.push(e.to_string());
            }
            Err(e) => {
                a.status = Status::Refused;
                a.outcome.push(format!("not removed: {e}"));
            }
        }
    }
}

fn describe_signal_failure(out: SignalOutcome, signal: Signal) -> (Status, String) {
    match out {
        SignalOutcome::Sent => (Status::Done, format!("sent {}", signal.name())),
        SignalOutcome::Gone => (Status::Done, "already exited and reaped".into()),
        SignalOutcome::Exited => (
            Status::Done,
            "already exited (a zombie until its parent reaps it)".into(),
        ),
        SignalOutcome::Reused { start_ticks } => (
            Status::Refused,
            format!("pid now belongs to another process (start time {start_ticks}): not signalled"),
        ),
        SignalOutcome::Failed(e) => (
            Status::Failed,
            format!("{} could not be sent: {e}", signal.name()),
        ),
    }
}

/// Workers first; then resource trackers, which unlink the workers'
/// semaphores and exit by themselves once the workers are gone (they ignore
/// SIGTERM): only those still running after that are signalled.
fn execute_terminations(plan: &mut Plan, env: &ExecEnv) {
    terminate_ladder(plan, env, false);
    let trackers: Vec<(usize, i32, u64)> = plan
        .actions
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a.op {
            Op::Terminate {
                pid,
                start_ticks,
                tracker: true,
            } if a.status == Status::Planned => Some((i, pid, start_ticks)),
            _ => None,
        })
        .collect();
    if trackers.is_empty() {
        return;
    }
    let ended = |pid, ticks| control::has_ended(&env.proc_root, pid, ticks);
    let started = Instant::now();
    let wait = env
        .kill_after
        .max(crate::analyze::orphan::RESOURCE_TRACKER_GRACE);
    while started.elapsed() < wait && !trackers.iter().all(|&(_, p, t)| ended(p, t)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, pid, ticks) in trackers {
        if ended(pid, ticks) {
            let a = &mut plan.actions[i];
            a.status = Status::Done;
            a.outcome.push(format!(
                "exited by itself within {} of its workers' end (it unlinks what they left)",
                fmt_duration(started.elapsed().min(wait))
            ));
        }
    }
    terminate_ladder(plan, env, true);
}

/// SIGTERM every planned termination of trackers (or of the others), wait
/// one shared `--kill-after`, SIGKILL the rest.
fn terminate_ladder(plan: &mut Plan, env: &ExecEnv, trackers: bool) {
    // Every target gets SIGTERM first, so they all share one --kill-after window.
    let mut waiting: Vec<(usize, i32, u64)> = Vec::new();
    for (i, a) in plan.actions.iter_mut().enumerate() {
        let Op::Terminate {
            pid,
            start_ticks,
            tracker,
        } = a.op
        else {
            continue;
        };
        if a.status != Status::Planned || tracker != trackers {
            continue;
        }
        match control::signal_same_process(&env.proc_root, pid, start_ticks, Signal::Term) {
            SignalOutcome::Sent => {
                a.outcome.push("sent SIGTERM".into());
                waiting.push((i, pid, start_ticks));
            }
            other => {
                let (status, text) = describe_signal_failure(other, Signal::Term);
                a.status = status;
                a.outcome.push(text);
            }
        }
    }
    if waiting.is_empty() {
        return;
    }
    let started = Instant::now();
    let ended = |pid, ticks| control::has_ended(&env.proc_root, pid, ticks);
    while started.elapsed() < env.kill_after && !waiting.iter().all(|&(_, p, t)| ended(p, t)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut killed = Vec::new();
    for &(i, pid, ticks) in &waiting {
        let a = &mut plan.actions[i];
        if ended(pid, ticks) {
            a.status = Status::Done;
            a.outcome.push(format!(
                "exited within {} of SIGTERM",
                fmt_duration(started.elapsed().min(env.kill_after))
            ));
            continue;
        }
        match control::signal_same_process(&env.proc_root, pid, ticks, Signal::Kill) {
            SignalOutcome::Sent => {
                a.outcome.push(format!(
                    "still running after {}: sent SIGKILL",
                    fmt_duration(env.kill_after)
                ));
                killed.push((i, pid, ticks));
            }
            other => {
                let (status, text) = describe_signal_failure(other, Signal::Kill);
                a.status = status;
                a.outcome.push(text);
            }
        }
    }
    // SIGKILL cannot be caught, but delivery to a process stuck in the
    // kernel can take a moment: confirm, within a bound.
    let confirm = Instant::now();
    while confirm.elapsed() < Duration::from_secs(5) && !killed.iter().all(|&(_, p, t)| ended(p, t))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, pid, ticks) in killed {
        let a = &mut plan.actions[i];
        if ended(pid, ticks) {
            a.status = Status::Done;
            a.outcome
                .push("killed; its parent (not semleak) reaps it".into());
        } else {
            a.status = Status::Failed;
            a.outcome
                .push("still running 5s after SIGKILL (uninterruptible sleep?)".into());
        }
    }
}

fn execute_nudges(plan: &mut Plan, env: &ExecEnv) {
    for a in &mut plan.actions {
        let Op::Nudge { pid, start_ticks } = a.op else {
            continue;
        };
        if a.status != Status::Planned {
            continue;
        }
        let out = control::signal_same_process(&env.proc_root, pid, start_ticks, Signal::Child);
        let (status, text) = describe_signal_failure(out, Signal::Child);
        a.status = status;
        a.outcome.push(text);
        if status == Status::Done {
            a.outcome.push(
                "whether the zombies go depends on the parent reaping; the next scan shows it"
                    .into(),
            );
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
