//! The gate's two Linux-only calls: becoming a child subreaper, and waiting
//! for a signal while learning whether the kernel sent it for a terminal.

use std::io;

use crate::control_types::SubreaperStatus;

/// Make this process a child subreaper: descendants that lose their parent
/// are reparented to us instead of to init, so the gate knows them exactly.
pub fn become_subreaper() -> io::Result<SubreaperStatus> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes integer arguments only
    // and changes no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SubreaperStatus::Enabled)
}

/// Wait for one of the blocked signals: (signal, sent by the kernel for a
/// terminal rather than by a process).
pub fn wait_signal(set: &libc::sigset_t) -> Option<(libc::c_int, bool)> {
    // SAFETY: sigwaitinfo fills the local siginfo_t; `set` is initialised.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
    if sig < 0 {
        return None;
    }
    Some((sig, info.si_code == libc::SI_KERNEL))
}
