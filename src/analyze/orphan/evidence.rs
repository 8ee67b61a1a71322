//! The evidence that an adopted process was someone's worker: a known
//! worker command line, or an IPC endpoint whose other side is gone.

use semleak_platform::{FdKind, Process};

use crate::analyze::process_tree::{command_text, PipeEnds, SocketHolders};

/// Command-line fragments of known worker processes and what they are.
const SIGNATURES: &[(&str, &str)] = &[
    (
        "from multiprocessing.spawn import spawn_main",
        "CPython multiprocessing spawn worker",
    ),
    (
        "--multiprocessing-fork",
        "CPython multiprocessing spawn worker",
    ),
    (
        "from multiprocessing.forkserver import main",
        "CPython multiprocessing forkserver (or a worker it forked)",
    ),
    (
        "from multiprocessing.resource_tracker import main",
        "CPython multiprocessing resource tracker",
    ),
    (
        "from multiprocessing.semaphore_tracker import main",
        "CPython multiprocessing semaphore tracker",
    ),
    ("popen_loky_posix", "loky worker"),
    ("loky.backend.resource_tracker", "loky resource tracker"),
    (
        "import sys;exec(eval(sys.stdin.readline()))",
        "execnet gateway (pytest-xdist worker)",
    ),
    ("workers/default_worker.py", "ray worker"),
    ("gunicorn: worker", "gunicorn worker"),
];

/// What kind of worker the command line says this is, if any.
pub fn worker_signature(p: &Process) -> Option<&'static str> {
    let text = command_text(p);
    SIGNATURES
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map(|(_, what)| *what)
}

/// An IPC endpoint whose other side is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dangling {
    /// The read end of a pipe that no live process holds a write end of.
    PipeWithoutWriter { fd: i32, inode: u64 },
    /// A connected unix socket whose peer socket the kernel says was closed.
    SocketPeerClosed { fd: i32, inode: u64 },
    /// A connected unix socket whose (open) peer socket no live inspected
    /// process holds.
    SocketPeerUnheld { fd: i32, inode: u64, peer: u64 },
}

impl Dangling {
    pub(super) fn resource(&self) -> crate::analyze::Subject {
        use crate::analyze::Subject;
        match self {
            Dangling::PipeWithoutWriter { inode, .. } => Subject::Pipe(*inode),
            Dangling::SocketPeerClosed { inode, .. } | Dangling::SocketPeerUnheld { inode, .. } => {
                Subject::Socket(*inode)
            }
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Dangling::PipeWithoutWriter { fd, inode } => format!(
                "holds the read end of pipe:[{inode}] (fd {fd}) that no live process can write to"
            ),
            Dangling::SocketPeerClosed { fd, inode } => {
                format!("holds unix socket:[{inode}] (fd {fd}) whose peer was closed")
            }
            Dangling::SocketPeerUnheld { fd, inode, peer } => format!(
                "holds unix socket:[{inode}] (fd {fd}) whose peer socket:[{peer}] no live process holds"
            ),
        }
    }

    /// Whether this rests on seeing every descriptor on the host (an
    /// uninspected process might hold the other end). A closed peer is the
    /// kernel's word and does not.
    pub(super) fn needs_full_view(&self) -> bool {
        !matches!(self, Dangling::SocketPeerClosed { .. })
    }
}

pub(super) fn dangling_endpoints(
    p: &Process,
    pipes: &PipeEnds,
    sockets: &SocketHolders,
) -> Vec<Dangling> {
    p.fds
        .iter()
        .filter_map(|fd| match fd.kind {
            FdKind::Pipe if fd.access_mode() == Some(0) && !pipes.has_writer(fd.inode) => {
                Some(Dangling::PipeWithoutWriter {
                    fd: fd.fd,
                    inode: fd.inode,
                })
            }
            // Listening and unconnected sockets have no peer at all and
            // are neither.
            FdKind::UnixSocket if fd.peer_closed => Some(Dangling::SocketPeerClosed {
                fd: fd.fd,
                inode: fd.inode,
            }),
            FdKind::UnixSocket => match fd.peer_inode {
                Some(peer) if !sockets.is_held(peer) => Some(Dangling::SocketPeerUnheld {
                    fd: fd.fd,
                    inode: fd.inode,
                    peer,
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
