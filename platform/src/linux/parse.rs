//! Pure parsers for the files collection reads. They take any `BufRead` (or
//! bytes) so they build on every OS and are tested on string fixtures.

use std::io::{self, BufRead};

use crate::rawname::RawName;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

fn malformed(what: &'static str, detail: impl Into<String>) -> ParseError {
    ParseError::Malformed {
        what,
        detail: detail.into(),
    }
}

/// The fields of `/proc/PID/stat` semleak uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: RawName,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Field 9, the task's `PF_*` flags.
    pub flags: u64,
    pub num_threads: u32,
    pub start_ticks: u64,
}

/// `PF_KTHREAD` (include/linux/sched.h): the task is a kernel thread. The
/// only sure sign: inside a container pid 2 is an ordinary process.
pub const PF_KTHREAD: u64 = 0x0020_0000;

impl Stat {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Parse `/proc/PID/stat`. comm may hold spaces and parentheses, so it runs
/// from the first `(` to the **last** `)`.
pub fn parse_stat(line: &[u8]) -> Result<Stat, ParseError> {
    let open = line
        .iter()
        .position(|&b| b == b'(')
        .ok_or_else(|| malformed("stat", "no '('"))?;
    let close = line
        .iter()
        .rposition(|&b| b == b')')
        .ok_or_else(|| malformed("stat", "no ')'"))?;
    if close < open {
        return Err(malformed("stat", "')' before '('"));
    }
    let pid = std::str::from_utf8(&line[..open])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| malformed("stat", "bad pid"))?;
    let comm = RawName::from(&line[open + 1..close]);
    let rest = std::str::from_utf8(&line[close + 1..])
        .map_err(|_| malformed("stat", "non-UTF-8 after comm"))?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is stat field 3 (state); field N is fields[N - 3].
    let field = |n: usize| -> Result<&str, ParseError> {
        fields
            .get(n - 3)
            .copied()
            .ok_or_else(|| malformed("stat", format!("missing field {n}")))
    };
    let num = |n: usize| -> Result<i64, ParseError> {
        field(n)?
            .parse::<i64>()
            .map_err(|_| malformed("stat", format!("field {n} not a number")))
    };
    let state = field(3)?
        .chars()
        .next()
        .ok_or_else(|| malformed("stat", "empty state"))?;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid: num(4)? as i32,
        pgrp: num(5)? as i32,
        session: num(6)? as i32,
        flags: field(9)?
            .parse::<u64>()
            .map_err(|_| malformed("stat", "field 9 not a number"))?,
        num_threads: num(20)?.max(0) as u32,
        start_ticks: num(22)?.max(0) as u64,
    })
}

/// The fields of `/proc/PID/status` semleak uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub uid: Option<u32>,
    pub threads: Option<u32>,
    pub sig_caught: Option<u64>,
    pub sig_ignored: Option<u64>,
    pub ns_pids: Vec<i32>,
}

pub fn parse_status(reader: impl BufRead) -> io::Result<Status> {
    let mut status = Status::default();
    for line in reader.split(b'\n') {
        let line = line?;
        let Ok(line) = std::str::from_utf8(&line) else {
            continue; // Name: may be any bytes; we take comm from stat.
        };
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Uid" => {
                status.uid = value
                    .split_ascii_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
            }
            "Threads" => status.threads = value.parse().ok(),
            "SigCgt" => status.sig_caught = u64::from_str_radix(value, 16).ok(),
            "SigIgn" => status.sig_ignored = u64::from_str_radix(value, 16).ok(),
            "NSpid" => {
                status.ns_pids = value
                    .split_ascii_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            }
            _ => {}
        }
    }
    Ok(status)
}

/// One line of `/proc/PID/maps` that names a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsLine {
    /// Device in `st_dev` encoding (see [`makedev`]).
    pub dev: u64,
    pub inode: u64,
    pub path: RawName,
    pub deleted: bool,
}

/// Linux `makedev`: the `st_dev` encoding of a major:minor pair, so a maps
/// device compares with `stat` results.
pub fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0x0000_0fff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0x0000_00ff)
}

