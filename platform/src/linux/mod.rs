//! All Linux code. The pure parts — procfs text parsers, the sock_diag
//! request and reply parser, self-channel pairing — build on every OS so
//! their tests run everywhere; file access and system calls sit behind
//! `#[cfg(target_os = "linux")]`.

pub mod cgroup;
pub mod parse;
pub mod procmap;
pub mod self_channels;
pub mod sock_diag;

#[cfg(target_os = "linux")]
mod channels;
#[cfg(target_os = "linux")]
mod collect;
#[cfg(target_os = "linux")]
pub(crate) mod holders;
#[cfg(target_os = "linux")]
pub(crate) mod procs;
#[cfg(target_os = "linux")]
pub(crate) mod procview;
#[cfg(target_os = "linux")]
mod shm;
#[cfg(target_os = "linux")]
pub(crate) mod signal;
#[cfg(target_os = "linux")]
pub(crate) mod supervise;
#[cfg(target_os = "linux")]
pub(crate) mod unlink;
#[cfg(target_os = "linux")]
pub(crate) mod watch;

#[cfg(target_os = "linux")]
pub use collect::collect;
