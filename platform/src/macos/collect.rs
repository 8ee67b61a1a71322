//! The macOS collector: sysctl and libproc.
//!
//! Without root, libproc answers the short BSD info (pid, ppid, pgid, uid,
//! status) for every process but descriptors, arguments and task info only
//! for the caller's own uid; the others are recorded in `visibility.skipped`.
//! The structures come from [`super::abi`], the decoding from
//! [`super::parse`]; this module only makes the calls.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::collections::BTreeSet;

use super::abi::{self, proc_fdinfo};
use super::ffi::{self, ProcArgs2};
use super::parse::{
    self as parse, c_bytes, pipe_id, pipe_sample, psem_name, self_pipes, self_socketpairs,
    snapshot_open_flags, socket_sample, state_letter, unix_peer, PipeEnd, UnixSocket,
};
use crate::error::CollectError;
use crate::model::SNAPSHOT_FORMAT;
use crate::model::{
    Fd, FdKind, Host, Limits, ProbedSemaphore, Process, SelfChannel, SkippedProcess, Snapshot,
    Visibility,
};
use crate::options::CollectOptions;
use crate::rawname::RawName;

/// Start times are kept in Linux-style clock ticks since boot, so rules
/// that compare `start_ticks` work on either OS.
pub(super) const CLOCK_TICKS: u64 = 100;
/// Thread names are read for at most this many threads per process.
const MAX_THREAD_NAMES: usize = 4096;

const UNLISTABLE_NOTE: &str = "macOS cannot list named semaphores: semaphores in use are \
counted from the descriptors of inspected processes, and unheld ones are seen only when \
probed by name (--probe-names)";

pub fn collect(opts: &CollectOptions) -> Result<Snapshot, CollectError> {
    let started = Instant::now();
    let taken_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let host = host_facts();
    let limits = Limits {
        // A `long` (8 bytes) in posix_sem.c; parse_sysctl_uint takes both widths.
        sem_max: ffi::sysctl_by_name("kern.posix.sem.max")
            .as_deref()
            .and_then(parse::parse_sysctl_uint),
        // The process-table size; macOS pids themselves wrap at 99,999.
        pid_max: ffi::sysctl_by_name("kern.maxproc")
            .as_deref()
            .and_then(parse::parse_sysctl_uint),
        ..Limits::default()
    };
    let pids = ffi::list_all_pids().map_err(|e| CollectError::io("proc_listallpids", e))?;
    let arg_max = ffi::sysctl_by_name("kern.argmax")
        .as_deref()
        .and_then(parse::parse_sysctl_uint)
        .unwrap_or(1 << 20) as usize;

    let outcomes = collect_processes(&pids, &host, arg_max, started);
    let mut processes = Vec::with_capacity(outcomes.len());
    let mut visibility = Visibility::default();
    let mut candidates = Vec::new();
    let mut unknown_cmdlines = 0usize;
    for o in outcomes {
        match o {
            Outcome::Gone => {}
            Outcome::Unreadable { pid, reason } => visibility.skipped.push(SkippedProcess {
                pid,
                reason,
                uid: None,
            }),
            Outcome::Seen {
                process,
                skip_reason,
                channels,
                cmdline_unknown,
            } => {
                unknown_cmdlines += usize::from(cmdline_unknown);
                if let Some(reason) = skip_reason {
                    visibility.skipped.push(SkippedProcess {
                        pid: process.pid,
                        reason,
                        uid: process.uid,
                    });
                }
                if process.pid != host.collector_pid {
                    candidates.extend(channels);
                }
                processes.push(*process);
            }
        }
    }
    visibility.processes_total = processes.len();
    visibility.processes_inspected = processes.iter().filter(|p| p.inspected).count();
    visibility.notes.push(UNLISTABLE_NOTE.to_string());
    if unknown_cmdlines > 0 {
        visibility.notes.push(format!(
            "the command lines of {unknown_cmdlines} process(es) are unknown: they did not fit \
             kern.argmax or changed while being read (KERN_PROCARGS2)"
        ));
    }
    visibility.skipped.sort_by_key(|s| s.pid);

    let channels = if opts.sample_window.is_zero() {
        Vec::new()
    } else {
        sample_channels(candidates, opts.sample_window, started)
    };
    let probed_semaphores = probe(&processes, &opts.probe_names, &mut visibility);

    Ok(Snapshot {
        format: SNAPSHOT_FORMAT,
        host,
        taken_at_ms,
        duration_ms: started.elapsed().as_millis() as u64,
        shm: Default::default(),
        processes,
        visibility,
        limits,
        channels,
        probed_semaphores,
        // Listening sockets are read on Linux only (the orphan rule's port
        // evidence).
        listening: Vec::new(),
    })
}

