//! Rendering of `semleak clean`'s plan and results. Sees only the Plan.

use std::fmt::Write as _;

use comfy_table::{presets, ContentArrangement, Table};

use super::term;
use crate::clean::{Plan, Status};

pub fn render_json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("a Plan always serialises");
    s.push('\n');
    s
}

pub fn render_table(plan: &Plan, wrap: bool) -> String {
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