/// The inode of the initial pid namespace, fixed by the kernel
/// (`PROC_PID_INIT_INO`): `/proc/self/ns/pid` reads `pid:[4026531836]` in
/// the host's pid namespace and something else in any nested one, even
/// where `/proc` is the nested namespace's own procfs and `NSpid` shows a
/// single pid.
pub const INIT_PID_NAMESPACE_INODE: u64 = 0xEFFF_FFFC;

/// The inode of a `pid:[N]` namespace link target.
pub fn parse_pid_namespace_link(target: &[u8]) -> Option<u64> {
    let inner = target.strip_prefix(b"pid:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// Parse `/proc/PID/maps`, keeping the file mappings `keep` accepts. The
/// path is everything after the inode (it may contain spaces); a trailing
/// ` (deleted)` is removed and reported in `deleted`.
pub fn parse_maps(
    mut reader: impl BufRead,
    mut keep: impl FnMut(u64, u64, &[u8]) -> bool,
) -> io::Result<Vec<MapsLine>> {
    let mut out = Vec::new();
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if let Some(entry) = parse_maps_line(&line, &mut keep) {
            out.push(entry);
        }
    }
    Ok(out)
}

fn parse_maps_line(
    line: &[u8],
    keep: &mut impl FnMut(u64, u64, &[u8]) -> bool,
) -> Option<MapsLine> {
    let mut rest = line;
    let mut fields = [&[][..]; 5];
    for slot in &mut fields {
        let start = rest.iter().position(|b| *b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
        *slot = &rest[..end];
        rest = &rest[end..];
    }
    let inode: u64 = std::str::from_utf8(fields[4]).ok()?.parse().ok()?;
    if inode == 0 {
        return None; // anonymous mapping
    }
    let dev_text = std::str::from_utf8(fields[3]).ok()?;
    let (major, minor) = dev_text.split_once(':')?;
    let dev = makedev(
        u64::from_str_radix(major, 16).ok()?,
        u64::from_str_radix(minor, 16).ok()?,
    );
    let start = rest.iter().position(|b| *b != b' ').unwrap_or(rest.len());
    let mut path = &rest[start..];
    let deleted = path.ends_with(b" (deleted)");
    if deleted {
        path = &path[..path.len() - b" (deleted)".len()];
    }
    if !keep(dev, inode, path) {
        return None;
    }
    Some(MapsLine {
        dev,
        inode,
        path: RawName::from(path),
        deleted,
    })
}

/// `/proc/PID/cmdline`: NUL-separated arguments.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<RawName> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|b| *b == 0).map(RawName::from).collect()
}

/// `flags:` of `/proc/PID/fdinfo/N`, written in octal.
pub fn parse_fdinfo_flags(reader: impl BufRead) -> io::Result<Option<u32>> {
    for line in reader.lines() {
        let line = line?;
        if let Some(v) = line.strip_prefix("flags:") {
            return Ok(u32::from_str_radix(v.trim(), 8).ok());
        }
    }
    Ok(None)
}

/// What a `/proc/PID/fd/N` link points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdTarget {
    Pipe(u64),
    Socket(u64),
    Other,
}

pub fn parse_fd_link(link: &[u8]) -> FdTarget {
    let inode = |prefix: &[u8]| -> Option<u64> {
        let inner = link.strip_prefix(prefix)?.strip_suffix(b"]")?;
        std::str::from_utf8(inner).ok()?.parse().ok()
    };
    if let Some(n) = inode(b"pipe:[") {
        FdTarget::Pipe(n)
    } else if let Some(n) = inode(b"socket:[") {
        FdTarget::Socket(n)
    } else {
        FdTarget::Other
    }
}

/// A glibc semaphore file: 32 bytes on 64-bit targets; the first u64 holds
/// the value in its low 32 bits and the waiter count in its high 32.
pub const GLIBC_SEM_SIZE: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemState {
    pub value: u32,
    pub waiters: u32,
}

