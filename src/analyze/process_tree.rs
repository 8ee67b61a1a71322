//! Process-tree facts shared by the process rules (zombie, orphan,
//! thread pile-up): lookups by pid, who adopts orphans, who holds which
//! pipe end.

use std::collections::{HashMap, HashSet};

use semleak_platform::{FdKind, Process, Snapshot};

/// SIGCHLD is signal 17 on Linux; bit N-1 of the SigCgt/SigIgn masks.
pub const SIGCHLD_BIT: u64 = 1 << 16;

/// Programs whose job as pid 1 (or as a subreaper) is to reap what they adopt.
const INITS: &[&str] = &[
    "systemd",
    "init",
    "tini",
    "tini-static",
    "dumb-init",
    "catatonit",
    "docker-init",
    "s6-svscan",
    "runit",
    "openrc-init",
    "launchd",
];

/// Programs known to set `PR_SET_CHILD_SUBREAPER` (the flag itself is not
/// visible in /proc, so the name is all there is).
const SUBREAPERS: &[&str] = &[
    "tini",
    "tini-static",
    "dumb-init",
    "catatonit",
    "docker-init",
    "conmon",
];

pub struct ProcessTree<'a> {
    by_pid: HashMap<i32, &'a Process>,
}

impl<'a> ProcessTree<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        ProcessTree {
            by_pid: snapshot.processes.iter().map(|p| (p.pid, p)).collect(),
        }
    }

    pub fn get(&self, pid: i32) -> Option<&'a Process> {
        self.by_pid.get(&pid).copied()
    }

    /// Present and not a zombie.
    pub fn alive(&self, pid: i32) -> bool {
        self.get(pid).is_some_and(|p| !p.is_zombie())
    }
}

/// The comm of a process as text.
pub fn comm(p: &Process) -> String {
    p.comm.to_lossy()
}

/// Is this one of the programs meant to run as an init (reaping adoptees)?
pub fn is_known_init(p: &Process) -> bool {
    let c = comm(p);
    INITS.contains(&c.as_str())
}

/// Is this process pid 1 of a pid namespace (the host's or a container's)?
pub fn is_namespace_init(p: &Process) -> bool {
    p.pid == 1 || p.ns_pids.last() == Some(&1)
}

/// How an orphan's current parent came to adopt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopter {
    /// pid 1 of the host or of a pid namespace; `known_init` says whether it
    /// is a program meant to be an init (if not, it may be the real parent).
    NamespaceInit { pid: i32, known_init: bool },
    /// A process known to be a child subreaper (`systemd --user`, tini, a
    /// container shim …).
    Subreaper { pid: i32 },
}

impl Adopter {
    pub fn pid(&self) -> i32 {
        match self {
            Adopter::NamespaceInit { pid, .. } | Adopter::Subreaper { pid } => *pid,
        }
    }
}

/// The adopter of `p`, when its parent is one that adopts orphans; `None`
/// when the parent is an ordinary process (then `p` is not orphaned).
pub fn adopter_of(tree: &ProcessTree<'_>, p: &Process) -> Option<Adopter> {
    if p.ppid == 1 {
        let known_init = tree.get(1).is_some_and(is_known_init);
        return Some(Adopter::NamespaceInit { pid: 1, known_init });
    }
    let parent = tree.get(p.ppid)?;
    if is_namespace_init(parent) {
        return Some(Adopter::NamespaceInit {
            pid: parent.pid,
            known_init: is_known_init(parent),
        });
    }
    let c = comm(parent);
    let user_systemd = c == "systemd" && parent.cmdline.iter().any(|a| a.as_bytes() == b"--user");
    if user_systemd || SUBREAPERS.contains(&c.as_str()) || c.starts_with("containerd-shim") {
        return Some(Adopter::Subreaper { pid: parent.pid });
    }
    None
}

/// Who holds each end of every pipe, over the inspected processes.
#[derive(Default)]
pub struct PipeEnds {
    writers: HashMap<u64, Vec<i32>>,
}

impl PipeEnds {
    pub fn new(snapshot: &Snapshot) -> Self {
        let mut ends = PipeEnds::default();
        for p in snapshot.processes.iter().filter(|p| !p.is_zombie()) {
            for fd in p.fds.iter().filter(|f| f.kind == FdKind::Pipe) {
                // Unknown access mode: count it as a possible writer, so a
                // pipe is never called writerless on missing data.
                if fd.access_mode() != Some(0) {
                    ends.writers.entry(fd.inode).or_default().push(p.pid);
                }
            }
        }
        ends
    }

