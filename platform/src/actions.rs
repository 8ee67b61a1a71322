//! Acting on what a scan found (`semleak clean`): the few OS operations
//! cleanup needs, each re-checking its target right before it acts.
//!
//! - [`ShmDir::unlink_semaphore`]: unlink a `sem.*` entry only if it is still
//!   the regular file that was planned (same device and inode, looked up
//!   relative to one directory descriptor, never following a symlink) and no
//!   process maps it.
//! - [`signal_same_process`]: signal a pid only if it is still the process
//!   that was planned (same start time).

use std::io;
use std::path::Path;

/// The file a plan was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedFile {
    pub dev: u64,
    pub inode: u64,
}

/// What to do when a process that could hold the file cannot be inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverifiable {
    /// Do not unlink: a hidden process might hold it.
    Refuse,
    /// Unlink anyway and report the pids (the user accepted incomplete visibility).
    Accept,
}

/// An unlink that happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unlinked {
    /// Processes whose maps could not be read although they could have held it.
    pub unverified: Vec<i32>,
}

/// Why an unlink did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UnlinkRefused {
    #[error("not a plain file name (empty, '.', '..', or contains '/' or NUL)")]
    BadName,
    #[error("the entry is already gone")]
    Gone,
    #[error("the entry is now {0}, not a regular file (never followed)")]
    NotRegular(&'static str),
    #[error("the entry was replaced (now device {dev} inode {inode}, planned device {planned_dev} inode {planned_inode})")]
    Replaced {
        dev: u64,
        inode: u64,
        planned_dev: u64,
        planned_inode: u64,
    },
    #[error("held by pid(s) {}", join_pids(.0))]
    Held(Vec<i32>),
    #[error("cannot verify: the maps of pid(s) {} could not be read and they could hold it", join_pids(.0))]
    Unverifiable(Vec<i32>),
    #[error("{op} failed: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn join_pids(pids: &[i32]) -> String {
    let shown: Vec<String> = pids.iter().take(20).map(|p| p.to_string()).collect();
    let more = if pids.len() > 20 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// The signals cleanup sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
    /// SIGCHLD: asks a parent to reap its zombies (if it reaps in a handler).
    Child,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Kill => "SIGKILL",
            Signal::Child => "SIGCHLD",
        }
    }
}

/// What [`signal_same_process`] did.
#[derive(Debug)]
pub enum SignalOutcome {
    Sent,
    /// No process with that pid any more.
    Gone,
    /// The process has exited and waits for its parent to reap it.
    Exited,
    /// The pid now belongs to another process (different start time): not signalled.
    Reused {
        start_ticks: u64,
    },
    Failed(io::Error),
}

/// A process's identity and state, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcIdentity {
    pub start_ticks: u64,
    pub state: char,
}

#[cfg(target_os = "linux")]
pub use crate::linux::signal::{identity, signal_same_process};
#[cfg(target_os = "linux")]
pub use crate::linux::unlink::ShmDir;

/// Has the process `pid` that started at `start_ticks` ended (gone, exited
/// awaiting reaping, or its pid reused)?
pub fn has_ended(proc_root: &Path, pid: i32, start_ticks: u64) -> bool {
    match identity(proc_root, pid) {
        Ok(Some(id)) => id.start_ticks != start_ticks || id.state == 'Z' || id.state == 'X',
        Ok(None) => true,
        Err(_) => false,
    }
}

#[cfg(not(target_os = "linux"))]
mod unsupported {
    use super::*;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "cleanup is only implemented on Linux",
        )
    }

    /// Cleanup is Linux-only for now.
    pub struct ShmDir(());

    impl ShmDir {
        pub fn open(_path: &Path) -> io::Result<ShmDir> {
            Err(unsupported())
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
                source: unsupported(),
            })
        }
    }

    pub fn identity(_proc_root: &Path, _pid: i32) -> io::Result<Option<ProcIdentity>> {
        Err(unsupported())
    }

    pub fn signal_same_process(
        _proc_root: &Path,
        _pid: i32,
        _start_ticks: u64,
        _signal: Signal,
    ) -> SignalOutcome {
        SignalOutcome::Failed(unsupported())
    }
}
#[cfg(not(target_os = "linux"))]
pub use unsupported::{identity, signal_same_process, ShmDir};