pub fn parse_glibc_sem(bytes: &[u8]) -> Result<SemState, ParseError> {
    if bytes.len() != GLIBC_SEM_SIZE {
        return Err(malformed(
            "semaphore",
            format!(
                "{} bytes, a glibc semaphore has {GLIBC_SEM_SIZE}",
                bytes.len()
            ),
        ));
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    let data = u64::from_ne_bytes(word);
    Ok(SemState {
        value: (data & 0xffff_ffff) as u32,
        waiters: (data >> 32) as u32,
    })
}

/// `btime` from `/proc/stat`: boot time in seconds since the epoch.
pub fn parse_boot_time(reader: impl BufRead) -> io::Result<Option<u64>> {
    for line in reader.lines() {
        let line = line?;
        if let Some(v) = line.strip_prefix("btime ") {
            return Ok(v.trim().parse().ok());
        }
    }
    Ok(None)
}

/// `/proc/PID/task/TID/schedstat`: (nanoseconds on a CPU, times put on a
/// CPU). Present where the kernel has `CONFIG_SCHED_INFO`.
pub fn parse_schedstat(bytes: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<u64>().ok());
    let run_ns = fields.next()??;
    let _wait_ns = fields.next()??;
    let run_count = fields.next()??;
    Some((run_ns, run_count))
}

/// `/proc/PID/task/TID/wchan`: the kernel function a sleeping task waits
/// in; "0" (or nothing) when it runs or the reader may not see it.
pub fn parse_wchan(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    (!text.is_empty() && text != "0").then(|| text.to_string())
}

/// `/proc/PID/task/TID/syscall` (`proc_pid_syscall` in fs/proc/base.c):
/// "running", "-1 SP PC" when blocked outside a system call, or "NR ARGS…
/// SP PC". Returns "running", "user", or the call's name on this
/// architecture ("nr N" when unnamed).
pub fn parse_syscall(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let first = text.split_ascii_whitespace().next()?;
    if first == "running" {
        return Some("running".into());
    }
    let nr: i64 = first.parse().ok()?;
    if nr < 0 {
        return Some("user".into());
    }
    Some(match syscall_name(nr) {
        Some(name) => name.into(),
        None => format!("nr {nr}"),
    })
}

/// Names of the calls an event loop thread blocks in, for this
/// architecture's numbers (`arch/*/entry/syscalls`, asm-generic/unistd.h).
fn syscall_name(nr: i64) -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    const NAMES: &[(i64, &str)] = &[
        (0, "read"),
        (1, "write"),
        (7, "poll"),
        (23, "select"),
        (34, "pause"),
        (35, "nanosleep"),
        (45, "recvfrom"),
        (47, "recvmsg"),
        (61, "wait4"),
        (202, "futex"),
        (230, "clock_nanosleep"),
        (232, "epoll_wait"),
        (270, "pselect6"),
        (271, "ppoll"),
        (281, "epoll_pwait"),
        (441, "epoll_pwait2"),
    ];
    #[cfg(target_arch = "aarch64")]
    const NAMES: &[(i64, &str)] = &[
        (22, "epoll_pwait"),
        (63, "read"),
        (64, "write"),
        (72, "pselect6"),
        (73, "ppoll"),
        (98, "futex"),
        (101, "nanosleep"),
        (115, "clock_nanosleep"),
        (207, "recvfrom"),
        (212, "recvmsg"),
        (260, "wait4"),
        (441, "epoll_pwait2"),
    ];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const NAMES: &[(i64, &str)] = &[];
    NAMES.iter().find(|(n, _)| *n == nr).map(|(_, name)| *name)
}

/// `/proc/net/tcp`, `tcp6`, `udp`, `udp6`: the sockets waiting for traffic
/// (TCP in LISTEN, UDP bound and unconnected), with their local address.
/// Lines that do not parse are skipped.
pub fn parse_listening(reader: impl BufRead, proto: &str) -> Vec<crate::model::ListeningSocket> {
    // TCP_LISTEN is 0x0A; an unconnected UDP socket shows TCP_CLOSE, 0x07.
    let waiting = if proto == "tcp" { "0A" } else { "07" };
    let mut out = Vec::new();
    for line in reader.split(b'\n').skip(1).map_while(Result::ok) {
        let Ok(text) = std::str::from_utf8(&line) else {
            continue;
        };
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        if fields.len() < 10 || fields[3] != waiting {
            continue;
        }
        let (Some(local), Ok(inode)) = (hex_socket_address(fields[1]), fields[9].parse::<u64>())
        else {
            continue;
        };
        if inode == 0 {
            continue;
        }
        out.push(crate::model::ListeningSocket {
            inode,
            proto: proto.to_string(),
            local,
        });
    }
    out
}

