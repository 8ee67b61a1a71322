//! The gate's supervisor: starting the command, forwarding termination
//! signals to it exactly once, and reaping children on a thread of its own.
//! POSIX throughout; the OS calls (subreaper, waiting for a signal with its
//! origin, waiting and reaping, process groups) are picked by `#[cfg]`.
//!
//! Exactly-once delivery. A signal reaches the command either from the
//! kernel directly or from semleak forwarding it, never both:
//!
//! - On a terminal where semleak is in the foreground, the command stays in
//!   semleak's process group, so it can read the terminal and Ctrl-C (sent
//!   by the kernel to the whole group, `SI_KERNEL`) reaches it directly;
//!   such a signal is forwarded only if the command has left the group
//!   meanwhile (`setsid -w …`).
//! - Otherwise (CI, scripts, no terminal) the command gets a process group
//!   of its own: a group signal sent to semleak's group (`kill -TERM
//!   -PGID`, a CI runner's timeout) does not reach it directly, and semleak
//!   forwards it once.
//!
//! A signal that arrives before the command is started stops the start:
//! [`Supervisor::spawn`] refuses, and the caller exits 128+N.

use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::control_types::{SubreaperStatus, WaitStatus};

#[cfg(not(target_os = "linux"))]
pub use super::fallback::become_subreaper;
#[cfg(target_os = "linux")]
pub use crate::linux::supervise::become_subreaper;

#[cfg(not(target_os = "linux"))]
use super::fallback as os;
#[cfg(target_os = "linux")]
use crate::linux::supervise as os;

/// The signals forwarded to the command.
pub const FORWARDED_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// How long the reaper sleeps when semleak has no children at all (more
/// may be reparented to it later).
const NO_CHILDREN_POLL: Duration = Duration::from_millis(10);

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Where forwarded signals go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    NotStarted,
    Running(i32),
    /// Reaped: its pid may belong to someone else now.
    Ended,
}

#[derive(Debug)]
struct Shared {
    target: Target,
    received: Vec<i32>,
    /// The first signal that arrived before the command started.
    stop_before_start: Option<i32>,
}

/// A child reaped by the reaper thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    pub status: WaitStatus,
    /// When it was reaped (within microseconds of its exit).
    pub at: Instant,
}

/// Why the command was not started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("received signal {0} before the command started: not starting it")]
    Stopped(i32),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The started command.
#[derive(Debug)]
pub struct Started {
    pub pid: i32,
    /// It runs in a process group of its own (no terminal in the foreground).
    pub own_process_group: bool,
    /// Every child semleak reaps, as it is reaped.
    pub reaped: Receiver<io::Result<Reaped>>,
}

/// Owns the command's pid for signalling and reaping. A forwarding thread
/// waits for SIGINT/SIGTERM/SIGHUP with `sigwaitinfo` (no work in a signal
/// handler) and sends them on; a reaper thread reaps every child the moment
/// it exits, whatever the rest of semleak is doing. Sending and reaping take
/// the same lock, so a signal is never sent to a pid after it was reaped
/// (and perhaps reused).
pub struct Supervisor {
    shared: Arc<Mutex<Shared>>,
    no_children: Arc<AtomicBool>,
}

