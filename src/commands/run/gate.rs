//! The gate's supervisor: watches the command while it runs (reaping,
//! samples, new semaphores and who maps them), waits out the grace period,
//! and terminates leftovers (TERM, then KILL after `--kill-after`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use semleak_platform::control::{self, Reap, Signal, SignalOutcome, Supervisor, WaitStatus};
use semleak_platform::{CollectOptions, Snapshot};

use super::blame::{self, Fate, SemTrace};
use super::{joined, GateError};
use crate::analyze::{self, Config, Finding};
use crate::cli::RunArgs;
use crate::exit::AppError;

/// How often the loop reaps children and checks the clock.
const TICK: Duration = Duration::from_millis(20);
/// How often the shared-memory directory is listed for new semaphores.
const SEM_WATCH_EVERY: Duration = Duration::from_millis(100);
/// How long a new semaphore's holders are looked for in descendants' maps.
const SEM_ATTRIBUTION_WINDOW: Duration = Duration::from_secs(3);
/// After SIGKILL: how long to wait for the last descendants to be reaped.
const FINAL_REAP: Duration = Duration::from_secs(3);

pub(super) struct Gate<'a> {
    pub(super) me: i32,
    pub(super) args: &'a RunArgs,
    pub(super) opts: CollectOptions,
    pub(super) config: Config,
    pub(super) supervisor: Supervisor,
    pub(super) shm_dir: PathBuf,
    pub(super) shm_dev: Option<u64>,
    pub(super) before: Snapshot,
    pub(super) old_sems: HashSet<(u64, u64)>,
    /// New semaphores: when first seen and who was seen holding them.
    pub(super) traces: HashMap<(u64, u64), (Instant, SemTrace)>,
    pub(super) sample_findings: BTreeMap<String, Finding>,
    /// Named semaphores (macOS descriptors) descendants were seen holding
    /// that no process held before the run: probed by name at the end,
    /// since macOS cannot list semaphores.
    pub(super) psem_seen: BTreeSet<semleak_platform::RawName>,
    /// Command lines of every descendant seen, for allowlists and labels.
    pub(super) cmdlines: HashMap<i32, String>,
    pub(super) cmd_pid: i32,
    pub(super) cmd_status: Option<WaitStatus>,
    pub(super) reaped_orphans: usize,
    pub(super) samples: usize,
    pub(super) notes: Vec<String>,
}

impl Gate<'_> {
    /// Reap every exited child; note the command's status.
    pub(super) fn reap(&mut self) -> Result<Reap, GateError> {
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
    pub(super) fn watch_command(&mut self) -> Result<(), AppError> {
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
    pub(super) fn after_command(&mut self) -> Result<(Snapshot, Vec<(i32, u64)>), AppError> {
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
    pub(super) fn live_descendants(&self) -> Vec<(i32, u64)> {
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
    pub(super) fn take_sample(&mut self, sample: Result<Snapshot, semleak_platform::CollectError>) {
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

    pub(super) fn observe(&mut self, snap: &Snapshot) {
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
    pub(super) fn watch_semaphores(&mut self) {
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
    pub(super) fn terminate(&mut self, left: &[(i32, u64)]) -> HashMap<i32, Fate> {
        let root = &self.opts.proc_root.clone();
        let mut fates = HashMap::new();
        let mut waiting = Vec::new();
        for &(pid, start) in left {
            match control::signal_same_process(root, pid, start, Signal::Term) {
                SignalOutcome::Sent => waiting.push((pid, start)),
                _ => {
                    fates.insert(pid, Fate::ExitedOnItsOwn);
                }
            }
        }
        let deadline = Instant::now() + self.args.kill_after;
        while !waiting.is_empty() {
            let _ = self.reap();
            waiting.retain(|&(pid, start)| {
                let alive = control::is_same_live_process(root, pid, start);
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
            let _ = control::signal_same_process(root, pid, start, Signal::Kill);
            fates.insert(pid, Fate::Killed);
        }
        fates
    }

    /// KILL whatever descendants remain (children started during
    /// termination, say) until none is left, then reap them all.
    pub(super) fn sweep(&mut self) -> HashMap<i32, Fate> {
        let mut fates = HashMap::new();
        let deadline = Instant::now() + FINAL_REAP;
        loop {
            let live = self.live_descendants();
            for &(pid, start) in &live {
                if let SignalOutcome::Sent =
                    control::signal_same_process(&self.opts.proc_root, pid, start, Signal::Kill)
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
pub(super) fn sampler(
    opts: CollectOptions,
    interval: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tx: std::sync::mpsc::Sender<Result<Snapshot, semleak_platform::CollectError>>,
) {
    use std::sync::atomic::Ordering;
    let mut next = Instant::now() + interval;
    loop {
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(TICK);
        }
        let cpu_before = process_cpu_time();
        let sample = semleak_platform::collect(&opts);
        // On a busy host one sample costs a lot of CPU: wait long enough
        // that sampling stays within SAMPLING_CPU_SHARE of one core.
        let cost = process_cpu_time().saturating_sub(cpu_before);
        next = Instant::now() + interval.max(cost.mul_f64(1.0 / SAMPLING_CPU_SHARE - 1.0));
        if stop.load(Ordering::Relaxed) || tx.send(sample).is_err() {
            return;
        }
    }
}

/// The most of one core the gate's samples may use while the command runs
/// (the rest of a 5% budget goes to reaping and watching for semaphores).
const SAMPLING_CPU_SHARE: f64 = 0.03;

/// CPU time this process has used (all threads).
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a live pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn cmdline_label(proc_root: &Path, pid: i32) -> String {
    match control::command_line(proc_root, pid) {
        Some(args) => format!("pid {pid} ({})", joined(&args)),
        None => format!("pid {pid}"),
    }
}
