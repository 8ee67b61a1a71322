//! The shared-memory directory: every entry, `sem.*` as named semaphores.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::parse::{parse_glibc_sem, GLIBC_SEM_SIZE};
use crate::error::CollectError;
use crate::model::{FileMeta, FsUsage, Semaphore, Shm, ShmResident, SkippedEntry};
use crate::rawname::RawName;

pub fn meta_of(md: &fs::Metadata) -> FileMeta {
    FileMeta {
        dev: md.dev(),
        inode: md.ino(),
        uid: md.uid(),
        gid: md.gid(),
        mode: md.mode() & 0o7777,
        size: md.size(),
        modified_at: md.mtime(),
        changed_at: md.ctime(),
    }
}

fn join_bytes(dir: &Path, name: &[u8]) -> RawName {
    let mut p = dir.as_os_str().as_bytes().to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    RawName(p)
}

/// `statfs` magic numbers of the filesystems POSIX shared memory lives on.
const TMPFS_MAGIC: u64 = 0x0102_1994;
const RAMFS_MAGIC: u64 = 0x8584_58f6;

/// Resolve the directory once: absolute, with every symlink on the way
/// followed here (`/dev/shm → /run/shm` on some hosts) and none below it —
/// entries are examined with lstat and opened with `O_NOFOLLOW`, and clean
/// opens this resolved path with `O_NOFOLLOW`. A directory the user named
/// must be a tmpfs or ramfs unless `allow_non_tmpfs` (fixture trees).
fn resolve_dir(dir: &Path, required: bool, allow_non_tmpfs: bool) -> io::Result<PathBuf> {
    let real = fs::canonicalize(dir)?;
    if real.to_str().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "its resolved path is not UTF-8",
        ));
    }
    if required && !allow_non_tmpfs {
        let fs_type = statfs_type(&real)?;
        if fs_type != TMPFS_MAGIC && fs_type != RAMFS_MAGIC {
            return Err(io::Error::other(NotTmpfs(fs_type)));
        }
    }
    Ok(real)
}

/// Carries a non-tmpfs filesystem type out of [`resolve_dir`].
#[derive(Debug)]
struct NotTmpfs(u64);

impl std::fmt::Display for NotTmpfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a tmpfs (filesystem type {:#x})", self.0)
    }
}

impl std::error::Error for NotTmpfs {}

// f_type's type differs between targets.
#[allow(clippy::unnecessary_cast)]
fn statfs_type(dir: &Path) -> io::Result<u64> {
    Ok(rustix::fs::statfs(dir)?.f_type as u64)
}

/// List the directory. `required` makes a missing directory an error (the
/// user named it); the default directory may be absent in minimal containers.
/// `shm.dir` is the resolved, absolute directory.
pub fn collect_shm(
    dir: &Path,
    required: bool,
    allow_non_tmpfs: bool,
) -> Result<(Shm, Option<String>), CollectError> {
    let mut shm = Shm {
        dir: dir.to_string_lossy().into_owned(),
        ..Shm::default()
    };
    let dir = match resolve_dir(dir, required, allow_non_tmpfs) {
        Ok(real) => real,
        Err(e) if !required && e.kind() == io::ErrorKind::NotFound => {
            return Ok((
                shm,
                Some(format!(
                    "{} does not exist: no POSIX named semaphores to list",
                    dir.display()
                )),
            ));
        }
        Err(e) => {
            if let Some(NotTmpfs(fs_type)) = e.get_ref().and_then(|e| e.downcast_ref()) {
                return Err(CollectError::NotTmpfs {
                    path: dir.to_path_buf(),
                    fs_type: *fs_type,
                });
            }
            return Err(CollectError::io(dir, e));
        }
    };
    let dir = dir.as_path();
    shm.dir = dir.to_string_lossy().into_owned();
    let dir_md = match fs::metadata(dir) {
        Ok(md) => md,
        Err(e) if !required && e.kind() == io::ErrorKind::NotFound => {
            return Ok((
                shm,
                Some(format!(
                    "{} does not exist: no POSIX named semaphores to list",
                    dir.display()
                )),
            ));
        }
        Err(e) => return Err(CollectError::io(dir, e)),
    };
    if !dir_md.is_dir() {
        return Err(CollectError::NotADirectory(dir.to_path_buf()));
    }
    shm.dev = Some(dir_md.dev());
    shm.usage = statvfs(dir).ok();
    let entries = fs::read_dir(dir).map_err(|e| CollectError::io(dir, e))?;
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                shm.skipped.push(SkippedEntry {
                    name: RawName::default(),
                    reason: format!("reading directory: {e}"),
                });
                continue;
            }
        };
        let name = entry.file_name();
        let name = name.as_bytes();
        let path = entry.path();
        // lstat: never follow a symlink out of the directory.
        let md = match fs::symlink_metadata(&path) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // removed meanwhile
            Err(e) => {
                shm.skipped.push(SkippedEntry {
                    name: name.into(),
                    reason: format!("lstat failed: {e}"),
                });
                continue;
            }
        };
        let ft = md.file_type();
        match name.strip_prefix(b"sem.") {
            Some(sem_name) if ft.is_file() => {
                shm.semaphores.push(read_semaphore(dir, sem_name, &md));
            }
            Some(_) => {
                let kind = if ft.is_symlink() {
                    "a symlink (not followed)"
                } else if ft.is_dir() {
                    "a directory"
                } else {
                    "not a regular file"
                };
                shm.skipped.push(SkippedEntry {
                    name: name.into(),
                    reason: format!("named like a semaphore but is {kind}"),
                });
                shm.residents.push(resident(name, &md));
            }
            None => shm.residents.push(resident(name, &md)),
        }
    }
    shm.semaphores.sort_by(|a, b| a.name.cmp(&b.name));
    shm.residents.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((shm, None))
}