fn host_facts() -> Host {
    let text = |name: &str| {
        ffi::sysctl_by_name(name)
            .map(|b| parse::parse_sysctl_string(&b))
            .unwrap_or_default()
    };
    let release = text("kern.osrelease");
    let product = text("kern.osproductversion");
    Host {
        os: "macos".into(),
        hostname: text("kern.hostname"),
        kernel: if product.is_empty() {
            format!("Darwin {release}")
        } else {
            format!("Darwin {release} (macOS {product})")
        },
        boot_time: boot_time(),
        clock_ticks: CLOCK_TICKS,
        collector_pid: std::process::id() as i32,
        collector_uid: ffi::effective_uid(),
    }
}

/// Boot time in seconds since the epoch (`kern.boottime`).
pub(super) fn boot_time() -> Option<u64> {
    ffi::sysctl_by_name("kern.boottime")
        .as_deref()
        .and_then(parse::parse_boottime)
}

enum Outcome {
    /// The process exited between listing and reading.
    Gone,
    /// Not even the short BSD info could be read.
    Unreadable { pid: i32, reason: String },
    Seen {
        process: Box<Process>,
        skip_reason: Option<String>,
        channels: Vec<Candidate>,
        /// `KERN_PROCARGS2` was readable but not whole.
        cmdline_unknown: bool,
    },
}

/// A channel whose two ends one process holds, with its first sample.
enum Candidate {
    Pipe {
        pid: i32,
        read: PipeEnd,
        write: PipeEnd,
        first: crate::model::ChannelSample,
    },
    Socketpair {
        pid: i32,
        receiver: UnixSocket,
        sender: UnixSocket,
        first: crate::model::ChannelSample,
    },
}

fn collect_processes(pids: &[i32], host: &Host, arg_max: usize, started: Instant) -> Vec<Outcome> {
    crate::parallel::parallel_map(
        pids,
        |&pid| collect_process(pid, host, arg_max, started),
        |&pid, reason| Outcome::Unreadable { pid, reason },
    )
}

/// Start time in Linux-style clock ticks since boot, from milliseconds since
/// the epoch and the boot time in seconds.
pub(super) fn start_ticks(start_ms: u64, boot_secs: u64) -> u64 {
    (start_ms.saturating_sub(boot_secs * 1000)) * CLOCK_TICKS / 1000
}

fn denied_reason(what: &str, err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "permission denied reading {what} (another user's process; run as root for a complete view)"
        ),
        _ => format!("cannot read {what}: {err}"),
    }
}

fn collect_process(pid: i32, host: &Host, arg_max: usize, started: Instant) -> Outcome {
    // arg 1: also answer for zombies.
    let short: abi::proc_bsdshortinfo = match ffi::pid_info(pid, abi::PROC_PIDT_SHORTBSDINFO, 1) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Outcome::Gone,
        Err(e) => {
            return Outcome::Unreadable {
                pid,
                reason: denied_reason("the process's BSD info", &e),
            }
        }
    };
    let pgrp = short.pbsi_pgid as i32;
    let mut p = Process {
        pid,
        ppid: short.pbsi_ppid as i32,
        pgrp,
        session: ffi::session_of(pid).unwrap_or(pgrp),
        state: state_letter(short.pbsi_status, None),
        uid: Some(short.pbsi_uid),
        comm: RawName::from(c_bytes(&short.pbsi_comm)),
        threads: 1,
        ..Process::default()
    };
    // arg 1 again: a zombie keeps its start time, as on Linux, which dates
    // it ("zombie for at most …") and spares a just-exited child.
    if let Ok(bsd) = ffi::pid_info::<abi::proc_bsdinfo>(pid, abi::PROC_PIDTBSDINFO, 1) {
        if let Some(start_ms) = parse::start_time_ms(&bsd) {
            p.start_time_ms = Some(start_ms);
            if let Some(boot) = host.boot_time {
                p.start_ticks = start_ticks(start_ms, boot);
            }
        }
    }
    if p.is_zombie() {
        // A zombie has no memory and no descriptors left: nothing to hide.
        p.threads = 0;
        p.inspected = true;
        return Outcome::Seen {
            process: Box::new(p),
            skip_reason: None,
            channels: Vec::new(),
            cmdline_unknown: false,
        };
    }
    let cmdline_unknown = match ffi::procargs2(pid, arg_max) {
        ProcArgs2::Whole(buf) => {
            if let Some(args) = parse::parse_procargs2(&buf) {
                p.cmdline = args.argv;
            }
            false
        }
        ProcArgs2::Unknown => true,
        ProcArgs2::Denied => false,
    };
    if let Ok(task) = ffi::pid_info::<abi::proc_taskinfo>(pid, abi::PROC_PIDTASKINFO, 0) {
        p.state = state_letter(short.pbsi_status, Some(task.pti_numrunning));
        p.threads = task.pti_threadnum.max(0) as u32;
        if p.threads > 1 {
            p.thread_names = thread_names(pid, p.threads as usize);
        }
    }
    let fds = match ffi::list_fds(pid) {
        Ok(fds) => fds,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Outcome::Gone,
        Err(e) => {
            return Outcome::Seen {
                process: Box::new(p),
                skip_reason: Some(denied_reason("the process's descriptors", &e)),
                channels: Vec::new(),
                cmdline_unknown,
            }
        }
    };
    p.inspected = true;
    let channels = read_descriptors(&mut p, &fds, started);
    Outcome::Seen {
        process: Box::new(p),
        skip_reason: None,
        channels,
        cmdline_unknown,
    }
}

