//! Self-connected channels (wakeup pipes and socketpairs) and their fill
//! levels, sampled across a window, with the main thread of a process
//! whose channel holds bytes.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Instant;

use rustix::io::ioctl_fionread;
use rustix::pipe::fcntl_getpipe_size;
use rustix::process::{pidfd_getfd, PidfdGetfdFlags};

use super::self_channels::{
    apply_socket_info, find_self_channels, first_sends, pipe_sample, socket_sample, Candidate,
};
use super::signal::pidfd_open;
use super::sock_diag::dump_unix_sockets;
use super::sock_diag::UnixSockInfo;
use crate::model::{ChannelSample, SelfChannel, Snapshot, ThreadSample};
use crate::options::CollectOptions;

const METHOD_PIDFD: &str = "pidfd_getfd";
const METHOD_REOPEN: &str = "proc_fd_reopen";
const METHOD_SOCK_DIAG: &str = "sock_diag";

/// Find channels whose both ends one process holds and sample their fill
/// level at the start and end of `opts.sample_window`; a channel with
/// bytes queued also between them, beside its process's main thread.
pub fn sample_channels(snapshot: &mut Snapshot, opts: &CollectOptions, started: Instant) {
    // A fixture tree's pids and inodes are not this host's: nothing live
    // to ask the kernel about.
    if opts.proc_root != Path::new("/proc") {
        return;
    }
    let first_dump = match dump_unix_sockets() {
        Ok(d) => {
            apply_socket_info(&mut snapshot.processes, &d);
            Some(d)
        }
        Err(e) => {
            snapshot.visibility.notes.push(format!(
                "unix socket peers and fill levels unavailable (sock_diag: {e})"
            ));
            None
        }
    };
    if opts.sample_window.is_zero() {
        return;
    }
    let mut candidates = find_self_channels(&snapshot.processes, snapshot.host.collector_pid);
    if candidates.is_empty() {
        return;
    }
    super::procs::complete_candidates(&opts.proc_root, &mut snapshot.processes, &mut candidates);
    let window_start = Instant::now();
    let first = sample_all(&candidates, first_dump.as_ref(), started, None);
    // Only a channel with bytes queued can be judged: the others get the
    // last reading alone, and their processes no thread reads.
    let watched: Vec<bool> = first.iter().map(Reading::has_bytes).collect();
    let mut loop_pids: Vec<i32> = candidates
        .iter()
        .zip(&watched)
        .filter(|(_, w)| **w)
        .map(|(c, _)| c.pid)
        .collect();
    loop_pids.sort_unstable();
    loop_pids.dedup();
    let mut threads: HashMap<i32, Vec<ThreadSample>> = HashMap::new();
    read_loop_threads(&opts.proc_root, &loop_pids, started, &mut threads);
    let mut readings = vec![first];
    for i in 1..READINGS {
        let last = i == READINGS - 1;
        if !last && loop_pids.is_empty() {
            continue;
        }
        let due = opts
            .sample_window
            .checked_mul(i)
            .map_or(opts.sample_window, |d| d / (READINGS - 1));
        if let Some(rest) = due.checked_sub(window_start.elapsed()) {
            std::thread::sleep(rest);
        }
        let only = (!last).then_some(watched.as_slice());
        let needs_dump = candidates
            .iter()
            .zip(&watched)
            .any(|(c, w)| !c.is_pipe && (last || *w));
        let dump = match &first_dump {
            Some(_) if needs_dump => dump_unix_sockets().ok(),
            _ => None,
        };
        readings.push(sample_all(&candidates, dump.as_ref(), started, only));
        read_loop_threads(&opts.proc_root, &loop_pids, started, &mut threads);
    }

    let mut unreadable = 0usize;
    for (k, cand) in candidates.iter().enumerate() {
        let of_cand = readings
            .iter_mut()
            .map(|r| std::mem::replace(&mut r[k], Reading::Skipped));
        match build_channel(cand, of_cand) {
            Some(mut ch) => {
                if watched[k] {
                    ch.loop_thread = threads.get(&cand.pid).cloned().unwrap_or_default();
                }
                snapshot.channels.push(ch)
            }
            None => unreadable += 1,
        }
    }
    if unreadable > 0 {
        snapshot.visibility.notes.push(format!(
            "{unreadable} self-connected pipe(s)/socket pair(s) could not be sampled (gone, or no permission)"
        ));
    }
}

/// Fill readings across the window: its start and end, and between them
/// (for channels with bytes queued) enough to catch a loop that drains.
const READINGS: u32 = 4;

/// The main thread of each pid: the thread that runs signal handlers and,
/// in CPython, the event loop that owns the wakeup fd.
fn read_loop_threads(
    proc_root: &Path,
    pids: &[i32],
    started: Instant,
    out: &mut HashMap<i32, Vec<ThreadSample>>,
) {
    for &pid in pids {
        let at_ms = started.elapsed().as_millis() as u64;
        if let Some(t) = super::procs::read_loop_thread(proc_root, pid, pid, at_ms) {
            out.entry(pid).or_default().push(t);
        }
    }
}

