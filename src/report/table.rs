//! Human-readable output: a one-line verdict, then a table per kind of
//! finding, what to do, and what was (not) seen.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use comfy_table::{presets, Cell, ContentArrangement, Table};

use super::clean::{Plan, Status};
use super::{term, Report};
use crate::analyze::{Finding, Kind, Severity};

/// Rows shown per kind; the JSON report always has everything.
pub const MAX_ROWS_PER_KIND: usize = 50;
const MAX_CLEANUP_LINES: usize = 10;

pub struct TableOptions {
    /// Wrap cells to the terminal's width (only when stdout is a terminal;
    /// pipes and files get unwrapped, stable output).
    pub wrap: bool,
}

pub fn render(report: &Report, opts: &TableOptions) -> String {
    let mut out = String::new();
    out.push_str(&verdict(report));
    out.push('\n');

    let mut groups: BTreeMap<Kind, Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        groups.entry(f.kind).or_default().push(f);
    }
    let mut ordered: Vec<(Kind, Vec<&Finding>)> = groups.into_iter().collect();
    ordered.sort_by_key(|(kind, fs)| {
        (
            std::cmp::Reverse(fs.iter().map(|f| f.severity).max()),
            *kind,
        )
    });
    for (kind, findings) in ordered {
        out.push('\n');
        let _ = writeln!(out, "{} ({})", kind.title(), findings.len());
        out.push_str(&group_table(&findings, opts));
        out.push('\n');
        let mut recs: Vec<&str> = findings.iter().map(|f| f.recommendation.as_str()).collect();
        recs.sort_unstable();
        recs.dedup();
        for rec in recs.into_iter().filter(|r| !r.is_empty()) {
            let _ = writeln!(out, "  fix: {}", term(rec));
        }
        let cleanup: Vec<&String> = findings.iter().flat_map(|f| f.cleanup.iter()).collect();
        if !cleanup.is_empty() {
            out.push_str("  cleanup:\n");
            for c in cleanup.iter().take(MAX_CLEANUP_LINES) {
                let _ = writeln!(out, "    {}", term(c));
            }
            if cleanup.len() > MAX_CLEANUP_LINES {
                let _ = writeln!(
                    out,
                    "    … {} more (see --format json, or `semleak clean`)",
                    cleanup.len() - MAX_CLEANUP_LINES
                );
            }
        }
    }

    out.push('\n');
    out.push_str(&inventory_line(report));
    out.push_str(&visibility_lines(report));
    out
}

fn verdict(report: &Report) -> String {
    let s = &report.summary;
    let host = term(&report.host.hostname);
    if report.findings.is_empty() {
        return format!(
            "OK: no leaks found on {host} ({} processes, {} semaphores)",
            report.visibility.processes_total,
            report.inventory.semaphores.len()
        );
    }
    let label = match report.worst() {
        Some(Severity::Error) => "LEAKS",
        Some(Severity::Warning) => "WARNINGS",
        _ => "NOTES",
    };
    let mut counts = Vec::new();
    for (n, word) in [
        (s.errors, "error"),
        (s.warnings, "warning"),
        (s.infos, "info"),
    ] {
        if n > 0 {
            counts.push(format!(
                "{n} {word}{}",
                if n == 1 || word == "info" { "" } else { "s" }
            ));
        }
    }
    let kinds: Vec<String> = s.by_kind.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    format!(
        "{label}: {} on {host} — {}",
        counts.join(", "),
        kinds.join(", ")
    )
}

fn group_table(findings: &[&Finding], opts: &TableOptions) -> String {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(if opts.wrap {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    });
    table.set_header(vec!["severity", "confidence", "subject", "details"]);
    for f in findings.iter().take(MAX_ROWS_PER_KIND) {
        let subject = if !f.resources.is_empty() {
            let mut r: Vec<String> = f.resources.iter().take(3).map(|r| term(r)).collect();
            if f.resources.len() > 3 {
                r.push(format!("… {} more", f.resources.len() - 3));
            }
            r.join("\n")
        } else {
            let pids: Vec<String> = f.pids.iter().take(8).map(|p| p.to_string()).collect();
            let more = if f.pids.len() > 8 {
                format!(" … {} more", f.pids.len() - 8)
            } else {
                String::new()
            };
            format!("pids {}{more}", pids.join(" "))
        };
        let mut details = term(&f.summary);
        for e in &f.evidence {
            details.push_str("\n• ");
            details.push_str(&term(e));
        }
        table.add_row(vec![
            Cell::new(f.severity.as_str()),
            Cell::new(f.confidence.as_str()),
            Cell::new(subject),
            Cell::new(details),
        ]);
    }
    let mut s = table.to_string();
    if findings.len() > MAX_ROWS_PER_KIND {
        let _ = write!(
            s,
            "\n… {} more (see --format json)",
            findings.len() - MAX_ROWS_PER_KIND
        );
    }
    s
}

