#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Reads the runs of `make bench` (scripts/bench.sh) and prints, for every
scenario and figure, min and median on luo-rs and on the upstream C LUO and
the ratio of the medians, then the targets of the performance work and
whether each is met. Writes everything, every single value included, to
bench.json in the same directory.

A run is FLAVOR-SCENARIO-N.log (the serial console; "bench: NAME VALUE"
lines from luo_bench) and FLAVOR-SCENARIO-N.stamps (host times of the
"bench-mark:" lines and kernel banners, from scripts/serial-stamp.py).
Exits 1 if a run did not finish or a kernel reported a problem.

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
SIDES = {"bench-rs": "rs", "bench-c": "c"}

# (figure, what it is); figures missing from a scenario are left out.
FIGURES = [
    ("prekexec", "before the jump: PRESERVE_FD + PREPARE + FREEZE + reboot()"),
    ("preserve", "PRESERVE_FD of the memfd"),
    ("prepare", "PREPARE (luo-rs; the workload still runs)"),
    ("freeze", "FREEZE (luo-rs; the blackout; big: after 1% new pages)"),
    ("reboot", "reboot(): kexec marker to the new kernel's banner (host)"),
    ("retrieve", "RETRIEVE_SESSION + RETRIEVE_FD"),
    ("first_read", "first full read, pread()"),
    ("retrieve_read", "RETRIEVE + first full read"),
    ("preserve_2000", "PRESERVE_FD of 2000 memfds in one session"),
    ("preserve_10000", "PRESERVE_FD of 1000 sessions x 10 memfds"),
    ("preserve_first_1000", "  of which the first 1000 files"),
    ("preserve_last_1000", "  of which the last 1000 files"),
    ("retrieve_2000", "RETRIEVE of 2000 memfds in one session"),
    ("retrieve_10000", "RETRIEVE of 1000 sessions x 10 memfds"),
    ("finish", "SESSION_FINISH of everything"),
    ("boot_to_retrieve_start", "new kernel: boot to the first RETRIEVE"),
    ("e2e", "end to end: FREEZE marker to data verified (host)"),
    ("meta_bytes", "memory taken beyond the data, bytes per page or file"),
]


def read_run(log_path):
    """A run's figures, or None (with the reason printed) if it failed."""
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
    stamps = {}
    banners = []
    with open(log_path[: -len(".log")] + ".stamps") as f:
        for line in f:
            t, what = line.split(" ", 1)
            what = what.strip()
            if what == "Linux version":
                banners.append(float(t))
            else:
                stamps.setdefault(what.split(": ")[1], float(t))
    kexec = stamps["kexec"]
    after = [t for t in banners if t > kexec]
    figures["reboot"] = after[0] - kexec
    figures["e2e"] = stamps["verified"] - stamps["freeze"]
    before_jump = ("preserve", "preserve_2000", "preserve_10000", "prepare", "freeze", "reboot")
    figures["prekexec"] = sum(figures.get(k, 0.0) for k in before_jump)
    if "retrieve" in figures:
        figures["retrieve_read"] = figures["retrieve"] + figures["first_read"]
    return figures


def summary(values):
    return {"values": values, "min": min(values), "median": statistics.median(values)}


def main():
    logdir = sys.argv[1]
    runs, ok = {}, True
    for name in sorted(os.listdir(logdir)):
        m = RUN.match(name)
        if not m:
            continue
        fig = read_run(os.path.join(logdir, name))
        if fig is None:
            ok = False
            continue
        side, scenario = SIDES[m.group(1)], m.group(2)
        for key, value in fig.items():
            runs.setdefault(scenario, {}).setdefault(key, {}).setdefault(side, []).append(value)
    if not runs:
        print("bench: no finished runs")
        return 1

    table = {}
    print(f"{'':62} {'luo-rs':>17} {'C LUO':>17} {'rs / C':>7}")
    print(f"{'':62} {'min':>8} {'median':>8} {'min':>8} {'median':>8} {'median':>7}")
    for scenario in sorted(runs):
        print(f"[{scenario}] (ms unless bytes; {len(runs[scenario]['e2e'].get('rs', []))}"
              f" + {len(runs[scenario]['e2e'].get('c', []))} runs)")
        table[scenario] = {}
        for key, label in FIGURES:
            sides = runs[scenario].get(key)
            if not sides:
                continue
            row = {side: summary(v) for side, v in sides.items()}
            cells = []
            for side in ("rs", "c"):
                s = row.get(side)
                cells.append(f"{s['min']:8.1f} {s['median']:8.1f}" if s else f"{'-':>8} {'-':>8}")
            ratio = None
            if "rs" in row and "c" in row and row["c"]["median"] > 0:
                ratio = row["rs"]["median"] / row["c"]["median"]
                row["ratio"] = ratio
            table[scenario][key] = row
            print(f"  {label:60} {cells[0]} {cells[1]} {ratio:7.2f}" if ratio is not None
                  else f"  {label:60} {cells[0]} {cells[1]} {'':>7}")

    def med(scenario, key, side="rs"):
        return table.get(scenario, {}).get(key, {}).get(side, {}).get("median")

    def ratio(scenario, key):
        return table.get(scenario, {}).get(key, {}).get("ratio")

    def quotient(a, b):
        return a / b if a is not None and b else None

    # (target, value, limit): value <= limit meets it.
    targets = [
        ("RETRIEVE_FD + first read, 1 GiB: rs / C", ratio("big-1g", "retrieve_read"), 0.5),
        ("RETRIEVE of 2000 small memfds: rs / C", ratio("files", "retrieve_2000"), 0.5),
        ("PRESERVE_FD of 1000 x 10 memfds: rs / C", ratio("files", "preserve_10000"), 1.0),
        ("PRESERVE_FD per file, last 1000 / first 1000 (rs)",
         quotient(med("files", "preserve_last_1000"), med("files", "preserve_first_1000")), 1.25),
        ("work before the jump, 64 MiB: rs / C", ratio("big-64m", "prekexec"), 1.0),
        ("work before the jump, 1 GiB: rs / C", ratio("big-1g", "prekexec"), 1.0),
        ("work before the jump, files: rs / C", ratio("files", "prekexec"), 1.0),
        ("FREEZE with 1% new pages, 1 GiB / 64 MiB (rs)",
         quotient(med("big-1g", "freeze"), med("big-64m", "freeze")), 1.5),
        ("bytes per 4 KiB page of a 1 GiB memfd (rs)", med("big-1g", "meta_bytes"), 8),
        ("bytes per small file (rs)", med("files", "meta_bytes"), 128),
        ("end to end, 64 MiB: rs / C", ratio("big-64m", "e2e"), 1.0),
        ("end to end, 1 GiB: rs / C", ratio("big-1g", "e2e"), 1.0),
        ("end to end, files: rs / C", ratio("files", "e2e"), 1.0),
    ]
    print("\nTargets (issue 9):")
    out_targets = []
    for name, value, limit in targets:
        met = value is not None and value <= limit
        shown = f"{value:8.2f}" if value is not None else "     n/a"
        print(f"  {'met ' if met else 'NOT '} {name:52} {shown}  (target <= {limit})")
        out_targets.append({"target": name, "value": value, "limit": limit, "met": met})

    path = os.path.join(logdir, "bench.json")
    with open(path, "w") as f:
        json.dump({"scenarios": table, "targets": out_targets}, f, indent=1)
    print(f"\nbench: every value in {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
