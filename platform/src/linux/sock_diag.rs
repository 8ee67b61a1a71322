//! NETLINK_SOCK_DIAG for unix sockets: the request we send and a pure
//! parser of the kernel's replies, so both build and are tested on every OS,
//! and (Linux only) one dump of this network namespace's unix sockets.
//!
//! Layouts follow `<linux/netlink.h>`, `<linux/sock_diag.h>` and
//! `<linux/unix_diag.h>`. Fields are written and read in native byte order
//! (netlink is host-endian), by offset, so no `unsafe` is needed.

/// `SOCK_DIAG_BY_FAMILY`.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ROOT | NLM_F_MATCH`.
pub const NLM_F_DUMP: u16 = 0x300;
pub const AF_UNIX: u8 = 1;

pub const UDIAG_SHOW_PEER: u32 = 0x4;
pub const UDIAG_SHOW_RQLEN: u32 = 0x10;
pub const UDIAG_SHOW_MEMINFO: u32 = 0x20;

const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_MEMINFO: u16 = 5;
const UNIX_DIAG_SHUTDOWN: u16 = 6;

/// `SOCK_DGRAM`.
const SOCK_DGRAM: u8 = 2;
/// `SHUTDOWN_MASK`: both directions shut down.
const SHUTDOWN_MASK: u8 = 3;

/// `SK_MEMINFO_*` indices into the MEMINFO attribute.
const SK_MEMINFO_WMEM_ALLOC: usize = 2;
const SK_MEMINFO_SNDBUF: usize = 3;

/// `struct nlmsghdr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsgHdr {
    pub len: u32,
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
}

/// `struct unix_diag_req`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixDiagReq {
    pub family: u8,
    pub protocol: u8,
    pub pad: u16,
    pub states: u32,
    pub ino: u32,
    pub show: u32,
    pub cookie: [u32; 2],
}

/// `struct unix_diag_msg`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixDiagMsg {
    pub family: u8,
    pub sock_type: u8,
    pub state: u8,
    pub pad: u8,
    pub ino: u32,
    pub cookie: [u32; 2],
}

/// `struct unix_diag_rqlen`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixDiagRqlen {
    pub rqueue: u32,
    pub wqueue: u32,
}

const HDR_LEN: usize = std::mem::size_of::<NlMsgHdr>();
const MSG_LEN: usize = std::mem::size_of::<UnixDiagMsg>();

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl NlMsgHdr {
    fn parse(b: &[u8]) -> Option<Self> {
        Some(NlMsgHdr {
            len: u32_at(b, 0)?,
            kind: u16_at(b, 4)?,
            flags: u16_at(b, 6)?,
            seq: u32_at(b, 8)?,
            pid: u32_at(b, 12)?,
        })
    }
}

impl UnixDiagMsg {
    fn parse(b: &[u8]) -> Option<Self> {
        Some(UnixDiagMsg {
            family: *b.first()?,
            sock_type: *b.get(1)?,
            state: *b.get(2)?,
            pad: *b.get(3)?,
            ino: u32_at(b, 4)?,
            cookie: [u32_at(b, 8)?, u32_at(b, 12)?],
        })
    }
}

/// A dump request for every unix socket in every state, with peer, queue
/// lengths and memory figures.
pub fn unix_dump_request(seq: u32) -> Vec<u8> {
    let req = UnixDiagReq {
        family: AF_UNIX,
        protocol: 0,
        pad: 0,
        states: u32::MAX,
        ino: 0,
        show: UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO,
        // INET_DIAG_NOCOOKIE: no particular socket.
        cookie: [u32::MAX, u32::MAX],
    };
    let total = HDR_LEN + std::mem::size_of::<UnixDiagReq>();
    let hdr = NlMsgHdr {
        len: total as u32,
        kind: SOCK_DIAG_BY_FAMILY,
        flags: NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        pid: 0,
    };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&hdr.len.to_ne_bytes());
    out.extend_from_slice(&hdr.kind.to_ne_bytes());
    out.extend_from_slice(&hdr.flags.to_ne_bytes());
    out.extend_from_slice(&hdr.seq.to_ne_bytes());
    out.extend_from_slice(&hdr.pid.to_ne_bytes());
    out.push(req.family);
    out.push(req.protocol);
    out.extend_from_slice(&req.pad.to_ne_bytes());
    out.extend_from_slice(&req.states.to_ne_bytes());
    out.extend_from_slice(&req.ino.to_ne_bytes());
    out.extend_from_slice(&req.show.to_ne_bytes());
    out.extend_from_slice(&req.cookie[0].to_ne_bytes());
    out.extend_from_slice(&req.cookie[1].to_ne_bytes());
    out
}

