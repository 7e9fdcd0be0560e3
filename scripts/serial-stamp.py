#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Copies a VM's serial console from stdin to LOG unchanged, and writes to
STAMPS the host's monotonic time (ms) at which each line that matters to
`make bench` arrived: luo_bench's "bench-mark: NAME GUEST-MS" lines, the
old kernel's last words ("Starting new kernel", printed once reboot() has
done its work) and the kernels' "Linux version" banners. The host's clock
sees what neither kernel can measure by itself, such as the time inside
reboot() and across the jump.

Usage: serial-stamp.py LOG STAMPS"""

import re
import sys
import time

WANTED = re.compile(rb"bench-mark: \w+ [0-9.]+|Starting new kernel|Linux version")


def main():
    log_path, stamps_path = sys.argv[1], sys.argv[2]
    src = sys.stdin.buffer.raw
    pending = b""
    with open(log_path, "wb") as log, open(stamps_path, "w") as stamps:
        while True:
            chunk = src.read(65536)
            if not chunk:
                break
            t = time.monotonic() * 1000
            log.write(chunk)
            log.flush()
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                m = WANTED.search(line)
                if m:
                    stamps.write(f"{t:.1f} {m.group(0).decode()}\n")
                    stamps.flush()
        log.write(pending)


if __name__ == "__main__":
    main()
