//! Human-readable output: a one-line verdict, then each kind of finding
//! (boxed tables on a terminal of 100 columns or more, cards on narrower
//! terminals and plain text at 100 columns in pipes, files and CI logs),
//! what to do, what was (not) seen, and the verdict again.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};

use super::clean::{Plan, Status};
use super::text::{human_bytes, paint, percent, wrap, Style, PLAIN_WIDTH};
use super::{term, Report};
use crate::analyze::{words, Evidence, Finding, Kind, Severity};

/// Rows shown per kind; the JSON report always has everything.
pub const MAX_ROWS_PER_KIND: usize = 50;
const MAX_CLEANUP_LINES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// The terminal's width when the output goes to a terminal; `None` for
    /// pipes, files and CI logs, which get plain text wrapped at 100 columns.
    pub terminal_width: Option<usize>,
    /// Colour severities (ANSI).
    pub color: bool,
}

impl TableOptions {
    /// Plain text at 100 columns, no colour: pipes, files, CI logs.
    pub const PLAIN: TableOptions = TableOptions {
        terminal_width: None,
        color: false,
    };

    fn width(&self) -> usize {
        self.terminal_width.unwrap_or(PLAIN_WIDTH).max(40)
    }

    /// Boxed tables only where they fit: a terminal of 100 columns or more.
    fn boxed(&self) -> bool {
        self.terminal_width.is_some_and(|w| w >= PLAIN_WIDTH)
    }
}

pub fn render(report: &Report, opts: &TableOptions) -> String {
    let width = opts.width();
    let mut out = String::new();
    let verdict = wrap(&verdict(report, opts.color), width, "", "  ");
    out.push_str(&verdict);

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
    for (kind, findings) in &ordered {
        out.push('\n');
        let heading = format!("{} ({})", kind.title(), findings.len());
        out.push_str(&paint(&heading, Style::Heading, opts.color));
        out.push('\n');
        let shared = shared_evidence(findings);
        if !shared.is_empty() {
            let _ = writeln!(out, "  common to all {}:", findings.len());
            for e in &shared {
                out.push_str(&wrap(&term(&words::evidence(e)), width, "  • ", "    "));
            }
        }
        if opts.boxed() {
            out.push_str(&group_table(findings, &shared, opts));
            out.push('\n');
        } else {
            out.push_str(&group_cards(findings, &shared, opts));
        }
        let mut recs: Vec<&str> = findings.iter().map(|f| f.recommendation.as_str()).collect();
        recs.sort_unstable();
        recs.dedup();
        for rec in recs.into_iter().filter(|r| !r.is_empty()) {
            out.push_str(&wrap(&term(rec), width, "  fix: ", "       "));
        }
        // Commands stay on one line each, so they can be copied as they are.
        let cleanup: Vec<String> = findings.iter().flat_map(|f| f.cleanup_lines()).collect();
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
    // A run's summary is about what the command left; host-wide totals
    // beside it would read as the command's (they stay in the JSON).
    if report.run.is_none() {
        out.push_str(&inventory_lines(report, width));
    }
    out.push_str(&visibility_lines(report, width));
    if !ordered.is_empty() {
        // The verdict again, where a reader of a long report ends up.
        out.push('\n');
        out.push_str(&verdict);
    }
    out
}

/// The one-line verdict: `LEAKS: 2 errors on HOST — kind ×N, …` or `OK: …`.
pub fn verdict(report: &Report, color: bool) -> String {
    let s = &report.summary;
    let host = term(&report.host.hostname);
    if report.findings.is_empty() {
        return format!(
            "{}: no leaks found on {host} ({} processes, {} semaphores)",
            paint("OK", Style::Ok, color),
            report.visibility.processes_total,
            report.inventory.semaphores.len()
        );
    }
    let (label, style) = match report.worst() {
        Some(Severity::Error) => ("LEAKS", Style::Error),
        Some(Severity::Warning) => ("WARNINGS", Style::Warning),
        _ => ("NOTES", Style::Info),
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
        "{}: {} on {host} — {}",
        paint(label, style, color),
        counts.join(", "),
        kinds.join(", ")
    )
}

/// Evidence lines every finding of a group has word for word (a group of
/// two or more): shown once above the group instead of in every row.
fn shared_evidence<'a>(findings: &[&'a Finding]) -> Vec<&'a Evidence> {
    let [first, rest @ ..] = findings else {
        return Vec::new();
    };
    if rest.is_empty() {
        return Vec::new();
    }
    first
        .evidence
        .iter()
        .filter(|e| rest.iter().all(|f| f.evidence.contains(e)))
        .collect()
}