/// The names of a process's threads (`pth_name`, up to 63 bytes), for at
/// most [`MAX_THREAD_NAMES`] threads.
fn thread_names(pid: i32, expected: usize) -> Vec<RawName> {
    let Ok((list, flavor)) = ffi::list_threads(pid, expected, MAX_THREAD_NAMES) else {
        return Vec::new();
    };
    list.ids
        .iter()
        .filter_map(|&id| ffi::pid_info::<abi::proc_threadinfo>(pid, flavor, id).ok())
        .map(|t| RawName::from(c_bytes(&t.pth_name)))
        .collect()
}

/// Named semaphores, pipes and sockets; returns the self-held channels.
fn read_descriptors(p: &mut Process, fds: &[proc_fdinfo], started: Instant) -> Vec<Candidate> {
    let mut pipe_ends = Vec::new();
    let mut unix_socks = Vec::new();
    for fd in fds {
        match fd.proc_fdtype {
            abi::PROX_FDTYPE_PSEM => {
                if let Ok(info) =
                    ffi::fd_info::<abi::psem_fdinfo>(p.pid, fd.proc_fd, abi::PROC_PIDFDPSEMINFO)
                {
                    p.psem_names.push(psem_name(&info.pseminfo.psem_name));
                }
            }
            abi::PROX_FDTYPE_PIPE => {
                if let Ok(info) =
                    ffi::fd_info::<abi::pipe_fdinfo>(p.pid, fd.proc_fd, abi::PROC_PIDFDPIPEINFO)
                {
                    let end = pipe_end(fd.proc_fd, &info);
                    p.fds.push(Fd {
                        fd: fd.proc_fd,
                        kind: FdKind::Pipe,
                        inode: pipe_id(end.handle, end.peer),
                        flags: Some(snapshot_open_flags(end.openflags)),
                        peer_inode: None,
                        peer_closed: false,
                        access: None,
                    });
                    pipe_ends.push(end);
                }
            }
            abi::PROX_FDTYPE_SOCKET => {
                if let Ok(info) =
                    ffi::fd_info::<abi::socket_fdinfo>(p.pid, fd.proc_fd, abi::PROC_PIDFDSOCKETINFO)
                {
                    let unix = info.psi.soi_family == libc::AF_UNIX;
                    let peer = info
                        .psi
                        .un_head()
                        .map(|head| {
                            unix_peer(
                                &head,
                                info.psi.soi_type,
                                info.psi.soi_state,
                                info.psi.soi_error,
                            )
                        })
                        .unwrap_or_default();
                    p.fds.push(Fd {
                        fd: fd.proc_fd,
                        kind: if unix {
                            FdKind::UnixSocket
                        } else {
                            FdKind::Socket
                        },
                        // The socket handle: what a peer's unsi_conn_so names.
                        inode: info.psi.soi_so,
                        flags: Some(snapshot_open_flags(info.pfi.fi_openflags)),
                        peer_inode: peer.peer,
                        peer_closed: peer.closed,
                        access: None,
                    });
                    if let Some(sock) = unix_socket(fd.proc_fd, &info) {
                        unix_socks.push(sock);
                    }
                }
            }
            _ => {}
        }
    }
    let at_ms = started.elapsed().as_millis() as u64;
    let mut out: Vec<Candidate> = self_pipes(&pipe_ends)
        .into_iter()
        .map(|(read, write)| Candidate::Pipe {
            pid: p.pid,
            first: pipe_sample(&read, at_ms),
            read,
            write,
        })
        .collect();
    out.extend(
        self_socketpairs(&unix_socks)
            .into_iter()
            .map(|(receiver, sender)| Candidate::Socketpair {
                pid: p.pid,
                first: socket_sample(&receiver, &sender, at_ms),
                receiver,
                sender,
            }),
    );
    out
}

