//! `semleak snapshot`: the raw collected Snapshot as JSON, with `--redact`
//! for sharing it in a bug report.

use semleak_platform::{Process, RawName, Snapshot};

use super::{collect_options, stream_stdout, write_atomically};
use crate::analyze::orphan::worker_signature;
use crate::cli::SnapshotArgs;
use crate::exit::{AppError, EXIT_OK};
use crate::report::json;

/// What replaces a redacted argument and the host name.
pub const REDACTED: &str = "<redacted>";

pub fn snapshot(args: &SnapshotArgs) -> Result<i32, AppError> {
    let mut snapshot = semleak_platform::collect(&collect_options(&args.collect, &args.probe)?)?;
    if args.redact {
        redact(&mut snapshot);
    } else {
        eprintln!(
            "semleak: the snapshot holds the command line of every process it could read, \
             which may include secrets; use --redact before attaching it to a bug report"
        );
    }
    // Streamed: the Snapshot of a busy host is megabytes of JSON.
    match &args.output {
        Some(path) => write_atomically(path, |f| {
            let mut out = std::io::BufWriter::new(f);
            json::write_value(&snapshot, &mut out)?;
            std::io::Write::flush(&mut out)
        })?,
        None => stream_stdout(|out| json::write_value(&snapshot, out))?,
    }
    Ok(EXIT_OK)
}

/// Replace the host name and every argument after argv[0], keeping the
/// arguments that name a known worker kind (`--multiprocessing-fork`,
/// `…popen_loky_posix`, …): library boilerplate the orphan rule needs, not
/// user data. Argument counts stay, so a reader sees the shape.
pub fn redact(snapshot: &mut Snapshot) {
    snapshot.host.hostname = REDACTED.to_string();
    for p in &mut snapshot.processes {
        for arg in p.cmdline.iter_mut().skip(1) {
            if !names_a_worker(arg) {
                *arg = RawName::from(REDACTED);
            }
        }
    }
}

fn names_a_worker(arg: &RawName) -> bool {
    let alone = Process {
        cmdline: vec![arg.clone()],
        ..Default::default()
    };
    worker_signature(&alone).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(args: &[&str]) -> Process {
        Process {
            cmdline: args.iter().map(|a| RawName::from(*a)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_the_program_and_worker_markers_only() {
        let mut snap = Snapshot {
            processes: vec![
                process(&["/usr/bin/curl", "-u", "admin:hunter2", "https://x"]),
                process(&[
                    "python3",
                    "-c",
                    "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)",
                    "--multiprocessing-fork",
                ]),
            ],
            ..Default::default()
        };
        snap.host.hostname = "build-7.internal".into();
        redact(&mut snap);
        let json = serde_json::to_string(&snap).unwrap();
        assert!(
            !json.contains("hunter2") && !json.contains("build-7"),
            "{json}"
        );
        assert_eq!(
            snap.processes[0].command_line(),
            "/usr/bin/curl <redacted> <redacted> <redacted>"
        );
        assert_eq!(
            snap.processes[1].command_line(),
            "python3 <redacted> from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5) --multiprocessing-fork"
        );
    }
}
