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
//! Exit status: CMD's own when it failed (128+N for signal N); otherwise 1
//! when a finding at or above `--fail-on` remains; otherwise 0.

pub mod blame;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use semleak_platform::control::{
    self, Reap, SignalOutcome, SubreaperStatus, Supervisor, WaitStatus,
};
use semleak_platform::{CollectOptions, Snapshot};
use serde::{Deserialize, Serialize};

use crate::analyze::{self, Config, Finding};
use crate::app::{AppError, EXIT_FINDINGS, EXIT_OK};
use crate::cli::RunArgs;
use crate::report::{json, table, Report};
use crate::suppress::Suppressor;

use blame::{Fate, SemTrace};

/// How often the loop reaps children and checks the clock.
const TICK: Duration = Duration::from_millis(20);
/// How often the shared-memory directory is listed for new semaphores.
const SEM_WATCH_EVERY: Duration = Duration::from_millis(100);
/// How long a new semaphore's holders are looked for in descendants' maps.
const SEM_ATTRIBUTION_WINDOW: Duration = Duration::from_secs(3);
/// After SIGKILL: how long to wait for the last descendants to be reaped.
const FINAL_REAP: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot set up signal forwarding: {0}")]
    Signals(#[source] io::Error),
    #[error("cannot become a child subreaper: {0}")]
    Subreaper(#[source] io::Error),
    #[error("waiting for children: {0}")]
    Wait(#[source] io::Error),
}

/// What the run did, in the report (additive `run` field).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunInfo {
    pub command: Vec<String>,
    /// The command's status as a shell reports it (128+N when killed by signal N).
    pub exit_status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub killed_by_signal: Option<i32>,
    pub command_duration_ms: u64,
    pub samples: usize,
    pub subreaper: bool,
    /// Leftover descendants, and what semleak did about them.
    pub leftovers: usize,
    pub leftovers_terminated: usize,
    pub leftovers_killed: usize,
    pub leftovers_kept: usize,
    /// Reparented descendants that exited on their own and were reaped by semleak.
    pub reaped_orphans: usize,
    /// Signals semleak received (and forwarded to the command while it ran).
    pub signals_received: Vec<i32>,
}

struct Gate<'a> {
    me: i32,
    args: &'a RunArgs,
    opts: CollectOptions,
    config: Config,
    supervisor: Supervisor,
    shm_dir: PathBuf,
    shm_dev: Option<u64>,
    before: Snapshot,
    old_sems: HashSet<(u64, u64)>,
    /// New semaphores: when first seen and who was seen holding them.
    traces: HashMap<(u64, u64), (Instant, SemTrace)>,
    sample_findings: BTreeMap<String, Finding>,
    /// Named semaphores (macOS descriptors) descendants were seen holding
    /// that no process held before the run: probed by name at the end,
    /// since macOS cannot list semaphores.
    psem_seen: BTreeSet<semleak_platform::RawName>,
    /// Command lines of every descendant seen, for allowlists and labels.
    cmdlines: HashMap<i32, String>,
    cmd_pid: i32,
    cmd_status: Option<WaitStatus>,
    reaped_orphans: usize,
    samples: usize,
    notes: Vec<String>,
}

