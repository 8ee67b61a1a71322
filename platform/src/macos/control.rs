//! Process identity and checked signalling on macOS. There is no pidfd:
//! the start time is checked and the signal sent right after, which leaves
//! the small pid-reuse window Linux has without pidfd (before 5.3).

use std::io;
use std::path::Path;

use super::abi;
use super::collect::{boot_time, start_ticks};
use super::ffi;
use super::parse::{start_time_ms, state_letter};
use crate::control_types::{
    signal_checked, ProcIdentity, Signal, SignalOutcome, START_TICKS_UNKNOWN,
};

/// Start time and state of `pid`, or `None` when there is no such process.
/// Start times are in the same ticks the collector records.
pub fn identity(_proc_root: &Path, pid: i32) -> io::Result<Option<ProcIdentity>> {
    // arg 1: also answer for zombies.
    let short: abi::proc_bsdshortinfo = match ffi::pid_info(pid, abi::PROC_PIDT_SHORTBSDINFO, 1) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e),
    };
    // Only "exited or not" matters here, not the run state.
    let state = state_letter(short.pbsi_status, None);
    // As in the collector: arg 1 answers for zombies too, so a zombie's
    // start time matches the one recorded when it was collected.
    //
    // XNU `proc_pidinfo` (bsd/kern/proc_info.c, xnu-11417.101.15) checks
    // PROC_PIDTBSDINFO with CHECK_SAME_USER: `proc_security_policy` answers
    // EPERM unless the caller's effective uid is the target's or it holds
    // PRIV_GLOBAL_PROC_INFO (root). kill(2) instead accepts a matching
    // *real* uid, so a setuid process started by the caller can be
    // signalled but not dated, at plan time and now alike. Such a start
    // time is START_TICKS_UNKNOWN, which `refuse_unless_same` never lets
    // through (`0 == 0` would otherwise pass the pid-reuse check).
    let ticks = match (
        ffi::pid_info::<abi::proc_bsdinfo>(pid, abi::PROC_PIDTBSDINFO, 1),
        boot_time(),
    ) {
        (Ok(bsd), Some(boot)) => {
            start_time_ms(&bsd).map_or(START_TICKS_UNKNOWN, |ms| start_ticks(ms, boot))
        }
        _ => START_TICKS_UNKNOWN,
    };
    Ok(Some(ProcIdentity {
        start_ticks: ticks,
        state,
    }))
}

/// Send `signal` to `pid` if it is still the process that started at
/// `start_ticks` and has not exited.
pub fn signal_same_process(
    proc_root: &Path,
    pid: i32,
    start_ticks: u64,
    signal: Signal,
) -> SignalOutcome {
    // No handle pins a process here: the bare pid, checked right before.
    signal_checked(
        pid,
        start_ticks,
        |pid| Ok(Some(pid)),
        |&pid| identity(proc_root, pid),
        |&pid| {
            // SAFETY: kill(2) on one positive pid (signal_checked refuses
            // 0, 1 and groups); no memory is passed.
            let rc = unsafe { libc::kill(pid, signal.number()) };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        },
    )
}
