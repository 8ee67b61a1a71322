//! `full_wakeup_pipe` and `stalled_wakeup_pipe`: an event loop's
//! self-channel (the fd handed to `signal.set_wakeup_fd`) that stays full,
//! or non-empty, across the sampling window without being read.
//!
//! Only non-blocking channels count: a wakeup fd must be non-blocking
//! (CPython refuses a blocking one; asyncio, trio, tokio and GLib all set
//! O_NONBLOCK), while a blocking self-pipe is a data queue whose slow
//! consumer is not this rule's business. A channel that was read between
//! samples (its queue shrank) is healthy, however full it looked: trio's
//! 1-byte-buffer socketpair is full for an instant by design.

use std::collections::BTreeMap;

use semleak_platform::{ChannelSample, SelfChannel, Snapshot, ThreadSample};

use super::{process_label, Confidence, Config, Finding, Kind, Severity, Subject};

pub fn check(snapshot: &Snapshot, _config: &Config) -> Vec<Finding> {
    snapshot
        .channels
        .iter()
        .filter(|c| c.pid != snapshot.host.collector_pid)
        .filter_map(|c| {
            let (kind, reader) = verdict(c)?;
            Some(finding(snapshot, c, kind, &reader))
        })
        .collect()
}

/// What the reading side did over the window.
#[derive(Debug, Clone, PartialEq)]
enum Reader<'a> {
    /// The loop thread was never put on a CPU: it cannot have read.
    Idle(&'a [ThreadSample]),
    /// It ran, so it may have drained a channel that was refilled.
    Ran,
    /// Not read (macOS, older snapshots, a thread that vanished).
    Unknown,
}

fn reader(ch: &SelfChannel) -> Reader<'_> {
    let t = ch.loop_thread.as_slice();
    let (Some(first), Some(last)) = (t.first(), t.last()) else {
        return Reader::Unknown;
    };
    // The looks must span the fill samples they vouch for: from no later
    // than the one before the last (the collector reads the thread just
    // after the fill levels) to no earlier than the last.
    let spans = match ch.samples.len() {
        n @ 2.. => first.at_ms <= ch.samples[n - 2].at_ms && last.at_ms >= ch.samples[n - 1].at_ms,
        _ => false,
    };
    if t.len() < 2
        || !spans
        || t.iter()
            .any(|s| s.tid != first.tid || matches!(s.state.as_str(), "Z" | "X"))
    {
        return Reader::Unknown;
    }
    // A thread that keeps its CPU the whole window is never put on one
    // again: its run count stands still while its CPU time grows, and it
    // shows as running.
    let never_ran = first.cpu_ns == last.cpu_ns && t.iter().all(|s| s.state != "R");
    match (first.run_count, last.run_count) {
        (Some(a), Some(b)) if a == b && never_ran => Reader::Idle(t),
        (Some(_), Some(_)) => Reader::Ran,
        _ => Reader::Unknown,
    }
}

/// The kind of fault a channel shows, if any, and what its reader did.
fn verdict(ch: &SelfChannel) -> Option<(Kind, Reader<'_>)> {
    if ch.samples.len() < 2 || ch.nonblocking == Some(false) {
        return None;
    }
    // Read between two samples: fewer bytes queued, or (sockets) less
    // write memory still charged to the sender.
    let drained = ch.samples.windows(2).any(|w| {
        w[1].queued < w[0].queued
            || matches!((w[0].sender_wmem, w[1].sender_wmem), (Some(a), Some(b)) if b < a)
    });
    let kind = if drained {
        return None;
    } else if ch.samples.iter().all(|s| s.full) {
        Kind::FullWakeupPipe
    } else if ch.samples.iter().all(|s| s.queued > 0) {
        Kind::StalledWakeupPipe
    } else {
        return None;
    };
    // An unchanged level proves nothing on its own: a busy loop drained
    // and refilled between samples looks the same. Only a reader that did
    // not run cannot have read.
    match reader(ch) {
        Reader::Ran => None,
        r => Some((kind, r)),
    }
}