    pub fn has_writer(&self, inode: u64) -> bool {
        self.writers.get(&inode).is_some_and(|w| !w.is_empty())
    }
}

/// The socket inodes live inspected processes hold a descriptor of.
#[derive(Default)]
pub struct SocketHolders {
    held: HashSet<u64>,
}

impl SocketHolders {
    pub fn new(snapshot: &Snapshot) -> Self {
        SocketHolders {
            held: snapshot
                .processes
                .iter()
                .filter(|p| !p.is_zombie())
                .flat_map(|p| p.fds.iter())
                .filter(|f| f.kind != FdKind::Pipe)
                .map(|f| f.inode)
                .collect(),
        }
    }

    pub fn is_held(&self, inode: u64) -> bool {
        self.held.contains(&inode)
    }
}

/// Pids not inspected (fds unread) that could hold a descriptor of a
/// process owned by `uid`: root, the same user, or an unknown owner.
pub fn hidden_peers(snapshot: &Snapshot, uid: Option<u32>) -> Vec<i32> {
    snapshot
        .visibility
        .skipped
        .iter()
        .filter(|s| match (s.uid, uid) {
            (Some(su), Some(u)) => su == 0 || su == u,
            _ => true,
        })
        .map(|s| s.pid)
        .collect()
}

/// The command line as one lossy string (comm in brackets when empty).
pub fn command_text(p: &Process) -> String {
    if p.cmdline.is_empty() {
        format!("[{}]", comm(p))
    } else {
        p.command_line()
    }
}

/// Bytes naming a program across restarts (its command line, else comm),
/// for finding ids.
pub fn program_subject(p: &Process) -> Vec<u8> {
    if p.cmdline.is_empty() {
        return p.comm.as_bytes().to_vec();
    }
    let mut out = Vec::new();
    for (i, a) in p.cmdline.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(a.as_bytes());
    }
    out
}

/// Processes rules talk about: not semleak itself, not kernel threads.
pub fn is_user_process(snapshot: &Snapshot, p: &Process) -> bool {
    p.pid != snapshot.host.collector_pid && !p.is_kernel_thread() && p.pid > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;

    #[test]
    fn adopters() {
        let mut snap = snapshot();
        let mut shim = process(50, 1, "/usr/bin/containerd-shim-runc-v2 -namespace moby");
        shim.comm = "containerd-shim".into();
        let mut user_systemd = process(60, 1, "/lib/systemd/systemd --user");
        user_systemd.comm = "systemd".into();
        let mut container_init = process(70, 50, "python3 app.py");
        container_init.ns_pids = vec![70, 1];
        snap.processes = vec![
            process(1, 0, "/sbin/init"),
            shim,
            user_systemd,
            container_init,
            process(80, 7, "python3 x"),
            process(81, 60, "python3 x"),
            process(82, 70, "python3 x"),
            process(83, 1, "python3 x"),
            process(84, 50, "nginx"),
        ];
        let tree = ProcessTree::new(&snap);
        let of = |pid| adopter_of(&tree, tree.get(pid).unwrap());
        assert_eq!(of(80), None);
        assert_eq!(of(81), Some(Adopter::Subreaper { pid: 60 }));
        assert_eq!(
            of(82),
            Some(Adopter::NamespaceInit {
                pid: 70,
                known_init: false
            })
        );
        assert_eq!(
            of(83),
            Some(Adopter::NamespaceInit {
                pid: 1,
                known_init: true
            })
        );
        assert_eq!(of(84), Some(Adopter::Subreaper { pid: 50 }));
    }

    #[test]
    fn kernel_threads_by_flag_not_by_pid_2() {
        let snap = snapshot();
        // pid 2 of a container and its children are ordinary processes.
        let container_pid2 = process(2, 1, "python3 dispatcher.py");
        let child = process(9, 2, "python3 worker.py");
        assert!(is_user_process(&snap, &container_pid2));
        assert!(is_user_process(&snap, &child));
        let mut kworker = process(15, 2, "");
        kworker.kernel_thread = true;
        assert!(!is_user_process(&snap, &kworker));
    }
}
