//! Process control for `semleak run` and `semleak clean`: the few OS
//! operations that change something, each re-checking its target right
//! before it acts, and the cheap reads the gate repeats often.
//!
//! - [`ShmDir::unlink_semaphore`]: unlink a `sem.*` entry only if it is still
//!   the regular file that was planned (same device and inode, looked up
//!   relative to one directory descriptor, never following a symlink) and no
//!   process maps it.
//! - [`signal_same_process`]: signal a pid only if it is still the process
//!   that was planned (same start time), in the pid namespace the proc root
//!   shows (Linux: through the `/proc/PID` directory itself).
//! - [`Supervisor`]: the gate's child subreaper, reaping (on a thread of its
//!   own) and exactly-once signal forwarding.
//!
//! The types live here; each OS's system calls live in its own folder
//! (`linux/`, `macos/`) and are picked by `#[cfg]` below, with
//! [`fallback`] where an OS has no implementation.

mod fallback;
pub mod supervisor;

pub use supervisor::{
    become_subreaper, unblock_signals_in_child, Reaped, SpawnError, Started, SubreaperStatus,
    Supervisor, WaitStatus, FORWARDED_SIGNALS,
};

use std::io;
use std::path::Path;

pub use crate::control_types::*;

#[cfg(target_os = "linux")]
pub use crate::linux::signal::{identity, pid_namespace, signal_same_process};
#[cfg(target_os = "linux")]
pub use crate::linux::unlink::ShmDir;
#[cfg(target_os = "linux")]
pub use crate::linux::watch::{command_line, process_table, semaphore_ids, shm_mapping_ids};

#[cfg(target_os = "macos")]
pub use crate::macos::control::{identity, signal_same_process};
#[cfg(not(target_os = "linux"))]
pub use fallback::{
    command_line, pid_namespace, process_table, semaphore_ids, shm_mapping_ids, ShmDir,
};
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub use fallback::{identity, signal_same_process};

/// Is `pid` still the live process that started at `start_ticks`? False
/// when it is gone, a zombie, its pid was reused, or it cannot be read.
pub fn is_same_live_process(proc_root: &Path, pid: i32, start_ticks: u64) -> bool {
    matches!(
        identity(proc_root, pid),
        Ok(Some(id)) if id.start_ticks == start_ticks && !crate::model::state_has_ended(id.state)
    )
}

/// CPU time this process has used so far, all threads; zero if unknown.
pub fn own_cpu_time() -> std::time::Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    std::time::Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Device of a directory (`st_dev`).
pub fn dir_dev(dir: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(dir)?.dev())
}

/// Has the process `pid` that started at `start_ticks` ended (gone, exited
/// awaiting reaping, or its pid reused)?
pub fn has_ended(proc_root: &Path, pid: i32, start_ticks: u64) -> bool {
    match identity(proc_root, pid) {
        Ok(Some(id)) => id.start_ticks != start_ticks || crate::model::state_has_ended(id.state),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Whether `pid`'s standard input, output and error are all `/dev/null` or
/// closed: how a deliberately detached daemon looks. False when they cannot
/// be read (another OS, the process gone).
pub fn stdio_detached(proc_root: &Path, pid: i32) -> bool {
    if cfg!(not(target_os = "linux")) {
        return false;
    }
    let fd_dir = proc_root.join(pid.to_string()).join("fd");
    if !fd_dir.is_dir() {
        return false;
    }
    (0..3).all(|fd| match std::fs::read_link(fd_dir.join(fd.to_string())) {
        Ok(target) => target == Path::new("/dev/null"),
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    })
}