/// Point a wakeup finding and a thread pile-up of the same process at each
/// other: threads piling up (holding the GIL or the CPUs) are the likely
/// reason the loop stopped reading.
pub fn link_thread_pileups(findings: &mut [Finding]) {
    let is_wakeup = |f: &Finding| matches!(f.kind, Kind::FullWakeupPipe | Kind::StalledWakeupPipe);
    let mut links: Vec<(usize, String)> = Vec::new();
    for (w, wake) in findings.iter().enumerate().filter(|(_, f)| is_wakeup(f)) {
        for (p, pile) in findings
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind == Kind::ThreadPileup)
        {
            if !wake.pids.iter().any(|pid| pile.pids.contains(pid)) {
                continue;
            }
            links.push((
                w,
                format!(
                    "likely cause: the same process has a thread pile-up ({}): {}",
                    pile.id,
                    pile.summary_text()
                ),
            ));
            links.push((
                p,
                format!(
                    "likely effect: the same process's wakeup channel is not draining ({}); this pile-up is the likely cause",
                    wake.id
                ),
            ));
        }
    }
    for (i, line) in links {
        findings[i].say(line);
    }
}

fn finding(snapshot: &Snapshot, ch: &SelfChannel, kind: Kind, reader: &Reader) -> Finding {
    let is_pipe = ch.kind == "pipe";
    let resources = if is_pipe {
        vec![Subject::Pipe(ch.read_inode)]
    } else {
        vec![
            Subject::Socket(ch.read_inode),
            Subject::Socket(ch.write_inode),
        ]
    };
    let subject = format!(
        "{}\0{}\0{}\0{}",
        ch.pid, ch.kind, ch.read_inode, ch.write_inode
    );
    let (severity, what) = match kind {
        Kind::FullWakeupPipe => (Severity::Error, "is full and not draining"),
        _ => (Severity::Warning, "has bytes queued and is not draining"),
    };
    let confidence = if ch.nonblocking == Some(true) && matches!(reader, Reader::Idle(_)) {
        Confidence::Likely
    } else {
        Confidence::Possible
    };
    let mut f = Finding::new(kind, subject.as_bytes(), severity, confidence);
    let label = process_label(snapshot, ch.pid);
    let noun = if is_pipe { "pipe" } else { "socketpair" };
    f.headline(match kind {
        Kind::FullWakeupPipe => {
            format!("wakeup {noun} of {label} {what}: signals such as Ctrl-C are dropped")
        }
        _ => format!("wakeup {noun} of {label} {what}: its event loop is not running"),
    });
    f.pids = vec![ch.pid];
    f.subjects = resources.clone();

    let (read_role, write_role) = if is_pipe {
        ("read end", "write end")
    } else {
        ("receiving end", "sending end")
    };
    let blocking = match ch.nonblocking {
        Some(true) => ", non-blocking",
        Some(false) => ", blocking",
        None => "",
    };
    f.say(format!(
        "{}: fd {} ({read_role}) and fd {} ({write_role}{blocking}) are both held by pid {}",
        resources
            .iter()
            .map(super::words::subject)
            .collect::<Vec<_>>()
            .join(" ↔ "),
        ch.read_fd,
        ch.write_fd,
        ch.pid
    ));
    for s in &ch.samples {
        f.say(describe_sample(s, is_pipe));
    }
    if let (Some(first), Some(last)) = (ch.samples.first(), ch.samples.last()) {
        f.say(format!(
            "nothing was read from it in the {} ms between the first and last sample",
            last.at_ms.saturating_sub(first.at_ms)
        ));
    }
    f.say(match reader {
        Reader::Idle(t) => idle_line(t),
        _ => "its loop thread's progress could not be read, so a loop that drained the channel \
and was refilled between the samples is not ruled out"
            .into(),
    });
    if let Some(p) = snapshot.process(ch.pid) {
        f.say(threads_line(p));
        if let Some(note) = interpreter_names_note(p) {
            f.say(note);
        }
        // SIGINT is signal 2: bit 1 of the caught mask.
        if p.sig_caught.is_some_and(|m| m & (1 << 1) != 0) {
            f.say(
                "it catches SIGINT: the wakeup byte of a Ctrl-C is written to this channel".into(),
            );
        }
    }
    if !ch.other_holders.is_empty() {
        let shown: Vec<String> = ch
            .other_holders
            .iter()
            .take(10)
            .map(|p| p.to_string())
            .collect();
        f.say(format!(
            "also held by pid(s) {}{} (forked children inherit it)",
            shown.join(", "),
            if ch.other_holders.len() > 10 {
                ", …"
            } else {
                ""
            }
        ));
    }
    if !ch.method.is_empty() {
        f.say(format!("fill level read with {}", ch.method));
    }
    f.recommendation = "The process's event loop is blocked or starved and no longer reads its \
signal wakeup channel, so further signal bytes are dropped and Ctrl-C stops working. Look at \
its threads: dump their stacks (`py-spy dump --pid PID` for Python, `eu-stack -p PID` or gdb \
otherwise) and find what keeps the loop thread from running: a blocking call on the loop \
thread, or (as with abandoned sub-interpreter or worker threads in async frameworks) threads \
that hold the GIL and never finish. Stop or join those threads on shutdown."
        .to_string();
    f
}

