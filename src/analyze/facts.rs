//! What a finding says, as facts: the things it is about ([`Subject`]), what
//! shows it ([`Evidence`]), its one-line headline ([`Headline`]) and how to
//! clean it up ([`CleanupStep`]). Rules build these; suppression, blame,
//! namespaces and the clean planner read and change them as data; only
//! [`super::words`] turns them into sentences, once, for every renderer.
//!
//! Some rules still word parts of their findings themselves
//! ([`Evidence::Said`], [`Headline::Said`]); no later stage reads or edits
//! that text, so it is theirs alone until they move to typed facts too.

use semleak_platform::RawName;

/// Rule-worded evidence lines as facts.
pub fn said(lines: Vec<String>) -> Vec<Evidence> {
    lines.into_iter().map(Evidence::Said).collect()
}

/// One thing a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// A named semaphore file in the shared-memory directory (`name`: as
    /// `sem_open` takes it, without the `sem.` of the file name).
    SemaphoreFile {
        dev: u64,
        inode: u64,
        path: RawName,
        name: RawName,
    },
    /// A named semaphore known by name only (macOS: there is no file), or
    /// as a process's label for it (`/dev/shm/sem.x`, `/x (unlinked)`).
    SemaphoreName(String),
    /// A mounted directory (the shared-memory filesystem).
    Directory(String),
    /// A kernel limit, by its sysctl name.
    Limit(String),
    /// A pipe, by inode.
    Pipe(u64),
    /// A socket, by inode.
    Socket(u64),
}

impl Subject {
    /// The file a removal acts on, by device and inode: what suppression,
    /// the planner and `run --clean` match on (never the path text).
    pub fn file_key(&self) -> Option<(u64, u64)> {
        match self {
            Subject::SemaphoreFile { dev, inode, .. } => Some((*dev, *inode)),
            _ => None,
        }
    }

    /// The names an allowlist's `name` glob is tried against: the whole
    /// path, its last component, and for a semaphore the name `sem_open`
    /// takes.
    pub fn names(&self) -> Vec<String> {
        let text = super::words::subject(self);
        let base = text.rsplit('/').next().unwrap_or(&text).to_string();
        let name = match self {
            Subject::SemaphoreFile { name, .. } => Some(name.to_lossy()),
            // A process's label of a semaphore it maps: `/dev/shm/sem.x`.
            Subject::SemaphoreName(_) => base.strip_prefix("sem.").map(str::to_string),
            _ => None,
        };
        let mut names = vec![text.clone(), base];
        names.extend(name);
        names
    }
}

/// A fact that shows (or qualifies) a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Worded by the rule itself (rules not yet on typed facts); nothing
    /// reads it but the renderers.
    Said(String),
    /// One semaphore: no inspected process maps this device and inode.
    NoProcessMaps {
        dev: u64,
        inode: u64,
        inspected: usize,
    },
    /// A group: none of its semaphores is mapped.
    NoneOfThemMapped { inspected: usize },
    /// `count` same-group semaphores merged into one finding by `run`.
    NoneOfManyMapped { count: usize },
    /// Caveat: processes semleak could not inspect could hold it.
    Uninspected {
        pids: Vec<i32>,
        /// Whatever their uid (Linux, where owners prove nothing) or just
        /// "could not be inspected" (macOS).
        whatever_uid: bool,
        /// What would widen the view ([`super::view_advice`]).
        advice: String,
    },
    /// Caveat: semleak ran in a nested pid namespace.
    NestedPidNamespace,
    /// Caveat: `--proc-root` does not show every process that could map
    /// the directory.
    ProcRootMismatch,
    /// Its name cannot be pasted into a shell: cleanup picks it by inode.
    UnsafeName,
    /// `run`: absent from the snapshot before the command.
    AppearedDuringRun,
    /// `run`: mapped, but only by descendants the command left running.
    MappedOnlyByLeftovers(Vec<i32>),
    /// `run`: a descendant (`label`) mapped it during the run.
    MappedByDescendant { label: String },
    /// `run`: no descendant was seen mapping it.
    NoDescendantSeen,
    /// `run --clean` removed `removed` of the finding's `of` subjects.
    RemovedByRunClean { removed: usize, of: usize },
}

