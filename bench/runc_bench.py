#!/usr/bin/env python3
"""Times `runc checkpoint` and `runc restore -d` of a busybox container (runc spec's defaults,
a host directory as a volume it counts into), as runc reports them from start to finish: the
wall time of each runc command. With crcriu as runc's criu and, if installed, with CRIU itself,
alternating round by round so that both see the same machine. Prints medians and the ratio.

    bench/runc_bench.py BUILD_DIR [ROUNDS]      # as root; needs runc and busybox-static
"""
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def sh(argv):
    # No pipe: a container started by `runc run -d` would hold it open (its stdio is runc's).
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120)


def main():
    # The containers' inits come to us when runc exits (PR_SET_CHILD_SUBREAPER), and a
    # thread reaps each the moment the checkpoint kills it, as a machine's init does: runc's
    # checkpoint removes the container's cgroups, which a zombie would keep (runc retries for
    # up to a quarter of a second), and the restore needs the pid free.
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    engines = {"crcriu": os.path.join(build, "bin", "crcriu")}
    criu = shutil.which("criu")
    if criu and subprocess.run([criu, "check"], capture_output=True).returncode == 0:
        engines["criu"] = criu
    elif criu:
        print("(criu is installed but `criu check` fails on this kernel: not timed)")
    top = tempfile.mkdtemp(prefix="runc-bench-")
    bundle, out, state = (os.path.join(top, d) for d in ("bundle", "out", "state"))
    rootfs = os.path.join(bundle, "rootfs")
    for d in ("bin", "proc", "sys", "dev", "tmp", "out"):
        os.makedirs(os.path.join(rootfs, d))
    os.makedirs(out)
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin"))
    for a in ("sh", "sleep"):
        os.symlink("busybox", os.path.join(rootfs, "bin", a))
    sh(["runc", "spec", "--bundle", bundle])
    cfg_path = os.path.join(bundle, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c",
                              "i=0; while :; do i=$((i+1)); echo $i >> /out/log; sleep 0.01; done"]
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": out,
                          "options": ["rbind", "rw"]})
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    times = {e: {"checkpoint": [], "restore": []} for e in engines}
    try:
        for engine, path in engines.items():
            cid = "bench-" + engine
            base = ["runc", "--root", state, "--criu", path]
            sh(base + ["run", "--detach", "--bundle", bundle, cid])
            engines[engine] = (path, cid, base)
        for r in range(rounds + 1):  # the first round warms up, not counted
            for engine, (path, cid, base) in engines.items():
                images = os.path.join(top, "img-%s-%d" % (engine, r))
                st = json.loads(subprocess.run(base + ["state", cid], check=True,
                                               capture_output=True).stdout)
                reaper = threading.Thread(target=os.waitpid, args=(st["pid"], 0))
                reaper.start()
                t0 = time.monotonic()
                try:
                    sh(base + ["checkpoint", "--image-path", images, "--work-path",
                               images + "-w", cid])
                except subprocess.CalledProcessError:
                    with open(os.path.join(images + "-w", "dump.log")) as f:
                        sys.exit("runc checkpoint failed:\n" + f.read()[-2000:])
                t1 = time.monotonic()
                reaper.join()
                t2 = time.monotonic()
                sh(base + ["restore", "--detach", "--image-path", images, "--work-path",
                           images + "-w", "--bundle", bundle, cid])
                t3 = time.monotonic()
                if os.environ.get("RUNC_BENCH_VERBOSE"):
                    print("  round %d %s: checkpoint %.1f ms, reap %.1f ms, restore %.1f ms" %
                          (r, engine, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3))
                if r:
                    times[engine]["checkpoint"].append(t1 - t0)
                    times[engine]["restore"].append(t3 - t2)
    finally:
        for engine, v in engines.items():
            if isinstance(v, tuple):
                subprocess.run(v[2] + ["delete", "--force", v[1]], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)
    print("runc checkpoint / restore -d of a busybox container, median of %d (ms)" % rounds)
    med = {}
    for engine in times:
        c = statistics.median(times[engine]["checkpoint"]) * 1e3
        s = statistics.median(times[engine]["restore"]) * 1e3
        med[engine] = (c, s)
        print("  %-7s checkpoint %7.1f   restore %7.1f" % (engine, c, s))
    if "criu" in med:
        print("  crcriu / criu: checkpoint %.2f, restore %.2f" % (
            med["crcriu"][0] / med["criu"][0], med["crcriu"][1] / med["criu"][1]))


if __name__ == "__main__":
    main()
