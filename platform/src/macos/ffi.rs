//! The system calls, each wrapped once with its safety argument.

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::ptr;

use libc::{c_int, c_void};

use super::abi::{proc_fdinfo, Pod, PROC_PIDLISTFDS, PROC_PIDLISTTHREADS};

fn last_error() -> io::Error {
    io::Error::last_os_error()
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

/// `KERN_PROCARGS2` of a process; `None` for other users' processes
/// (without root) and for processes that went away.
pub fn procargs2(pid: i32, arg_max: usize) -> Option<Vec<u8>> {
    let mut mib: [c_int; 3] = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
    let mut buf = vec![0u8; arg_max.max(4096)];
    let mut len: libc::size_t = buf.len();
    // SAFETY: a 3-element MIB; `buf` is writable for `len` bytes and the
    // kernel writes at most that and stores the count in `len`.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            mib.len() as libc::c_uint,
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
/// processes appear between the calls.
pub fn list_all_pids() -> io::Result<Vec<i32>> {
    // SAFETY: a null buffer of size 0 asks only for the current count.
    let estimate = unsafe { libc::proc_listallpids(ptr::null_mut(), 0) };
    if estimate < 0 {
        return Err(last_error());
    }
    let mut cap = estimate as usize + 256;
    loop {
        let mut pids = vec![0i32; cap];
        let bytes = (cap * size_of::<i32>()) as c_int;
        // SAFETY: `pids` is writable for `bytes` bytes; the call returns the
        // number of pids it wrote, never more than fit.
        let n = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast::<c_void>(), bytes) };
        if n < 0 {
            return Err(last_error());
        }
        let n = n as usize;
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
    // SAFETY: `out` is a valid, writable T of `size` bytes; the kernel
    // writes at most `size` bytes, and any bytes are a valid T (Pod).
    let n = unsafe { libc::proc_pidinfo(pid, flavor, arg, (&mut out as *mut T).cast(), size) };
    if n == size {
        Ok(out)
    } else if n <= 0 {
        Err(last_error())
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
    // SAFETY: as in `pid_info`: a writable Pod buffer of `size` bytes.
    let n = unsafe { libc::proc_pidfdinfo(pid, fd, flavor, (&mut out as *mut T).cast(), size) };
    if n == size {
        Ok(out)
    } else if n <= 0 {
        Err(last_error())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("proc_pidfdinfo flavor {flavor}: {n} of {size} bytes"),
        ))
    }
}

/// A list-returning `proc_pidinfo` flavor: ask for the size, add room for
/// growth, read, keep what was written.
fn pid_info_list<T: Pod>(pid: i32, flavor: c_int) -> io::Result<Vec<T>> {
    // SAFETY: a null buffer of size 0 asks only for the bytes needed.
    let need = unsafe { libc::proc_pidinfo(pid, flavor, 0, ptr::null_mut(), 0) };
    // Success always reports room (XNU adds slack for new descriptors), so
    // zero is a failure with errno set.
    if need <= 0 {
        return Err(last_error());
    }
    let count = need as usize / size_of::<T>() + 32;
    let mut items = vec![T::zeroed(); count];
    let bytes = (count * size_of::<T>()) as c_int;
    // SAFETY: `items` is writable for `bytes` bytes of Pod values; the
    // kernel returns how many bytes it wrote, at most `bytes`.
    let n = unsafe { libc::proc_pidinfo(pid, flavor, 0, items.as_mut_ptr().cast(), bytes) };
    if n <= 0 {
        return Err(last_error());
    }
    items.truncate(n as usize / size_of::<T>());
    Ok(items)
}

pub fn list_fds(pid: i32) -> io::Result<Vec<proc_fdinfo>> {
    pid_info_list(pid, PROC_PIDLISTFDS)
}

/// Thread handles, for `PROC_PIDTHREADINFO`.
pub fn list_threads(pid: i32) -> io::Result<Vec<u64>> {
    pid_info_list(pid, PROC_PIDLISTTHREADS)
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
