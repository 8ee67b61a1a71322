//! Who probably created a semaphore, from its name.

use semleak_platform::{RawName, Snapshot};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creator {
    /// CPython multiprocessing (`mp-` + 8 characters): named only under the
    /// spawn and forkserver start methods; the resource tracker should have
    /// unlinked it.
    CpythonMultiprocessing,
    /// loky (`loky-PID-` + 8 characters); the pid is the creator's.
    Loky {
        pid: i32,
    },
    Unknown,
}

impl Creator {
    pub fn infer(name: &RawName) -> Creator {
        let n = name.as_bytes();
        if let Some(rest) = n.strip_prefix(b"mp-") {
            if rest.len() == 8 && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                return Creator::CpythonMultiprocessing;
            }
        }
        if let Some(rest) = n.strip_prefix(b"loky-") {
            let mut parts = rest.splitn(2, |b| *b == b'-');
            let pid = parts
                .next()
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|p| p.parse::<i32>().ok());
            if let (Some(pid), Some(_)) = (pid, parts.next()) {
                return Creator::Loky { pid };
            }
        }
        Creator::Unknown
    }

    /// The family of a library that names its semaphores randomly per run;
    /// `None` where the name itself is what identifies the object.
    pub fn family(&self) -> Option<&'static str> {
        match self {
            Creator::CpythonMultiprocessing => Some("multiprocessing"),
            Creator::Loky { .. } => Some("loky"),
            Creator::Unknown => None,
        }
    }

    /// How a group of this creator's semaphores is named in a summary.
    pub fn label(&self) -> &'static str {
        match self {
            Creator::CpythonMultiprocessing => "CPython multiprocessing (mp-*)",
            Creator::Loky { .. } => "loky (loky-*)",
            Creator::Unknown => "unattributed",
        }
    }

    /// One evidence line about the creator, with liveness where the name
    /// carries a pid.
    pub fn describe(&self, snapshot: &Snapshot) -> String {
        match self {
            Creator::CpythonMultiprocessing => "creator: CPython multiprocessing (`mp-` prefix), \
                 spawn or forkserver start method; its resource tracker did not unlink it"
                .to_string(),
            Creator::Loky { pid } => {
                let alive = snapshot
                    .processes
                    .iter()
                    .any(|p| p.pid == *pid && !p.is_zombie());
                format!(
                    "creator: loky (joblib / ProcessPoolExecutor backend), created by pid {pid}, which is {}",
                    if alive { "still running (or the pid was reused)" } else { "gone" }
                )
            }
            Creator::Unknown => "creator: unknown (no known library prefix)".to_string(),
        }
    }

    pub fn recommendation(&self) -> &'static str {
        match self {
            Creator::CpythonMultiprocessing => {
                "A Python program using multiprocessing (spawn/forkserver) was killed before its \
                 resource tracker could unlink its semaphores (SIGKILL, OOM kill, or the tracker \
                 itself was killed). Shut pools down cleanly (`with Pool() as p:` / \
                 `executor.shutdown()`), send SIGTERM with a grace period instead of SIGKILL, and \
                 avoid creating Lock/Event/Queue objects you do not need (an Event costs 5 semaphores)."
            }
            Creator::Loky { .. } => {
                "A loky/joblib worker pool was killed before cleaning up. Let the pool shut down \
                 (`executor.shutdown(wait=True)`, or joblib's `parallel_config` context), and \
                 give timeouts SIGTERM with a grace period instead of SIGKILL."
            }
            Creator::Unknown => {
                "The creating program exited without calling sem_unlink(). Unlink named \
                 semaphores once every user has opened them (or on shutdown), and make crash \
                 paths unlink too."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            Creator::infer(&"mp-ab12cd_4".into()),
            Creator::CpythonMultiprocessing
        );
        assert_eq!(Creator::infer(&"mp-short".into()), Creator::Unknown);
        assert_eq!(
            Creator::infer(&"loky-4242-x1y2z3w4".into()),
            Creator::Loky { pid: 4242 }
        );
        assert_eq!(Creator::infer(&"loky-abc-x".into()), Creator::Unknown);
        assert_eq!(Creator::infer(&"loky-12".into()), Creator::Unknown);
        assert_eq!(Creator::infer(&RawName(vec![0xff])), Creator::Unknown);
    }
}
