#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tests of scripts/ktap.py, the VM runner's judge: it must fail every
run that crashed, warned, timed out or skipped its kexec."""
import os
import subprocess
import sys
import tempfile
import unittest

KTAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "ktap.py")

PASS = """LUO-RUN-BEGIN t stage=1
TAP version 13
1..2
ok 1 global.a
ok 2 global.b
LUO-RUN-END t stage=1 exit=0
"""


def judge(log, tests="t", stages=1):
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write(log)
    try:
        r = subprocess.run([sys.executable, KTAP, f"{f.name}:{tests}:{stages}"],
                           capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return r.returncode, r.stdout


class Judge(unittest.TestCase):
    def test_pass(self):
        code, out = judge(PASS)
        self.assertEqual(code, 0, out)
        self.assertIn("ok 1 t", out)
        self.assertIn("vm: 2 passed, 0 failed, 0 skipped", out)

    def test_failed_case(self):
        code, out = judge(PASS.replace("ok 2 global.b", "not ok 2 global.b").replace("exit=0", "exit=1"))
        self.assertEqual(code, 1)
        self.assertIn("not ok 1 t", out)

    def test_kernel_lines_between_results_are_ignored(self):
        code, out = judge(PASS.replace("ok 2", "[    1.000000] random: crng init done\nok 2"))
        self.assertEqual(code, 0, out)

    def test_warning_fails_the_run(self):
        code, out = judge(PASS + "[    2.0] WARNING: CPU: 0 PID: 1 at kernel/x.c:1\n")
        self.assertEqual(code, 1)
        self.assertIn("kernel reported", out)

    def test_panic_and_lockdep_fail_the_run(self):
        for line in ("Kernel panic - not syncing: x", "BUG: kernel NULL pointer dereference",
                     "WARNING: possible circular locking dependency detected", "Oops: 0000 [#1]"):
            code, _ = judge(PASS + line + "\n")
            self.assertEqual(code, 1, line)

    def test_a_kmemleak_report_fails_the_run(self):
        leak = ("LUO-KMEMLEAK-BEGIN stage=1\n"
                "unreferenced object 0xffff888003a1c000 (size 64):\n"
                "  comm \"t\", pid 70, jiffies 4294893561\n"
                "LUO-KMEMLEAK-END stage=1\n")
        code, out = judge(PASS + leak)
        self.assertEqual(code, 1, out)
        code, out = judge(PASS + "LUO-KMEMLEAK-BEGIN stage=1\nLUO-KMEMLEAK-END stage=1\n")
        self.assertEqual(code, 0, out)

    def test_an_injected_allocation_failure_report_is_not_a_bug(self):
        report = ("[    3.1] t: vmalloc error: size 4096, failed to allocate pages, mode:0xcc0(GFP_KERNEL)\n"
                  "[    3.1] CPU: 0 UID: 0 PID: 70 Comm: t Not tainted 7.3.0\n"
                  "[    3.1] Call Trace:\n"
                  "[    3.1]  <TASK>\n"
                  "[    3.1]  dump_stack_lvl+0x5d/0x80\n"
                  "[    3.1]  </TASK>\n")
        injected = "[    3.0] FAULT_INJECTION: forcing a failure.\n"
        code, out = judge(PASS + injected + report)
        self.assertEqual(code, 0, out)
        # Without an injected failure it is a report like any other...
        code, out = judge(PASS + report)
        self.assertEqual(code, 1, out)
        # ...and only the allocator's report is excused, up to its end.
        code, out = judge(PASS + injected + report + "[    3.2] WARNING: CPU: 0 PID: 70 at x.c:1\n")
        self.assertEqual(code, 1, out)
        code, out = judge(PASS + injected + "[    3.1] Call Trace:\n")
        self.assertEqual(code, 1, out)

    def test_crash_before_end(self):
        code, out = judge(PASS.split("LUO-RUN-END")[0])
        self.assertEqual(code, 1)
        self.assertIn("did not finish", out)

    def test_no_cases_is_a_failure(self):
        code, _ = judge("LUO-RUN-BEGIN t stage=1\nLUO-RUN-END t stage=1 exit=0\n")
        self.assertEqual(code, 1)

    def test_skips_are_not_passes(self):
        log = PASS.replace("ok 2 global.b", "ok 2 global.b # SKIP no device")
        code, out = judge(log)
        self.assertIn("vm: 1 passed, 0 failed, 1 skipped", out)
        self.assertEqual(code, 0)
        code, out = judge(log.replace("ok 1 global.a", "ok 1 global.a # SKIP x"))
        self.assertEqual(code, 1, out)

    def test_kexec_test_needs_both_stages(self):
        stage2 = PASS.replace("stage=1", "stage=2")
        code, out = judge("LUO-RUN-BEGIN t stage=1\n# kexec\n" + stage2, stages=2)
        self.assertEqual(code, 0, out)
        # Stage 1 came back: the kexec did not happen.
        code, out = judge("LUO-RUN-BEGIN t stage=1\nLUO-RUN-END t stage=1 exit=1\n", stages=2)
        self.assertEqual(code, 1)
        self.assertIn("without kexec", out)
        # Stage 2 never ran.
        code, out = judge("LUO-RUN-BEGIN t stage=1\n# kexec\n", stages=2)
        self.assertEqual(code, 1)

    def test_missing_log(self):
        r = subprocess.run([sys.executable, KTAP, "/nonexistent.log:t:1"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main()
