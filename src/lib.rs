//! semleak: find IPC resource leaks. Data flows one way:
//! collect (crate `semleak-platform`) → [`analyze`] → [`report`].

pub mod analyze;
pub mod app;
pub mod clean;
pub mod cli;
pub mod duration;
pub mod gate;
pub mod report;
pub mod suppress;

pub use semleak_platform as platform;
