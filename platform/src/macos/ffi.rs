//! The system calls, each wrapped once with its safety argument.

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::ptr;

use libc::{c_int, c_void};

use super::abi::{
    proc_fdinfo, Pod, PROC_PIDLISTFDS, PROC_PIDLISTTHREADIDS, PROC_PIDLISTTHREADS,
    PROC_PIDTHREADID64INFO, PROC_PIDTHREADINFO,
};
use super::libproc::{self, IdList};

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Set errno to 0, so that a libproc 0 can be told from a failure.
fn clear_errno() {
    // SAFETY: __error returns the calling thread's errno location, valid
    // for writes for the thread's lifetime.
    unsafe { *libc::__error() = 0 };
}

/// A sysctl by name, as raw bytes; `None` when it does not exist or fails.
pub fn sysctl_by_name(name: &str) -> Option<Vec<u8>> {
    let cname = CString::new(name).ok()?;
    let mut len: libc::size_t = 0;
    // SAFETY: a NUL-terminated name; a null old-value buffer asks only for
    // the size, written to `len`; no new value.
    let rc = unsafe {
        libc::sysctlbyname(
            cname.as_ptr(),
            ptr::null_mut(),
            &mut len,
            ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is writable for `len` bytes, and the kernel writes at
    // most `len` bytes and updates `len` to the count written.
    let rc = unsafe {
        libc::sysctlbyname(
            cname.as_ptr(),
            buf.as_mut_ptr().cast::<c_void>(),
            &mut len,
            ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    buf.truncate(len);
    Some(buf)
}

/// `sysctl({CTL_KERN, KERN_PROCARGS2, pid})` into `buf`, or with a null
/// buffer the size it needs: the byte count, or `None` when the process is
/// another user's (without root) or went away (EINVAL for both).
fn procargs2_call(pid: i32, buf: Option<&mut [u8]>) -> Option<usize> {
    let mut mib: [c_int; 3] = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
    let (ptr, mut len) = match buf {
        Some(b) => (b.as_mut_ptr().cast::<c_void>(), b.len()),
        None => (ptr::null_mut(), 0),
    };
    // SAFETY: a 3-element MIB; `ptr` is null (size query) or writable for
    // `len` bytes, and the kernel writes at most `len` bytes and stores
    // the count in `len`.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            mib.len() as libc::c_uint,
            ptr,
            &mut len,
            ptr::null_mut(),
            0,
        )
    };
    (rc == 0).then_some(len)
}

/// What reading a process's `KERN_PROCARGS2` gave.
pub enum ProcArgs2 {
    /// The whole string area.
    Whole(Vec<u8>),
    /// Readable, but it does not fit ARG_MAX or changed between the size
    /// query and the read: the command line is unknown.
    Unknown,
    /// Not readable (another user's process, or gone).
    Denied,
}

/// `KERN_PROCARGS2`, sized by a query first (a buffer per process of just
/// what it needs, not ARG_MAX), and checked whole: a short buffer would be
/// answered with the tail of the string area.
pub fn procargs2(pid: i32, arg_max: usize) -> ProcArgs2 {
    let Some(need) = procargs2_call(pid, None) else {
        return ProcArgs2::Denied;
    };
    let Some(len) = libproc::procargs_buffer_len(need, arg_max) else {
        return ProcArgs2::Unknown;
    };
    let mut buf = vec![0u8; len];
    match procargs2_call(pid, Some(&mut buf)) {
        Some(n) if libproc::procargs_whole(n, len) => {
            buf.truncate(n);
            ProcArgs2::Whole(buf)
        }
        Some(_) => ProcArgs2::Unknown,
        None => ProcArgs2::Denied,
    }
}

pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

pub fn session_of(pid: i32) -> Option<i32> {
    // SAFETY: getsid takes a plain pid and only returns a number or -1.
    let sid = unsafe { libc::getsid(pid) };
    (sid >= 0).then_some(sid)
}

/// Every pid; the list is retried larger while it fills the buffer, since
/// processes appear between the calls. libproc returns 0 on failure, never
/// a negative number, so 0 is an error here.
pub fn list_all_pids() -> io::Result<Vec<i32>> {
    clear_errno();
    // SAFETY: a null buffer of size 0 asks only for the count to allow for.
    let estimate = unsafe { libc::proc_listallpids(ptr::null_mut(), 0) };
    let estimate = libproc::nonzero_answer(estimate, errno(), "proc_listallpids")?;
    let mut cap = estimate + 256;
    loop {
        let mut pids = vec![0i32; cap];
        let bytes = (cap * size_of::<i32>()) as c_int;
        clear_errno();
        // SAFETY: `pids` is writable for `bytes` bytes; the call returns the
        // number of pids it wrote, never more than fit.
        let n = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast::<c_void>(), bytes) };
        let n = libproc::nonzero_answer(n, errno(), "proc_listallpids")?;
        if n < cap {
            pids.truncate(n);
            pids.retain(|&p| p > 0);
            pids.sort_unstable();
            return Ok(pids);
        }
        cap *= 2;
    }
}

