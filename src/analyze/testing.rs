//! Builders for Snapshots in rule tests.

use semleak_platform::{FileMeta, Host, Process, RawName, Semaphore, SkippedProcess, Snapshot};

/// 2026-11-21T00:00:00Z
pub const NOW_MS: u64 = 1_795_219_200_000;

pub fn snapshot() -> Snapshot {
    Snapshot {
        format: semleak_platform::SNAPSHOT_FORMAT,
        host: Host {
            os: "linux".into(),
            hostname: "testhost".into(),
            kernel: "6.1.0".into(),
            boot_time: Some(NOW_MS / 1000 - 86_400),
            clock_ticks: 100,
            collector_pid: 99_999,
            collector_uid: 0,
        },
        taken_at_ms: NOW_MS,
        duration_ms: 12,
        shm: semleak_platform::Shm {
            dir: "/dev/shm".into(),
            dev: Some(0x1a),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn sem(name: &str, inode: u64, holders: &[i32]) -> Semaphore {
    Semaphore {
        name: name.into(),
        path: format!("/dev/shm/sem.{name}").into(),
        meta: FileMeta {
            dev: 0x1a,
            inode,
            uid: 1000,
            gid: 1000,
            mode: 0o600,
            size: 32,
            modified_at: (NOW_MS / 1000) as i64 - 3_600,
            changed_at: (NOW_MS / 1000) as i64 - 3_600,
        },
        value: Some(1),
        waiters: Some(0),
        holders: holders.to_vec(),
        ..Default::default()
    }
}

pub fn process(pid: i32, ppid: i32, cmdline: &str) -> Process {
    let comm = cmdline
        .split(' ')
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    Process {
        pid,
        ppid,
        pgrp: pid,
        session: pid,
        state: 'S',
        uid: Some(1000),
        start_time_ms: Some(NOW_MS - 600_000),
        start_ticks: 1000 + pid as u64,
        comm: comm.into(),
        cmdline: cmdline.split(' ').map(RawName::from).collect(),
        threads: 1,
        inspected: true,
        ..Default::default()
    }
}

pub fn skip(snap: &mut Snapshot, pid: i32, uid: Option<u32>) {
    snap.visibility.skipped.push(SkippedProcess {
        pid,
        reason: format!("permission denied reading /proc/{pid}/maps"),
        uid,
    });
}

/// A self-channel of `pid` with one sample per `(queued, full)` pair,
/// 300 ms apart: a pipe of 64 KiB, or a socket pair with a 208 KiB sndbuf.
pub fn channel(pid: i32, kind: &str, levels: &[(u64, bool)]) -> semleak_platform::SelfChannel {
    let pipe = kind == "pipe";
    semleak_platform::SelfChannel {
        pid,
        kind: kind.into(),
        read_fd: 5,
        write_fd: 6,
        read_inode: 9052,
        write_inode: if pipe { 9052 } else { 9053 },
        nonblocking: Some(true),
        samples: levels
            .iter()
            .enumerate()
            .map(|(i, &(queued, full))| semleak_platform::ChannelSample {
                at_ms: 20 + 300 * i as u64,
                queued,
                capacity: if pipe { 65_536 } else { 212_992 },
                sender_wmem: (!pipe).then_some(if full { 213_504 } else { queued * 768 }),
                full,
            })
            .collect(),
        method: if pipe { "pidfd_getfd" } else { "sock_diag" }.into(),
        ..Default::default()
    }
}

/// Main-thread samples beside a [`channel`]'s fill samples (20 ms, then
/// every 300 ms): `(state, run_count)` each.
pub fn loop_thread(pid: i32, looks: &[(&str, u64)]) -> Vec<semleak_platform::ThreadSample> {
    looks
        .iter()
        .enumerate()
        .map(|(i, &(state, run_count))| semleak_platform::ThreadSample {
            at_ms: 20 + 300 * i as u64,
            tid: pid,
            state: state.into(),
            cpu_ns: Some(120_000_000 + run_count * 1000),
            run_count: Some(run_count),
            wchan: (state != "R").then(|| "futex_wait_queue".into()),
            syscall: Some(if state == "R" { "running" } else { "futex" }.into()),
        })
        .collect()
}

/// A Snapshot shaped like a macOS host: no /dev/shm, `kern.posix.sem.max`
/// at its default, and the note the collector always adds.
pub fn macos_snapshot() -> Snapshot {
    let mut snap = snapshot();
    snap.host.os = "macos".into();
    snap.host.kernel = "Darwin 23.4.0 (macOS 14.4.1)".into();
    snap.shm = Default::default();
    snap.limits.sem_max = Some(10_000);
    snap.visibility
        .notes
        .push("macOS cannot list named semaphores".into());
    snap
}
