//! `semleak analyze FILE`: the rules over a saved Snapshot (`-` for stdin),
//! so a snapshot attached to a bug report is analysed anywhere; baselines
//! and allowlists apply as in `scan`.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use semleak_platform::Snapshot;

use super::{emit, load_suppressor, note_suppressed, suppress, Ui};
use crate::analyze;
use crate::cli::AnalyzeArgs;
use crate::exit::{AppError, EXIT_FINDINGS, EXIT_OK};
use crate::report::Report;

pub fn analyze_file(args: &AnalyzeArgs, ui: &Ui) -> Result<i32, AppError> {
    let suppressor = load_suppressor(&args.suppress)?;
    let snapshot = load_snapshot(&args.snapshot)?;
    let findings = analyze::analyze(&snapshot, &args.rules.config());
    let (findings, suppressed) = suppress(&suppressor, &snapshot, findings);
    let mut report = Report::new("analyze", &snapshot, findings);
    report.suppressed = suppressed;
    emit(&report, args.output.format, ui)?;
    note_suppressed(&report, args.output.format);
    Ok(if args.output.fail_on.fails(report.worst()) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

pub fn load_snapshot(path: &Path) -> Result<Snapshot, AppError> {
    let read_err = |source| AppError::ReadSnapshot {
        path: path.to_path_buf(),
        source,
    };
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        io::stdin().read_to_string(&mut s).map_err(read_err)?;
        s
    } else {
        fs::read_to_string(path).map_err(read_err)?
    };
    let snapshot: Snapshot =
        serde_json::from_str(&text).map_err(|source| AppError::ParseSnapshot {
            path: path.to_path_buf(),
            source,
        })?;
    if snapshot.format != semleak_platform::SNAPSHOT_FORMAT {
        return Err(AppError::SnapshotFormat {
            path: path.to_path_buf(),
            found: snapshot.format,
            expected: semleak_platform::SNAPSHOT_FORMAT,
        });
    }
    Ok(snapshot)
}
