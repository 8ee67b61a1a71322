//! What to collect and from where: the options every backend reads.

use std::path::PathBuf;
use std::time::Duration;

use crate::rawname::RawName;

/// Where and how to collect.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Root of the proc filesystem (Linux), `/proc` by default; tests point
    /// it at fixture trees.
    pub proc_root: PathBuf,
    /// Shared-memory directory; `None` means the OS default (`/dev/shm`),
    /// whose absence is noted rather than fatal.
    pub shm_dir: Option<PathBuf>,
    /// Accept a `shm_dir` that is not a tmpfs or ramfs (fixture trees).
    pub allow_non_tmpfs: bool,
    /// Window across which wakeup channels are sampled (start and end;
    /// four looks, with the main thread, at a channel holding bytes);
    /// zero disables channel sampling.
    pub sample_window: Duration,
    /// Semaphore names to probe with `sem_open(name, 0)` where the OS cannot
    /// list them (macOS).
    pub probe_names: Vec<RawName>,
    /// Thread names are read only for processes with at least this many
    /// threads (the thread pile-up threshold; a pile-up needs that many
    /// same-named threads besides the main one). 2 reads them all.
    pub thread_names_min_threads: u32,
}

/// The thread pile-up rule's default threshold.
pub const DEFAULT_THREAD_NAMES_MIN_THREADS: u32 = 16;

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            proc_root: PathBuf::from("/proc"),
            shm_dir: None,
            allow_non_tmpfs: false,
            sample_window: Duration::from_millis(300),
            probe_names: Vec::new(),
            thread_names_min_threads: DEFAULT_THREAD_NAMES_MIN_THREADS,
        }
    }
}

pub const DEFAULT_SHM_DIR: &str = "/dev/shm";
