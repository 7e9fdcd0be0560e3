#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Reads the runs of `make bench` (scripts/bench.sh) and prints, for every
scenario and figure, min, median and max on luo-rs and on the upstream C
LUO, and the ratio luo-rs / C of each interleaved pair of runs (run N of
one kernel against run N of the other: lowest, median, highest). Then the
targets of the performance work: a target is met only if every pair
meets it. Writes every value to bench.json in the same directory.

A run is FLAVOR-SCENARIO-N.log (the serial console; "bench: NAME VALUE"
lines from luo_bench) and FLAVOR-SCENARIO-N.stamps (host times of the
"bench-mark:" lines and kernel messages, from scripts/serial-stamp.py).
luo_bench's figures are in the guest's milliseconds; each run's marks
give the rate of the guest's clock against the host's, and every time
below is in host milliseconds. Exits 1 if a run did not finish, lacks a
mark or a kernel reported a problem.

Usage: bench-report.py LOGDIR"""

import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ktap import BAD  # noqa: E402  (the VM judge's list of kernel problems)

LINE = re.compile(r"^bench: (\w+) (-?[0-9.]+)$")
RUN = re.compile(r"^(bench-rs|bench-c)-([\w-]+)-(\d+)\.log$")
MARK = re.compile(r"^([0-9.]+) bench-mark: (\w+) ([0-9.]+)$")
SIDES = {"bench-rs": "rs", "bench-c": "c"}

# (figure, what it is); figures a scenario lacks are left out.
FIGURES = [
    ("prekexec", "before the jump: PRESERVE_FDs + PREPARE + FREEZE + reboot()"),
    ("preserve", "PRESERVE_FD of the memfd"),
    ("preserve_migrated", "  pages it migrated to pin them (count)"),
    ("layout_runs", "  physically contiguous runs per 1000 pages"),
    ("layout_runs_down", "  steps to the frame below, per 1000 pages"),
    ("preserve_2000", "PRESERVE_FD of 2000 memfds in one session"),
    ("preserve_10000", "PRESERVE_FD of 1000 sessions x 10 memfds"),
    ("preserve_first_1000", "  of which the first 1000 files"),
    ("preserve_last_1000", "  of which the last 1000 files"),
    ("prepare", "PREPARE (luo-rs; the workload still runs)"),
    ("prepare_again", "  PREPARE again, after FREEZE and CANCEL (luo-rs)"),
    ("freeze_unchanged", "FREEZE, nothing changed since PREPARE (luo-rs)"),
    ("freeze", "FREEZE, the blackout (big: after 1% new pages; luo-rs)"),
    ("freeze_migrated", "  pages it migrated to pin them (count)"),
    ("reboot", "inside reboot(): kexec mark to 'Starting new kernel'"),
    ("jump", "the jump: 'Starting new kernel' to the new banner"),
    ("open", "new kernel: open() of /dev/liveupdate (C reads all here)"),
    ("retrieve", "RETRIEVE_SESSION + RETRIEVE_FD"),
    ("first_read", "first full read, pread()"),
    ("retrieve_read", "RETRIEVE + first full read"),
    ("retrieve_2000", "RETRIEVE of 2000 memfds in one session"),
    ("retrieve_10000", "RETRIEVE of 1000 sessions x 10 memfds"),
    ("retrieve_one_by_one", "RETRIEVE of 2 sessions, one after the other"),
    ("retrieve_at_once", "RETRIEVE of 2 sessions at once, 2 processes"),
    ("finish", "SESSION_FINISH of everything"),
    ("boot_to_retrieve_start", "new kernel: boot to the first RETRIEVE"),
    ("e2e", "end to end: FREEZE mark to data verified"),
    ("e2e_net", "  beyond an empty update's (scenario empty)"),
    ("meta_bytes", "memory taken beyond the data, bytes per page or file"),
    ("handover_bytes", "handover bytes per page or file (luo-rs, counted)"),
    ("clock", "guest clock / host clock"),
]
UNSCALED = {"meta_bytes", "handover_bytes", "clock", "preserve_migrated",
            "freeze_migrated", "layout_runs", "layout_runs_down"}
# Counts that describe a run rather than measure a kernel: no ratio.
NO_RATIO = {"preserve_migrated", "freeze_migrated", "layout_runs", "layout_runs_down"}


class Missing(Exception):
    pass


def read_run(log_path):
    """A run's figures in host ms, or None (the reason printed) if it failed."""
    figures, done, bad = {}, False, None
    with open(log_path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if bad is None and BAD.search(line):
                bad = line
            if line == "bench: done":
                done = True
            m = LINE.match(line)
            if m:
                figures[m.group(1)] = float(m.group(2))
    if bad or not done:
        print(f"bench: {log_path}: {'kernel problem: ' + bad if bad else 'did not finish'}")
        return None
    try:
        return with_host_times(figures, log_path[: -len(".log")] + ".stamps")
    except (Missing, OSError, ValueError) as e:
        print(f"bench: {log_path}: no usable stamps: {e}")
        return None


def with_host_times(figures, stamps_path):
    marks, starting, banners = {}, [], []
    with open(stamps_path) as f:
        for line in f:
            m = MARK.match(line.strip())
            if m:
                marks.setdefault(m.group(2), (float(m.group(1)), float(m.group(3))))
            elif line.rstrip().endswith("Starting new kernel"):
                starting.append(float(line.split()[0]))
            elif line.rstrip().endswith("Linux version"):
                banners.append(float(line.split()[0]))
    for name in ("start", "freeze", "kexec", "verified"):
        if name not in marks:
            raise Missing(f"no '{name}' mark")
    (h0, g0), (h1, g1) = marks["start"], marks["kexec"]
    if g1 <= g0 or not starting:
        raise Missing("no time between the marks, or no 'Starting new kernel'")
    # Host ms per guest ms, over all of stage 1.
    scale = (h1 - h0) / (g1 - g0)
    out = {k: v if k in UNSCALED else v * scale for k, v in figures.items()}
    out["clock"] = 1 / scale
    start = next(t for t in starting if t >= h1)
    out["reboot"] = start - h1
    after = [t for t in banners if t > start]
    if not after:
        raise Missing("no banner after the jump")
    out["jump"] = after[0] - start
    out["e2e"] = marks["verified"][0] - marks["freeze"][0]
    before = ("preserve", "preserve_2000", "preserve_10000", "prepare", "freeze", "reboot")
    out["prekexec"] = sum(out.get(k, 0.0) for k in before)
    if "retrieve" in out:
        out["retrieve_read"] = out["retrieve"] + out["first_read"]
    return out


def main():
    logdir = sys.argv[1]
    # runs[scenario][figure][side] = {run number: value}
    runs, ok = {}, True
    for name in sorted(os.listdir(logdir)):
        m = RUN.match(name)
        if not m:
            continue
        fig = read_run(os.path.join(logdir, name))
        if fig is None:
            ok = False
            continue
        side, scenario, n = SIDES[m.group(1)], m.group(2), int(m.group(3))
        for key, value in fig.items():
            runs.setdefault(scenario, {}).setdefault(key, {}).setdefault(side, {})[n] = value
    if not runs:
        print("bench: no finished runs")
        return 1

    # An empty update's end to end time, per kernel: what every e2e contains.
    base = {side: statistics.median(v.values())
            for side, v in runs.get("empty", {}).get("e2e", {}).items()}
    for scenario, figs in runs.items():
        if scenario == "empty" or "e2e" not in figs:
            continue
        figs["e2e_net"] = {side: {n: v - base[side] for n, v in vals.items()}
                           for side, vals in figs["e2e"].items() if side in base}

    table = {}
    print(f"{'':64} {'luo-rs':>23} {'C LUO':>23} {'rs / C, pairs':>20}")
    print(f"{'':64}" + f" {'min':>7} {'median':>7} {'max':>7}" * 2
          + f" {'low':>6} {'median':>6} {'high':>6}")
    for scenario in sorted(runs):
        counts = {s: len(runs[scenario]["e2e"].get(s, {})) for s in ("rs", "c")}
        print(f"[{scenario}] (ms, bytes for memory; {counts['rs']} + {counts['c']} runs)")
        table[scenario] = {}
        for key, label in FIGURES:
            sides = runs[scenario].get(key)
            if not sides:
                continue
            row, cells = {}, []
            for side in ("rs", "c"):
                vals = sides.get(side)
                if vals:
                    v = list(vals.values())
                    row[side] = {"runs": vals, "min": min(v), "median": statistics.median(v),
                                 "max": max(v)}
                    cells.append(f"{min(v):7.1f} {statistics.median(v):7.1f} {max(v):7.1f}")
                else:
                    cells.append(f"{'-':>7} {'-':>7} {'-':>7}")
            pairs = [sides["rs"][n] / sides["c"][n] for n in sorted(sides.get("rs", {}))
                     if n in sides.get("c", {}) and sides["c"][n] > 0 and key not in NO_RATIO]
            tail = ""
            if pairs:
                row["pair_ratios"] = pairs
                tail = f" {min(pairs):6.2f} {statistics.median(pairs):6.2f} {max(pairs):6.2f}"
            table[scenario][key] = row
            print(f"  {label:62} {cells[0]} {cells[1]}{tail}")

    def pair_ratios(scenario, key):
        return table.get(scenario, {}).get(key, {}).get("pair_ratios")

    def rs_quotients(sa, ka, sb, kb):
        """Per run N, figure a of scenario sa over figure b of sb, luo-rs."""
        a = table.get(sa, {}).get(ka, {}).get("rs", {}).get("runs", {})
        b = table.get(sb, {}).get(kb, {}).get("rs", {}).get("runs", {})
        return [a[n] / b[n] for n in sorted(a) if n in b and b[n] > 0] or None

    def rs_values(scenario, key):
        vals = table.get(scenario, {}).get(key, {}).get("rs", {}).get("runs")
        return list(vals.values()) if vals else None

    # (target, values, limit): met if every value is <= limit.
    targets = [
        ("RETRIEVE_FD + first read, 1 GiB: rs / C", pair_ratios("big-1g", "retrieve_read"), 0.5),
        ("RETRIEVE of 2000 small memfds: rs / C", pair_ratios("files", "retrieve_2000"), 0.5),
        ("PRESERVE_FD of 1000 x 10 memfds: rs / C", pair_ratios("files", "preserve_10000"), 1.0),
        ("PRESERVE_FD per file, last 1000 / first 1000 (rs)",
         rs_quotients("files", "preserve_last_1000", "files", "preserve_first_1000"), 1.25),
        ("before the jump, 64 MiB: rs / C", pair_ratios("big-64m", "prekexec"), 1.0),
        ("before the jump, 1 GiB: rs / C", pair_ratios("big-1g", "prekexec"), 1.0),
        ("before the jump, 1 GiB, no PREPARE: rs / C",
         pair_ratios("big-1g-noprep", "prekexec"), 1.0),
        ("before the jump, files: rs / C", pair_ratios("files", "prekexec"), 1.0),
        ("FREEZE with 1% new pages, 1 GiB / 64 MiB (rs)",
         rs_quotients("big-1g", "freeze", "big-64m", "freeze"), 1.5),
        ("FREEZE unchanged, 1 GiB / 64 MiB (rs)",
         rs_quotients("big-1g", "freeze_unchanged", "big-64m", "freeze_unchanged"), 1.5),
        ("handover bytes per 4 KiB page of a 1 GiB memfd (rs)",
         rs_values("big-1g", "handover_bytes"), 8),
        ("handover bytes per small file (rs)", rs_values("files", "handover_bytes"), 128),
        ("2 sessions RETRIEVEd at once / one after the other (rs)",
         rs_quotients("parallel", "retrieve_at_once", "parallel", "retrieve_one_by_one"), 0.75),
        ("end to end, 64 MiB: rs / C", pair_ratios("big-64m", "e2e"), 1.0),
        ("end to end, 1 GiB: rs / C", pair_ratios("big-1g", "e2e"), 1.0),
        ("end to end, 1 GiB, no PREPARE: rs / C", pair_ratios("big-1g-noprep", "e2e"), 1.0),
        ("end to end, files: rs / C", pair_ratios("files", "e2e"), 1.0),
    ]
    print("\nTargets (issue 9), every pair or run must meet them:")
    out_targets = []
    for name, values, limit in targets:
        met = bool(values) and max(values) <= limit
        shown = f"{min(values):7.2f} .. {max(values):7.2f}" if values else f"{'n/a':>18}"
        print(f"  {'met ' if met else 'NOT '} {name:52} {shown}  (target <= {limit})")
        out_targets.append({"target": name, "values": values, "limit": limit, "met": met})

    path = os.path.join(logdir, "bench.json")
    with open(path, "w") as f:
        # A run of some scenarios only (LUO_BENCH_ONLY) says so.
        json.dump({"only": os.environ.get("LUO_BENCH_ONLY") or None,
                   "scenarios": table, "targets": out_targets}, f, indent=1)
    print(f"\nbench: every value in {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
