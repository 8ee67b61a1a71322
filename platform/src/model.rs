//! The Snapshot: everything one collection saw, as plain owned data.
//!
//! No OS types live here, so a Snapshot serialises to JSON, travels in a bug
//! report, and feeds analysis on any OS (macOS-shaped fixtures are analysed
//! on Linux in tests).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rawname::RawName;

/// Bumped when a field is renamed or removed; added fields keep the version.
pub const SNAPSHOT_FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Snapshot {
    pub format: u32,
    pub host: Host,
    /// Wall-clock time the collection started, milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    pub duration_ms: u64,
    pub shm: Shm,
    pub processes: Vec<Process>,
    pub visibility: Visibility,
    pub limits: Limits,
    /// Fill-level samples of self-connected channels (wakeup pipes), one
    /// entry per channel, each with the samples taken across the window.
    #[serde(default)]
    pub channels: Vec<SelfChannel>,
    /// Named semaphores probed by name (macOS: they cannot be listed).
    #[serde(default)]
    pub probed_semaphores: Vec<ProbedSemaphore>,
    /// TCP sockets listening and UDP sockets bound in semleak's network
    /// namespace (`/proc/net/{tcp,tcp6,udp,udp6}`), read only when some
    /// process holds a non-unix socket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listening: Vec<ListeningSocket>,
}

/// A socket waiting for traffic, matched to processes by its inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListeningSocket {
    pub inode: u64,
    /// `tcp` or `udp`.
    pub proto: String,
    /// `127.0.0.1:41987`, `[::1]:8080`.
    pub local: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Host {
    /// "linux" or "macos".
    pub os: String,
    pub hostname: String,
    pub kernel: String,
    /// Boot time, seconds since the Unix epoch, when known.
    pub boot_time: Option<u64>,
    /// Clock ticks per second used by `/proc/PID/stat` start times.
    pub clock_ticks: u64,
    /// The collecting process, so rules can leave semleak itself out.
    pub collector_pid: i32,
    /// Effective uid of the collector.
    pub collector_uid: u32,
}

