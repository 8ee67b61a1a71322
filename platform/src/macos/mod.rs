//! All macOS code. The pure parts — XNU's libproc structures laid out by
//! hand with their size tests (`abi`), the decoding of sysctl and libproc
//! buffers (`parse`), and what each libproc answer means (`libproc`) —
//! build on every OS so their tests run everywhere; the system calls sit
//! behind `#[cfg(target_os = "macos")]`.

pub mod abi;
pub mod libproc;
pub mod parse;

#[cfg(target_os = "macos")]
mod collect;
#[cfg(target_os = "macos")]
pub(crate) mod control;
#[cfg(target_os = "macos")]
mod ffi;

#[cfg(target_os = "macos")]
pub use collect::collect;
