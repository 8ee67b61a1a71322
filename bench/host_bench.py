#!/usr/bin/env python3
"""Build a busy host, time `semleak scan` against `lsof -n /dev/shm`, tear down.

The host: PROCS real processes (forked, sleeping) and SEMS real POSIX named
semaphores (glibc sem_open). HOLDERS of the processes each keep PER_HOLDER
semaphores open (mapped); the rest of the semaphores are held by nobody, as
after a crashed multiprocessing run. Both tools are timed in the same run,
several times each; the median is reported, with the ratio.

Usage: python3 bench/host_bench.py [--procs 2000] [--sems 15000]
           [--semleak target/release/semleak] [--runs 5]
Everything it creates is named semleak-bench-PID-*, killed by pid and
unlinked by name at the end, even on Ctrl-C.
"""

import argparse
import ctypes
import os
import signal
import statistics
import subprocess
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
libc.sem_close.argtypes = [ctypes.c_void_p]
libc.sem_unlink.argtypes = [ctypes.c_char_p]
SEM_FAILED = ctypes.c_void_p(-1).value


def sem_open(name, create):
    h = libc.sem_open(name.encode(), os.O_CREAT if create else 0, 0o600, 1)
    if h in (None, 0, SEM_FAILED):
        raise OSError(ctypes.get_errno(), "sem_open " + name)
    return h


def timed(cmd, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
        if r.returncode not in (0, 1):
            sys.exit(f"{cmd[0]} failed with {r.returncode}")
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=2000)
    ap.add_argument("--sems", type=int, default=15000)
    ap.add_argument("--holders", type=int, default=200)
    ap.add_argument("--per-holder", type=int, default=25)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--semleak", default="target/release/semleak")
    ap.add_argument("--hold", type=float, default=0,
                    help="keep the host up this many seconds before timing (for profiling)")
    args = ap.parse_args()

    # Background jobs ignore SIGINT: make SIGINT and SIGTERM tear down too.
    def stop(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    prefix = f"/semleak-bench-{os.getpid()}-"
    names = [f"{prefix}{i}" for i in range(args.sems)]
    children = []
    try:
        t = time.perf_counter()
        for n in names:
            libc.sem_close(sem_open(n, True))
        print(f"created {len(names)} semaphores in {time.perf_counter() - t:.1f}s", flush=True)

        t = time.perf_counter()
        for i in range(args.procs):
            held = []
            if i < args.holders:
                start = i * args.per_holder
                held = names[start:start + args.per_holder]
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                try:
                    for n in held:
                        sem_open(n, False)
                    signal.pause()
                finally:
                    os._exit(0)
            children.append(pid)
        time.sleep(2)  # let holders open theirs
        print(f"started {len(children)} processes in {time.perf_counter() - t:.1f}s", flush=True)
        total = len(os.listdir("/proc"))
        print(f"host now has {sum(1 for e in os.listdir('/proc') if e.isdigit())} processes, "
              f"{sum(1 for e in os.listdir('/dev/shm') if e.startswith('sem.'))} semaphores", flush=True)
        del total
        time.sleep(args.hold)

        # Interleave the tools so load changes hit both alike.
        semleak, nowindow, lsof = [], [], []
        for _ in range(args.runs):
            semleak += timed([args.semleak, "scan", "--format", "json"], 1)
            nowindow += timed([args.semleak, "scan", "--format", "json", "--sample-window", "0s"], 1)
            lsof += timed(["lsof", "-n", "/dev/shm"], 1)
        l = statistics.median(lsof)
        for label, t in [("semleak scan --format json", semleak),
                         ("  … --sample-window 0s", nowindow),
                         ("lsof -n /dev/shm", lsof)]:
            m = statistics.median(t)
            print(f"{label:<28} median {m * 1000:5.0f} ms over {len(t)} runs "
                  f"(min {min(t) * 1000:.0f}, max {max(t) * 1000:.0f}); {m / l:.2f}x lsof")
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        for n in names:
            libc.sem_unlink(n.encode())
        print("torn down", flush=True)


if __name__ == "__main__":
    main()
