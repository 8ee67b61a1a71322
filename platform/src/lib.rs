//! semleak-platform: all OS access for semleak. `collect()` returns a
//! [`Snapshot`] of owned data; nothing OS-specific leaks out of this crate.
//!
//! Pure parsers ([`parse`], [`macos_parse`]) build and are tested on every OS;
//! only file access and FFI sit behind `#[cfg(target_os = …)]`.

pub mod actions;
#[cfg(unix)]
pub mod control;
pub mod error;
pub mod macos_abi;
pub mod macos_parse;
pub mod model;
pub mod parse;
pub mod rawname;
pub mod self_channels;
pub mod sock_diag;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;

use std::path::PathBuf;
use std::time::Duration;

pub use error::CollectError;
pub use model::*;
pub use rawname::{escape_for_terminal, RawName};

/// Where and how to collect.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Root of the proc filesystem (Linux), `/proc` by default; tests point
    /// it at fixture trees.
    pub proc_root: PathBuf,
    /// Shared-memory directory; `None` means the OS default (`/dev/shm`),
    /// whose absence is noted rather than fatal.
    pub shm_dir: Option<PathBuf>,
    /// Window between the two fill-level samples of wakeup channels;
    /// zero disables channel sampling.
    pub sample_window: Duration,
    /// Semaphore names to probe with `sem_open(name, 0)` where the OS cannot
    /// list them (macOS).
    pub probe_names: Vec<RawName>,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            proc_root: PathBuf::from("/proc"),
            shm_dir: None,
            sample_window: Duration::from_millis(300),
            probe_names: Vec::new(),
        }
    }
}

pub const DEFAULT_SHM_DIR: &str = "/dev/shm";

/// Map `f` over `items` on a few threads, keeping order. Per-process reads
/// are syscall-bound and independent, and a busy host has thousands.
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let chunk = items.len().div_ceil(workers).max(64);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Collect a Snapshot of this host.
#[cfg(target_os = "linux")]
pub fn collect(opts: &CollectOptions) -> Result<Snapshot, CollectError> {
    linux::collect(opts)
}

/// Collect a Snapshot of this host.
#[cfg(target_os = "macos")]
pub fn collect(opts: &CollectOptions) -> Result<Snapshot, CollectError> {
    macos::collect(opts)
}

/// Collect a Snapshot of this host.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn collect(_opts: &CollectOptions) -> Result<Snapshot, CollectError> {
    Err(CollectError::Unsupported(std::env::consts::OS))
}
