//! Unlink a planned semaphore file, re-checked right before acting.
//!
//! Everything is relative to one directory descriptor opened with
//! `O_DIRECTORY|O_NOFOLLOW`, so a path component swapped for a symlink
//! cannot redirect the unlink outside the directory, and the entry itself is
//! examined with `fstatat(AT_SYMLINK_NOFOLLOW)`, never followed.
//!
//! One window remains: between the last `fstatat` and `unlinkat` the name
//! could be swapped for another file. In a sticky directory such as
//! `/dev/shm` only the entry's owner (or root) can do that.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, BufReader};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::parse::{parse_maps, parse_status};
use crate::control_types::{ExpectedFile, UnlinkRefused, Unlinked, Unverifiable};

/// An open shared-memory directory.
#[derive(Debug)]
pub struct ShmDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// Processes that map a file, and those whose maps could not be read.
#[derive(Debug, Default)]
struct HolderScan {
    holders: Vec<i32>,
    /// (pid, uid if known)
    unreadable: Vec<(i32, Option<u32>)>,
}

impl ShmDir {
    /// Open the directory once; every later step is relative to it.
    pub fn open(path: &Path) -> io::Result<ShmDir> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `c` is a valid NUL-terminated path; open has no other
        // preconditions and returns a new descriptor or -1.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly opened descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(ShmDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lstat_at(&self, name: &CStr) -> io::Result<libc::stat> {
        let mut st = MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: the directory fd is open for our lifetime, `name` is
        // NUL-terminated, `st` is writable memory of the right type.
        let rc = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstatat returned 0, so it filled the struct.
        Ok(unsafe { st.assume_init() })
    }

    /// The entry must still be the planned regular file.
    fn check_entry(
        &self,
        name: &CStr,
        expected: ExpectedFile,
    ) -> Result<libc::stat, UnlinkRefused> {
        let st = match self.lstat_at(name) {
            Ok(st) => st,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(UnlinkRefused::Gone),
            Err(source) => {
                return Err(UnlinkRefused::Io {
                    op: "fstatat",
                    source,
                })
            }
        };
        let kind = st.st_mode & libc::S_IFMT;
        if kind != libc::S_IFREG {
            return Err(UnlinkRefused::NotRegular(match kind {
                libc::S_IFLNK => "a symlink",
                libc::S_IFDIR => "a directory",
                libc::S_IFIFO => "a FIFO",
                libc::S_IFSOCK => "a socket",
                _ => "a special file",
            }));
        }
        // dev_t and ino_t are not u64 on every Linux target.
        #[allow(clippy::unnecessary_cast)]
        let (dev, inode) = (st.st_dev as u64, st.st_ino as u64);
        if (dev, inode) != (expected.dev, expected.inode) {
            return Err(UnlinkRefused::Replaced {
                dev,
                inode,
                planned_dev: expected.dev,
                planned_inode: expected.inode,
            });
        }
        Ok(st)
    }

    /// Unlink `file_name` (an entry of this directory) if it is still the
    /// regular file `expected` and no process maps it. Holders are found by
    /// re-reading every `PROC_ROOT/*/maps` for the device and inode.
    pub fn unlink_semaphore(
        &self,
        file_name: &[u8],
        expected: ExpectedFile,
        proc_root: &Path,
        unverifiable: Unverifiable,
    ) -> Result<Unlinked, UnlinkRefused> {
        if file_name.is_empty()
            || file_name == b"."
            || file_name == b".."
            || file_name.contains(&b'/')
        {
            return Err(UnlinkRefused::BadName);
        }
        let name = CString::new(file_name).map_err(|_| UnlinkRefused::BadName)?;
        let st = self.check_entry(&name, expected)?;

        let scan = holders_of(proc_root, expected).map_err(|source| UnlinkRefused::Io {
            op: "reading the process list",
            source,
        })?;
        if !scan.holders.is_empty() {
            return Err(UnlinkRefused::Held(scan.holders));
        }
        // Same rule as the scan: a hidden process could map it if it runs as
        // root or as the owner, or if the mode lets others open it.
        let shared = st.st_mode & 0o066 != 0;
        let unverified: Vec<i32> = scan
            .unreadable
            .iter()
            .filter(|(_, uid)| uid.is_none_or(|u| u == 0 || u == st.st_uid || shared))
            .map(|(pid, _)| *pid)
            .collect();
        if !unverified.is_empty() && unverifiable == Unverifiable::Refuse {
            return Err(UnlinkRefused::Unverifiable(unverified));
        }

        // Reading /proc took a while: look at the entry once more.
        self.check_entry(&name, expected)?;
        // SAFETY: the directory fd is open, `name` is NUL-terminated and a
        // single component; flags 0 unlinks a non-directory.
        let rc = unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0) };
        if rc != 0 {
            let source = io::Error::last_os_error();
            if source.kind() == io::ErrorKind::NotFound {
                return Err(UnlinkRefused::Gone);
            }
            return Err(UnlinkRefused::Io {
                op: "unlinkat",
                source,
            });
        }
        Ok(Unlinked { unverified })
    }
}

