//! Which processes map which shared-memory files: one pass over every
//! `/proc/PID/maps`, indexed by device and inode, so a batch of unlinks
//! reads each process once instead of once per file.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;
use std::time::Instant;

use super::parse::{parse_maps, parse_stat, MapsLine};

/// Holders of files on the given devices, and the processes whose maps
/// could not be read (possible holders of anything).
#[derive(Debug)]
pub(crate) struct HolderIndex {
    mapped: HashMap<(u64, u64), Vec<i32>>,
    /// Pids whose maps could not be read. Their uids prove nothing (a
    /// process can map a file and then change uids, or be passed the
    /// descriptor), so each could hold any file; zombies are left out
    /// because the kernel shows they map nothing.
    unreadable: Vec<i32>,
    /// The proc root's own pid namespace when it is a nested one: its
    /// processes are not all the processes that could map a file.
    pub(crate) nested_pid_namespace: Option<u64>,
    /// Why the proc root does not provably show the holders of the
    /// shared-memory directory (see `procview`); set by the unlink path,
    /// which knows the directory.
    pub(crate) proc_view: Option<(std::path::PathBuf, super::procview::ProcViewProblem)>,
    pub(crate) built: Instant,
}

impl HolderIndex {
    /// Read every process's maps once, keeping mappings of files on `devs`.
    /// semleak itself is left out: it reads semaphores, it never maps them.
    pub(crate) fn build(proc_root: &Path, devs: &HashSet<u64>) -> io::Result<HolderIndex> {
        let built = Instant::now();
        let own_pid = std::process::id() as i32;
        let mut index = HolderIndex {
            mapped: HashMap::new(),
            unreadable: Vec::new(),
            nested_pid_namespace: super::procs::nested_pid_namespace_inode(proc_root),
            proc_view: None,
            built,
        };
        for pid in super::procs::list_pids(proc_root)? {
            if pid == own_pid {
                continue;
            }
            let base = proc_root.join(pid.to_string());
            let mut maps = read_maps(&base, devs);
            // Empty maps: a kernel thread, a zombie, or a thread-group
            // leader that exited while its threads run on in the same
            // memory; for the last, a live thread's maps are the process's.
            if matches!(&maps, Ok((_, 0))) {
                if let Some(thread) = live_thread_of_exited_leader(&base, pid) {
                    maps = read_maps(&thread, devs);
                }
            }
            let maps = maps.map(|(lines, _)| lines);
            match maps {
                Ok(lines) => {
                    for l in lines {
                        let pids = index.mapped.entry((l.dev, l.inode)).or_default();
                        if pids.last() != Some(&pid) {
                            pids.push(pid);
                        }
                    }
                }
                Err(e) if gone(&e) => {}
                Err(_) if is_zombie(&base) => {}
                Err(_) => index.unreadable.push(pid),
            }
        }
        Ok(index)
    }

    /// Pids mapping the file (device, inode), in pid order.
    pub(crate) fn holders(&self, dev: u64, inode: u64) -> &[i32] {
        self.mapped.get(&(dev, inode)).map_or(&[], Vec::as_slice)
    }

    /// Pids that could not be inspected, in pid order.
    pub(crate) fn unreadable(&self) -> &[i32] {
        &self.unreadable
    }
}

/// The mappings of files on `devs`, and how many lines the maps had.
fn read_maps(base: &Path, devs: &HashSet<u64>) -> io::Result<(Vec<MapsLine>, usize)> {
    let f = File::open(base.join("maps"))?;
    let mut lines = 0usize;
    let kept = parse_maps(BufReader::with_capacity(64 * 1024, f), |dev, _, _| {
        lines += 1;
        devs.contains(&dev)
    })?;
    Ok((kept, lines))
}

/// `PROC/PID/task/TID` of a live thread when `pid` is a thread-group
/// leader in state Z whose group still has other threads.
fn live_thread_of_exited_leader(base: &Path, pid: i32) -> Option<std::path::PathBuf> {
    let stat = parse_stat(&std::fs::read(base.join("stat")).ok()?).ok()?;
    if stat.state != 'Z' || stat.num_threads <= 1 {
        return None;
    }
    let task = base.join("task");
    std::fs::read_dir(&task)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&tid| tid != pid)
        .map(|tid| task.join(tid.to_string()))
        .find(|dir| {
            std::fs::read(dir.join("stat"))
                .ok()
                .and_then(|b| parse_stat(&b).ok())
                .is_some_and(|s| !crate::model::state_has_ended(s.state))
        })
}

fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

fn is_zombie(base: &Path) -> bool {
    std::fs::read(base.join("stat"))
        .ok()
        .and_then(|b| parse_stat(&b).ok())
        .is_some_and(|s| (s.state == 'Z' && s.num_threads <= 1) || s.state == 'X')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn unreadable_maps_make_a_possible_holder_whatever_the_uid() {
        let root =
            std::env::temp_dir().join(format!("semleak-unit-holders-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        // 10: maps one file; 11: maps unreadable, another user's process;
        // 12: maps unreadable but a zombie.
        fs::create_dir_all(root.join("10")).unwrap();
        fs::write(
            root.join("10/maps"),
            "7f00-7f01 rw-s 00000000 00:1a 77 /dev/shm/sem.x\n7f01-7f02 rw-s 00000000 00:1b 78 /other\n",
        )
        .unwrap();
        fs::create_dir_all(root.join("11/maps")).unwrap();
        fs::write(root.join("11/status"), "Uid:\t4242\t4242\t4242\t4242\n").unwrap();
        fs::create_dir_all(root.join("12/maps")).unwrap();
        fs::write(
            root.join("12/stat"),
            "12 (z) Z 1 12 12 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 50 0 0\n",
        )
        .unwrap();
        let index = HolderIndex::build(&root, &[0x1a].into_iter().collect()).unwrap();
        assert_eq!(index.holders(0x1a, 77), &[10]);
        assert!(
            index.holders(0x1b, 78).is_empty(),
            "other devices are not kept"
        );
        assert_eq!(index.unreadable(), &[11]);
        fs::remove_dir_all(&root).unwrap();
    }
}
