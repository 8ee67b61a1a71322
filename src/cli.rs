//! The command line: the only place flags are defined.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analyze::{Config, Kind, Severity};
use crate::exit::EXIT_FINDINGS;

#[derive(Debug, Parser)]
#[command(
    name = "semleak",
    version,
    about = "Find IPC resource leaks: unheld POSIX named semaphores, zombies, orphaned workers, full wakeup pipes",
    long_about = "semleak finds IPC resource leaks on this host and says how to clean them up: \
POSIX named semaphores no process holds, processes hoarding semaphores, shared-memory pressure, \
zombie processes, orphaned workers and full or stalled event-loop wakeup pipes.",
    after_help = "Exit status: 0 nothing at or above --fail-on; 1 findings at or above it; \
2 usage error, bad input or internal failure."
)]
pub struct Cli {
    /// Colour severities in terminal output: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Look at this host once and report leaks.
    Scan(ScanArgs),
    /// Write the raw collected Snapshot as JSON (for offline analysis and bug reports).
    Snapshot(SnapshotArgs),
    /// Analyse a Snapshot saved by `semleak snapshot`, offline.
    #[command(
        after_help = "Exit status: 0 nothing at or above --fail-on; 1 findings at or above it; \
2 usage error, unreadable or invalid snapshot."
    )]
    Analyze(AnalyzeArgs),
    /// Run a command as a CI leak gate: report what it (and its descendants) leaked.
    #[command(
        override_usage = "semleak run [OPTIONS] [--] CMD [ARGS]...",
        after_help = "Options go before CMD; everything from CMD on is the command's (`--` before \
CMD is optional).\n\nExit status: the command's own status when it failed (128+N when killed by \
signal N); otherwise --leak-exit-code (1) when it leaked something at or above --fail-on; \
otherwise 0; 2 usage error or internal failure; 126/127 when the command cannot be run."
    )]
    Run(RunArgs),
    /// Plan the cleanup of what a fresh scan found; act only with --yes.
    Clean(CleanArgs),
    /// Serve Prometheus metrics over HTTP (`/metrics`): one scan per scrape.
    #[command(
        after_help = "Scans one at a time; a scrape within --min-interval of the last scan gets \
that scan's metrics. A failing scan counts in semleak_scan_errors_total and the last good \
metrics are served. Writes nothing; stops on SIGTERM or SIGINT.\n\nExit status: 0 stopped by \
a signal; 2 usage error or the address cannot be bound."
    )]
    Exporter(ExporterArgs),
    /// Print a shell completion script (e.g. `semleak completions bash > /etc/bash_completion.d/semleak`).
    #[command(after_help = "Exit status: 0; 2 usage error.")]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// The address to listen on, e.g. 127.0.0.1:9877 or [::]:9877 (port 0: any free port;
    /// the bound address is printed on standard error).
    #[arg(long, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Serve the last scan's metrics to scrapes within this time of it (at most 1h).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_min_interval)]
    pub min_interval: Duration,
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[command(flatten)]
    pub suppress: SuppressArgs,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub suppress: SuppressArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The snapshot holds the command line of every process semleak could read: \
use --redact before attaching it to a bug report.\n\nExit status: 0; 2 usage error or failure."
)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Write to FILE instead of standard output, atomically (a temporary file in the same
    /// directory, then renamed over FILE); only a regular file or a missing name is replaced
    /// (a device, FIFO, socket, directory or symbolic link is refused).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace every process's arguments and the host name, for sharing: only the program
    /// (argv[0]) and arguments that name a known worker kind are kept.
    #[arg(long)]
    pub redact: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A Snapshot JSON file written by `semleak snapshot` (`-` for standard input).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: PathBuf,
    #[command(flatten)]
    pub rules: RuleArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub suppress: SuppressArgs,
}

