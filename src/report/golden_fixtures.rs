//! The fixed Snapshots behind `tests/golden/`: written once with
//! `SEMLEAK_UPDATE_GOLDEN=1 cargo test --lib golden -- --ignored`, then kept
//! as data. `tests/golden.rs` runs `semleak analyze` on each and compares
//! the JSON report byte for byte, so a change to how findings are built or
//! rendered cannot change the report unnoticed.

use semleak_platform::{Fd, FdKind, FsUsage, ProbedSemaphore, RawName, Snapshot};

use crate::analyze::testing::*;

const SPAWN: &str = "python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork";

/// Leaked semaphores in groups and alone, a hoarder, shared-memory
/// pressure, an unlinked one still held, an uninspected process.
fn semaphores() -> Snapshot {
    let mut snap = snapshot();
    let mut unlinked = sem("0MDtNA", 30, &[200]);
    unlinked.unlinked = true;
    unlinked.value = None;
    unlinked.waiters = None;
    let mut waiting = sem("mp-w41t1ng0", 14, &[]);
    waiting.waiters = Some(2);
    snap.shm.semaphores = vec![
        sem("mp-ab12cd34", 10, &[]),
        waiting,
        sem("loky-4242-x1y2z3w4", 11, &[]),
        sem("loky-4243-a1b2c3d4", 15, &[]),
        sem("app-lock", 12, &[200, 201]),
        sem("app-queue", 13, &[200]),
        sem("app-batch-1", 16, &[]),
        sem("app-batch-2", 17, &[]),
        sem("alone", 18, &[]),
        unlinked,
    ];
    snap.shm.usage = Some(FsUsage {
        bytes_total: 64 << 20,
        bytes_free: 6 << 20,
        inodes_total: 1000,
        inodes_free: 100,
    });
    snap.processes = vec![
        process(1, 0, "/sbin/init"),
        process(200, 1, "python3 server.py --workers 4"),
        process(201, 200, SPAWN),
        process(4242, 1, "python3 joblib_job.py"),
    ];
    snap.visibility.processes_total = 5;
    snap.visibility.processes_inspected = 4;
    skip(&mut snap, 300, Some(0));
    snap
}

/// Names a person cannot paste, a malformed file, a nested pid namespace.
fn odd_names() -> Snapshot {
    let mut snap = snapshot();
    let mut hostile = sem("x", 20, &[]);
    hostile.name = RawName::from(&b"evil\n$(touch pwned)\xff"[..]);
    hostile.path = RawName::from(&b"/dev/shm/sem.evil\n$(touch pwned)\xff"[..]);
    let mut quoted = sem("it's mine", 21, &[]);
    quoted.path = "/dev/shm/sem.it's mine".into();
    let mut malformed = sem("short", 22, &[]);
    malformed.value = None;
    malformed.waiters = None;
    malformed.meta.size = 7;
    malformed.unreadable_reason = Some("not a semaphore: 7 bytes, not 32".into());
    let mut unreadable = sem("locked", 23, &[]);
    unreadable.value = None;
    unreadable.waiters = None;
    unreadable.unreadable_reason = Some("cannot read: permission denied".into());
    snap.shm.semaphores = vec![hostile, quoted, malformed, unreadable];
    snap.processes = vec![process(1, 0, "/sbin/init")];
    snap.visibility.processes_total = 1;
    snap.visibility.processes_inspected = 1;
    snap.visibility.nested_pid_namespace = true;
    snap
}

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