fn describe_sample(s: &ChannelSample, is_pipe: bool) -> String {
    let state = if s.full {
        " — full, a write gets EAGAIN"
    } else {
        ""
    };
    match (is_pipe, s.sender_wmem) {
        (false, Some(wmem)) => format!(
            "at +{} ms: {} bytes unread; sender write memory {} of send buffer {} bytes{state}",
            s.at_ms, s.queued, wmem, s.capacity
        ),
        _ => format!(
            "at +{} ms: {} of {} bytes queued{state}",
            s.at_ms, s.queued, s.capacity
        ),
    }
}

/// "its main thread (tid 4242) did not run once between +20 and +320 ms:
/// sleeping at every look, in futex_wait_queue (system call futex), 0.120 s
/// of CPU in all".
fn idle_line(t: &[ThreadSample]) -> String {
    let (first, last) = (&t[0], &t[t.len() - 1]);
    let mut states: Vec<&str> = t.iter().map(|s| state_name(&s.state)).collect();
    states.dedup();
    let mut waits: Vec<String> = t
        .iter()
        .filter_map(|s| match (&s.wchan, &s.syscall) {
            (Some(w), Some(c)) => Some(format!("in {w} (system call {c})")),
            (Some(w), None) => Some(format!("in {w}")),
            (None, Some(c)) if c != "user" && c != "running" => Some(format!("in system call {c}")),
            _ => None,
        })
        .collect();
    waits.dedup();
    let mut line = format!(
        "its main thread (tid {}), which runs the signal handlers and, in Python, the event \
loop that owns the wakeup fd, did not run once between +{} and +{} ms ({} looks): {}",
        first.tid,
        first.at_ms,
        last.at_ms,
        t.len(),
        states.join(", then ")
    );
    if !waits.is_empty() {
        line.push_str(&format!(" {}", waits.join(", then ")));
    }
    if let Some(ns) = last.cpu_ns {
        line.push_str(&format!("; {:.3} s of CPU in all", ns as f64 / 1e9));
    }
    line.push_str(": a loop that drained the channel in between would have had to run");
    line
}

fn state_name(state: &str) -> &str {
    match state {
        "S" => "sleeping",
        "D" => "in uninterruptible sleep",
        "T" => "stopped",
        "t" => "stopped by a tracer",
        "I" => "idle",
        other => other,
    }
}

/// CPython before 3.14 does not give its threads OS names, so named
/// Python threads (a pile of `subint-driver[N]`) all show the
/// interpreter's name.
fn interpreter_names_note(p: &semleak_platform::Process) -> Option<String> {
    let comm = p.comm.as_bytes();
    if !comm.starts_with(b"python") {
        return None;
    }
    let same = p
        .thread_names
        .iter()
        .filter(|n| n.as_bytes() == comm)
        .count();
    (same >= 2).then(|| {
        format!(
            "CPython before 3.14 leaves the OS names of its threads as the interpreter's: a \
pile-up of named Python threads (such as subint-driver[N]) shows as {same} × {}",
            p.comm.to_lossy()
        )
    })
}

