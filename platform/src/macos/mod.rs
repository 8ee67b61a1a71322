//! macOS backend: sysctl and libproc.

use crate::model::Snapshot;
use crate::{CollectError, CollectOptions};

pub fn collect(_opts: &CollectOptions) -> Result<Snapshot, CollectError> {
    Err(CollectError::Unsupported("macos"))
}