/// `semleak run [OPTIONS] [--] CMD [ARGS…]`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Write the JSON report (schema_version 1, `command: "run"`) to FILE (not through a
    /// symbolic link: one is refused).
    #[arg(long, value_name = "FILE", help_heading = "Gate")]
    pub report: Option<PathBuf>,
    /// After the command exits, wait this long for its descendants to finish on their own
    /// (at most 1h).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_grace, help_heading = "Gate")]
    pub grace: Duration,
    /// Sample the host this often while the command runs (0s: only before and after); on a
    /// busy host samples are spaced further apart so that they use at most 5% of one core.
    /// At most 5m.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval, help_heading = "Gate")]
    pub interval: Duration,
    /// SIGKILL leftover descendants still running this long after SIGTERM (at most 1h).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_kill_after, help_heading = "Gate")]
    pub kill_after: Duration,
    /// Leave leftover descendants running instead of terminating them.
    #[arg(long, help_heading = "Gate")]
    pub keep_leftovers: bool,
    /// After the leftovers are gone, remove the semaphores the command left unheld (exactly
    /// those, re-checked right before each unlink, as `semleak clean` does).
    #[arg(long, help_heading = "Gate")]
    pub clean: bool,
    /// With --clean: also remove them when some processes could not be inspected (they
    /// might hold them).
    #[arg(long, requires = "clean", help_heading = "Gate")]
    pub allow_incomplete: bool,
    /// Exit with --leak-exit-code when the command leaked something at or above this severity.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = FailOn::Error, help_heading = "Gate")]
    pub fail_on: FailOn,
    /// The exit status when the command succeeded but leaked (a failing command's own status wins).
    #[arg(long, value_name = "N", default_value_t = EXIT_FINDINGS,
          value_parser = clap::value_parser!(i32).range(1..=255), help_heading = "Gate")]
    pub leak_exit_code: i32,
    /// Also write a JUnit XML report to FILE: one test case per finding kind (GitLab, Jenkins).
    /// A symbolic link is refused, not followed.
    #[arg(long, value_name = "FILE", help_heading = "Gate")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub suppress: SuppressArgs,
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// The command to run and its arguments; everything from CMD on is passed to it.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// Findings already accepted.
#[derive(Debug, Clone, Args)]
pub struct SuppressArgs {
    /// A previous JSON report: findings whose `id` appears in it are not counted.
    #[arg(long, value_name = "FILE", help_heading = "Suppression")]
    pub baseline: Option<PathBuf>,
    /// Allowlist TOML file [default: .semleak.toml in the current directory or above].
    #[arg(long, value_name = "FILE", help_heading = "Suppression")]
    pub allow: Option<PathBuf>,
}

/// Where to collect from, and how long to sample wakeup channels.
#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    #[command(flatten)]
    pub roots: RootArgs,
    /// Window across which wakeup channels are sampled: their fill level at its start and end, and four looks at a channel holding bytes and its loop thread (0s disables sampling; at most 5m).
    #[arg(long, value_name = "DURATION", default_value = "300ms", value_parser = parse_sample_window, help_heading = "Collection")]
    pub sample_window: Duration,
}

impl CollectArgs {
    pub fn options(&self) -> semleak_platform::CollectOptions {
        semleak_platform::CollectOptions {
            sample_window: self.sample_window,
            ..self.roots.options()
        }
    }
}

/// Where to collect from.
#[derive(Debug, Clone, Args)]
pub struct RootArgs {
    /// Root of the proc filesystem (for fixture trees and containers).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/proc",
        help_heading = "Collection"
    )]
    pub proc_root: PathBuf,
    /// Shared-memory directory holding `sem.*` files [default: /dev/shm].
    #[arg(long, value_name = "DIR", help_heading = "Collection")]
    pub shm_dir: Option<PathBuf>,
    /// Accept a --shm-dir that is not a tmpfs or ramfs (fixture trees for tests). By default
    /// a named shared-memory directory must be one, so clean never acts on ordinary files.
    #[arg(long, requires = "shm_dir", help_heading = "Collection")]
    pub allow_non_tmpfs: bool,
}