impl Supervisor {
    /// Block the forwarded signals in the calling thread (threads created
    /// later inherit the mask; the command is started with them unblocked)
    /// and start the forwarding thread. Call it before starting other
    /// threads, or they may take the signals instead.
    pub fn start() -> io::Result<Supervisor> {
        let set = forwarded_set();
        // SAFETY: `set` is an initialised sigset_t; the old mask is not wanted.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let shared = Arc::new(Mutex::new(Shared {
            target: Target::NotStarted,
            received: Vec::new(),
            stop_before_start: None,
        }));
        let s = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("semleak-signals".into())
            .spawn(move || forward_signals(set, s))?;
        Ok(Supervisor {
            shared,
            no_children: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Start the command, unless a forwarded signal already arrived (then
    /// [`SpawnError::Stopped`]), and start reaping. The check and the start
    /// hold the signal lock, so a signal is either seen here or forwarded.
    pub fn spawn(&self, cmd: &mut Command) -> Result<Started, SpawnError> {
        let mut shared = lock(&self.shared);
        if let Some(sig) = shared.stop_before_start {
            return Err(SpawnError::Stopped(sig));
        }
        let own_process_group = !foreground_terminal_is_ours();
        if own_process_group {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        unblock_signals_in_child(cmd);
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        // The reaper waits with waitpid; the Child handle is not waited on.
        drop(child);
        shared.target = Target::Running(pid);
        drop(shared);

        let (tx, reaped) = mpsc::channel();
        let (s, none) = (Arc::clone(&self.shared), Arc::clone(&self.no_children));
        std::thread::Builder::new()
            .name("semleak-reaper".into())
            .spawn(move || reap_children(s, none, tx))?;
        Ok(Started {
            pid,
            own_process_group,
            reaped,
        })
    }

    /// Signals received (and forwarded while the command ran).
    pub fn received_signals(&self) -> Vec<i32> {
        lock(&self.shared).received.clone()
    }

    /// True once the reaper found semleak without children (until one is
    /// reparented to it).
    pub fn has_no_children(&self) -> bool {
        self.no_children.load(Ordering::SeqCst)
    }
}

/// Have `cmd` start with the forwarded signals unblocked: the mask blocked
/// by [`Supervisor::start`] is inherited across fork and exec, and
/// `std::process::Command` does not reset it.
pub fn unblock_signals_in_child(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let set = forwarded_set();
    // SAFETY: the closure runs between fork and exec and only calls
    // pthread_sigmask, which is async-signal-safe, on a sigset_t copied in.
    unsafe {
        cmd.pre_exec(move || {
            let rc = libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(rc))
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn forward_signals(set: libc::sigset_t, shared: Arc<Mutex<Shared>>) {
    loop {
        let Some((sig, from_kernel)) = os::wait_signal(&set) else {
            continue;
        };
        let mut s = lock(&shared);
        s.received.push(sig);
        match s.target {
            Target::NotStarted => {
                s.stop_before_start.get_or_insert(sig);
            }
            Target::Running(pid) => {
                // A terminal's signal went to semleak's whole process group:
                // the command has it already if it is still in that group.
                let delivered = from_kernel
                    && process_group(pid).is_some()
                    && process_group(pid) == own_process_group();
                if !delivered {
                    // Not reaped yet (reaping takes this lock and ends the target).
                    let _ = os::send_signal(pid, sig);
                }
            }
            Target::Ended => {}
        }
    }
}

/// Reap every child as soon as it exits: wait (without reaping) until one
/// has exited, then reap under the signal lock.
fn reap_children(
    shared: Arc<Mutex<Shared>>,
    no_children: Arc<AtomicBool>,
    tx: Sender<io::Result<Reaped>>,
) {
    loop {
        let exited = match os::wait_exited(false) {
            Ok(None) => {
                no_children.store(true, Ordering::SeqCst);
                std::thread::sleep(NO_CHILDREN_POLL);
                continue;
            }
            Ok(Some(exited)) => exited,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        no_children.store(false, Ordering::SeqCst);
        if !exited {
            // Children, none exited yet: block until one has.
            match os::wait_exited(true) {
                Ok(Some(true)) => {}
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        let mut s = lock(&shared);
        let mut reaped_any = false;
        loop {
            match os::reap_nohang() {
                Ok(Some((pid, status))) => {
                    if s.target == Target::Running(pid) {
                        s.target = Target::Ended;
                    }
                    let reaped = Reaped {
                        pid,
                        status,
                        at: Instant::now(),
                    };
                    reaped_any = true;
                    if tx.send(Ok(reaped)).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        drop(s);
        if !reaped_any {
            // Something waitable that waitpid would not reap: never spin.
            std::thread::sleep(NO_CHILDREN_POLL);
        }
    }
}

// Process groups through libc, not rustix: inside a pid namespace whose
// group leader lives outside, the kernel reports group 0, which rustix's
// `getpgrp`/`getpgid` take for a valid (non-zero) pid.

/// The process group of `pid`; `None` if it cannot be read or lies outside
/// this pid namespace.
fn process_group(pid: i32) -> Option<i32> {
    // SAFETY: getpgid takes a pid and touches no memory.
    let g = unsafe { libc::getpgid(pid) };
    (g > 0).then_some(g)
}

/// This process's group; `None` when it lies outside this pid namespace.
fn own_process_group() -> Option<i32> {
    // SAFETY: getpgrp takes no arguments and cannot fail.
    let g = unsafe { libc::getpgrp() };
    (g > 0).then_some(g)
}

/// Is a terminal on stdin, stdout or stderr in the foreground with this
/// process's group? Then the command shares the group (and the terminal).
fn foreground_terminal_is_ours() -> bool {
    let Some(own) = own_process_group() else {
        return false;
    };
    // SAFETY: isatty/tcgetpgrp take a descriptor number and touch no memory.
    (0..3).any(|fd| unsafe { libc::isatty(fd) == 1 && libc::tcgetpgrp(fd) == own })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_codes() {
        assert_eq!(WaitStatus::Exited(7).shell_code(), 7);
        assert_eq!(WaitStatus::Signaled(9).shell_code(), 137);
        assert_eq!(WaitStatus::from_raw(7 << 8), WaitStatus::Exited(7));
        assert_eq!(WaitStatus::from_raw(libc::SIGKILL), WaitStatus::Signaled(9));
    }
}
