//! One module per subcommand, on top of everything else: each builds its
//! report from `analyze`, `suppress` and the platform crate and hands it to
//! a renderer. Nothing below imports a command.

pub mod analyze;
pub mod clean;
pub mod completions;
pub mod exporter;
pub mod namespace;
pub mod output;
pub mod run;
pub mod scan;
pub mod snapshot;
pub mod terminal;

use std::io::{self, Write};
use std::path::PathBuf;

use semleak_platform::{CollectOptions, RawName, Snapshot};

use crate::analyze::Finding;
use crate::cli::{Cli, CollectArgs, Command, Format, OutputArgs, ProbeArgs, SuppressArgs};
use crate::exit::AppError;
use crate::report::table::TableOptions;
use crate::report::{json, prometheus, table, Report};
use crate::suppress::{Suppressed, Suppressor};

pub use output::write_atomically;
pub use terminal::Ui;

pub fn run(cli: Cli) -> Result<i32, AppError> {
    let ui = Ui::new(cli.color);
    match cli.command {
        Command::Scan(args) => scan::scan(&args, &ui),
        Command::Snapshot(args) => snapshot::snapshot(&args),
        Command::Analyze(args) => analyze::analyze_file(&args, &ui),
        Command::Clean(args) => clean::clean(&args),
        Command::Run(args) => run::run(&args, &ui),
        Command::Exporter(args) => exporter::exporter(&args),
        Command::Completions(args) => completions::completions(&args),
    }
}

/// The baseline and allowlist in force: `--baseline`, and `--allow` or the
/// `.semleak.toml` found from the current directory upward.
/// A `.semleak.toml` that is not trusted (another user's, or writable by
/// others) is ignored, and stderr says so.
pub fn load_suppressor(args: &SuppressArgs) -> Result<Suppressor, AppError> {
    let cwd = std::env::current_dir().ok();
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let suppressor = Suppressor::load(
        args.baseline.as_deref(),
        args.allow.as_deref(),
        cwd.as_deref(),
        uid,
    )?;
    if let Some(why) = &suppressor.ignored {
        eprintln!("semleak: warning: allowlist {why}");
    }
    Ok(suppressor)
}

/// Drop the findings the baseline and allowlist accept; allowlist entries
/// match the command lines of the findings' pids in `snapshot`.
pub fn suppress(
    suppressor: &Suppressor,
    snapshot: &Snapshot,
    findings: Vec<Finding>,
) -> (Vec<Finding>, Suppressed) {
    // A map, not a search per finding: thousands of findings on a busy host.
    let processes: std::collections::HashMap<i32, &semleak_platform::Process> =
        snapshot.processes.iter().map(|p| (p.pid, p)).collect();
    let cmdline_of = |pid: i32| processes.get(&pid).map(|p| p.command_line());
    suppressor.apply(findings, &cmdline_of)
}

/// Say on stderr how many findings a baseline or allowlist dropped (the
/// JSON report carries it in `suppressed`).
pub fn note_suppressed(report: &Report, format: Format) {
    if report.suppressed.total() > 0 && format == Format::Table {
        eprintln!(
            "semleak: {} finding(s) suppressed ({} by baseline, {} by allowlist)",
            report.suppressed.total(),
            report.suppressed.baseline,
            report.suppressed.allowlist
        );
    }
}

/// The collection options, with the `--probe-names` file read.
pub fn collect_options(args: &CollectArgs, probe: &ProbeArgs) -> Result<CollectOptions, AppError> {
    let mut opts = args.options();
    if let Some(path) = &probe.probe_names {
        let bytes = crate::input::read_capped(path, crate::input::SETTINGS_LIMIT, false).map_err(
            |source| AppError::ReadProbeNames {
                path: path.clone(),
                source,
            },
        )?;
        opts.probe_names = parse_probe_names(&bytes);
    }
    Ok(opts)
}

/// One semaphore name per line; blank lines and `#` comments are skipped;
/// other bytes are kept as they are. macOS stores names byte for byte
/// (`/foo` and `foo` are two semaphores), so a name given without its
/// leading `/` is probed both ways.
pub fn parse_probe_names(bytes: &[u8]) -> Vec<RawName> {
    let mut names: Vec<RawName> = bytes
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty() && !line.starts_with(b"#"))
        .flat_map(|line| {
            let slashed = (!line.starts_with(b"/")).then(|| [b"/".as_slice(), line].concat());
            std::iter::once(RawName::from(line)).chain(slashed.map(RawName))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Render a report in the chosen format to stdout, or to `output`
/// atomically.
pub fn emit(report: &Report, output: &OutputArgs, ui: &Ui) -> Result<(), AppError> {
    if let Some(path) = &output.output {
        let write = |out: &mut dyn Write| match output.format {
            Format::Json => {
                let mut buffered = io::BufWriter::new(out);
                json::write(report, &mut buffered)?;
                buffered.flush()
            }
            Format::Table => out.write_all(table::render(report, &TableOptions::PLAIN).as_bytes()),
            Format::Prometheus => out.write_all(prometheus::render(report).as_bytes()),
        };
        return write_atomically(path, write);
    }
    let text = match output.format {
        Format::Json => return stream_stdout(|out| json::write(report, out)),
        // A workflow step's output is read for workflow commands: names
        // any local user chooses must not start one (`::`, `##[`). JSON and
        // Prometheus lines never begin with untrusted text.
        Format::Table if github_actions() => {
            crate::report::github::neutralise(&table::render(report, &ui.stdout()))
        }
        Format::Table => table::render(report, &ui.stdout()),
        Format::Prometheus => prometheus::render(report),
    };
    write_stdout(&text)
}

/// GitHub sets `GITHUB_ACTIONS=true` in every step.
pub fn github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Stream to stdout through a buffer; a reader that went away is not an
/// error.
pub fn stream_stdout(
    write: impl FnOnce(&mut io::BufWriter<io::StdoutLock<'static>>) -> io::Result<()>,
) -> Result<(), AppError> {
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    match write(&mut out).and_then(|_| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(AppError::Write {
            path: PathBuf::from("<stdout>"),
            source,
        }),
        Ok(()) => Ok(()),
    }
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
                RawName::from("/loky-1-x"),
                RawName::from("/mp-ab12cd34"),
                RawName(vec![b'/', 0xff]),
                RawName::from("loky-1-x"),
                RawName::from("mp-ab12cd34"),
                RawName(vec![0xff]),
            ],
            "a name without its slash is probed both ways; one with it, exactly"
        );
    }
}