fn resident(name: &[u8], md: &fs::Metadata) -> ShmResident {
    let ft = md.file_type();
    let file_type = if ft.is_file() {
        "file"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() || ft.is_socket() || ft.is_char_device() || ft.is_block_device() {
        "special"
    } else {
        "other"
    };
    ShmResident {
        name: name.into(),
        file_type: file_type.to_string(),
        meta: meta_of(md),
        holders: Vec::new(),
    }
}

fn read_semaphore(dir: &Path, sem_name: &[u8], md: &fs::Metadata) -> Semaphore {
    let mut sem = Semaphore {
        name: sem_name.into(),
        path: join_bytes(dir, &[b"sem.", sem_name].concat()),
        meta: meta_of(md),
        ..Semaphore::default()
    };
    if md.size() != GLIBC_SEM_SIZE as u64 {
        sem.unreadable_reason = Some(format!(
            "{} bytes, not a {GLIBC_SEM_SIZE}-byte glibc semaphore",
            md.size()
        ));
    }
    sem
}

/// Read the value and waiter count of every well-formed semaphore, on a
/// few threads: a busy host has tens of thousands, and each is an open, a
/// read and a close. Read, never map: mapping would make semleak a holder.
pub fn read_values(dir: &Path, semaphores: &mut [Semaphore]) {
    let Ok(dir_fd) = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return;
    };
    let values = crate::parallel::parallel_map(
        semaphores,
        |sem| {
            if sem.unreadable_reason.is_some() {
                return None;
            }
            Some(read_value(&dir_fd, sem.name.as_bytes()))
        },
        |_, why| Some(Err(why)),
    );
    for (sem, value) in semaphores.iter_mut().zip(values) {
        match value {
            Some(Ok(state)) => {
                sem.value = Some(state.value);
                sem.waiters = Some(state.waiters);
            }
            Some(Err(why)) => sem.unreadable_reason = Some(why),
            None => {}
        }
    }
}

fn read_value(dir: &OwnedFd, sem_name: &[u8]) -> Result<super::parse::SemState, String> {
    use rustix::fs::{Mode, OFlags};
    // "sem." + the name, on the stack (a file name has at most 255 bytes).
    let mut file_name = [0u8; 4 + 256];
    let len = 4 + sem_name.len();
    if len > file_name.len() {
        return Err("cannot read: name too long".into());
    }
    file_name[..4].copy_from_slice(b"sem.");
    file_name[4..len].copy_from_slice(sem_name);
    // O_NOFOLLOW and O_NONBLOCK guard against the entry being swapped for
    // a symlink or FIFO since it was listed.
    let fd = rustix::fs::openat(
        dir,
        &file_name[..len],
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot read: {}", io::Error::from(e)))?;
    // lstat said 32 bytes: reads of 32 get them (a file that shrank
    // meanwhile yields fewer and is reported as malformed).
    let mut buf = [0u8; GLIBC_SEM_SIZE];
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::io::read(&fd, &mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("cannot read: {}", io::Error::from(e))),
        }
    }
    parse_glibc_sem(&buf[..filled]).map_err(|e| e.to_string())
}

