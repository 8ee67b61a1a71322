//! Who holds which named semaphore, and the groups of sibling processes
//! that hold them: the one attribution `semaphore_pressure`,
//! `per_worker_semaphores` and `semaphore_hoarding` share, so that no
//! semaphore is counted twice and Linux and macOS read alike.
//!
//! A semaphore is one entry however many processes hold it: on Linux a
//! `/dev/shm/sem.*` file (holders matched by device and inode, unlinked
//! ones included); on macOS a name held open (`PROX_FDTYPE_PSEM`), byte
//! for byte as the kernel stores it.

use std::collections::{BTreeMap, HashMap, HashSet};

use semleak_platform::{Process, Snapshot};

use super::process_tree::command_text;
use super::Subject;

/// One distinct semaphore.
#[derive(Debug, Clone)]
pub struct SemEntry {
    /// As people name it: the path on Linux, the name on macOS.
    pub label: String,
    /// The name bytes (Linux: without `sem.`; macOS: exactly as held).
    pub name: Vec<u8>,
    /// Holders, sorted, semleak itself left out.
    pub holders: Vec<i32>,
    /// Still named, so it counts against the OS limit (macOS counts names
    /// in `kern.posix.sem.max`; a held but unlinked one does not count).
    pub named: bool,
    /// What a finding about it names: the file (Linux) or the name (macOS).
    pub subject: Subject,
}

/// Every semaphore of a Snapshot and who holds it.
#[derive(Debug, Default)]
pub struct SemTable {
    pub entries: Vec<SemEntry>,
    /// Per process, the indices of the distinct semaphores it holds.
    pub held: HashMap<i32, Vec<usize>>,
}

impl SemTable {
    pub fn of(snapshot: &Snapshot) -> SemTable {
        let me = snapshot.host.collector_pid;
        let mut table = SemTable::default();
        // Linux: the /dev/shm inventory, holders by device and inode.
        for s in &snapshot.shm.semaphores {
            let mut holders: Vec<i32> = s.holders.iter().copied().filter(|&p| p != me).collect();
            holders.sort_unstable();
            holders.dedup();
            table.push(SemEntry {
                label: s.path.to_lossy(),
                name: s.name.as_bytes().to_vec(),
                holders,
                named: !s.unlinked,
                subject: super::leaked_semaphore::file_subject(s),
            });
        }
        // macOS: names held open; a held name probed and found missing was
        // unlinked.
        let unlinked = unlinked_names(snapshot);
        let mut by_name: BTreeMap<&[u8], Vec<i32>> = BTreeMap::new();
        for p in snapshot.processes.iter().filter(|p| p.pid != me) {
            for n in &p.psem_names {
                by_name.entry(n.as_bytes()).or_default().push(p.pid);
            }
        }
        for (name, mut holders) in by_name {
            holders.sort_unstable();
            holders.dedup();
            let label = String::from_utf8_lossy(name).into_owned();
            table.push(SemEntry {
                subject: Subject::SemaphoreName(label.clone()),
                label,
                name: name.to_vec(),
                holders,
                named: !unlinked.contains(name),
            });
        }
        table
    }

    fn push(&mut self, entry: SemEntry) {
        let i = self.entries.len();
        for &pid in &entry.holders {
            self.held.entry(pid).or_default().push(i);
        }
        self.entries.push(entry);
    }