/// `0100007F:A3B3` → `127.0.0.1:41907`; IPv6 as `[…]:port`. The kernel
/// prints each 32-bit word of the address in host byte order.
fn hex_socket_address(field: &str) -> Option<String> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<u32>> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect();
    let bytes: Vec<u8> = words?
        .into_iter()
        .flat_map(|w| {
            if cfg!(target_endian = "little") {
                w.to_le_bytes()
            } else {
                w.to_be_bytes()
            }
        })
        .collect();
    match bytes.len() {
        4 => Some(format!(
            "{}:{port}",
            std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
        )),
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            Some(format!("[{}]:{port}", std::net::Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// One line of `/proc/PID/mountinfo` (proc(5)): a mount of the reading
/// process's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_id: u64,
    pub parent_id: u64,
    /// The filesystem's device in `st_dev` encoding (see [`makedev`]): what
    /// `stat` of any file on this mount reports.
    pub dev: u64,
    /// The directory of the filesystem mounted here, octal escapes decoded.
    pub root: Vec<u8>,
    /// Where it is mounted, octal escapes decoded.
    pub mount_point: Vec<u8>,
    /// The filesystem type after the ` - ` separator (`tmpfs`, `proc`, …).
    pub fs_type: Vec<u8>,
}

/// A `mountinfo` file that could not be read, with the file it came from.
#[derive(Debug, thiserror::Error)]
pub enum MountInfoError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: line {line}: malformed mountinfo: {detail}")]
    Malformed {
        path: String,
        line: usize,
        detail: &'static str,
    },
}

/// Parse `/proc/PID/mountinfo` (`path` names the file in errors). Every
/// line must be well-formed: the kernel never writes a bad one, so a file
/// that has one is not the kernel's, and what it says about mounts proves
/// nothing.
pub fn parse_mountinfo(
    mut reader: impl BufRead,
    path: &std::path::Path,
) -> Result<Vec<MountInfo>, MountInfoError> {
    let mut out = Vec::new();
    let mut line = Vec::with_capacity(256);
    let mut number = 0usize;
    loop {
        line.clear();
        number += 1;
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| MountInfoError::Io {
                path: path.display().to_string(),
                source,
            })?;
        if read == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let entry = parse_mountinfo_line(&line).map_err(|detail| MountInfoError::Malformed {
            path: path.display().to_string(),
            line: number,
            detail,
        })?;
        out.push(entry);
    }
    Ok(out)
}

fn parse_mountinfo_line(line: &[u8]) -> Result<MountInfo, &'static str> {
    let mut fields = line.split(|b| *b == b' ');
    let mut next = |what: &'static str| fields.next().filter(|f| !f.is_empty()).ok_or(what);
    let number = |f: &[u8], what: &'static str| -> Result<u64, &'static str> {
        std::str::from_utf8(f)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(what)
    };
    let mount_id = number(next("no mount id")?, "mount id is not a number")?;
    let parent_id = number(next("no parent id")?, "parent id is not a number")?;
    let device = next("no major:minor")?;
    let colon = device
        .iter()
        .position(|b| *b == b':')
        .ok_or("device is not major:minor")?;
    let dev = makedev(
        number(&device[..colon], "major is not a number")?,
        number(&device[colon + 1..], "minor is not a number")?,
    );
    let root = unescape_mount_path(next("no root")?);
    let mount_point = unescape_mount_path(next("no mount point")?);
    let _options = next("no mount options")?;
    // Optional fields (`shared:1`, `master:2`, …) up to the lone `-`.
    loop {
        if next("no '-' separator")? == b"-" {
            break;
        }
    }
    let fs_type = next("no filesystem type")?.to_vec();
    Ok(MountInfo {
        mount_id,
        parent_id,
        dev,
        root,
        mount_point,
        fs_type,
    })
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape_mount_path(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' {
            let digits = field.get(i + 1..i + 4).unwrap_or_default();
            if digits.len() == 3 && digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn listening_sockets() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A3B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A3B4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
   2: garbage
";
        let got = parse_listening(tcp.as_bytes(), "tcp");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].inode, 4242);
        if cfg!(target_endian = "little") {
            assert_eq!(got[0].local, "127.0.0.1:41907");
        }
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0
";
        let got = parse_listening(tcp6.as_bytes(), "tcp");
        if cfg!(target_endian = "little") {
            assert_eq!(got[0].local, "[::1]:8080");
        }
        let udp = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  5: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 0
