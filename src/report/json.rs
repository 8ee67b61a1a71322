//! `--format json`: the report of docs/JSON.md, pretty-printed, newline-terminated.

use super::clean::Plan;
use super::Report;

pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a Report always serialises");
    s.push('\n');
    s
}

/// The same text as [`render`], streamed: a report of a busy host is
/// megabytes, and holding it whole would double semleak's peak memory.
pub fn write(report: &Report, out: &mut impl std::io::Write) -> std::io::Result<()> {
    write_value(report, out)
}

/// Pretty JSON of any serialisable value, newline-terminated, streamed.
pub fn write_value(
    value: &impl serde::Serialize,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// `semleak clean --format json`: the plan (and outcomes) as it is.
pub fn render_clean(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("a Plan always serialises");
    s.push('\n');
    s
}
