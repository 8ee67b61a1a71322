//! `semleak run --junit FILE`: JUnit XML for CI systems that read it
//! (GitLab, Jenkins). One test case per finding kind; a kind with findings
//! at or above `--fail-on` fails, with the findings and their evidence in
//! the failure text.

use std::fmt::Write as _;

use super::{term, Report};
use crate::analyze::{Finding, Kind, Severity};

/// `threshold`: the least severity that fails (`None`: nothing fails, as
/// with `--fail-on never`).
pub fn render(report: &Report, threshold: Option<Severity>) -> String {
    let fails = |f: &Finding| threshold.is_some_and(|t| f.severity >= t);
    let cases: Vec<(Kind, Vec<&Finding>)> = Kind::ALL
        .iter()
        .map(|k| {
            (
                *k,
                report.findings.iter().filter(|f| f.kind == *k).collect(),
            )
        })
        .collect();
    let failures = cases
        .iter()
        .filter(|(_, fs)| fs.iter().any(|f| fails(f)))
        .count();
    let suite = match &report.run {
        Some(run) => format!("semleak run: {}", run.command.join(" ")),
        None => format!("semleak {}", report.command),
    };
    let seconds = report.duration_ms as f64 / 1000.0;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"semleak\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{seconds:.3}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{seconds:.3}\" timestamp=\"{}\" hostname=\"{}\">",
        xml(&suite),
        cases.len(),
        xml(&report.started_at),
        xml(&report.host.hostname)
    );
    for (kind, findings) in &cases {
        let _ = write!(
            out,
            "    <testcase classname=\"semleak.{}\" name=\"{}\" time=\"0\"",
            xml(&report.command),
            kind.as_str()
        );
        if findings.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        let text = findings.iter().map(|f| finding_text(f)).collect::<String>();
        if findings.iter().any(|f| fails(f)) {
            let worst = findings
                .iter()
                .map(|f| f.severity)
                .max()
                .unwrap_or(Severity::Info);
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                kind.as_str(),
                xml(&format!(
                    "{}: {} finding(s), worst {}",
                    kind.title(),
                    findings.len(),
                    worst.as_str()
                )),
                xml(&text)
            );
        } else {
            // Below --fail-on: passed, but the findings are still there to read.
            let _ = writeln!(out, "      <system-out>{}</system-out>", xml(&text));
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn finding_text(f: &Finding) -> String {
    let mut s = format!(
        "[{} {}] {}\n",
        f.severity.as_str(),
        f.confidence.as_str(),
        f.summary_text()
    );
    for r in f.resources() {
        let _ = writeln!(s, "  resource: {r}");
    }
    for e in f.evidence_lines() {
        let _ = writeln!(s, "  • {e}");
    }
    if !f.recommendation.is_empty() {
        let _ = writeln!(s, "  fix: {}", f.recommendation);
    }
    for c in f.cleanup_lines() {
        let _ = writeln!(s, "  cleanup: {c}");
    }
    let _ = writeln!(s, "  id: {}\n", f.id);
    s
}

/// Text for XML 1.0 content and attributes: markup characters escaped, and
/// characters XML cannot hold (most C0 controls) shown as escapes.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            // Noncharacters XML 1.0 forbids, which the terminal escaping
            // keeps as they are.
            '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c if c.is_control() => out.push_str(&term(&c.to_string())),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Confidence;

    #[test]
    fn escapes_markup_and_characters_xml_cannot_hold() {
        assert_eq!(xml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(xml("x\u{1b}[31m\u{0}y\n"), "x\\x1b[31m\\x00y\n");
        // XML 1.0 forbids U+FFFE and U+FFFF anywhere: never written raw.
        let noncharacters = xml("a\u{fffe}b\u{ffff}c");
        assert!(
            !noncharacters.contains(['\u{fffe}', '\u{ffff}']),
            "{noncharacters:?}"
        );
    }

    #[test]
    fn one_case_per_kind_failing_at_the_threshold() {
        let snap = crate::analyze::testing::snapshot();
        let mut leak = Finding::new(
            Kind::LeakedSemaphore,
            b"x",
            Severity::Error,
            Confidence::Certain,
        );
        leak.headline("semaphore x is held by no process".to_string());
        leak.say("no process maps it".into());
        let zombie = Finding::new(Kind::Zombie, b"z", Severity::Info, Confidence::Certain);
        let report = Report::new("scan", &snap, vec![leak, zombie]);
        let text = render(&report, Some(Severity::Error));
        assert_eq!(text.matches("<testcase ").count(), Kind::ALL.len());
        assert_eq!(text.matches("<failure ").count(), 1);
        assert!(text.contains("failures=\"1\""));
        assert!(text.contains("  • no process maps it"), "{text}");
        assert!(text.contains("name=\"zombie\" time=\"0\">\n      <system-out>"));
        assert_eq!(
            render(&report, None).matches("<failure ").count(),
            0,
            "--fail-on never fails nothing"
        );
    }
}
