//! Self-channels, purely: which pipes and unix socket pairs have both ends
//! in one process, and how a fill-level reading becomes a sample. The
//! Linux collector does the reading; this builds and is tested everywhere.

use std::collections::HashMap;

use super::sock_diag::UnixSockInfo;
use crate::model::{ChannelSample, Fd, FdKind, Process};

/// A channel to sample: for a pipe `first` is the read end and `second` the
/// write end; for a socket pair the direction is decided from the samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub pid: i32,
    pub is_pipe: bool,
    pub first: Fd,
    pub second: Fd,
    pub other_holders: Vec<i32>,
}

/// Mark unix sockets as such and record their peers.
pub fn apply_socket_info(processes: &mut [Process], sockets: &HashMap<u64, UnixSockInfo>) {
    for fd in processes.iter_mut().flat_map(|p| p.fds.iter_mut()) {
        if fd.kind == FdKind::Pipe {
            continue;
        }
        if let Some(info) = sockets.get(&fd.inode) {
            fd.kind = FdKind::UnixSocket;
            fd.peer_inode = info.peer_inode;
            fd.peer_closed = info.peer_closed;
        }
    }
}

/// Pipes whose read and write ends, and unix socket pairs whose two ends,
/// one process holds. `skip_pid` (semleak itself) is left out.
pub fn find_self_channels(processes: &[Process], skip_pid: i32) -> Vec<Candidate> {
    let mut holders: HashMap<u64, Vec<i32>> = HashMap::new();
    for p in processes {
        for fd in &p.fds {
            let v = holders.entry(fd.inode).or_default();
            if v.last() != Some(&p.pid) {
                v.push(p.pid);
            }
        }
    }
    let others = |pid: i32, inodes: [u64; 2]| -> Vec<i32> {
        let mut v: Vec<i32> = inodes
            .iter()
            .flat_map(|i| holders.get(i).into_iter().flatten().copied())
            .filter(|&h| h != pid)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut out = Vec::new();
    for p in processes.iter().filter(|p| p.pid != skip_pid) {
        let mut seen_pipes: Vec<u64> = Vec::new();
        for fd in p.fds.iter().filter(|f| f.kind == FdKind::Pipe) {
            if seen_pipes.contains(&fd.inode) {
                continue;
            }
            let same = || p.fds.iter().filter(|f| f.inode == fd.inode);
            let read = same().find(|f| f.access_mode() == Some(0));
            let write = same().find(|f| f.access_mode() == Some(1));
            if let (Some(r), Some(w)) = (read, write) {
                seen_pipes.push(fd.inode);
                out.push(Candidate {
                    pid: p.pid,
                    is_pipe: true,
                    first: r.clone(),
                    second: w.clone(),
                    other_holders: others(p.pid, [fd.inode, fd.inode]),
                });
            }
        }
        for a in p.fds.iter().filter(|f| f.kind == FdKind::UnixSocket) {
            let Some(peer) = a.peer_inode else { continue };
            // Each pair once: from its lower inode, first descriptor of each.
            if peer <= a.inode || p.fds.iter().find(|f| f.inode == a.inode) != Some(a) {
                continue;
            }
            if let Some(b) = p.fds.iter().find(|f| f.inode == peer) {
                out.push(Candidate {
                    pid: p.pid,
                    is_pipe: false,
                    first: a.clone(),
                    second: b.clone(),
                    other_holders: others(p.pid, [a.inode, peer]),
                });
            }
        }
    }
    out
}

/// A pipe reading. A pipe is a ring of page buffers; a write of n ≤ PIPE_BUF
/// bytes merges into the last page if it fits there, else needs a free
/// slot (`pipe_write` in fs/pipe.c). Wakeup writes are one byte, so no byte
/// of room can remain once `queued == capacity`, and that is what "full"
/// means here. A reader that consumed part of the oldest page leaves
/// queued a little below capacity while writers still get EAGAIN; that is
/// reported as not full (and so, if it does not drain, as stalled): we never
/// claim more than the figures show.
pub fn pipe_sample(at_ms: u64, queued: u64, capacity: u64) -> ChannelSample {
    ChannelSample {
        at_ms,
        queued,
        capacity,
        sender_wmem: None,
        full: capacity > 0 && queued >= capacity,
    }
}

/// One direction of a socket pair: `sender` writes, `receiver` reads. A
/// unix stream sender gets EAGAIN once its `sk_wmem_alloc` reaches its
/// `sk_sndbuf` (each queued skb stays charged to the sender until read).
pub fn socket_sample(
    at_ms: u64,
    sender: &UnixSockInfo,
    receiver: &UnixSockInfo,
) -> Option<ChannelSample> {
    let wmem = sender.wmem_alloc?;
    let sndbuf = sender.sndbuf?;
    Some(ChannelSample {
        at_ms,
        queued: receiver.rqueue?,
        capacity: sndbuf,
        sender_wmem: Some(wmem),
        full: sndbuf > 0 && wmem >= sndbuf,
    })
}

/// Which direction of a socket pair carries the data: the one full more
/// often, then the one with more bytes queued. Ties keep `first → second`.
pub fn first_sends(first_to_second: &[ChannelSample], second_to_first: &[ChannelSample]) -> bool {
    let score = |s: &[ChannelSample]| {
        (
            s.iter().filter(|x| x.full).count(),
            s.iter().map(|x| x.queued).sum::<u64>(),
        )
    };
    score(first_to_second) >= score(second_to_first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(fd: i32, kind: FdKind, inode: u64, flags: u32) -> Fd {
        Fd {
            fd,
            kind,
            inode,
            flags: Some(flags),
            peer_inode: None,
            peer_closed: false,
            access: None,
        }
    }

    fn proc_with(pid: i32, fds: Vec<Fd>) -> Process {
        Process {
            pid,
            fds,
            inspected: true,
            ..Process::default()
        }
    }

    fn sock(inode: u64, peer: u64, rq: u64, wmem: u64, sndbuf: u64) -> UnixSockInfo {
        UnixSockInfo {
            inode,
            sock_type: 1,
            peer_inode: Some(peer),
            rqueue: Some(rq),
            wmem_alloc: Some(wmem),
            sndbuf: Some(sndbuf),
            ..UnixSockInfo::default()
        }
    }

    #[test]
    fn pipes_need_both_ends_in_one_process() {
        let procs = vec![
            proc_with(
                10,
                vec![
                    fd(3, FdKind::Pipe, 500, 0o4000),
                    fd(4, FdKind::Pipe, 500, 0o4001),
                    fd(5, FdKind::Pipe, 501, 0o1), // other end elsewhere
                ],
            ),
            proc_with(11, vec![fd(0, FdKind::Pipe, 501, 0o0)]),
            proc_with(12, vec![fd(7, FdKind::Pipe, 500, 0o1)]), // forked child
            // semleak itself is never sampled.
            proc_with(
                99,
                vec![fd(3, FdKind::Pipe, 600, 0), fd(4, FdKind::Pipe, 600, 1)],
            ),
        ];
        let got = find_self_channels(&procs, 99);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].pid, 10);
        assert!(got[0].is_pipe);
        assert_eq!((got[0].first.fd, got[0].second.fd), (3, 4));
        assert_eq!(got[0].other_holders, vec![12]);
    }

    #[test]
    fn socket_pairs_via_peer_inodes() {
        let mut procs = vec![proc_with(
            10,
            vec![
                fd(5, FdKind::Socket, 701, 0o4002),
                fd(6, FdKind::Socket, 700, 0o4002),
                fd(7, FdKind::Socket, 702, 0o2), // peer in another process
                fd(8, FdKind::Socket, 900, 0o2), // not a unix socket
            ],
        )];
        let mut dump = HashMap::new();
        dump.insert(700, sock(700, 701, 0, 0, 1));
        dump.insert(701, sock(701, 700, 0, 0, 1));
        dump.insert(702, sock(702, 703, 0, 0, 1));
        apply_socket_info(&mut procs, &dump);
        assert_eq!(procs[0].fds[0].kind, FdKind::UnixSocket);
        assert_eq!(procs[0].fds[0].peer_inode, Some(700));
        assert_eq!(procs[0].fds[3].kind, FdKind::Socket);
        assert_eq!(procs[0].fds[3].peer_inode, None);
        let got = find_self_channels(&procs, 99);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(!got[0].is_pipe);
        assert_eq!((got[0].first.inode, got[0].second.inode), (700, 701));
        assert!(got[0].other_holders.is_empty());
    }

    #[test]
    fn pipe_full_means_no_byte_fits() {
        assert!(pipe_sample(0, 65536, 65536).full);
        assert!(!pipe_sample(0, 65535, 65536).full);
        assert!(!pipe_sample(0, 0, 0).full);
    }

    #[test]
    fn socket_full_when_sender_memory_reaches_sndbuf() {
        let a = sock(1, 2, 0, 213_000, 212_992);
        let b = sock(2, 1, 280, 0, 212_992);
        let s = socket_sample(5, &a, &b).unwrap();
        assert!(s.full);
        assert_eq!(s.queued, 280);
        assert_eq!(s.capacity, 212_992);
        assert_eq!(s.sender_wmem, Some(213_000));
        let back = socket_sample(5, &b, &a).unwrap();
        assert!(!back.full);
        assert!(!first_sends(
            std::slice::from_ref(&back),
            std::slice::from_ref(&s)
        ));
        assert!(first_sends(&[s], &[back]));
        let mut unknown = a.clone();
        unknown.sndbuf = None;
        assert!(socket_sample(0, &unknown, &b).is_none());
    }
}
