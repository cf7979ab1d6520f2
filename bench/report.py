#!/usr/bin/env python3
"""One report of the machine's limits and the tools' rates, measured in the same run.

    bench/report.py [BUILD_DIR]     (default: build; needs CR_BENCH=ON, the default)

Runs bench/e2e_bench (1 GiB: limits, crdump, crrestore) and bench/scale_bench (1 to 1000
processes and threads), then prints a Markdown report: each rate as GB/s, against the limit it
is bound by (ratio), and against CRIU's figures measured on this kind of machine (issue 17:
1 GiB dump 0.52-0.64 s, restore 0.66-0.71 s; 100 forked processes dump 0.74-0.77 s, restore
0.45-0.57 s). The machine is shared and noisy: medians of 5 repetitions (3 for the dump to a file),
each on a fresh target; ratios within one run.
"""
import json
import os
import subprocess
import sys

CRIU = {  # seconds, issue 17 (CRIU 4.2 on this machine, images on tmpfs): midpoints
    "dump_1g": 0.58, "restore_1g": 0.685, "dump_tree100": 0.755, "restore_tree100": 0.51,
}


def run(binary, filt):
    """Each benchmark's median over its repetitions (they report aggregates only), in ms."""
    out = subprocess.run([binary, "--benchmark_format=json", f"--benchmark_filter={filt}"],
                         check=True, capture_output=True, text=True).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        # "BM_Dump/1024/iterations:1/repeats:5/manual_time_median" -> "BM_Dump/1024"
        key = "/".join(part for part in b.get("run_name", b["name"]).split("/")
                       if not part.startswith(("iterations:", "repeats:"))
                       and part not in ("manual_time", "real_time"))
        if b.get("error_occurred"):
            res[key] = None
            continue
        ms = b["real_time"] * {"ms": 1, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
        res[key] = (ms, b)
    return res


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    e2e = run(os.path.join(build, "bench", "e2e_bench"), ".")
    scale = run(os.path.join(build, "bench", "scale_bench"), ".")
    gib = 1 << 30

    def gbs(name):
        r = e2e.get(name)
        return None if r is None else gib / (r[0] / 1e3) / 1e9

    def ms(res, name):
        r = res.get(name)
        return None if r is None else r[0]

    def fmt(v, unit=""):
        return "n/a" if v is None else f"{v:.2f}{unit}"

    limits = [("memcpy between touched buffers", "BM_Memcpy/1024"),
              ("process_vm_readv", "BM_ProcessVmReadv/1024"),
              ("write() to a tmpfs file", "BM_WriteTmpfs/1024"),
              ("read() into fresh memory", "BM_ReadFresh/1024"),
              ("read() into fresh memory, MADV_HUGEPAGE", "BM_ReadFreshHuge/1024"),
              ("UFFDIO_COPY of 2 MiB chunks", "BM_UffdCopy/1024")]
    print("## The machine's limits for moving 1 GiB (GB/s)\n")
    print("| | GB/s |\n|---|---|")
    for label, name in limits:
        print(f"| {label} | {fmt(gbs(name))} |")

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    place_limit = max(x for x in (gbs("BM_UffdCopy/1024"), gbs("BM_ReadFreshHuge/1024"), 0) if x)
    rows = [
        ("crdump 1 GiB to /dev/null", "BM_Dump/1024", gbs("BM_ProcessVmReadv/1024"),
         "process_vm_readv", CRIU["dump_1g"]),
        ("crdump 1 GiB to a tmpfs file", "BM_DumpToFile/1024", gbs("BM_WriteTmpfs/1024"),
         "write() to tmpfs", CRIU["dump_1g"]),
        ("crdump -z 1 GiB of mixed memory to /dev/null (goal 1 GB/s)", "BM_DumpZstd/1024", 1.0,
         "1 GB/s", None),
        ("crrestore 1 GiB from a tmpfs file", "BM_Restore/1024", place_limit,
         "faster of UFFDIO_COPY and huge-page read()", CRIU["restore_1g"]),
        ("crrestore 1 GiB, without UFFDIO_COPY", "BM_RestoreWriteMem/1024", place_limit,
         "faster of UFFDIO_COPY and huge-page read()", CRIU["restore_1g"]),
    ]
    print("\n## The tools on 1 GiB\n")
    print("| | seconds | GB/s | against its limit | limit | against CRIU's time |")
    print("|---|---|---|---|---|---|")
    for label, name, limit, limit_name, criu in rows:
        t = ms(e2e, name)
        rate = gbs(name)
        print(f"| {label} | {fmt(None if t is None else t / 1e3, ' s')} | {fmt(rate)} | "
              f"{fmt(ratio(rate, limit), 'x')} | {limit_name} | "
              f"{fmt(ratio(None if t is None else t / 1e3, criu), 'x')} |")
    print("\n## Scaling (seconds; per process or thread in ms)\n")
    print("| N | dump tree | restore tree | dump threads | restore threads |")
    print("|---|---|---|---|---|")
    for n in (1, 10, 100, 1000):
        cells = []
        for b in ("BM_DumpTree", "BM_RestoreTree", "BM_DumpThreads", "BM_RestoreThreads"):
            t = ms(scale, f"{b}/{n}")
            cells.append("n/a" if t is None else f"{t / 1e3:.3f} ({t / n:.2f})")
        print(f"| {n} | " + " | ".join(cells) + " |")
    print("\n## A mount namespace of its own (seconds; per mount in ms)\n")
    print("One process, N bind mounts of a host directory, every mount private; against the same "
          "process without a namespace of its own (BM_DumpTree/1, BM_RestoreTree/1).\n")
    print("| N | dump | restore |")
    print("|---|---|---|")
    for n in (10, 100, 1000):
        cells = []
        for b, plain in (("BM_DumpMounts", "BM_DumpTree/1"), ("BM_RestoreMounts", "BM_RestoreTree/1")):
            t, p = ms(scale, f"{b}/{n}"), ms(scale, plain)
            cells.append("n/a" if t is None else
                         f"{t / 1e3:.3f} ({t / n:.3f}; {t / p:.1f}x the plain process)" if p else
                         f"{t / 1e3:.3f} ({t / n:.3f})")
        print(f"| {n} | " + " | ".join(cells) + " |")
    for b, key in (("BM_DumpTree", "dump_tree100"), ("BM_RestoreTree", "restore_tree100")):
        t = ms(scale, f"{b}/100")
        if t is not None:
            print(f"\n{b}/100 against CRIU's 100 forked processes ({CRIU[key]} s): "
                  f"{t / 1e3 / CRIU[key]:.2f}x (a tree of processes in pause(); CRIU's figure "
                  "is of python3 processes)")


if __name__ == "__main__":
    main()