";
        let got = parse_listening(udp.as_bytes(), "udp");
        assert_eq!(got[0].proto, "udp");
        assert_eq!(got[0].inode, 99);
    }

    #[test]
    fn task_progress_files() {
        assert_eq!(parse_schedstat(b"388819 12 2\n"), Some((388_819, 2)));
        assert_eq!(parse_schedstat(b"388819\n"), None);
        assert_eq!(
            parse_wchan(b"futex_wait_queue"),
            Some("futex_wait_queue".into())
        );
        assert_eq!(parse_wchan(b"0"), None);
        assert_eq!(parse_wchan(b""), None);
        assert_eq!(parse_syscall(b"running\n"), Some("running".into()));
        assert_eq!(
            parse_syscall(b"-1 0x7ffea62cd8f0 0x7ff2c56fdaec\n"),
            Some("user".into())
        );
        assert_eq!(
            parse_syscall(b"9999 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8\n"),
            Some("nr 9999".into())
        );
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            parse_syscall(b"202 0x7f 0x80 0x2 0x0 0x0 0x0 0x7ffe 0x7ff2\n"),
            Some("futex".into())
        );
        assert_eq!(parse_syscall(b""), None);
        assert_eq!(parse_syscall(b"\xff"), None);
    }

    use super::*;

    #[test]
    fn stat_with_parens_and_spaces_in_comm() {
        let line = b"4242 (evil) (name) S) R 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 98765 1000 10 18446744073709551615\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.pid, 4242);
        assert_eq!(st.comm.as_bytes(), b"evil) (name) S");
        assert_eq!(st.state, 'R');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.pgrp, 4242);
        assert_eq!(st.session, 4242);
        assert_eq!(st.num_threads, 3);
        assert_eq!(st.start_ticks, 98765);
        assert_eq!(st.flags, 4194560);
        assert!(!st.is_kernel_thread());
    }

    #[test]
    fn kernel_threads_by_pf_kthread_not_by_pid() {
        // kthreadd and one of its workers on the host.
        let kthreadd = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 18446744073709551615";
        let worker = b"15 (kworker/0:1) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0 18446744073709551615";
        assert!(parse_stat(kthreadd).unwrap().is_kernel_thread());
        assert!(parse_stat(worker).unwrap().is_kernel_thread());
        // pid 2 of a container and its child: ordinary processes.
        let container_pid2 = b"2 (python3) S 1 2 2 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0 18446744073709551615";
        let child = b"9 (worker) Z 2 2 2 0 -1 4227148 0 0 0 0 0 0 0 0 20 0 1 0 600 0 0 18446744073709551615";
        assert!(!parse_stat(container_pid2).unwrap().is_kernel_thread());
        assert!(!parse_stat(child).unwrap().is_kernel_thread());
    }

    #[test]
    fn stat_zombie() {
        let line = b"77 (python3) Z 70 70 70 0 -1 4227148 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0 18446744073709551615";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.state, 'Z');
        assert_eq!(st.ppid, 70);
    }

    #[test]
    fn stat_truncated_is_an_error_not_a_panic() {
        assert!(parse_stat(b"12 (x) S 1 2").is_err());
        assert!(parse_stat(b"").is_err());
        assert!(parse_stat(b"12 x) (").is_err());
        assert!(
            parse_stat(b"abc (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20").is_err()
        );
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nNSpid:\t1234\t1\nUid:\t1000\t1000\t1000\t1000\nThreads:\t17\nSigIgn:\t0000000001001000\nSigCgt:\t0000000180014002\n";
        let st = parse_status(text.as_bytes()).unwrap();
        assert_eq!(st.uid, Some(1000));
        assert_eq!(st.threads, Some(17));
        assert_eq!(st.ns_pids, vec![1234, 1]);
        assert_eq!(st.sig_caught, Some(0x180014002));
        assert_eq!(st.sig_ignored, Some(0x1001000));
        // SIGCHLD is 17: bit 16.
        assert_eq!(st.sig_caught.unwrap() & (1 << 16), 1 << 16);
    }

    #[test]
    fn maps_paths_with_spaces_and_deleted() {
        let text = "\
55d4c0a00000-55d4c0a02000 r--p 00000000 fd:01 1311 /usr/bin/python3.11
7f1c2a000000-7f1c2a001000 rw-s 00000000 00:1a 4711 /dev/shm/sem.A1b2C3 (deleted)
7f1c2a001000-7f1c2a002000 rw-s 00000000 00:1a 4712 /dev/shm/sem.with space name
7f1c2a002000-7f1c2a003000 rw-s 00000000 00:1a 4713 /dev/shm/sem.x (deleted) (deleted)
7f1c2a003000-7f1c2a004000 rw-p 00000000 00:00 0 
7ffd1e5f0000-7ffd1e611000 rw-p 00000000 00:00 0                          [stack]
";
        let shm_dev = makedev(0, 0x1a);
        let got = parse_maps(text.as_bytes(), |dev, _, _| dev == shm_dev).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].inode, 4711);
        assert_eq!(got[0].path.as_bytes(), b"/dev/shm/sem.A1b2C3");
        assert!(got[0].deleted);
        assert_eq!(got[1].path.as_bytes(), b"/dev/shm/sem.with space name");
        assert!(!got[1].deleted);
        // A file really named "x (deleted)" that was then deleted.
        assert_eq!(got[2].path.as_bytes(), b"/dev/shm/sem.x (deleted)");
        assert!(got[2].deleted);
    }

    #[test]
    fn maps_garbage_lines_are_skipped() {
        let text = b"garbage\n\n1-2 r 0 zz:yy 5 /x\n1-2 r 0 00:1a notanumber /x\n\xff\xfe\n";
        let got = parse_maps(&text[..], |_, _, _| true).unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn makedev_matches_libc_encoding() {
        assert_eq!(makedev(0, 0x1a), 0x1a);
        assert_eq!(makedev(8, 1), 0x801);
        assert_eq!(makedev(259, 3), 0x10303);
        assert_eq!(makedev(0x1000, 0x100), (0x1000u64 << 32) | (0x100u64 << 12));
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(
            parse_cmdline(b"python3\0-c\0print(1)\0"),
            vec![
                RawName::from("python3"),
                RawName::from("-c"),
                RawName::from("print(1)")
            ]
        );
        assert!(parse_cmdline(b"").is_empty());
    }

    #[test]
    fn fdinfo_flags_octal() {
        let text = "pos:\t0\nflags:\t02004000\nmnt_id:\t15\nino:\t123\n";
        let flags = parse_fdinfo_flags(text.as_bytes()).unwrap().unwrap();
        assert_eq!(flags & 0o4000, 0o4000);
        assert_eq!(flags & 0o3, 0);
    }

    #[test]
    fn fd_links() {
        assert_eq!(parse_fd_link(b"pipe:[9052]"), FdTarget::Pipe(9052));
        assert_eq!(parse_fd_link(b"socket:[77]"), FdTarget::Socket(77));
        assert_eq!(parse_fd_link(b"/dev/null"), FdTarget::Other);
        assert_eq!(parse_fd_link(b"pipe:[x]"), FdTarget::Other);
    }

    #[test]
    fn glibc_semaphore_layout() {
        let mut buf = [0u8; 32];
        buf[..8].copy_from_slice(&((3u64 << 32) | 1).to_ne_bytes());
        assert_eq!(
            parse_glibc_sem(&buf).unwrap(),
            SemState {
                value: 1,
                waiters: 3
            }
        );
        assert!(parse_glibc_sem(&[]).is_err());
        assert!(parse_glibc_sem(&[0; 31]).is_err());
        assert!(parse_glibc_sem(&[0; 33]).is_err());
    }

    #[test]
    fn boot_time() {
        let text = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 10\n";
        assert_eq!(parse_boot_time(text.as_bytes()).unwrap(), Some(1700000000));
    }

    #[test]
    fn pid_namespace_links() {
        assert_eq!(
            parse_pid_namespace_link(b"pid:[4026531836]"),
            Some(INIT_PID_NAMESPACE_INODE)
        );
        assert_eq!(
            parse_pid_namespace_link(b"pid:[4026532175]"),
            Some(4026532175)
        );
        assert_eq!(parse_pid_namespace_link(b"net:[4026531836]"), None);
        assert_eq!(parse_pid_namespace_link(b"pid:[]"), None);
        assert_eq!(parse_pid_namespace_link(b"pid:[12"), None);
    }

    #[test]
    fn mountinfo_lines() {
        let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    25 24 0:23 / /dev/shm rw,relatime shared:4 master:1 - tmpfs tmpfs rw,size=24683772k\n\
                    27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    40 27 0:45 /sub\\040dir /mnt/with\\040space\\134x rw - tmpfs none rw\n";
        let path = std::path::Path::new("/proc/1/mountinfo");
        let mounts = parse_mountinfo(text.as_bytes(), path).unwrap();
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[0].fs_type, b"proc");
        assert_eq!(mounts[1].dev, makedev(0, 23));
        assert_eq!(mounts[1].mount_point, b"/dev/shm");
        assert_eq!(mounts[1].fs_type, b"tmpfs");
        assert_eq!((mounts[2].mount_id, mounts[2].parent_id), (27, 1));
        assert_eq!(mounts[2].dev, makedev(254, 0));
        assert_eq!(mounts[3].root, b"/sub dir");
        assert_eq!(mounts[3].mount_point, b"/mnt/with space\\x");
        assert!(parse_mountinfo(&b""[..], path).unwrap().is_empty());
    }

    #[test]
    fn malformed_mountinfo_is_an_error_naming_the_file_and_line() {
        let path = std::path::Path::new("/fake/1/mountinfo");
        for bad in [
            "x 1 0:1 / / rw - tmpfs t rw\n",
            "1 1 01 / / rw - tmpfs t rw\n",
            "1 1 0:1 / / rw shared:1\n",
            "1 1 0:1 / / rw -\n",
            "1 1 0:a / / rw - tmpfs t rw\n",
            "1 1 0:1 /\n",
            "\n",
        ] {
            let text = format!("22 27 0:21 / /proc rw - proc proc rw\n{bad}");
            let err = parse_mountinfo(text.as_bytes(), path).unwrap_err();
            let said = err.to_string();
            assert!(
                said.starts_with("/fake/1/mountinfo: line 2: malformed mountinfo"),
                "{bad:?}: {said}"
            );
        }
    }

    #[test]
    fn mount_path_escapes() {
        assert_eq!(unescape_mount_path(b"a\\040b"), b"a b");
        assert_eq!(unescape_mount_path(b"a\\011\\012"), b"a\t\n");
        // Not an escape: left as it is.
        assert_eq!(unescape_mount_path(b"a\\04"), b"a\\04");
        assert_eq!(unescape_mount_path(b"a\\999"), b"a\\999");
        assert_eq!(unescape_mount_path(b"\\777"), b"\\777");
        assert_eq!(unescape_mount_path(b"\\"), b"\\");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Any bytes give mounts or an error naming the file, never a panic.
        #[test]
        fn mountinfo_never_panics(bytes in proptest::collection::vec(
            proptest::prop_oneof![
                4 => proptest::sample::select(b"0123456789 :-/\\\nabcdefsharedmaster".to_vec()),
                1 => proptest::prelude::any::<u8>(),
            ],
            0..400,
        )) {
            let path = std::path::Path::new("/p/1/mountinfo");
            if let Err(e) = parse_mountinfo(&bytes[..], path) {
                proptest::prop_assert!(e.to_string().starts_with("/p/1/mountinfo"));
            }
        }

        /// Well-formed lines with any paths always parse, and the device
        /// survives.
        #[test]
        fn well_formed_mountinfo_parses(major in 0u64..4096, minor in 0u64..1_048_576,
                                        point in "[a-z/ \\\\]{1,20}") {
            let escaped: String = point.chars().map(|c| match c {
                ' ' => "\\040".to_string(),
                '\\' => "\\134".to_string(),
                c => c.to_string(),
            }).collect();
            let text = format!("7 1 {major}:{minor} / {escaped} rw shared:3 - tmpfs tmpfs rw\n");
            let mounts = parse_mountinfo(text.as_bytes(), std::path::Path::new("m")).unwrap();
            proptest::prop_assert_eq!(mounts[0].dev, makedev(major, minor));
            proptest::prop_assert_eq!(&mounts[0].mount_point, point.as_bytes());
        }
    }
}