pub fn run(args: &RunArgs) -> Result<i32, AppError> {
    let started = Instant::now();
    // Usage errors first, before anything runs.
    let cwd = std::env::current_dir().ok();
    let suppressor = Suppressor::load(
        args.suppress.baseline.as_deref(),
        args.suppress.allow.as_deref(),
        cwd.as_deref(),
    )?;
    // Before any other thread exists, so none of them takes the signals.
    let supervisor = Supervisor::start().map_err(GateError::Signals)?;
    let subreaper = control::become_subreaper().map_err(GateError::Subreaper)?;
    let mut notes = Vec::new();
    if let SubreaperStatus::Unsupported(why) = &subreaper {
        notes.push(why.clone());
    }
    let opts = args.collect.options();
    let quick = CollectOptions {
        sample_window: Duration::ZERO,
        ..opts.clone()
    };
    let before = semleak_platform::collect(&quick)?;
    let shm_dir = PathBuf::from(&before.shm.dir);
    let me = std::process::id() as i32;
    let mut gate = Gate {
        me,
        args,
        config: args.rules.config(),
        supervisor,
        shm_dev: before.shm.dev,
        old_sems: before
            .shm
            .semaphores
            .iter()
            .map(|s| (s.meta.dev, s.meta.inode))
            .collect(),
        shm_dir,
        before,
        opts,
        traces: HashMap::new(),
        sample_findings: BTreeMap::new(),
        psem_seen: BTreeSet::new(),
        cmdlines: HashMap::new(),
        cmd_pid: 0,
        cmd_status: None,
        reaped_orphans: 0,
        samples: 0,
        notes,
    };

    let program = &args.command[0];
    let mut command = Command::new(program);
    command.args(&args.command[1..]);
    control::unblock_signals_in_child(&mut command);
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("semleak: cannot run {}: {e}", program.to_string_lossy());
            // The shell's codes: 127 not found, 126 found but not runnable.
            return Ok(if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let cmd_started = Instant::now();
    gate.cmd_pid = child.id() as i32;
    gate.supervisor.set_target(gate.cmd_pid);
    // The gate reaps with waitpid(-1); the Child handle is not waited on.
    drop(child);

    let watched = gate.watch_command();
    let command_duration = cmd_started.elapsed();
    let outcome = watched.and_then(|()| gate.after_command());
    // Whatever happened above, no descendant is left running unless asked.
    let left_now: &[(i32, u64)] = match &outcome {
        Ok((_, left)) => left,
        Err(_) => &[],
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
    );
    let traces: HashMap<(u64, u64), SemTrace> = gate
        .traces
        .iter()
        .map(|(k, (_, t))| (*k, t.clone()))
        .collect();
    findings.extend(blame::leaked_semaphores(
        &gate.before,
        &last,
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

    let cmdlines = &gate.cmdlines;
    let lookup = |pid: i32| -> Option<String> {
        cmdlines.get(&pid).cloned().or_else(|| {
            last.processes
                .iter()
                .find(|p| p.pid == pid)
                .map(|p| joined(&p.cmdline))
        })
    };
    let (findings, suppressed) = suppressor.apply(findings, &lookup);

    let status = gate.cmd_status.unwrap_or(WaitStatus::Exited(0));
    let mut report = Report::new("run", &last, findings);
    report.started_at = crate::report::rfc3339_ms(gate.before.taken_at_ms);
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.suppressed = suppressed;
    report.visibility.notes.extend(gate.notes.iter().cloned());
    report.visibility.complete =
        report.visibility.skipped.is_empty() && report.visibility.notes.is_empty();
    let count = |fate: Fate| fates.values().filter(|f| **f == fate).count();
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
        reaped_orphans: gate.reaped_orphans,
        signals_received: gate.supervisor.received_signals(),
    });

    if let Some(path) = &args.report {
        std::fs::write(path, json::render(&report)).map_err(|source| AppError::Write {
            path: path.clone(),
            source,
        })?;
    }
    eprint!("{}", human_summary(&report));

    let code = status.shell_code();
    Ok(if code != 0 {
        code
    } else if args.fail_on.fails(report.worst()) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

fn joined(cmdline: &[semleak_platform::RawName]) -> String {
    cmdline
        .iter()
        .map(|a| a.to_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The stderr summary: one line about the run, then the findings as tables.
fn human_summary(report: &Report) -> String {
    let run = report.run.as_ref().expect("run report");
    let mut cmd = run.command.join(" ");
    if cmd.chars().count() > 100 {
        cmd = cmd.chars().take(99).collect::<String>() + "…";
    }
    let cmd = crate::report::term(&cmd);
    let mut out = String::new();
    let how = match run.killed_by_signal {
        Some(n) => format!("was killed by signal {n} (status {})", run.exit_status),
        None => format!("exited with status {}", run.exit_status),
    };
    out.push_str(&format!(
        "semleak run: `{cmd}` {how} after {:.1}s\n",
        run.command_duration_ms as f64 / 1000.0
    ));
    if run.leftovers > 0 {
        out.push_str(&format!(
            "semleak run: {} leftover process(es): {} terminated, {} killed, {} kept\n",
            run.leftovers, run.leftovers_terminated, run.leftovers_killed, run.leftovers_kept
        ));
    }
    if report.findings.is_empty() {
        out.push_str("semleak run: no leaks left by the command\n");
    } else {
        out.push_str(&table::render(
            report,
            &table::TableOptions {
                wrap: io::stderr().is_terminal(),
            },
        ));
    }
    if report.suppressed.total() > 0 {
        out.push_str(&format!(
            "semleak run: {} finding(s) suppressed ({} by baseline, {} by allowlist)\n",
            report.suppressed.total(),
            report.suppressed.baseline,
            report.suppressed.allowlist
        ));
    }
    out
}

impl Gate<'_> {
    /// Reap every exited child; note the command's status.
    fn reap(&mut self) -> Result<Reap, GateError> {
        loop {
            match self.supervisor.reap_nohang().map_err(GateError::Wait)? {
                Reap::Child(pid, status) => {
                    if pid == self.cmd_pid {
                        self.cmd_status = Some(status);
                    } else {
                        self.reaped_orphans += 1;
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// Until the command exits: reap, watch semaphores, and take in the
    /// samples a background thread collects (a collection can take seconds
    /// on a busy host; reaping must not wait for it).
    fn watch_command(&mut self) -> Result<(), AppError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if !self.args.interval.is_zero() {
            let (opts, interval, stop) = (self.opts.clone(), self.args.interval, stop.clone());
            std::thread::Builder::new()
                .name("semleak-sampler".into())
                .spawn(move || sampler(opts, interval, stop, tx))
                .map_err(GateError::Signals)?;
        }
        let mut next_watch = Instant::now();
        let result = loop {
            if let Err(e) = self.reap() {
                break Err(e.into());
            }
            if self.cmd_status.is_some() {
                break Ok(());
            }
            while let Ok(sample) = rx.try_recv() {
                self.take_sample(sample);
            }
            let now = Instant::now();
            if now >= next_watch {
                self.watch_semaphores();
                next_watch = now + SEM_WATCH_EVERY;
            }
            std::thread::sleep(TICK);
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        while let Ok(sample) = rx.try_recv() {
            self.take_sample(sample);
        }
        result
    }

    /// After the command exits: the grace period, then the snapshot that
    /// decides what was left. Returns it and the leftovers (pid, start).
    fn after_command(&mut self) -> Result<(Snapshot, Vec<(i32, u64)>), AppError> {
        let deadline = Instant::now() + self.args.grace;
        let mut next_watch = Instant::now();
        loop {
            self.reap()?;
            let now = Instant::now();
            if now >= next_watch {
                self.watch_semaphores();
                next_watch = now + SEM_WATCH_EVERY;
            }
            if self.live_descendants().is_empty() || now >= deadline {
                break;
            }
            std::thread::sleep(TICK.max(Duration::from_millis(50)));
        }
        self.reap()?;
        let post = semleak_platform::collect(&self.opts)?;
        self.observe(&post);
        let left = blame::leftovers(&self.before, &post, self.me)
            .into_iter()
            .map(|p| (p.pid, p.start_ticks))
            .collect();
        Ok((post, left))
    }

    /// Live descendants from the cheap process table: (pid, start_ticks).
    fn live_descendants(&self) -> Vec<(i32, u64)> {
        let table = match control::process_table(&self.opts.proc_root) {
            Ok(t) => t,
            Err(_) => return Vec::new(),
        };
        let below = blame::tree(table.iter().map(|e| (e.pid, e.ppid)), self.me);
        table
            .iter()
            .filter(|e| below.contains(&e.pid) && e.state != 'Z' && e.state != 'X')
            .map(|e| (e.pid, e.start_ticks))
            .collect()
    }

    /// A full sample: general rules on descendants, holders of new semaphores.
    fn take_sample(&mut self, sample: Result<Snapshot, semleak_platform::CollectError>) {
        match sample {
            Ok(snap) => {
                self.samples += 1;
                self.observe(&snap);
            }
            Err(e) => {
                let note = format!("a sample failed: {e}");
                if !self.notes.contains(&note) {
                    self.notes.push(note);
                }
            }
        }
    }

    fn observe(&mut self, snap: &Snapshot) {
        let desc = blame::descendants(snap, self.me);
        self.psem_seen
            .extend(blame::new_psem_names(&self.before, snap, &desc));
        for p in snap.processes.iter().filter(|p| desc.contains(&p.pid)) {
            if !p.cmdline.is_empty() {
                self.cmdlines.insert(p.pid, joined(&p.cmdline));
            }
        }
        for s in &snap.shm.semaphores {
            let key = (s.meta.dev, s.meta.inode);
            if s.unlinked || self.old_sems.contains(&key) {
                continue;
            }
            let (_, trace) = self
                .traces
                .entry(key)
                .or_insert_with(|| (Instant::now(), SemTrace::default()));
            for &h in &s.holders {
                if desc.contains(&h) {
                    trace.descendant_holder = Some((h, analyze::process_label(snap, h)));
                } else if h != self.me {
                    trace.outside_holder = true;
                }
            }
        }
        let found =
            blame::descendant_findings(analyze::analyze(snap, &self.config), &desc, self.me);
        blame::merge_by_id(&mut self.sample_findings, found);
    }

    /// List the semaphore files; for new ones not yet attributed, look for
    /// them in the descendants' maps. Cheap: only new names cost anything.
    fn watch_semaphores(&mut self) {
        let Some(shm_dev) = self.shm_dev else { return };
        let Ok(ids) = control::semaphore_ids(&self.shm_dir) else {
            return;
        };
        let now = Instant::now();
        let mut pending = false;
        for id in ids {
            let key = (id.dev, id.inode);
            if self.old_sems.contains(&key) {
                continue;
            }
            let (first, trace) = self
                .traces
                .entry(key)
                .or_insert_with(|| (now, SemTrace::default()));
            if trace.descendant_holder.is_none()
                && now.duration_since(*first) < SEM_ATTRIBUTION_WINDOW
            {
                pending = true;
            }
        }
        if !pending {
            return;
        }
        for (pid, _) in self.live_descendants() {
            let Ok(maps) = control::shm_mapping_ids(&self.opts.proc_root, pid, shm_dev) else {
                continue;
            };
            for key in maps {
                if let Some((_, trace)) = self.traces.get_mut(&key) {
                    if trace.descendant_holder.is_none() {
                        let label = self
                            .cmdlines
                            .get(&pid)
                            .map(|c| format!("pid {pid} ({c})"))
                            .unwrap_or_else(|| cmdline_label(&self.opts.proc_root, pid));
                        trace.descendant_holder = Some((pid, label));
                    }
                }
            }
        }
    }

    /// TERM the leftovers, wait up to `--kill-after` for them, KILL the rest.
    fn terminate(&mut self, left: &[(i32, u64)]) -> HashMap<i32, Fate> {
        let root = &self.opts.proc_root.clone();
        let mut fates = HashMap::new();
        let mut waiting = Vec::new();
        for &(pid, start) in left {
            match control::signal_process(root, pid, start, libc::SIGTERM) {
                Ok(SignalOutcome::Sent) => waiting.push((pid, start)),
                _ => {
                    fates.insert(pid, Fate::ExitedOnItsOwn);
                }
            }
        }
        let deadline = Instant::now() + self.args.kill_after;
        while !waiting.is_empty() {
            let _ = self.reap();
            waiting.retain(|&(pid, start)| {
                let alive = matches!(
                    control::signal_process(root, pid, start, 0),
                    Ok(SignalOutcome::Sent)
                );
                if !alive {
                    fates.insert(pid, Fate::Terminated);
                }
                alive
            });
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(TICK);
        }
        for (pid, start) in waiting {
            let _ = control::signal_process(root, pid, start, libc::SIGKILL);
            fates.insert(pid, Fate::Killed);
        }
        fates
    }

    /// KILL whatever descendants remain (children started during
    /// termination, say) until none is left, then reap them all.
    fn sweep(&mut self) -> HashMap<i32, Fate> {
        let mut fates = HashMap::new();
        let deadline = Instant::now() + FINAL_REAP;
        loop {
            let live = self.live_descendants();
            for &(pid, start) in &live {
                if let Ok(SignalOutcome::Sent) =
                    control::signal_process(&self.opts.proc_root, pid, start, libc::SIGKILL)
                {
                    fates.entry(pid).or_insert(Fate::Killed);
                }
            }
            let no_children = matches!(self.reap(), Ok(Reap::NoChildren) | Err(_));
            if (live.is_empty() && no_children) || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(TICK);
        }
        fates
    }
}

/// Collect every `interval` until told to stop; a sample finished after
/// the stop is dropped.
fn sampler(
    opts: CollectOptions,
    interval: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tx: std::sync::mpsc::Sender<Result<Snapshot, semleak_platform::CollectError>>,
) {
    use std::sync::atomic::Ordering;
    loop {
        let next = Instant::now() + interval;
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(TICK);
        }
        let sample = semleak_platform::collect(&opts);
        if stop.load(Ordering::Relaxed) || tx.send(sample).is_err() {
            return;
        }
    }
}

fn cmdline_label(proc_root: &Path, pid: i32) -> String {
    match std::fs::read(proc_root.join(pid.to_string()).join("cmdline")) {
        Ok(b) => format!(
            "pid {pid} ({})",
            joined(&semleak_platform::parse::parse_cmdline(&b))
        ),
        Err(_) => format!("pid {pid}"),
    }
}
