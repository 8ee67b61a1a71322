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

use super::procs::{self, ProcOutcome, ProcScan, ShmFilter};
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
        max_map_count: read_trimmed(&proc_root.join("sys/vm/max_map_count"))
            .and_then(|s| s.parse().ok()),
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
    shm::read_values(Path::new(&shm.dir), &mut shm.semaphores);

    // The resolved directory: maps name files by their real path.
    let mut prefix = shm.dir.as_bytes().to_vec();
    if !prefix.ends_with(b"/") {
        prefix.push(b'/');
    }
    let listed = listed_inodes(&shm);
    let filter = ShmFilter {
        dev: shm.dev,
        dir_prefix: &prefix,
        listed: &listed,
    };
    let scan = ProcScan::open(
        proc_root,
        filter,
        host.boot_time,
        host.clock_ticks,
        opts.thread_names_min_threads,
    )
    .map_err(|e| CollectError::io(proc_root, e))?;
    let pids = procs::list_pids(proc_root).map_err(|e| CollectError::io(proc_root, e))?;
    let outcomes = crate::parallel::parallel_map(
        &pids,
        |&pid| scan.collect_process(pid),
        |&pid, reason| ProcOutcome::Seen {
            process: Box::new(Process {
                pid,
                ..Process::default()
            }),
            skip_reason: Some(reason),
        },
    );

    let mut processes = Vec::with_capacity(outcomes.len());
    let mut skipped = Vec::new();
    for outcome in outcomes {
        if let ProcOutcome::Seen {
            process,
            skip_reason,
        } = outcome
        {
            if let Some(reason) = skip_reason {
                skipped.push((processes.len(), reason));
            }
            processes.push(*process);
        }
    }
    read_needed_status(proc_root, &mut processes, skipped.iter().map(|(i, _)| *i));
    let mut visibility = Visibility {
        skipped: skipped
            .into_iter()
            .map(|(i, reason)| SkippedProcess {
                pid: processes[i].pid,
                reason,
                uid: processes[i].uid,
            })
            .collect(),
        ..Visibility::default()
    };
    visibility.processes_total = processes.len();
    visibility.processes_inspected = processes.iter().filter(|p| p.inspected).count();
    if let Some(note) = shm_note {
        visibility.notes.push(note);
    }
    if let Some(note) = nested_pid_namespace(proc_root) {
        visibility.nested_pid_namespace = true;
        visibility.notes.push(note);
    }
    if let Some(note) = proc_root_mismatch(proc_root, &shm) {
        visibility.proc_root_mismatch = true;
        visibility.notes.push(note);
    }
    attach_holders(&mut shm, &processes);
    attach_containers(proc_root, &mut processes);
    // The Snapshot lives through analysis and reporting: no growth slack.
    shm.semaphores.shrink_to_fit();
    shm.residents.shrink_to_fit();

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
        listening: Vec::new(),
    };
    snapshot.listening = listening_sockets(proc_root, &snapshot.processes);
    channels::sample_channels(&mut snapshot, opts, started);
    snapshot.duration_ms = started.elapsed().as_millis() as u64;
    Ok(snapshot)
}

/// Inodes of the directory's entries, sorted: mappings of these are
/// matched by inode and need no path.
fn listed_inodes(shm: &Shm) -> Vec<u64> {
    let mut v: Vec<u64> = shm
        .semaphores
        .iter()
        .map(|s| &s.meta)
        .chain(shm.residents.iter().map(|r| &r.meta))
        .filter(|m| Some(m.dev) == shm.dev)
        .map(|m| m.inode)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// `status` (real uid, signal masks, `NSpid`) of the processes a rule asks
/// about: every parent (zombie parents' SIGCHLD handling; whether a parent
/// is a namespace's init), processes adopted by pid 1 or by a namespace's
/// init (orphan candidates, whose owner `clean` checks), and processes that
/// could not be inspected (whose uid decides what they could hold).
fn read_needed_status(
    proc_root: &Path,
    processes: &mut [Process],
    extra: impl Iterator<Item = usize>,
) {
    let index: HashMap<i32, usize> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.pid, i))
        .collect();
    let mut wanted = vec![false; processes.len()];
    for (i, p) in processes.iter().enumerate() {
        if p.kernel_thread {
            continue;
        }
        if p.ppid == 1 {
            wanted[i] = true;
        }
        if let Some(&parent) = index.get(&p.ppid) {
            wanted[parent] = !processes[parent].kernel_thread;
        }
    }
    for i in extra {
        wanted[i] = true;
    }
    let first: Vec<usize> = (0..processes.len()).filter(|&i| wanted[i]).collect();
    procs::read_status(proc_root, processes, &first);
    // Children of a namespace's init (known only now) are adopted too.
    let adopted: Vec<usize> = (0..processes.len())
        .filter(|&i| !wanted[i] && !processes[i].kernel_thread)
        .filter(|&i| {
            index
                .get(&processes[i].ppid)
                .is_some_and(|&parent| processes[parent].ns_pids.last() == Some(&1))
        })
        .collect();
    procs::read_status(proc_root, processes, &adopted);
}