/// What sock_diag says about one unix socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnixSockInfo {
    pub inode: u64,
    /// `SOCK_STREAM` 1, `SOCK_DGRAM` 2, `SOCK_SEQPACKET` 5.
    pub sock_type: u8,
    pub peer_inode: Option<u64>,
    /// Bytes unread in this socket's receive queue (RQLEN.rqueue).
    pub rqueue: Option<u64>,
    /// This socket's `sk_wmem_alloc` (MEMINFO[2]; RQLEN.wqueue as fallback).
    pub wmem_alloc: Option<u64>,
    /// This socket's `sk_sndbuf` (MEMINFO[3]).
    pub sndbuf: Option<u64>,
    /// This socket's `sk_shutdown` (SHUTDOWN attribute, always sent).
    pub shutdown: Option<u8>,
    /// Connected, but the peer socket has been closed. The kernel keeps
    /// pointing at a released peer, whose inode then reads as 0: the PEER
    /// attribute is present with 0 (a listening or unconnected socket has
    /// no PEER attribute at all). A stream/seqpacket client whose
    /// connection is still in a listener's accept queue also reads 0, so
    /// for those the peer's release is confirmed by it setting our
    /// `sk_shutdown` to SHUTDOWN_MASK (`unix_release_sock`).
    pub peer_closed: bool,
}

/// One `recv` worth of replies, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DiagBatch {
    pub sockets: Vec<UnixSockInfo>,
    /// NLMSG_DONE was seen: the dump is complete.
    pub done: bool,
    /// NLMSG_ERROR with this (positive) errno.
    pub error: Option<i32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiagParseError {
    #[error("truncated netlink message at offset {0}")]
    Truncated(usize),
}

/// Parse the netlink messages in one datagram. Messages of other kinds and
/// attributes we do not use are skipped; a message too short for what its
/// header claims is an error, never a panic.
pub fn parse_unix_diag(buf: &[u8]) -> Result<DiagBatch, DiagParseError> {
    let mut batch = DiagBatch::default();
    let mut at = 0;
    while at + HDR_LEN <= buf.len() {
        let hdr = NlMsgHdr::parse(&buf[at..]).ok_or(DiagParseError::Truncated(at))?;
        let len = hdr.len as usize;
        if len < HDR_LEN || at + len > buf.len() {
            return Err(DiagParseError::Truncated(at));
        }
        let body = &buf[at + HDR_LEN..at + len];
        match hdr.kind {
            NLMSG_DONE => {
                batch.done = true;
                return Ok(batch);
            }
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).ok_or(DiagParseError::Truncated(at))? as i32;
                if errno != 0 {
                    batch.error = Some(errno.saturating_neg());
                    batch.done = true;
                    return Ok(batch);
                }
            }
            SOCK_DIAG_BY_FAMILY => batch.sockets.push(parse_socket(body, at)?),
            _ => {}
        }
        at += align4(len);
    }
    Ok(batch)
}

fn parse_socket(body: &[u8], at: usize) -> Result<UnixSockInfo, DiagParseError> {
    let msg = UnixDiagMsg::parse(body).ok_or(DiagParseError::Truncated(at))?;
    let mut info = UnixSockInfo {
        inode: u64::from(msg.ino),
        sock_type: msg.sock_type,
        ..UnixSockInfo::default()
    };
    let mut rqlen_wqueue = None;
    let mut attrs = &body[MSG_LEN.min(body.len())..];
    while attrs.len() >= 4 {
        let alen = usize::from(u16_at(attrs, 0).unwrap_or(0));
        let akind = u16_at(attrs, 2).unwrap_or(0);
        if alen < 4 || alen > attrs.len() {
            return Err(DiagParseError::Truncated(at));
        }
        let payload = &attrs[4..alen];
        match akind {
            UNIX_DIAG_PEER => info.peer_inode = u32_at(payload, 0).map(u64::from),
            UNIX_DIAG_RQLEN => {
                info.rqueue = u32_at(payload, 0).map(u64::from);
                rqlen_wqueue = u32_at(payload, 4).map(u64::from);
            }
            UNIX_DIAG_MEMINFO => {
                info.wmem_alloc = u32_at(payload, SK_MEMINFO_WMEM_ALLOC * 4).map(u64::from);
                info.sndbuf = u32_at(payload, SK_MEMINFO_SNDBUF * 4).map(u64::from);
            }
            UNIX_DIAG_SHUTDOWN => info.shutdown = payload.first().copied(),
            _ => {}
        }
        attrs = &attrs[align4(alen).min(attrs.len())..];
    }
    // RQLEN's second figure is `unix_outq_len` = sk_wmem_alloc for a
    // connected socket: the same figure, for kernels without MEMINFO.
    if info.wmem_alloc.is_none() {
        info.wmem_alloc = rqlen_wqueue;
    }
    // A peer inode of 0 means "no (live) peer".
    if info.peer_inode == Some(0) {
        info.peer_inode = None;
        info.peer_closed = info.sock_type == SOCK_DGRAM || info.shutdown == Some(SHUTDOWN_MASK);
    }
    Ok(info)
}

