//! `leaked_semaphore` on macOS: a named semaphore that still exists when
//! probed by name (`sem_open(name, 0)`) but that no inspected process holds
//! open. macOS cannot list semaphores, so only names semleak was given (or
//! saw held earlier) can be found this way.
//!
//! Names are the kernel's bytes: XNU stores what was passed to `sem_open`,
//! so `/foo` and `foo` are two semaphores, and the cleanup unlinks exactly
//! the name that was found.

use std::collections::HashSet;

use semleak_platform::{ProbedSemaphore, RawName, Snapshot};

use super::creator::Creator;
use super::{shell_quote, CleanupStep, Confidence, Config, Finding, Kind, Severity, Subject};

pub fn check(snapshot: &Snapshot, _config: &Config) -> Vec<Finding> {
    let held: HashSet<&[u8]> = snapshot
        .processes
        .iter()
        .filter(|p| p.pid != snapshot.host.collector_pid)
        .flat_map(|p| p.psem_names.iter().map(|n| n.as_bytes()))
        .collect();
    let mut out: Vec<Finding> = snapshot
        .probed_semaphores
        .iter()
        .filter(|s| s.exists && !held.contains(s.name.as_bytes()))
        .map(|s| finding(snapshot, s))
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    out
}

/// The name without its leading slash, to recognise a library's prefix.
fn bare_name(s: &ProbedSemaphore) -> RawName {
    let n = s.name.as_bytes();
    RawName::from(n.strip_prefix(b"/").unwrap_or(n))
}

fn finding(snapshot: &Snapshot, sem: &ProbedSemaphore) -> Finding {
    let hidden = &snapshot.visibility.skipped;
    // Semaphores have no owner we can read on macOS, so any uninspected
    // process could hold it.
    let confidence = if hidden.is_empty() {
        Confidence::Certain
    } else {
        Confidence::Likely
    };
    let name = sem.name.as_bytes();
    let mut f = Finding::new(Kind::LeakedSemaphore, name, Severity::Error, confidence);
    let label = sem.name.to_lossy();
    f.headline(format!("semaphore {label} is held by no process"));
    f.subjects = vec![Subject::SemaphoreName(label.clone())];
    f.say(format!(
        "sem_open(\"{label}\", 0) found it, and none of the {} inspected processes has it open (PROX_FDTYPE_PSEM descriptors)",
        snapshot.visibility.processes_inspected
    ));
    if !name.starts_with(b"/") {
        f.say(format!(
            "its name has no leading slash: to macOS `{label}` and `/{label}` are two different semaphores"
        ));
    }
    let creator = Creator::infer(&bare_name(sem));
    f.say(creator.describe(snapshot));
    if !hidden.is_empty() {
        let pids: Vec<String> = hidden.iter().take(10).map(|s| s.pid.to_string()).collect();
        f.say(format!(
            "not certain: {} process(es) could not be inspected (pids {}{}); {}",
            hidden.len(),
            pids.join(", "),
            if hidden.len() > 10 { ", …" } else { "" },
            crate::analyze::view_advice(snapshot)
        ));
    }
    f.say(
        "it still counts against kern.posix.sem.max until it is unlinked (there is no file to remove on macOS)"
            .into(),
    );
    f.recommendation = creator.recommendation().to_string();
    // No file to rm on macOS: sem_unlink through CPython, when the name is
    // plain enough to sit inside a Python string literal unescaped.
    let plain = !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    let code = format!("import _multiprocessing; _multiprocessing.sem_unlink(\"{label}\")");
    if plain && shell_quote(code.as_bytes()).is_some() {
        f.cleanup = vec![CleanupStep::UnlinkByName(label.clone())];
    } else {
        f.say("the name has unusual bytes: unlink it with sem_unlink(3) from a program".into());
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;

    fn probed(name: &str, exists: bool) -> ProbedSemaphore {
        ProbedSemaphore {
            name: name.into(),
            exists,
        }
    }

    #[test]
    fn existing_unheld_name_is_a_leak() {
        let mut snap = macos_snapshot();
        let mut holder = process(10, 1, "python3 app.py");
        holder.psem_names = vec!["/mp-held0001".into()];
        snap.processes = vec![holder];
        snap.probed_semaphores = vec![
            probed("/mp-ab12cd34", true),
            probed("/mp-held0001", true),
            probed("/mp-gone0000", false),
        ];
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::LeakedSemaphore);
        assert_eq!(f[0].confidence, Confidence::Certain);
        assert_eq!(f[0].resources(), vec!["/mp-ab12cd34"]);
        assert_eq!(
            f[0].cleanup_lines(),
            vec![
                "python3 -c 'import _multiprocessing; _multiprocessing.sem_unlink(\"/mp-ab12cd34\")'"
            ]
        );
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("CPython multiprocessing")));
        assert_eq!(
            f[0].id,
            crate::analyze::finding_id(Kind::LeakedSemaphore, b"/mp-ab12cd34")
        );
    }

    #[test]
    fn uninspected_processes_make_it_likely() {
        let mut snap = macos_snapshot();
        snap.probed_semaphores = vec![probed("/x", true)];
        skip(&mut snap, 55, Some(0));
        let f = check(&snap, &Config::default());
        assert_eq!(f[0].confidence, Confidence::Likely);
        assert!(f[0].evidence_lines().iter().any(|e| e.contains("pids 55")));
    }

    #[test]
    fn semleak_itself_is_not_a_holder_and_odd_names_get_no_command() {
        let mut snap = macos_snapshot();
        let mut me = process(snap.host.collector_pid, 1, "semleak scan");
        me.psem_names = vec!["/a b".into()];
        snap.processes = vec![me];
        snap.probed_semaphores = vec![probed("/a b", true), probed("/a b", true)];
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1, "duplicates collapse");
        assert!(f[0].cleanup_lines().is_empty());
    }

    #[test]
    fn foo_and_slash_foo_are_two_semaphores() {
        // A program did sem_open("foo") without the slash and is gone; an
        // unrelated "/foo" is held. XNU keeps both names byte for byte.
        let mut snap = macos_snapshot();
        let mut holder = process(10, 1, "python3 app.py");
        holder.psem_names = vec!["/foo".into()];
        snap.processes = vec![holder];
        snap.probed_semaphores = vec![probed("/foo", true), probed("foo", true)];
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].resources(), vec!["foo"]);
        assert_eq!(f[0].summary_text(), "semaphore foo is held by no process");
        assert_eq!(
            f[0].cleanup_lines(),
            vec!["python3 -c 'import _multiprocessing; _multiprocessing.sem_unlink(\"foo\")'"],
            "unlink exactly the name that was found, not /foo"
        );
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("two different semaphores")));
    }
}
