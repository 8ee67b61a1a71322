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

/// `start_ticks` when the start time is not known: the macOS collector and
/// [`ProcIdentity`] readers record 0 when `PROC_PIDTBSDINFO` is refused
/// (another user's process without root). On Linux `/proc/PID/stat` is
/// readable by everyone, so 0 there is only a process that started in the
/// first tick after boot (a kernel thread, init): never worth signalling.
pub const START_TICKS_UNKNOWN: u64 = 0;

/// Why a signal was refused before it was sent, carried inside
/// [`SignalOutcome::Failed`] (`io::Error::get_ref` downcasts to it) so that
/// every caller already reports it as "not sent; it may still be running".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignalRefused {
    /// With no start time on one side, a process that reused the pid could
    /// not be told from the planned one: `0 == 0` proves nothing.
    #[error(
        "its start time is unknown ({}), so a process that reused its pid could not be told apart: not signalled",
        unknown_where(*.planned, *.now)
    )]
    StartTimeUnknown {
        /// Not recorded when the action was planned.
        planned: bool,
        /// Not readable right before the signal.
        now: bool,
    },
}

fn unknown_where(planned: bool, now: bool) -> &'static str {
    match (planned, now) {
        (true, true) => "not recorded when planned and unreadable now",
        (true, false) => "not recorded when planned",
        _ => "unreadable now",
    }
}

/// What an identity read says about signalling the process that started at
/// `start_ticks`: `None` when it is still that live process (go ahead),
/// otherwise the outcome to report instead of signalling. Never `None` when
/// either start time is [`START_TICKS_UNKNOWN`].
pub fn refuse_unless_same(
    identity: io::Result<Option<ProcIdentity>>,
    start_ticks: u64,
) -> Option<SignalOutcome> {
    let id = match identity {
        Ok(None) => return Some(SignalOutcome::Gone),
        Err(e) => return Some(SignalOutcome::Failed(e)),
        Ok(Some(id)) => id,
    };
    // Z or X (`model::state_has_ended`; this layer cannot import model).
    let exited = matches!(id.state, 'Z' | 'X');
    let planned_unknown = start_ticks == START_TICKS_UNKNOWN;
    let now_unknown = id.start_ticks == START_TICKS_UNKNOWN;
    if planned_unknown || now_unknown {
        // A zombie is never signalled, whoever it is; and if it is not the
        // planned process, that one is no longer running under this pid.
        if exited {
            return Some(SignalOutcome::Exited);
        }
        return Some(SignalOutcome::Failed(io::Error::new(
            io::ErrorKind::PermissionDenied,
            SignalRefused::StartTimeUnknown {
                planned: planned_unknown,
                now: now_unknown,
            },
        )));
    }
    if id.start_ticks != start_ticks {
        return Some(SignalOutcome::Reused {
            start_ticks: id.start_ticks,
        });
    }
    exited.then_some(SignalOutcome::Exited)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn live(start_ticks: u64) -> io::Result<Option<ProcIdentity>> {
        Ok(Some(ProcIdentity {
            start_ticks,
            state: 'S',
        }))
    }

    fn refused(out: Option<SignalOutcome>) -> Option<SignalRefused> {
        match out {
            Some(SignalOutcome::Failed(e)) => e.get_ref()?.downcast_ref::<SignalRefused>().copied(),
            _ => None,
        }
    }

    #[test]
    fn the_same_known_start_time_goes_ahead() {
        assert!(refuse_unless_same(live(1234), 1234).is_none());
        assert!(matches!(
            refuse_unless_same(live(1235), 1234),
            Some(SignalOutcome::Reused { start_ticks: 1235 })
        ));
    }

    /// The macOS case: `PROC_PIDTBSDINFO` refused (EPERM) both when the
    /// process was collected and right before the signal, e.g. a setuid
    /// process whose real uid is the caller's (kill(2) would succeed).
    #[test]
    fn an_unknown_start_time_is_never_signalled() {
        assert_eq!(
            refused(refuse_unless_same(live(0), 0)),
            Some(SignalRefused::StartTimeUnknown {
                planned: true,
                now: true
            })
        );
        assert_eq!(
            refused(refuse_unless_same(live(0), 1234)),
            Some(SignalRefused::StartTimeUnknown {
                planned: false,
                now: true
            })
        );
        assert_eq!(
            refused(refuse_unless_same(live(1234), 0)),
            Some(SignalRefused::StartTimeUnknown {
                planned: true,
                now: false
            })
        );
        let out = refuse_unless_same(live(0), 0).unwrap();
        assert!(out_text(&out).contains("start time is unknown"), "{out:?}");
    }

    fn out_text(out: &SignalOutcome) -> String {
        match out {
            SignalOutcome::Failed(e) => e.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn gone_and_zombies_are_not_signalled_either_way() {
        assert!(matches!(
            refuse_unless_same(Ok(None), 0),
            Some(SignalOutcome::Gone)
        ));
        let zombie = Ok(Some(ProcIdentity {
            start_ticks: 0,
            state: 'Z',
        }));
        assert!(matches!(
            refuse_unless_same(zombie, 0),
            Some(SignalOutcome::Exited)
        ));
    }

    /// Through the whole sequence: `send` is never called.
    #[test]
    fn signal_checked_does_not_send_without_a_start_time() {
        let out = signal_checked(
            4242,
            0,
            |pid| Ok(Some(pid)),
            |_| live(0),
            |_| panic!("must not send"),
        );
        assert!(matches!(out, SignalOutcome::Failed(_)), "{out:?}");
    }
}
