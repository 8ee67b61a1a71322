//! Process control where the OS has no implementation of its own: what can
//! be done portably, and a clear `Unsupported` error for the rest.

#![cfg_attr(target_os = "linux", allow(dead_code))]

use std::io;
use std::path::Path;

use super::{
    ExpectedFile, ProcEntry, SemId, SubreaperStatus, UnlinkRefused, Unlinked, Unverifiable,
};
use crate::rawname::RawName;

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is only implemented on Linux"),
    )
}

/// This OS has no child subreaper.
pub fn become_subreaper() -> io::Result<SubreaperStatus> {
    Ok(SubreaperStatus::Unsupported(format!(
        "{} has no child subreaper: descendants that lost their parent are \
         reparented to init and are found by the process tree seen in samples only",
        std::env::consts::OS
    )))
}

#[cfg(not(target_os = "linux"))]
pub use posix::*;

/// The supervisor's calls in plain POSIX (the Linux versions use rustix).
#[cfg(not(target_os = "linux"))]
mod posix {
    use std::io;

    use crate::control_types::WaitStatus;

    /// Wait for one of the blocked signals; the origin is unknown here.
    pub fn wait_signal(set: &libc::sigset_t) -> Option<(libc::c_int, bool)> {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait writes the signal number to the local `sig`.
        let rc = unsafe { libc::sigwait(set, &mut sig) };
        (rc == 0).then_some((sig, false))
    }

    /// Has a child exited (without reaping it)? `None`: no children at all;
    /// `Some(false)`: children, none exited (only when not blocking).
    pub fn wait_exited(block: bool) -> io::Result<Option<bool>> {
        let mut opts = libc::WEXITED | libc::WNOWAIT;
        if !block {
            opts |= libc::WNOHANG;
        }
        loop {
            // SAFETY: an all-zero siginfo_t is valid for waitid to fill.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid writes only to the live `info`.
            let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, opts) };
            if rc == 0 {
                // With WNOHANG and nothing exited, si_pid stays 0.
                // SAFETY: waitid filled `info`; si_pid is valid for SIGCHLD info.
                return Ok(Some(unsafe { info.si_pid() } != 0));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ECHILD) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(e),
            }
        }
    }

    /// Reap one exited child without blocking.
    pub fn reap_nohang() -> io::Result<Option<(i32, WaitStatus)>> {
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid writes only to the local `status`.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                return Ok(Some((pid, WaitStatus::from_raw(status))));
            }
            if pid == 0 {
                return Ok(None);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ECHILD) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(e),
            }
        }
    }

    /// Send `sig` to `pid` (the command, not reaped yet).
    pub fn send_signal(pid: i32, sig: libc::c_int) -> io::Result<()> {
        // SAFETY: kill(2) on one positive pid; no memory is passed.
        if pid > 0 && unsafe { libc::kill(pid, sig) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// No pid namespaces here: every proc root is this system's.
pub fn pid_namespace(_proc_root: &Path) -> crate::control_types::PidNamespace {
    crate::control_types::PidNamespace::Own
}

/// Cleanup of files is Linux-only for now.
pub struct ShmDir(());

impl ShmDir {
    pub fn open(_path: &Path) -> io::Result<ShmDir> {
        Err(unsupported("cleanup"))
    }
    pub fn resolve(path: &Path) -> io::Result<std::path::PathBuf> {
        std::fs::canonicalize(path)
    }
    pub fn unlink_semaphore(
        &self,
        _file_name: &[u8],
        _expected: ExpectedFile,
        _proc_root: &Path,
        _unverifiable: Unverifiable,
    ) -> Result<Unlinked, UnlinkRefused> {
        Err(UnlinkRefused::Io {
            op: "unlink",
            source: unsupported("cleanup"),
        })
    }
    pub fn unlink_semaphores(
        &self,
        batch: &[(&[u8], ExpectedFile)],
        proc_root: &Path,
        unverifiable: Unverifiable,
    ) -> Vec<Result<Unlinked, UnlinkRefused>> {
        batch
            .iter()
            .map(|&(name, expected)| self.unlink_semaphore(name, expected, proc_root, unverifiable))
            .collect()
    }
}

/// No way to tell a process from a later one with its pid: never signal.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod no_signals {
    use std::io;
    use std::path::Path;

    use super::unsupported;
    use crate::control::{ProcIdentity, Signal, SignalOutcome};

    pub fn identity(_proc_root: &Path, _pid: i32) -> io::Result<Option<ProcIdentity>> {
        Err(unsupported("process identity"))
    }

    pub fn signal_same_process(
        _proc_root: &Path,
        _pid: i32,
        _start_ticks: u64,
        _signal: Signal,
    ) -> SignalOutcome {
        SignalOutcome::Failed(unsupported("signalling"))
    }
}
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub use no_signals::{identity, signal_same_process};

/// A full collection: the only source of the process table here.
fn full_collection(proc_root: &Path) -> io::Result<crate::model::Snapshot> {
    let opts = crate::options::CollectOptions {
        proc_root: proc_root.to_path_buf(),
        sample_window: std::time::Duration::ZERO,
        ..Default::default()
    };
    #[cfg(target_os = "macos")]
    return crate::macos::collect(&opts).map_err(io::Error::other);
    #[cfg(not(target_os = "macos"))]
    {
        let _ = opts;
        Err(unsupported("collection"))
    }
}

/// The process table, from a full collection (no cheap source here).
pub fn process_table(proc_root: &Path) -> io::Result<Vec<ProcEntry>> {
    Ok(full_collection(proc_root)?
        .processes
        .into_iter()
        .map(|p| ProcEntry {
            pid: p.pid,
            ppid: p.ppid,
            state: p.state,
            start_ticks: p.start_ticks,
        })
        .collect())
}

/// A command line, from a full collection (no cheap source here).
pub fn command_line(proc_root: &Path, pid: i32) -> Option<Vec<RawName>> {
    full_collection(proc_root)
        .ok()?
        .processes
        .into_iter()
        .find(|p| p.pid == pid)
        .map(|p| p.cmdline)
}

/// Semaphores are not files here.
pub fn semaphore_ids(_dir: &Path) -> io::Result<Vec<SemId>> {
    Ok(Vec::new())
}

/// No maps to read here.
pub fn shm_mapping_ids(_proc_root: &Path, _pid: i32, _shm_dev: u64) -> io::Result<Vec<(u64, u64)>> {
    Ok(Vec::new())
}
