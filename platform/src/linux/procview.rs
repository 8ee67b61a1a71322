//! Whether a proc root can see the holders of a shared-memory directory.
//!
//! A verdict "no process maps it" means something only when the proc root
//! lists the processes that could map the file: it must be a proc
//! filesystem, and its processes' mount namespace must contain the
//! directory's filesystem (the device of the directory appears as a mount
//! in `PROC_ROOT/PID/mountinfo`). An empty directory, `/tmp`, or a
//! container's `/proc` paired with the host's `/dev/shm` fail one or the
//! other; a container's `/proc` with the container's own `/dev/shm` (through
//! `/proc/PID/root/dev/shm`) passes. The pid namespace is checked apart
//! (`procs::nested_pid_namespace_inode`, `proc_root_pid_namespace_inode`).
//!
//! A directory that is not on a shared-memory filesystem (tmpfs, ramfs) is a
//! fixture tree, accepted only with `--allow-non-tmpfs`; no real semaphore
//! lives there, and its fixture proc tree is taken as it is.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::parse::parse_mountinfo;

/// `PROC_SUPER_MAGIC` (linux/magic.h).
pub(crate) const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// `TMPFS_MAGIC` and `RAMFS_MAGIC` (linux/magic.h).
const SHM_MAGICS: [i64; 2] = [0x0102_1994, 0x8584_58f6];

/// Why a proc root does not prove it sees every holder of a directory's
/// files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProcViewProblem {
    /// The proc root is not a proc filesystem (its `statfs` type, or why it
    /// could not be read).
    NotProc(String),
    /// The proc root shows a pid namespace that is not the initial one
    /// (its inode when `PROC_ROOT/PID/ns/pid` can be read): processes of
    /// the enclosing namespaces are not listed.
    NestedPidNamespace(Option<u64>),
    /// No process is listed whose mounts could be read.
    NoProcess,
    /// The mounts of the proc root's processes could not be read.
    Mounts(String),
    /// The directory's filesystem is not mounted in the mount namespace of
    /// the proc root's processes (as `pid`'s mountinfo shows it).
    NotMounted { dev: u64, pid: i32 },
}

impl std::fmt::Display for ProcViewProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcViewProblem::NotProc(what) => write!(f, "it is not a proc filesystem ({what})"),
            ProcViewProblem::NestedPidNamespace(inode) => {
                write!(f, "it shows a nested pid namespace (")?;
                match inode {
                    Some(inode) => write!(f, "pid:[{inode}]")?,
                    None => write!(f, "semleak's own process is not in it")?,
                }
                write!(
                    f,
                    ", not the host's pid:[{}]): processes of the enclosing namespaces are \
                     not listed",
                    super::parse::INIT_PID_NAMESPACE_INODE
                )
            }
            ProcViewProblem::NoProcess => write!(f, "it lists no process whose mounts can be read"),
            ProcViewProblem::Mounts(e) => write!(f, "its processes' mounts cannot be read: {e}"),
            ProcViewProblem::NotMounted { dev, pid } => write!(
                f,
                "the directory's filesystem (device {}:{}) is not mounted in the mount \
                 namespace of its pid {pid}, so its processes are not the ones that use it",
                rustix::fs::major(*dev),
                rustix::fs::minor(*dev)
            ),
        }
    }
}

/// The filesystem type (`f_type`) of `path`.
pub(crate) fn fs_magic(path: &Path) -> io::Result<i64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: an all-zero `statfs` is a valid value of the plain C struct.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path that outlives the call and `buf`
    // is a valid, writable `statfs` the kernel fills in.
    if unsafe { libc::statfs(c.as_ptr(), &mut buf) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // f_type is a signed or unsigned integer of the target's width.
    #[allow(clippy::unnecessary_cast)]
    Ok(buf.f_type as i64)
}

/// Whether `path` is on tmpfs or ramfs: a real shared-memory directory.
pub(crate) fn is_shared_memory_fs(path: &Path) -> io::Result<bool> {
    Ok(is_shared_memory_magic(fs_magic(path)?))
}

/// Whether a `statfs` type is tmpfs's or ramfs's.
pub(crate) fn is_shared_memory_magic(f_type: i64) -> bool {
    SHM_MAGICS.contains(&f_type)
}

