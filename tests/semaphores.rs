//! Real named semaphores, made on purpose, and what `semleak scan` says.
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::*;

fn leaked<'a>(report: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    findings(report, "leaked_semaphore").into_iter().find(|f| {
        f["resources"]
            .as_array()
            .is_some_and(|r| r.contains(&serde_json::Value::from(format!("/dev/shm/sem.{name}"))))
    })
}

#[test]
fn semaphore_of_a_sigkilled_creator_is_leaked() {
    let name = unique_name("killed");
    let _guard = SemGuard(name.clone());
    let script =
        format!("{PY_SEM}\nsem_open(sys.argv[1])\nprint('ready', flush=True)\ntime.sleep(60)\n");
    let mut creator = python(&script, &[&name]);
    assert_eq!(creator.read_line(), "ready");

    // While the creator lives it holds the semaphore (through glibc's
    // deleted temporary name, matched by inode).
    let (_, report) = scan_json(&[]);
    let sem = inventory_semaphore(&report, &name).expect("semaphore listed");
    assert_eq!(sem["holders"], serde_json::json!([creator.pid()]));
    assert!(leaked(&report, &name).is_none());

    creator.kill_now();
    let (code, report) = scan_json(&[]);
    assert_eq!(code, 1, "an error-severity finding fails the scan");
    let f = leaked(&report, &name).expect("leaked_semaphore finding");
    assert_eq!(f["severity"], "error");
    // pid 1 of some sandboxes cannot be inspected: then it is "likely".
    let expected = if report["visibility"]["complete"] == true {
        "certain"
    } else {
        "likely"
    };
    assert_eq!(f["confidence"], expected);
    assert_eq!(f["cleanup"][0], format!("rm -- /dev/shm/sem.{name}"));
    let evidence = f["evidence"].to_string();
    assert!(evidence.contains("value 1, waiters 0"), "{evidence}");
    let sem = inventory_semaphore(&report, &name).unwrap();
    assert_eq!(sem["holders"], serde_json::json!([]));
    assert_eq!(sem["size"], 32);
    assert_eq!(sem["mode"], "0600");
    assert_eq!(sem["unlinked"], false);
}

#[test]
fn creator_and_opener_are_both_holders() {
    let name = unique_name("shared");
    let _guard = SemGuard(name.clone());
    let create =
        format!("{PY_SEM}\nsem_open(sys.argv[1])\nprint('ready', flush=True)\ntime.sleep(60)\n");
    let open = format!("{PY_SEM}\nsem_open(sys.argv[1], create=False)\nprint('ready', flush=True)\ntime.sleep(60)\n");
    let mut creator = python(&create, &[&name]);
    assert_eq!(creator.read_line(), "ready");
    let mut opener = python(&open, &[&name]);
    assert_eq!(opener.read_line(), "ready");

    let (_, report) = scan_json(&[]);
    let sem = inventory_semaphore(&report, &name).expect("listed");
    let mut holders: Vec<i64> = sem["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    holders.sort_unstable();
    let mut expected = vec![creator.pid() as i64, opener.pid() as i64];
    expected.sort_unstable();
    assert_eq!(holders, expected);
    assert!(leaked(&report, &name).is_none());
}

#[test]
fn unlinked_but_mapped_semaphore_is_listed_with_its_holder() {
    let name = unique_name("unlinked");
    let _guard = SemGuard(name.clone());
    // Open by name (so maps show the real name), then unlink it.
    let create =
        format!("{PY_SEM}\nsem_open(sys.argv[1])\nprint('ready', flush=True)\ntime.sleep(60)\n");
    let open_unlink = format!(
        "{PY_SEM}\nsem_open(sys.argv[1], create=False)\nsem_unlink(sys.argv[1])\nprint('ready', flush=True)\ntime.sleep(60)\n"
    );
    let mut creator = python(&create, &[&name]);
    assert_eq!(creator.read_line(), "ready");
    let mut opener = python(&open_unlink, &[&name]);
    assert_eq!(opener.read_line(), "ready");

    let (_, report) = scan_json(&[]);
    let sem =
        inventory_semaphore(&report, &name).expect("unlinked semaphore listed by its real name");
    assert_eq!(sem["unlinked"], true);
    let holders = sem["holders"].as_array().unwrap();
    assert!(holders.contains(&serde_json::json!(opener.pid())));
    assert!(holders.contains(&serde_json::json!(creator.pid())));
    assert!(leaked(&report, &name).is_none(), "unlinked is not leaked");
}

/// DESIGN.md case 2: a spawn-context Lock whose process and resource
/// tracker are SIGKILLed leaves /dev/shm/sem.mp-*.
#[test]
fn multiprocessing_lock_of_killed_program_is_leaked_as_mp() {
    let script = r#"
import multiprocessing as mp, sys, time
from multiprocessing import resource_tracker
ctx = mp.get_context("spawn")
lock = ctx.Lock()
resource_tracker.ensure_running()
print(lock._semlock.name, flush=True)
print(resource_tracker._resource_tracker._pid, flush=True)
print("ready", flush=True)
time.sleep(60)
"#;
    let mut prog = python(script, &[]);
    let name = prog.read_line().trim_start_matches('/').to_string();
    let tracker: i32 = prog.read_line().parse().expect("tracker pid");
    prog.also_kill(tracker);
    assert_eq!(prog.read_line(), "ready");
    assert!(name.starts_with("mp-"), "{name}");
    // Cleanup of this name is ours: it is unique to this run.
    struct Unlink(String);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(format!("/dev/shm/sem.{}", self.0));
        }
    }
    let _unlink = Unlink(name.clone());

    kill(tracker, libc::SIGKILL);
    prog.kill_now();
    assert!(wait_until(Duration::from_secs(10), || !alive(tracker)));

    let (code, report) = scan_json(&[]);
    assert_eq!(code, 1);
    let f = leaked(&report, &name).expect("mp- semaphore reported");
    let evidence = f["evidence"].to_string();
    assert!(evidence.contains("CPython multiprocessing"), "{evidence}");
    assert!(f["recommendation"]
        .as_str()
        .unwrap()
        .contains("resource tracker"));
}
