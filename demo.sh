#!/usr/bin/env bash
# The main job, end to end: start a live counter (an unmodified python3), checkpoint it through
# zstd, inspect the image with crit, kill it, restore it from the image and watch it carry on
# counting from where it was. Installs missing packages and builds first.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
cr_deps
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target crdump crrestore crit >/dev/null
bin=$PWD/build/bin

dir=$(mktemp -d /tmp/crtools-demo.XXXXXX)
log=$dir/counter.log
: >"$log"  # made now: the background redirect below may not have run when it is first read
# The counter closes whatever fds it inherited beyond stdio (a pipe from a CI runner, say):
# crdump refuses fds that point outside the process.
/usr/bin/python3 -c '
import os, time
os.closerange(3, 65536)
i = 0
while True:
    i += 1
    print("tick", i, flush=True)
    time.sleep(0.2)
' </dev/null >"$log" 2>&1 &
pid=$!
cleanup() { kill -9 "$pid" 2>/dev/null || true; }
trap cleanup EXIT
# (a demo, not a test: polling with a short sleep is fine here)
for _ in $(seq 100); do [ "$(wc -l <"$log")" -ge 5 ] && break; sleep 0.1; done
echo "== counter running as pid $pid; its log so far:"
tail -n 2 "$log"

echo "== crdump $pid | zstd > $dir/counter.img.zst"
"$bin/crdump" "$pid" | zstd -q >"$dir/counter.img.zst"
wait "$pid" 2>/dev/null || true   # crdump killed it after the dump; reap it so its PID is free
ls -l "$dir/counter.img.zst"
echo "== the process is gone; last line of its log: $(tail -n 1 "$log")"

echo "== crit show (first and last records)"
"$bin/crit" show "$dir/counter.img.zst" | sed -n '1,12p;$p'
echo "== crit x mems"
"$bin/crit" x mems "$dir/counter.img.zst" | head -n 15

echo "== crrestore -d < $dir/counter.img.zst"
pid=$("$bin/crrestore" -d <"$dir/counter.img.zst")  # it prints the restored root's pid
echo "restored pid $pid: $(cat /proc/$pid/cmdline | tr '\0' ' ')"
before=$(wc -l <"$log")
for _ in $(seq 100); do [ "$(wc -l <"$log")" -ge $((before + 5)) ] && break; sleep 0.1; done
echo "== the counter carries on from where it was:"
tail -n 6 "$log"
kill "$pid"
echo "== done (image and log in $dir)"
