//! The gate's Linux calls: becoming a child subreaper, waiting for a signal
//! while learning whether the kernel sent it for a terminal, waiting for and
//! reaping children, and process groups.

use std::io;

use rustix::io::Errno;
use rustix::process::{
    kill_process, set_child_subreaper, wait, waitid, Pid, WaitId, WaitIdOptions, WaitOptions,
};

use crate::control_types::{SubreaperStatus, WaitStatus};

/// Make this process a child subreaper: descendants that lose their parent
/// are reparented to us instead of to init, so the gate knows them exactly.
pub fn become_subreaper() -> io::Result<SubreaperStatus> {
    set_child_subreaper(Some(rustix::process::getpid()))?;
    Ok(SubreaperStatus::Enabled)
}

/// Wait for one of the blocked signals: (signal, sent by the kernel for a
/// terminal rather than by a process). rustix offers `sigwaitinfo` only as
/// an unsafe runtime call, so this stays on libc.
pub fn wait_signal(set: &libc::sigset_t) -> Option<(libc::c_int, bool)> {
    // SAFETY: an all-zero siginfo_t is a valid value for sigwaitinfo to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is an initialised sigset_t and `info` a live siginfo_t.
    let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
    if sig < 0 {
        return None;
    }
    Some((sig, info.si_code == libc::SI_KERNEL))
}

/// Has a child exited (without reaping it)? `None`: no children at all;
/// `Some(false)`: children, none exited (only when not blocking).
pub fn wait_exited(block: bool) -> io::Result<Option<bool>> {
    let mut opts = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
    if !block {
        opts |= WaitIdOptions::NOHANG;
    }
    loop {
        return match waitid(WaitId::All, opts) {
            Ok(status) => Ok(Some(status.is_some())),
            Err(Errno::CHILD) => Ok(None),
            Err(Errno::INTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// Reap one exited child without blocking; `None` when none has exited
/// (or there are no children).
pub fn reap_nohang() -> io::Result<Option<(i32, WaitStatus)>> {
    loop {
        // `wait`, not `waitpid(None)`: that is pid 0, our process group only.
        return match wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => Ok(Some((
                pid.as_raw_nonzero().get(),
                WaitStatus::from_raw(status.as_raw()),
            ))),
            Ok(None) | Err(Errno::CHILD) => Ok(None),
            Err(Errno::INTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// Send `sig` to `pid` (the command, not reaped yet: the caller holds the
/// reaping lock).
pub fn send_signal(pid: i32, sig: libc::c_int) -> io::Result<()> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let sig = rustix::process::Signal::from_named_raw(sig)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(kill_process(pid, sig)?)
}
