//! `--format json`: the DESIGN.md schema, pretty-printed, newline-terminated.

use super::Report;

pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a Report always serialises");
    s.push('\n');
    s
}
