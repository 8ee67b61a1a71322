//! `semleak snapshot`: the raw collected Snapshot as JSON.

use std::fs;

use super::{collect_options, stream_stdout};
use crate::cli::SnapshotArgs;
use crate::exit::{AppError, EXIT_OK};
use crate::report::json;

pub fn snapshot(args: &SnapshotArgs) -> Result<i32, AppError> {
    let snapshot = semleak_platform::collect(&collect_options(&args.collect)?)?;
    // Streamed: the Snapshot of a busy host is megabytes of JSON.
    match &args.output {
        Some(path) => fs::File::create(path)
            .and_then(|f| {
                let mut out = std::io::BufWriter::new(f);
                json::write_value(&snapshot, &mut out)?;
                std::io::Write::flush(&mut out)
            })
            .map_err(|source| AppError::Write {
                path: path.clone(),
                source,
            })?,
        None => stream_stdout(|out| json::write_value(&snapshot, out))?,
    }
    Ok(EXIT_OK)
}
