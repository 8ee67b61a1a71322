//! The process table from /proc: each file read at most once per scan.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::parse::{
    parse_cmdline, parse_fd_link, parse_fdinfo_flags, parse_maps, parse_stat, parse_status,
    FdTarget,
};
use crate::model::{Fd, FdKind, Process, ShmMapping};
use crate::rawname::RawName;

/// What collecting one pid produced.
pub enum ProcOutcome {
    /// The process exited before we finished reading it: not an error.
    Vanished,
    /// Seen; `skip_reason` says what could not be read, if anything.
    Seen {
        process: Box<Process>,
        skip_reason: Option<String>,
    },
}

/// Which mappings are shared-memory files: same device as the directory,
/// or (for fixture trees on another device) a path inside it.
pub struct ShmFilter<'a> {
    pub dev: Option<u64>,
    pub dir_prefix: &'a [u8],
}

impl ShmFilter<'_> {
    fn keep(&self, dev: u64, path: &[u8]) -> bool {
        self.dev == Some(dev) || (path.starts_with(self.dir_prefix) && !self.dir_prefix.is_empty())
    }
}

/// Read a small /proc file: open + read, no `statx` for a size hint (proc
/// files report size 0 anyway), so each file costs one open, reads, close.
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    File::open(path)?.read_to_end(&mut buf)?;
    Ok(buf)
}

fn gone(e: &io::Error) -> bool {
    // ENOENT: the /proc entry is gone; ESRCH: the task exited while we read.
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

fn describe(path: &Path, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::PermissionDenied {
        format!("permission denied reading {}", path.display())
    } else {
        format!("cannot read {}: {e}", path.display())
    }
}

pub fn list_pids(proc_root: &Path) -> io::Result<Vec<i32>> {
    let mut pids: Vec<i32> = fs::read_dir(proc_root)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            std::str::from_utf8(e.file_name().as_bytes())
                .ok()?
                .parse()
                .ok()
        })
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

pub fn collect_process(
    proc_root: &Path,
    pid: i32,
    filter: &ShmFilter<'_>,
    boot_time: Option<u64>,
    clock_ticks: u64,
) -> ProcOutcome {
    let base = proc_root.join(pid.to_string());
    let stat_path = base.join("stat");
    let stat = match read_small(&stat_path) {
        Ok(b) => b,
        Err(e) if gone(&e) => return ProcOutcome::Vanished,
        Err(e) => {
            // Without stat we do not even know what it is; count it as seen
            // and not inspected.
            let process = Process {
                pid,
                ..Process::default()
            };
            return ProcOutcome::Seen {
                process: Box::new(process),
                skip_reason: Some(describe(&stat_path, &e)),
            };
        }
    };
    let stat = match parse_stat(&stat) {
        Ok(s) => s,
        Err(e) => {
            return ProcOutcome::Seen {
                process: Box::new(Process {
                    pid,
                    ..Process::default()
                }),
                skip_reason: Some(format!("{}: {e}", stat_path.display())),
            }
        }
    };
    let mut p = Process {
        pid,
        ppid: stat.ppid,
        pgrp: stat.pgrp,
        session: stat.session,
        state: stat.state,
        start_ticks: stat.start_ticks,
        start_time_ms: boot_time.map(|bt| {
            bt.saturating_mul(1000)
                .saturating_add(stat.start_ticks.saturating_mul(1000) / clock_ticks.max(1))
        }),
        comm: stat.comm,
        threads: stat.num_threads,
        ..Process::default()
    };

    match File::open(base.join("status")).and_then(|f| parse_status(BufReader::new(f))) {
        Ok(st) => {
            p.uid = st.uid;
            p.sig_caught = st.sig_caught;
            p.sig_ignored = st.sig_ignored;
            p.ns_pids = st.ns_pids;
            if let Some(t) = st.threads {
                p.threads = t;
            }
        }
        Err(e) if gone(&e) => return ProcOutcome::Vanished,
        Err(_) => {} // uid unknown; the details below decide visibility
    }
    if let Ok(b) = read_small(&base.join("cmdline")) {
        p.cmdline = parse_cmdline(&b);
    }
    if p.is_zombie() {
        // A zombie has no memory and no descriptors left: nothing to hide.
        p.inspected = true;
        return ProcOutcome::Seen {
            process: Box::new(p),
            skip_reason: None,
        };
    }

    let maps_path = base.join("maps");
    let maps = File::open(&maps_path).and_then(|f| {
        parse_maps(BufReader::with_capacity(64 * 1024, f), |dev, _, path| {
            filter.keep(dev, path)
        })
    });
    let skip_reason = match maps {
        Ok(lines) => {
            p.inspected = true;
            p.shm_maps = lines
                .into_iter()
                .map(|l| ShmMapping {
                    dev: l.dev,
                    inode: l.inode,
                    path: l.path,
                    deleted: l.deleted,
                })
                .collect();
            None
        }
        Err(e) if gone(&e) => return ProcOutcome::Vanished,
        Err(e) => Some(describe(&maps_path, &e)),
    };
    if p.inspected {
        p.fds = read_fds(&base);
        if p.threads > 1 {
            p.thread_names = read_thread_names(&base);
        }
    }
    ProcOutcome::Seen {
        process: Box::new(p),
        skip_reason,
    }
}

/// Pipe and socket descriptors, with their fdinfo flags.
fn read_fds(base: &Path) -> Vec<Fd> {
    let fd_dir = base.join("fd");
    let Ok(entries) = fs::read_dir(&fd_dir) else {
        return Vec::new();
    };
    let mut fds = Vec::new();
    let mut link_path = PathBuf::new();
    for entry in entries.flatten() {
        let Some(fd) = std::str::from_utf8(entry.file_name().as_bytes())
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        link_path.clone_from(&fd_dir);
        link_path.push(entry.file_name());
        let Ok(target) = fs::read_link(&link_path) else {
            continue;
        };
        let (kind, inode) = match parse_fd_link(target.as_os_str().as_bytes()) {
            FdTarget::Pipe(n) => (FdKind::Pipe, n),
            FdTarget::Socket(n) => (FdKind::Socket, n),
            FdTarget::Other => continue,
        };
        let flags = File::open(base.join("fdinfo").join(fd.to_string()))
            .and_then(|f| parse_fdinfo_flags(BufReader::new(f)))
            .ok()
            .flatten();
        fds.push(Fd {
            fd,
            kind,
            inode,
            flags,
            peer_inode: None,
            peer_closed: false,
        });
    }
    fds.sort_by_key(|f| f.fd);
    fds
}

fn read_thread_names(base: &Path) -> Vec<RawName> {
    let Ok(entries) = fs::read_dir(base.join("task")) else {
        return Vec::new();
    };
    let mut names: Vec<(i32, RawName)> = entries
        .flatten()
        .filter_map(|e| {
            let tid = std::str::from_utf8(e.file_name().as_bytes())
                .ok()?
                .parse()
                .ok()?;
            let mut comm = read_small(&e.path().join("comm")).ok()?;
            if comm.last() == Some(&b'\n') {
                comm.pop();
            }
            Some((tid, RawName(comm)))
        })
        .collect();
    names.sort_by_key(|(tid, _)| *tid);
    names.into_iter().map(|(_, n)| n).collect()
}
