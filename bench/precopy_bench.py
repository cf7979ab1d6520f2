#!/usr/bin/env python3
"""Downtime of a checkpoint and restore on this machine as the program sees it: the longest gap
between two reads of the clock by a thread that reads it every millisecond
(bench/precopy_target.c), for a process of SIZE MiB whose other thread rewrites RATE MB/s of
it. Plain `crdump` + `crrestore` against `crdump --pre-copy` + `crrestore`, alternating run by
run, images on tmpfs. Also the pre-copy rounds (from crdump -v) and the bytes the dump wrote
against the process's size. Prints medians.

    bench/precopy_bench.py BUILD_DIR [SIZE_MIB [RATE_MBS [RUNS]]]   # as root
"""
import ctypes
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def main():
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # child subreaper: restored ones come back
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 50
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    top = tempfile.mkdtemp(prefix="precopy-bench-", dir="/dev/shm")
    target = os.path.join(top, "precopy_target")
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(["cc", "-O2", "-pthread", "-o", target, os.path.join(here, "precopy_target.c")],
                   check=True)
    crdump, crrestore = (os.path.join(build, "bin", t) for t in ("crdump", "crrestore"))
    # file: crdump -o IMG, then crrestore -i IMG. pipe: crdump --live-update | crrestore, the
    # pre-copy rounds read by crrestore while the program still runs.
    # "lazy": crrestore --lazy, the program runs before its memory is in.
    modes = {"plain, file": ([], False), "pre-copy, file": (["--pre-copy"], False),
             "plain, file, lazy": ([], False),
             "plain, pipe": (["--live-update"], True),
             "pre-copy, pipe": (["--pre-copy", "--live-update"], True),
             "pre-copy, pipe, lazy": (["--pre-copy", "--live-update"], True),
             # A snapshot: the program runs on, no restore.
             "plain, --leave-running --no-pre-copy": (["--leave-running", "--no-pre-copy"], False),
             # A big tree is pre-copied by --leave-running itself.
             "--leave-running (pre-copied by default)": (["--leave-running"], False)}
    res = {m: {"gap": [], "dump": [], "restore": [], "bytes": [], "rounds": [], "frozen": []}
           for m in modes}
    for run in range(runs):
        for mode, (extra, pipe) in modes.items():
            lazy = ["--lazy"] if mode.endswith("lazy") else []
            out = os.path.join(top, "gap")
            img = os.path.join(top, "img")
            p = subprocess.Popen([target, str(size), str(rate), out], stdout=subprocess.PIPE,
                                 start_new_session=True)
            assert p.stdout.readline().strip() == b"ready"
            # Reaped the moment crdump kills it, as a machine's init would: a live update waits
            # for its pid to be free.
            reaper = threading.Thread(target=os.waitpid, args=(p.pid, 0))
            reaper.start()
            time.sleep(0.5)  # let it write for a while: the bench's own pacing, not a sync
            t0 = time.monotonic()
            if pipe:
                d = subprocess.Popen([crdump, "-v"] + extra + [str(p.pid)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=False)
                r = subprocess.run([crrestore, "-d"] + lazy, stdin=d.stdout, capture_output=True, text=True)
                d.stdout.close()
                derr = d.stderr.read().decode()
                d.wait()
                t1 = t2 = time.monotonic()
                if d.returncode != 0:
                    sys.exit("crdump: " + derr)
            else:
                dr = subprocess.run([crdump, "-v", "-o", img] + extra + [str(p.pid)],
                                    capture_output=True, text=True)
                derr = dr.stderr
                t1 = time.monotonic()
                if dr.returncode != 0:
                    sys.exit("crdump: " + derr)
                if "--leave-running" in extra:
                    r = subprocess.CompletedProcess([], 0)
                    t2 = t1
                else:
                    reaper.join()
                    r = subprocess.run([crrestore, "-d", "-i", img] + lazy, capture_output=True, text=True)
                    t2 = time.monotonic()
            if r.returncode != 0:
                sys.exit("crrestore: " + r.stderr)
            time.sleep(0.3)
            os.kill(p.pid, 15)
            if "--leave-running" in extra:
                reaper.join()  # the original, which ran on
                status = 0
            else:
                reaper.join()
                _, status = os.waitpid(p.pid, 0)
            gap, bad, _ = open(out).read().split()
            if status != 0 or bad != "0":
                sys.exit(f"{mode}: the restored program failed its check ({bad} pages)")
            rounds = re.findall(r"pre-copy round (\d+)", derr)
            # The freeze: crdump's passes after the pre-copy rounds (crdump -v), the kill too.
            passes = re.findall(r"crdump: (\S+)\s+([\d.]+) ms", derr)
            frozen = sum(float(ms) for name, ms in passes)
            m = re.search(r"([\d.]+) MiB in", derr)
            res[mode]["gap"].append(int(gap) / 1000)
            res[mode]["dump"].append((t1 - t0) * 1000)
            res[mode]["restore"].append((t2 - t1) * 1000)
            res[mode]["bytes"].append(float(m.group(1)) if m else 0)
            res[mode]["rounds"].append(len(rounds))
            res[mode]["frozen"].append(frozen)
            if os.path.exists(img):
                os.unlink(img)
    shutil.rmtree(top)
    print(f"process: {size} MiB touched, rewriting {rate:g} MB/s; {runs} runs each, medians")
    print("| | downtime seen by the program (ms) | crdump wall (ms) | tree frozen in crdump, kill "
          "included (ms) | crrestore wall after crdump (ms) | rounds | stream MiB (of the "
          "process's size) |")
    print("|---|---|---|---|---|---|---|")
    for mode in modes:
        r = res[mode]
        med = lambda k: statistics.median(r[k])
        print(f"| {mode} | {med('gap'):.0f} | {med('dump'):.0f} | {med('frozen'):.0f} | "
              f"{med('restore'):.0f} | {med('rounds'):.0f} | {med('bytes'):.0f} "
              f"({med('bytes') / size:.2f}x) |")


if __name__ == "__main__":
    main()