impl RootArgs {
    pub fn options(&self) -> semleak_platform::CollectOptions {
        semleak_platform::CollectOptions {
            proc_root: self.proc_root.clone(),
            shm_dir: self.shm_dir.clone(),
            allow_non_tmpfs: self.allow_non_tmpfs,
            ..Default::default()
        }
    }
}

/// Names to probe (macOS, where unheld semaphores cannot be listed).
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// macOS: semaphore names to probe with sem_open(name, 0), one per line; names that exist
    /// but no process holds are reported as leaked (macOS cannot list them). macOS keeps names
    /// byte for byte, so a name without a leading / is probed both with and without it. Hidden
    /// and ignored elsewhere: Linux lists /dev/shm instead.
    #[arg(long, value_name = "FILE", help_heading = "Collection", hide = cfg!(not(target_os = "macos")))]
    pub probe_names: Option<PathBuf>,
}

/// Rule thresholds.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// Warn about a process mapping at least N named semaphores.
    #[arg(long, value_name = "N", default_value_t = Config::default().hoard_threshold, help_heading = "Rules")]
    pub hold_threshold: usize,
    /// Warn when the shared-memory filesystem is more than PCT percent full (bytes or inodes).
    #[arg(long, value_name = "PCT", default_value_t = Config::default().shm_pressure_percent,
          value_parser = clap::value_parser!(u8).range(1..=100), help_heading = "Rules")]
    pub shm_pressure: u8,
    /// Zombies under one parent from which it is a warning.
    #[arg(long, value_name = "N", default_value_t = Config::default().zombie_warning_at, help_heading = "Rules")]
    pub zombie_warning: usize,
    /// Zombies under one parent from which it is an error.
    #[arg(long, value_name = "N", default_value_t = Config::default().zombie_error_at, help_heading = "Rules")]
    pub zombie_error: usize,
    /// Same-named threads in one process from which a pile-up is reported.
    #[arg(long, value_name = "N", default_value_t = Config::default().thread_pileup_at, help_heading = "Rules")]
    pub thread_pileup: usize,
    /// Warn when named semaphores in use reach PCT percent of the OS limit (macOS kern.posix.sem.max).
    #[arg(long, value_name = "PCT", default_value_t = Config::default().sem_pressure_warning_percent,
          value_parser = clap::value_parser!(u8).range(1..=100), help_heading = "Rules")]
    pub sem_pressure_warning: u8,
    /// Error when named semaphores in use reach PCT percent of the OS limit.
    #[arg(long, value_name = "PCT", default_value_t = Config::default().sem_pressure_error_percent,
          value_parser = clap::value_parser!(u8).range(1..=100), help_heading = "Rules")]
    pub sem_pressure_error: u8,
    /// Warn when sibling workers (one parent, one command line) hold N semaphores of their own in
    /// all; below it the per-worker pattern is info, unless it uses 10% of a limit (/dev/shm
    /// inodes, vm.max_map_count, kern.posix.sem.max).
    #[arg(long, value_name = "N", default_value_t = Config::default().per_worker_warning_at, help_heading = "Rules")]
    pub per_worker_semaphores: usize,
}

impl RuleArgs {
    /// Thread names matter only where a pile-up is possible.
    pub fn thread_names_min_threads(&self) -> u32 {
        u32::try_from(self.thread_pileup.max(2)).unwrap_or(u32::MAX)
    }

