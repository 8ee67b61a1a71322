//! Process control for `semleak run`: becoming a child subreaper, reaping
//! children, forwarding termination signals to the command, signalling a
//! process only if it is still the one we saw, and the light-weight reads
//! the gate repeats often (the process table, semaphore ids, one process's
//! shared-memory mappings).
//!
//! Everything here is a safe wrapper; the `unsafe` calls are local.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One row of the process table: just enough to follow parent links and to
/// tell a process from a later one that reused its pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcEntry {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    pub start_ticks: u64,
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

    fn from_raw(status: libc::c_int) -> WaitStatus {
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

/// Make this process a child subreaper: descendants that lose their parent
/// are reparented to us instead of to init, so the gate knows them exactly.
#[cfg(target_os = "linux")]
pub fn become_subreaper() -> io::Result<SubreaperStatus> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes integer arguments only
    // and changes no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SubreaperStatus::Enabled)
}

/// Make this process a child subreaper (not available on this OS).
#[cfg(not(target_os = "linux"))]
pub fn become_subreaper() -> io::Result<SubreaperStatus> {
    Ok(SubreaperStatus::Unsupported(format!(
        "{} has no child subreaper: descendants that lost their parent are \
         reparented to init and are found by the process tree seen in samples only",
        std::env::consts::OS
    )))
}

/// The signals forwarded to the command.
pub const FORWARDED_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Owns the command's pid for signalling and reaping. A forwarding thread
/// waits for SIGINT/SIGTERM/SIGHUP with `sigwait` (no work in a signal
/// handler) and sends them on to the command. Sending and reaping take the
/// same lock, so a signal is never sent to a pid after it was reaped (and
/// perhaps reused).
pub struct Supervisor {
    target: Arc<Mutex<Option<i32>>>,
    received: Arc<Mutex<Vec<i32>>>,
}

impl Supervisor {
    /// Block the forwarded signals in the calling thread (threads created
    /// later inherit the mask; children must be started with
    /// [`unblock_signals_in_child`]) and start the forwarding thread. Call it before starting
    /// other threads, or they may take the signals instead.
    pub fn start() -> io::Result<Supervisor> {
        let set = forwarded_set();
        // SAFETY: `set` is an initialised sigset_t; the old mask is not wanted.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let target: Arc<Mutex<Option<i32>>> = Arc::new(Mutex::new(None));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (t, r) = (Arc::clone(&target), Arc::clone(&received));
        std::thread::Builder::new()
            .name("semleak-signals".into())
            .spawn(move || forward_signals(set, t, r))?;
        Ok(Supervisor { target, received })
    }

    /// The command to forward signals to, once it is started.
    pub fn set_target(&self, pid: i32) {
        *lock(&self.target) = Some(pid);
    }

    /// Signals received (and forwarded while the command ran).
    pub fn received_signals(&self) -> Vec<i32> {
        lock(&self.received).clone()
    }