/// The process whose namespaces stand for the proc root's: pid 1 (the
/// init of the proc root's pid namespace) or else the lowest pid listed.
/// Never `self`: in a foreign procfs that is the reader's pid in that pid
/// namespace, and dangles for a reader outside it.
pub(crate) fn reference_pid(proc_root: &Path) -> Option<i32> {
    if proc_root.join("1").is_dir() {
        return Some(1);
    }
    super::procs::list_pids(proc_root)
        .ok()?
        .into_iter()
        .find(|&pid| pid > 0)
}

/// `None` when `proc_root` provably sees the holders of files on the
/// shared-memory filesystem `shm_dev` (the device of the directory `shm_dir`),
/// else why not. A directory that is not on tmpfs or ramfs is a fixture
/// tree (see the module documentation).
pub(crate) fn problem(proc_root: &Path, shm_dir: &Path, shm_dev: u64) -> Option<ProcViewProblem> {
    // Where the type cannot be read, the directory is not taken for a fixture.
    problem_for(proc_root, is_shared_memory_fs(shm_dir).ok(), shm_dev)
}

/// [`problem`], with whether the directory is on tmpfs or ramfs already
/// known (`None`: unknown, checked as if it were).
pub(crate) fn problem_for(
    proc_root: &Path,
    shared_memory: Option<bool>,
    shm_dev: u64,
) -> Option<ProcViewProblem> {
    if shared_memory == Some(false) {
        return None;
    }
    match fs_magic(proc_root) {
        Ok(PROC_SUPER_MAGIC) => {}
        Ok(other) => {
            return Some(ProcViewProblem::NotProc(format!(
                "filesystem type {other:#x}"
            )))
        }
        Err(e) => return Some(ProcViewProblem::NotProc(format!("statfs: {e}"))),
    }
    let pid = reference_pid(proc_root);
    // `self` resolves in every procfs of semleak's pid namespace or an
    // enclosing one, the initial namespace's among them: where it does not,
    // the procfs belongs to a namespace nested elsewhere. (Where it does,
    // `procs::nested_pid_namespace_inode` checks semleak's own namespace.)
    if std::fs::metadata(proc_root.join("self")).is_err() {
        let inode = pid.and_then(|pid| {
            let link = std::fs::read_link(proc_root.join(format!("{pid}/ns/pid"))).ok()?;
            super::parse::parse_pid_namespace_link(link.as_os_str().as_bytes())
        });
        return Some(ProcViewProblem::NestedPidNamespace(inode));
    }
    let Some(pid) = pid else {
        return Some(ProcViewProblem::NoProcess);
    };
    let path = proc_root.join(pid.to_string()).join("mountinfo");
    let mounts = File::open(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|f| parse_mountinfo(BufReader::new(f), &path).map_err(|e| e.to_string()));
    match mounts {
        Err(e) => Some(ProcViewProblem::Mounts(e)),
        Ok(mounts) if mounts.iter().any(|m| m.dev == shm_dev) => None,
        Ok(_) => Some(ProcViewProblem::NotMounted { dev: shm_dev, pid }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_real_proc_sees_dev_shm_and_an_empty_directory_sees_nothing() {
        let shm = Path::new("/dev/shm");
        if !is_shared_memory_fs(shm).unwrap_or(false) {
            eprintln!("SKIPPED: /dev/shm is not a tmpfs here");
            return;
        }
        let dev = std::fs::metadata(shm).unwrap().dev();
        assert_eq!(fs_magic(Path::new("/proc")).unwrap(), PROC_SUPER_MAGIC);
        assert_eq!(problem(Path::new("/proc"), shm, dev), None);

        let empty = std::env::temp_dir().join(format!("semleak-unit-view-{}", std::process::id()));
        std::fs::create_dir_all(empty.join("1")).unwrap();
        let got = problem(&empty, shm, dev);
        std::fs::remove_dir_all(&empty).unwrap();
        assert!(matches!(got, Some(ProcViewProblem::NotProc(_))), "{got:?}");

        // The real /proc, but a device no mount of pid 1 has.
        let got = problem(Path::new("/proc"), shm, u64::MAX);
        assert!(
            matches!(got, Some(ProcViewProblem::NotMounted { pid: 1, .. })),
            "{got:?}"
        );
        assert!(got.unwrap().to_string().contains("not mounted"));
    }

    #[test]
    fn a_directory_off_shared_memory_is_a_fixture() {
        let dir = std::env::current_dir().unwrap();
        if is_shared_memory_fs(&dir).unwrap_or(true) {
            eprintln!("SKIPPED: the working directory is on tmpfs");
            return;
        }
        let dev = std::fs::metadata(&dir).unwrap().dev();
        assert_eq!(problem(Path::new("/nonexistent"), &dir, dev), None);
    }
}
