//! procfs parsers: the first byte picks the file, the rest is its content.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use semleak_platform::linux::parse;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 7 {
        0 => drop(parse::parse_stat(bytes)),
        1 => drop(parse::parse_status(Cursor::new(bytes))),
        2 => drop(parse::parse_maps(Cursor::new(bytes), |_, _, _| true)),
        3 => drop(parse::parse_cmdline(bytes)),
        4 => drop(parse::parse_fdinfo_flags(Cursor::new(bytes))),
        5 => drop(parse::parse_boot_time(Cursor::new(bytes))),
        _ => {
            let _ = parse::parse_glibc_sem(bytes);
            let _ = parse::parse_fd_link(bytes);
        }
    }
});
