//! Exit codes and the top-level error every command returns. It imports
//! nothing from above; modules below `commands` that have errors of their
//! own convert them into [`AppError`] where they are defined.

use std::io;
use std::path::PathBuf;

use semleak_platform::CollectError;

/// Exit status: nothing at or above `--fail-on`.
pub const EXIT_OK: i32 = 0;
/// Exit status: findings at or above `--fail-on`.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit status: usage error, bad input or internal failure.
pub const EXIT_ERROR: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// The OS error is not in the message: `main` prints the chain (`{:#}`),
    /// so naming it here too printed it twice.
    #[error("cannot read snapshot {}", path.display())]
    ReadSnapshot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a semleak snapshot: {source}", path.display())]
    ParseSnapshot {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("snapshot {} has format {found}; this semleak reads format {expected}", path.display())]
    SnapshotFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("cannot read probe names {}", path.display())]
    ReadProbeNames {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A typed error of a module below the commands (allowlists, the gate),
    /// kept whole so its message and source chain print as they are.
    #[error(transparent)]
    Module(Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The source is not in the message: `main` prints the chain.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
