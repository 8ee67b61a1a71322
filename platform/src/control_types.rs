//! The plain types process control speaks in: process identities, signals,
//! and what acting on a file or a process did. They sit below both
//! `control/` (the API) and the OS folders that implement it.

use std::io;

use crate::rawname::RawName;

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
    #[error("cannot verify: semleak runs in a nested pid namespace (pid:[{0}]) and processes outside it could hold it")]
    NestedPidNamespace(u64),
    #[error("cannot verify: --proc-root {proc_root} does not show every process that could hold it: {why}")]
    ProcRootMismatch { proc_root: String, why: String },
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

    /// The signal's number.
    pub fn number(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Child => libc::SIGCHLD,
        }
    }
}

/// Refuse pids that are not one ordinary process: 0 and negative values
/// name groups, 1 is init.
pub fn refuse_special_pid(pid: i32) -> Option<SignalOutcome> {
    (pid <= 1).then(|| {
        SignalOutcome::Failed(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal pid 0, 1 or a process group",
        ))
    })
}

/// What an identity read says about signalling the process that started at
/// `start_ticks`: `None` when it is still that live process (go ahead),
/// otherwise the outcome to report instead of signalling.
pub fn refuse_unless_same(
    identity: io::Result<Option<ProcIdentity>>,
    start_ticks: u64,
) -> Option<SignalOutcome> {
    match identity {
        Ok(None) => Some(SignalOutcome::Gone),
        Ok(Some(id)) if id.start_ticks != start_ticks => Some(SignalOutcome::Reused {
            start_ticks: id.start_ticks,
        }),
        Ok(Some(id)) if id.state == 'Z' || id.state == 'X' => Some(SignalOutcome::Exited),
        Ok(Some(_)) => None,
        Err(e) => Some(SignalOutcome::Failed(e)),
    }
}

/// The one "signal only if it is still the planned process" sequence, for
/// every OS:
///
/// 1. refuse pid 0, 1 and process groups;
/// 2. `pin` the process: a handle through which only this process can be
///    reached from now on (Linux: its `/proc/PID` directory, which
///    `pidfd_send_signal` accepts), or the bare pid where the OS has none;
///    `Ok(None)` when there is no such process;
/// 3. read its identity through that handle and compare the start time
///    with the plan (a zombie is not signalled);
/// 4. send through the same handle; ESRCH means it has gone meanwhile.
pub fn signal_checked<H>(
    pid: i32,
    start_ticks: u64,
    pin: impl FnOnce(i32) -> io::Result<Option<H>>,
    identity: impl FnOnce(&H) -> io::Result<Option<ProcIdentity>>,
    send: impl FnOnce(&H) -> io::Result<()>,
) -> SignalOutcome {
    if let Some(refused) = refuse_special_pid(pid) {
        return refused;
    }
    let handle = match pin(pid) {
        Ok(Some(h)) => h,
        Ok(None) => return SignalOutcome::Gone,
        Err(e) => return SignalOutcome::Failed(e),
    };
    if let Some(refused) = refuse_unless_same(identity(&handle), start_ticks) {
        return refused;
    }
    match send(&handle) {
        Ok(()) => SignalOutcome::Sent,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => SignalOutcome::Gone,
        Err(e) => SignalOutcome::Failed(e),
    }
}

/// What [`signal_checked`] did.
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
    /// Not sent: no permission (EPERM), a proc root this namespace cannot
    /// reach, or another error. The process may still be running.
    Failed(io::Error),
}

/// The pid namespace a proc root shows, relative to semleak's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidNamespace {
    /// semleak's own (or not a live procfs at all: a fixture tree).
    Own,
    /// Another one: the pid numbers there are not this namespace's.
    Other {
        /// Its id (the inode of `pid:[ID]`), when it could be read.
        id: Option<u64>,
        /// A pid, in semleak's namespace, of a process inside it (for
        /// `nsenter --target PID --pid`); `None` when none is visible from
        /// here (not a namespace below this one).
        enter_via: Option<i32>,
    },
}

/// A process's identity and state, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcIdentity {
    pub start_ticks: u64,
    pub state: char,
}

/// One row of the process table: just enough to follow parent links and to
/// tell a process from a later one that reused its pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcEntry {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    pub start_ticks: u64,
}

/// A named semaphore file, identified by device and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemId {
    pub name: RawName,
    pub dev: u64,
    pub inode: u64,
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
}

impl WaitStatus {
    /// The shell's convention: the exit code, or 128+N when killed by signal N.
    pub fn shell_code(self) -> i32 {
        match self {
            WaitStatus::Exited(c) => c,
            WaitStatus::Signaled(n) => 128 + n,
        }
    }

    pub(crate) fn from_raw(status: libc::c_int) -> WaitStatus {
        if libc::WIFSIGNALED(status) {
            WaitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            WaitStatus::Exited(libc::WEXITSTATUS(status))
        }
    }
}

/// Whether orphaned descendants are reparented to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubreaperStatus {
    Enabled,
    /// The OS has no subreapers; the reason says what that means for the gate.
    Unsupported(String),
}
