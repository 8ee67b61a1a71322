//! macOS sysctl buffers: KERN_PROCARGS2, integer and string sysctls, boottime.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semleak_platform::macos::parse;

fuzz_target!(|data: &[u8]| {
    let _ = parse::parse_procargs2(data);
    let _ = parse::parse_sysctl_uint(data);
    let _ = parse::parse_sysctl_string(data);
    let _ = parse::parse_boottime(data);
    let _ = parse::psem_name(data);
});
