//! What users hand semleak: allowlists, baselines, durations, probe-name files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semleak::commands::parse_probe_names;
use semleak::cli::parse_duration;
use semleak::suppress::{check_allowlist, parse_baseline};

fuzz_target!(|data: &[u8]| {
    let _ = parse_probe_names(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = check_allowlist(text) {
        assert!(!e.chars().any(char::is_control), "unescaped error: {e:?}");
    }
    let _ = parse_baseline(text);
    let _ = parse_duration(text);
});