/// semleak itself in a nested pid namespace (its namespace link is not the
/// initial namespace's, or its own `NSpid` has more than one entry, which
/// a fixture tree can say): the processes of the enclosing namespaces are invisible, and
/// any of them could map what the shared-memory directory holds.
fn nested_pid_namespace(proc_root: &Path) -> Option<String> {
    if let Some(inode) = procs::nested_pid_namespace_inode(proc_root) {
        return Some(format!(
            "semleak runs in a nested pid namespace (pid:[{inode}], not the host's \
             pid:[{}]): processes of the enclosing namespaces cannot be seen, and any of them \
             could hold a semaphore or segment listed here; run it in the host's pid namespace \
             for a complete view",
            super::parse::INIT_PID_NAMESPACE_INODE
        ));
    }
    let file = File::open(proc_root.join("self/status")).ok()?;
    let status = super::parse::parse_status(BufReader::new(file)).ok()?;
    if status.ns_pids.len() < 2 {
        return None;
    }
    let pids: Vec<String> = status.ns_pids.iter().map(|p| p.to_string()).collect();
    Some(format!(
        "semleak runs in a nested pid namespace (its pid is {} from the outermost namespace in): \
         processes of the enclosing namespaces cannot be seen, and any of them could hold a \
         semaphore or segment listed here; run it in the host's pid namespace for a complete view",
        pids.join(" → ")
    ))
}

/// The proc root does not provably show the processes that could hold
/// what the shared-memory directory holds (see `procview`): an empty
/// directory, `/tmp`, or a container's `/proc` paired with the host's
/// `/dev/shm` would make every held semaphore look unheld.
fn proc_root_mismatch(proc_root: &Path, shm: &Shm) -> Option<String> {
    let dev = shm.dev?;
    let why = super::procview::problem(proc_root, Path::new(&shm.dir), dev)?;
    let advice = match why {
        super::procview::ProcViewProblem::NestedPidNamespace(_) => {
            "for certain verdicts run semleak in the host's pid namespace with the host's /proc"
        }
        _ => {
            "pass the proc filesystem of the namespace that uses the directory (for a \
             container: --proc-root /proc/PID/root/proc with --shm-dir /proc/PID/root/dev/shm)"
        }
    };
    Some(format!(
        "--proc-root {} does not show every process that could hold what {} holds: {why}; a \
         held semaphore or segment can look unheld; {advice}",
        proc_root.display(),
        shm.dir
    ))
}

