//! `semleak snapshot`: the raw collected Snapshot as JSON.

use std::fs;

use super::{collect_options, write_stdout};
use crate::cli::SnapshotArgs;
use crate::exit::{AppError, EXIT_OK};

pub fn snapshot(args: &SnapshotArgs) -> Result<i32, AppError> {
    let snapshot = semleak_platform::collect(&collect_options(&args.collect)?)?;
    let mut text = serde_json::to_string_pretty(&snapshot).expect("a Snapshot always serialises");
    text.push('\n');
    match &args.output {
        Some(path) => fs::write(path, text).map_err(|source| AppError::Write {
            path: path.clone(),
            source,
        })?,
        None => write_stdout(&text)?,
    }
    Ok(EXIT_OK)
}
