//! What `semleak run` did: the report's additive `run` field.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the run did, in the report (additive `run` field).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RunInfo {
    pub command: Vec<String>,
    /// The command's status as a shell reports it (128+N when killed by signal N).
    pub exit_status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub killed_by_signal: Option<i32>,
    pub command_duration_ms: u64,
    pub samples: usize,
    pub subreaper: bool,
    /// Leftover descendants, and what semleak did about them.
    pub leftovers: usize,
    pub leftovers_terminated: usize,
    pub leftovers_killed: usize,
    pub leftovers_kept: usize,
    /// Gone before semleak signalled them.
    #[serde(default)]
    pub leftovers_exited: usize,
    /// Could not be signalled (no permission, say): they may still run, and
    /// the gate fails.
    #[serde(default)]
    pub leftovers_not_terminated: usize,
    /// Reparented descendants that exited on their own and were reaped by semleak.
    pub reaped_orphans: usize,
    /// Signals semleak received (and forwarded to the command while it ran).
    pub signals_received: Vec<i32>,
    /// `--clean`: the semaphores removed, and those kept with the reason
    /// (absent without `--clean`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean: Option<RunClean>,
}

/// What `semleak run --clean` removed and left.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RunClean {
    pub removed: Vec<String>,
    /// `[path, why]` for each semaphore left in place.
    pub kept: Vec<(String, String)>,
}
