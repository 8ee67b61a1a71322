//! What users hand semleak: allowlists, baselines, durations, probe-name
//! files, and the request heads any client sends the exporter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semleak::commands::exporter::http::{parse_head, MAX_HEAD};
use semleak::commands::parse_probe_names;
use semleak::cli::parse_duration;
use semleak::suppress::{check_allowlist, parse_baseline};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(request)) = parse_head(data) {
        // Nothing past the limit is looked at, and the path is printable.
        let within = &data[..data.len().min(MAX_HEAD)];
        assert_eq!(parse_head(within), Ok(Some(request.clone())));
        assert!(request.path.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
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
