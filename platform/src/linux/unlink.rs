//! Unlink a planned semaphore file, re-checked right before acting.
//!
//! Everything is relative to one directory descriptor opened with
//! `O_DIRECTORY|O_NOFOLLOW`, so a path component swapped for a symlink
//! cannot redirect the unlink outside the directory, and the entry itself is
//! examined with `statat(AT_SYMLINK_NOFOLLOW)`, never followed.
//!
//! The name is not unlinked directly: between a last check and `unlinkat`
//! anyone who may rename in the directory could swap another file in under
//! it (a `RENAME_EXCHANGE` loop wins that race now and then). Instead the
//! entry is first moved to a private name in the same directory
//! (`renameat2(RENAME_NOREPLACE)`, atomic), its inode verified there, and
//! only then unlinked; a file that turns out not to be the planned one is
//! renamed back. What is unlinked is what was verified, unless someone
//! finds and swaps the private name itself within microseconds — which in a
//! sticky directory such as `/dev/shm` only the owner of both files (or
//! root) can do.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::fs::{
    openat, renameat_with, statat, unlinkat, AtFlags, FileType, Mode, OFlags, RenameFlags, Stat,
    CWD,
};
use rustix::io::Errno;

use super::holders::HolderIndex;
use crate::control_types::{ExpectedFile, UnlinkRefused, Unlinked, Unverifiable};

/// An open shared-memory directory.
///
/// Contract: [`ShmDir::open`] opens exactly the directory named and never
/// follows a symlink in its last component (earlier components are
/// resolved as usual). Where the shared-memory directory may itself be a
/// symlink (`/dev/shm -> /run/shm` on some hosts), resolve it once with
/// [`ShmDir::resolve`], scan that directory, and pass the same resolved path
/// here: every later step is relative to the descriptor and follows no link.
#[derive(Debug)]
pub struct ShmDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn io_err(op: &'static str, e: Errno) -> UnlinkRefused {
    UnlinkRefused::Io {
        op,
        source: e.into(),
    }
}