/// `proc_pidinfo` into a plain structure; a short answer is an error.
pub fn pid_info<T: Pod>(pid: i32, flavor: c_int, arg: u64) -> io::Result<T> {
    let mut out = T::zeroed();
    let size = size_of::<T>() as c_int;
    clear_errno();
    // SAFETY: `out` is a valid, writable T of `size` bytes; the kernel
    // writes at most `size` bytes, and any bytes are a valid T (Pod).
    let n = unsafe { libc::proc_pidinfo(pid, flavor, arg, (&mut out as *mut T).cast(), size) };
    if n == size {
        Ok(out)
    } else if n <= 0 {
        // A structure flavor never answers 0 bytes on success.
        Err(libproc::os_error(errno(), "proc_pidinfo answered 0 bytes"))
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("proc_pidinfo flavor {flavor}: {n} of {size} bytes"),
        ))
    }
}

/// `proc_pidfdinfo` into a plain structure; a short answer is an error.
pub fn fd_info<T: Pod>(pid: i32, fd: i32, flavor: c_int) -> io::Result<T> {
    let mut out = T::zeroed();
    let size = size_of::<T>() as c_int;
    clear_errno();
    // SAFETY: as in `pid_info`: a writable Pod buffer of `size` bytes.
    let n = unsafe { libc::proc_pidfdinfo(pid, fd, flavor, (&mut out as *mut T).cast(), size) };
    if n == size {
        Ok(out)
    } else if n <= 0 {
        // A structure flavor never answers 0 bytes on success.
        Err(libproc::os_error(
            errno(),
            "proc_pidfdinfo answered 0 bytes",
        ))
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("proc_pidfdinfo flavor {flavor}: {n} of {size} bytes"),
        ))
    }
}

/// A list flavor of `proc_pidinfo` read into `items`: how many were
/// written. errno is cleared first, so an empty list (0 bytes, errno 0)
/// is told from a failure (0 bytes, errno set).
fn pid_info_into<T: Pod>(pid: i32, flavor: c_int, items: &mut [T]) -> io::Result<usize> {
    let bytes = std::mem::size_of_val(items).min(c_int::MAX as usize) as c_int;
    clear_errno();
    // SAFETY: `items` is writable for `bytes` bytes of Pod values; the
    // kernel returns how many bytes it wrote, at most `bytes`.
    let n = unsafe { libc::proc_pidinfo(pid, flavor, 0, items.as_mut_ptr().cast(), bytes) };
    Ok(libproc::list_bytes(n, errno())? / size_of::<T>())
}

/// The open descriptors. The size query answers `(nfiles + 20)` entries
/// (never 0 on success); the read may then legitimately be empty.
pub fn list_fds(pid: i32) -> io::Result<Vec<proc_fdinfo>> {
    clear_errno();
    // SAFETY: a null buffer of size 0 asks only for the bytes needed.
    let need = unsafe { libc::proc_pidinfo(pid, PROC_PIDLISTFDS, 0, ptr::null_mut(), 0) };
    let need = libproc::nonzero_answer(need, errno(), "proc_pidinfo(PROC_PIDLISTFDS)")?;
    let mut items = vec![proc_fdinfo::zeroed(); need / size_of::<proc_fdinfo>() + 32];
    let n = pid_info_into(pid, PROC_PIDLISTFDS, &mut items)?;
    items.truncate(n);
    Ok(items)
}

/// Thread handles and the `proc_pidinfo` flavor that reads one thread by
/// such a handle. Unique thread ids where the kernel lists them
/// (`PROC_PIDLISTTHREADIDS`), else `cthread_self` handles; sized from the
/// expected count (neither list has a size query), grown while full,
/// capped at `cap`.
pub fn list_threads(pid: i32, expected: usize, cap: usize) -> io::Result<(IdList, c_int)> {
    match libproc::read_id_list(expected, cap, |b| {
        pid_info_into(pid, PROC_PIDLISTTHREADIDS, b)
    }) {
        Ok(list) => Ok((list, PROC_PIDTHREADID64INFO)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let list = libproc::read_id_list(expected, cap, |b| {
                pid_info_into(pid, PROC_PIDLISTTHREADS, b)
            })?;
            Ok((list, PROC_PIDTHREADINFO))
        }
        Err(e) => Err(e),
    }
}

/// Does a named semaphore exist? `Ok(false)` only for ENOENT; EACCES means
/// it exists but belongs to someone else.
pub fn sem_exists(name: &[u8]) -> io::Result<bool> {
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte"))?;
    // SAFETY: a NUL-terminated name and oflag 0: open an existing
    // semaphore only, never create; no variadic arguments are read.
    let sem = unsafe { libc::sem_open(cname.as_ptr(), 0) };
    if sem == libc::SEM_FAILED {
        let e = last_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(false),
            Some(libc::EACCES) => Ok(true),
            _ => Err(e),
        };
    }
    // SAFETY: `sem` came from a successful sem_open and is closed once.
    unsafe { libc::sem_close(sem) };
    Ok(true)
}