    pub fn config(&self) -> Config {
        Config {
            hoard_threshold: self.hold_threshold,
            shm_pressure_percent: self.shm_pressure,
            zombie_warning_at: self.zombie_warning,
            zombie_error_at: self.zombie_error,
            thread_pileup_at: self.thread_pileup,
            sem_pressure_warning_percent: self.sem_pressure_warning,
            sem_pressure_error_percent: self.sem_pressure_error,
            per_worker_warning_at: self.per_worker_semaphores,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, help_heading = "Output")]
    pub format: Format,
    /// Write to FILE instead of standard output, atomically (a temporary file in the same
    /// directory, then renamed over FILE); only a regular file or a missing name is replaced
    /// (a device, FIFO, socket, directory or symbolic link is refused).
    #[arg(short, long, value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Exit 1 when a finding at or above this severity remains.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = FailOn::Error, help_heading = "Output")]
    pub fail_on: FailOn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people, a one-line verdict first.
    Table,
    /// The JSON report (schema_version 1).
    Json,
    /// Prometheus text exposition (gauges `semleak_*`), e.g. for node_exporter's textfile collector.
    Prometheus,
}

/// `semleak clean --format`: a plan has no metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CleanFormat {
    /// The plan and its outcomes for people.
    Table,
    /// The plan as JSON.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

impl FailOn {
    /// The least severity that fails (`None` for `never`).
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }

    /// Does a report whose worst finding is `worst` fail?
    pub fn fails(self, worst: Option<Severity>) -> bool {
        match (self.threshold(), worst) {
            (Some(threshold), Some(worst)) => worst >= threshold,
            _ => false,
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 everything planned was done (or dry run); \
1 something planned could not be done; 2 usage error or internal failure."
)]
pub struct CleanArgs {
    #[command(flatten)]
    pub collect: RootArgs,
    /// Act on the plan. Without it nothing is changed.
    #[arg(long)]
    pub yes: bool,
    /// Leave semaphores modified (or linked) more recently than this: their
    /// creator may be between sem_open and use (at most 365d).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_min_age)]
    pub min_age: Duration,
    /// Also act on resources owned by other users (default: only your own).
    #[arg(long)]
    pub all_users: bool,
    /// Also clean semaphores whose leak is only "likely" because some
    /// processes could not be inspected (default: only "certain" leaks).
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Terminate orphaned workers whose verdict is `certain` (SIGTERM, then
    /// SIGKILL after --kill-after). `possible` orphans are never terminated.
    #[arg(long)]
    pub orphans: bool,
    /// With --orphans: also terminate orphans whose verdict is only `likely`.
    #[arg(long, requires = "orphans")]
    pub likely_orphans: bool,
    /// Send SIGCHLD to the parents of zombies, asking them to reap.
    #[arg(long)]
    pub nudge_parents: bool,
    /// Only findings of this kind (repeatable), e.g. leaked_semaphore, orphan, zombie.
    #[arg(long = "kind", value_name = "KIND", value_enum)]
    pub kinds: Vec<Kind>,
    /// Only targets whose name matches GLOB (repeatable): a semaphore's name
    /// without `sem.`, an orphan's or a zombie parent's process name.
    #[arg(long = "name", value_name = "GLOB", value_parser = parse_glob)]
    pub names: Vec<String>,
    /// Only the semaphore with this inode number (repeatable): for names that
    /// cannot be typed or pasted safely; `scan` prints such lines.
    #[arg(long = "inode", value_name = "INODE")]
    pub inodes: Vec<u64>,
    /// How long orphans get to exit after SIGTERM before SIGKILL (at most 1h).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_kill_after)]
    pub kill_after: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CleanFormat::Table)]
    pub format: CleanFormat,
    #[command(flatten)]
    pub suppress: SuppressArgs,
}

/// `--kind` values are the JSON `kind` strings.
impl ValueEnum for Kind {
    fn value_variants<'a>() -> &'a [Self] {
        &Kind::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()).help(self.title()))
    }
}

/// Durations on the command line: `500ms`, `2s`, `5m`, `1h`, `0s`, also
/// combined (`1m 30s`), as `humantime` reads them.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` has no unit: write e.g. 500ms, 2s, 5m"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}): write e.g. 500ms, 2s, 5m"))
}