fn holders_of(proc_root: &Path, expected: ExpectedFile) -> io::Result<HolderScan> {
    let own_pid = std::process::id() as i32;
    let mut scan = HolderScan::default();
    for pid in super::procs::list_pids(proc_root)? {
        if pid == own_pid {
            continue; // semleak reads semaphores, it never maps them
        }
        let base = proc_root.join(pid.to_string());
        let maps = File::open(base.join("maps")).and_then(|f| {
            parse_maps(BufReader::with_capacity(64 * 1024, f), |dev, inode, _| {
                dev == expected.dev && inode == expected.inode
            })
        });
        match maps {
            Ok(lines) if !lines.is_empty() => scan.holders.push(pid),
            Ok(_) => {}
            Err(e)
                if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            }
            Err(_) => {
                let uid = File::open(base.join("status"))
                    .and_then(|f| parse_status(BufReader::new(f)))
                    .ok()
                    .and_then(|s| s.uid);
                scan.unreadable.push((pid, uid));
            }
        }
    }
    scan.holders.sort_unstable();
    scan.unreadable.sort_unstable();
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    fn expected_of(path: &Path) -> ExpectedFile {
        let md = fs::symlink_metadata(path).unwrap();
        ExpectedFile {
            dev: md.dev(),
            inode: md.ino(),
        }
    }

    /// An empty proc root: no holders, nothing unreadable.
    fn empty_proc() -> tempfile_lite::Dir {
        tempfile_lite::Dir::new("proc")
    }

    #[test]
    fn unlinks_the_planned_file_and_refuses_others() {
        let dir = tempfile_lite::Dir::new("shm");
        let proc_root = empty_proc();
        let p = dir.path().join("sem.a");
        fs::write(&p, [0u8; 32]).unwrap();
        let expected = expected_of(&p);
        let shm = ShmDir::open(dir.path()).unwrap();

        // A different inode under the planned name is refused.
        let wrong = ExpectedFile {
            dev: expected.dev,
            inode: expected.inode + 1,
        };
        let r = shm.unlink_semaphore(b"sem.a", wrong, proc_root.path(), Unverifiable::Refuse);
        assert!(matches!(r, Err(UnlinkRefused::Replaced { .. })), "{r:?}");
        assert!(p.exists());

        for bad in [&b""[..], b".", b"..", b"x/sem.a", b"sem\0a"] {
            let r = shm.unlink_semaphore(bad, expected, proc_root.path(), Unverifiable::Refuse);
            assert!(matches!(r, Err(UnlinkRefused::BadName)), "{r:?}");
        }

        let r = shm.unlink_semaphore(b"sem.a", expected, proc_root.path(), Unverifiable::Refuse);
        assert!(r.is_ok(), "{r:?}");
        assert!(!p.exists());
        let r = shm.unlink_semaphore(b"sem.a", expected, proc_root.path(), Unverifiable::Refuse);
        assert!(matches!(r, Err(UnlinkRefused::Gone)), "{r:?}");
    }

    #[test]
    fn symlink_is_never_followed() {
        let dir = tempfile_lite::Dir::new("shm");
        let outside = tempfile_lite::Dir::new("outside");
        let proc_root = empty_proc();
        let target = outside.path().join("precious");
        fs::write(&target, [0u8; 32]).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("sem.link")).unwrap();
        // Even the target's own identity does not make the symlink eligible.
        let shm = ShmDir::open(dir.path()).unwrap();
        let r = shm.unlink_semaphore(
            b"sem.link",
            expected_of(&target),
            proc_root.path(),
            Unverifiable::Refuse,
        );
        assert!(
            matches!(r, Err(UnlinkRefused::NotRegular("a symlink"))),
            "{r:?}"
        );
        assert!(target.exists());
        assert!(fs::symlink_metadata(dir.path().join("sem.link")).is_ok());
    }

    #[test]
    fn directory_symlink_is_not_opened() {
        let dir = tempfile_lite::Dir::new("shm");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(ShmDir::open(&link).is_err());
    }

    #[test]
    fn holders_in_fixture_maps_block_the_unlink() {
        let dir = tempfile_lite::Dir::new("shm");
        let p = dir.path().join("sem.held");
        fs::write(&p, [0u8; 32]).unwrap();
        let expected = expected_of(&p);
        let proc_root = empty_proc();
        let major = ((expected.dev >> 8) & 0xfff) | ((expected.dev >> 32) & 0xffff_f000);
        let minor = (expected.dev & 0xff) | ((expected.dev >> 12) & 0xffff_ff00);
        fs::create_dir(proc_root.path().join("4242")).unwrap();
        fs::write(
            proc_root.path().join("4242/maps"),
            format!(
                "7f0000000000-7f0000001000 rw-s 00000000 {major:02x}:{minor:02x} {} /dev/shm/sem.XyZ123 (deleted)\n",
                expected.inode
            ),
        )
        .unwrap();
        let shm = ShmDir::open(dir.path()).unwrap();
        let r = shm.unlink_semaphore(
            b"sem.held",
            expected,
            proc_root.path(),
            Unverifiable::Refuse,
        );
        assert!(
            matches!(&r, Err(UnlinkRefused::Held(p)) if p == &[4242]),
            "{r:?}"
        );
        assert!(p.exists());
    }

    /// A tiny self-cleaning temporary directory (the platform crate has no
    /// tempfile dependency).
    mod tempfile_lite {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicU32, Ordering};

        pub struct Dir(PathBuf);

        impl Dir {
            pub fn new(tag: &str) -> Dir {
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "semleak-unit-{}-{}-{tag}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
