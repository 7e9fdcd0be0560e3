#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the serial logs of luo-rs's test VMs into one KTAP report.

Usage: ktap.py RUN [RUN...] where RUN is LOG:TEST[,TEST...]:STAGES.
STAGES is 1 for tests that run in one boot and 2 for two-stage kexec tests
(the result is the one the second kernel reports).

The VM's init frames each program with LUO-RUN-BEGIN/LUO-RUN-END lines.
A test passes when its final stage exited 0 and its KTAP output has at least
one passing case and no failing one. Any kernel panic, oops, BUG, WARNING,
KASAN/UBSAN, lockdep or kmemleak report anywhere in a log fails every test
of that run; only an allocator's report of a failure a test injected is
not one. Exit status: 0 when everything passed.
"""
import re
import sys

BAD = re.compile(
    r"Kernel panic|\bOops\b|\bBUG:|WARNING:|KASAN|UBSAN:|Call Trace:|"
    r"general protection fault|possible recursive locking|"
    r"circular locking dependency|inconsistent lock state|"
    r"unreferenced object 0x|kmemleak: .*new suspected memory leaks"
)
KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\]")
# A test that injects allocation failures (selftests/fault_util.h) makes
# fault injection print this line for each one it injects...
INJECTED = re.compile(r"FAULT_INJECTION: forcing a failure")
# ...and the allocator may then report the failure it was told to have,
# with a stack trace (warn_alloc()). In a log with an injected failure
# such a report, up to the end of its trace, is not a kernel bug.
ALLOC_REPORT = re.compile(r": (vmalloc error: size \d+|page allocation failure: order:\d+)")
TRACE_END = re.compile(r"^(\[\s*\d+\.\d+\])?\s*</TASK>")
# A report is a few dozen lines; never excuse more than this.
REPORT_MAX = 80
RESULT = re.compile(r"^(not )?ok \d+ (.*?)(?:\s+#\s*(SKIP|XFAIL|TODO)\b.*)?$")
BEGIN = re.compile(r"^LUO-RUN-BEGIN (\S+) stage=(\d+)")
END = re.compile(r"^LUO-RUN-END (\S+) stage=(\d+) exit=(\d+)")


def reports(lines):
    """The lines of `lines` that report a kernel bug."""
    bad, injected, excused = [], False, 0
    for line in lines:
        if excused:
            excused = 0 if TRACE_END.search(line) else excused - 1
            continue
        if INJECTED.search(line):
            injected = True
        elif injected and ALLOC_REPORT.search(line):
            excused = REPORT_MAX
        elif BAD.search(line):
            bad.append(line)
    return bad


def blocks(lines):
    """{(test, stage): (output lines, exit code or None)}"""
    out, cur = {}, None
    for line in lines:
        m = BEGIN.match(line)
        if m:
            cur = (m.group(1), int(m.group(2)))
            out[cur] = ([], None)
            continue
        m = END.match(line)
        if m and cur == (m.group(1), int(m.group(2))):
            out[cur] = (out[cur][0], int(m.group(3)))
            cur = None
            continue
        if cur and not KERNEL_LINE.match(line):
            out[cur][0].append(line)
    return out


def judge(name, stages, found):
    """Returns (ok, why, output lines, (passed, failed, skipped))."""
    counts = [0, 0, 0]
    if stages == 2:
        first = found.get((name, 1))
        if first is None:
            return False, "stage 1 never ran", [], counts
        if first[1] is not None:
            return False, f"stage 1 exited {first[1]} without kexec", first[0], counts
    last = found.get((name, stages))
    if last is None:
        return False, f"stage {stages} never ran (kexec or boot failed)", [], counts
    output, code = last
    for line in output:
        m = RESULT.match(line)
        if not m:
            continue
        if m.group(1):
            counts[1] += 1
        elif m.group(3) == "SKIP":
            counts[2] += 1
        else:
            counts[0] += 1
    if code is None:
        return False, "did not finish (crash or timeout)", output, counts
    if code != 0:
        return False, f"exited {code}", output, counts
    if counts[1] or not counts[0]:
        return False, "no passing case" if not counts[0] else "a case failed", output, counts
    return True, "", output, counts


def main(argv):
    runs = []
    for spec in argv:
        log, tests, stages = spec.rsplit(":", 2)
        runs.append((log, tests.split(","), int(stages)))
    total = sum(len(t) for _, t, _ in runs)
    print("KTAP version 1")
    print(f"1..{total}")
    n, failed, cases = 0, 0, [0, 0, 0]
    for log, tests, stages in runs:
        try:
            with open(log, errors="replace") as f:
                lines = [l.rstrip("\r\n") for l in f]
        except OSError as e:
            lines = [f"cannot read log: {e}"]
        bad = reports(lines)
        found = blocks(lines)
        for name in tests:
            n += 1
            ok, why, output, counts = judge(name, stages, found)
            if ok and bad:
                ok, why = False, f"kernel reported: {bad[0].strip()}"
            for line in output:
                print("    " + line)
            cases = [a + b for a, b in zip(cases, counts)]
            if ok:
                print(f"ok {n} {name}")
            else:
                failed += 1
                cases[1] += 0 if counts[1] else 1
                print(f"not ok {n} {name} # {why}")
        if bad or any(not judge(t, stages, found)[0] for t in tests):
            print(f"# ---- last lines of {log} ----")
            for line in lines[-60:]:
                print("# " + line)
    print(f"# {n - failed}/{n} test programs passed")
    print(f"vm: {cases[0]} passed, {cases[1]} failed, {cases[2]} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