    /// The distinct semaphores `pid` holds.
    pub fn of_pid(&self, pid: i32) -> &[usize] {
        self.held.get(&pid).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The holder a semaphore is attributed to, so that every semaphore
    /// counts once: the holder whose parent does not also hold it (the one
    /// that created or first opened it; children inherit or are passed
    /// it), the lowest pid among several such.
    pub fn owner(&self, parents: &HashMap<i32, i32>, index: usize) -> Option<i32> {
        let holders = &self.entries[index].holders;
        holders
            .iter()
            .copied()
            .find(|h| {
                parents
                    .get(h)
                    .is_none_or(|pp| holders.binary_search(pp).is_err())
            })
            .or_else(|| holders.first().copied())
    }
}

/// macOS: names probed with `sem_open(name, 0)` and not found. Held ones
/// were unlinked: they live on for their holders but no longer count
/// against `kern.posix.sem.max`.
pub fn unlinked_names(snapshot: &Snapshot) -> HashSet<&[u8]> {
    snapshot
        .probed_semaphores
        .iter()
        .filter(|s| !s.exists)
        .map(|s| s.name.as_bytes())
        .collect()
}

/// A command line with free-standing numbers masked, so workers that
/// differ only in a pid, fd or handle number
/// (`spawn_main(tracker_fd=5, pipe_handle=11)`) group together; digits
/// inside a word (`python3.11`) stay.
pub fn group_key(p: &Process) -> String {
    let text = command_text(p);
    let mut out = String::with_capacity(text.len());
    let mut masking = false;
    let mut prev: Option<char> = None;
    for c in text.chars() {
        if c.is_ascii_digit() {
            let starts_number = !prev.is_some_and(|p| p.is_alphanumeric() || p == '.' || p == '_');
            if masking {
                // still inside a masked number
            } else if starts_number {
                masking = true;
                out.push('N');
            } else {
                out.push(c);
            }
        } else {
            masking = false;
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

/// One process of a sibling group and its semaphores.
#[derive(Debug)]
pub struct Member<'a> {
    pub process: &'a Process,
    /// Mapped (held) by this process alone: made, or opened by name, for
    /// itself.
    pub private: Vec<usize>,
    /// Also held by another process: inherited from or passed in by its
    /// parent, shared with siblings, or handed on to its own children.
    pub shared: Vec<usize>,
    /// Attributed to this process ([`SemTable::owner`]): its private ones
    /// plus those it shares only with its own descendants.
    pub owned: Vec<usize>,
}

/// Children of one parent running the same command line (numbers masked)
/// that hold semaphores.
#[derive(Debug)]
pub struct SiblingGroup<'a> {
    pub parent: i32,
    pub key: String,
    /// By pid.
    pub members: Vec<Member<'a>>,
}

impl SiblingGroup<'_> {
    pub fn private_total(&self) -> usize {
        self.members.iter().map(|m| m.private.len()).sum()
    }
}

/// Every group of sibling semaphore holders (a lone holder is a group of
/// one), largest private total first.
pub fn sibling_groups<'a>(snapshot: &'a Snapshot, table: &SemTable) -> Vec<SiblingGroup<'a>> {
    let parents: HashMap<i32, i32> = snapshot.processes.iter().map(|p| (p.pid, p.ppid)).collect();
    let mut owned: HashMap<i32, Vec<usize>> = HashMap::new();
    for i in 0..table.entries.len() {
        if let Some(o) = table.owner(&parents, i) {
            owned.entry(o).or_default().push(i);
        }
    }
    let mut groups: BTreeMap<(i32, String), Vec<Member<'a>>> = BTreeMap::new();
    for p in &snapshot.processes {
        let held = table.of_pid(p.pid);
        if held.is_empty() {
            continue;
        }
        let (private, shared): (Vec<usize>, Vec<usize>) = held
            .iter()
            .partition(|&&i| table.entries[i].holders == [p.pid]);
        groups
            .entry((p.ppid, group_key(p)))
            .or_default()
            .push(Member {
                process: p,
                private,
                shared,
                owned: owned.remove(&p.pid).unwrap_or_default(),
            });
    }
    let mut out: Vec<SiblingGroup<'a>> = groups
        .into_iter()
        .map(|((parent, key), mut members)| {
            members.sort_by_key(|m| m.process.pid);
            SiblingGroup {
                parent,
                key,
                members,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.private_total()
            .cmp(&a.private_total())
            .then(a.parent.cmp(&b.parent))
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

/// "5" or "3–7 (mostly 5)": how many each of several processes has.
pub fn per_process(counts: impl IntoIterator<Item = usize>) -> String {
    let mut hist: BTreeMap<usize, usize> = BTreeMap::new();
    for n in counts {
        *hist.entry(n).or_default() += 1;
    }
    let min = *hist.keys().next().unwrap_or(&0);
    let max = *hist.keys().next_back().unwrap_or(&0);
    if min == max {
        return min.to_string();
    }
    let mode = hist
        .iter()
        .max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)))
        .map(|(n, _)| *n)
        .unwrap_or(0);
    format!("{min}–{max} (mostly {mode})")
}

