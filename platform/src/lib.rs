//! semleak-platform: all OS access for semleak. `collect()` returns a
//! [`Snapshot`] of owned data; nothing OS-specific leaks out of this crate.
//!
//! - [`model`], [`rawname`], [`error`]: the Snapshot and its types (no OS types).
//! - [`linux`], [`macos`]: each OS's code in one folder. Their pure parsers
//!   build and are tested on every OS; only file access and FFI sit behind
//!   `#[cfg(target_os = …)]`.
//! - [`control`]: process control for `run` and `clean` (subreaper, signals
//!   checked by start time, re-checked unlink), dispatching to the OS folders.

#[cfg(unix)]
pub mod control;
#[cfg(unix)]
pub mod control_types;
pub mod error;
pub mod linux;
pub mod macos;
pub mod model;
mod options;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod parallel;
pub mod rawname;

pub use error::CollectError;
pub use model::*;
pub use options::{CollectOptions, DEFAULT_SHM_DIR, DEFAULT_THREAD_NAMES_MIN_THREADS};
pub use rawname::{escape_for_terminal, is_hidden_or_control, RawName};

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
