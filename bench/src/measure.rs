//! The measurements: tools run as child processes, interleaved, timed by
//! wall clock, their CPU and peak RSS taken from `wait4`'s rusage.

use std::io;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::host::{self, Host, STOP};

struct Options {
    semleak: String,
    runs: usize,
    quick: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        semleak: "target/release/semleak".into(),
        runs: 5,
        quick: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--semleak" => o.semleak = it.next().ok_or("--semleak needs a path")?.clone(),
            "--runs" => {
                o.runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--runs needs a positive number")?
            }
            "--quick" => o.quick = true,
            "-h" | "--help" => {
                return Err("usage: semleak-bench [--semleak PATH] [--runs N] [--quick]".into())
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Run `argv` with output discarded; exit codes 0 and 1 (findings) are success.
fn run_tool(argv: &[String]) -> io::Result<Sample> {
    let started = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for the child we just spawned.
        let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        if rc >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    let wall = started.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    if !matches!(code, Some(0) | Some(1)) {
        return Err(io::Error::other(format!(
            "{} failed (wait status {status:#x})",
            argv.join(" ")
        )));
    }
    Ok(Sample {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Tool {
    label: &'static str,
    argv: Vec<String>,
    samples: Vec<Sample>,
}

impl Tool {
    fn new(label: &'static str, argv: &[&str]) -> Self {
        Tool {
            label,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            samples: Vec::new(),
        }
    }
    fn wall_ms(&self) -> f64 {
        median(
            self.samples
                .iter()
                .map(|s| s.wall.as_secs_f64() * 1e3)
                .collect(),
        )
    }
    fn rss_mib(&self) -> f64 {
        median(
            self.samples
                .iter()
                .map(|s| s.max_rss_kib as f64 / 1024.0)
                .collect(),
        )
    }
    fn cpu_ms(&self) -> f64 {
        median(
            self.samples
                .iter()
                .map(|s| s.cpu.as_secs_f64() * 1e3)
                .collect(),
        )
    }
}

/// Every tool once per round, `runs` rounds: interleaved.
fn measure(tools: &mut [Tool], runs: usize) -> io::Result<()> {
    for _ in 0..runs {
        for t in tools.iter_mut() {
            if STOP.load(Ordering::SeqCst) {
                return Err(io::Error::other("stopped by a signal"));
            }
            t.samples.push(run_tool(&t.argv)?);
        }
    }
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn host_line(host: &Host) -> String {
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0);
    let sems = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("sem."))
                .count()
        })
        .unwrap_or(0);
    format!(
        "{procs} processes on the host ({} holders × {} semaphores, {} zombies, \
         the rest the machine's own), {sems} semaphores in /dev/shm ({} unheld from the benchmark); \
         load average {}",
        host.holders,
        host.per_holder,
        host.zombies,
        host.unheld,
        loadavg()
    )
}

fn print_table(tools: &[Tool], lsof: usize, floor: usize) {
    println!(
        "  {:<44} {:>9} {:>7} {:>7} {:>7} {:>8} {:>9}",
        "tool (median of runs)", "wall ms", "min", "× lsof", "× floor", "CPU ms", "peak RSS"
    );
    let (l, f) = (tools[lsof].wall_ms(), tools[floor].wall_ms());
    for t in tools {
        let min = t
            .samples
            .iter()
            .map(|s| s.wall.as_secs_f64() * 1e3)
            .fold(f64::INFINITY, f64::min);
        println!(
            "  {:<44} {:>9.0} {:>7.0} {:>7.2} {:>7.2} {:>8.0} {:>6.1} MiB",
            t.label,
            t.wall_ms(),
            min,
            t.wall_ms() / l,
            t.wall_ms() / f,
            t.cpu_ms(),
            t.rss_mib()
        );
    }
}

/// The full comparison on the current host.
fn full_table(semleak: &str, me: &str, runs: usize) -> io::Result<f64> {
    let mut tools = vec![
        Tool::new(
            "semleak scan --format json",
            &[semleak, "scan", "--format", "json"],
        ),
        Tool::new(
            "semleak scan --format json --sample-window 0s",
            &[semleak, "scan", "--format", "json", "--sample-window", "0s"],
        ),
        Tool::new("raw floor (1 thread, bench/src/floor.rs)", &[me, "floor"]),
        Tool::new("lsof -n /dev/shm", &["lsof", "-n", "/dev/shm"]),
        Tool::new(
            "ps -eo pid,ppid,stat,args",
            &["ps", "-eo", "pid,ppid,stat,args"],
        ),
    ];
    measure(&mut tools, runs)?;
    print_table(&tools, 3, 2);
    Ok(tools[0].rss_mib())
}

/// The gate's CPU while the command runs: `semleak run -- sleep 11` minus
/// `semleak run -- sleep 1` (the same before/after snapshots), per second
/// of the 10 s difference.
fn gate_share(semleak: &str, pairs: usize) -> io::Result<(f64, f64)> {
    let run = |secs: &str| {
        run_tool(&[
            semleak.into(),
            "run".into(),
            "--".into(),
            "sleep".into(),
            secs.into(),
        ])
    };
    let mut shares = Vec::new();
    let mut interval_cpu = Vec::new();
    for _ in 0..pairs {
        if STOP.load(Ordering::SeqCst) {
            return Err(io::Error::other("stopped by a signal"));
        }
        let short = run("1")?;
        let long = run("11")?;
        let extra = long.cpu.as_secs_f64() - short.cpu.as_secs_f64();
        let secs = long.wall.as_secs_f64() - short.wall.as_secs_f64();
        shares.push(100.0 * extra / secs);
        interval_cpu.push(extra / secs * 60.0);
    }
    Ok((median(shares), median(interval_cpu)))
}

fn scaling_point(
    host: &mut Host,
    n: usize,
    semleak: &str,
    me: &str,
    runs: usize,
) -> io::Result<(f64, f64)> {
    host.grow_holders(n)?;
    let mut tools = vec![
        Tool::new(
            "semleak",
            &[semleak, "scan", "--format", "json", "--sample-window", "0s"],
        ),
        Tool::new("floor", &[me, "floor"]),
    ];
    measure(&mut tools, runs)?;
    Ok((tools[0].wall_ms(), tools[1].wall_ms()))
}

pub fn main(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let me = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .to_string_lossy()
        .into_owned();
    if !std::path::Path::new(&o.semleak).is_file() {
        return Err(format!(
            "{} not found: cargo build --release first, or pass --semleak",
            o.semleak
        ));
    }
    host::prepare().map_err(|e| format!("cannot prepare: {e}"))?;
    let lines = host::python_worker_maps_lines();
    host::shape_address_space(lines).map_err(|e| format!("cannot shape the holders: {e}"))?;
    println!(
        "holders have the address space of a CPython multiprocessing worker: {lines} maps lines"
    );
    let mut host = Host::new(5);
    let result = run_all(&mut host, &o, &me).map_err(|e| e.to_string());
    host.teardown();
    println!("torn down: every benchmark process killed and reaped, every semaphore unlinked");
    result
}

fn run_all(host: &mut Host, o: &Options, me: &str) -> io::Result<()> {
    let s = o.semleak.as_str();
    let (unheld, zombies) = if o.quick { (500, 50) } else { (5000, 500) };
    let sizes: [usize; 4] = if o.quick {
        [100, 200, 400, 500]
    } else {
        [1000, 2000, 4000, 5000]
    };
    let t = Instant::now();
    host.add_unheld(unheld)?;
    host.add_zombies(zombies)?;
    println!("load average before building: {}", loadavg());

    let mut scaling = Vec::new();
    let point = scaling_point(host, sizes[0], s, me, o.runs)?;
    scaling.push((host.holders, point));

    host.grow_holders(sizes[1])?;
    println!(
        "\n== the issue's host (built in {:.1}s): {}",
        t.elapsed().as_secs_f64(),
        host_line(host)
    );
    let rss = full_table(s, me, o.runs)?;
    let point = scaling_point(host, sizes[1], s, me, o.runs)?;
    scaling.push((host.holders, point));
    let (share, per_min) = gate_share(s, 3)?;
    println!(
        "  semleak run (sampling every 1s) while the command runs: {per_min:.2} CPU-seconds per minute, \
         {share:.1}% of one core (median of 3 pairs: run -- sleep 11 minus run -- sleep 1)"
    );
    println!("  semleak scan peak RSS: {rss:.1} MiB");

    let point = scaling_point(host, sizes[2], s, me, o.runs)?;
    scaling.push((host.holders, point));

    host.grow_holders(sizes[3])?;
    println!(
        "\n== {} holder processes: {}",
        host.holders,
        host_line(host)
    );
    full_table(s, me, o.runs)?;

    println!(
        "\n== scaling (semleak scan --format json --sample-window 0s, and the floor; medians)"
    );
    println!(
        "  {:>8} {:>11} {:>10} {:>14} {:>9}",
        "holders", "semleak ms", "floor ms", "semleak ms/1k", "× floor"
    );
    for (n, (sl, fl)) in &scaling {
        println!(
            "  {n:>8} {sl:>11.0} {fl:>10.0} {:>14.0} {:>9.2}",
            sl / *n as f64 * 1000.0,
            sl / fl
        );
    }
    println!("load average after: {}", loadavg());
    Ok(())
}

/// Build the host with `holders` holders and keep it up `secs`
/// seconds (or until SIGINT/SIGTERM), then tear it down.
pub fn hold(holders: usize, secs: u64) -> Result<(), String> {
    host::prepare().map_err(|e| format!("cannot prepare: {e}"))?;
    host::shape_address_space(host::python_worker_maps_lines())
        .map_err(|e| format!("cannot shape the holders: {e}"))?;
    let mut host = Host::new(5);
    let built = host
        .add_unheld(5000)
        .and_then(|()| host.add_zombies(500))
        .and_then(|()| host.grow_holders(holders));
    if built.is_ok() {
        println!(
            "{}; up for {secs}s (Ctrl-C tears it down)",
            host_line(&host)
        );
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until && !STOP.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    host.teardown();
    println!("torn down");
    built.map_err(|e| e.to_string())
}
