//! Pure parsers for macOS data (sysctl buffers, libproc results), built and
//! tested on every OS. The macOS collector does the system calls and hands
//! the bytes and numbers to these.

use std::collections::HashSet;

use super::abi::{
    proc_bsdinfo, sockbuf_info, un_sockinfo_head, BIG_PIPE_SIZE, ECONNRESET_XNU, FNONBLOCK, FREAD,
    FWRITE, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, SOI_S_ISDISCONNECTED, SRUN, SSLEEP, SSTOP,
    SZOMB,
};
use crate::model::ChannelSample;
use crate::rawname::RawName;

/// A `KERN_PROCARGS2` buffer: the executable path and the argument vector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcArgs {
    pub exec_path: RawName,
    pub argv: Vec<RawName>,
}

/// Parse `sysctl({CTL_KERN, KERN_PROCARGS2, pid})`: a native-endian `int`
/// argc, the executable path, NUL padding, then argc NUL-terminated
/// arguments (the environment follows and is ignored). Parse only a whole
/// answer ([`super::libproc::procargs_whole`]): the kernel answers a short
/// buffer with the string area's tail, which this cannot tell from a
/// command line. Within a whole answer, an unterminated last argument is
/// dropped.
pub fn parse_procargs2(buf: &[u8]) -> Option<ProcArgs> {
    let argc_bytes: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let argc = i32::from_ne_bytes(argc_bytes);
    if argc < 0 {
        return None;
    }
    let rest = &buf[4..];
    let path_end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let exec_path = RawName::from(&rest[..path_end]);
    let mut pos = path_end;
    // Skip the NUL terminator and alignment padding after the path.
    while pos < rest.len() && rest[pos] == 0 {
        pos += 1;
    }
    let mut argv = Vec::with_capacity(argc.min(256) as usize);
    while argv.len() < argc as usize && pos < rest.len() {
        let Some(len) = rest[pos..].iter().position(|b| *b == 0) else {
            break; // truncated: the last argument has no terminator
        };
        argv.push(RawName::from(&rest[pos..pos + len]));
        pos += len + 1;
    }
    Some(ProcArgs { exec_path, argv })
}

/// An integer sysctl (`int` or `long`/`quad`), native-endian; negative
/// values are not limits.
pub fn parse_sysctl_uint(buf: &[u8]) -> Option<u64> {
    match buf.len() {
        4 => u64::try_from(i32::from_ne_bytes(buf.try_into().ok()?)).ok(),
        8 => u64::try_from(i64::from_ne_bytes(buf.try_into().ok()?)).ok(),
        _ => None,
    }
}

/// A string sysctl (`kern.hostname`, `kern.osproductversion`): text up to
/// the first NUL.
pub fn parse_sysctl_string(buf: &[u8]) -> String {
    String::from_utf8_lossy(c_bytes(buf)).into_owned()
}

/// `kern.boottime`: a 64-bit `struct timeval`; the seconds.
pub fn parse_boottime(buf: &[u8]) -> Option<u64> {
    let secs: [u8; 8] = buf.get(..8)?.try_into().ok()?;
    u64::try_from(i64::from_ne_bytes(secs))
        .ok()
        .filter(|s| *s > 0)
}

/// The bytes of a fixed-size C string field, up to the first NUL.
pub fn c_bytes(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    &field[..end]
}

/// A `psem_name` exactly as the kernel stored it. XNU keeps the bytes
/// passed to `sem_open` (no `PSXSEM_NAME_RESTRICT` in its builds), so
/// `/foo` and `foo` are two different semaphores: the name is never
/// normalised here, only for display.
pub fn psem_name(field: &[u8]) -> RawName {
    RawName::from(c_bytes(field))
}

/// Kernel open flags (`FREAD`/`FWRITE`/`FNONBLOCK`) in the encoding the
/// Snapshot uses (Linux fdinfo: access mode in the low two bits, 0 read,
/// 1 write, 2 read-write; `O_NONBLOCK` = 0o4000), so rules need not care
/// which OS a Snapshot came from.
pub fn snapshot_open_flags(fi_openflags: u32) -> u32 {
    let access = match (fi_openflags & FREAD != 0, fi_openflags & FWRITE != 0) {
        (true, true) => 2,
        (false, true) => 1,
        _ => 0,
    };
    let nonblock = if fi_openflags & FNONBLOCK != 0 {
        0o4000
    } else {
        0
    };
    access | nonblock
}

