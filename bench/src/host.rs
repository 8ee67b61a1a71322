//! The benchmark host: real processes each holding named semaphores,
//! semaphores nobody holds, and zombies under a parent that never reaps.
//! Everything is named `semleak-bench-PID-*`, every process started is
//! killed by its pid, every name unlinked — on return, panic, SIGINT,
//! SIGTERM or SIGHUP — and the children die with the benchmark
//! (`PR_SET_PDEATHSIG`) if it is killed outright.

use std::ffi::CString;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGINT/SIGTERM/SIGHUP: stop measuring and tear down.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Catch the stop signals and become a subreaper, so the zombies come back
/// to us (and are reaped) when their parent is killed.
pub fn prepare() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only stores to an atomic.
        let rc = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        if rc == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub struct Host {
    prefix: String,
    /// Every process we forked (holders and the zombies' parent).
    pids: Vec<libc::pid_t>,
    /// Every semaphore name created (held or not), for sem_unlink.
    names: Vec<CString>,
    pub holders: usize,
    pub zombies: usize,
    pub unheld: usize,
    pub per_holder: usize,
}

/// Create a semaphore and close it at once: it stays, held by nobody.
fn sem_create_unheld(name: &CString) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; sem_open with O_CREAT takes mode and value.
    let sem = unsafe { libc::sem_open(name.as_ptr(), libc::O_CREAT, 0o600 as libc::c_uint, 1) };
    if sem == libc::SEM_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a semaphore sem_open just returned, closed once.
    unsafe { libc::sem_close(sem) };
    Ok(())
}

/// Give this process (and so every child it forks) the address-space
/// shape of a CPython multiprocessing worker: `lines` maps lines, most of
/// them private file mappings, as its shared libraries and extension
/// modules give it. Single pages of our own executable at every other
/// offset, so no two merge; inherited by fork, they cost no memory.
pub fn shape_address_space(lines: usize) -> io::Result<()> {
    let now = std::fs::read_to_string("/proc/self/maps")?.lines().count();
    let file = std::fs::File::open(std::env::current_exe()?)?;
    let pages = file.metadata()?.len() / 4096;
    let wanted = lines.saturating_sub(now) as u64;
    for i in 0..wanted.min(pages / 2) {
        // SAFETY: a private read-only mapping of one page of a file we
        // opened; never unmapped, never written.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                (i * 2 * 4096) as libc::off_t,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Maps lines of a CPython worker that imported multiprocessing and
/// ctypes, measured now if python3 is here.
pub fn python_worker_maps_lines() -> usize {
    std::process::Command::new("python3")
        .args([
            "-c",
            "import multiprocessing, ctypes; print(sum(1 for _ in open('/proc/self/maps')))",
        ])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(136)
}

impl Host {
    pub fn new(per_holder: usize) -> Self {
        Host {
            prefix: format!("/semleak-bench-{}-", std::process::id()),
            pids: Vec::new(),
            names: Vec::new(),
            holders: 0,
            zombies: 0,
            unheld: 0,
            per_holder,
        }
    }

    fn name(&self, tail: &str) -> CString {
        CString::new(format!("{}{tail}", self.prefix)).expect("no NUL in names")
    }

    /// Semaphores created and closed at once: nobody holds them.
    pub fn add_unheld(&mut self, n: usize) -> io::Result<()> {
        for _ in 0..n {
            let name = self.name(&format!("u{}", self.unheld));
            self.names.push(name.clone());
            sem_create_unheld(&name)?;
            self.unheld += 1;
        }
        Ok(())
    }

    /// Fork a child that runs `body`, then blocks until killed. It dies
    /// with us and writes one byte to `ready` when set up.
    fn fork(
        &mut self,
        (wait, ready): (libc::c_int, libc::c_int),
        body: impl FnOnce(),
    ) -> io::Result<()> {
        // SAFETY: this process is single-threaded when it forks (the tools
        // it times run as separate processes), so the child may run
        // ordinary code before it pauses.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                // SAFETY: plain system calls in the child; it never returns.
                unsafe {
                    // Never both ends of one pipe: that would be a
                    // self-pipe for semleak to sample.
                    libc::close(wait);
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                    body();
                    libc::write(ready, b"x".as_ptr().cast(), 1);
                    libc::close(ready);
                    loop {
                        libc::pause();
                    }
                }
            }
            pid => {
                self.pids.push(pid);
                Ok(())
            }
        }
    }

    /// Grow to `n` holder processes, each mapping `per_holder` semaphores.
    pub fn grow_holders(&mut self, n: usize) -> io::Result<()> {
        let ends = pipe()?;
        let mut started = 0;
        while self.holders < n && !STOP.load(Ordering::SeqCst) {
            let names: Vec<CString> = (0..self.per_holder)
                .map(|k| self.name(&format!("h{}-{k}", self.holders)))
                .collect();
            self.names.extend(names.iter().cloned());
            self.fork(ends, || {
                for name in &names {
                    // SAFETY: as in sem_create; the mapping is kept.
                    unsafe {
                        libc::sem_open(name.as_ptr(), libc::O_CREAT, 0o600 as libc::c_uint, 1)
                    };
                }
            })?;
            self.holders += 1;
            started += 1;
        }
        wait_ready(ends, started)
    }

    /// One parent that forks `n` children which exit at once, and never reaps them.
    pub fn add_zombies(&mut self, n: usize) -> io::Result<()> {
        let ends = pipe()?;
        self.fork(ends, || {
            for _ in 0..n {
                // SAFETY: the grandchild exits immediately.
                if unsafe { libc::fork() } == 0 {
                    unsafe { libc::_exit(0) };
                }
            }
            // Give them time to exit so the host is complete when we say ready.
            std::thread::sleep(std::time::Duration::from_millis(200));
        })?;
        self.zombies += n;
        wait_ready(ends, 1)
    }

    /// Kill every process we started, reap everything that comes back to
    /// us (we are a subreaper), unlink every name.
    pub fn teardown(&mut self) {
        for &pid in &self.pids {
            // SAFETY: signals only pids we forked and have not reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Reap until no child is left (our forks and their reparented zombies).
        loop {
            // SAFETY: waitpid on any child; we own all of them.
            let rc = unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) };
            if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
        self.pids.clear();
        for name in self.names.drain(..) {
            // SAFETY: NUL-terminated name of a semaphore we created.
            unsafe { libc::sem_unlink(name.as_ptr()) };
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn pipe() -> io::Result<(libc::c_int, libc::c_int)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// Read one byte per started child, so every child is set up on return.
fn wait_ready((read_end, write_end): (libc::c_int, libc::c_int), n: usize) -> io::Result<()> {
    // SAFETY: our copy of the write end; children keep theirs until ready.
    unsafe { libc::close(write_end) };
    let mut buf = [0u8; 256];
    let mut got = 0;
    while got < n {
        // SAFETY: reads into a live buffer.
        let r = unsafe { libc::read(read_end, buf.as_mut_ptr().cast(), buf.len()) };
        match r {
            0 => break, // every child closed its end: some failed to start
            r if r < 0 => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
                if STOP.load(Ordering::SeqCst) {
                    break;
                }
            }
            r => got += r as usize,
        }
    }
    // SAFETY: our read end, not used after this.
    unsafe { libc::close(read_end) };
    Ok(())
}