/// Zombies under a live parent, orphaned spawn workers, a thread pile-up.
fn processes() -> Snapshot {
    let mut snap = snapshot();
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
    for (i, pid) in [601, 602].into_iter().enumerate() {
        let mut w = process(pid, 1, SPAWN);
        w.pgrp = 600;
        w.session = 1;
        w.fds = vec![read_end(7, 8100 + i as u64)];
        snap.processes.push(w);
    }
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

/// A full wakeup pipe of a loop that never ran, beside a thread pile-up in
/// the same process, and a socket pair that is not being drained.
fn wakeup() -> Snapshot {
    let mut snap = snapshot();
    let mut p = process(4242, 1, "python3 server.py");
    p.threads = 17;
    p.thread_names = std::iter::once(RawName::from("python3"))
        .chain((0..16).map(|_| RawName::from("subint-driver")))
        .collect();
    p.sig_caught = Some(0x4002);
    let mut q = process(4343, 1, "python3 -m trio_app");
    q.sig_caught = Some(0x4002);
    snap.processes = vec![p, q];
    let mut full = channel(
        4242,
        "pipe",
        &[(65_536, true), (65_536, true), (65_536, true)],
    );
    full.loop_thread = loop_thread(4242, &[("S", 7), ("S", 7), ("S", 7)]);
    let mut slow = channel(4343, "socketpair", &[(3, false), (5, false)]);
    slow.loop_thread = loop_thread(4343, &[("S", 9), ("S", 9)]);
    snap.channels = vec![full, slow];
    snap.visibility.processes_total = 2;
    snap.visibility.processes_inspected = 2;
    snap
}

/// Spawn workers each making private semaphores (Linux).
fn per_worker() -> Snapshot {
    let mut snap = snapshot();
    snap.processes.push(process(500, 1, "python3 executor.py"));
    let mut inode = 1;
    for w in 0..8 {
        let pid = 1000 + w;
        snap.processes.push(process(
            pid,
            500,
            &SPAWN.replace("pipe_handle=7", &format!("pipe_handle={}", 10 + w)),
        ));
        for k in 0..5 {
            snap.shm
                .semaphores
                .push(sem(&format!("mp-pass{w:02}{k:02}"), inode, &[500, pid]));
            snap.shm
                .semaphores
                .push(sem(&format!("mp-own0{w:02}{k:02}"), inode + 1, &[pid]));
            inode += 2;
        }
    }
    snap.visibility.processes_total = snap.processes.len();
    snap.visibility.processes_inspected = snap.processes.len();
    snap
}

/// macOS: held names near `kern.posix.sem.max`, probed names.
fn macos() -> Snapshot {
    let mut snap = macos_snapshot();
    snap.limits.sem_max = Some(210);
    snap.processes.push(process(500, 1, "python3.11 engine.py"));
    for i in 0..40 {
        let pid = 1000 + i;
        let mut p = process(
            pid,
            500,
            &format!("python3.11 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle={}) --multiprocessing-fork", pid % 97),
        );
        p.psem_names = (0..5)
            .map(|k| format!("/mp-{pid:04}{k:04}").into())
            .collect();
        snap.processes.push(p);
    }
    let mut holder = process(10, 1, "python3 app.py");
    holder.psem_names = vec!["/mp-held0001".into()];
    snap.processes.push(holder);
    snap.probed_semaphores = vec![
        ProbedSemaphore {
            name: "/mp-ab12cd34".into(),
            exists: true,
        },
        ProbedSemaphore {
            name: "/mp-held0001".into(),
            exists: true,
        },
        ProbedSemaphore {
            name: "/mp-gone0000".into(),
            exists: false,
        },
    ];
    snap.visibility.processes_total = snap.processes.len();
    snap.visibility.processes_inspected = snap.processes.len();
    snap
}

pub fn all() -> Vec<(&'static str, Snapshot)> {
    vec![
        ("semaphores", semaphores()),
        ("odd_names", odd_names()),
        ("processes", processes()),
        ("wakeup", wakeup()),
        ("per_worker", per_worker()),
        ("macos", macos()),
    ]
}

#[test]
#[ignore = "writes tests/golden/*.snapshot.json"]
fn write_golden_snapshots() {
    if std::env::var_os("SEMLEAK_UPDATE_GOLDEN").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, snap) in all() {
        let text = serde_json::to_string_pretty(&snap).unwrap() + "\n";
        std::fs::write(dir.join(format!("{name}.snapshot.json")), text).unwrap();
    }
}
