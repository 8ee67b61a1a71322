//! Printed `kill` lines for a `--proc-root` that shows another pid
//! namespace (a container's `/proc`): its pid numbers name other processes
//! here, so each such line either enters that namespace first or is
//! commented out, and says which namespace it is for.

use std::path::Path;

use semleak_platform::control::{self, PidNamespace};

use crate::analyze::Finding;

/// Rewrite the `kill` lines of `findings` for the namespace `proc_root`
/// shows; nothing changes when it is semleak's own.
pub fn mark_foreign_pids(findings: &mut [Finding], proc_root: &Path) {
    let ns = control::pid_namespace(proc_root);
    for f in findings {
        for line in &mut f.cleanup {
            if let Some(new) = for_namespace(line, ns, proc_root) {
                *line = new;
            }
        }
    }
}

/// `line` rewritten for `ns`, or `None` when it is not a `kill` line or
/// the namespace is ours.
pub fn for_namespace(line: &str, ns: PidNamespace, proc_root: &Path) -> Option<String> {
    let PidNamespace::Other { id, enter_via } = ns else {
        return None;
    };
    // A line commented out because it stops a live program stays
    // commented out, and names the namespace like the rest.
    if let Some(inner) = line.strip_prefix("# ") {
        return for_namespace(inner, ns, proc_root).map(|l| format!("# {l}"));
    }
    let (command, comment) = match line.split_once("  # ") {
        Some((c, rest)) => (c, Some(rest)),
        None => (line, None),
    };
    if !(command.starts_with("kill ") || command.contains("; kill ")) {
        return None;
    }
    let which = match id {
        Some(id) => format!("pid namespace pid:[{id}]"),
        None => "a pid namespace".to_string(),
    };
    // The path goes into a comment: only when it cannot end the line.
    let root = proc_root.to_str().filter(|p| {
        p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    });
    let source = match root {
        Some(p) => format!("{which} (--proc-root {p})"),
        None => format!("{which} (--proc-root)"),
    };
    // Only digits, signal names, `--`, `;` and `sleep N` are expected
    // here; anything else is not wrapped in a shell command.
    let plain = command
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " ;-".contains(c));
    let note = comment.map(|c| format!("; {c}")).unwrap_or_default();
    Some(match enter_via {
        Some(pid) if plain => {
            format!("nsenter --target {pid} --pid -- sh -c '{command}'  # pids in {source}{note}")
        }
        _ => format!("# pids in {source}, which this namespace cannot enter: {command}{note}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespace_lines_are_untouched() {
        assert_eq!(
            for_namespace("kill -TERM 201", PidNamespace::Own, Path::new("/proc")),
            None
        );
    }

    #[test]
    fn foreign_lines_enter_the_namespace_or_are_commented_out() {
        let root = Path::new("/proc/4242/root/proc");
        let reachable = PidNamespace::Other {
            id: Some(4026532200),
            enter_via: Some(4242),
        };
        assert_eq!(
            for_namespace("sleep 5; kill -KILL -- -200", reachable, root).unwrap(),
            "nsenter --target 4242 --pid -- sh -c 'sleep 5; kill -KILL -- -200'  \
             # pids in pid namespace pid:[4026532200] (--proc-root /proc/4242/root/proc)"
        );
        assert_eq!(
            for_namespace("kill -CHLD 500  # prompts a handler", reachable, root).unwrap(),
            "nsenter --target 4242 --pid -- sh -c 'kill -CHLD 500'  \
             # pids in pid namespace pid:[4026532200] (--proc-root /proc/4242/root/proc); prompts a handler"
        );
        let unreachable = PidNamespace::Other {
            id: None,
            enter_via: None,
        };
        let line = for_namespace("kill -TERM 201", unreachable, Path::new("/x\n$(y)")).unwrap();
        assert_eq!(
            line,
            "# pids in a pid namespace (--proc-root), which this namespace cannot enter: kill -TERM 201"
        );
        assert_eq!(for_namespace("rm -- /dev/shm/sem.x", reachable, root), None);
    }
}
