//! semleak attacked as a hostile local user would (issue 12): the real
//! binary in a private tmpfs inside a private mount and pid namespace
//! (`unshare`), never the real /dev/shm. Hostile file names, a symlinked
//! shared-memory directory, year-10000 file times, a holder with mixed uids,
//! a setsid daemon the orphan rule is unsure about, untrusted allowlists and
//! hostile snapshots. Cases that need a namespace skip loudly where one
//! cannot be made.
#![cfg(target_os = "linux")]

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// A private mount and pid namespace whose pid 1 keeps it alive, with a
/// tmpfs mounted on `dir` there (the same path outside is an empty
/// directory of the host's /tmp). Commands run inside with [`Ns::command`];
/// files are reached from outside through `/proc/PID/root`.
struct Ns {
    unshare: Child,
    /// Host pid of the namespace's pid 1.
    init: i32,
    dir: PathBuf,
    _host_dir: tempfile::TempDir,
}

impl Ns {
    /// `init_uid`: the uid pid 1 runs as once the tmpfs is mounted.
    fn new(init_uid: Option<u32>) -> Option<Ns> {
        if euid() != 0 {
            eprintln!(
                "SKIPPED: the hostile-namespace tests need root (unshare --mount --pid, mount -t tmpfs); not run"
            );
            return None;
        }
        let host_dir = tempfile::Builder::new()
            .prefix("semleak-test-hostile-")
            .tempdir()
            .unwrap();
        let dir = host_dir.path().to_path_buf();
        let drop_to = match init_uid {
            Some(uid) => format!("setpriv --reuid={uid} --regid={uid} --clear-groups "),
            None => String::new(),
        };
        let script = format!(
            "mount -t tmpfs -o mode=1777,size=16m semleak-test {dir} && echo ready && exec {drop_to}sleep 600",
            dir = dir.display()
        );
        let mut unshare = Command::new("unshare")
            .args([
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(unshare.stdout.take().unwrap())
            .read_line(&mut line)
            .ok()?;
        if line.trim() != "ready" {
            let _ = unshare.kill();
            let out = unshare.wait_with_output().ok()?;
            eprintln!(
                "SKIPPED: cannot make a private mount+pid namespace with a tmpfs: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let children = fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
            .unwrap_or_default();
        let init: i32 = children.split_whitespace().next()?.parse().ok()?;
        Some(Ns {
            unshare,
            init,
            dir,
            _host_dir: host_dir,
        })
    }

    /// `dir/rel` as the test reaches it from outside the namespace.
    fn outside(&self, rel: &str) -> PathBuf {
        let inner = self.dir.join(rel);
        PathBuf::from(format!("/proc/{}/root", self.init)).join(inner.strip_prefix("/").unwrap())
    }

    fn inside(&self, rel: &str) -> String {
        self.dir.join(rel).to_str().unwrap().to_string()
    }

    /// A command run inside both namespaces.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.init.to_string())
            .args(["-m", "-p", "--"])
            .arg(program);
        c
    }

    /// `semleak scan --format json` of the shared-memory directory `dir`.
    fn scan_json(&self, dir: &str) -> Value {
        json(&self.semleak(&[
            "scan",
            "--format",
            "json",
            "--sample-window",
            "0s",
            "--shm-dir",
            dir,
        ]))
    }

    fn semleak(&self, args: &[&str]) -> Output {
        let out = self.command(semleak_bin()).args(args).output().unwrap();
        assert_no_panic(&out);
        out
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        // Killing pid 1 ends the namespace, its processes and its tmpfs.
        kill(self.init, libc::SIGKILL);
        let _ = self.unshare.wait();
    }
}

fn assert_no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && out.status.code().is_some(),
        "semleak crashed: {err}"
    );
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "invalid JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn sem_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
}

fn shells() -> Vec<&'static str> {
    let mut found = Vec::new();
    for sh in ["dash", "bash", "zsh"] {
        let ok = Command::new(sh)
            .args(["-c", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            found.push(sh);
        } else {
            eprintln!(
                "SKIPPED for {sh}: not installed here; the cleanup lines were not run under it"
            );
        }
    }
    assert!(
        found.contains(&"dash") || found.contains(&"bash"),
        "no POSIX shell"
    );
    found
}

/// The names of the issue: a newline, quotes and a command substitution, a
/// terminal escape, a bidi override, U+2028, invalid UTF-8, and plain ones
/// with a quote or spaces that can be written safely.
const HOSTILE: [&[u8]; 8] = [
    b"sem.\n'$(touch pwned)0",
    b"sem.a'$(touch pwned)'b",
    b"sem.sp ace `touch pwned`",
    b"sem.esc\x1b]0;x\x07",
    "sem.bidi\u{202e}fdp.exe".as_bytes(),
    "sem.line\u{2028}sep".as_bytes(),
    b"sem.bad\xff\xfe",
    b"sem.$HOME;touch pwned",
];

#[test]
fn cleanup_lines_never_run_code_and_remove_exactly_their_file() {
    let Some(ns) = Ns::new(None) else { return };
    let shells = shells();
    for sh in shells {
        let shm = ns.outside("");
        for name in HOSTILE {
            fs::write(shm.join(OsStr::from_bytes(name)), sem_bytes()).unwrap();
        }
        fs::write(shm.join("sem.bystander"), sem_bytes()).unwrap();
        let report = ns.scan_json(&ns.inside(""));
        let findings = findings(&report, "leaked_semaphore");
        assert_eq!(findings.len(), HOSTILE.len() + 1, "{report:#}");
        let work = tempfile::tempdir().unwrap();
        for f in findings {
            let resource = f["resources"][0].as_str().unwrap();
            if resource.ends_with("sem.bystander") {
                continue;
            }
            let line = f["cleanup"][0].as_str().unwrap();
            assert!(
                !line.contains("$'") && !line.contains('\n'),
                "{sh}: unsafe line {line:?}"
            );
            // `semleak clean` lines are run with the binary on PATH; a fresh
            // file is younger than the default --min-age, and semleak in
            // the test's nested pid namespace cannot see the processes
            // outside (it refuses without --allow-incomplete), so the test
            // adds both after the line as printed.
            let script = if line.starts_with("semleak clean ") {
                assert!(line.contains("--inode"), "{line}");
                format!("{line} --min-age 0s --allow-incomplete --format json >/dev/null")
            } else {
                assert!(line.starts_with("rm -- '"), "{line}");
                line.to_string()
            };
            let bin_dir = semleak_bin().parent().unwrap().to_path_buf();
            let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
            let status = ns
                .command(sh)
                .args(["-c", &format!("cd {} && {script}", work.path().display())])
                .env("PATH", path)
                .status()
                .unwrap();
            assert!(status.success(), "{sh}: {line:?} failed");
            assert!(
                !work.path().join("pwned").exists(),
                "{sh} ran code from {line:?}"
            );
            assert!(
                fs::read_dir(work.path()).unwrap().next().is_none(),
                "{sh}: {line:?} created files"
            );
        }
        let left: Vec<_> = fs::read_dir(&shm)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            [OsStr::new("sem.bystander")],
            "{sh}: every hostile file removed, the bystander kept"
        );
        fs::remove_file(shm.join("sem.bystander")).unwrap();
    }
}

