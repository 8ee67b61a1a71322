//! `semleak scan`: collect, analyze, suppress, render; the exit status says
//! whether anything reached `--fail-on`.

use semleak_platform::collect;

use super::{collect_options, emit, load_suppressor};
use crate::analyze;
use crate::cli::{Format, ScanArgs};
use crate::exit::{AppError, EXIT_FINDINGS, EXIT_OK};
use crate::report::Report;

pub fn scan(args: &ScanArgs) -> Result<i32, AppError> {
    let suppressor = load_suppressor(&args.suppress)?;
    let mut opts = collect_options(&args.collect)?;
    opts.thread_names_min_threads = args.rules.thread_names_min_threads();
    let snapshot = collect(&opts)?;
    let mut findings = analyze::analyze(&snapshot, &args.rules.config());
    super::namespace::mark_foreign_pids(&mut findings, &opts.proc_root);
    let cmdline_of = |pid: i32| {
        snapshot
            .processes
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| p.command_line())
    };
    let (findings, suppressed) = suppressor.apply(findings, &cmdline_of);
    let mut report = Report::new("scan", &snapshot, findings);
    report.suppressed = suppressed;
    emit(&report, args.output.format)?;
    if report.suppressed.total() > 0 && args.output.format == Format::Table {
        eprintln!(
            "semleak: {} finding(s) suppressed ({} by baseline, {} by allowlist)",
            report.suppressed.total(),
            report.suppressed.baseline,
            report.suppressed.allowlist
        );
    }
    Ok(if args.output.fail_on.fails(report.worst()) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}
