//! `semleak clean`'s plan and, after `--yes`, what happened: the types the
//! clean command builds and the renderers show (JSON: this structure).

use semleak_platform::RawName;
use serde::Serialize;

use crate::analyze::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    UnlinkSemaphore,
    Terminate,
    NudgeParent,
    /// Nothing semleak can do; the action says what would fix it.
    Explain,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::UnlinkSemaphore => "unlink",
            ActionKind::Terminate => "terminate",
            ActionKind::NudgeParent => "nudge parent",
            ActionKind::Explain => "explain",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Would be done with `--yes`.
    Planned,
    /// Not planned, by policy (ownership, age, flags, visibility); says why.
    Skipped,
    Done,
    /// A re-check right before acting declined it (held, replaced, reused pid…).
    Refused,
    /// The OS refused or an error happened.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Skipped => "skipped",
            Status::Done => "done",
            Status::Refused => "refused",
            Status::Failed => "failed",
        }
    }
}

/// The precise target an executor needs; not serialised.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    None,
    Unlink {
        /// The entry's name in the shared-memory directory (`sem.NAME`).
        file_name: RawName,
        dev: u64,
        inode: u64,
    },
    Terminate {
        pid: i32,
        start_ticks: u64,
        /// A resource tracker: signalled only if it does not exit by itself
        /// once the workers it serves are gone.
        tracker: bool,
    },
    Nudge {
        pid: i32,
        start_ticks: u64,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub action: ActionKind,
    /// The finding this action comes from.
    pub finding_id: String,
    pub kind: Kind,
    /// What is acted on: a path or "pid N (command)". Untrusted text:
    /// escape it for terminals.
    pub target: String,
    pub pids: Vec<i32>,
    /// Owner of the target, when known.
    pub owner_uid: Option<u32>,
    /// Why this action (or why not).
    pub why: String,
    pub status: Status,
    /// What happened, step by step.
    pub outcome: Vec<String>,
    #[serde(skip)]
    pub op: Op,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanSummary {
    pub planned: usize,
    pub skipped: usize,
    pub done: usize,
    pub refused: usize,
    pub failed: usize,
}

/// The plan, and after execution what happened. This is what `clean`
/// renders (JSON: this structure).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub schema_version: u32,
    pub semleak_version: String,
    pub command: String,
    /// True until the plan was executed (`--yes`).
    pub dry_run: bool,
    pub invoking_uid: u32,
    /// `--all-users`: other users' resources are acted on too.
    pub all_users: bool,
    pub allow_incomplete: bool,
    pub min_age_secs: u64,
    pub shm_dir: String,
    pub visibility_complete: bool,
    /// Things the reader must know (acting as root on others' resources, …).
    pub notes: Vec<String>,
    /// Findings a baseline or allowlist accepted: never cleaned.
    pub suppressed: crate::suppress::Suppressed,
    pub summary: CleanSummary,
    pub actions: Vec<Action>,
}

impl Plan {
    /// 0: everything planned was done, or a dry run; 1: something could not be.
    pub fn exit_code(&self) -> i32 {
        if self
            .actions
            .iter()
            .any(|a| matches!(a.status, Status::Refused | Status::Failed))
        {
            1
        } else {
            0
        }
    }

    /// Recompute the summary from the actions' statuses.
    pub fn recount(&mut self) {
        let mut s = CleanSummary::default();
        for a in &self.actions {
            match a.status {
                Status::Planned => s.planned += 1,
                Status::Skipped => s.skipped += 1,
                Status::Done => s.done += 1,
                Status::Refused => s.refused += 1,
                Status::Failed => s.failed += 1,
            }
        }
        self.summary = s;
    }
}