impl ShmDir {
    /// Open the directory once; every later step is relative to it. A
    /// symlink as the last component is refused (see [`ShmDir::resolve`]).
    pub fn open(path: &Path) -> io::Result<ShmDir> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match openat(CWD, path, flags, Mode::empty()) {
            Ok(fd) => Ok(ShmDir {
                fd,
                path: path.to_path_buf(),
            }),
            Err(e @ (Errno::LOOP | Errno::NOTDIR))
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) =>
            {
                let target = std::fs::read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!(
                        "{} is a symlink (to {target}): not followed; pass the directory it \
                         resolves to",
                        path.display()
                    ),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The absolute path `path` resolves to, every symlink followed once:
    /// what to scan and then hand to [`ShmDir::open`].
    pub fn resolve(path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why `proc_root` does not provably show the holders of this
    /// directory's files, judged by the open directory itself (its device,
    /// and whether it is on tmpfs or ramfs).
    fn proc_view_problem(&self, proc_root: &Path) -> Option<super::procview::ProcViewProblem> {
        use super::procview::{is_shared_memory_magic, problem_for, ProcViewProblem};
        // f_type is a signed or unsigned integer of the target's width.
        #[allow(clippy::unnecessary_cast)]
        let shared_memory = rustix::fs::fstatfs(&self.fd)
            .ok()
            .map(|s| is_shared_memory_magic(s.f_type as i64));
        match rustix::fs::fstat(&self.fd) {
            // dev_t is not u64 on every Linux target.
            #[allow(clippy::unnecessary_cast)]
            Ok(st) => problem_for(proc_root, shared_memory, st.st_dev as u64),
            Err(e) => Some(ProcViewProblem::Mounts(format!(
                "cannot stat {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// The entry must be a regular file with the planned device and inode.
    fn check_entry(&self, name: &[u8], expected: ExpectedFile) -> Result<Stat, UnlinkRefused> {
        let st = match statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Err(UnlinkRefused::Gone),
            Err(e) => return Err(io_err("fstatat", e)),
        };
        check_stat(&st, expected)?;
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
        self.unlink_semaphores(&[(file_name, expected)], proc_root, unverifiable)
            .pop()
            .unwrap_or(Err(UnlinkRefused::BadName))
    }

    /// Unlink a batch of entries, each as [`Self::unlink_semaphore`] would,
    /// with one holder index (one read of every process's maps) for the
    /// batch instead of one per entry. The index is rebuilt when it is older
    /// than [`HOLDER_INDEX_MAX_AGE`]; each entry is still re-checked (same
    /// regular file, not held) right before its unlink. One result per entry,
    /// in order.
    pub fn unlink_semaphores(
        &self,
        batch: &[(&[u8], ExpectedFile)],
        proc_root: &Path,
        unverifiable: Unverifiable,
    ) -> Vec<Result<Unlinked, UnlinkRefused>> {
        let devs: HashSet<u64> = batch.iter().map(|(_, e)| e.dev).collect();
        let mut index: Option<HolderIndex> = None;
        batch
            .iter()
            .map(|&(file_name, expected)| {
                let fresh = index
                    .as_ref()
                    .is_some_and(|i| i.built.elapsed() < HOLDER_INDEX_MAX_AGE);
                if !fresh {
                    let mut built = HolderIndex::build(proc_root, &devs).map_err(|source| {
                        UnlinkRefused::Io {
                            op: "reading the process list",
                            source,
                        }
                    })?;
                    built.proc_view = self
                        .proc_view_problem(proc_root)
                        .map(|why| (proc_root.to_path_buf(), why));
                    index = Some(built);
                }
                let holders = index.as_ref().ok_or(UnlinkRefused::BadName)?;
                self.unlink_checked(file_name, expected, holders, unverifiable)
            })
            .collect()
    }

    fn unlink_checked(
        &self,
        file_name: &[u8],
        expected: ExpectedFile,
        index: &HolderIndex,
        unverifiable: Unverifiable,
    ) -> Result<Unlinked, UnlinkRefused> {
        if file_name.is_empty()
            || file_name == b"."
            || file_name == b".."
            || file_name.contains(&b'/')
            || file_name.contains(&0)
        {
            return Err(UnlinkRefused::BadName);
        }
        self.check_entry(file_name, expected)?;

        let holders = index.holders(expected.dev, expected.inode);
        if !holders.is_empty() {
            return Err(UnlinkRefused::Held(holders.to_vec()));
        }
        // Same rule as the scan: any process that could not be inspected
        // could map it, whatever its uid.
        let unverified = index.unreadable().to_vec();
        if !unverified.is_empty() && unverifiable == Unverifiable::Refuse {
            return Err(UnlinkRefused::Unverifiable(unverified));
        }
        // Checked here, on the unlink path itself, not only when planning.
        if let (Some(ns), Unverifiable::Refuse) = (index.nested_pid_namespace, unverifiable) {
            return Err(UnlinkRefused::NestedPidNamespace(ns));
        }
        if let (Some((root, why)), Unverifiable::Refuse) = (&index.proc_view, unverifiable) {
            return Err(UnlinkRefused::ProcRootMismatch {
                proc_root: root.display().to_string(),
                why: why.to_string(),
            });
        }

        // Reading /proc took a while: look at the entry once more, then
        // take it out of reach before the final check.
        self.check_entry(file_name, expected)?;
        self.unlink_verified(file_name, expected)?;
        Ok(Unlinked { unverified })
    }

    /// Move the entry to a private name, verify it there, unlink it; put
    /// back a file that is not the planned one.
    fn unlink_verified(&self, name: &[u8], expected: ExpectedFile) -> Result<(), UnlinkRefused> {
        let private = private_name();
        match renameat_with(&self.fd, name, &self.fd, &private, RenameFlags::NOREPLACE) {
            Ok(()) => {}
            Err(Errno::NOENT) => return Err(UnlinkRefused::Gone),
            Err(e) => return Err(io_err("renameat2", e)),
        }
        let verdict = match statat(&self.fd, &private, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => check_stat(&st, expected),
            Err(e) => Err(io_err("fstatat", e)),
        };
        match verdict {
            Ok(()) => match unlinkat(&self.fd, &private, AtFlags::empty()) {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ =
                        renameat_with(&self.fd, &private, &self.fd, name, RenameFlags::NOREPLACE);
                    Err(io_err("unlinkat", e))
                }
            },
            Err(refused) => {
                match renameat_with(&self.fd, &private, &self.fd, name, RenameFlags::NOREPLACE) {
                    Ok(()) => Err(refused),
                    // The name was taken meanwhile: leave the file where it is
                    // rather than replace anything, and say where.
                    Err(e) => Err(UnlinkRefused::Io {
                        op: "renaming back",
                        source: io::Error::new(
                            io::Error::from(e).kind(),
                            format!(
                                "{refused}; it could not be renamed back ({e}) and is now {}",
                                self.path
                                    .join(OsString::from_vec(private.as_bytes().to_vec()))
                                    .display()
                            ),
                        ),
                    }),
                }
            }
        }
    }
}

/// A name in the directory that nothing else uses or looks for (no `sem.`
/// prefix, so a scan never takes it for a semaphore).
fn private_name() -> OsString {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    OsString::from(format!(
        ".semleak-unlinking-{}-{}-{nanos:08x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A regular file with the planned device and inode, or why not.
fn check_stat(st: &Stat, expected: ExpectedFile) -> Result<(), UnlinkRefused> {
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        return Err(UnlinkRefused::NotRegular(match kind {
            FileType::Symlink => "a symlink",
            FileType::Directory => "a directory",
            FileType::Fifo => "a FIFO",
            FileType::Socket => "a socket",
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
    Ok(())
}

/// How long one holder index serves a batch of unlinks before it is read
/// again.
pub const HOLDER_INDEX_MAX_AGE: Duration = Duration::from_millis(500);

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

    #[test]
    fn the_maps_device_encoding_is_the_kernels() {
        for (major, minor) in [(0u32, 0x1au32), (8, 1), (259, 3), (0x1000, 0x100)] {
            assert_eq!(
                super::super::parse::makedev(u64::from(major), u64::from(minor)),
                rustix::fs::makedev(major, minor)
            );
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
        let err = ShmDir::open(&link).unwrap_err();
        assert!(err.to_string().contains("is a symlink"), "{err}");
        // Resolved once, the same directory opens.
        let resolved = ShmDir::resolve(&link).unwrap();
        assert_eq!(resolved, ShmDir::resolve(dir.path()).unwrap());
        assert!(ShmDir::open(&resolved).is_ok());
    }

    /// The private name the entry passes through is gone afterwards, and a
    /// file that is not the planned one is put back under its name.
    #[test]
    fn nothing_is_left_under_a_private_name() {
        let dir = tempfile_lite::Dir::new("shm");
        let proc_root = empty_proc();
        let a = dir.path().join("sem.a");
        let b = dir.path().join("sem.b");
        fs::write(&a, [0u8; 32]).unwrap();
        fs::write(&b, [1u8; 32]).unwrap();
        let shm = ShmDir::open(dir.path()).unwrap();
        let planned_b = expected_of(&b);
        // Swap the files before the final move: the check in the private
        // place refuses and renames back.
        let r = shm.unlink_verified(b"sem.a", planned_b);
        assert!(matches!(r, Err(UnlinkRefused::Replaced { .. })), "{r:?}");
        assert_eq!(fs::read(&a).unwrap(), [0u8; 32]);
        let r = shm.unlink_semaphore(b"sem.b", planned_b, proc_root.path(), Unverifiable::Refuse);
        assert!(r.is_ok(), "{r:?}");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("sem.a")]);
    }

    #[test]
    fn holders_in_fixture_maps_block_the_unlink() {
        let dir = tempfile_lite::Dir::new("shm");
        let p = dir.path().join("sem.held");
        fs::write(&p, [0u8; 32]).unwrap();
        let expected = expected_of(&p);
        let proc_root = empty_proc();
        let (major, minor) = (
            rustix::fs::major(expected.dev),
            rustix::fs::minor(expected.dev),
        );
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

    /// A shared-memory directory (tmpfs) checked through a proc root that
    /// is not a proc filesystem: refused on the unlink path itself, unless
    /// unverifiable holders are accepted (`--allow-incomplete`); the real
    /// `/proc`, which mounts it, is not refused.
    #[test]
    fn a_proc_root_that_cannot_see_the_directory_is_refused() {
        let Some(dir) = tempfile_lite::Dir::new_in(Path::new("/dev/shm"), "shm") else {
            eprintln!("SKIPPED: no private directory in /dev/shm");
            return;
        };
        if !super::super::procview::is_shared_memory_fs(dir.path()).unwrap_or(false) {
            eprintln!("SKIPPED: /dev/shm is not a tmpfs here");
            return;
        }
        let proc_root = empty_proc();
        let p = dir.path().join("sem.a");
        fs::write(&p, [0u8; 32]).unwrap();
        let expected = expected_of(&p);
        let shm = ShmDir::open(dir.path()).unwrap();
        let r = shm.unlink_semaphore(b"sem.a", expected, proc_root.path(), Unverifiable::Refuse);
        match &r {
            Err(UnlinkRefused::ProcRootMismatch {
                proc_root: root,
                why,
            }) => {
                assert_eq!(root, &proc_root.path().display().to_string());
                assert!(why.contains("not a proc filesystem"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert!(r.unwrap_err().to_string().contains("--proc-root"));
        assert!(p.exists());

        let q = dir.path().join("sem.b");
        fs::write(&q, [0u8; 32]).unwrap();
        let r = shm.unlink_semaphore(
            b"sem.b",
            expected_of(&q),
            Path::new("/proc"),
            Unverifiable::Refuse,
        );
        assert!(
            !matches!(r, Err(UnlinkRefused::ProcRootMismatch { .. })),
            "{r:?}"
        );

        let r = shm.unlink_semaphore(b"sem.a", expected, proc_root.path(), Unverifiable::Accept);
        assert!(r.is_ok(), "{r:?}");
        assert!(!p.exists());
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
            /// In `base` instead of the temporary directory; `None` where
            /// it cannot be made.
            pub fn new_in(base: &Path, tag: &str) -> Option<Dir> {
                static N: AtomicU32 = AtomicU32::new(0);
                let p = base.join(format!(
                    "semleak-unit-{}-{}-{tag}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir(&p).ok()?;
                Some(Dir(p))
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
