//! Property tests for every parser of untrusted bytes (procfs files,
//! sock_diag replies, macOS sysctl and libproc buffers): any input gives a
//! value or an error, never a panic, in debug builds (overflow checks on)
//! and release. Bounded cases, so they run in `cargo test`; `fuzz/` runs the
//! same entry points unbounded.

use std::io::Cursor;

use proptest::prelude::*;
use semleak_platform::linux::{parse, sock_diag};
use semleak_platform::macos::parse as mac;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that look like procfs text often enough to reach deep branches:
/// digits, spaces, parentheses, colons, tabs, newlines and anything else.
fn procfs_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(b"0123456789 ():\t\n-abcdefxSZR/".to_vec()),
            1 => any::<u8>(),
        ],
        0..400,
    )
}

/// A real `stat` line with fields replaced by arbitrary tokens.
fn stat_line() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<i64>(),
        prop::collection::vec(any::<u8>(), 0..20),
        prop::collection::vec(
            prop_oneof![
                Just("0".to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<u64>().prop_map(|n| n.to_string()),
                "[a-zA-Z()]{0,3}",
            ],
            0..60,
        ),
    )
        .prop_map(|(pid, comm, fields)| {
            let mut line = format!("{pid} (").into_bytes();
            line.extend(comm);
            line.extend(b") ");
            line.extend(fields.join(" ").into_bytes());
            line
        })
}

/// A maps line with arbitrary numbers in each field.
fn maps_text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            any::<u64>(),
            "[0-9a-fA-Fxz]{0,17}",
            "[0-9a-fA-Fxz]{0,17}",
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..40),
            any::<bool>(),
        )
            .prop_map(|(a, major, minor, inode, path, deleted)| {
                let mut l =
                    format!("{a:x}-{a:x} rw-s 00000000 {major}:{minor} {inode} ").into_bytes();
                l.extend(path.into_iter().filter(|b| *b != b'\n'));
                if deleted {
                    l.extend(b" (deleted)");
                }
                l.push(b'\n');
                l
            }),
        0..8,
    )
    .prop_map(|lines| lines.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stat_never_panics(bytes in prop_oneof![procfs_like(), stat_line()]) {
        let _ = parse::parse_stat(&bytes);
    }

    #[test]
    fn status_never_panics(bytes in procfs_like()) {
        let _ = parse::parse_status(Cursor::new(bytes));
    }

    #[test]
    fn maps_never_panics(bytes in prop_oneof![procfs_like(), maps_text()]) {
        let _ = parse::parse_maps(Cursor::new(bytes), |_, _, _| true);
    }

    #[test]
    fn maps_keeps_what_it_says(major in 0u64..0xfff, minor in 0u64..0xff, inode in 1u64..u64::MAX) {
        let line = format!("7f00-7f01 rw-s 00000000 {major:x}:{minor:x} {inode} /dev/shm/sem.x (deleted)\n");
        let got = parse::parse_maps(Cursor::new(line), |_, _, _| true).unwrap();
        prop_assert_eq!(got.len(), 1);
        prop_assert_eq!(got[0].inode, inode);
        prop_assert_eq!(got[0].dev, parse::makedev(major, minor));
        prop_assert!(got[0].deleted);
    }

    #[test]
    fn small_procfs_files_never_panic(bytes in procfs_like()) {
        let _ = parse::parse_cmdline(&bytes);
        let _ = parse::parse_fd_link(&bytes);
        let _ = parse::parse_fdinfo_flags(Cursor::new(bytes.clone()));
        let _ = parse::parse_boot_time(Cursor::new(bytes.clone()));
        let _ = parse::parse_glibc_sem(&bytes);
        let _ = parse::makedev(bytes.len() as u64, u64::MAX);
    }

    #[test]
    fn cmdline_round_trips(args in prop::collection::vec(prop::collection::vec(1u8..=255, 1..20), 1..6)) {
        let mut bytes = Vec::new();
        for a in &args {
            bytes.extend(a);
            bytes.push(0);
        }
        let got = parse::parse_cmdline(&bytes);
        let got: Vec<Vec<u8>> = got.into_iter().map(|n| n.0).collect();
        prop_assert_eq!(got, args);
    }

    #[test]
    fn sock_diag_replies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = sock_diag::parse_unix_diag(&bytes);
    }

    /// Netlink-shaped replies: a header whose length field lies.
    #[test]
    fn sock_diag_lying_lengths_never_panic(
        len in any::<u32>(), kind in any::<u16>(), body in prop::collection::vec(any::<u8>(), 0..200)
    ) {
        let mut buf = len.to_ne_bytes().to_vec();
        buf.extend(kind.to_ne_bytes());
        buf.extend([0u8; 10]);
        buf.extend(body);
        let _ = sock_diag::parse_unix_diag(&buf);
    }

    #[test]
    fn procargs2_never_panics(argc in any::<i32>(), rest in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = argc.to_ne_bytes().to_vec();
        buf.extend(rest);
        let _ = mac::parse_procargs2(&buf);
        let _ = mac::parse_procargs2(&buf[..buf.len().min(3)]);
    }

    #[test]
    fn sysctl_buffers_never_panic(buf in prop::collection::vec(any::<u8>(), 0..40)) {
        let _ = mac::parse_sysctl_uint(&buf);
        let _ = mac::parse_sysctl_string(&buf);
        let _ = mac::parse_boottime(&buf);
        let _ = mac::psem_name(&buf);
    }

    #[test]
    fn pipe_samples_never_panic(queued in any::<u64>(), blksize in any::<u64>(), at in any::<u64>()) {
        let end = mac::PipeEnd { fd: 3, handle: 1, peer: 2, openflags: 0, queued, blksize };
        let _ = mac::pipe_sample(&end, at);
        let _ = mac::self_pipes(&[end, mac::PipeEnd { fd: 4, handle: 2, peer: 1, ..end }]);
    }
}
