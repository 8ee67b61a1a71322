//! Signal a process only if it is still the one that was planned.
//!
//! A pidfd is opened first and the start time checked afterwards: from then
//! on the pidfd names that process and no other, so a pid reused between the
//! check and the signal cannot be hit. Kernels without pidfd (< 5.3) fall
//! back to `kill`, with a tiny reuse window between check and signal.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::parse::parse_stat;
use crate::control_types::{
    outcome_of_send, refuse_special_pid, refuse_unless_same, ProcIdentity, Signal, SignalOutcome,
};

/// Start time and state of `pid`, or `None` when there is no such process.
pub fn identity(proc_root: &Path, pid: i32) -> io::Result<Option<ProcIdentity>> {
    match fs::read(proc_root.join(pid.to_string()).join("stat")) {
        Ok(bytes) => {
            let st =
                parse_stat(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            Ok(Some(ProcIdentity {
                start_ticks: st.start_ticks,
                state: st.state,
            }))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(pid, 0) takes no pointers; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Send `signal` to `pid` if it is still the process that started at
/// `start_ticks` and has not exited.
pub fn signal_same_process(
    proc_root: &Path,
    pid: i32,
    start_ticks: u64,
    signal: Signal,
) -> SignalOutcome {
    if let Some(refused) = refuse_special_pid(pid) {
        return refused;
    }
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return SignalOutcome::Gone,
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => None,
        Err(e) => return SignalOutcome::Failed(e),
    };
    if let Some(refused) = refuse_unless_same(identity(proc_root, pid), start_ticks) {
        return refused;
    }
    let rc = match &pidfd {
        // SAFETY: a valid pidfd, a valid signal number, a null siginfo
        // (the kernel fills it as for kill) and flags 0.
        Some(fd) => unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                signal.number(),
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        },
        // SAFETY: kill(2) on a positive pid checked just above.
        None => libc::c_long::from(unsafe { libc::kill(pid, signal.number()) }),
    };
    outcome_of_send(rc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn wrong_start_time_is_not_signalled() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let proc_root = Path::new("/proc");
        let id = identity(proc_root, pid).unwrap().unwrap();
        let out = signal_same_process(proc_root, pid, id.start_ticks + 1, Signal::Kill);
        assert!(matches!(out, SignalOutcome::Reused { .. }), "{out:?}");
        assert!(child.try_wait().unwrap().is_none(), "must still run");
        let out = signal_same_process(proc_root, pid, id.start_ticks, Signal::Kill);
        assert!(matches!(out, SignalOutcome::Sent), "{out:?}");
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped: the pid is gone now (unless reused, which is not this process).
        let out = signal_same_process(proc_root, pid, id.start_ticks, Signal::Kill);
        assert!(
            matches!(out, SignalOutcome::Gone | SignalOutcome::Reused { .. }),
            "{out:?}"
        );
    }

    #[test]
    fn init_is_never_signalled() {
        let out = signal_same_process(Path::new("/proc"), 1, 0, Signal::Child);
        assert!(matches!(out, SignalOutcome::Failed(_)));
    }
}
