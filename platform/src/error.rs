//! Why a collection could not produce a Snapshot at all.

use std::path::PathBuf;

/// Why a collection could not produce a Snapshot at all. Per-process and
/// per-entry problems are not errors: they go into the Snapshot's visibility.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error(
        "{} is not a tmpfs (filesystem type {fs_type:#x}): semleak lists and cleans only \
         shared-memory filesystems; --allow-non-tmpfs accepts a fixture tree",
        path.display()
    )]
    NotTmpfs { path: PathBuf, fs_type: u64 },
    #[error("collection is not supported on {0}")]
    Unsupported(&'static str),
}

impl CollectError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CollectError::Io {
            path: path.into(),
            source,
        }
    }
}