    /// Reap one exited child without blocking.
    pub fn reap_nohang(&self) -> io::Result<Reap> {
        let mut target = lock(&self.target);
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes only to the local `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ECHILD) => Ok(Reap::NoChildren),
                Some(libc::EINTR) => Ok(Reap::NoneExited),
                _ => Err(e),
            };
        }
        if pid == 0 {
            return Ok(Reap::NoneExited);
        }
        if *target == Some(pid) {
            *target = None;
        }
        Ok(Reap::Child(pid, WaitStatus::from_raw(status)))
    }
}

/// Have `cmd` start with the forwarded signals unblocked: the mask blocked
/// by [`Supervisor::start`] is inherited across fork and exec, and
/// `std::process::Command` does not reset it.
pub fn unblock_signals_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let set = forwarded_set();
    // SAFETY: the closure runs between fork and exec and only calls
    // pthread_sigmask, which is async-signal-safe, on a sigset_t copied in.
    unsafe {
        cmd.pre_exec(move || {
            let rc = libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(rc))
            }
        });
    }
}

/// What one non-blocking wait found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reap {
    Child(i32, WaitStatus),
    NoneExited,
    NoChildren,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn forward_signals(
    set: libc::sigset_t,
    target: Arc<Mutex<Option<i32>>>,
    received: Arc<Mutex<Vec<i32>>>,
) {
    loop {
        let Some((sig, from_terminal)) = wait_signal(&set) else {
            continue;
        };
        lock(&received).push(sig);
        // A terminal's Ctrl-C already went to the whole foreground process
        // group, the command included: sending it again would deliver it twice.
        if from_terminal {
            continue;
        }
        if let Some(pid) = *lock(&target) {
            // SAFETY: kill(2) on the command's pid, which is not reaped yet
            // (reaping takes the same lock and clears the target).
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}

/// Wait for one of the blocked signals: (signal, sent by the kernel for a
/// terminal rather than by a process).
#[cfg(target_os = "linux")]
fn wait_signal(set: &libc::sigset_t) -> Option<(libc::c_int, bool)> {
    // SAFETY: sigwaitinfo fills the local siginfo_t; `set` is initialised.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
    if sig < 0 {
        return None;
    }
    Some((sig, info.si_code == libc::SI_KERNEL))
}

#[cfg(not(target_os = "linux"))]
fn wait_signal(set: &libc::sigset_t) -> Option<(libc::c_int, bool)> {
    let mut sig: libc::c_int = 0;
    // SAFETY: sigwait writes the signal number to the local `sig`.
    let rc = unsafe { libc::sigwait(set, &mut sig) };
    (rc == 0).then_some((sig, false))
}

/// What happened when signalling a process we saw earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOutcome {
    Sent,
    /// It is gone (or a zombie): nothing to signal.
    Gone,
    /// Its pid now belongs to another process: not signalled.
    Reused,
}

/// Send `sig` to `pid` only if it is still the process that started at
/// `start_ticks`. On Linux a pidfd pins the process between the identity
/// check and the signal, so a reused pid is never signalled.
#[cfg(target_os = "linux")]
pub fn signal_process(
    proc_root: &Path,
    pid: i32,
    start_ticks: u64,
    sig: libc::c_int,
) -> io::Result<SignalOutcome> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(SignalOutcome::Gone),
            // Kernels before 5.3: check, then kill (a small reuse window).
            Some(libc::ENOSYS) => match identity(proc_root, pid, start_ticks) {
                Some(SignalOutcome::Sent) => kill(pid, sig),
                Some(other) => Ok(other),
                None => Ok(SignalOutcome::Gone),
            },
            _ => Err(e),
        };
    }
    let fd = fd as libc::c_int;
    let outcome = match identity(proc_root, pid, start_ticks) {
        Some(SignalOutcome::Sent) => {
            // SAFETY: pidfd_send_signal on the pidfd we own; no siginfo.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if rc == 0 {
                Ok(SignalOutcome::Sent)
            } else {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ESRCH) {
                    Ok(SignalOutcome::Gone)
                } else {
                    Err(e)
                }
            }
        }
        Some(other) => Ok(other),
        None => Ok(SignalOutcome::Gone),
    };
    // SAFETY: closing the pidfd we opened above, once.
    unsafe {
        libc::close(fd);
    }
    outcome
}

/// Send `sig` to `pid` (no start-time check is possible without /proc).
#[cfg(not(target_os = "linux"))]
pub fn signal_process(
    _proc_root: &Path,
    pid: i32,
    _start_ticks: u64,
    sig: libc::c_int,
) -> io::Result<SignalOutcome> {
    kill(pid, sig)
}

fn kill(pid: i32, sig: libc::c_int) -> io::Result<SignalOutcome> {
    if pid <= 1 {
        return Ok(SignalOutcome::Gone);
    }
    // SAFETY: kill(2) on one positive pid (never a group or -1).
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        return Ok(SignalOutcome::Sent);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        Ok(SignalOutcome::Gone)
    } else {
        Err(e)
    }
}

/// `Sent` when the pid is still the same live process, `Reused` when another
/// process has it, `Gone`/`None` when it is gone or a zombie.
#[cfg(target_os = "linux")]
fn identity(proc_root: &Path, pid: i32, start_ticks: u64) -> Option<SignalOutcome> {
    let entry = read_entry(proc_root, pid)?;
    Some(if entry.start_ticks != start_ticks {
        SignalOutcome::Reused
    } else if entry.state == 'Z' || entry.state == 'X' {
        SignalOutcome::Gone
    } else {
        SignalOutcome::Sent
    })
}

#[cfg(target_os = "linux")]
fn read_entry(proc_root: &Path, pid: i32) -> Option<ProcEntry> {
    let bytes = std::fs::read(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let stat = crate::parse::parse_stat(&bytes).ok()?;
    Some(ProcEntry {
        pid,
        ppid: stat.ppid,
        state: stat.state,
        start_ticks: stat.start_ticks,
    })
}

/// The process table from `/proc/*/stat` only: cheap enough to read often.
#[cfg(target_os = "linux")]
pub fn process_table(proc_root: &Path) -> io::Result<Vec<ProcEntry>> {
    // list_pids is sorted, so the table is too.
    Ok(crate::linux::procs::list_pids(proc_root)?
        .into_iter()
        .filter_map(|pid| read_entry(proc_root, pid))
        .collect())
}

/// The process table, from a full collection (no cheap source here).
#[cfg(not(target_os = "linux"))]
pub fn process_table(proc_root: &Path) -> io::Result<Vec<ProcEntry>> {
    let opts = crate::CollectOptions {
        proc_root: proc_root.to_path_buf(),
        sample_window: std::time::Duration::ZERO,
        ..Default::default()
    };
    let snap = crate::collect(&opts).map_err(io::Error::other)?;
    Ok(snap
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

/// A named semaphore file, identified by device and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemId {
    pub name: crate::RawName,
    pub dev: u64,
    pub inode: u64,
}

/// The `sem.*` entries of the shared-memory directory (lstat, no content).
/// Empty where semaphores are not files (macOS).
pub fn semaphore_ids(dir: &Path) -> io::Result<Vec<SemId>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let Ok(entry) = entry else { continue };
            let file_name = entry.file_name();
            let Some(name) = file_name.as_bytes().strip_prefix(b"sem.") else {
                continue;
            };
            if let Ok(md) = std::fs::symlink_metadata(entry.path()) {
                if md.is_file() {
                    out.push(SemId {
                        name: crate::RawName::from(name),
                        dev: md.dev(),
                        inode: md.ino(),
                    });
                }
            }
        }
        Ok(out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        Ok(Vec::new())
    }
}

/// (device, inode) of every file of `shm_dev` that `pid` maps.
pub fn shm_mapping_ids(proc_root: &Path, pid: i32, shm_dev: u64) -> io::Result<Vec<(u64, u64)>> {
    #[cfg(target_os = "linux")]
    {
        let f = std::fs::File::open(proc_root.join(pid.to_string()).join("maps"))?;
        let lines =
            crate::parse::parse_maps(io::BufReader::with_capacity(64 * 1024, f), |d, _, _| {
                d == shm_dev
            })?;
        Ok(lines.into_iter().map(|l| (l.dev, l.inode)).collect())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (proc_root, pid, shm_dev);
        Ok(Vec::new())
    }
}

/// Device of a directory (`st_dev`).
pub fn dir_dev(dir: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(dir)?.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_codes() {
        assert_eq!(WaitStatus::Exited(7).shell_code(), 7);
        assert_eq!(WaitStatus::Signaled(9).shell_code(), 137);
        assert_eq!(WaitStatus::from_raw(7 << 8), WaitStatus::Exited(7));
        assert_eq!(WaitStatus::from_raw(libc::SIGKILL), WaitStatus::Signaled(9));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_process_is_in_the_table_and_identity_holds() {
        let me = std::process::id() as i32;
        let table = process_table(Path::new("/proc")).unwrap();
        let entry = table.iter().find(|e| e.pid == me).expect("self listed");
        assert_eq!(
            identity(Path::new("/proc"), me, entry.start_ticks),
            Some(SignalOutcome::Sent)
        );
        assert_eq!(
            identity(Path::new("/proc"), me, entry.start_ticks + 1),
            Some(SignalOutcome::Reused)
        );
        // Signal 0 checks without delivering anything.
        assert_eq!(
            signal_process(Path::new("/proc"), me, entry.start_ticks + 1, 0).unwrap(),
            SignalOutcome::Reused
        );
        assert_eq!(
            signal_process(Path::new("/proc"), me, entry.start_ticks, 0).unwrap(),
            SignalOutcome::Sent
        );
    }
}