fn inventory_line(report: &Report) -> String {
    // macOS has no semaphore inventory, only a count against the limit.
    if report.host.os == "macos" {
        if let Some(limits) = &report.limits.semaphores {
            let max = limits
                .max
                .map_or_else(|| "unknown".to_string(), |m| m.to_string());
            return format!(
                "Semaphores: {} in use by visible processes (kern.posix.sem.max {max}); unheld ones cannot be listed on macOS\n",
                limits.in_use
            );
        }
    }
    let sems = &report.inventory.semaphores;
    let unheld = sems.iter().filter(|s| s.holders.is_empty()).count();
    let unlinked = sems.iter().filter(|s| s.unlinked).count();
    let mut per_pid: BTreeMap<i32, usize> = BTreeMap::new();
    for s in sems {
        for p in &s.holders {
            *per_pid.entry(*p).or_default() += 1;
        }
    }
    let mut top: Vec<(i32, usize)> = per_pid.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut line = format!(
        "Semaphores: {} ({} held by no process, {} unlinked but still mapped)",
        sems.len(),
        unheld,
        unlinked
    );
    if !top.is_empty() {
        let shown: Vec<String> = top
            .iter()
            .take(5)
            .map(|(pid, n)| format!("pid {pid} ({n})"))
            .collect();
        let _ = write!(line, "; most held by {}", shown.join(", "));
    }
    line.push('\n');
    if let Some(shm) = &report.limits.shm {
        let pct = |u: u64, t: u64| {
            if t == 0 {
                0.0
            } else {
                u as f64 * 100.0 / t as f64
            }
        };
        let _ = writeln!(
            line,
            "Shared memory {}: {} of {} bytes ({:.0}%), {} of {} inodes ({:.0}%)",
            term(&shm.path),
            shm.bytes_used,
            shm.bytes_total,
            pct(shm.bytes_used, shm.bytes_total),
            shm.inodes_used,
            shm.inodes_total,
            pct(shm.inodes_used, shm.inodes_total)
        );
    }
    line
}

fn visibility_lines(report: &Report) -> String {
    let v = &report.visibility;
    let mut out = String::new();
    if v.complete {
        let _ = writeln!(
            out,
            "Visibility: complete ({} of {} processes inspected)",
            v.processes_inspected, v.processes_total
        );
    } else {
        let _ = writeln!(
            out,
            "Visibility: INCOMPLETE ({} of {} processes inspected); findings about holders are not certain",
            v.processes_inspected, v.processes_total
        );
        for s in v.skipped.iter().take(5) {
            let _ = writeln!(out, "  pid {}: {}", s.pid, term(&s.reason));
        }
        if v.skipped.len() > 5 {
            let _ = writeln!(
                out,
                "  … {} more; run as root to see every process",
                v.skipped.len() - 5
            );
        }
        for n in &v.notes {
            let _ = writeln!(out, "  {}", term(n));
        }
    }
    for e in &v.entries_skipped {
        let _ = writeln!(out, "Skipped entry {}: {}", term(&e.name), term(&e.reason));
    }
    out
}

/// `semleak run`'s stderr summary: one line about the run, then the
/// findings as tables.
pub fn render_run_summary(report: &Report, opts: &TableOptions) -> String {
    let run = report.run.as_ref().expect("run report");
    let mut cmd = run.command.join(" ");
    if cmd.chars().count() > 100 {
        cmd = cmd.chars().take(99).collect::<String>() + "…";
    }
    let cmd = term(&cmd);
    let mut out = String::new();
    let how = match run.killed_by_signal {
        Some(n) => format!("was killed by signal {n} (status {})", run.exit_status),
        None => format!("exited with status {}", run.exit_status),
    };
    out.push_str(&format!(
        "semleak run: `{cmd}` {how} after {:.1}s\n",
        run.command_duration_ms as f64 / 1000.0
    ));
    if run.samples == 0 {
        out.push_str(
            "semleak run: no sample completed while the command ran: only the state before and after it was checked\n",
        );
    }
    if run.leftovers > 0 {
        out.push_str(&format!(
            "semleak run: {} leftover process(es): {} terminated, {} killed, {} exited on their own, {} kept, {} could not be signalled\n",
            run.leftovers,
            run.leftovers_terminated,
            run.leftovers_killed,
            run.leftovers_exited,
            run.leftovers_kept,
            run.leftovers_not_terminated
        ));
    }
    if report.findings.is_empty() {
        out.push_str("semleak run: no leaks left by the command\n");
    } else {
        out.push_str(&render(report, opts));
    }
    if report.suppressed.total() > 0 {
        out.push_str(&format!(
            "semleak run: {} finding(s) suppressed ({} by baseline, {} by allowlist)\n",
            report.suppressed.total(),
            report.suppressed.baseline,
            report.suppressed.allowlist
        ));
    }
    out
}

/// `semleak clean`: a headline, notes, and one row per action (acted-on
/// rows first).
pub fn render_clean(plan: &Plan, wrap: bool) -> String {
    let mut out = String::new();
    let s = &plan.summary;
    let headline = if plan.dry_run {
        if s.planned == 0 {
            "Nothing to clean".to_string()
        } else {
            format!(
                "Dry run: {} action(s) planned; nothing was changed (pass --yes to act)",
                s.planned
            )
        }
    } else {
        format!(
            "Cleaned: {} done, {} refused, {} failed",
            s.done, s.refused, s.failed
        )
    };
    let _ = writeln!(out, "{headline}; {} skipped", s.skipped);
    for note in &plan.notes {
        let _ = writeln!(out, "note: {}", term(note));
    }
    if plan.actions.is_empty() {
        return out;
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(if wrap {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    });
    table.set_header(vec!["status", "action", "target", "why / what happened"]);
    // Planned and acted-on rows first, skipped ones last.
    let mut rows: Vec<_> = plan.actions.iter().collect();
    rows.sort_by_key(|a| a.status == Status::Skipped);
    for a in rows {
        let mut detail = term(&a.why);
        for line in &a.outcome {
            detail.push('\n');
            detail.push_str(&term(line));
        }
        table.add_row(vec![
            a.status.as_str().to_string(),
            a.action.as_str().to_string(),
            term(&a.target),
            detail,
        ]);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    out
}
