//! Inputs that general-purpose /proc crates fail on, fed to semleak's own
//! parsers (docs/ARCHITECTURE.md, "Why hand-written parsers"). Any user can
//! put these bytes in /proc: a process names its file mappings, its command
//! line and its comm. One odd line must cost at most that line, never the
//! whole file, the process, or the scan.

use std::io::Cursor;

use semleak_platform::linux::parse::{parse_maps, parse_stat, parse_status};

fn all_maps(text: &[u8]) -> Vec<(u64, Vec<u8>, bool)> {
    parse_maps(Cursor::new(text), |_, _, _| true)
        .expect("maps from memory cannot fail to read")
        .into_iter()
        .map(|m| (m.inode, m.path.as_bytes().to_vec(), m.deleted))
        .collect()
}

/// procfs-core 0.18 returns `Err(Incomplete)` for the whole maps file.
#[test]
fn a_non_utf8_byte_in_a_maps_path_costs_nothing() {
    let maps =
        b"7f0000000000-7f0000001000 rw-s 00000000 00:1a 60163 /dev/shm/sem.\xff\xfe (deleted)\n\
7f0000002000-7f0000003000 r--p 00000000 08:01 1234 /usr/lib/libc.so.6\n";
    assert_eq!(
        all_maps(maps),
        vec![
            (60163, b"/dev/shm/sem.\xff\xfe".to_vec(), true),
            (1234, b"/usr/lib/libc.so.6".to_vec(), false),
        ]
    );
}

/// procfs-core 0.18 panics: it slices `/SYSV` names at byte 13 (a SysV
/// key in hex) whatever their length.
#[test]
fn mappings_named_like_sysv_segments_are_just_paths() {
    let maps = b"7f0000000000-7f0000001000 rw-s 00000000 00:01 5 /SYSV1\n\
7f0000001000-7f0000002000 rw-s 00000000 00:01 6 /SYSV\n\
7f0000002000-7f0000003000 rw-s 00000000 00:01 7 /SYSVzzzzzzzzzzzz\n\
7f0000003000-7f0000004000 rw-s 00000000 00:01 32768 /SYSV0000162e (deleted)\n";
    let got = all_maps(maps);
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], (5, b"/SYSV1".to_vec(), false));
    assert_eq!(got[3], (32768, b"/SYSV0000162e".to_vec(), true));
}

/// Paths with spaces, a literal " (deleted)" inside, and lines that are not
/// maps lines at all.
#[test]
fn odd_maps_lines_are_skipped_or_kept_exactly() {
    let maps = b"7f0000000000-7f0000001000 rw-s 00000000 00:1a 11 /dev/shm/a b (deleted) c\n\
garbage\n\
\n\
7f0000001000-7f0000002000 rw-s 00000000 zz:1a 12 /dev/shm/bad-device\n\
7f0000002000-7f0000003000 rw-s 00000000 00:1a 13 /dev/shm/sem.x (deleted)";
    assert_eq!(
        all_maps(maps),
        vec![
            (11, b"/dev/shm/a b (deleted) c".to_vec(), false),
            (13, b"/dev/shm/sem.x".to_vec(), true),
        ]
    );
}

/// procfs-core 0.18 fails the whole status file ("stream did not contain
/// valid UTF-8") when the `Name:` line (the comm, set by the process)
/// holds a non-UTF-8 byte.
#[test]
fn a_non_utf8_name_in_status_keeps_the_other_fields() {
    let status = b"Name:\tw\xffrker\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t42\n\
Uid:\t1000\t1000\t1000\t1000\nNSpid:\t42\t7\nThreads:\t3\n\
SigIgn:\t0000000000001000\nSigCgt:\t0000000000004002\n";
    let st = parse_status(Cursor::new(&status[..])).unwrap();
    assert_eq!(st.uid, Some(1000));
    assert_eq!(st.threads, Some(3));
    assert_eq!(st.ns_pids, vec![42, 7]);
    assert_eq!(st.sig_caught, Some(0x4002));
    assert_eq!(st.sig_ignored, Some(0x1000));
}

/// comm may hold any bytes, spaces and parentheses: it runs from the first
/// `(` to the last `)`.
#[test]
fn a_hostile_comm_in_stat() {
    let line = b"77 (a) (\xff) Z 1) S 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 2 0 5000 0 0\n";
    let st = parse_stat(line).unwrap();
    assert_eq!(st.pid, 77);
    assert_eq!(st.comm.as_bytes(), b"a) (\xff) Z 1");
    assert_eq!(st.state, 'S');
    assert_eq!(st.ppid, 1);
    assert_eq!(st.num_threads, 2);
    assert_eq!(st.start_ticks, 5000);
}
