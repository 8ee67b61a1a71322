//! Self-connected channels (wakeup pipes and socketpairs) and their fill
//! levels, sampled twice across a window.

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
use crate::model::{ChannelSample, SelfChannel, Snapshot};
use crate::options::CollectOptions;

const METHOD_PIDFD: &str = "pidfd_getfd";
const METHOD_REOPEN: &str = "proc_fd_reopen";
const METHOD_SOCK_DIAG: &str = "sock_diag";

/// Find channels whose both ends one process holds and sample their fill
/// level at the start and end of `opts.sample_window`.
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
    let first = sample_all(&candidates, first_dump.as_ref(), started);
    if let Some(rest) = opts.sample_window.checked_sub(window_start.elapsed()) {
        std::thread::sleep(rest);
    }
    let second_dump = match first_dump {
        Some(_) => dump_unix_sockets().ok(),
        None => None,
    };
    let second = sample_all(&candidates, second_dump.as_ref(), started);

    let mut unreadable = 0usize;
    for ((cand, a), b) in candidates.iter().zip(first).zip(second) {
        match build_channel(cand, a, b) {
            Some(ch) => snapshot.channels.push(ch),
            None => unreadable += 1,
        }
    }
    if unreadable > 0 {
        snapshot.visibility.notes.push(format!(
            "{unreadable} self-connected pipe(s)/socket pair(s) could not be sampled (gone, or no permission)"
        ));
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
}

fn sample_all(
    candidates: &[Candidate],
    sockets: Option<&HashMap<u64, UnixSockInfo>>,
    started: Instant,
) -> Vec<Reading> {
    let mut pidfds: HashMap<i32, Option<OwnedFd>> = HashMap::new();
    candidates
        .iter()
        .map(|c| {
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

fn build_channel(cand: &Candidate, a: Reading, b: Reading) -> Option<SelfChannel> {
    let mut ch = SelfChannel {
        pid: cand.pid,
        other_holders: cand.other_holders.clone(),
        ..SelfChannel::default()
    };
    let (reader, writer) = if cand.is_pipe {
        let mut method = "";
        for r in [a, b] {
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
        for r in [a, b] {
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