/// The dump itself: one netlink socket, one request, replies until DONE.
#[cfg(target_os = "linux")]
mod dump {
    use std::collections::HashMap;
    use std::io;
    use std::time::Duration;

    use rustix::io::Errno;
    use rustix::net::netlink::{SocketAddrNetlink, SOCK_DIAG};
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    use rustix::net::{
        recv, sendto, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType,
    };

    use super::{parse_unix_diag, unix_dump_request, UnixSockInfo};

    /// Every unix socket the kernel reports, by inode. Sockets of other network
    /// namespaces are not in the dump.
    pub fn dump_unix_sockets() -> io::Result<HashMap<u64, UnixSockInfo>> {
        let sock = socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(SOCK_DIAG),
        )?;
        // A failure only means no timeout, which the kernel never needs anyway.
        let _ = set_socket_timeout(&sock, Timeout::Recv, Some(Duration::from_secs(2)));
        let req = unix_dump_request(1);
        // pid 0: the kernel.
        sendto(
            &sock,
            &req,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        let mut out = HashMap::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match recv(&sock, &mut buf[..], RecvFlags::empty()) {
                Ok((_, n)) => n,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                break;
            }
            let batch = parse_unix_diag(&buf[..n.min(buf.len())])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if let Some(errno) = batch.error {
                return Err(io::Error::from_raw_os_error(errno));
            }
            for s in batch.sockets {
                out.insert(s.inode, s);
            }
            if batch.done {
                break;
            }
        }
        Ok(out)
    }
}
#[cfg(target_os = "linux")]
pub use dump::dump_unix_sockets;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::mem::{align_of, size_of};

    #[test]
    fn struct_layouts_match_the_kernel() {
        assert_eq!(size_of::<NlMsgHdr>(), 16);
        assert_eq!(align_of::<NlMsgHdr>(), 4);
        assert_eq!(size_of::<UnixDiagReq>(), 24);
        assert_eq!(align_of::<UnixDiagReq>(), 4);
        assert_eq!(size_of::<UnixDiagMsg>(), 16);
        assert_eq!(align_of::<UnixDiagMsg>(), 4);
        assert_eq!(size_of::<UnixDiagRqlen>(), 8);
        assert_eq!(align_of::<UnixDiagRqlen>(), 4);
    }

    #[test]
    fn request_bytes() {
        let req = unix_dump_request(7);
        assert_eq!(req.len(), 40);
        assert_eq!(u32_at(&req, 0), Some(40));
        assert_eq!(u16_at(&req, 4), Some(SOCK_DIAG_BY_FAMILY));
        assert_eq!(u16_at(&req, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        assert_eq!(u32_at(&req, 8), Some(7));
        assert_eq!(req[16], AF_UNIX);
        assert_eq!(u32_at(&req, 20), Some(u32::MAX));
        assert_eq!(u32_at(&req, 28), Some(0x34));
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    /// A SOCK_DIAG_BY_FAMILY reply as the kernel writes it.
    pub fn socket_msg(ino: u32, peer: u32, rqueue: u32, wmem: u32, sndbuf: u32) -> Vec<u8> {
        let mut body = vec![AF_UNIX, 1, 1, 0];
        body.extend_from_slice(&ino.to_ne_bytes());
        body.extend_from_slice(&words(&[0, 0]));
        // An attribute with an odd length comes first.
        body.extend(attr(UNIX_DIAG_SHUTDOWN, &[0]));
        body.extend(attr(UNIX_DIAG_PEER, &peer.to_ne_bytes()));
        body.extend(attr(UNIX_DIAG_RQLEN, &words(&[rqueue, wmem])));
        body.extend(attr(
            UNIX_DIAG_MEMINFO,
            &words(&[0, 212_992, wmem, sndbuf, 0, 0, 0, 0, 0]),
        ));
        msg(SOCK_DIAG_BY_FAMILY, &body)
    }

    pub fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&NLM_F_DUMP.to_ne_bytes());
        m.extend_from_slice(&words(&[1, 0]));
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn parses_sockets_then_done() {
        let mut buf = socket_msg(100, 101, 300, 230_400, 212_992);
        buf.extend(socket_msg(101, 100, 0, 0, 212_992));
        buf.extend(msg(NLMSG_DONE, &[0, 0, 0, 0]));
        let b = parse_unix_diag(&buf).unwrap();
        assert!(b.done);
        assert_eq!(b.error, None);
        assert_eq!(
            b.sockets[0],
            UnixSockInfo {
                inode: 100,
                sock_type: 1,
                peer_inode: Some(101),
                rqueue: Some(300),
                wmem_alloc: Some(230_400),
                sndbuf: Some(212_992),
                shutdown: Some(0),
                peer_closed: false,
            }
        );
        assert_eq!(b.sockets[1].peer_inode, Some(100));
        assert_eq!(b.sockets[1].rqueue, Some(0));
    }

    /// A reply with just the given attributes.
    fn bare_msg(ino: u32, sock_type: u8, state: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![AF_UNIX, sock_type, state, 0];
        body.extend_from_slice(&ino.to_ne_bytes());
        body.extend_from_slice(&words(&[0, 0]));
        for a in attrs {
            body.extend_from_slice(a);
        }
        msg(SOCK_DIAG_BY_FAMILY, &body)
    }

    /// The attribute sets a 6.x kernel sends, as seen on real sockets.
    #[test]
    fn closed_peer_versus_no_peer() {
        let peer0 = attr(UNIX_DIAG_PEER, &0u32.to_ne_bytes());
        let shut = |s: u8| attr(UNIX_DIAG_SHUTDOWN, &[s]);
        let cases: [(Vec<u8>, bool); 6] = [
            // socketpair stream / seqpacket end whose peer was closed
            (bare_msg(1, 1, 1, &[peer0.clone(), shut(3)]), true),
            (bare_msg(2, 5, 1, &[peer0.clone(), shut(3)]), true),
            // datagram socketpair end, or a connected datagram sender,
            // whose peer was closed (no shutdown for datagrams)
            (bare_msg(3, 2, 1, &[peer0.clone(), shut(0)]), true),
            // stream client still in a listener's accept queue
            (bare_msg(4, 1, 1, &[peer0.clone(), shut(0)]), false),
            // listening socket; unconnected datagram socket
            (bare_msg(5, 1, 10, &[shut(0)]), false),
            (bare_msg(6, 2, 7, &[shut(0)]), false),
        ];
        for (buf, closed) in cases {
            let s = &parse_unix_diag(&buf).unwrap().sockets[0];
            assert_eq!(s.peer_closed, closed, "{s:?}");
            assert_eq!(s.peer_inode, None);
        }
        // Without the SHUTDOWN attribute a stream socket is never called
        // closed on missing data.
        let s = &parse_unix_diag(&bare_msg(7, 1, 1, &[peer0]))
            .unwrap()
            .sockets[0];
        assert!(!s.peer_closed);
    }

    #[test]
    fn partial_batch_is_not_done() {
        let b = parse_unix_diag(&socket_msg(5, 0, 0, 0, 4608)).unwrap();
        assert!(!b.done);
        assert_eq!(b.sockets[0].peer_inode, None);
    }

    #[test]
    fn error_message() {
        let b = parse_unix_diag(&msg(NLMSG_ERROR, &words(&[(-22i32) as u32, 0, 0, 0, 0]))).unwrap();
        assert_eq!(b.error, Some(22));
        assert!(b.done);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let full = socket_msg(100, 101, 1, 2, 3);
        for cut in 1..full.len() {
            // Either an error or (for a cut inside the header) nothing.
            let _ = parse_unix_diag(&full[..cut]);
        }
        assert!(parse_unix_diag(&full[..full.len() - 1]).is_err());
        let mut bad_attr = full.clone();
        // Attribute length beyond the message.
        bad_attr[32] = 0xff;
        assert!(parse_unix_diag(&bad_attr).is_err());
        assert_eq!(parse_unix_diag(&[]).unwrap(), DiagBatch::default());
    }
}
