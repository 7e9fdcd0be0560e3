#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Reads the serial logs of luo_bench on luo-rs and on the upstream C LUO
(`bench: <name> <ms>` lines) and prints both sides with their ratio.

Usage: bench-report.py RS_LOG C_LOG. Exits 1 if a run did not finish."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ktap import BAD  # noqa: E402  (the VM judge's list of kernel problems)

LINE = re.compile(r"^bench: (\w+) ([0-9.]+)$")


def figures(path):
    """The figures of a run, and whether it finished without a kernel
    problem (a run with a WARNING or a lockdep report does not count)."""
    out, done, bad = {}, False, None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if BAD.search(line) and bad is None:
                bad = line
            if line == "bench: done":
                done = True
            m = LINE.match(line)
            if m:
                out[m.group(1)] = float(m.group(2))
    if bad:
        print(f"bench: kernel reported a problem in {path}: {bad}")
    return out, done and bad is None


def main():
    rs, rs_done = figures(sys.argv[1])
    c, c_done = figures(sys.argv[2])
    if not (rs_done and c_done):
        for name, ok, path in (("luo-rs", rs_done, sys.argv[1]), ("upstream C", c_done, sys.argv[2])):
            if not ok:
                print(f"bench: the {name} run did not finish; see {path}")
        return 1
    # Work before the kexec: upstream does it in PRESERVE_FD, luo-rs in
    # PREPARE (and FREEZE, its blackout).
    rs["before_kexec"] = rs["preserve_fd_256m"] + rs["preserve_fd_2000"] + rs["prepare"] + rs["freeze"]
    c["before_kexec"] = c["preserve_fd_256m"] + c["preserve_fd_2000"]
    rows = [
        ("before_kexec", "work before the kexec (256 MiB + 2000 x 4 KiB memfds)"),
        ("preserve_fd_256m", "PRESERVE_FD of a 256 MiB memfd"),
        ("preserve_fd_2000", "PRESERVE_FD of 2000 memfds"),
        ("boot_to_retrieve_start", "new kernel: boot to the first RETRIEVE"),
        ("retrieve_fd_256m", "RETRIEVE_SESSION + RETRIEVE_FD, 256 MiB memfd"),
        ("first_read_256m", "first full read of it"),
        ("boot_to_256m_read", "new kernel: boot to 256 MiB retrieved and read"),
        ("retrieve_2000", "RETRIEVE of 2000 memfds"),
    ]
    print(f"{'':52} {'luo-rs ms':>10} {'C LUO ms':>10} {'rs / C':>8}")
    for key, label in rows:
        a, b = rs[key], c[key]
        ratio = f"{a / b:8.2f}" if b > 0 else "     n/a"
        print(f"{label:52} {a:10.1f} {b:10.1f} {ratio}")
    print(f"{'luo-rs PREPARE (pin + preserve, workload running)':52} {rs['prepare']:10.1f}")
    print(f"{'luo-rs FREEZE (the blackout)':52} {rs['freeze']:10.1f}"
          f" {'(C LUO: inside reboot(), not measurable)':>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
