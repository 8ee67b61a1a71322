//! Rendering of the process rules (zombie, orphan, thread pile-up): insta
//! snapshots of one Snapshot built in code with all three kinds.

use semleak_platform::{Fd, FdKind, RawName, Snapshot};

use super::{json, table, Report};
use crate::analyze::testing::*;
use crate::analyze::{analyze, Config};

const SPAWN: &str = "python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork";

fn read_end(fd: i32, inode: u64) -> Fd {
    Fd {
        fd,
        kind: FdKind::Pipe,
        inode,
        flags: Some(0),
        peer_inode: None,
        peer_closed: false,
        access: None,
    }
}

fn process_snapshot() -> Snapshot {
    let mut snap = snapshot();
    // Case 4: a dispatcher that never waits for its start_new_session children.
    let mut dispatcher = process(500, 1, "python3 dispatcher.py --queue jobs");
    dispatcher.sig_caught = Some(0);
    dispatcher.sig_ignored = Some(0);
    snap.processes = vec![process(1, 0, "/sbin/init"), dispatcher];
    for i in 0..6 {
        let mut z = process(510 + i, 500, "");
        z.cmdline.clear();
        z.comm = "worker".into();
        z.state = 'Z';
        z.start_time_ms = Some(NOW_MS - 7_200_000 + i as u64 * 60_000);
        snap.processes.push(z);
    }
    // Case 3: spawn workers whose parent (group leader 600) was SIGKILLed.
    for (i, pid) in [601, 602].into_iter().enumerate() {
        let mut w = process(pid, 1, SPAWN);
        w.pgrp = 600;
        w.session = 1;
        w.fds = vec![read_end(7, 8100 + i as u64)];
        snap.processes.push(w);
    }
    // Case 5: abandoned sub-interpreter threads.
    let mut app = process(700, 1, "python3 -m app.server");
    app.threads = 18;
    app.thread_names = std::iter::once(RawName::from("python3"))
        .chain(std::iter::once(RawName::from("asyncio_0")))
        .chain(
            (0..16).map(|i| RawName::from(format!("subint-driver[{i}]").as_bytes()[..15].to_vec())),
        )
        .collect();
    snap.processes.push(app);
    snap.visibility.processes_total = snap.processes.len();
    snap.visibility.processes_inspected = snap.processes.len();
    snap
}

fn report() -> Report {
    let snap = process_snapshot();
    let mut report = Report::new("scan", &snap, analyze(&snap, &Config::default()));
    report.semleak_version = "0.0.0-test".into();
    report
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn process_findings_table() {
    let text = table::render(&report(), &table::TableOptions::PLAIN);
    settings().bind(|| insta::assert_snapshot!("scan_table_processes", text));
}

#[test]
fn process_findings_json() {
    let text = json::render(&report());
    settings().bind(|| insta::assert_snapshot!("scan_json_processes", text));
}
