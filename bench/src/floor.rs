//! The raw floor: the cheapest complete collection one thread can do with
//! the kernel interfaces semleak uses — list the shared-memory directory
//! (lstat and read each `sem.*`), and per process read `stat` and
//! `cmdline`, walk the shared file mappings (`PROCMAP_QUERY`, else the maps
//! text) and read every descriptor link. No parsing beyond what finds the
//! next file, no threads, no output but the counts.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{openat, readlinkat_raw, statat, AtFlags, Mode, OFlags, RawDir, CWD};
use semleak_platform::linux::procmap;

#[derive(Debug, Default)]
pub struct Counts {
    pub processes: usize,
    pub shared_mappings: usize,
    pub descriptors: usize,
    pub semaphores: usize,
    pub text_maps: bool,
}

fn open_dir(dir: impl AsFd, path: &str) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn read_into(dir: impl AsFd, name: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    let fd = openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(4096);
        }
        let n = rustix::io::read(&fd, buf.spare_capacity_mut())?.0.len();
        if n == 0 {
            return Ok(());
        }
        // SAFETY: read initialised `n` more bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
    }
}

pub fn run(proc_root: &str, shm_dir: &str) -> io::Result<Counts> {
    let mut counts = Counts::default();
    let mut dirbuf: Vec<MaybeUninit<u8>> = vec![MaybeUninit::uninit(); 64 * 1024];
    let mut fdbuf: Vec<MaybeUninit<u8>> = vec![MaybeUninit::uninit(); 16 * 1024];
    let mut text = Vec::with_capacity(64 * 1024);
    let mut link = [MaybeUninit::<u8>::uninit(); 256];

    let shm = open_dir(CWD, shm_dir)?;
    let mut names = RawDir::new(&shm, &mut dirbuf);
    while let Some(entry) = names.next() {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_bytes().starts_with(b"sem.") {
            continue;
        }
        let Ok(st) = statat(&shm, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        if st.st_size == 32 {
            let fd = openat(
                &shm,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let mut sem = [0u8; 32];
            rustix::io::read(&fd, &mut sem)?;
            counts.semaphores += 1;
        }
    }

    let proc = open_dir(CWD, proc_root)?;
    let mut pids = RawDir::new(&proc, &mut dirbuf);
    while let Some(entry) = pids.next() {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_bytes().first().is_some_and(u8::is_ascii_digit) {
            continue;
        }
        let Ok(dir) = openat(
            &proc,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        if read_into(&dir, "stat", &mut text).is_err() {
            continue;
        }
        counts.processes += 1;
        // State after the last ')'; zombies and kernel threads have no
        // mappings, descriptors or command line.
        let close = text.iter().rposition(|&b| b == b')').unwrap_or(0);
        let rest = &text[close..];
        let state = rest.get(2).copied().unwrap_or(b'?');
        let flags: u64 = rest
            .split(|&b| b == b' ')
            .nth(7)
            .and_then(|f| std::str::from_utf8(f).ok()?.parse().ok())
            .unwrap_or(0);
        if state == b'Z' || flags & 0x0020_0000 != 0 {
            continue;
        }
        let _ = read_into(&dir, "cmdline", &mut text);
        if let Ok(maps) = openat(
            &dir,
            "maps",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            let walked = procmap::shared_file_vmas(&maps, |_| counts.shared_mappings += 1);
            if let Err(Ok(procmap::Unsupported)) = walked {
                counts.text_maps = true;
                if read_into(&dir, "maps", &mut text).is_ok() {
                    counts.shared_mappings += text
                        .split(|&b| b == b'\n')
                        .filter(|l| l.get(21..25) == Some(b"rw-s"))
                        .count();
                }
            }
        }
        if let Ok(fds) = open_dir(&dir, "fd") {
            let mut entries = RawDir::new(&fds, &mut fdbuf);
            while let Some(Ok(e)) = entries.next() {
                if e.file_name().to_bytes()[0] == b'.' {
                    continue;
                }
                if readlinkat_raw(&fds, e.file_name(), &mut link).is_ok() {
                    counts.descriptors += 1;
                }
            }
        }
    }
    Ok(counts)
}
