//! What libproc and `KERN_PROCARGS2` answer, read as XNU's sources define
//! it, and the decisions taken on each answer (failure or empty, whole or
//! cut, grow and retry) as pure functions tested on every OS. `ffi.rs`
//! makes the calls and hands the numbers here.
//!
//! libproc (`libsyscall/wrappers/libproc/libproc.c`) turns the system
//! call's −1 into 0, so a 0 from `proc_listallpids`, `proc_pidinfo` or
//! `proc_pidfdinfo` is a failure or an empty answer depending on the call;
//! `errno` is set only by a failure, so callers clear it first.

use std::collections::HashSet;
use std::io;

/// `errno` as an error, or `what` when a failure left errno at 0.
pub fn os_error(errno: i32, what: &str) -> io::Error {
    if errno != 0 {
        io::Error::from_raw_os_error(errno)
    } else {
        io::Error::other(what.to_string())
    }
}

/// An answer that is never 0 on success: `proc_listallpids` (pids
/// written, or with a null buffer the count to allow for, `nprocs + 20`;
/// a real list holds at least launchd and the caller) and the size query
/// of `PROC_PIDLISTFDS` (`(nfiles + 20)` entries). libproc returns 0,
/// never −1, on failure (EPERM in a sandbox), so 0 is a failure.
pub fn nonzero_answer(ret: i32, errno: i32, call: &str) -> io::Result<usize> {
    if ret > 0 {
        Ok(ret as usize)
    } else {
        Err(os_error(errno, &format!("{call} answered 0 (refused)")))
    }
}

/// A list flavor of `proc_pidinfo` read into a buffer (`PROC_PIDLISTFDS`,
/// `PROC_PIDLISTTHREADIDS`): bytes written. A process with no open
/// descriptors legitimately writes 0 bytes, so 0 with `errno` still clear
/// (the caller cleared it) is an empty list, and 0 with `errno` set is the
/// failure libproc hides.
pub fn list_bytes(ret: i32, errno: i32) -> io::Result<usize> {
    match ret {
        n if n > 0 => Ok(n as usize),
        0 if errno == 0 => Ok(0),
        _ => Err(os_error(errno, "proc_pidinfo failed")),
    }
}

/// A list read whole, or cut at the cap.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdList {
    /// Distinct ids in the kernel's order.
    pub ids: Vec<u64>,
    /// The list still filled the buffer at the cap: there may be more.
    pub capped: bool,
}

/// Items added to the expected count so a list that grew between the
/// count and the read still fits.
pub const LIST_SLACK: usize = 16;

/// Read a list of 64-bit handles from a call that fills at most the
/// buffer and reports the items it wrote, with no usable size query:
/// `PROC_PIDLISTTHREADS` answers a null buffer with ENOMEM
/// (`buffersize < PROC_PIDLISTTHREADS_SIZE`, `proc_info.c`), which libproc
/// turns into 0. Start from the expected count (`pti_threadnum`) plus
/// slack, double while an answer fills the buffer (more may exist), stop
/// at `cap` items. Handles are de-duplicated: threads that share a
/// `cthread_self` are listed once each but answer as one.
pub fn read_id_list(
    expected: usize,
    cap: usize,
    mut call: impl FnMut(&mut [u64]) -> io::Result<usize>,
) -> io::Result<IdList> {
    let cap = cap.max(1);
    let mut len = (expected + LIST_SLACK).min(cap);
    loop {
        let mut buf = vec![0u64; len];
        let written = call(&mut buf)?.min(len);
        let full = written == len;
        if !full || len == cap {
            buf.truncate(written);
            let mut seen = HashSet::with_capacity(buf.len());
            buf.retain(|id| seen.insert(*id));
            return Ok(IdList {
                ids: buf,
                capped: full,
            });
        }
        len = (len * 2).min(cap);
    }
}

/// The buffer to read `KERN_PROCARGS2` into, from the answer of a size
/// query (a null buffer returns the string area's length plus the 4-byte
/// argc, rounded up to 4). One more int makes a whole answer always
/// shorter than the buffer (see [`procargs_whole`]). `None` when it cannot
/// be read: the kernel refuses a buffer whose length less the argc word
/// passes ARG_MAX (`sysctl_procargsx`: `buflen > ARG_MAX` is EINVAL).
pub fn procargs_buffer_len(size_query: usize, arg_max: usize) -> Option<usize> {
    if size_query < 4 || size_query > arg_max {
        return None;
    }
    Some(size_query + 4)
}

