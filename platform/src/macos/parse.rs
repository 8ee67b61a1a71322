//! Pure parsers for macOS data (sysctl buffers, libproc results), built and
//! tested on every OS. The macOS collector does the system calls and hands
//! the bytes and numbers to these.

use super::abi::{sockbuf_info, FNONBLOCK, FREAD, FWRITE};
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
/// arguments (the environment follows and is ignored). A truncated buffer
/// yields the arguments that were complete.
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

/// A `psem_name` as the kernel reports it, in the form semleak uses for
/// names everywhere (no leading slash, as in `/dev/shm/sem.NAME`).
pub fn psem_name(field: &[u8]) -> RawName {
    let b = c_bytes(field);
    RawName::from(b.strip_prefix(b"/").unwrap_or(b))
}

/// The name to pass to `sem_open`: a leading slash added when missing.
pub fn sem_open_name(name: &RawName) -> Vec<u8> {
    let b = name.as_bytes();
    if b.starts_with(b"/") {
        b.to_vec()
    } else {
        [b"/".as_slice(), b].concat()
    }
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
    /// Bytes queued in this end's buffer (`vst_size`).
    pub queued: u64,
    /// This end's buffer size (`vst_blksize`).
    pub capacity: u64,
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

/// Pipes whose read and write ends one process holds: (read end, write end).
/// Writes land in the read end's buffer, so its figures are the fill level.
pub fn self_pipes(ends: &[PipeEnd]) -> Vec<(PipeEnd, PipeEnd)> {
    let mut out = Vec::new();
    for r in ends {
        if r.openflags & FREAD == 0 || r.openflags & FWRITE != 0 || r.peer == 0 {
            continue;
        }
        if let Some(w) = ends
            .iter()
            .find(|w| w.handle == r.peer && w.openflags & FWRITE != 0 && w.openflags & FREAD == 0)
        {
            out.push((*r, *w));
        }
    }
    out.sort_by_key(|(r, w)| (r.fd, w.fd));
    // One channel per pipe even when an end was dup'ed.
    out.dedup_by_key(|(r, _)| r.handle);
    out
}

/// A pipe's fill level from its read end.
pub fn pipe_sample(read_end: &PipeEnd, at_ms: u64) -> ChannelSample {
    ChannelSample {
        at_ms,
        queued: read_end.queued,
        capacity: read_end.capacity,
        sender_wmem: None,
        // XNU grows a pipe buffer on demand up to 64 KiB; a writer gets
        // EAGAIN once the current buffer has no room.
        full: read_end.capacity > 0 && read_end.queued >= read_end.capacity,
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

/// Socketpairs whose two sockets one process holds, ordered so that the
/// first is the receiving side (the one with bytes queued, else the lower
/// fd): (receiver, sender).
pub fn self_socketpairs(socks: &[UnixSocket]) -> Vec<(UnixSocket, UnixSocket)> {
    let mut out: Vec<(UnixSocket, UnixSocket)> = Vec::new();
    for (i, a) in socks.iter().enumerate() {
        if a.pcb == 0 || a.conn_pcb == 0 {
            continue;
        }
        for b in &socks[i + 1..] {
            if b.pcb == a.conn_pcb && b.conn_pcb == a.pcb && a.pcb != b.pcb {
                let pair = if b.rcv.sbi_cc > a.rcv.sbi_cc {
                    (*b, *a)
                } else {
                    (*a, *b)
                };
                out.push(pair);
            }
        }
    }
    out.sort_by_key(|(r, s)| (r.fd.min(s.fd), r.fd.max(s.fd)));
    out
}

/// A socketpair's fill level: bytes queued at the receiver against its
/// buffer. XNU's Unix stream sockets charge the receiver's queue to the
/// sender's send buffer (its high-water mark and mbuf budget shrink as the
/// peer fills), so the sender is full when either budget is spent; one-byte
/// writes exhaust the mbuf budget long before the byte count.
pub fn socket_sample(receiver: &UnixSocket, sender: &UnixSocket, at_ms: u64) -> ChannelSample {
    let queued = u64::from(receiver.rcv.sbi_cc);
    let capacity = u64::from(receiver.rcv.sbi_hiwat);
    let byte_room = i64::from(sender.snd.sbi_hiwat) - i64::from(sender.snd.sbi_cc);
    let mbuf_room = i64::from(sender.snd.sbi_mbmax) - i64::from(sender.snd.sbi_mbcnt);
    let rcv_full = capacity > 0 && queued >= capacity;
    let snd_full = queued > 0 && (byte_room <= 0 || mbuf_room <= 0);
    ChannelSample {
        at_ms,
        queued,
        capacity,
        sender_wmem: Some(u64::from(receiver.rcv.sbi_mbcnt)),
        full: rcv_full || snd_full,
    }
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
    fn psem_names_lose_the_slash_and_the_padding() {
        let mut field = [0u8; 32];
        field[..12].copy_from_slice(b"/mp-ab12cd34");
        assert_eq!(psem_name(&field), RawName::from("mp-ab12cd34"));
        assert_eq!(psem_name(b"plain\0\0"), RawName::from("plain"));
        assert_eq!(sem_open_name(&"mp-x".into()), b"/mp-x");
        assert_eq!(sem_open_name(&"/mp-x".into()), b"/mp-x");
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
            capacity: 16384,
        }
    }

    #[test]
    fn self_pipes_pair_read_and_write_ends() {
        let ends = [
            end(3, 0xa0, 0xb0, FREAD, 16384),
            end(4, 0xb0, 0xa0, FWRITE | FNONBLOCK, 0),
            // Read end of another pipe whose write end is elsewhere.
            end(5, 0xc0, 0xd0, FREAD, 0),
            // Dup of the read end.
            end(9, 0xa0, 0xb0, FREAD, 16384),
        ];
        let pairs = self_pipes(&ends);
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].0.fd, pairs[0].1.fd), (3, 4));
        let s = pipe_sample(&pairs[0].0, 300);
        assert!(s.full);
        assert_eq!((s.queued, s.capacity, s.at_ms), (16384, 16384, 300));
        assert!(!pipe_sample(&ends[2], 0).full);
        assert_eq!(pipe_id(0xb0, 0xa0), pipe_id(0xa0, 0xb0));
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
        let pairs = self_socketpairs(&[a, b, lone]);
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].0.fd, pairs[0].1.fd), (7, 6));
        let s = socket_sample(&pairs[0].0, &pairs[0].1, 0);
        assert_eq!((s.queued, s.capacity, s.full), (300, 8192, false));
        // The sender's mbuf budget is spent: a writer gets EAGAIN.
        a.snd.sbi_mbmax = 1000;
        a.snd.sbi_mbcnt = 1000;
        assert!(socket_sample(&b, &a, 0).full);
    }
}
