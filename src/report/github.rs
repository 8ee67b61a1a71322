//! GitHub Actions: one workflow-command annotation per finding
//! (`::error::`, `::warning::`, `::notice::`) and a markdown summary for
//! `$GITHUB_STEP_SUMMARY`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::table::{subject, verdict};
use super::{term, Report};
use crate::analyze::{Kind, Severity};

/// GitHub shows at most 10 annotations of each level per step; more are
/// dropped, so the rest are counted in one notice instead.
pub const MAX_ANNOTATIONS_PER_LEVEL: usize = 10;
/// Rows of the summary table; the JSON report has everything.
const MAX_SUMMARY_ROWS: usize = 50;

/// Workflow-command lines, one per finding (newline-terminated).
pub fn annotations(report: &Report) -> String {
    let mut out = String::new();
    let mut shown: BTreeMap<Severity, usize> = BTreeMap::new();
    let mut dropped = 0;
    for f in &report.findings {
        let n = shown.entry(f.severity).or_default();
        if *n == MAX_ANNOTATIONS_PER_LEVEL {
            dropped += 1;
            continue;
        }
        *n += 1;
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let title = format!("semleak: {}", f.kind.title());
        let mut message = term(&f.summary_text());
        for e in f.evidence_lines() {
            let _ = write!(message, "\n• {}", term(&e));
        }
        if !f.recommendation.is_empty() {
            let _ = write!(message, "\nfix: {}", term(&f.recommendation));
        }
        let _ = writeln!(
            out,
            "::{level} title={}::{}",
            escape_property(&title),
            escape_data(&message)
        );
    }
    if dropped > 0 {
        let _ = writeln!(
            out,
            "::notice title=semleak::{}",
            escape_data(&format!(
                "{dropped} more finding(s) are in the step summary and the JSON report"
            ))
        );
    }
    out
}

/// Markdown for `$GITHUB_STEP_SUMMARY`: the verdict, what the command did,
/// a table of findings and each kind's fix.
pub fn step_summary(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### semleak: {}\n", md_text(&verdict(report, false)));
    if let Some(run) = &report.run {
        let how = match run.killed_by_signal {
            Some(n) => format!("was killed by signal {n}"),
            None => format!("exited with status {}", run.exit_status),
        };
        let _ = writeln!(
            out,
            "`{}` {how} after {:.1}s; {} leftover process(es), {} terminated, {} killed, {} kept.\n",
            md_code(&run.command.join(" ")),
            run.command_duration_ms as f64 / 1000.0,
            run.leftovers,
            run.leftovers_terminated,
            run.leftovers_killed,
            run.leftovers_kept
        );
    }
    if report.findings.is_empty() {
        out.push_str("No leaks.\n");
        return out;
    }
    out.push_str("| severity | confidence | kind | subject | summary |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for f in report.findings.iter().take(MAX_SUMMARY_ROWS) {
        let subject = subject(f, ", ");
        let _ = writeln!(
            out,
            "| {} | {} | {} | `{}` | {} |",
            f.severity.as_str(),
            f.confidence.as_str(),
            f.kind.as_str(),
            md_code(&subject),
            md_text(&f.summary_text())
        );
    }
    if report.findings.len() > MAX_SUMMARY_ROWS {
        let _ = writeln!(
            out,
            "\n{} more in the JSON report (`--report FILE`).",
            report.findings.len() - MAX_SUMMARY_ROWS
        );
    }
    let mut fixes: BTreeMap<Kind, Vec<&str>> = BTreeMap::new();
    for f in &report.findings {
        let recs = fixes.entry(f.kind).or_default();
        if !f.recommendation.is_empty() && !recs.contains(&f.recommendation.as_str()) {
            recs.push(&f.recommendation);
        }
    }
    for (kind, recs) in fixes {
        for rec in recs {
            let _ = write!(out, "\n**{}**: {}\n", kind.title(), md_text(rec));
        }
    }
    out
}

/// Workflow-command data: `%`, CR and LF are escaped (the runner decodes them).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command properties additionally escape `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Untrusted text in a markdown table cell: no HTML, no cell breaks, no
/// line breaks.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in term(s).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Untrusted text inside a code span: a backtick would end it, `|` the cell.
fn md_code(s: &str) -> String {
    term(s).replace('`', "'").replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{Confidence, Finding};
    use crate::report::Report;

    fn report_with(findings: Vec<Finding>) -> Report {
        let snap = crate::analyze::testing::snapshot();
        Report::new("run", &snap, findings)
    }

    fn finding(kind: Kind, severity: Severity, summary: &str) -> Finding {
        let mut f = Finding::new(kind, summary.as_bytes(), severity, Confidence::Certain);
        f.headline(summary.to_string());
        f.say("seen twice\nreally".into());
        f.recommendation = "shut the pool down: 100% of the time".into();
        f.subjects = vec![crate::analyze::Subject::SemaphoreName(
            "/dev/shm/sem.a|b".into(),
        )];
        f
    }

    #[test]
    fn one_annotation_per_finding_with_escaped_data() {
        let r = report_with(vec![
            finding(Kind::LeakedSemaphore, Severity::Error, "held by no process"),
            finding(Kind::Zombie, Severity::Warning, "2 zombies"),
            finding(Kind::ThreadPileup, Severity::Info, "16 threads"),
        ]);
        let text = annotations(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("::error title=semleak%3A Leaked semaphores::held by no process%0A• seen twice\\nreally%0Afix: shut the pool down: 100%25 of the time"), "{}", lines[0]);
        assert!(lines[1].starts_with("::warning title=semleak%3A Zombies::2 zombies"));
        assert!(lines[2].starts_with("::notice "));
    }

    #[test]
    fn annotations_beyond_githubs_limit_are_counted() {
        let many = (0..12)
            .map(|i| finding(Kind::LeakedSemaphore, Severity::Error, &format!("sem {i}")))
            .collect();
        let text = annotations(&report_with(many));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("::error")).count(),
            10
        );
        assert!(
            text.contains("::notice title=semleak::2 more finding(s)"),
            "{text}"
        );
    }

    #[test]
    fn step_summary_is_a_markdown_table_of_findings() {
        let r = report_with(vec![finding(
            Kind::LeakedSemaphore,
            Severity::Error,
            "<b>held</b> | by no process",
        )]);
        let md = step_summary(&r);
        assert!(md.starts_with("### semleak: LEAKS: 1 error on "), "{md}");
        assert!(md.contains("| error | certain | leaked_semaphore | `/dev/shm/sem.a\\|b` | &lt;b&gt;held&lt;/b&gt; \\| by no process |"), "{md}");
        assert!(
            md.contains("**Leaked semaphores**: shut the pool down"),
            "{md}"
        );
    }
}