/// The longest `--sample-window`: collection sleeps through it.
pub const MAX_SAMPLE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The longest `run --interval`.
pub const MAX_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The longest `run --grace`.
pub const MAX_GRACE: Duration = Duration::from_secs(60 * 60);
/// The longest `--kill-after` (`run` and `clean`).
pub const MAX_KILL_AFTER: Duration = Duration::from_secs(60 * 60);
/// The longest `exporter --min-interval`.
pub const MAX_MIN_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// The longest `clean --min-age`.
pub const MAX_MIN_AGE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// [`parse_duration`], refused above `max` (written `max_text` in the
/// message): every duration flag is bounded here, at parse time, so no
/// later `Instant + Duration` can overflow and no sleep outlasts the user.
/// clap names the flag and the value before the message, so it says only
/// what is wrong.
fn bounded_duration(s: &str, max: Duration, max_text: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > max {
        return Err(format!("too long (at most {max_text})"));
    }
    Ok(d)
}

pub fn parse_sample_window(s: &str) -> Result<Duration, String> {
    bounded_duration(s, MAX_SAMPLE_WINDOW, "5m")
}

pub fn parse_interval(s: &str) -> Result<Duration, String> {
    bounded_duration(s, MAX_INTERVAL, "5m")
}

pub fn parse_grace(s: &str) -> Result<Duration, String> {
    bounded_duration(s, MAX_GRACE, "1h")
}

pub fn parse_kill_after(s: &str) -> Result<Duration, String> {
    bounded_duration(s, MAX_KILL_AFTER, "1h")
}

pub fn parse_min_interval(s: &str) -> Result<Duration, String> {
    bounded_duration(s, MAX_MIN_INTERVAL, "1h")
}

pub fn parse_min_age(s: &str) -> Result<Duration, String> {
    bounded_duration(s, MAX_MIN_AGE, "365d")
}

fn parse_glob(s: &str) -> Result<String, String> {
    globset::Glob::new(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_up_to_each_maximum_are_accepted() {
        assert_eq!(parse_grace("1h"), Ok(MAX_GRACE));
        assert_eq!(parse_kill_after("60m"), Ok(MAX_KILL_AFTER));
        assert_eq!(parse_interval("5m"), Ok(MAX_INTERVAL));
        assert_eq!(parse_sample_window("5m"), Ok(MAX_SAMPLE_WINDOW));
        assert_eq!(parse_min_interval("1h"), Ok(MAX_MIN_INTERVAL));
        assert_eq!(parse_min_age("365d"), Ok(MAX_MIN_AGE));
        assert_eq!(parse_sample_window("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_grace("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn durations_over_each_maximum_are_refused_with_the_limit() {
        assert_eq!(
            parse_grace("584542046090y"),
            Err("too long (at most 1h)".to_string())
        );
        assert_eq!(
            parse_kill_after("1h 1s"),
            Err("too long (at most 1h)".to_string())
        );
        assert!(parse_interval("5m 1ms").unwrap_err().contains("at most 5m"));
        assert!(parse_sample_window("301s")
            .unwrap_err()
            .contains("at most 5m"));
        assert!(parse_min_interval("2h").unwrap_err().contains("at most 1h"));
        assert!(parse_min_age("366d").unwrap_err().contains("at most 365d"));
        // u64::MAX seconds: refused (too long, or not a duration humantime can hold).
        assert!(parse_sample_window("18446744073709551615s").is_err());
        assert!(parse_grace("2").unwrap_err().contains("no unit"));
    }

    #[test]
    fn every_duration_flag_is_bounded() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let is_duration = arg
                    .get_value_names()
                    .is_some_and(|names| names.iter().any(|n| n == "DURATION"));
                if is_duration {
                    let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                    if !help.contains("at most") {
                        out.push(format!("{} --{}", cmd.get_name(), arg.get_id()));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, out);
            }
        }
        let mut unbounded = Vec::new();
        walk(&Cli::command(), &mut unbounded);
        assert!(unbounded.is_empty(), "{unbounded:?}");
    }
}
