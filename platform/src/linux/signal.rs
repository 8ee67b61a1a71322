//! Signal a process only if it is still the one that was planned, in the
//! pid namespace the proc root shows.
//!
//! The process is pinned by opening its directory `PROC_ROOT/PID`: that
//! descriptor names one process (not a pid number) for as long as it is
//! open. Its start time is read through it (`openat(dir, "stat")`) and the
//! signal is sent through it with `pidfd_send_signal`, which accepts a
//! `/proc/PID` directory as well as a pidfd (kernel `pidfd_to_pid` →
//! `tgid_pidfd_to_pid`). So:
//!
//! - a pid reused between the check and the signal cannot be hit: the
//!   kernel answers ESRCH for the old process;
//! - with `--proc-root` showing another pid namespace (a container's
//!   `/proc`), the process signalled is the one in *that* namespace, never
//!   the process with the same number in ours; the kernel refuses (EINVAL)
//!   a namespace that is not ours or below it;
//! - a proc root that is not a procfs (a fixture tree) is refused (EBADF).
//!
//! Kernels without `pidfd_send_signal` (< 5.1) fall back to `kill(2)` only
//! when the proc root is this namespace's own `/proc`, with a tiny reuse
//! window between check and signal; otherwise they refuse.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{openat, Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::process::{pidfd_send_signal, Pid, PidfdFlags};

use super::parse::parse_stat;
use crate::control_types::{signal_checked, PidNamespace, ProcIdentity, Signal, SignalOutcome};

/// Start time and state of `pid`, or `None` when there is no such process.
pub fn identity(proc_root: &Path, pid: i32) -> io::Result<Option<ProcIdentity>> {
    match open_proc_dir(proc_root, pid)? {
        Some(dir) => identity_at(&dir),
        None => Ok(None),
    }
}

/// `PROC_ROOT/PID` as a directory descriptor, or `None` when there is no
/// such process. Never follows a symlink in the last component.
fn open_proc_dir(proc_root: &Path, pid: i32) -> io::Result<Option<OwnedFd>> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match openat(CWD, proc_root.join(pid.to_string()), flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT | Errno::SRCH) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Start time and state read through an open `/proc/PID` directory.
fn identity_at(dir: &OwnedFd) -> io::Result<Option<ProcIdentity>> {
    let stat = match openat(dir, "stat", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        // The process has gone: its directory is empty now.
        Err(Errno::NOENT | Errno::SRCH) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::with_capacity(512);
    match File::from(stat).read_to_end(&mut bytes) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e),
    }
    let st = parse_stat(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some(ProcIdentity {
        start_ticks: st.start_ticks,
        state: st.state,
    }))
}

/// A pidfd for `pid` in this process's own pid namespace.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

fn rustix_signal(signal: Signal) -> rustix::process::Signal {
    match signal {
        Signal::Term => rustix::process::Signal::TERM,
        Signal::Kill => rustix::process::Signal::KILL,
        Signal::Child => rustix::process::Signal::CHILD,
    }
}

/// Send `signal` to `pid` of the namespace `proc_root` shows, if it is
/// still the process that started at `start_ticks` and has not exited.
pub fn signal_same_process(
    proc_root: &Path,
    pid: i32,
    start_ticks: u64,
    signal: Signal,
) -> SignalOutcome {
    signal_checked(
        pid,
        start_ticks,
        |pid| open_proc_dir(proc_root, pid),
        identity_at,
        |dir| send_through(dir, proc_root, pid, signal),
    )
}

fn send_through(dir: &OwnedFd, proc_root: &Path, pid: i32, signal: Signal) -> io::Result<()> {
    match pidfd_send_signal(dir, rustix_signal(signal)) {
        Ok(()) => Ok(()),
        Err(Errno::BADF) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a procfs (a fixture tree?): not signalled",
                proc_root.display()
            ),
        )),
        Err(Errno::INVAL) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} shows a pid namespace this process cannot signal into \
                 (not its own or below it): not signalled",
                proc_root.display()
            ),
        )),
        Err(Errno::NOSYS) if is_own_proc(proc_root) => {
            let pid =
                Pid::from_raw(pid).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            Ok(rustix::process::kill_process(pid, rustix_signal(signal))?)
        }
        Err(Errno::NOSYS) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel has no pidfd_send_signal (< 5.1): signalling through a \
             proc root other than this namespace's /proc is refused",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Which pid namespace `proc_root` shows, for saying so in printed `kill`
/// lines. A proc root that is not a procfs (a fixture tree) counts as ours:
/// there is nothing live to signal through it.
pub fn pid_namespace(proc_root: &Path) -> PidNamespace {
    use std::os::unix::fs::MetadataExt;
    let procfs =
        rustix::fs::statfs(proc_root).is_ok_and(|st| st.f_type == rustix::fs::PROC_SUPER_MAGIC);
    if !procfs || is_own_proc(proc_root) {
        return PidNamespace::Own;
    }
    // Every live pid namespace has its pid 1; its ns link names the
    // namespace (reading it needs ptrace rights over that process).
    let id = std::fs::metadata(proc_root.join("1/ns/pid"))
        .ok()
        .map(|m| m.ino());
    let enter_via = id.and_then(|id| {
        super::procs::list_pids(Path::new("/proc"))
            .ok()?
            .into_iter()
            .find(|pid| {
                std::fs::metadata(format!("/proc/{pid}/ns/pid")).is_ok_and(|m| m.ino() == id)
            })
    });
    PidNamespace::Other { id, enter_via }
}

/// Is `proc_root` this pid namespace's procfs? Its `self` link names our
/// own pid only there.
fn is_own_proc(proc_root: &Path) -> bool {
    std::fs::read_link(proc_root.join("self"))
        .is_ok_and(|p| p.as_os_str() == std::process::id().to_string().as_str())
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

    /// A fixture tree with a real pid's start time in it: the live process
    /// with that pid is never signalled through it.
    #[test]
    fn a_fixture_proc_root_is_never_signalled_through() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let real = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
        let fixture = std::env::temp_dir().join(format!("semleak-unit-fixture-{pid}"));
        std::fs::create_dir_all(fixture.join(pid.to_string())).unwrap();
        std::fs::write(fixture.join(pid.to_string()).join("stat"), &real).unwrap();
        let id = identity(&fixture, pid).unwrap().unwrap();
        let out = signal_same_process(&fixture, pid, id.start_ticks, Signal::Kill);
        let _ = std::fs::remove_dir_all(&fixture);
        assert!(
            matches!(&out, SignalOutcome::Failed(e) if e.to_string().contains("not a procfs")),
            "{out:?}"
        );
        assert!(child.try_wait().unwrap().is_none(), "must still run");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn own_proc_is_recognised() {
        assert!(is_own_proc(Path::new("/proc")));
        assert!(!is_own_proc(&std::env::temp_dir()));
    }
}
