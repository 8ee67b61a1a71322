//! The process table from /proc. Each process's files are opened relative
//! to one `/proc/PID` directory descriptor, each is read at most once per
//! scan, and only what a rule uses is read: no command line for zombies
//! and kernel threads, holders through `PROCMAP_QUERY` where the kernel has
//! it, descriptor access modes from the link's permission bits instead of
//! fdinfo, thread names only where a pile-up is possible, `status`
//! only for the processes [`read_status`] is given, and the main thread's
//! `stat`, `schedstat`, `wchan` and `syscall` only for processes with a
//! non-empty self-channel ([`read_loop_thread`]).

use std::cell::RefCell;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::fs::{openat, readlinkat_raw, statat, AtFlags, Mode, OFlags, RawDir, CWD};
use rustix::io::Errno;
use rustix::path::DecInt;

use super::parse::{
    parse_cmdline, parse_fd_link, parse_fdinfo_flags, parse_maps, parse_pid_namespace_link,
    parse_schedstat, parse_stat, parse_status, parse_syscall, parse_wchan, FdTarget,
    INIT_PID_NAMESPACE_INODE,
};
use super::procmap;
use crate::model::{Fd, FdKind, Process, ShmMapping, ThreadSample};
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
    /// Sorted inodes of the directory's entries: their mappings need no
    /// path (holders are matched by inode); others are asked for a name,
    /// which is what names an unlinked semaphore.
    pub listed: &'a [u64],
}

impl ShmFilter<'_> {
    fn keep(&self, dev: u64, path: &[u8]) -> bool {
        self.dev == Some(dev) || (path.starts_with(self.dir_prefix) && !self.dir_prefix.is_empty())
    }

    fn is_listed(&self, dev: u64, inode: u64) -> bool {
        self.dev == Some(dev) && self.listed.binary_search(&inode).is_ok()
    }
}

const MAPS_UNKNOWN: u8 = 0;
const MAPS_QUERY: u8 = 1;
const MAPS_TEXT: u8 = 2;

/// One scan of a proc tree: the open root, what was detected about it
/// (once per scan), and what every process read shares.
pub struct ProcScan<'a> {
    pub proc_root: &'a Path,
    root: OwnedFd,
    /// The real procfs, not a fixture tree: link modes and the maps ioctl
    /// mean what the kernel says they mean.
    live: bool,
    /// `PROCMAP_QUERY` support, found out on the first maps file.
    maps_mode: AtomicU8,
    pub shm: ShmFilter<'a>,
    pub boot_time: Option<u64>,
    pub clock_ticks: u64,
    /// Thread names are read from this many threads on.
    pub thread_names_min: u32,
}

/// Buffers one worker thread reuses for every process it reads.
struct Buffers {
    text: Vec<u8>,
    dirents: Vec<MaybeUninit<u8>>,
    name: Vec<u8>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers {
        text: Vec::with_capacity(16 * 1024),
        dirents: vec![MaybeUninit::uninit(); 16 * 1024],
        name: vec![0; 4096],
    });
}