/// One end of a pipe as `PROC_PIDFDPIPEINFO` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeEnd {
    pub fd: i32,
    pub handle: u64,
    pub peer: u64,
    pub openflags: u32,
    /// Bytes queued in the pipe's buffer (`vst_size`).
    pub queued: u64,
    /// `vst_blksize`: `MAX(PIPE_SIZE, current buffer size)`.
    pub blksize: u64,
}

/// A pipe's identity in the Snapshot: both ends get the same number, as
/// both ends of a Linux pipe share one pipefs inode.
pub fn pipe_id(handle: u64, peer: u64) -> u64 {
    if peer == 0 {
        handle
    } else {
        handle.min(peer)
    }
}

/// Pipes whose read and write ends one process holds: (read end, write
/// end), one per pipe however many times either end was dup'ed (the
/// lowest descriptors kept). Writes land in the read end's buffer, so its
/// figures are the fill level.
pub fn self_pipes(ends: &[PipeEnd]) -> Vec<(PipeEnd, PipeEnd)> {
    let mut sorted: Vec<&PipeEnd> = ends.iter().collect();
    sorted.sort_by_key(|e| e.fd);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for r in &sorted {
        if r.openflags & FREAD == 0 || r.openflags & FWRITE != 0 || r.peer == 0 {
            continue;
        }
        if !seen.insert(r.handle) {
            continue; // a dup of a read end already paired
        }
        if let Some(w) = sorted
            .iter()
            .find(|w| w.handle == r.peer && w.openflags & FWRITE != 0 && w.openflags & FREAD == 0)
        {
            out.push((**r, **w));
        }
    }
    out
}

/// Bytes a pipe holds before a writer gets EAGAIN. `vst_blksize` is only
/// the current buffer (at least 16 KiB), and a write that does not fit
/// grows the buffer up to 64 KiB (`choose_pipespace`, `sys_pipe.c`), so a
/// pipe with 16 KiB queued is not full yet. Growth is refused only when
/// all pipes together use up `kern.ipc.maxpipekva`, which release kernels
/// do not publish (no `PIPE_SYSCTLS`): such a pipe reads as not draining
/// (stalled), not as full.
pub fn pipe_capacity(blksize: u64) -> u64 {
    blksize.max(BIG_PIPE_SIZE)
}

/// A pipe's fill level from its read end.
pub fn pipe_sample(read_end: &PipeEnd, at_ms: u64) -> ChannelSample {
    let capacity = pipe_capacity(read_end.blksize);
    ChannelSample {
        at_ms,
        queued: read_end.queued,
        capacity,
        sender_wmem: None,
        full: read_end.queued >= capacity,
    }
}

/// One Unix-domain socket as `PROC_PIDFDSOCKETINFO` reports it.
#[derive(Debug, Clone, Copy)]
pub struct UnixSocket {
    pub fd: i32,
    pub pcb: u64,
    pub conn_pcb: u64,
    pub openflags: u32,
    pub rcv: sockbuf_info,
    pub snd: sockbuf_info,
}

/// Socketpairs whose two sockets one process holds, one per pair however
/// many times either socket was dup'ed (the lowest descriptors kept),
/// ordered so that the first is the receiving side (the one with bytes
/// queued, else the lower fd): (receiver, sender).
pub fn self_socketpairs(socks: &[UnixSocket]) -> Vec<(UnixSocket, UnixSocket)> {
    let mut sorted: Vec<&UnixSocket> = socks.iter().collect();
    sorted.sort_by_key(|s| s.fd);
    let mut seen = HashSet::new();
    let mut out: Vec<(UnixSocket, UnixSocket)> = Vec::new();
    for (i, a) in sorted.iter().enumerate() {
        if a.pcb == 0 || a.conn_pcb == 0 {
            continue;
        }
        for b in &sorted[i + 1..] {
            if b.pcb == a.conn_pcb && b.conn_pcb == a.pcb && a.pcb != b.pcb {
                if !seen.insert((a.pcb.min(b.pcb), a.pcb.max(b.pcb))) {
                    continue;
                }
                let pair = if b.rcv.sbi_cc > a.rcv.sbi_cc {
                    (**b, **a)
                } else {
                    (**a, **b)
                };
                out.push(pair);
            }
        }
    }
    out.sort_by_key(|(r, s)| (r.fd.min(s.fd), r.fd.max(s.fd)));
    out
}