/// "17 threads (16 × subint-driver[N], 1 × python3)": the most common
/// names first, since a pile of same-named threads is often the cause.
fn threads_line(p: &semleak_platform::Process) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for name in &p.thread_names {
        *counts.entry(name.to_lossy()).or_default() += 1;
    }
    let mut by_count: Vec<(String, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut parts: Vec<String> = by_count
        .iter()
        .take(5)
        .map(|(n, c)| format!("{c} × {n}"))
        .collect();
    if by_count.len() > 5 {
        parts.push("…".into());
    }
    if parts.is_empty() {
        format!("the process has {} thread(s)", p.threads)
    } else {
        format!(
            "the process has {} thread(s) ({})",
            p.threads,
            parts.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::testing::*;
    use semleak_platform::RawName;

    /// `ch` with a main thread that slept through every sample.
    fn idle(mut ch: SelfChannel) -> SelfChannel {
        let looks = vec![("S", 7); ch.samples.len()];
        ch.loop_thread = loop_thread(ch.pid, &looks);
        ch
    }

    fn snap_with(ch: SelfChannel) -> Snapshot {
        let ch = if ch.loop_thread.is_empty() {
            idle(ch)
        } else {
            ch
        };
        let mut snap = snapshot();
        let mut p = process(4242, 1, "python3 server.py");
        p.threads = 17;
        p.thread_names = std::iter::once(RawName::from("python3"))
            .chain((0..16).map(|_| RawName::from("subint-driver")))
            .collect();
        p.sig_caught = Some(0x4002);
        snap.processes = vec![p];
        snap.channels = vec![ch];
        snap
    }

    #[test]
    fn full_and_not_draining_pipe_is_an_error() {
        let snap = snap_with(channel(4242, "pipe", &[(65_536, true), (65_536, true)]));
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::FullWakeupPipe);
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[0].confidence, Confidence::Likely);
        assert_eq!(f[0].pids, vec![4242]);
        assert_eq!(f[0].resources(), vec!["pipe:[9052]"]);
        assert!(f[0].summary_text().contains("pid 4242 (python3 server.py)"));
        let ev = f[0].evidence_lines().join("\n");
        assert!(ev.contains("at +20 ms: 65536 of 65536 bytes queued — full"));
        assert!(ev.contains("at +320 ms"));
        assert!(ev.contains("nothing was read from it in the 300 ms"));
        assert!(ev.contains("17 thread(s) (16 × subint-driver, 1 × python3)"));
        assert!(ev.contains("catches SIGINT"));
        assert!(ev.contains("fd 6 (write end, non-blocking)"));
        assert!(ev.contains(
            "its main thread (tid 4242), which runs the signal handlers and, in Python, the event \
loop that owns the wakeup fd, did not run once between +20 and +320 ms (2 looks): sleeping in \
futex_wait_queue (system call futex); 0.120 s of CPU in all"
        ), "{ev}");
        assert!(f[0].recommendation.contains("py-spy"));
    }

    #[test]
    fn a_reader_that_ran_may_have_drained_a_refilled_channel() {
        // Full at every one of four looks, but the loop thread was put on
        // a CPU in between: a busy healthy loop refilled by signals.
        let levels = [(6, true); 4];
        let mut ch = channel(4242, "socketpair", &levels);
        ch.loop_thread = loop_thread(4242, &[("S", 7), ("S", 7), ("S", 7), ("S", 9)]);
        assert!(check(&snap_with(ch.clone()), &Config::default()).is_empty());
        // Runnable at a look: it was not blocked, whatever the count says.
        ch.loop_thread = loop_thread(4242, &[("S", 7), ("R", 7), ("S", 7), ("S", 7)]);
        assert!(check(&snap_with(ch.clone()), &Config::default()).is_empty());
        // On a CPU the whole window: the count stands still, the CPU
        // time does not.
        ch.loop_thread = loop_thread(4242, &[("S", 7); 4]);
        ch.loop_thread[3].cpu_ns = Some(999_000_000);
        assert!(check(&snap_with(ch.clone()), &Config::default()).is_empty());
        // Never on a CPU and never runnable: it cannot have read.
        ch.loop_thread = loop_thread(4242, &[("S", 7); 4]);
        let f = check(&snap_with(ch), &Config::default());
        assert_eq!(f[0].kind, Kind::FullWakeupPipe);
        assert_eq!(f[0].confidence, Confidence::Likely);
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("(4 looks)")));
    }

    #[test]
    fn without_the_readers_progress_the_verdict_is_only_possible() {
        let mut ch = channel(4242, "pipe", &[(65_536, true), (65_536, true)]);
        // The loop_thread vector is filled in by snap_with only when empty.
        ch.loop_thread = loop_thread(4242, &[("S", 7), ("S", 7)]);
        for t in &mut ch.loop_thread {
            t.run_count = None;
        }
        let f = check(&snap_with(ch.clone()), &Config::default());
        assert_eq!(f[0].kind, Kind::FullWakeupPipe);
        assert_eq!(f[0].confidence, Confidence::Possible);
        assert!(f[0]
            .evidence_lines()
            .iter()
            .any(|e| e.contains("progress could not be read")));
        // A main thread that exited (zombie), or a look that does not span
        // the fill samples, vouches for nothing either.
        ch.loop_thread = loop_thread(4242, &[("Z", 7), ("Z", 7)]);
        let f = check(&snap_with(ch.clone()), &Config::default());
        assert_eq!(f[0].confidence, Confidence::Possible);
        ch.loop_thread = loop_thread(4242, &[("S", 7)]);
        let f = check(&snap_with(ch.clone()), &Config::default());
        assert_eq!(f[0].confidence, Confidence::Possible);
        // Looks that start only after the last fill sample.
        ch.loop_thread = loop_thread(4242, &[("S", 7), ("S", 7), ("S", 7)]);
        ch.loop_thread.remove(0);
        let f = check(&snap_with(ch), &Config::default());
        assert_eq!(f[0].confidence, Confidence::Possible);
    }

    #[test]
    fn wakeup_and_thread_pileup_of_one_process_point_at_each_other() {
        let mut snap = snap_with(channel(4242, "pipe", &[(65_536, true), (65_536, true)]));
        snap.processes[0].thread_names = std::iter::once(RawName::from("python3"))
            .chain((0..16).map(|n| RawName::from(format!("subint-driver[{n}]").as_str())))
            .collect();
        let findings = crate::analyze::analyze(&snap, &Config::default());
        let wake = findings
            .iter()
            .find(|f| f.kind == Kind::FullWakeupPipe)
            .unwrap();
        let pile = findings
            .iter()
            .find(|f| f.kind == Kind::ThreadPileup)
            .unwrap();
        assert!(wake.evidence_lines().iter().any(|e| e.starts_with(&format!(
            "likely cause: the same process has a thread pile-up ({}): pid 4242",
            pile.id
        ))));
        assert!(pile.evidence_lines().iter().any(|e| e.contains(&format!(
            "wakeup channel is not draining ({}); this pile-up is the likely cause",
            wake.id
        ))));
        // Another process's pile-up is not linked.
        let mut other = snap.clone();
        other.channels[0].pid = 4343;
        let mut p = other.processes[0].clone();
        p.pid = 4343;
        p.thread_names = vec![RawName::from("python3")];
        other.processes.push(p);
        let findings = crate::analyze::analyze(&other, &Config::default());
        assert!(findings
            .iter()
            .all(|f| !f.evidence_lines().iter().any(|e| e.starts_with("likely"))));
    }

    #[test]
    fn unnamed_cpython_threads_get_the_interpreter_note() {
        let mut snap = snap_with(channel(4242, "pipe", &[(65_536, true), (65_536, true)]));
        snap.processes[0].comm = RawName::from("python3");
        snap.processes[0].thread_names = vec![RawName::from("python3"); 17];
        let f = check(&snap, &Config::default());
        assert!(f[0].evidence_lines().iter().any(|e| e
            == "CPython before 3.14 leaves the OS names of its threads as the interpreter's: a \
pile-up of named Python threads (such as subint-driver[N]) shows as 17 × python3"));
        // Named threads (or not Python): no note.
        snap.processes[0].comm = RawName::from("node");
        let f = check(&snap, &Config::default());
        assert!(!f[0].evidence_lines().iter().any(|e| e.contains("CPython")));
    }

    #[test]
    fn full_socketpair_reports_sender_memory() {
        let snap = snap_with(channel(4242, "socketpair", &[(278, true), (278, true)]));
        let f = check(&snap, &Config::default());
        assert_eq!(f[0].kind, Kind::FullWakeupPipe);
        assert_eq!(f[0].resources(), vec!["socket:[9052]", "socket:[9053]"]);
        assert!(f[0].evidence_lines().iter().any(|e| e.contains(
            "278 bytes unread; sender write memory 213504 of send buffer 212992 bytes — full"
        )));
    }

    #[test]
    fn non_empty_and_not_draining_is_a_warning() {
        let snap = snap_with(channel(4242, "pipe", &[(3, false), (5, false)]));
        let f = check(&snap, &Config::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::StalledWakeupPipe);
        assert_eq!(f[0].severity, Severity::Warning);
        // Full only once, then still non-empty and growing: stalled.
        let snap = snap_with(channel(4242, "pipe", &[(65_536, true), (65_536, false)]));
        assert_eq!(
            check(&snap, &Config::default())[0].kind,
            Kind::StalledWakeupPipe
        );
    }

    #[test]
    fn drained_between_samples_is_healthy() {
        // trio: full at both instants, but it was read in between.
        let snap = snap_with(channel(4242, "socketpair", &[(6, true), (5, true)]));
        assert!(check(&snap, &Config::default()).is_empty());
        let mut ch = channel(4242, "socketpair", &[(6, true), (6, true)]);
        ch.samples[1].sender_wmem = Some(1000);
        assert!(check(&snap_with(ch), &Config::default()).is_empty());
        for levels in [
            &[(0, false), (0, false)][..],
            &[(0, false), (7, false)][..],
            &[(7, false), (0, false)][..],
        ] {
            let snap = snap_with(channel(4242, "pipe", levels));
            assert!(check(&snap, &Config::default()).is_empty(), "{levels:?}");
        }
    }

    #[test]
    fn one_sample_blocking_channels_and_semleak_itself_are_not_judged() {
        let snap = snap_with(channel(4242, "pipe", &[(65_536, true)]));
        assert!(check(&snap, &Config::default()).is_empty());
        let mut ch = channel(4242, "pipe", &[(65_536, true), (65_536, true)]);
        ch.nonblocking = Some(false);
        assert!(check(&snap_with(ch), &Config::default()).is_empty());
        let mut snap = snap_with(channel(4242, "pipe", &[(65_536, true), (65_536, true)]));
        snap.host.collector_pid = 4242;
        assert!(check(&snap, &Config::default()).is_empty());
    }

    #[test]
    fn unknown_flags_lower_confidence_and_ids_are_stable() {
        let mut ch = channel(4242, "pipe", &[(65_536, true), (65_536, true)]);
        ch.nonblocking = None;
        let a = check(&snap_with(ch.clone()), &Config::default());
        assert_eq!(a[0].confidence, Confidence::Possible);
        // Different fill figures, same channel: same id.
        ch.samples[0].at_ms = 999;
        ch.samples[1].queued = 65_536;
        let b = check(&snap_with(ch.clone()), &Config::default());
        assert_eq!(a[0].id, b[0].id);
        ch.pid = 4343;
        let c = check(&snap_with(ch), &Config::default());
        assert_ne!(a[0].id, c[0].id);
    }
}
