//! `semleak analyze`: load a snapshot, run every rule, render, plan cleanup.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use semleak::analyze::{analyze, Config};
use semleak::commands::analyze::parse_snapshot;
use semleak::commands::clean::{plan, CleanOptions};
use semleak::report::{json, table, Report};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(snapshot) = parse_snapshot(text, Path::new("fuzz.json")) else {
        return;
    };
    let findings = analyze(&snapshot, &Config::default());
    let _ = plan(&snapshot, &findings, &CleanOptions::default());
    let report = Report::new("analyze", &snapshot, findings);
    let _ = json::render(&report);
    let _ = table::render(&report, &table::TableOptions::PLAIN);
});