/// The shared-memory directory (`/dev/shm` on Linux) and what is in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Shm {
    pub dir: String,
    /// Device of the directory itself, in `st_dev` encoding.
    pub dev: Option<u64>,
    /// `sem.*` entries: POSIX named semaphores (glibc naming).
    pub semaphores: Vec<Semaphore>,
    /// Every other entry: `psm_*`, `torch_*`, folders, musl semaphores, …
    pub residents: Vec<ShmResident>,
    /// Entries that could not be examined, with the reason.
    pub skipped: Vec<SkippedEntry>,
    pub usage: Option<FsUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileMeta {
    pub dev: u64,
    pub inode: u64,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub modified_at: i64,
    pub changed_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Semaphore {
    /// Name without the `sem.` prefix, as POSIX names it without the slash.
    pub name: RawName,
    /// Full path; for an unlinked semaphore, the path its holders' maps show.
    pub path: RawName,
    pub meta: FileMeta,
    /// Value and waiter count, for a well-formed 32-byte glibc semaphore.
    pub value: Option<u32>,
    pub waiters: Option<u32>,
    /// Why value/waiters are absent (odd size, unreadable, …).
    pub unreadable_reason: Option<String>,
    /// The file is gone from the directory but still mapped by a process.
    pub unlinked: bool,
    /// Pids mapping it, matched by device and inode.
    pub holders: Vec<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShmResident {
    pub name: RawName,
    /// "file", "dir", "symlink", "other".
    pub file_type: String,
    pub meta: FileMeta,
    pub holders: Vec<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedEntry {
    pub name: RawName,
    pub reason: String,
}

/// statvfs of the shared-memory filesystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FsUsage {
    pub bytes_total: u64,
    pub bytes_free: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// One-letter state from `/proc/PID/stat` (`R`, `S`, `Z`, …).
    pub state: char,
    /// Real uid (`/proc/PID/status`) where status was read; elsewhere the
    /// owner of `/proc/PID`, which is the effective uid (root for a
    /// process that is not dumpable).
    pub uid: Option<u32>,
    /// Start time, milliseconds since the Unix epoch, when the boot time is known.
    pub start_time_ms: Option<u64>,
    /// Raw start time in clock ticks since boot: identifies the process
    /// together with its pid (pids are reused).
    pub start_ticks: u64,
    pub comm: RawName,
    /// Command line, one entry per argument (empty for zombies and kernel threads).
    pub cmdline: Vec<RawName>,
    pub threads: u32,
    /// Thread names, for multi-threaded processes.
    #[serde(default)]
    pub thread_names: Vec<RawName>,
    /// Signal masks from `/proc/PID/status` (bit N-1 is signal N).
    /// Read for the processes a rule asks about (zombie parents, parents,
    /// adopted processes, wakeup-channel holders, uninspected processes).
    pub sig_caught: Option<u64>,
    pub sig_ignored: Option<u64>,
    /// Pids of this process in nested pid namespaces, outermost first (`NSpid`).
    #[serde(default)]
    pub ns_pids: Vec<i32>,
    /// Mappings of shared-memory files (by device/inode).
    #[serde(default)]
    pub shm_maps: Vec<ShmMapping>,
    /// The container the cgroup path names (Linux; read for shared-memory
    /// holders and zombies' parents only, to keep scans cheap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Pipe and socket descriptors.
    #[serde(default)]
    pub fds: Vec<Fd>,
    /// macOS: named semaphores held open (`PROX_FDTYPE_PSEM`).
    #[serde(default)]
    pub psem_names: Vec<RawName>,
    /// Whether the per-process details (maps, fds) could be read.
    pub inspected: bool,
    /// A kernel thread (`PF_KTHREAD` in stat's flags): no memory, no
    /// descriptors, not a user process.
    #[serde(default, skip_serializing_if = "is_false")]
    pub kernel_thread: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Process {
    /// Exited and not yet reaped. A thread-group leader that exited while
    /// other threads run (state Z, more than one thread) is a live
    /// process, not a zombie.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' && self.threads <= 1
    }
    /// The command line as one lossy string, arguments joined by spaces.
    pub fn command_line(&self) -> String {
        self.cmdline
            .iter()
            .map(|a| a.to_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// Kernel threads, by the kernel's own flag: pid 2 and its children
    /// are ordinary processes inside a container.
    pub fn is_kernel_thread(&self) -> bool {
        self.kernel_thread
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShmMapping {
    pub dev: u64,
    pub inode: u64,
    /// The path as maps shows it, ` (deleted)` suffix removed; collected
    /// only for files not in the shared-memory directory's listing (it
    /// names unlinked semaphores), empty otherwise.
    #[serde(default)]
    pub path: RawName,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    Pipe,
    UnixSocket,
    Socket,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Fd {
    pub fd: i32,
    pub kind: FdKind,
    /// pipefs / sockfs inode from the `pipe:[N]` / `socket:[N]` link.
    pub inode: u64,
    /// Open flags from fdinfo (octal there), read only where a rule needs
    /// them (wakeup-channel candidates; fixture trees).
    pub flags: Option<u32>,
    /// Access mode (0 read, 1 write, 2 both) from the permission bits
    /// procfs gives the `/proc/PID/fd/N` link, where `flags` is not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<u32>,
    /// Unix sockets: the inode of the connected peer socket (sock_diag).
    #[serde(default)]
    pub peer_inode: Option<u64>,
    /// Unix sockets: connected, but the peer socket has been closed
    /// (sock_diag reports the peer as inode 0; see `UnixSockInfo`).
    #[serde(default)]
    pub peer_closed: bool,
}

impl Fd {
    pub fn nonblocking(&self) -> Option<bool> {
        self.flags.map(|f| f & 0o4000 != 0)
    }
    /// Access mode: 0 read-only, 1 write-only, 2 read-write.
    pub fn access_mode(&self) -> Option<u32> {
        self.flags.map(|f| f & 0o3).or(self.access)
    }
}

/// A pipe or socket pair whose two ends one process holds, sampled over a
/// window so "not draining" is observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SelfChannel {
    pub pid: i32,
    /// "pipe" or "socketpair".
    pub kind: String,
    /// Descriptor numbers: read end (or first socket) then write end.
    pub read_fd: i32,
    pub write_fd: i32,
    pub read_inode: u64,
    pub write_inode: u64,
    pub nonblocking: Option<bool>,
    pub samples: Vec<ChannelSample>,
    /// Other processes holding either end (a forked child inherits a
    /// wakeup channel too).
    #[serde(default)]
    pub other_holders: Vec<i32>,
    /// How the fill level was read: "pidfd_getfd", "proc_fd_reopen" or
    /// "sock_diag".
    #[serde(default)]
    pub method: String,
    /// The reading side, read beside the fill samples of a channel that was
    /// not empty: the process's main thread, which runs its signal handlers
    /// and (CPython, where only the main thread may set a wakeup fd) its
    /// event loop. Empty where it was not read (an empty channel, macOS,
    /// older snapshots).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loop_thread: Vec<ThreadSample>,
}

/// One look at a thread: whether it ran, and where it waits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThreadSample {
    /// Milliseconds since the snapshot started.
    pub at_ms: u64,
    pub tid: i32,
    /// Scheduler state from `/proc/PID/task/TID/stat` ("R", "S", "D", …).
    pub state: String,
    /// CPU time used so far, in nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Times the thread was put on a CPU so far (`schedstat` field 3): a
    /// thread whose count did not change did not run at all.
    pub run_count: Option<u64>,
    /// Kernel function it sleeps in (`wchan`), when readable.
    pub wchan: Option<String>,
    /// The system call it is blocked in ("futex", "nr 202"), "running", or
    /// "user" (preempted in user space); `None` when not readable.
    pub syscall: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelSample {
    /// Milliseconds since the snapshot started.
    pub at_ms: u64,
    /// Bytes waiting to be read.
    pub queued: u64,
    /// Bytes the channel can hold before a writer gets EAGAIN
    /// (pipe: F_GETPIPE_SZ; socket: sender's sndbuf).
    pub capacity: u64,
    /// Socket: the sender's allocated write memory (EAGAIN once ≥ capacity).
    pub sender_wmem: Option<u64>,
    /// True when a writer would block now.
    pub full: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Visibility {
    pub processes_total: usize,
    pub processes_inspected: usize,
    pub skipped: Vec<SkippedProcess>,
    /// Things that could not be seen at all, in words (e.g. macOS has no
    /// list of unheld semaphores).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The collector runs in a nested pid namespace: processes of the
    /// enclosing namespaces are invisible and could hold anything.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nested_pid_namespace: bool,
    /// The proc root does not provably list the processes that could hold
    /// what the shared-memory directory holds: it is not a proc filesystem,
    /// it shows a nested pid namespace, or its processes' mount namespace
    /// does not mount the directory's filesystem. Holders could be unseen.
    #[serde(default, skip_serializing_if = "is_false")]
    pub proc_root_mismatch: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedProcess {
    pub pid: i32,
    pub reason: String,
    /// Owner, when it could be read although the details could not.
    pub uid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// macOS `kern.posix.sem.max`.
    pub sem_max: Option<u64>,
    /// Linux `kernel.pid_max`.
    pub pid_max: Option<u64>,
    /// Linux `vm.max_map_count`: mappings one process may have (each
    /// glibc named semaphore is one).
    #[serde(default)]
    pub max_map_count: Option<u64>,
}

/// A semaphore name probed with `sem_open(name, 0)` (macOS).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbedSemaphore {
    pub name: RawName,
    pub exists: bool,
}

/// The runtime that placed a process in its cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContainerRuntime {
    Docker,
    Containerd,
    #[serde(rename = "cri-o")]
    CriO,
    Podman,
    /// A Kubernetes container under the cgroupfs driver, whose path names
    /// no runtime.
    Cri,
}

impl ContainerRuntime {
    /// The lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerRuntime::Docker => "docker",
            ContainerRuntime::Containerd => "containerd",
            ContainerRuntime::CriO => "cri-o",
            ContainerRuntime::Podman => "podman",
            ContainerRuntime::Cri => "cri",
        }
    }
}

/// The container a process runs in, as its cgroup path shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Container {
    pub runtime: ContainerRuntime,
    /// The full container id (64 hex digits).
    pub id: String,
    /// The Kubernetes pod UID, with dashes, when the path names a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Which cgroup layout the container was recognised by, so a reader
    /// can tell a root-owned runtime position from a user-delegated one.
    #[serde(default)]
    pub source: ContainerSource,
    /// Rootless containers: the user whose systemd instance
    /// (`user@UID.service`) holds the scope. That user can name cgroups
    /// there freely, so the container is only ever claimed as theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_uid: Option<u32>,
}

/// Where in the cgroup tree a container was recognised. Only positions a
/// runtime creates as root are trusted as that runtime's; anything under a
/// user's delegated subtree is at most that user's rootless container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContainerSource {
    /// A snapshot taken before semleak recorded this.
    #[default]
    Unrecorded,
    /// A runtime's scope at its fixed place under the systemd driver:
    /// `/system.slice/docker-ID.scope`, `/machine.slice/libpod-ID.scope`,
    /// `/kubepods.slice/…/RUNTIME-ID.scope`.
    SystemdScope,
    /// A runtime's directory at its fixed place under the cgroupfs driver:
    /// `/docker/ID`, `/kubepods/QOS/podUID/ID`, `/libpod_parent/libpod-ID`.
    CgroupfsPath,
    /// `libpod-ID.scope` inside `/user.slice/user-UID.slice/user@UID.service/`:
    /// rootless Podman, in a subtree that user controls.
    RootlessUserScope,
}

/// Whether a `/proc/PID/stat` state means the process has ended: `Z`
/// (exited, not yet reaped) or `X` (being torn down). One place for the
/// pair the collector, the gate and process control all test.
pub fn state_has_ended(state: char) -> bool {
    matches!(state, 'Z' | 'X')
}

impl Snapshot {
    /// The process with `pid`: a binary search, as collectors list
    /// processes in pid order, and a scan when that fails (a snapshot
    /// written by hand or by an older version may be in any order).
    pub fn process(&self, pid: i32) -> Option<&Process> {
        match self.processes.binary_search_by_key(&pid, |p| p.pid) {
            Ok(i) => Some(&self.processes[i]),
            Err(_) => self.processes.iter().find(|p| p.pid == pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_pids(pids: &[i32]) -> Snapshot {
        Snapshot {
            processes: pids
                .iter()
                .map(|&pid| Process {
                    pid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn processes_are_found_in_any_order() {
        let sorted = with_pids(&[1, 5, 9, 200]);
        let unsorted = with_pids(&[200, 1, 9, 5]);
        for snap in [&sorted, &unsorted] {
            for pid in [1, 5, 9, 200] {
                assert_eq!(snap.process(pid).map(|p| p.pid), Some(pid));
            }
            assert!(snap.process(7).is_none());
        }
        assert!(state_has_ended('Z') && state_has_ended('X'));
        assert!(!state_has_ended('S') && !state_has_ended('R'));
    }
}