/// What a finding is about, in a few words: its first resources, else its pids.
pub fn subject(f: &Finding, separator: &str) -> String {
    if !f.subjects.is_empty() {
        let mut r: Vec<String> = f
            .subjects
            .iter()
            .take(3)
            .map(|s| term(&words::subject(s)))
            .collect();
        if f.subjects.len() > 3 {
            r.push(format!("… {} more", f.subjects.len() - 3));
        }
        r.join(separator)
    } else {
        let pids: Vec<String> = f.pids.iter().take(8).map(|p| p.to_string()).collect();
        let more = if f.pids.len() > 8 {
            format!(" … {} more", f.pids.len() - 8)
        } else {
            String::new()
        };
        format!("pids {}{more}", pids.join(" "))
    }
}

/// `container: docker 3f4e1b2a9c8d, pod <uid>` (short id as docker shows it).
fn container_line(f: &Finding) -> Option<String> {
    let c = f.container.as_ref()?;
    let short = c.id.get(..12).unwrap_or(&c.id);
    let mut line = format!("container: {} {short}", c.runtime.as_str());
    if let Some(uid) = &c.pod_uid {
        line.push_str(", pod ");
        line.push_str(uid);
    }
    Some(line)
}

/// The evidence of one finding that is not shown above its group.
fn own_evidence<'a>(f: &'a Finding, shared: &'a [&Evidence]) -> impl Iterator<Item = String> + 'a {
    f.evidence
        .iter()
        .filter(move |e| !shared.contains(e))
        .map(words::evidence)
}

fn more_line(findings: &[&Finding]) -> Option<String> {
    (findings.len() > MAX_ROWS_PER_KIND).then(|| {
        format!(
            "… {} more (see --format json)",
            findings.len() - MAX_ROWS_PER_KIND
        )
    })
}

/// Narrow terminals and plain text: one card per finding, wrapped at word
/// boundaries.
fn group_cards(findings: &[&Finding], shared: &[&Evidence], opts: &TableOptions) -> String {
    let width = opts.width();
    let mut out = String::new();
    for f in findings.iter().take(MAX_ROWS_PER_KIND) {
        out.push('\n');
        let severity = paint(f.severity.as_str(), Style::of(f.severity), opts.color);
        // The label's visible width, for the hanging indent of a long subject.
        let label = format!("{} · {} · ", f.severity.as_str(), f.confidence.as_str());
        let wrapped = wrap(&subject(f, ", "), width, &format!("  {label}"), "      ");
        out.push_str(&wrapped.replacen(f.severity.as_str(), &severity, 1));
        out.push_str(&wrap(&term(&f.summary_text()), width, "    ", "    "));
        if let Some(c) = container_line(f) {
            out.push_str(&wrap(&term(&c), width, "    • ", "      "));
        }
        for e in own_evidence(f, shared) {
            out.push_str(&wrap(&term(&e), width, "    • ", "      "));
        }
    }
    if let Some(more) = more_line(findings) {
        let _ = writeln!(out, "\n  {more}");
    }
    out.push('\n');
    out
}

/// Wide terminals: a table per kind, wrapped to the terminal's width.
fn group_table(findings: &[&Finding], shared: &[&Evidence], opts: &TableOptions) -> String {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_width(opts.width().min(u16::MAX as usize) as u16);
    if opts.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_header(vec!["severity", "confidence", "subject", "details"]);
    for f in findings.iter().take(MAX_ROWS_PER_KIND) {
        let mut details = term(&f.summary_text());
        if let Some(c) = container_line(f) {
            details.push_str("\n• ");
            details.push_str(&term(&c));
        }
        for e in own_evidence(f, shared) {
            details.push_str("\n• ");
            details.push_str(&term(&e));
        }
        let mut severity = Cell::new(f.severity.as_str());
        if opts.color {
            severity = severity.fg(match f.severity {
                Severity::Error => Color::Red,
                Severity::Warning => Color::Yellow,
                Severity::Info => Color::Cyan,
            });
        }
        table.add_row(vec![
            severity,
            Cell::new(f.confidence.as_str()),
            Cell::new(subject(f, "\n")),
            Cell::new(details),
        ]);
    }
    let mut s = table.to_string();
    if let Some(more) = more_line(findings) {
        let _ = write!(s, "\n{more}");
    }
    s
}