#[test]
fn a_symlinked_shared_memory_directory_is_resolved_once_for_scan_and_clean() {
    let Some(ns) = Ns::new(None) else { return };
    fs::create_dir(ns.outside("real")).unwrap();
    std::os::unix::fs::symlink(ns.inside("real"), ns.outside("link")).unwrap();
    fs::write(ns.outside("real/sem.mp-linked01"), sem_bytes()).unwrap();
    let link = ns.inside("link");
    let real = ns.inside("real");

    let report = ns.scan_json(&link);
    let f = findings(&report, "leaked_semaphore");
    assert_eq!(f.len(), 1, "{report:#}");
    let expected = format!("{real}/sem.mp-linked01");
    assert_eq!(f[0]["resources"][0], expected.as_str());
    assert_eq!(f[0]["cleanup"][0], format!("rm -- {expected}").as_str());

    let out = ns.semleak(&[
        "clean",
        "--format",
        "json",
        "--shm-dir",
        &link,
        "--min-age",
        "0s",
        // A nested pid namespace: processes outside it go unseen.
        "--allow-incomplete",
        "--yes",
    ]);
    let plan = json(&out);
    assert_eq!(out.status.code(), Some(0), "{plan:#}");
    assert_eq!(plan["shm_dir"], real.as_str());
    assert_eq!(plan["actions"][0]["status"], "done", "{plan:#}");
    assert!(!ns.outside("real/sem.mp-linked01").exists());
    assert!(fs::symlink_metadata(ns.outside("link"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn shm_dir_must_be_a_tmpfs_unless_allowed_and_paths_are_absolute() {
    let dir = tempfile::Builder::new()
        .prefix("semleak-test-notmpfs-")
        .tempdir()
        .unwrap();
    let fs_type = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir.path())
        .output()
        .unwrap();
    if String::from_utf8_lossy(&fs_type.stdout).trim() == "tmpfs" {
        eprintln!("SKIPPED: the temporary directory is itself a tmpfs here");
        return;
    }
    fs::create_dir(dir.path().join("shm")).unwrap();
    fs::write(dir.path().join("shm/sem.mp-plain001"), sem_bytes()).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(semleak_bin())
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_no_panic(&out);
        out
    };
    for cmd in ["scan", "clean"] {
        let out = run(&[cmd, "--shm-dir", "shm", "--format", "json"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not a tmpfs") && err.contains("--allow-non-tmpfs"),
            "{err}"
        );
    }
    assert!(dir.path().join("shm/sem.mp-plain001").exists());
    // Relative in, absolute out.
    let out = run(&[
        "scan",
        "--shm-dir",
        "shm",
        "--allow-non-tmpfs",
        "--format",
        "json",
        "--sample-window",
        "0s",
    ]);
    let report = json(&out);
    let abs = fs::canonicalize(dir.path().join("shm")).unwrap();
    let f = findings(&report, "leaked_semaphore");
    let want = format!("{}/sem.mp-plain001", abs.display());
    assert!(
        f.iter().any(|f| f["resources"][0] == want.as_str()),
        "{report:#}"
    );
    assert_eq!(report["limits"]["shm"]["path"], abs.to_str().unwrap());
}

#[test]
fn year_10000_file_times_never_crash_scan_or_run() {
    let Some(ns) = Ns::new(None) else { return };
    let p = ns.outside("sem.mp-future01");
    fs::write(&p, sem_bytes()).unwrap();
    let touched = Command::new("touch")
        .args(["-d", "@253402300800"])
        .arg(&p)
        .status()
        .unwrap();
    assert!(touched.success());
    let dir = ns.inside("");
    for format in ["json", "table"] {
        let out = ns.semleak(&[
            "scan",
            "--format",
            format,
            "--sample-window",
            "0s",
            "--shm-dir",
            &dir,
        ]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("out-of-range time (@253402300800)"), "{text}");
    }
    let report = tempfile::NamedTempFile::new().unwrap();
    let out = ns.semleak(&[
        "run",
        "--interval",
        "0s",
        "--grace",
        "0s",
        "--shm-dir",
        &dir,
        "--report",
        report.path().to_str().unwrap(),
        "--",
        "true",
    ]);
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 1));
    let out = ns.semleak(&[
        "clean",
        "--shm-dir",
        &dir,
        "--min-age",
        "0s",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
}

/// A holder whose real uid is another user's, effective uid the owner's:
/// not inspectable by the owner, and once excluded by the uid filter, so
/// its semaphore was "certainly" leaked and removed.
#[test]
fn a_holder_that_cannot_be_inspected_keeps_its_semaphore_whatever_its_uid() {
    const OWNER: u32 = 64_000;
    let Some(ns) = Ns::new(Some(OWNER)) else {
        return;
    };
    let p = ns.outside("sem.mp-mixeduid");
    fs::write(&p, sem_bytes()).unwrap();
    std::os::unix::fs::chown(&p, Some(OWNER), Some(OWNER)).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    // Map it as root, then become ruid 64001 / euid 64000.
    let script = r#"
import mmap, os, sys, time
f = open(sys.argv[1], "r+b")
m = mmap.mmap(f.fileno(), 32)
os.setresgid(64001, 64000, 64000)
os.setresuid(64001, 64000, 64000)
print("ready", flush=True)
time.sleep(600)
"#;
    let mut cmd = ns.command("python3");
    cmd.args(["-c", script, &ns.inside("sem.mp-mixeduid")]);
    let mut holder = spawn(cmd);
    assert_eq!(holder.read_line(), "ready");

    let dir = ns.inside("");
    let as_owner = |args: &[&str]| {
        let mut c = ns.command("setpriv");
        c.args([
            format!("--reuid={OWNER}"),
            format!("--regid={OWNER}"),
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(semleak_bin())
        .args(args);
        let out = c.output().unwrap();
        assert_no_panic(&out);
        out
    };
    let out = as_owner(&[
        "scan",
        "--format",
        "json",
        "--sample-window",
        "0s",
        "--shm-dir",
        &dir,
    ]);
    let report = json(&out);
    let f = findings(&report, "leaked_semaphore");
    assert_eq!(f.len(), 1, "{report:#}");
    assert_eq!(f[0]["confidence"], "likely", "{report:#}");

    let out = as_owner(&[
        "clean",
        "--format",
        "json",
        "--shm-dir",
        &dir,
        "--min-age",
        "0s",
        "--yes",
    ]);
    let plan = json(&out);
    assert_eq!(plan["actions"][0]["status"], "skipped", "{plan:#}");
    assert!(p.exists(), "a semaphore a hidden process maps was removed");
    holder.kill_now();
}

/// A setsid daemon (its own, live, session leader) reading a pipe whose
/// writer is gone: the orphan rule says only `possible`, and clean never
/// terminates it, not even with --orphans --likely-orphans.
#[test]
fn clean_orphans_never_terminates_a_possible_orphan() {
    let Some(ns) = Ns::new(None) else { return };
    let script = r#"
import os, sys, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    os.close(w)
    print(os.getpid(), flush=True)
    os.read(r, 1)              # blocks: nobody writes, nobody closes
    time.sleep(600)
    os._exit(0)
os.close(r)
time.sleep(0.3)
os._exit(0)                    # the writer goes away with us
"#;
    let mut cmd = ns.command("python3");
    cmd.args(["-c", script]);
    let mut parent = spawn(cmd);
    let daemon: i32 = parent
        .read_line()
        .parse()
        .expect("daemon pid (in the namespace)");
    let _ = parent.child.wait();
    std::thread::sleep(Duration::from_millis(300));
    let dir = ns.inside("");
    let report = ns.scan_json(&dir);
    let orphan = findings(&report, "orphan")
        .into_iter()
        .find(|f| f["pids"].as_array().unwrap().iter().any(|p| p == daemon))
        .unwrap_or_else(|| panic!("no orphan finding for pid {daemon}: {report:#}"));
    assert_eq!(orphan["confidence"], "possible", "{orphan:#}");

    let out = ns.semleak(&[
        "clean",
        "--format",
        "json",
        "--shm-dir",
        &dir,
        "--orphans",
        "--likely-orphans",
        "--yes",
        "--kill-after",
        "1s",
    ]);
    let plan = json(&out);
    let a = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["pids"][0] == daemon)
        .unwrap_or_else(|| panic!("no action for the daemon: {plan:#}"));
    assert_eq!(a["status"], "skipped", "{plan:#}");
    assert!(a["why"].as_str().unwrap().contains("never terminates"));
    // Still running (not even a zombie) inside the namespace.
    let stat = ns
        .command("cat")
        .arg(format!("/proc/{daemon}/stat"))
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
    assert!(
        matches!(state, Some("S" | "R")),
        "the daemon was terminated: {stat} {plan:#}"
    );
}

fn fixture_shm(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("semleak-test-suppress-")
        .tempdir()
        .unwrap();
    fs::create_dir(dir.path().join("shm")).unwrap();
    for n in names {
        fs::write(dir.path().join("shm").join(format!("sem.{n}")), sem_bytes()).unwrap();
    }
    dir
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(semleak_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_no_panic(&out);
    out
}

#[test]
fn an_allowlist_others_can_write_is_ignored_and_said_so() {
    let dir = fixture_shm(&["mp-hidden01"]);
    let work = dir.path().join("shared");
    fs::create_dir(&work).unwrap();
    fs::write(
        work.join(".semleak.toml"),
        "[[allow]]\nkind = \"leaked_semaphore\"\nname = \"mp-*\"\nreason = \"mine\"\n",
    )
    .unwrap();
    let shm = dir.path().join("shm");
    let args = [
        "scan",
        "--format",
        "json",
        "--sample-window",
        "0s",
        "--allow-non-tmpfs",
        "--shm-dir",
        shm.to_str().unwrap(),
    ];
    fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).unwrap();
    let report = json(&run_in(&work, &args));
    assert_eq!(report["suppressed"]["allowlist"], 1, "trusted: {report:#}");

    fs::set_permissions(&work, fs::Permissions::from_mode(0o1777)).unwrap();
    let out = run_in(&work, &args);
    let report = json(&out);
    assert_eq!(report["suppressed"]["allowlist"], 0, "{report:#}");
    assert_eq!(findings(&report, "leaked_semaphore").len(), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ignored") && err.contains("anyone"), "{err}");
    assert!(report["suppressed"]["allowlist_ignored"].as_str().is_some());

    // Named explicitly, it is an error, not a silent pass.
    let allow = work.join(".semleak.toml");
    let mut explicit = args.to_vec();
    explicit.extend(["--allow", allow.to_str().unwrap()]);
    let out = run_in(dir.path(), &explicit);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not trusted"));

    if euid() == 0 {
        fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&allow, Some(4242), None).unwrap();
        let out = run_in(&work, &args);
        assert!(String::from_utf8_lossy(&out.stderr).contains("owned by uid 4242"));
        assert_eq!(json(&out)["suppressed"]["allowlist"], 0);
    }
}

#[test]
fn match_everything_allowlists_are_refused() {
    let dir = fixture_shm(&[]);
    for pattern in ["*", "**", "?*", "[!x]*", "{*,a}", "*.*", "/dev/shm/sem.*"] {
        fs::write(
            dir.path().join(".semleak.toml"),
            format!("[[allow]]\nname = \"{pattern}\"\nreason = \"everything\"\n"),
        )
        .unwrap();
        let out = run_in(
            dir.path(),
            &["scan", "--format", "json", "--sample-window", "0s"],
        );
        assert_eq!(out.status.code(), Some(2), "{pattern}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("matches"), "{pattern}: {err}");
    }
}

#[test]
fn clean_leaves_what_the_allowlist_and_baseline_accept() {
    // Stable names, one finding each (random `mp-` names would be one group).
    let dir = fixture_shm(&["acceptedone", "baselineone", "removedone"]);
    fs::write(
        dir.path().join(".semleak.toml"),
        "[[allow]]\nname = \"accepted*\"\nreason = \"in use by the team's daemon\"\n",
    )
    .unwrap();
    let shm = dir.path().join("shm");
    let shm_s = shm.to_str().unwrap();
    let scan = json(&run_in(
        dir.path(),
        &[
            "scan",
            "--format",
            "json",
            "--sample-window",
            "0s",
            "--allow-non-tmpfs",
            "--shm-dir",
            shm_s,
        ],
    ));
    // A baseline with only the baselineone finding.
    let mut baseline = scan.clone();
    baseline["findings"] = Value::Array(
        scan["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["resources"][0]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("baselineone")
            })
            .cloned()
            .collect(),
    );
    let base = dir.path().join("baseline.json");
    fs::write(&base, baseline.to_string()).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "clean",
            "--format",
            "json",
            "--allow-non-tmpfs",
            "--shm-dir",
            shm_s,
            "--min-age",
            "0s",
            "--allow-incomplete",
            "--baseline",
            base.to_str().unwrap(),
            "--yes",
        ],
    );
    let plan = json(&out);
    assert_eq!(plan["suppressed"]["allowlist"], 1, "{plan:#}");
    assert_eq!(plan["suppressed"]["baseline"], 1, "{plan:#}");
    assert!(shm.join("sem.acceptedone").exists());
    assert!(shm.join("sem.baselineone").exists());
    assert!(!shm.join("sem.removedone").exists(), "{plan:#}");
}

#[test]
fn hostile_snapshots_are_refused_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    let snap = run_in(
        dir.path(),
        &[
            "snapshot",
            "--sample-window",
            "0s",
            "--allow-non-tmpfs",
            "--shm-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(snap.status.success());
    let base: Value = serde_json::from_slice(&snap.stdout).unwrap();
    let sem = serde_json::json!({
        "name": "x", "path": "/dev/shm/sem.x",
        "meta": {"dev": 1, "inode": 2, "uid": 0, "gid": 0, "mode": 384, "size": 32,
                 "modified_at": i64::MAX, "changed_at": i64::MIN},
        "value": 1, "waiters": u32::MAX, "unreadable_reason": null, "unlinked": false,
        "holders": []
    });
    let mut hex = sem.clone();
    hex["name"] = serde_json::json!({"hex": "0é0"});
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, Option<&str>)> = vec![
        (
            "hex",
            Box::new(move |v| v["shm"]["semaphores"] = serde_json::json!([hex.clone()])),
            Some("hex"),
        ),
        (
            "taken_at",
            Box::new(|v| v["taken_at_ms"] = u64::MAX.into()),
            Some("taken_at_ms"),
        ),
        (
            "boot_time",
            Box::new(|v| v["host"]["boot_time"] = u64::MAX.into()),
            Some("boot_time"),
        ),
        (
            "ticks",
            Box::new(|v| v["host"]["clock_ticks"] = 0.into()),
            Some("clock_ticks"),
        ),
        (
            "duration",
            Box::new(|v| v["duration_ms"] = u64::MAX.into()),
            None,
        ),
        (
            "file times",
            Box::new(move |v| v["shm"]["semaphores"] = serde_json::json!([sem.clone()])),
            None,
        ),
    ];
    for (what, mutate, error) in cases {
        let mut v = base.clone();
        mutate(&mut v);
        let file = dir.path().join(format!("{what}.json"));
        fs::write(&file, v.to_string()).unwrap();
        for format in ["json", "table"] {
            let out = run_in(
                dir.path(),
                &["analyze", file.to_str().unwrap(), "--format", format],
            );
            let err = String::from_utf8_lossy(&out.stderr);
            match error {
                Some(field) => {
                    assert_eq!(out.status.code(), Some(2), "{what}");
                    assert!(err.contains(field), "{what}: {err}");
                }
                None => assert!(matches!(out.status.code(), Some(0 | 1)), "{what}: {err}"),
            }
        }
    }
}

/// Any bytes `shell_quote` agrees to quote reach the program exactly as
/// they were, under every shell here; it refuses the rest.
#[test]
fn quoted_words_reach_every_shell_byte_for_byte() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let shells = shells();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let word = prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(b"'\"\\$`!*?[]{}()|&;<> \t\n#~=%^-/.a".to_vec()),
            1 => any::<u8>(),
        ],
        0..24,
    );
    runner
        .run(&prop::collection::vec(word, 1..16), |words| {
            let quoted: Vec<(Vec<u8>, String)> = words
                .into_iter()
                .filter_map(|w| semleak::analyze::shell_quote(&w).map(|q| (w, q)))
                .collect();
            let script: String = quoted
                .iter()
                .map(|(_, q)| format!("printf '%s\\0' {q}\n"))
                .collect();
            let expected: Vec<u8> = quoted
                .iter()
                .flat_map(|(w, _)| w.iter().copied().chain([0]))
                .collect();
            for sh in &shells {
                let out = Command::new(sh).args(["-c", &script]).output().unwrap();
                prop_assert!(out.status.success(), "{sh}: {script}");
                prop_assert_eq!(&out.stdout, &expected, "{}: {}", sh, script);
            }
            Ok(())
        })
        .unwrap();
}
