//! The Linux collector: /proc, the shared-memory directory, sock_diag,
//! assembled into one Snapshot.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::parse::parse_boot_time;
use crate::error::CollectError;
use crate::model::SNAPSHOT_FORMAT;
use crate::model::{Host, Limits, Process, Semaphore, Shm, SkippedProcess, Snapshot, Visibility};
use crate::options::{CollectOptions, DEFAULT_SHM_DIR};
use crate::rawname::RawName;

use super::procs::{self, ProcOutcome, ShmFilter};
use super::{channels, shm};

pub fn collect(opts: &CollectOptions) -> Result<Snapshot, CollectError> {
    let started = Instant::now();
    let taken_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let proc_root = opts.proc_root.as_path();
    let host = host_facts(proc_root);
    let limits = Limits {
        pid_max: read_trimmed(&proc_root.join("sys/kernel/pid_max")).and_then(|s| s.parse().ok()),
        ..Limits::default()
    };

    // The directory is listed before any process is read: a semaphore in
    // the listing existed before every maps file was read, so a holder that
    // still has it mapped is seen.
    let (shm_dir, required) = match &opts.shm_dir {
        Some(d) => (d.clone(), true),
        None => (PathBuf::from(DEFAULT_SHM_DIR), false),
    };
    let (mut shm, shm_note) = shm::collect_shm(&shm_dir, required, opts.allow_non_tmpfs)?;

    let pids = procs::list_pids(proc_root).map_err(|e| CollectError::io(proc_root, e))?;
    // The resolved directory: maps name files by their real path.
    let mut prefix = shm.dir.as_bytes().to_vec();
    if !prefix.ends_with(b"/") {
        prefix.push(b'/');
    }
    let filter = ShmFilter {
        dev: shm.dev,
        dir_prefix: &prefix,
    };
    let outcomes = collect_processes(proc_root, &pids, &filter, &host);

    let mut processes = Vec::with_capacity(outcomes.len());
    let mut visibility = Visibility::default();
    for outcome in outcomes {
        if let ProcOutcome::Seen {
            process,
            skip_reason,
        } = outcome
        {
            if let Some(reason) = skip_reason {
                visibility.skipped.push(SkippedProcess {
                    pid: process.pid,
                    reason,
                    uid: process.uid,
                });
            }
            processes.push(*process);
        }
    }
    visibility.processes_total = processes.len();
    visibility.processes_inspected = processes.iter().filter(|p| p.inspected).count();
    if let Some(note) = shm_note {
        visibility.notes.push(note);
    }
    attach_holders(&mut shm, &processes);

    let mut snapshot = Snapshot {
        format: SNAPSHOT_FORMAT,
        host,
        taken_at_ms,
        duration_ms: 0,
        shm,
        processes,
        visibility,
        limits,
        channels: Vec::new(),
        probed_semaphores: Vec::new(),
    };
    channels::sample_channels(&mut snapshot, opts, started);
    snapshot.duration_ms = started.elapsed().as_millis() as u64;
    Ok(snapshot)
}

fn collect_processes(
    proc_root: &Path,
    pids: &[i32],
    filter: &ShmFilter<'_>,
    host: &Host,
) -> Vec<ProcOutcome> {
    crate::parallel::parallel_map(pids, |&pid| {
        procs::collect_process(proc_root, pid, filter, host.boot_time, host.clock_ticks)
    })
}

/// Match every shared-memory mapping to a directory entry by device and
/// inode, never by path: a creator's maps name glibc's deleted temporary.
/// A mapped `sem.*` whose file is gone becomes an unlinked semaphore.
fn attach_holders(shm: &mut Shm, processes: &[Process]) {
    let mut sem_index: HashMap<(u64, u64), usize> = shm
        .semaphores
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.meta.dev, s.meta.inode), i))
        .collect();
    let resident_index: HashMap<(u64, u64), usize> = shm
        .residents
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.meta.dev, r.meta.inode), i))
        .collect();
    for p in processes {
        for m in &p.shm_maps {
            let key = (m.dev, m.inode);
            if let Some(&i) = sem_index.get(&key) {
                push_unique(&mut shm.semaphores[i].holders, p.pid);
            } else if let Some(&i) = resident_index.get(&key) {
                push_unique(&mut shm.residents[i].holders, p.pid);
            } else if let Some(name) = sem_name_of(&m.path) {
                let i = shm.semaphores.len();
                shm.semaphores.push(Semaphore {
                    name: name.into(),
                    path: m.path.clone(),
                    meta: crate::model::FileMeta {
                        dev: m.dev,
                        inode: m.inode,
                        ..Default::default()
                    },
                    unlinked: true,
                    unreadable_reason: Some(
                        "unlinked: the file is gone, only mappings remain".into(),
                    ),
                    holders: vec![p.pid],
                    ..Semaphore::default()
                });
                sem_index.insert(key, i);
            }
        }
    }
    // glibc's temporary names are `sem.` + 6 random characters; when an
    // unlinked semaphore's holders show its real name too, prefer that.
    for p in processes {
        for m in &p.shm_maps {
            if let Some(&i) = sem_index.get(&(m.dev, m.inode)) {
                let sem = &mut shm.semaphores[i];
                if sem.unlinked && sem.name.as_bytes().len() == 6 {
                    if let Some(name) = sem_name_of(&m.path) {
                        if name.len() != 6 {
                            sem.name = name.into();
                            sem.path = m.path.clone();
                        }
                    }
                }
            }
        }
    }
}

fn sem_name_of(path: &RawName) -> Option<&[u8]> {
    let bytes = path.as_bytes();
    let base = bytes.rsplit(|b| *b == b'/').next()?;
    base.strip_prefix(b"sem.")
}

fn push_unique(v: &mut Vec<i32>, pid: i32) {
    if v.last() != Some(&pid) && !v.contains(&pid) {
        v.push(pid);
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn host_facts(proc_root: &Path) -> Host {
    // SAFETY: sysconf and geteuid/getpid have no preconditions.
    let clock_ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // SAFETY: as above.
    let (pid, uid) = unsafe { (libc::getpid(), libc::geteuid()) };
    Host {
        os: "linux".into(),
        hostname: read_trimmed(&proc_root.join("sys/kernel/hostname")).unwrap_or_default(),
        kernel: read_trimmed(&proc_root.join("sys/kernel/osrelease")).unwrap_or_default(),
        boot_time: File::open(proc_root.join("stat"))
            .ok()
            .and_then(|f| parse_boot_time(BufReader::new(f)).ok().flatten()),
        clock_ticks: if clock_ticks > 0 {
            clock_ticks as u64
        } else {
            100
        },
        collector_pid: pid,
        collector_uid: uid,
    }
}