/// One reading of a candidate: for a pipe its level and the method used,
/// for a socket pair both directions.
enum Reading {
    Pipe(ChannelSample, &'static str),
    Socket {
        first_to_second: ChannelSample,
        second_to_first: ChannelSample,
    },
    Unreadable,
    /// Not read this time (an empty channel between first and last).
    Skipped,
}

impl Reading {
    fn has_bytes(&self) -> bool {
        match self {
            Reading::Pipe(s, _) => s.queued > 0,
            Reading::Socket {
                first_to_second,
                second_to_first,
            } => first_to_second.queued > 0 || second_to_first.queued > 0,
            Reading::Unreadable | Reading::Skipped => false,
        }
    }
}

fn sample_all(
    candidates: &[Candidate],
    sockets: Option<&HashMap<u64, UnixSockInfo>>,
    started: Instant,
    only: Option<&[bool]>,
) -> Vec<Reading> {
    let mut pidfds: HashMap<i32, Option<OwnedFd>> = HashMap::new();
    candidates
        .iter()
        .enumerate()
        .map(|(k, c)| {
            if only.is_some_and(|o| !o[k]) {
                return Reading::Skipped;
            }
            let at_ms = started.elapsed().as_millis() as u64;
            if c.is_pipe {
                let pidfd = pidfds
                    .entry(c.pid)
                    .or_insert_with(|| pidfd_open(c.pid).ok());
                match pipe_level(pidfd.as_ref(), c.pid, c.first.fd, c.first.inode) {
                    Some((queued, cap, method)) => {
                        Reading::Pipe(pipe_sample(at_ms, queued, cap), method)
                    }
                    None => Reading::Unreadable,
                }
            } else {
                let (Some(a), Some(b)) = (
                    sockets.and_then(|s| s.get(&c.first.inode)),
                    sockets.and_then(|s| s.get(&c.second.inode)),
                ) else {
                    return Reading::Unreadable;
                };
                match (socket_sample(at_ms, a, b), socket_sample(at_ms, b, a)) {
                    (Some(first_to_second), Some(second_to_first)) => Reading::Socket {
                        first_to_second,
                        second_to_first,
                    },
                    _ => Reading::Unreadable,
                }
            }
        })
        .collect()
}

fn build_channel(cand: &Candidate, readings: impl Iterator<Item = Reading>) -> Option<SelfChannel> {
    let mut ch = SelfChannel {
        pid: cand.pid,
        other_holders: cand.other_holders.clone(),
        ..SelfChannel::default()
    };
    let (reader, writer) = if cand.is_pipe {
        let mut method = "";
        for r in readings {
            if let Reading::Pipe(s, m) = r {
                ch.samples.push(s);
                method = m;
            }
        }
        ch.kind = "pipe".into();
        ch.method = method.into();
        (&cand.first, &cand.second)
    } else {
        let (mut fwd, mut back) = (Vec::new(), Vec::new());
        for r in readings {
            if let Reading::Socket {
                first_to_second,
                second_to_first,
            } = r
            {
                fwd.push(first_to_second);
                back.push(second_to_first);
            }
        }
        ch.kind = "socketpair".into();
        ch.method = METHOD_SOCK_DIAG.into();
        if first_sends(&fwd, &back) {
            ch.samples = fwd;
            (&cand.second, &cand.first)
        } else {
            ch.samples = back;
            (&cand.first, &cand.second)
        }
    };
    if ch.samples.is_empty() {
        return None;
    }
    ch.read_fd = reader.fd;
    ch.write_fd = writer.fd;
    ch.read_inode = reader.inode;
    ch.write_inode = writer.inode;
    ch.nonblocking = writer.nonblocking();
    Some(ch)
}

/// A private descriptor for the target's pipe: `pidfd_getfd` needs ptrace
/// rights and has no side effect; reopening `/proc/PID/fd/N` needs only
/// read rights but adds a reader for an instant (non-blocking, closed at
/// once, so a writer never waits on it).
fn pipe_level(
    pidfd: Option<&OwnedFd>,
    pid: i32,
    fd: i32,
    inode: u64,
) -> Option<(u64, u64, &'static str)> {
    let got = pidfd.and_then(|p| pidfd_getfd(p, fd, PidfdGetfdFlags::empty()).ok());
    let (file, method) = match got {
        Some(f) => (File::from(f), METHOD_PIDFD),
        None => (reopen(pid, fd).ok()?, METHOD_REOPEN),
    };
    // The descriptor number may have been reused since the fd table was
    // read: only the pipe we listed counts.
    if file.metadata().ok()?.ino() != inode {
        return None;
    }
    let queued = ioctl_fionread(&file).ok()?;
    let capacity = fcntl_getpipe_size(&file).ok()?;
    Some((queued, capacity as u64, method))
}

fn reopen(pid: i32, fd: i32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(format!("/proc/{pid}/fd/{fd}"))
}
