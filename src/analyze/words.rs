//! The one place facts become words: headlines, resources, evidence and
//! cleanup lines of every finding, for every renderer (table, JSON, JUnit,
//! GitHub). Nothing else reads these strings back.

use super::facts::{
    CleanupStep, Evidence, ForeignPids, Group, Headline, Signal, SignalNote, SignalStep,
    SignalTarget, Subject,
};
use super::shell_quote;

/// At most this many pids are listed in a caveat.
const PIDS_SHOWN: usize = 10;

/// A subject as the JSON `resources` names it.
pub fn subject(s: &Subject) -> String {
    match s {
        Subject::SemaphoreFile { path, .. } => path.to_lossy(),
        Subject::SemaphoreName(label) | Subject::Directory(label) | Subject::Limit(label) => {
            label.clone()
        }
        Subject::Pipe(inode) => format!("pipe:[{inode}]"),
        Subject::Socket(inode) => format!("socket:[{inode}]"),
    }
}

/// The headline of a finding about `count` subjects.
pub fn headline(h: &Headline, count: usize) -> String {
    let (group, one, many) = match h {
        Headline::Said(text) => return text.clone(),
        Headline::Unheld(g) => (g, "is held by no process", "are held by no process"),
        Headline::LeftByCommand(g) => (
            g,
            "was left by the command, held by no process",
            "were left by the command, held by no process",
        ),
        Headline::HeldOnlyByLeftovers(g) => (
            g,
            "is held only by processes the command left running",
            "are held only by processes the command left running",
        ),
        Headline::AppearedUnheld(g) => (
            g,
            "appeared during the run and is held by no process",
            "appeared during the run and are held by no process",
        ),
    };
    match group {
        Group::One(name) if count <= 1 => format!("semaphore {name} {one}"),
        Group::One(_) => format!("{count} semaphores {many}"),
        Group::Family(label) if count == 1 => format!("1 {label} semaphore {one}"),
        Group::Family(label) => format!("{count} {label} semaphores {many}"),
        Group::Prefix(prefix) if count == 1 => format!("1 semaphore named {prefix}* {one}"),
        Group::Prefix(prefix) => format!("{count} semaphores named {prefix}* {many}"),
    }
}

