//! GitHub Actions: one workflow-command annotation per finding
//! (`::error::`, `::warning::`, `::notice::`) and a markdown summary for
//! `$GITHUB_STEP_SUMMARY`.
//!
//! The runner obeys a workflow command in any line of a step's stdout or
//! stderr: `::name …::` once leading whitespace is trimmed, and `##[name]`
//! anywhere in the line. Semaphore names and command lines are chosen by
//! any local user, so every other line semleak prints under GitHub Actions
//! goes through [`neutralise`], and annotation data escapes `##[` too.

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

/// `text` made inert for the Actions runner, line by line: a `::` that
/// starts a line after whitespace becomes `:%3A`, and every `##[` becomes
/// `#%23[` (visible percent escapes, as the runner's own escaping uses; the
/// runner decodes neither in plain lines). A CR is escaped as well, since
/// the runner also ends a line there. For everything semleak prints under
/// GitHub Actions except its own annotations.
pub fn neutralise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = line.replace('\r', "%0D");
        // The runner trims with .NET's Char.IsWhiteSpace, the same Unicode
        // White_Space set as Rust's.
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        out.push_str(indent);
        match body.strip_prefix("::") {
            Some(rest) => {
                out.push_str(":%3A");
                out.push_str(&neutralise_brackets(rest));
            }
            None => out.push_str(&neutralise_brackets(body)),
        }
    }
    out
}

/// `##[` (a v1 workflow command anywhere in a line) → `#%23[`.
fn neutralise_brackets(s: &str) -> String {
    s.replace("##[", "#%23[")
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
    // Markdown is not read for commands, but the summary is often also
    // printed to a log; it carries no `##[` either way.
    neutralise(&out)
}

/// Workflow-command data: `%`, CR and LF are escaped (the runner decodes
/// them), and `##[` becomes `#%23[`, which the runner shows as is: the line
/// starts with semleak's own `::`, but a `##[` in it would still be obeyed.
fn escape_data(s: &str) -> String {
    let escaped = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    neutralise_brackets(&escaped)
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

    /// What the runner would obey in `line`: a `::` command once leading
    /// whitespace is trimmed, or a `##[` command anywhere.
    fn obeyed(line: &str) -> bool {
        line.trim_start().starts_with("::") || line.contains("##[")
    }

    #[test]
    fn neutralised_lines_are_never_workflow_commands() {
        let text = "ok\n    ::stop-commands::tok\n::warning title=FORGED::x\n\u{3000}\t::add-mask::y\n  a ##[error]x ##[group]\nline\r::error::z\n";
        let out = neutralise(text);
        assert_eq!(
            out,
            "ok\n    :%3Astop-commands::tok\n:%3Awarning title=FORGED::x\n\u{3000}\t:%3Aadd-mask::y\n  a #%23[error]x #%23[group]\nline%0D::error::z\n"
        );
        assert!(!out.split(['\n', '\r']).any(obeyed), "{out}");
        // Ordinary text is left as it is.
        assert_eq!(neutralise("a: b :: c\n  # [x]\n"), "a: b :: c\n  # [x]\n");
        // Runs of `#` leave no `##[` behind.
        assert!(!neutralise("###[x] ####[y]").contains("##["));
    }

    #[test]
    fn hostile_names_in_annotations_and_the_summary_are_inert() {
        let names = [
            format!("/dev/shm/sem.mp-{} ::stop-commands::tok", "A".repeat(60)),
            "/dev/shm/sem.x ::warning title=FORGED::forged".to_string(),
            "/dev/shm/sem.##[error]x".to_string(),
        ];
        let findings = names
            .iter()
            .map(|n| {
                let mut f = finding(
                    Kind::LeakedSemaphore,
                    Severity::Warning,
                    &format!("semaphore {n} held by none"),
                );
                f.subjects = vec![crate::analyze::Subject::SemaphoreName(n.clone())];
                f.evidence = vec![crate::analyze::Evidence::Said(format!("named {n}"))];
                f
            })
            .collect();
        let r = report_with(findings);
        let text = annotations(&r);
        for line in text.lines() {
            assert!(!line.contains("##["), "{line}");
            assert!(
                line.starts_with("::warning title=semleak%3A Leaked semaphores::"),
                "{line}"
            );
        }
        assert!(text.contains("sem.#%23[error]x"), "{text}");
        let md = step_summary(&r);
        assert!(!md.lines().any(obeyed), "{md}");
        assert!(md.contains("`/dev/shm/sem.#%23[error]x`"), "{md}");
    }

    /// The plain run summary wraps at 100 columns: a name with a space can
    /// put `::` at the start of a line. Neutralised, no line is obeyed.
    #[test]
    fn the_wrapped_run_summary_is_inert_once_neutralised() {
        let name = format!("/dev/shm/sem.{} ::stop-commands::tok", "A".repeat(80));
        let mut f = finding(
            Kind::LeakedSemaphore,
            Severity::Warning,
            &format!("semaphore {} appeared during the run", &name[13..]),
        );
        f.subjects = vec![
            crate::analyze::Subject::SemaphoreName(name),
            crate::analyze::Subject::SemaphoreName("/dev/shm/sem.##[error]x".into()),
        ];
        let mut r = report_with(vec![f]);
        r.run = Some(crate::report::run::RunInfo {
            command: vec!["sh".into(), "-c".into(), "::error::from the command".into()],
            ..Default::default()
        });
        let plain = crate::report::table::render_run_summary(
            &r,
            &crate::report::table::TableOptions::PLAIN,
        );
        assert!(
            plain.lines().any(obeyed),
            "the test needs a hostile line: {plain}"
        );
        let out = neutralise(&plain);
        assert!(!out.lines().any(obeyed), "{out}");
        assert!(out.contains(":%3Astop-commands::tok"), "{out}");
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
