#!/usr/bin/env bash
# How `semleak clean` scales: plan 10,000 unheld semaphores (dry run), then
# unlink 2,000 with 88 processes running. Runs in a private mount and pid
# namespace on a private tmpfs (never the real /dev/shm); needs root or
# unprivileged user namespaces.
#
#   bench/clean_scale.sh [SEMLEAK_BINARY]   (default: target/release/semleak)
set -euo pipefail
bin=$(realpath "${1:-target/release/semleak}")
if [ "$(id -u)" -ne 0 ]; then userns=(--user --map-root-user); else userns=(); fi
exec unshare "${userns[@]}" --mount --pid --fork --mount-proc --propagation private \
    bash -s "$bin" <<'INNER'
set -euo pipefail
bin=$1
dir=$(mktemp -d /tmp/semleak-bench-shm.XXXXXX)
mount -t tmpfs -o size=256m,nr_inodes=100000 semleak-bench "$dir"
trap 'kill $(jobs -p) 2>/dev/null; umount "$dir"; rmdir "$dir"' EXIT
make_sems() { # N
    python3 - "$dir" "$1" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
blob = (1).to_bytes(8, "little") + bytes(24)
for i in range(n):
    with open(os.path.join(d, f"sem.bench-{i:05d}"), "wb") as f:
        f.write(blob)
PY
}
TIMEFORMAT='%U user %S sys %R wall (s)'
make_sems 10000
echo "plan (dry run), 10,000 unheld semaphores, $(ls /proc | grep -c '^[0-9]') processes:"
time "$bin" clean --shm-dir "$dir" --min-age 0s --format json >/dev/null
rm -f "$dir"/sem.*
for _ in $(seq 87); do sleep 600 & done
make_sems 2000
echo "act (--yes), 2,000 unlinks, $(ls /proc | grep -c '^[0-9]') processes:"
time "$bin" clean --shm-dir "$dir" --min-age 0s --yes --format json >/tmp/semleak-bench-clean.json
python3 -c "import json; p=json.load(open('/tmp/semleak-bench-clean.json')); print('summary', p['summary'])"
INNER