fn open_dir(dir: impl AsFd, path: impl rustix::path::Arg) -> rustix::io::Result<OwnedFd> {
    openat(
        dir,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn open_file(dir: impl AsFd, path: impl rustix::path::Arg) -> rustix::io::Result<OwnedFd> {
    openat(dir, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
}

/// Read the whole of an open file into `buf` (cleared first). Procfs files
/// report size 0, so no size hint: read until EOF.
fn read_all(fd: impl AsFd, buf: &mut Vec<u8>) -> rustix::io::Result<()> {
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(buf.capacity().max(4096));
        }
        let n = rustix::io::read(&fd, buf.spare_capacity_mut())?.0.len();
        if n == 0 {
            return Ok(());
        }
        // SAFETY: read initialised `n` more bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
    }
}

fn read_at(
    dir: impl AsFd,
    path: impl rustix::path::Arg,
    buf: &mut Vec<u8>,
) -> rustix::io::Result<()> {
    read_all(open_file(dir, path)?, buf)
}

fn gone(e: Errno) -> bool {
    // ENOENT: the /proc entry is gone; ESRCH: the task exited while we read.
    e == Errno::NOENT || e == Errno::SRCH
}

fn describe(path: &Path, e: io::Error) -> String {
    if e.kind() == io::ErrorKind::PermissionDenied {
        format!("permission denied reading {}", path.display())
    } else {
        format!("cannot read {}: {e}", path.display())
    }
}

fn parse_num<T: std::str::FromStr>(name: &[u8]) -> Option<T> {
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// The pid namespace `PROC_ROOT/self` lives in, when it is not the
/// initial one: then processes of the enclosing namespaces are invisible
/// and any of them could hold shared memory. `None` where the link cannot
/// be read (a fixture tree, a kernel without pid namespaces).
pub fn nested_pid_namespace_inode(proc_root: &Path) -> Option<u64> {
    let target = std::fs::read_link(proc_root.join("self/ns/pid")).ok()?;
    let inode = parse_pid_namespace_link(target.as_os_str().as_encoded_bytes())?;
    (inode != INIT_PID_NAMESPACE_INODE).then_some(inode)
}

/// The pids in the proc root, sorted.
pub fn list_pids(proc_root: &Path) -> io::Result<Vec<i32>> {
    let dir = open_dir(CWD, proc_root)?;
    let mut buf = vec![MaybeUninit::uninit(); 64 * 1024];
    let mut entries = RawDir::new(&dir, &mut buf);
    let mut pids = Vec::new();
    while let Some(entry) = entries.next() {
        if let Some(pid) = parse_num::<i32>(entry?.file_name().to_bytes()) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

impl<'a> ProcScan<'a> {
    pub fn open(
        proc_root: &'a Path,
        shm: ShmFilter<'a>,
        boot_time: Option<u64>,
        clock_ticks: u64,
        thread_names_min: u32,
    ) -> io::Result<Self> {
        let root = open_dir(CWD, proc_root)?;
        let live =
            rustix::fs::fstatfs(&root).is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC);
        Ok(ProcScan {
            proc_root,
            root,
            live,
            maps_mode: AtomicU8::new(if live { MAPS_UNKNOWN } else { MAPS_TEXT }),
            shm,
            boot_time,
            clock_ticks,
            thread_names_min,
        })
    }

    /// Whether holders were read with `PROCMAP_QUERY` (after a scan).
    #[cfg(test)]
    fn used_procmap_query(&self) -> bool {
        self.maps_mode.load(Ordering::Relaxed) == MAPS_QUERY
    }

    /// Read the maps text for every process from now on.
    #[cfg(test)]
    fn force_text_maps(&self) {
        self.maps_mode.store(MAPS_TEXT, Ordering::Relaxed);
    }

    fn path(&self, pid: i32, file: &str) -> std::path::PathBuf {
        self.proc_root.join(pid.to_string()).join(file)
    }

    pub fn collect_process(&self, pid: i32) -> ProcOutcome {
        BUFFERS.with(|b| self.collect_with(pid, &mut b.borrow_mut()))
    }

    fn collect_with(&self, pid: i32, bufs: &mut Buffers) -> ProcOutcome {
        let seen_uninspected = |reason: String| ProcOutcome::Seen {
            process: Box::new(Process {
                pid,
                ..Process::default()
            }),
            skip_reason: Some(reason),
        };
        let dir = match openat(
            &self.root,
            DecInt::new(pid),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(d) => d,
            Err(e) if gone(e) => return ProcOutcome::Vanished,
            Err(e) => return seen_uninspected(describe(&self.path(pid, ""), e.into())),
        };
        if let Err(e) = read_at(&dir, "stat", &mut bufs.text) {
            if gone(e) {
                return ProcOutcome::Vanished;
            }
            // Without stat we do not even know what it is; count it as
            // seen and not inspected.
            return seen_uninspected(describe(&self.path(pid, "stat"), e.into()));
        }
        let stat = match parse_stat(&bufs.text) {
            Ok(s) => s,
            Err(e) => {
                return seen_uninspected(format!("{}: {e}", self.path(pid, "stat").display()))
            }
        };
        let mut p = Process {
            pid,
            ppid: stat.ppid,
            pgrp: stat.pgrp,
            session: stat.session,
            state: stat.state,
            start_ticks: stat.start_ticks,
            start_time_ms: self.boot_time.map(|bt| {
                bt.saturating_mul(1000)
                    .saturating_add(stat.start_ticks.saturating_mul(1000) / self.clock_ticks.max(1))
            }),
            threads: stat.num_threads,
            kernel_thread: stat.is_kernel_thread(),
            // The directory's owner: the effective uid (root when the
            // process is not dumpable); `status` refines it where read.
            uid: rustix::fs::fstat(&dir).ok().map(|st| st.st_uid),
            ..Process::default()
        };
        p.comm = stat.comm;
        // A thread-group leader that called `pthread_exit` shows state Z
        // and empty maps while its other threads run on in the same
        // memory: read what the process holds through a live thread.
        let thread_dir = if p.state == 'Z' && !p.is_zombie() {
            live_thread_dir(&dir, pid, bufs)
        } else {
            None
        };
        let dir = thread_dir.as_ref().unwrap_or(&dir);
        if p.kernel_thread || p.is_zombie() {
            // No memory, no descriptors, no command line: nothing to hide.
            p.inspected = true;
            return ProcOutcome::Seen {
                process: Box::new(p),
                skip_reason: None,
            };
        }
        if read_at(dir, "cmdline", &mut bufs.text).is_ok() {
            p.cmdline = parse_cmdline(&bufs.text);
        }
        let skip_reason = match self.read_maps(dir, bufs) {
            Ok(maps) => {
                p.inspected = true;
                p.shm_maps = maps;
                None
            }
            Err(e)
                if e.raw_os_error()
                    .is_some_and(|c| gone(Errno::from_raw_os_error(c))) =>
            {
                return ProcOutcome::Vanished
            }
            Err(e) => Some(describe(&self.path(pid, "maps"), e)),
        };
        if p.inspected {
            p.fds = self.read_fds(dir, bufs);
            if p.threads >= self.thread_names_min.max(2) {
                p.thread_names = read_thread_names(dir, bufs);
            }
        }
        ProcOutcome::Seen {
            process: Box::new(p),
            skip_reason,
        }
    }

    /// The process's mappings of shared-memory files.
    fn read_maps(&self, dir: &OwnedFd, bufs: &mut Buffers) -> io::Result<Vec<ShmMapping>> {
        let maps = open_file(dir, "maps")?;
        if self.maps_mode.load(Ordering::Relaxed) != MAPS_TEXT {
            match self.query_maps(&maps, &mut bufs.name) {
                Ok(found) => {
                    let _ = self.maps_mode.compare_exchange(
                        MAPS_UNKNOWN,
                        MAPS_QUERY,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    return Ok(found);
                }
                Err(Ok(procmap::Unsupported)) => {
                    self.maps_mode.store(MAPS_TEXT, Ordering::Relaxed);
                }
                Err(Err(e)) => return Err(e),
            }
        }
        read_all(&maps, &mut bufs.text)?;
        let lines = parse_maps(bufs.text.as_slice(), |dev, _, path| {
            self.shm.keep(dev, path)
        })?;
        Ok(lines
            .into_iter()
            .map(|l| ShmMapping {
                dev: l.dev,
                inode: l.inode,
                path: if self.shm.is_listed(l.dev, l.inode) {
                    RawName::default()
                } else {
                    l.path
                },
                deleted: l.deleted,
            })
            .collect())
    }

    /// Shared file mappings on the shared-memory device via
    /// `PROCMAP_QUERY`; a name is asked for only when the inode is not in
    /// the directory listing.
    fn query_maps(
        &self,
        maps: &OwnedFd,
        name_buf: &mut [u8],
    ) -> Result<Vec<ShmMapping>, Result<procmap::Unsupported, io::Error>> {
        let Some(shm_dev) = self.shm.dev else {
            return Ok(Vec::new());
        };
        let mut found: Vec<procmap::SharedVma> = Vec::new();
        procmap::shared_file_vmas(maps, |vma| {
            if vma.dev == shm_dev {
                found.push(vma);
            }
        })?;
        let mut out = Vec::with_capacity(found.len());
        for vma in found {
            let mut m = ShmMapping {
                dev: vma.dev,
                inode: vma.inode,
                path: RawName::default(),
                deleted: false,
            };
            if !self.shm.is_listed(vma.dev, vma.inode) {
                if let Ok(Some(name)) = procmap::query_name(maps, vma.start, name_buf) {
                    let deleted = name.ends_with(b" (deleted)");
                    let name = if deleted {
                        &name[..name.len() - b" (deleted)".len()]
                    } else {
                        name
                    };
                    m.path = RawName::from(name);
                    m.deleted = deleted;
                }
            }
            out.push(m);
        }
        Ok(out)
    }

    /// Pipe and socket descriptors. On the real procfs a pipe's access mode
    /// comes from its link's permission bits (one `lstat`); fdinfo, the
    /// only place O_NONBLOCK shows, is left to [`fill_fd_flags`] for the
    /// few descriptors that need it. Fixture trees have fdinfo files and
    /// plain symlinks, so there fdinfo is read.
    fn read_fds(&self, dir: &OwnedFd, bufs: &mut Buffers) -> Vec<Fd> {
        let Ok(fd_dir) = open_dir(dir, "fd") else {
            return Vec::new();
        };
        let fdinfo_dir = if self.live {
            None
        } else {
            open_dir(dir, "fdinfo").ok()
        };
        let mut fds = Vec::new();
        let Buffers {
            dirents,
            name,
            text,
        } = bufs;
        let mut entries = RawDir::new(&fd_dir, dirents);
        while let Some(Ok(entry)) = entries.next() {
            let Some(fd) = parse_num::<i32>(entry.file_name().to_bytes()) else {
                continue;
            };
            let Ok(len) = readlinkat_raw(&fd_dir, entry.file_name(), &mut name[..]) else {
                continue;
            };
            let (kind, inode) = match parse_fd_link(&name[..len]) {
                FdTarget::Pipe(n) => (FdKind::Pipe, n),
                FdTarget::Socket(n) => (FdKind::Socket, n),
                FdTarget::Other => continue,
            };
            let mut record = Fd {
                fd,
                kind,
                inode,
                flags: None,
                access: None,
                peer_inode: None,
                peer_closed: false,
            };
            if let Some(info) = &fdinfo_dir {
                if read_at(info, entry.file_name(), text).is_ok() {
                    record.flags = parse_fdinfo_flags(text.as_slice()).ok().flatten();
                }
            } else if record.kind == FdKind::Pipe {
                record.access = statat(&fd_dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                    .ok()
                    .and_then(|st| access_from_link_mode(st.st_mode));
            }
            fds.push(record);
        }
        fds.sort_by_key(|f| f.fd);
        fds
    }
}

/// procfs gives a `/proc/PID/fd/N` link the owner bits of how the file is
/// open (`tid_fd_update_inode` in fs/proc/fd.c): r-x for read, -wx for
/// write, rwx for both. Group and other bits mean it is not such a link.
pub fn access_from_link_mode(mode: u32) -> Option<u32> {
    if mode & 0o077 != 0 {
        return None;
    }
    match (mode & 0o400 != 0, mode & 0o200 != 0) {
        (true, false) => Some(0),
        (false, true) => Some(1),
        (true, true) => Some(2),
        (false, false) => None,
    }
}

/// `task/TID` of a thread of `pid` other than the leader that has not
/// exited, opened as a directory: its `maps`, `fd` and `cmdline` are the
/// process's.
fn live_thread_dir(dir: &OwnedFd, pid: i32, bufs: &mut Buffers) -> Option<OwnedFd> {
    let task = open_dir(dir, "task").ok()?;
    let Buffers {
        dirents,
        name,
        text,
    } = bufs;
    let mut entries = RawDir::new(&task, dirents);
    while let Some(Ok(entry)) = entries.next() {
        let tid_name = entry.file_name().to_bytes();
        match parse_num::<i32>(tid_name) {
            Some(tid) if tid != pid => {}
            _ => continue,
        }
        name.clear();
        name.extend_from_slice(tid_name);
        name.extend_from_slice(b"/stat");
        if read_at(&task, name.as_slice(), text).is_err() {
            continue;
        }
        if parse_stat(text).is_ok_and(|st| !crate::model::state_has_ended(st.state)) {
            return openat(
                &task,
                tid_name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok();
        }
    }
    None
}

fn read_thread_names(dir: &OwnedFd, bufs: &mut Buffers) -> Vec<RawName> {
    let Ok(task) = open_dir(dir, "task") else {
        return Vec::new();
    };
    let Buffers {
        dirents,
        name,
        text,
    } = bufs;
    let mut names: Vec<(i32, RawName)> = Vec::new();
    let mut entries = RawDir::new(&task, dirents);
    while let Some(Ok(entry)) = entries.next() {
        let tid_name = entry.file_name().to_bytes();
        let Some(tid) = parse_num::<i32>(tid_name) else {
            continue;
        };
        // "TID/comm" relative to the task directory, built in place.
        name.clear();
        name.extend_from_slice(tid_name);
        name.extend_from_slice(b"/comm");
        if read_at(&task, name.as_slice(), text).is_err() {
            continue;
        }
        let comm = text.strip_suffix(b"\n").unwrap_or(text);
        names.push((tid, RawName::from(comm)));
    }
    name.resize(4096, 0);
    names.sort_by_key(|(tid, _)| *tid);
    names.into_iter().map(|(_, n)| n).collect()
}

/// Read `/proc/PID/status` of the processes at `indices`: real uid, signal
/// masks and `NSpid`. Only what a rule asks about gets here.
pub fn read_status(proc_root: &Path, processes: &mut [Process], indices: &[usize]) {
    let mut text = Vec::with_capacity(2048);
    let Ok(root) = open_dir(CWD, proc_root) else {
        return;
    };
    for &i in indices {
        let p = &mut processes[i];
        if read_at(&root, format!("{}/status", p.pid), &mut text).is_err() {
            continue;
        }
        if let Ok(st) = parse_status(text.as_slice()) {
            apply_status(p, st);
        }
    }
}

fn apply_status(p: &mut Process, st: super::parse::Status) {
    if st.uid.is_some() {
        p.uid = st.uid;
    }
    p.sig_caught = st.sig_caught;
    p.sig_ignored = st.sig_ignored;
    p.ns_pids = st.ns_pids;
    if let Some(t) = st.threads {
        p.threads = t;
    }
}

/// What only wakeup-channel candidates need: the ends' open flags from
/// fdinfo (O_NONBLOCK shows nowhere else) and their process's signal masks
/// (does it catch SIGINT?) from status, where not read already.
pub fn complete_candidates(
    proc_root: &Path,
    processes: &mut [Process],
    candidates: &mut [super::self_channels::Candidate],
) {
    let mut text = Vec::new();
    for c in candidates.iter_mut() {
        for end in [&mut c.first, &mut c.second] {
            if end.flags.is_none() {
                let path = proc_root
                    .join(c.pid.to_string())
                    .join("fdinfo")
                    .join(end.fd.to_string());
                if read_at(CWD, path.as_path(), &mut text).is_ok() {
                    end.flags = parse_fdinfo_flags(text.as_slice()).ok().flatten();
                }
            }
        }
    }
    let mut pids: Vec<i32> = candidates.iter().map(|c| c.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let indices: Vec<usize> = processes
        .iter()
        .enumerate()
        .filter(|(_, p)| p.sig_caught.is_none() && pids.binary_search(&p.pid).is_ok())
        .map(|(i, _)| i)
        .collect();
    read_status(proc_root, processes, &indices);
}

/// One look at thread `tid` of `pid`: its state from `stat`, CPU time and
/// run count from `schedstat`, and where it waits (`wchan`, `syscall`; the
/// latter needs ptrace rights and is `None` without them). `None` when the
/// thread is gone.
pub fn read_loop_thread(proc_root: &Path, pid: i32, tid: i32, at_ms: u64) -> Option<ThreadSample> {
    let dir = open_dir(
        CWD,
        proc_root
            .join(pid.to_string())
            .join("task")
            .join(tid.to_string())
            .as_path(),
    )
    .ok()?;
    let mut text = Vec::new();
    read_at(&dir, "stat", &mut text).ok()?;
    let stat = parse_stat(text.as_slice()).ok()?;
    let mut sample = ThreadSample {
        at_ms,
        tid,
        state: stat.state.to_string(),
        ..ThreadSample::default()
    };
    if read_at(&dir, "schedstat", &mut text).is_ok() {
        if let Some((run_ns, run_count)) = parse_schedstat(&text) {
            sample.cpu_ns = Some(run_ns);
            sample.run_count = Some(run_count);
        }
    }
    if read_at(&dir, "wchan", &mut text).is_ok() {
        sample.wchan = parse_wchan(&text);
    }
    if read_at(&dir, "syscall", &mut text).is_ok() {
        sample.syscall = parse_syscall(&text);
    }
    Some(sample)
}

/// (device, inode) of every file of `shm_dev` that `pid` maps: the cheap
/// read `semleak run` repeats. `PROCMAP_QUERY` where the kernel has it,
/// else the maps text.
pub fn shm_mapping_ids(proc_root: &Path, pid: i32, shm_dev: u64) -> io::Result<Vec<(u64, u64)>> {
    let maps = open_file(CWD, proc_root.join(pid.to_string()).join("maps").as_path())?;
    let mut ids = Vec::new();
    match procmap::shared_file_vmas(&maps, |vma| {
        if vma.dev == shm_dev {
            ids.push((vma.dev, vma.inode));
        }
    }) {
        Ok(()) => return Ok(ids),
        Err(Err(e)) => return Err(e),
        Err(Ok(procmap::Unsupported)) => {}
    }
    let mut text = Vec::new();
    read_all(&maps, &mut text)?;
    Ok(parse_maps(text.as_slice(), |d, _, _| d == shm_dev)?
        .into_iter()
        .map(|l| (l.dev, l.inode))
        .collect())
}

/// Lines of a BufRead, for tests comparing the two maps paths.
#[cfg(test)]
fn text_shm_ids(text: impl io::BufRead, shm_dev: u64) -> Vec<(u64, u64)> {
    parse_maps(text, |d, _, _| d == shm_dev)
        .unwrap()
        .into_iter()
        .map(|l| (l.dev, l.inode))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn link_modes() {
        assert_eq!(access_from_link_mode(0o120500), Some(0));
        assert_eq!(access_from_link_mode(0o120300), Some(1));
        assert_eq!(access_from_link_mode(0o120700), Some(2));
        assert_eq!(access_from_link_mode(0o120777), None, "a plain symlink");
    }

    /// A thread of this process blocked on a channel: asleep at both looks,
    /// never put on a CPU between them; a tid that does not exist is `None`.
    #[test]
    fn a_blocked_thread_reads_as_asleep_and_still() {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let blocked = std::thread::spawn(move || {
            // "/proc/thread-self" links to "PID/task/TID".
            let link = std::fs::read_link("/proc/thread-self").unwrap();
            let tid: i32 = link
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
                .unwrap();
            tid_tx.send(tid).unwrap();
            let _ = stop_rx.recv();
        });
        let tid = tid_rx.recv().unwrap();
        let pid = std::process::id() as i32;
        let proc_root = Path::new("/proc");
        let asleep = || read_loop_thread(proc_root, pid, tid, 0).is_some_and(|t| t.state == "S");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !asleep() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let a = read_loop_thread(proc_root, pid, tid, 1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let b = read_loop_thread(proc_root, pid, tid, 51).unwrap();
        stop_tx.send(()).unwrap();
        blocked.join().unwrap();
        assert_eq!((a.tid, a.at_ms, b.at_ms), (tid, 1, 51));
        assert_eq!(
            (a.state.as_str(), b.state.as_str()),
            ("S", "S"),
            "{a:?} {b:?}"
        );
        assert!(a.run_count.is_some(), "schedstat: {a:?}");
        assert_eq!((a.run_count, a.cpu_ns), (b.run_count, b.cpu_ns));
        // Its own process may read where it sleeps.
        assert!(
            b.wchan.as_deref().is_some_and(|w| w.contains("futex")),
            "{b:?}"
        );
        assert!(read_loop_thread(proc_root, pid, i32::MAX, 0).is_none());
    }

    /// Map a file of /dev/shm shared, then read this process's holders both
    /// ways: the ioctl and the text must agree.
    #[test]
    fn procmap_query_and_text_maps_agree_on_a_live_process() {
        let Ok(shm) = std::fs::metadata("/dev/shm") else {
            eprintln!("SKIPPED: no /dev/shm");
            return;
        };
        let path = format!("/dev/shm/semleak-test-procmap-{}", std::process::id());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(4096).unwrap();
        let inode = file.metadata().unwrap().ino();
        // SAFETY: maps 4096 bytes of a file we just sized, shared; unmapped below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED);
        std::fs::remove_file(&path).unwrap(); // unlinked: only the mapping names it

        let me = std::process::id() as i32;
        let root = Path::new("/proc");
        let text = std::fs::read(format!("/proc/{me}/maps")).unwrap();
        let from_text = text_shm_ids(text.as_slice(), shm.dev());
        assert!(from_text.contains(&(shm.dev(), inode)), "{from_text:?}");

        let listed: Vec<u64> = Vec::new();
        let filter = ShmFilter {
            dev: Some(shm.dev()),
            dir_prefix: b"/dev/shm/",
            listed: &listed,
        };
        let scan = ProcScan::open(root, filter, None, 100, 2).unwrap();
        let dir = openat(
            &scan.root,
            DecInt::new(me),
            OFlags::PATH | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let mut bufs = Buffers {
            text: Vec::new(),
            dirents: vec![MaybeUninit::uninit(); 4096],
            name: vec![0; 4096],
        };
        let queried = scan.read_maps(&dir, &mut bufs).unwrap();
        let kernel_has_it = scan.used_procmap_query();
        scan.force_text_maps();
        let texted = scan.read_maps(&dir, &mut bufs).unwrap();
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(addr, 4096) };

        let ids = |v: &[ShmMapping]| {
            let mut ids: Vec<(u64, u64)> = v.iter().map(|m| (m.dev, m.inode)).collect();
            ids.sort_unstable();
            ids
        };
        assert_eq!(ids(&queried), ids(&texted));
        let ours = |v: &[ShmMapping]| v.iter().find(|m| m.inode == inode).cloned().unwrap();
        // Not listed: both ways name it, and say it was deleted.
        assert_eq!(ours(&queried).path, ours(&texted).path);
        assert!(ours(&queried).deleted && ours(&texted).deleted);
        assert!(ours(&queried).path.as_bytes().ends_with(path.as_bytes()));
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let version: Vec<u32> = kernel
            .split(|c: char| !c.is_ascii_digit())
            .take(2)
            .filter_map(|n| n.parse().ok())
            .collect();
        if version.as_slice() >= [6, 11].as_slice() {
            assert!(
                kernel_has_it,
                "kernel {kernel:?} has PROCMAP_QUERY, but it was not used"
            );
        }
        assert!(!shm_mapping_ids(root, me, shm.dev())
            .unwrap()
            .contains(&(shm.dev(), inode)));
    }
}