/// A process's command line for a one-line summary: the program without
/// its directory, then the arguments, cut to `max` characters.
pub fn short_command(p: &Process, max: usize) -> String {
    let text = match p.cmdline.split_first() {
        Some((prog, args)) => {
            let prog = prog.to_lossy();
            let base = prog.rsplit('/').next().unwrap_or(&prog).to_string();
            std::iter::once(base)
                .chain(args.iter().map(|a| a.to_lossy()))
                .collect::<Vec<_>>()
                .join(" ")
        }
        None => command_text(p),
    };
    cut(&text, max)
}

/// Cut text to `max` characters with an ellipsis.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;

    /// A parent passing one semaphore to each of two workers, and each
    /// worker making two of its own.
    fn family() -> Snapshot {
        let mut snap = snapshot();
        snap.processes = vec![
            process(100, 1, "python3 main.py"),
            process(
                101,
                100,
                "python3 -c spawn_main(tracker_fd=5, pipe_handle=8)",
            ),
            process(
                102,
                100,
                "python3 -c spawn_main(tracker_fd=5, pipe_handle=10)",
            ),
        ];
        snap.shm.semaphores = vec![
            sem("mp-pass0001", 1, &[100, 101]),
            sem("mp-pass0002", 2, &[100, 102]),
            sem("mp-own00011", 3, &[101]),
            sem("mp-own00012", 4, &[101]),
            sem("mp-own00021", 5, &[102]),
            sem("mp-own00022", 6, &[102]),
        ];
        snap
    }

    #[test]
    fn workers_split_into_private_and_shared() {
        let snap = family();
        let table = SemTable::of(&snap);
        let groups = sibling_groups(&snap, &table);
        let workers = groups.iter().find(|g| g.parent == 100).unwrap();
        assert_eq!(
            workers.key,
            "python3 -c spawn_main(tracker_fd=N, pipe_handle=N)"
        );
        assert_eq!(workers.members.len(), 2);
        for m in &workers.members {
            assert_eq!((m.private.len(), m.shared.len()), (2, 1));
            assert_eq!(m.owned, m.private, "passed-in ones are the parent's");
        }
        assert_eq!(workers.private_total(), 4);
        let parent = groups.iter().find(|g| g.parent == 1).unwrap();
        assert_eq!(parent.members[0].owned.len(), 2);
        assert_eq!(
            parent.members[0].shared.len(),
            2,
            "its children hold them too"
        );
        assert!(parent.members[0].private.is_empty());
    }

    #[test]
    fn every_semaphore_is_owned_once() {
        let snap = family();
        let table = SemTable::of(&snap);
        let groups = sibling_groups(&snap, &table);
        let owned: usize = groups
            .iter()
            .flat_map(|g| &g.members)
            .map(|m| m.owned.len())
            .sum();
        assert_eq!(owned, table.entries.len());
    }

    #[test]
    fn macos_names_are_exact_and_unlinked_ones_are_not_named() {
        let mut snap = macos_snapshot();
        let mut a = process(10, 1, "app");
        a.psem_names = vec!["/foo".into(), "foo".into(), "/gone".into(), "/foo".into()];
        snap.processes = vec![a];
        snap.probed_semaphores = vec![semleak_platform::ProbedSemaphore {
            name: "/gone".into(),
            exists: false,
        }];
        let table = SemTable::of(&snap);
        let labels: Vec<(&str, bool)> = table
            .entries
            .iter()
            .map(|e| (e.label.as_str(), e.named))
            .collect();
        assert_eq!(
            labels,
            vec![("/foo", true), ("/gone", false), ("foo", true)]
        );
        assert_eq!(table.of_pid(10).len(), 3);
    }

    #[test]
    fn counts_per_process() {
        assert_eq!(per_process([5, 5, 5]), "5");
        assert_eq!(per_process([5, 5, 3, 7]), "3–7 (mostly 5)");
    }

    #[test]
    fn group_keys_mask_free_standing_numbers_only() {
        let key = |cmd: &str| group_key(&process(1, 0, cmd));
        assert_eq!(
            key("python3.11 -c spawn_main(tracker_fd=5, pipe_handle=11) --workers 1800 mp-123 x2"),
            "python3.11 -c spawn_main(tracker_fd=N, pipe_handle=N) --workers N mp-N x2"
        );
    }
}