/// Room in a socket buffer as XNU's `sbspace` computes it: both
/// differences taken as signed 32-bit numbers (the budgets of a Unix
/// socket's send buffer are lowered without clamping and can wrap), the
/// smaller one, never below 0.
pub fn sbspace(sb: &sockbuf_info) -> i64 {
    let bytes = sb.sbi_hiwat.wrapping_sub(sb.sbi_cc) as i32;
    let mbufs = sb.sbi_mbmax.wrapping_sub(sb.sbi_mbcnt) as i32;
    i64::from(bytes.min(mbufs).max(0))
}

/// A socketpair's fill level. XNU queues what a Unix socket sends straight
/// into the peer's receive buffer and lowers the *sender's* send-buffer
/// budgets (byte high-water mark and mbuf budget) by what is queued there
/// (`uipc_send`), so a writer gets EAGAIN once `sbspace` of its send buffer
/// is 0. Small stream writes are packed into the mbufs already queued
/// (`sbcompress`), so the byte budget, not the 8× larger mbuf budget, is
/// usually spent first. Capacity is what is queued plus the room left.
pub fn socket_sample(receiver: &UnixSocket, sender: &UnixSocket, at_ms: u64) -> ChannelSample {
    let queued = u64::from(receiver.rcv.sbi_cc);
    let room = sbspace(&sender.snd) as u64;
    ChannelSample {
        at_ms,
        queued,
        capacity: queued + room,
        // Linux's figure (the sender's sk_wmem_alloc) has no XNU equivalent.
        sender_wmem: None,
        full: queued > 0 && room == 0,
    }
}

/// A Unix socket's peer as the Snapshot records it (`Fd::peer_inode`,
/// `Fd::peer_closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnixPeer {
    /// The peer's socket handle, the number its holder's `Fd::inode` has.
    pub peer: Option<u64>,
    /// Connected once, and the peer is gone.
    pub closed: bool,
}

/// The peer of a Unix socket. `unsi_conn_so` is the peer's own `soi_so`
/// (both `VM_KERNEL_ADDRHASH` of one pointer). When the peer of a stream
/// closes, `unp_disconnect` clears the connection on both sides and marks
/// the survivor `SS_ISDISCONNECTED`; a datagram socket whose peer closed
/// is dropped with `so_error` ECONNRESET (`unp_drop`) until that error is
/// read. A socket never connected (or listening) has neither.
pub fn unix_peer(
    head: &un_sockinfo_head,
    soi_type: i32,
    soi_state: i16,
    soi_error: u16,
) -> UnixPeer {
    if head.unsi_conn_pcb != 0 && head.unsi_conn_so != 0 {
        return UnixPeer {
            peer: Some(head.unsi_conn_so),
            closed: false,
        };
    }
    let closed = match soi_type {
        SOCK_STREAM | SOCK_SEQPACKET => soi_state & SOI_S_ISDISCONNECTED != 0,
        SOCK_DGRAM => soi_error == ECONNRESET_XNU,
        _ => false,
    };
    UnixPeer { peer: None, closed }
}

/// One-letter process state. XNU never sets `SSLEEP`: every live process
/// is `SRUN` in `p_stat`, running or not, so `R` would be a lie. The
/// letter comes from the task's running threads instead, as `ps` does
/// (`R` with one running, `S` without), and is `?` when the task could
/// not be read.
pub fn state_letter(p_stat: u32, running_threads: Option<i32>) -> char {
    match p_stat {
        SZOMB => 'Z',
        SSTOP => 'T',
        SRUN | SSLEEP => match running_threads {
            Some(n) if n > 0 => 'R',
            Some(_) => 'S',
            None => '?',
        },
        _ => '?', // SIDL: still being forked
    }
}