impl Evidence {
    /// A caveat lowers confidence: what semleak could not see.
    pub fn is_caveat(&self) -> bool {
        matches!(
            self,
            Evidence::Uninspected { .. }
                | Evidence::NestedPidNamespace
                | Evidence::ProcRootMismatch
        )
    }
}

/// The finding in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Headline {
    /// Worded by the rule itself.
    Said(String),
    /// Unheld semaphores: one by name, or the finding's subjects counted.
    Unheld(Group),
    /// `run`: semaphores a descendant mapped, left unheld.
    LeftByCommand(Group),
    /// `run`: semaphores mapped only by the command's leftovers.
    HeldOnlyByLeftovers(Group),
    /// `run`: semaphores that appeared and that nobody was seen holding.
    AppearedUnheld(Group),
}

/// Whom a semaphore headline names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    /// One semaphore, by name.
    One(String),
    /// A creator family's semaphores (`label`: "loky (loky-*)").
    Family(String),
    /// Semaphores whose names share a prefix.
    Prefix(String),
}

impl Default for Headline {
    fn default() -> Self {
        Headline::Said(String::new())
    }
}

/// One step of a finding's cleanup, as a person would run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanupStep {
    /// `rm -- PATH`, the path quoted for any POSIX shell.
    RemoveFile { dev: u64, inode: u64, path: RawName },
    /// A `semleak clean` that picks a file by inode, for a name that cannot
    /// be shown safely.
    CleanByInode {
        dev: u64,
        inode: u64,
        /// `--shm-dir`, when not the default (already shell-quoted).
        shm_dir: Option<String>,
        all_users: bool,
    },
    /// The directory name itself cannot be shown safely: no command.
    NoSafeCommandForDirectory,
    /// macOS: `sem_unlink` of a plain name through CPython.
    UnlinkByName(String),
    /// Send a signal.
    Signal(SignalStep),
    /// No signal reaps `pid`'s zombies.
    NoSignalHelps { pid: i32 },
}

impl CleanupStep {
    /// The file this step removes, by device and inode.
    pub fn file_key(&self) -> Option<(u64, u64)> {
        match self {
            CleanupStep::RemoveFile { dev, inode, .. }
            | CleanupStep::CleanByInode { dev, inode, .. } => Some((*dev, *inode)),
            _ => None,
        }
    }
}

/// `[sleep N; ]kill -SIG TARGET  # why`, maybe commented out, maybe for
/// another pid namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalStep {
    pub signal: Signal,
    pub target: SignalTarget,
    /// Wait this long first (`sleep N; `).
    pub after_secs: Option<u32>,
    pub note: Option<SignalNote>,
    /// Stops a live program: printed commented out, so a pasted cleanup
    /// block stops nothing that is running.
    pub commented_out: bool,
    /// The pids are another namespace's (`--proc-root` of a container).
    pub namespace: Option<ForeignPids>,
}

impl SignalStep {
    pub fn new(signal: Signal, target: SignalTarget) -> Self {
        SignalStep {
            signal,
            target,
            after_secs: None,
            note: None,
            commented_out: false,
            namespace: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
    Chld,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalTarget {
    Pids(Vec<i32>),
    /// The whole process group.
    Group(i32),
}

/// Why a signal line is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalNote {
    /// SIGCHLD to a parent with a handler.
    ReapNudge,
    /// SIGCHLD to a namespace init or pid 1: nothing else can be done.
    ReapNudgeThenRestart,
    /// SIGTERM to a zombie's live parent.
    StopsLiveParent,
    /// SIGKILL of a resource tracker after its workers.
    TrackerLast,
}

/// The pid namespace a `--proc-root` shows, when it is not semleak's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignPids {
    /// The namespace id (`pid:[ID]`), when read.
    pub id: Option<u64>,
    /// A pid here of a process inside it, for `nsenter`.
    pub enter_via: Option<i32>,
    /// The `--proc-root`, when it can sit in a comment.
    pub proc_root: Option<String>,
}