/// Is a `KERN_PROCARGS2` answer of `returned` bytes, read into a buffer of
/// `buffer` bytes, the whole string area? When the buffer is too short
/// (the process exec'd a longer command line since the size query) the
/// kernel copies out the area's *tail* (`data = copy_end - buflen`), which
/// fills the buffer exactly and parses as garbage; a whole answer is
/// shorter than the buffer sized by [`procargs_buffer_len`].
pub fn procargs_whole(returned: usize, buffer: usize) -> bool {
    returned < buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPERM: i32 = 1;
    const ENOMEM: i32 = 12;

    #[test]
    fn listallpids_zero_is_a_failure_not_an_empty_host() {
        // Sandboxed: __proc_info fails with EPERM and libproc returns 0.
        let err = nonzero_answer(0, EPERM, "proc_listallpids").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(EPERM));
        // Even with errno lost, 0 is not "no processes".
        let err = nonzero_answer(0, 0, "proc_listallpids").unwrap_err();
        assert!(err.to_string().contains("proc_listallpids"), "{err}");
        assert_eq!(nonzero_answer(412, 0, "proc_listallpids").unwrap(), 412);
    }

    #[test]
    fn fd_list_of_zero_with_errno_clear_is_empty() {
        assert_eq!(list_bytes(0, 0).unwrap(), 0);
        assert_eq!(
            list_bytes(0, EPERM).unwrap_err().raw_os_error(),
            Some(EPERM)
        );
        assert_eq!(list_bytes(64, 0).unwrap(), 64);
        assert!(list_bytes(-1, 0).is_err());
    }

    /// `proc_pidlistthreads` as XNU writes it: ENOMEM below 8 bytes,
    /// otherwise `min(threads, buffer)` handles in list order.
    fn xnu_list_threads(threads: &[u64]) -> impl FnMut(&mut [u64]) -> io::Result<usize> + '_ {
        move |buf: &mut [u64]| {
            if buf.len() * 8 < 8 {
                return Err(io::Error::from_raw_os_error(ENOMEM));
            }
            let n = threads.len().min(buf.len());
            buf[..n].copy_from_slice(&threads[..n]);
            Ok(n)
        }
    }

    #[test]
    fn thread_list_is_sized_from_threadnum_grows_and_dedups() {
        let threads: Vec<u64> = (1..=40).collect();
        // Counted right: one read.
        let mut calls = 0;
        let mut counting = xnu_list_threads(&threads);
        let got = read_id_list(40, 4096, |b| {
            calls += 1;
            counting(b)
        })
        .unwrap();
        assert_eq!(got.ids, threads);
        assert!(!got.capped);
        assert_eq!(calls, 1);
        // Threads were started after pti_threadnum was read: grow.
        let got = read_id_list(3, 4096, xnu_list_threads(&threads)).unwrap();
        assert_eq!(got.ids.len(), 40);
        // No size query: even a count of 0 reads (a null buffer is ENOMEM).
        assert_eq!(
            read_id_list(0, 4096, xnu_list_threads(&threads))
                .unwrap()
                .ids
                .len(),
            40
        );
        // Shared cthread_self handles collapse to one.
        let shared = [7, 7, 9, 0, 0];
        let got = read_id_list(5, 4096, xnu_list_threads(&shared)).unwrap();
        assert_eq!(got.ids, vec![7, 9, 0]);
        // The cap holds and says so.
        let many: Vec<u64> = (1..=10_000).collect();
        let got = read_id_list(100, 256, xnu_list_threads(&many)).unwrap();
        assert_eq!(got.ids.len(), 256);
        assert!(got.capped);
        // A failure is a failure.
        assert!(read_id_list(1, 8, |_| Err(io::Error::from_raw_os_error(EPERM))).is_err());
    }

    /// A `KERN_PROCARGS2` answer as `sysctl_procargsx` builds it for a
    /// string area `area` and a caller buffer of `buffer` bytes.
    fn xnu_procargs(argc: i32, area: &[u8], buffer: usize) -> Vec<u8> {
        let buflen = buffer - 4;
        let data = if buflen >= area.len() {
            area
        } else {
            &area[area.len() - buflen..] // the tail
        };
        let mut out = argc.to_ne_bytes().to_vec();
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn procargs_short_buffer_returns_the_tail_and_is_not_parsed() {
        let area: &[u8] = b"/usr/bin/python3\0\0\0\0python3\0-c\0from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)\0--multiprocessing-fork\0";
        let query = (area.len() + 4).next_multiple_of(4);
        let len = procargs_buffer_len(query, 1 << 20).unwrap();
        let whole = xnu_procargs(4, area, len);
        assert!(procargs_whole(whole.len(), len));
        let args = crate::macos::parse::parse_procargs2(&whole).unwrap();
        assert_eq!(args.argv.len(), 4);

        // The process exec'd a longer command line after the size query:
        // the answer is the tail and fills the buffer.
        let longer = [area, b"--and-more-args\0".as_slice()].concat();
        let cut = xnu_procargs(5, &longer, len);
        assert_eq!(cut.len(), len);
        assert!(
            !procargs_whole(cut.len(), len),
            "a tail is not a command line"
        );

        // Nothing fits past ARG_MAX (the kernel says EINVAL).
        assert_eq!(procargs_buffer_len(2 << 20, 1 << 20), None);
        assert_eq!(procargs_buffer_len(0, 1 << 20), None);
    }

    /// A byte buffer from `tests/fixtures/macos/buffers` (see its README).
    fn buffer(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/macos/buffers")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn truncated_procargs2_fixture_is_an_unknown_command_line() {
        // Both read into the 160-byte buffer sized from a 156-byte query.
        let len = procargs_buffer_len(156, 1 << 20).unwrap();
        assert_eq!(len, 160);
        let whole = buffer("procargs2-whole");
        assert!(procargs_whole(whole.len(), len));
        let args = crate::macos::parse::parse_procargs2(&whole).unwrap();
        assert_eq!(args.argv[3].to_lossy(), "--multiprocessing-fork");
        let tail = buffer("procargs2-tail");
        assert!(!procargs_whole(tail.len(), len));
        // What parsing the tail would have claimed: a wrong executable.
        let garbage = crate::macos::parse::parse_procargs2(&tail).unwrap();
        assert_ne!(garbage.exec_path.to_lossy(), "/usr/local/bin/python3.11");
    }

    #[test]
    fn posix_sem_max_fixture_is_a_64_bit_long() {
        let raw = buffer("kern.posix.sem.max");
        assert_eq!(raw.len(), 8);
        assert_eq!(crate::macos::parse::parse_sysctl_uint(&raw), Some(10_000));
    }
}