/// Match every shared-memory mapping to a directory entry by device and
/// inode, never by path: a creator's maps name glibc's deleted temporary.
/// Every name of a hard-linked file gets the holders. A mapped `sem.*`
/// whose file is gone becomes an unlinked semaphore.
fn attach_holders(shm: &mut Shm, processes: &[Process]) {
    let mut sem_index: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (i, s) in shm.semaphores.iter().enumerate() {
        sem_index
            .entry((s.meta.dev, s.meta.inode))
            .or_default()
            .push(i);
    }
    let mut resident_index: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (i, r) in shm.residents.iter().enumerate() {
        resident_index
            .entry((r.meta.dev, r.meta.inode))
            .or_default()
            .push(i);
    }
    for p in processes {
        for m in &p.shm_maps {
            let key = (m.dev, m.inode);
            if let Some(names) = sem_index.get(&key) {
                for &i in names {
                    push_unique(&mut shm.semaphores[i].holders, p.pid);
                }
            } else if let Some(names) = resident_index.get(&key) {
                for &i in names {
                    push_unique(&mut shm.residents[i].holders, p.pid);
                }
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
                sem_index.insert(key, vec![i]);
            }
        }
    }
    // glibc's temporary names are `sem.` + 6 random characters; when an
    // unlinked semaphore's holders show its real name too, prefer that.
    for p in processes {
        for m in &p.shm_maps {
            let Some(names) = sem_index.get(&(m.dev, m.inode)) else {
                continue;
            };
            for &i in names {
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

/// The longest hostname kept: what the snapshot loader accepts. The
/// kernel's is at most 64 bytes (`__NEW_UTS_LEN`), but `--proc-root` may
/// point at any tree, whose `hostname` may be huge, endless (`/dev/zero`)
/// or a FIFO nobody writes to.
const MAX_HOSTNAME: usize = 255;

/// The hostname file, read with a bounded buffer and without waiting:
/// `None` when it is unreadable, not UTF-8 or longer than [`MAX_HOSTNAME`].
fn read_hostname(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        // A FIFO opens at once and reads as empty or EAGAIN, never blocks.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let mut bytes = Vec::with_capacity(MAX_HOSTNAME + 2);
    // One byte more than the longest line kept, newline included, so that
    // a longer file is seen as such rather than cut.
    file.take(MAX_HOSTNAME as u64 + 2)
        .read_to_end(&mut bytes)
        .ok()?;
    let name = String::from_utf8(bytes).ok()?.trim().to_string();
    (name.len() <= MAX_HOSTNAME).then_some(name)
}

fn host_facts(proc_root: &Path) -> Host {
    let clock_ticks = rustix::param::clock_ticks_per_second();
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    let uid = rustix::process::geteuid().as_raw();
    Host {
        os: "linux".into(),
        hostname: read_hostname(&proc_root.join("sys/kernel/hostname")).unwrap_or_default(),
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

/// Listening and bound sockets of semleak's network namespace, read only
/// when some process holds a non-unix socket (the orphan rule names the
/// ports an orphan keeps taken).
fn listening_sockets(
    proc_root: &std::path::Path,
    processes: &[crate::model::Process],
) -> Vec<crate::model::ListeningSocket> {
    let any_socket = processes
        .iter()
        .any(|p| p.fds.iter().any(|f| f.kind == crate::model::FdKind::Socket));
    if !any_socket {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (file, proto) in [
        ("tcp", "tcp"),
        ("tcp6", "tcp"),
        ("udp", "udp"),
        ("udp6", "udp"),
    ] {
        if let Ok(f) = std::fs::File::open(proc_root.join("net").join(file)) {
            out.extend(super::parse::parse_listening(
                std::io::BufReader::new(f),
                proto,
            ));
        }
    }
    out
}

/// Reads `/proc/PID/cgroup` for the processes a finding can name: holders
/// of shared memory and parents of zombies.
fn attach_containers(proc_root: &Path, processes: &mut [Process]) {
    let zombie_parents: std::collections::HashSet<i32> = processes
        .iter()
        .filter(|p| p.is_zombie())
        .map(|p| p.ppid)
        .collect();
    for p in processes.iter_mut() {
        if p.shm_maps.is_empty() && !zombie_parents.contains(&p.pid) {
            continue;
        }
        let path = proc_root.join(p.pid.to_string()).join("cgroup");
        if let Ok(file) = std::fs::File::open(&path) {
            p.container = super::cgroup::parse_cgroup(std::io::BufReader::new(file))
                .ok()
                .flatten();
        }
    }
}

#[cfg(test)]
mod hostname_tests {
    use super::*;

    #[test]
    fn the_hostname_read_is_bounded() {
        let dir = std::env::temp_dir().join(format!("semleak-hostname-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hostname");
        fs::write(&path, "build-7\n").unwrap();
        assert_eq!(read_hostname(&path).as_deref(), Some("build-7"));
        fs::write(&path, format!("{}\n", "a".repeat(MAX_HOSTNAME))).unwrap();
        assert_eq!(read_hostname(&path).map(|h| h.len()), Some(MAX_HOSTNAME));
        fs::write(&path, "a".repeat(MAX_HOSTNAME + 1)).unwrap();
        assert_eq!(read_hostname(&path), None);
        let _ = fs::remove_dir_all(&dir);
        // Endless: refused after a few hundred bytes, not read forever.
        assert_eq!(read_hostname(Path::new("/dev/zero")), None);
    }
}
