//! The commands, below `main`: typed errors, exit codes as numbers.

use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use semleak_platform::{CollectError, CollectOptions, RawName, Snapshot};

use crate::analyze::{self, Config};
use crate::cli::{
    AnalyzeArgs, CleanArgs, Cli, CollectArgs, Command, Format, OutputArgs, ScanArgs, SnapshotArgs,
};
use crate::report::{json, table, Report};

/// Exit status: nothing at or above `--fail-on`.
pub const EXIT_OK: i32 = 0;
/// Exit status: findings at or above `--fail-on`.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit status: usage error, bad input or internal failure.
pub const EXIT_ERROR: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error("cannot read snapshot {}: {source}", path.display())]
    ReadSnapshot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a semleak snapshot: {source}", path.display())]
    ParseSnapshot {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("snapshot {} has format {found}; this semleak reads format {expected}", path.display())]
    SnapshotFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("cannot read probe names {}", path.display())]
    ReadProbeNames {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Suppress(#[from] crate::suppress::SuppressError),
    #[error(transparent)]
    Gate(#[from] crate::gate::GateError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub fn run(cli: Cli) -> Result<i32, AppError> {
    match cli.command {
        Command::Scan(args) => scan(&args),
        Command::Snapshot(args) => snapshot(&args),
        Command::Analyze(args) => analyze_file(&args),
        Command::Clean(args) => clean(&args),
        Command::Run(args) => crate::gate::run(&args),
    }
}

fn scan(args: &ScanArgs) -> Result<i32, AppError> {
    let cwd = std::env::current_dir().ok();
    let suppressor = crate::suppress::Suppressor::load(
        args.suppress.baseline.as_deref(),
        args.suppress.allow.as_deref(),
        cwd.as_deref(),
    )?;
    let snapshot = semleak_platform::collect(&collect_options(&args.collect)?)?;
    let findings = analyze::analyze(&snapshot, &args.rules.config());
    let cmdline_of = |pid: i32| {
        snapshot
            .processes
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| p.command_line())
    };
    let (findings, suppressed) = suppressor.apply(findings, &cmdline_of);
    let mut report = Report::new("scan", &snapshot, findings);
    report.suppressed = suppressed;
    emit(&report, args.output.format)?;
    if report.suppressed.total() > 0 && args.output.format == Format::Table {
        eprintln!(
            "semleak: {} finding(s) suppressed ({} by baseline, {} by allowlist)",
            report.suppressed.total(),
            report.suppressed.baseline,
            report.suppressed.allowlist
        );
    }
    Ok(if args.output.fail_on.fails(report.worst()) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

fn snapshot(args: &SnapshotArgs) -> Result<i32, AppError> {
    let snapshot = semleak_platform::collect(&collect_options(&args.collect)?)?;
    let mut text = serde_json::to_string_pretty(&snapshot).expect("a Snapshot always serialises");
    text.push('\n');
    match &args.output {
        Some(path) => fs::write(path, text).map_err(|source| AppError::Write {
            path: path.clone(),
            source,
        })?,
        None => write_stdout(&text)?,
    }
    Ok(EXIT_OK)
}

/// The collection options, with the `--probe-names` file read.
pub fn collect_options(args: &CollectArgs) -> Result<CollectOptions, AppError> {
    let mut opts = args.options();
    if let Some(path) = &args.probe_names {
        let bytes = fs::read(path).map_err(|source| AppError::ReadProbeNames {
            path: path.clone(),
            source,
        })?;
        opts.probe_names = parse_probe_names(&bytes);
    }
    Ok(opts)
}

/// One semaphore name per line, with or without the leading `/`; blank
/// lines and `#` comments are skipped; other bytes are kept as they are.
pub fn parse_probe_names(bytes: &[u8]) -> Vec<RawName> {
    let mut names: Vec<RawName> = bytes
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty() && !line.starts_with(b"#"))
        .map(|line| RawName::from(line.strip_prefix(b"/").unwrap_or(line)))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn analyze_file(args: &AnalyzeArgs) -> Result<i32, AppError> {
    let snapshot = load_snapshot(&args.snapshot)?;
    report_and_exit("analyze", &snapshot, &args.rules.config(), &args.output)
}

fn clean(args: &CleanArgs) -> Result<i32, AppError> {
    let mut collect = args.collect.options();
    // Wakeup channels have nothing to clean: skip their sampling window.
    collect.sample_window = std::time::Duration::ZERO;
    let snapshot = semleak_platform::collect(&collect)?;
    let findings = analyze::analyze(&snapshot, &Config::default());
    let names = if args.names.is_empty() {
        None
    } else {
        let mut b = globset::GlobSetBuilder::new();
        for g in &args.names {
            // Validated by clap already.
            if let Ok(glob) = globset::Glob::new(g) {
                b.add(glob);
            }
        }
        b.build().ok()
    };
    let opts = crate::clean::CleanOptions {
        yes: args.yes,
        min_age: args.min_age,
        all_users: args.all_users,
        allow_incomplete: args.allow_incomplete,
        orphans: args.orphans,
        nudge_parents: args.nudge_parents,
        kinds: args.kinds.clone(),
        names,
        invoking_uid: snapshot.host.collector_uid,
    };
    let mut plan = crate::clean::plan(&snapshot, &findings, &opts);
    if args.yes {
        let env = crate::clean::ExecEnv {
            shm_dir: collect
                .shm_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(semleak_platform::DEFAULT_SHM_DIR)),
            proc_root: collect.proc_root.clone(),
            kill_after: args.kill_after,
            allow_incomplete: args.allow_incomplete,
        };
        crate::clean::execute(&mut plan, &env);
    }
    let text = match args.format {
        Format::Json => crate::report::clean::render_json(&plan),
        Format::Table => crate::report::clean::render_table(&plan, io::stdout().is_terminal()),
    };
    write_stdout(&text)?;
    Ok(plan.exit_code())
}

pub fn load_snapshot(path: &Path) -> Result<Snapshot, AppError> {
    let read_err = |source| AppError::ReadSnapshot {
        path: path.to_path_buf(),
        source,
    };
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        io::stdin().read_to_string(&mut s).map_err(read_err)?;
        s
    } else {
        fs::read_to_string(path).map_err(read_err)?
    };
    let snapshot: Snapshot =
        serde_json::from_str(&text).map_err(|source| AppError::ParseSnapshot {
            path: path.to_path_buf(),
            source,
        })?;
    if snapshot.format != semleak_platform::SNAPSHOT_FORMAT {
        return Err(AppError::SnapshotFormat {
            path: path.to_path_buf(),
            found: snapshot.format,
            expected: semleak_platform::SNAPSHOT_FORMAT,
        });
    }
    Ok(snapshot)
}

fn report_and_exit(
    command: &str,
    snapshot: &Snapshot,
    config: &Config,
    output: &OutputArgs,
) -> Result<i32, AppError> {
    let findings = analyze::analyze(snapshot, config);
    let report = Report::new(command, snapshot, findings);
    emit(&report, output.format)?;
    Ok(if output.fail_on.fails(report.worst()) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

pub fn emit(report: &Report, format: Format) -> Result<(), AppError> {
    let text = match format {
        Format::Json => json::render(report),
        Format::Table => table::render(
            report,
            &table::TableOptions {
                wrap: io::stdout().is_terminal(),
            },
        ),
    };
    write_stdout(&text)
}

/// Write to stdout; a reader that went away (`semleak scan | head`) is not
/// an error.
pub fn write_stdout(text: &str) -> Result<(), AppError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(AppError::Write {
            path: PathBuf::from("<stdout>"),
            source,
        }),
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_name_files() {
        let names =
            parse_probe_names(b"# from last run\n/mp-ab12cd34\r\nmp-ab12cd34\n\nloky-1-x\n\xff\n");
        assert_eq!(
            names,
            vec![
                RawName::from("loky-1-x"),
                RawName::from("mp-ab12cd34"),
                RawName(vec![0xff])
            ]
        );
    }
}
