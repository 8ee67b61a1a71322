//! `--format json`: the report of docs/JSON.md, pretty-printed, newline-terminated.

use super::clean::Plan;
use super::Report;

pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a Report always serialises");
    s.push('\n');
    s
}

/// `semleak clean --format json`: the plan (and outcomes) as it is.
pub fn render_clean(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("a Plan always serialises");
    s.push('\n');
    s
}
