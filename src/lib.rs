//! semleak: find IPC resource leaks. Data flows one way:
//! collect (crate `semleak-platform`) → [`analyze`] → [`report`], with
//! [`commands`] on top. Every import points down this list:
//!
//! `commands` → `cli` → `report` → `suppress` → `analyze` → `exit` → `input`
//!
//! (`docs/ARCHITECTURE.md`; a test keeps it so).

pub mod analyze;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod input;
pub mod report;
pub mod suppress;

pub use semleak_platform as platform;
