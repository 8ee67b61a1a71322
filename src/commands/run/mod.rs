//! `semleak run -- CMD`: the CI leak gate.
//!
//! semleak becomes a child subreaper, snapshots the host, starts CMD with
//! its stdio untouched, forwards SIGINT/SIGTERM/SIGHUP to it, and while it
//! runs samples the host every `--interval` (zombies, wakeup channels) and
//! watches the shared-memory directory more often, so a semaphore the
//! command creates is seen in a descendant's maps. After CMD exits it waits
//! up to `--grace` for descendants to finish, snapshots again, blames what
//! the command left (see [`blame`]), terminates leftovers (TERM, then KILL
//! after `--kill-after`) and reaps them.
//!
//! Exit status: CMD's own when it failed (128+N for signal N); otherwise
//! `--leak-exit-code` (1) when a finding at or above `--fail-on` remains;
//! otherwise 0. Besides the summary on stderr it writes `--report` (JSON),
//! `--junit` (JUnit XML) and, under GitHub Actions, annotations and a step
//! summary.

pub mod blame;
mod clean_up;
mod gate;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use semleak_platform::control::{
    self, SpawnError, Started, SubreaperStatus, Supervisor, WaitStatus,
};
use semleak_platform::{CollectOptions, RawName};

use super::output::open_in_place;
use super::Ui;
use crate::analyze::{self, Evidence, Subject};
use crate::cli::RunArgs;
use crate::exit::{AppError, EXIT_OK};
use crate::report::clean::Status;
use crate::report::run::{RunClean, RunInfo};
use crate::report::{github, json, junit, table, Report};

