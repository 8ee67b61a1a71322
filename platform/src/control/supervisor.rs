//! The gate's supervisor: reaping children, forwarding termination signals
//! to the command, and the status a child ended with. POSIX throughout; the
//! two OS-specific calls (becoming a subreaper, waiting for a signal with
//! its origin) are picked by `#[cfg]`.

use std::io;
use std::sync::{Arc, Mutex};

pub use crate::control_types::{SubreaperStatus, WaitStatus};

#[cfg(not(target_os = "linux"))]
pub use super::fallback::become_subreaper;
#[cfg(target_os = "linux")]
pub use crate::linux::supervise::become_subreaper;

#[cfg(not(target_os = "linux"))]
use super::fallback::wait_signal;
#[cfg(target_os = "linux")]
use crate::linux::supervise::wait_signal;

/// The signals forwarded to the command.
pub const FORWARDED_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

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

/// Owns the command's pid for signalling and reaping. A forwarding thread
/// waits for SIGINT/SIGTERM/SIGHUP with `sigwait` (no work in a signal
/// handler) and sends them on to the command. Sending and reaping take the
/// same lock, so a signal is never sent to a pid after it was reaped (and
/// perhaps reused).
pub struct Supervisor {
    target: Arc<Mutex<Option<i32>>>,
    received: Arc<Mutex<Vec<i32>>>,
}

impl Supervisor {
    /// Block the forwarded signals in the calling thread (threads created
    /// later inherit the mask; children must be started with
    /// [`unblock_signals_in_child`]) and start the forwarding thread. Call it before starting
    /// other threads, or they may take the signals instead.
    pub fn start() -> io::Result<Supervisor> {
        let set = forwarded_set();
        // SAFETY: `set` is an initialised sigset_t; the old mask is not wanted.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let target: Arc<Mutex<Option<i32>>> = Arc::new(Mutex::new(None));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (t, r) = (Arc::clone(&target), Arc::clone(&received));
        std::thread::Builder::new()
            .name("semleak-signals".into())
            .spawn(move || forward_signals(set, t, r))?;
        Ok(Supervisor { target, received })
    }

    /// The command to forward signals to, once it is started.
    pub fn set_target(&self, pid: i32) {
        *lock(&self.target) = Some(pid);
    }

    /// Signals received (and forwarded while the command ran).
    pub fn received_signals(&self) -> Vec<i32> {
        lock(&self.received).clone()
    }

    /// Reap one exited child without blocking.
    pub fn reap_nohang(&self) -> io::Result<Reap> {
        let mut target = lock(&self.target);
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes only to the local `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ECHILD) => Ok(Reap::NoChildren),
                Some(libc::EINTR) => Ok(Reap::NoneExited),
                _ => Err(e),
            };
        }
        if pid == 0 {
            return Ok(Reap::NoneExited);
        }
        if *target == Some(pid) {
            *target = None;
        }
        Ok(Reap::Child(pid, WaitStatus::from_raw(status)))
    }
}

/// Have `cmd` start with the forwarded signals unblocked: the mask blocked
/// by [`Supervisor::start`] is inherited across fork and exec, and
/// `std::process::Command` does not reset it.
pub fn unblock_signals_in_child(cmd: &mut std::process::Command) {
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

/// What one non-blocking wait found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reap {
    Child(i32, WaitStatus),
    NoneExited,
    NoChildren,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn forward_signals(
    set: libc::sigset_t,
    target: Arc<Mutex<Option<i32>>>,
    received: Arc<Mutex<Vec<i32>>>,
) {
    loop {
        let Some((sig, from_terminal)) = wait_signal(&set) else {
            continue;
        };
        lock(&received).push(sig);
        // A terminal's Ctrl-C already went to the whole foreground process
        // group, the command included: sending it again would deliver it twice.
        if from_terminal {
            continue;
        }
        if let Some(pid) = *lock(&target) {
            // SAFETY: kill(2) on the command's pid, which is not reaped yet
            // (reaping takes the same lock and clears the target).
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
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
