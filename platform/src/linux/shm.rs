//! The shared-memory directory: every entry, `sem.*` as named semaphores.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
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

fn c_path(dir: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

// f_type's type differs between targets.
#[allow(clippy::unnecessary_cast)]
fn statfs_type(dir: &Path) -> io::Result<u64> {
    let c = c_path(dir)?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable
    // memory of the right type; statfs only writes into it.
    let rc = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statfs returned 0, so it initialised the struct.
    Ok(unsafe { st.assume_init() }.f_type as u64)
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
                shm.semaphores
                    .push(read_semaphore(dir, sem_name, &path, &md));
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

fn read_semaphore(dir: &Path, sem_name: &[u8], path: &Path, md: &fs::Metadata) -> Semaphore {
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
        return sem;
    }
    // Read, never map: mapping would make semleak a holder. O_NOFOLLOW and
    // O_NONBLOCK guard against the entry being swapped for a symlink or FIFO.
    let read = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .and_then(|mut f| {
            // lstat said 32 bytes: one read of 32 gets them (a file that
            // shrank meanwhile yields fewer and is reported as malformed).
            let mut buf = vec![0u8; GLIBC_SEM_SIZE];
            let mut filled = 0;
            while filled < buf.len() {
                match f.read(&mut buf[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            buf.truncate(filled);
            Ok(buf)
        });
    match read {
        Ok(bytes) => match parse_glibc_sem(&bytes) {
            Ok(state) => {
                sem.value = Some(state.value);
                sem.waiters = Some(state.waiters);
            }
            Err(e) => sem.unreadable_reason = Some(e.to_string()),
        },
        Err(e) => sem.unreadable_reason = Some(format!("cannot read: {e}")),
    }
    sem
}

// The statvfs field types differ between targets (u32 on 32-bit).
#[allow(clippy::unnecessary_cast)]
fn statvfs(dir: &Path) -> io::Result<FsUsage> {
    let c = c_path(dir)?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable
    // memory of the right type; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised the struct.
    let st = unsafe { st.assume_init() };
    let frsize = st.f_frsize as u64;
    Ok(FsUsage {
        bytes_total: st.f_blocks as u64 * frsize,
        bytes_free: st.f_bfree as u64 * frsize,
        inodes_total: st.f_files as u64,
        inodes_free: st.f_ffree as u64,
    })
}