fn inventory_lines(report: &Report, width: usize) -> String {
    // macOS has no semaphore inventory, only a count against the limit.
    if report.host.os == "macos" {
        if let Some(limits) = &report.limits.semaphores {
            let max = limits
                .max
                .map_or_else(|| "unknown".to_string(), |m| m.to_string());
            return wrap(
                &format!(
                    "Semaphores: {} in use by visible processes (kern.posix.sem.max {max}); unheld ones cannot be listed on macOS",
                    limits.in_use
                ),
                width,
                "",
                "  ",
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
    let mut out = wrap(&line, width, "", "  ");
    if let Some(shm) = &report.limits.shm {
        let line = format!(
            "Shared memory {}: {} of {} ({:.0}%), {} of {} inodes ({:.0}%)",
            term(&shm.path),
            human_bytes(shm.bytes_used),
            human_bytes(shm.bytes_total),
            percent(shm.bytes_used, shm.bytes_total),
            shm.inodes_used,
            shm.inodes_total,
            percent(shm.inodes_used, shm.inodes_total)
        );
        out.push_str(&wrap(&line, width, "", "  "));
    }
    out
}

fn visibility_lines(report: &Report, width: usize) -> String {
    let v = &report.visibility;
    let mut out = String::new();
    if v.complete {
        let _ = writeln!(
            out,
            "Visibility: complete ({} of {} processes inspected)",
            v.processes_inspected, v.processes_total
        );
    } else {
        out.push_str(&wrap(
            &format!(
                "Visibility: INCOMPLETE ({} of {} processes inspected); findings about holders are not certain",
                v.processes_inspected, v.processes_total
            ),
            width,
            "",
            "  ",
        ));
        for s in v.skipped.iter().take(5) {
            out.push_str(&wrap(
                &format!("pid {}: {}", s.pid, term(&s.reason)),
                width,
                "  ",
                "    ",
            ));
        }
        if v.skipped.len() > 5 {
            let _ = writeln!(out, "  … {} more (see --format json)", v.skipped.len() - 5);
        }
        for n in &v.notes {
            out.push_str(&wrap(&term(n), width, "  ", "    "));
        }
    }
    for e in &v.entries_skipped {
        out.push_str(&wrap(
            &format!("Skipped entry {}: {}", term(&e.name), term(&e.reason)),
            width,
            "",
            "  ",
        ));
    }
    out
}

/// `semleak run`'s stderr summary: one line about the run, then the
/// findings as [`render`] lays them out.
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
    out.push_str(&wrap(
        &format!(
            "semleak run: `{cmd}` {how} after {:.1}s",
            run.command_duration_ms as f64 / 1000.0
        ),
        opts.width(),
        "",
        "  ",
    ));
    if run.samples == 0 {
        out.push_str(&wrap(
            "semleak run: no sample completed while the command ran: only the state before and \
             after it was checked",
            opts.width(),
            "",
            "  ",
        ));
    }
    if run.leftovers > 0 {
        out.push_str(&wrap(
            &format!(
                "semleak run: {} leftover process(es): {} terminated, {} killed, {} exited on \
                 their own, {} kept, {} could not be signalled",
                run.leftovers,
                run.leftovers_terminated,
                run.leftovers_killed,
                run.leftovers_exited,
                run.leftovers_kept,
                run.leftovers_not_terminated
            ),
            opts.width(),
            "",
            "  ",
        ));
    }
    if let Some(clean) = &run.clean {
        out.push_str(&wrap(
            &format!(
                "semleak run: --clean removed {} semaphore(s) the command left{}",
                clean.removed.len(),
                if clean.kept.is_empty() {
                    String::new()
                } else {
                    format!(", kept {}", clean.kept.len())
                }
            ),
            opts.width(),
            "",
            "  ",
        ));
        for (path, why) in &clean.kept {
            out.push_str(&wrap(
                &format!("kept {}: {}", term(path), term(why)),
                opts.width(),
                "  ",
                "    ",
            ));
        }
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