use blame::{Fate, SemTrace};
use gate::Gate;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot set up signal forwarding: {0}")]
    Signals(#[source] io::Error),
    #[error("cannot become a child subreaper: {0}")]
    Subreaper(#[source] io::Error),
    #[error("waiting for children: {0}")]
    Wait(#[source] io::Error),
}

impl From<GateError> for AppError {
    fn from(e: GateError) -> Self {
        AppError::Module(Box::new(e))
    }
}

pub fn run(args: &RunArgs, ui: &Ui) -> Result<i32, AppError> {
    let started = Instant::now();
    // Usage errors first, before anything runs: a report that could not be
    // written is found now, not after leftovers were killed.
    let report_file = open_early(args.report.as_ref())?;
    let junit_file = open_early(args.junit.as_ref())?;
    let suppressor = super::load_suppressor(&args.suppress)?;
    // Before any other thread exists, so none of them takes the signals.
    let supervisor = Supervisor::start().map_err(GateError::Signals)?;
    let subreaper = control::become_subreaper().map_err(GateError::Subreaper)?;
    let mut notes = Vec::new();
    if let SubreaperStatus::Unsupported(why) = &subreaper {
        notes.push(why.clone());
    }
    let mut opts = args.collect.options();
    opts.thread_names_min_threads = args.rules.thread_names_min_threads();
    let quick = CollectOptions {
        sample_window: Duration::ZERO,
        ..opts.clone()
    };
    let before = semleak_platform::collect(&quick)?;
    let shm_dir = PathBuf::from(&before.shm.dir);
    let me = std::process::id() as i32;
    let old_sems = before
        .shm
        .semaphores
        .iter()
        .map(|s| (s.meta.dev, s.meta.inode))
        .collect();
    let mut gate = Gate {
        me,
        args,
        config: args.rules.config(),
        supervisor,
        reaped: None,
        shm_dev: before.shm.dev,
        old_sems: Arc::new(old_sems),
        shm_dir,
        before: Arc::new(before),
        opts,
        traces: HashMap::new(),
        sample_findings: BTreeMap::new(),
        psem_seen: BTreeSet::new(),
        cmdlines: HashMap::new(),
        cmd_pid: 0,
        cmd_status: None,
        cmd_ended_at: None,
        reaped_orphans: 0,
        samples: 0,
        notes,
    };

    let cmd_started = Instant::now();
    match start_command(&gate.supervisor, args) {
        Ok(started) => {
            gate.cmd_pid = started.pid;
            gate.reaped = Some(started.reaped);
        }
        Err(code) => return Ok(code),
    }

    let watched = gate.watch_command();
    let command_duration = gate
        .cmd_ended_at
        .map_or_else(|| cmd_started.elapsed(), |end| end - cmd_started);
    let outcome = watched.and_then(|()| gate.after_command());
    // Whatever happened above, no descendant is left running unless asked.
    let left_now: &[(i32, u64)] = match &outcome {
        Ok((_, left)) => left,
        Err(_) => &[],
    };
    // Before they are signalled: which leftovers detached on purpose (a
    // session of their own, stdio on /dev/null), as daemons do.
    let detached: BTreeSet<i32> = match &outcome {
        Ok((post, left)) => {
            let own_session = post.process(me).map(|p| p.session);
            left.iter()
                .map(|(pid, _)| *pid)
                .filter(|pid| {
                    post.processes
                        .iter()
                        .any(|p| p.pid == *pid && Some(p.session) != own_session)
                        && control::stdio_detached(&gate.opts.proc_root, *pid)
                })
                .collect()
        }
        Err(_) => BTreeSet::new(),
    };
    let mut fates = if args.keep_leftovers {
        left_now.iter().map(|(pid, _)| (*pid, Fate::Kept)).collect()
    } else {
        let mut fates = gate.terminate(left_now);
        for (pid, fate) in gate.sweep() {
            fates.entry(pid).or_insert(fate);
        }
        fates
    };
    let (post, left) = outcome?;
    fates.retain(|pid, _| left.iter().any(|(p, _)| p == pid));

    // Holders that are leftovers (now terminated) do not count as users.
    let last = post;
    let left_pids: BTreeSet<i32> = left.iter().map(|(p, _)| *p).collect();
    let leftover_procs: Vec<_> = last
        .processes
        .iter()
        .filter(|p| left_pids.contains(&p.pid))
        .collect();
    let mut findings = blame::orphan_findings(
        &last,
        me,
        &leftover_procs,
        &fates,
        args.kill_after.as_secs_f64(),
        &detached,
    );
    let traces: HashMap<(u64, u64), SemTrace> = gate
        .traces
        .iter()
        .map(|(k, (_, t))| (*k, t.clone()))
        .collect();
    // After the leftovers are gone (and their resource trackers have
    // unlinked what they track), look again: the report describes that
    // moment, and blames only what is still there.
    let after_cleanup = if args.keep_leftovers || left.is_empty() {
        None
    } else {
        let opts = CollectOptions {
            sample_window: Duration::ZERO,
            ..gate.opts.clone()
        };
        match semleak_platform::collect(&opts) {
            Ok(snap) => Some(snap),
            Err(e) => {
                gate.notes.push(format!(
                    "the scan after terminating the leftovers failed ({e}); semaphores are \
                     judged from the scan before"
                ));
                None
            }
        }
    };
    let sem_snapshot = after_cleanup.as_ref().unwrap_or(&last);
    findings.extend(blame::leaked_semaphores(
        &gate.before,
        sem_snapshot,
        &traces,
        &left_pids,
    ));
    findings.extend(gate.sample_findings.values().cloned());
    if !gate.psem_seen.is_empty() {
        // After the leftovers are gone: which of the names CMD's processes
        // held still exist with nobody holding them?
        let probe = CollectOptions {
            sample_window: Duration::ZERO,
            probe_names: gate.psem_seen.iter().cloned().collect(),
            ..gate.opts.clone()
        };
        match semleak_platform::collect(&probe) {
            Ok(snap) => findings.extend(analyze::probed_semaphore::check(&snap, &gate.config)),
            Err(e) => gate
                .notes
                .push(format!("probing semaphore names failed: {e}")),
        }
    }
    analyze::sort_findings(&mut findings);
    super::namespace::mark_foreign_pids(&mut findings, &gate.opts.proc_root);

    let cmdlines = &gate.cmdlines;
    let lookup = |pid: i32| -> Option<String> {
        cmdlines
            .get(&pid)
            .cloned()
            .or_else(|| last.process(pid).map(|p| joined(&p.cmdline)))
    };
    let (mut findings, suppressed) = suppressor.apply(findings, &lookup);
    let clean_plan = args.clean.then(|| {
        clean_up::remove_blamed(
            &findings,
            sem_snapshot,
            gate.opts.proc_root.clone(),
            args.allow_incomplete,
        )
    });
    if let Some(plan) = &clean_plan {
        let removed = clean_up::removed_files(plan);
        for f in &mut findings {
            let gone = f
                .subjects
                .iter()
                .filter_map(Subject::file_key)
                .filter(|k| removed.contains(k))
                .count();
            if gone > 0 {
                f.evidence.push(Evidence::RemovedByRunClean {
                    removed: gone,
                    of: f.subjects.len(),
                });
            }
        }
    }

    let status = gate.cmd_status.unwrap_or(WaitStatus::Exited(0));
    let mut report = Report::new("run", sem_snapshot, findings);
    report.started_at = crate::report::rfc3339_ms(gate.before.taken_at_ms);
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.suppressed = suppressed;
    report.visibility.notes.extend(gate.notes.iter().cloned());
    report.visibility.complete =
        report.visibility.skipped.is_empty() && report.visibility.notes.is_empty();
    let count = |fate: Fate| fates.values().filter(|f| **f == fate).count();
    // Every leftover has exactly one fate, so the summary adds up.
    let not_terminated = count(Fate::NotTerminated);
    report.run = Some(RunInfo {
        command: args
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        exit_status: status.shell_code(),
        killed_by_signal: match status {
            WaitStatus::Signaled(n) => Some(n),
            WaitStatus::Exited(_) => None,
        },
        command_duration_ms: command_duration.as_millis() as u64,
        samples: gate.samples,
        subreaper: subreaper == SubreaperStatus::Enabled,
        leftovers: left.len(),
        leftovers_terminated: count(Fate::Terminated),
        leftovers_killed: count(Fate::Killed),
        leftovers_kept: count(Fate::Kept),
        leftovers_exited: left.len()
            - count(Fate::Terminated)
            - count(Fate::Killed)
            - count(Fate::Kept)
            - not_terminated,
        leftovers_not_terminated: not_terminated,
        reaped_orphans: gate.reaped_orphans,
        signals_received: gate.supervisor.received_signals(),
        clean: clean_plan.as_ref().map(|plan| RunClean {
            removed: clean_up::removed(plan),
            kept: plan
                .actions
                .iter()
                .filter(|a| a.status != Status::Done)
                .map(|a| (a.target.clone(), a.why.clone()))
                .collect(),
        }),
    });

    write_report_files(args, (report_file, junit_file), &report)?;
    eprint_untrusted(&table::render_run_summary(&report, &ui.stderr()));
    if super::github_actions() {
        github_outputs(&report)?;
    }
    Ok(exit_code(
        args,
        status.shell_code(),
        &report,
        not_terminated,
    ))
}

/// CMD's own status when it failed; else `--leak-exit-code` when it leaked
/// at or above `--fail-on` or left a process semleak could not stop (that
/// one still runs: never a pass); else 0.
fn exit_code(args: &RunArgs, command_status: i32, report: &Report, not_terminated: usize) -> i32 {
    if command_status != 0 {
        command_status
    } else if args.fail_on.fails(report.worst()) || not_terminated > 0 {
        args.leak_exit_code
    } else {
        EXIT_OK
    }
}

/// `--report FILE` (JSON, opened before the command ran) and `--junit FILE`
/// (JUnit XML).
fn write_report_files(
    args: &RunArgs,
    (report_file, junit_file): (Option<File>, Option<File>),
    report: &Report,
) -> Result<(), AppError> {
    if let (Some(path), Some(file)) = (&args.report, report_file) {
        write_report(file, &json::render(report)).map_err(|source| AppError::Write {
            path: path.clone(),
            source,
        })?;
    }
    if let (Some(path), Some(file)) = (&args.junit, junit_file) {
        write_report(file, &junit::render(report, args.fail_on.threshold())).map_err(|source| {
            AppError::Write {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Text holding names any local user chooses (semaphores, command lines),
/// to stderr; under GitHub Actions made inert first, so that no line of it
/// is obeyed as a workflow command.
fn eprint_untrusted(text: &str) {
    if super::github_actions() {
        eprint!("{}", github::neutralise(text));
    } else {
        eprint!("{text}");
    }
}

/// Annotations on stderr (the runner reads workflow commands from both
/// streams; stdout is the command's) and the markdown summary appended to
/// `$GITHUB_STEP_SUMMARY`.
fn github_outputs(report: &Report) -> Result<(), AppError> {
    eprint!("{}", github::annotations(report));
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from) else {
        return Ok(());
    };
    let write_err = |source| AppError::Write {
        path: path.clone(),
        source,
    };
    let mut file = open_in_place(&path, true)?;
    file.write_all(github::step_summary(report).as_bytes())
        .map_err(write_err)
}

/// Start the command through the supervisor; on failure, the exit code to
/// return: 128+N when signal N arrived before it started (it is not
/// started then), 127 when not found, 126 when not runnable.
fn start_command(supervisor: &Supervisor, args: &RunArgs) -> Result<Started, i32> {
    let program = &args.command[0];
    let mut command = Command::new(program);
    command.args(&args.command[1..]);
    match supervisor.spawn(&mut command) {
        Ok(started) => Ok(started),
        Err(SpawnError::Stopped(sig)) => {
            eprint_untrusted(&format!(
                "semleak: received signal {sig} before {} started: not starting it\n",
                program.to_string_lossy()
            ));
            Err(128 + sig)
        }
        Err(SpawnError::Io(e)) => {
            eprint_untrusted(&format!(
                "semleak: cannot run {}: {e}\n",
                program.to_string_lossy()
            ));
            // The shell's codes: 127 not found, 126 found but not runnable.
            Err(if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            })
        }
    }
}

/// Open `--report`/`--junit` for writing before anything runs (creating
/// it, not yet truncating an existing one), so an unwritable path is a usage
/// error found before the command runs and leftovers are killed. A
/// symbolic link is refused, not followed.
fn open_early(path: Option<&PathBuf>) -> Result<Option<File>, AppError> {
    let Some(path) = path else {
        return Ok(None);
    };
    open_in_place(path, false).map(Some)
}

fn write_report(mut file: File, text: &str) -> io::Result<()> {
    file.set_len(0)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// A command line as one string, for labels and allowlist matching.
fn joined(cmdline: &[RawName]) -> String {
    cmdline
        .iter()
        .map(|a| a.to_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
