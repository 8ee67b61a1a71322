//! The cheap reads `semleak run` repeats while the command runs: the process
//! table from `stat` files only, the semaphore files' identities, one
//! process's shared-memory mappings and its command line.

use std::io;
use std::path::Path;

use super::parse::parse_stat;
use crate::control_types::{ProcEntry, SemId};
use crate::rawname::RawName;

fn read_entry(proc_root: &Path, pid: i32) -> Option<ProcEntry> {
    let bytes = std::fs::read(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let stat = parse_stat(&bytes).ok()?;
    Some(ProcEntry {
        pid,
        ppid: stat.ppid,
        state: stat.state,
        start_ticks: stat.start_ticks,
    })
}

/// The process table from `/proc/*/stat` only: cheap enough to read often.
pub fn process_table(proc_root: &Path) -> io::Result<Vec<ProcEntry>> {
    // list_pids is sorted, so the table is too.
    Ok(super::procs::list_pids(proc_root)?
        .into_iter()
        .filter_map(|pid| read_entry(proc_root, pid))
        .collect())
}

/// The `sem.*` entries of the shared-memory directory (entries only, no
/// `lstat`, no content).
pub fn semaphore_ids(dir: &Path) -> io::Result<Vec<SemId>> {
    super::shm::semaphore_ids(dir)
}

/// The command line of `pid`, or `None` when it cannot be read.
pub fn command_line(proc_root: &Path, pid: i32) -> Option<Vec<RawName>> {
    let bytes = std::fs::read(proc_root.join(pid.to_string()).join("cmdline")).ok()?;
    Some(super::parse::parse_cmdline(&bytes))
}

/// (device, inode) of every file of `shm_dev` that `pid` maps
/// (`PROCMAP_QUERY` where the kernel has it).
pub fn shm_mapping_ids(proc_root: &Path, pid: i32, shm_dev: u64) -> io::Result<Vec<(u64, u64)>> {
    super::procs::shm_mapping_ids(proc_root, pid, shm_dev)
}

#[cfg(test)]
mod tests {
    use super::super::signal::{identity, signal_same_process};
    use super::*;
    use crate::control_types::{Signal, SignalOutcome};

    #[test]
    fn own_process_is_in_the_table_and_identity_holds() {
        let me = std::process::id() as i32;
        let root = Path::new("/proc");
        let table = process_table(root).unwrap();
        let entry = table.iter().find(|e| e.pid == me).expect("self listed");
        let id = identity(root, me).unwrap().expect("self has an identity");
        assert_eq!(id.start_ticks, entry.start_ticks);
        // A start time that does not match is a reused pid: not signalled.
        assert!(matches!(
            signal_same_process(root, me, entry.start_ticks + 1, Signal::Term),
            SignalOutcome::Reused { .. }
        ));
    }
}
