//! `semleak scan`: collect, analyze, suppress, render; the exit status says
//! whether anything reached `--fail-on`.

use semleak_platform::collect;

use super::{collect_options, emit, load_suppressor, note_suppressed, suppress, Ui};
use crate::analyze;
use crate::cli::{CollectArgs, ProbeArgs, RuleArgs, ScanArgs};
use crate::exit::{AppError, EXIT_FINDINGS, EXIT_OK};
use crate::report::Report;
use crate::suppress::Suppressor;

pub fn scan(args: &ScanArgs, ui: &Ui) -> Result<i32, AppError> {
    let suppressor = load_suppressor(&args.suppress)?;
    let report = scan_report(&args.collect, &args.probe, &args.rules, &suppressor)?;
    emit(&report, &args.output, ui)?;
    note_suppressed(&report, args.output.format);
    Ok(if args.output.fail_on.fails(report.worst()) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

/// Collect, analyze and suppress once: the report of `scan` (and of each
/// `exporter` scrape).
pub fn scan_report(
    collect_args: &CollectArgs,
    probe: &ProbeArgs,
    rules: &RuleArgs,
    suppressor: &Suppressor,
) -> Result<Report, AppError> {
    let mut opts = collect_options(collect_args, probe)?;
    opts.thread_names_min_threads = rules.thread_names_min_threads();
    let snapshot = collect(&opts)?;
    let mut findings = analyze::analyze(&snapshot, &rules.config());
    super::namespace::mark_foreign_pids(&mut findings, &opts.proc_root);
    let (findings, suppressed) = suppress(suppressor, &snapshot, findings);
    let mut report = Report::new("scan", &snapshot, findings);
    report.suppressed = suppressed;
    Ok(report)
}