fn pipe_end(fd: i32, info: &abi::pipe_fdinfo) -> PipeEnd {
    PipeEnd {
        fd,
        handle: info.pipeinfo.pipe_handle,
        peer: info.pipeinfo.pipe_peerhandle,
        openflags: info.pfi.fi_openflags,
        queued: info.pipeinfo.pipe_stat.vst_size.max(0) as u64,
        blksize: info.pipeinfo.pipe_stat.vst_blksize.max(0) as u64,
    }
}

fn unix_socket(fd: i32, info: &abi::socket_fdinfo) -> Option<UnixSocket> {
    let head = info.psi.un_head()?;
    Some(UnixSocket {
        fd,
        pcb: info.psi.soi_pcb,
        conn_pcb: head.unsi_conn_pcb,
        openflags: info.pfi.fi_openflags,
        rcv: info.psi.soi_rcv,
        snd: info.psi.soi_snd,
    })
}

/// Second samples after the window; a channel whose descriptors now name
/// something else (closed and reused) is dropped.
fn sample_channels(
    candidates: Vec<Candidate>,
    window: Duration,
    started: Instant,
) -> Vec<SelfChannel> {
    if candidates.is_empty() {
        return Vec::new();
    }
    std::thread::sleep(window);
    let mut out = Vec::new();
    for c in candidates {
        let at_ms = started.elapsed().as_millis() as u64;
        match c {
            Candidate::Pipe {
                pid,
                read,
                write,
                first,
            } => {
                let Ok(info) =
                    ffi::fd_info::<abi::pipe_fdinfo>(pid, read.fd, abi::PROC_PIDFDPIPEINFO)
                else {
                    continue;
                };
                let now = pipe_end(read.fd, &info);
                if now.handle != read.handle {
                    continue;
                }
                let id = pipe_id(read.handle, read.peer);
                out.push(SelfChannel {
                    pid,
                    kind: "pipe".into(),
                    read_fd: read.fd,
                    write_fd: write.fd,
                    read_inode: id,
                    write_inode: id,
                    nonblocking: Some(write.openflags & abi::FNONBLOCK != 0),
                    samples: vec![first, pipe_sample(&now, at_ms)],
                    method: "proc_pidfdinfo".into(),
                    other_holders: Vec::new(),
                    // Not read on macOS: the rule's verdict is then only
                    // "possible".
                    loop_thread: Vec::new(),
                });
            }
            Candidate::Socketpair {
                pid,
                receiver,
                sender,
                first,
            } => {
                let reread = |s: &UnixSocket| {
                    ffi::fd_info::<abi::socket_fdinfo>(pid, s.fd, abi::PROC_PIDFDSOCKETINFO)
                        .ok()
                        .and_then(|i| unix_socket(s.fd, &i))
                        .filter(|n| n.pcb == s.pcb)
                };
                let (Some(r), Some(s)) = (reread(&receiver), reread(&sender)) else {
                    continue;
                };
                out.push(SelfChannel {
                    pid,
                    kind: "socketpair".into(),
                    read_fd: receiver.fd,
                    write_fd: sender.fd,
                    read_inode: receiver.pcb,
                    write_inode: sender.pcb,
                    nonblocking: Some(sender.openflags & abi::FNONBLOCK != 0),
                    samples: vec![first, socket_sample(&r, &s, at_ms)],
                    method: "proc_pidfdinfo".into(),
                    other_holders: Vec::new(),
                    // Not read on macOS: the rule's verdict is then only
                    // "possible".
                    loop_thread: Vec::new(),
                });
            }
        }
    }
    out
}

/// `sem_open(name, 0)` then `sem_close` for every distinct name a process
/// holds and every name asked for, byte for byte as given (the kernel
/// stores names exactly, `/foo` and `foo` being two semaphores). Opening
/// takes a reference only for an instant and creates nothing. A held name
/// that no longer exists was unlinked: its holders keep the semaphore, but
/// it no longer counts against `kern.posix.sem.max` (which counts names).
fn probe(
    processes: &[Process],
    asked: &[RawName],
    visibility: &mut Visibility,
) -> Vec<ProbedSemaphore> {
    let names: BTreeSet<&RawName> = processes
        .iter()
        .flat_map(|p| p.psem_names.iter())
        .chain(asked)
        .collect();
    let mut out = Vec::with_capacity(names.len());
    let mut failed: Vec<String> = Vec::new();
    for name in names {
        match ffi::sem_exists(name.as_bytes()) {
            Ok(exists) => out.push(ProbedSemaphore {
                name: name.clone(),
                exists,
            }),
            Err(e) => failed.push(format!("{}: {e}", name.to_lossy())),
        }
    }
    if let Some(first) = failed.first() {
        // A sandbox refusing sem_open fails every probe: one note, not thousands.
        visibility.notes.push(format!(
            "could not probe {} semaphore name(s) with sem_open (first: {first}); held ones are counted as named",
            failed.len()
        ));
    }
    out
}