fn pid_list(pids: &[i32]) -> String {
    let shown: Vec<String> = pids.iter().take(PIDS_SHOWN).map(i32::to_string).collect();
    let more = if pids.len() > PIDS_SHOWN { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// One piece of evidence as a sentence.
pub fn evidence(e: &Evidence) -> String {
    match e {
        Evidence::Said(text) => text.clone(),
        Evidence::NoProcessMaps {
            dev,
            inode,
            inspected,
        } => format!(
            "no process maps it (matched by device {dev} and inode {inode} across {inspected} \
             inspected processes)"
        ),
        Evidence::NoneOfThemMapped { inspected } => format!(
            "none of them is mapped by any process (matched by device and inode across \
             {inspected} inspected processes)"
        ),
        Evidence::NoneOfManyMapped { count } => {
            format!("{count} semaphores; none is mapped by any process (matched by device and inode)")
        }
        Evidence::Uninspected {
            pids,
            whatever_uid: true,
            advice,
        } => format!(
            "not certain: {} uninspected process(es) could hold it, whatever their uid (pids {}); {advice}",
            pids.len(),
            pid_list(pids)
        ),
        Evidence::Uninspected {
            pids,
            whatever_uid: false,
            advice,
        } => format!(
            "not certain: {} process(es) could not be inspected (pids {}); {advice}",
            pids.len(),
            pid_list(pids)
        ),
        Evidence::NestedPidNamespace => "not certain: semleak ran in a nested pid namespace, so \
             processes outside it (which may share this directory) were not seen"
            .into(),
        Evidence::ProcRootMismatch => "not certain: --proc-root does not show every process \
             that could map this directory (see the visibility note)"
            .into(),
        Evidence::UnsafeName => "its name holds bytes that cannot be shown safely in a shell \
             command (control, invisible or non-UTF-8 characters): the cleanup line picks it by inode"
            .into(),
        Evidence::AppearedDuringRun => {
            "appeared while the command ran (absent from the snapshot before it)".into()
        }
        Evidence::MappedOnlyByLeftovers(pids) => {
            let pids: Vec<String> = pids.iter().map(i32::to_string).collect();
            format!("mapped only by leftover descendant(s) {}", pids.join(", "))
        }
        Evidence::MappedByDescendant { label } => format!("mapped by descendant {label} during the run"),
        Evidence::NoDescendantSeen => "no descendant of the command was seen mapping it: another \
             process on this host may have made it"
            .into(),
        Evidence::RemovedByRunClean { removed, of } => {
            format!("removed by `semleak run --clean` ({removed} of {of})")
        }
    }
}

/// One cleanup step as the line a person runs (or reads, commented out).
pub fn cleanup(step: &CleanupStep) -> String {
    match step {
        CleanupStep::RemoveFile { path, .. } => match shell_quote(path.as_bytes()) {
            Some(quoted) => format!("rm -- {quoted}"),
            None => "# no safe command: the name cannot be shown safely".into(),
        },
        CleanupStep::CleanByInode {
            inode,
            shm_dir,
            all_users,
            ..
        } => {
            let mut line = format!("semleak clean --kind leaked_semaphore --inode {inode}");
            if let Some(dir) = shm_dir {
                line.push_str(&format!(" --shm-dir {dir}"));
            }
            if *all_users {
                line.push_str(" --all-users");
            }
            line.push_str(" --yes");
            line
        }
        CleanupStep::NoSafeCommandForDirectory => {
            "# no safe command: the directory name itself cannot be shown safely".into()
        }
        CleanupStep::UnlinkByName(name) => {
            let code = format!("import _multiprocessing; _multiprocessing.sem_unlink(\"{name}\")");
            match shell_quote(code.as_bytes()) {
                Some(code) => format!("python3 -c {code}"),
                None => "# no safe command: the name cannot be shown safely".into(),
            }
        }
        CleanupStep::Signal(s) => signal_line(s),
        CleanupStep::NoSignalHelps { pid } => format!(
            "# no signal helps: pid {pid} does not handle SIGCHLD; restart the container or \
             service to clear them"
        ),
    }
}

fn signal_note(note: SignalNote) -> &'static str {
    match note {
        SignalNote::ReapNudge => "prompts a SIGCHLD handler to reap; harmless otherwise",
        SignalNote::ReapNudgeThenRestart => {
            "prompts a SIGCHLD handler to reap; restart the container or service to clear the rest"
        }
        SignalNote::StopsLiveParent => {
            "stops the live parent (run it only if you mean to); init adopts and reaps the zombies"
        }
        SignalNote::TrackerLast => {
            "only if still running: the resource tracker exits by itself once its workers are \
             gone, after unlinking their semaphores"
        }
    }
}

/// `[sleep N; ]kill -SIG TARGET`.
fn signal_command(s: &SignalStep) -> String {
    let signal = match s.signal {
        Signal::Term => "TERM",
        Signal::Kill => "KILL",
        Signal::Chld => "CHLD",
    };
    let target = match &s.target {
        SignalTarget::Group(pgrp) => format!("-- -{pgrp}"),
        SignalTarget::Pids(pids) => pids
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    };
    let sleep = s
        .after_secs
        .map(|secs| format!("sleep {secs}; "))
        .unwrap_or_default();
    format!("{sleep}kill -{signal} {target}")
}

fn signal_line(s: &SignalStep) -> String {
    let command = signal_command(s);
    let note = s.note.map(signal_note);
    let line = match &s.namespace {
        None => match note {
            Some(note) => format!("{command}  # {note}"),
            None => command,
        },
        Some(ns) => in_namespace(&command, note, ns),
    };
    if s.commented_out {
        format!("# {line}")
    } else {
        line
    }
}

/// A signal line for pids of another namespace: entered with `nsenter`
/// when a process inside it is visible from here, else commented out; each
/// says which namespace its pids are in.
fn in_namespace(command: &str, note: Option<&str>, ns: &ForeignPids) -> String {
    let which = match ns.id {
        Some(id) => format!("pid namespace pid:[{id}]"),
        None => "a pid namespace".to_string(),
    };
    let source = match &ns.proc_root {
        Some(p) => format!("{which} (--proc-root {p})"),
        None => format!("{which} (--proc-root)"),
    };
    let note = note.map(|c| format!("; {c}")).unwrap_or_default();
    match ns.enter_via {
        Some(pid) => {
            format!("nsenter --target {pid} --pid -- sh -c '{command}'  # pids in {source}{note}")
        }
        None => format!("# pids in {source}, which this namespace cannot enter: {command}{note}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill(signal: Signal, target: SignalTarget) -> SignalStep {
        SignalStep::new(signal, target)
    }

    #[test]
    fn foreign_lines_enter_the_namespace_or_are_commented_out() {
        let reachable = ForeignPids {
            id: Some(4026532200),
            enter_via: Some(4242),
            proc_root: Some("/proc/4242/root/proc".into()),
        };
        let mut s = kill(Signal::Kill, SignalTarget::Group(200));
        s.after_secs = Some(5);
        s.namespace = Some(reachable.clone());
        assert_eq!(
            signal_line(&s),
            "nsenter --target 4242 --pid -- sh -c 'sleep 5; kill -KILL -- -200'  \
             # pids in pid namespace pid:[4026532200] (--proc-root /proc/4242/root/proc)"
        );
        let mut s = kill(Signal::Chld, SignalTarget::Pids(vec![500]));
        s.note = Some(SignalNote::ReapNudge);
        s.namespace = Some(reachable);
        assert_eq!(
            signal_line(&s),
            "nsenter --target 4242 --pid -- sh -c 'kill -CHLD 500'  \
             # pids in pid namespace pid:[4026532200] (--proc-root /proc/4242/root/proc); \
             prompts a SIGCHLD handler to reap; harmless otherwise"
        );
        let mut s = kill(Signal::Term, SignalTarget::Pids(vec![201]));
        s.namespace = Some(ForeignPids {
            id: None,
            enter_via: None,
            proc_root: None,
        });
        assert_eq!(
            signal_line(&s),
            "# pids in a pid namespace (--proc-root), which this namespace cannot enter: kill -TERM 201"
        );
        // Commented out stays commented out, and names the namespace.
        s.commented_out = true;
        assert!(signal_line(&s).starts_with("# # pids in a pid namespace"));
    }

    #[test]
    fn headlines_count_their_subjects() {
        let one = Headline::Unheld(Group::One("mp-x".into()));
        assert_eq!(headline(&one, 1), "semaphore mp-x is held by no process");
        let left = Headline::LeftByCommand(Group::One("mp-x".into()));
        assert_eq!(
            headline(&left, 3),
            "3 semaphores were left by the command, held by no process"
        );
        let prefix = Headline::Unheld(Group::Prefix("app-".into()));
        assert_eq!(
            headline(&prefix, 2),
            "2 semaphores named app-* are held by no process"
        );
        assert_eq!(
            headline(&prefix, 1),
            "1 semaphore named app-* is held by no process"
        );
    }
}