/// Start time in milliseconds since the epoch from `proc_bsdinfo`.
/// `PROC_PIDTBSDINFO` with arg 1 answers for zombies too (`findzomb` in
/// `proc_pidinfo`), so a zombie has one as on Linux.
pub fn start_time_ms(bsd: &proc_bsdinfo) -> Option<u64> {
    let ms = bsd.pbi_start_tvsec.checked_mul(1000)? + bsd.pbi_start_tvusec / 1000;
    (ms > 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn procargs(argc: i32, body: &[u8]) -> Vec<u8> {
        let mut v = argc.to_ne_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn procargs2_spawn_worker() {
        let buf = procargs(
            4,
            b"/usr/local/bin/python3.11\0\0\0\0\0\0\0python3.11\0-c\0from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)\0--multiprocessing-fork\0PATH=/usr/bin\0HOME=/Users/x\0\0",
        );
        let a = parse_procargs2(&buf).unwrap();
        assert_eq!(a.exec_path, RawName::from("/usr/local/bin/python3.11"));
        assert_eq!(a.argv.len(), 4);
        assert_eq!(a.argv[0], RawName::from("python3.11"));
        assert_eq!(a.argv[3], RawName::from("--multiprocessing-fork"));
    }

    #[test]
    fn procargs2_edge_cases() {
        assert_eq!(parse_procargs2(b"\x01\x00"), None);
        assert_eq!(parse_procargs2(&procargs(-1, b"/x\0")), None);
        // argc 0: only the path.
        let a = parse_procargs2(&procargs(0, b"/bin/sh\0\0\0ENV=1\0")).unwrap();
        assert!(a.argv.is_empty());
        // Truncated after the first argument.
        let a = parse_procargs2(&procargs(3, b"/bin/sh\0sh\0-c\0ech")).unwrap();
        assert_eq!(
            a.argv,
            vec![RawName::from("sh"), RawName::from("-c")],
            "an unterminated argument is dropped"
        );
        // Non-UTF-8 arguments are kept byte for byte.
        let a = parse_procargs2(&procargs(1, b"/p\0\xff\xfe\0")).unwrap();
        assert_eq!(a.argv, vec![RawName(vec![0xff, 0xfe])]);
        // Empty arguments are arguments.
        let a = parse_procargs2(&procargs(3, b"/p\0p\0\0x\0")).unwrap();
        assert_eq!(a.argv.len(), 3);
        assert_eq!(a.argv[1], RawName::from(""));
    }

    #[test]
    fn sysctl_values() {
        assert_eq!(parse_sysctl_uint(&10_000i32.to_ne_bytes()), Some(10_000));
        assert_eq!(parse_sysctl_uint(&87_381i64.to_ne_bytes()), Some(87_381));
        assert_eq!(parse_sysctl_uint(&(-1i32).to_ne_bytes()), None);
        assert_eq!(parse_sysctl_uint(b"abc"), None);
        assert_eq!(parse_sysctl_string(b"14.4.1\0junk"), "14.4.1");
        let mut tv = 1_700_000_000i64.to_ne_bytes().to_vec();
        tv.extend_from_slice(&[0; 8]);
        assert_eq!(parse_boottime(&tv), Some(1_700_000_000));
        assert_eq!(parse_boottime(&[0; 4]), None);
    }

    #[test]
    fn posix_sem_max_is_a_64_bit_long() {
        // SYSCTL_LONG(_kern_posix_sem, OID_AUTO, max, …) in posix_sem.c:
        // 8 bytes on LP64, and it may be raised past 2^32.
        assert_eq!(parse_sysctl_uint(&10_000i64.to_ne_bytes()), Some(10_000));
        assert_eq!(
            parse_sysctl_uint(&5_000_000_000i64.to_ne_bytes()),
            Some(5_000_000_000)
        );
    }

    #[test]
    fn psem_names_keep_the_kernels_bytes() {
        let mut field = [0u8; 32];
        field[..12].copy_from_slice(b"/mp-ab12cd34");
        assert_eq!(psem_name(&field), RawName::from("/mp-ab12cd34"));
        // `foo` and `/foo` are two semaphores to XNU.
        assert_eq!(psem_name(b"foo\0\0"), RawName::from("foo"));
        assert_ne!(psem_name(b"foo\0"), psem_name(b"/foo\0"));
    }

    #[test]
    fn open_flags_in_snapshot_encoding() {
        assert_eq!(snapshot_open_flags(FREAD), 0);
        assert_eq!(snapshot_open_flags(FWRITE), 1);
        assert_eq!(snapshot_open_flags(FREAD | FWRITE), 2);
        assert_eq!(snapshot_open_flags(FWRITE | FNONBLOCK), 0o4001);
    }

    fn end(fd: i32, handle: u64, peer: u64, flags: u32, queued: u64) -> PipeEnd {
        PipeEnd {
            fd,
            handle,
            peer,
            openflags: flags,
            queued,
            blksize: 16384,
        }
    }

    #[test]
    fn self_pipes_pair_read_and_write_ends() {
        let ends = [
            end(3, 0xa0, 0xb0, FREAD, 65536),
            end(4, 0xb0, 0xa0, FWRITE | FNONBLOCK, 0),
            // Read end of another pipe whose write end is elsewhere.
            end(5, 0xc0, 0xd0, FREAD, 0),
        ];
        let pairs = self_pipes(&ends);
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].0.fd, pairs[0].1.fd), (3, 4));
        assert_eq!(pipe_id(0xb0, 0xa0), pipe_id(0xa0, 0xb0));
    }

    #[test]
    fn dup_ed_pipe_ends_make_one_channel() {
        // Pipe A (3 → 4), pipe B (6 → 7), then dups of A's ends at 9 and
        // 10: sorted by fd the dup of A's read end is not next to it.
        let ends = [
            end(10, 0xb0, 0xa0, FWRITE, 0),
            end(3, 0xa0, 0xb0, FREAD, 10),
            end(4, 0xb0, 0xa0, FWRITE, 0),
            end(6, 0xe0, 0xf0, FREAD, 0),
            end(7, 0xf0, 0xe0, FWRITE, 0),
            end(9, 0xa0, 0xb0, FREAD, 10),
        ];
        let pairs: Vec<(i32, i32)> = self_pipes(&ends)
            .iter()
            .map(|(r, w)| (r.fd, w.fd))
            .collect();
        assert_eq!(pairs, vec![(3, 4), (6, 7)]);
    }

    #[test]
    fn pipe_at_16_kib_is_not_full_at_64_kib_it_is() {
        // vst_blksize is 16 KiB until the buffer grows; a write that does
        // not fit grows it to 64 KiB, so 16 KiB queued is not full.
        let at_16k = end(3, 0xa0, 0xb0, FREAD, 16384);
        let s = pipe_sample(&at_16k, 300);
        assert!(!s.full);
        assert_eq!((s.queued, s.capacity, s.at_ms), (16384, 65536, 300));
        // Grown and filled: vst_blksize 64 KiB, 64 KiB queued.
        let grown = PipeEnd {
            blksize: 65536,
            queued: 65536,
            ..at_16k
        };
        let s = pipe_sample(&grown, 0);
        assert!(s.full);
        assert_eq!(s.capacity, 65536);
        assert!(!pipe_sample(&end(5, 1, 2, FREAD, 0), 0).full);
    }

    fn sock(fd: i32, pcb: u64, conn: u64, rcv_cc: u32) -> UnixSocket {
        UnixSocket {
            fd,
            pcb,
            conn_pcb: conn,
            openflags: FREAD | FWRITE,
            rcv: sockbuf_info {
                sbi_cc: rcv_cc,
                sbi_hiwat: 8192,
                sbi_mbmax: 65536,
                ..Default::default()
            },
            snd: sockbuf_info {
                sbi_hiwat: 8192,
                sbi_mbmax: 65536,
                ..Default::default()
            },
        }
    }

    #[test]
    fn socketpairs_put_the_receiver_first() {
        let mut a = sock(6, 0x10, 0x20, 0);
        let b = sock(7, 0x20, 0x10, 300);
        let lone = sock(8, 0x30, 0x99, 0);
        // As uipc_send leaves it: 300 bytes queued at b lower a's budgets.
        a.snd.sbi_hiwat -= 300;
        let pairs = self_socketpairs(&[a, b, lone]);
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].0.fd, pairs[0].1.fd), (7, 6));
        let s = socket_sample(&pairs[0].0, &pairs[0].1, 0);
        assert_eq!((s.queued, s.capacity, s.full), (300, 8192, false));
        assert_eq!(s.sender_wmem, None);
        // The sender's byte budget is spent: a writer gets EAGAIN.
        a.snd.sbi_hiwat = 0;
        assert!(socket_sample(&b, &a, 0).full);
    }

    #[test]
    fn dup_ed_socket_makes_one_socketpair() {
        let a = sock(6, 0x10, 0x20, 0);
        let b = sock(7, 0x20, 0x10, 0);
        let a_dup = sock(11, 0x10, 0x20, 0);
        let b_dup = sock(3, 0x20, 0x10, 0);
        let pairs = self_socketpairs(&[a, b, a_dup, b_dup]);
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert_eq!((pairs[0].0.fd, pairs[0].1.fd), (3, 6));
    }

    #[test]
    fn wrapped_mbuf_budget_is_negative_room_as_in_sbspace() {
        // uipc_send lowered sb_mbmax past zero: it wrapped to near 2^32.
        let wrapped = sockbuf_info {
            sbi_hiwat: 4096,
            sbi_mbmax: 0u32.wrapping_sub(512),
            sbi_mbcnt: 0,
            ..Default::default()
        };
        assert_eq!(sbspace(&wrapped), 0);
        let mut sender = sock(6, 0x10, 0x20, 0);
        sender.snd = wrapped;
        let receiver = sock(7, 0x20, 0x10, 4096);
        let s = socket_sample(&receiver, &sender, 0);
        assert!(s.full, "unsigned arithmetic saw 4 GiB of room: {s:?}");
        assert_eq!(s.capacity, 4096);
        // A byte count past the high-water mark is no room either.
        let over = sockbuf_info {
            sbi_hiwat: 10,
            sbi_cc: 20,
            sbi_mbmax: 100,
            ..Default::default()
        };
        assert_eq!(sbspace(&over), 0);
    }

    #[test]
    fn connected_unix_socket_names_its_peer_by_so_handle() {
        let head = un_sockinfo_head {
            unsi_conn_so: 0xfeed,
            unsi_conn_pcb: 0xbeef,
        };
        assert_eq!(
            unix_peer(&head, SOCK_STREAM, 0x2, 0),
            UnixPeer {
                peer: Some(0xfeed),
                closed: false
            }
        );
    }

    #[test]
    fn disconnected_socketpair_has_a_closed_peer() {
        let gone = un_sockinfo_head::default();
        // Stream: unp_disconnect sets SS_CANTRCVMORE|SS_CANTSENDMORE|SS_ISDISCONNECTED.
        let state = 0x0010 | 0x0020 | SOI_S_ISDISCONNECTED;
        assert_eq!(
            unix_peer(&gone, SOCK_STREAM, state, 0),
            UnixPeer {
                peer: None,
                closed: true
            }
        );
        // Datagram: unp_drop left ECONNRESET.
        assert!(unix_peer(&gone, SOCK_DGRAM, 0, ECONNRESET_XNU).closed);
        // Never connected, or listening: no peer, nothing closed.
        assert_eq!(unix_peer(&gone, SOCK_STREAM, 0, 0), UnixPeer::default());
        assert_eq!(unix_peer(&gone, SOCK_DGRAM, 0, 0), UnixPeer::default());
    }

    #[test]
    fn live_process_state_comes_from_running_threads_not_p_stat() {
        assert_eq!(
            state_letter(SRUN, Some(0)),
            'S',
            "idle, though p_stat is SRUN"
        );
        assert_eq!(state_letter(SRUN, Some(2)), 'R');
        assert_eq!(state_letter(SRUN, None), '?');
        assert_eq!(state_letter(SZOMB, None), 'Z');
        assert_eq!(state_letter(SSTOP, Some(0)), 'T');
        assert_eq!(state_letter(1, None), '?');
    }

    #[test]
    fn zombie_start_time_from_bsdinfo() {
        use super::super::abi::Pod;
        let mut bsd = proc_bsdinfo::zeroed();
        bsd.pbi_status = SZOMB;
        bsd.pbi_start_tvsec = 1_795_215_600;
        bsd.pbi_start_tvusec = 250_000;
        assert_eq!(start_time_ms(&bsd), Some(1_795_215_600_250));
        assert_eq!(start_time_ms(&proc_bsdinfo::zeroed()), None);
    }
}