// The statvfs field types differ between targets (u32 on 32-bit).
#[allow(clippy::unnecessary_cast)]
fn statvfs(dir: &Path) -> io::Result<FsUsage> {
    let st = rustix::fs::statvfs(dir)?;
    let frsize = st.f_frsize as u64;
    Ok(FsUsage {
        bytes_total: st.f_blocks as u64 * frsize,
        bytes_free: st.f_bfree as u64 * frsize,
        inodes_total: st.f_files as u64,
        inodes_free: st.f_ffree as u64,
    })
}

/// What identifies a directory's contents without listing it: a tmpfs
/// directory's size counts its entries, and mtime/ctime change with every
/// entry added or removed.
#[derive(Clone, Copy, PartialEq, Eq)]
struct DirStamp {
    dev: u64,
    inode: u64,
    size: i64,
    mtime: (i64, u32),
    ctime: (i64, u32),
}

struct Listing {
    dir: std::path::PathBuf,
    stamp: DirStamp,
    ids: Vec<crate::control_types::SemId>,
}

/// The last listing `semaphore_ids` made, reused while the directory is
/// unchanged: the gate asks ten times a second.
static LAST_LISTING: std::sync::Mutex<Option<Listing>> = std::sync::Mutex::new(None);

/// The `sem.*` regular files of the directory, by device and inode, from
/// the directory entries alone (`getdents` gives inode and type, no
/// `lstat` per entry), and not even that while the directory's stamp is
/// the one of the last listing, so the gate can ask often on a busy host.
pub fn semaphore_ids(dir: &Path) -> io::Result<Vec<crate::control_types::SemId>> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    #[allow(clippy::unnecessary_cast)] // field types differ between targets
    let stamp = DirStamp {
        dev: st.st_dev as u64,
        inode: st.st_ino as u64,
        size: st.st_size as i64,
        mtime: (st.st_mtime as i64, st.st_mtime_nsec as u32),
        ctime: (st.st_ctime as i64, st.st_ctime_nsec as u32),
    };
    let mut last = LAST_LISTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = last.as_ref().filter(|l| l.dir == dir && l.stamp == stamp) {
        return Ok(l.ids.clone());
    }
    let ids = list_semaphore_ids(&fd, stamp.dev)?;
    // A change within the timestamp granularity of the listing could leave
    // the stamp as it was: trust a stamp only once it is a little old.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let changed_at = stamp.mtime.0.max(stamp.ctime.0) as f64 + 1.0;
    *last = (now > changed_at).then(|| Listing {
        dir: dir.to_path_buf(),
        stamp,
        ids: ids.clone(),
    });
    Ok(ids)
}

fn list_semaphore_ids(fd: &OwnedFd, dev: u64) -> io::Result<Vec<crate::control_types::SemId>> {
    use rustix::fs::{FileType, RawDir};
    let mut buf = vec![std::mem::MaybeUninit::uninit(); 64 * 1024];
    let mut entries = RawDir::new(fd, &mut buf);
    let mut out = Vec::new();
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let Some(name) = entry.file_name().to_bytes().strip_prefix(b"sem.") else {
            continue;
        };
        let (is_file, inode) = match entry.file_type() {
            FileType::RegularFile => (true, entry.ino()),
            FileType::Unknown => {
                // Filesystems without d_type: ask.
                match rustix::fs::statat(
                    fd,
                    entry.file_name(),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                ) {
                    Ok(st) => (
                        FileType::from_raw_mode(st.st_mode) == FileType::RegularFile,
                        st.st_ino,
                    ),
                    Err(_) => continue,
                }
            }
            _ => (false, 0),
        };
        if is_file {
            out.push(crate::control_types::SemId {
                name: RawName::from(name),
                dev,
                inode,
            });
        }
    }
    Ok(out)
}
