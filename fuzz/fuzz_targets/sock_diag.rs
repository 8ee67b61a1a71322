//! NETLINK_SOCK_DIAG replies as the kernel (or anything in its place) sends them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semleak_platform::linux::sock_diag;

fuzz_target!(|data: &[u8]| {
    let _ = sock_diag::parse_unix_diag(data);
});
