//! `semleak-bench`: builds busy hosts and times `semleak scan` against
//! `lsof -n /dev/shm`, `ps` and a raw single-thread floor, tools
//! interleaved in one run so other load hits all of them alike; also
//! semleak's peak RSS, the `run` gate's sampling CPU share, and how scan
//! time grows with the number of processes. Tears everything down on
//! exit, Ctrl-C or SIGTERM.
//!
//! Usage: `cargo build --release -p semleak -p semleak-bench &&
//! target/release/semleak-bench [--semleak PATH] [--runs N] [--quick]`
//! (`semleak-bench floor [PROC_ROOT SHM_DIR]` runs the floor alone;
//! `semleak-bench host [HOLDERS [SECONDS]]` keeps a host up for profiling).

#[cfg(target_os = "linux")]
mod floor;
#[cfg(target_os = "linux")]
mod host;
#[cfg(target_os = "linux")]
mod measure;

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("floor") {
        let proc_root = args.get(1).map_or("/proc", String::as_str);
        let shm_dir = args.get(2).map_or("/dev/shm", String::as_str);
        match floor::run(proc_root, shm_dir) {
            Ok(c) => println!("{c:?}"),
            Err(e) => {
                eprintln!("floor: {e}");
                std::process::exit(2);
            }
        }
        return;
    }
    if args.first().map(String::as_str) == Some("host") {
        // `semleak-bench host [HOLDERS [SECONDS]]`: the host, kept
        // up for profiling, then torn down.
        let holders = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(2000);
        let secs = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(600);
        if let Err(e) = measure::hold(holders, secs) {
            eprintln!("semleak-bench: {e}");
            std::process::exit(2);
        }
        return;
    }
    if let Err(e) = measure::main(&args) {
        eprintln!("semleak-bench: {e}");
        std::process::exit(2);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("semleak-bench builds Linux hosts only");
    std::process::exit(2);
}
