//! Printed `kill` lines for a `--proc-root` that shows another pid
//! namespace (a container's `/proc`): its pid numbers name other processes
//! here, so each such line either enters that namespace first or is
//! commented out, and says which namespace it is for.

use std::path::Path;

use semleak_platform::control::{self, PidNamespace};

use crate::analyze::{CleanupStep, Finding, ForeignPids};

/// Mark the signal steps of `findings` as for the namespace `proc_root`
/// shows; nothing changes when it is semleak's own.
pub fn mark_foreign_pids(findings: &mut [Finding], proc_root: &Path) {
    let Some(ns) = foreign(control::pid_namespace(proc_root), proc_root) else {
        return;
    };
    for f in findings {
        for step in &mut f.cleanup {
            if let CleanupStep::Signal(s) = step {
                s.namespace = Some(ns.clone());
            }
        }
    }
}

/// The namespace `ns` as a cleanup step names it, or `None` for ours.
pub fn foreign(ns: PidNamespace, proc_root: &Path) -> Option<ForeignPids> {
    let PidNamespace::Other { id, enter_via } = ns else {
        return None;
    };
    // The path goes into a comment: only when it cannot end the line.
    let proc_root = proc_root
        .to_str()
        .filter(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
        })
        .map(str::to_string);
    Some(ForeignPids {
        id,
        enter_via,
        proc_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespace_is_not_marked() {
        assert_eq!(foreign(PidNamespace::Own, Path::new("/proc")), None);
    }

    #[test]
    fn a_proc_root_that_could_end_a_comment_line_is_left_out() {
        let ns = PidNamespace::Other {
            id: Some(4026532200),
            enter_via: Some(4242),
        };
        let marked = foreign(ns, Path::new("/proc/4242/root/proc")).unwrap();
        assert_eq!(marked.proc_root.as_deref(), Some("/proc/4242/root/proc"));
        assert_eq!(marked.enter_via, Some(4242));
        let marked = foreign(ns, Path::new("/x\n$(y)")).unwrap();
        assert_eq!(marked.proc_root, None);
    }
}
