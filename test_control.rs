// SPDX-License-Identifier: GPL-2.0

//! The test subsystem (`CONFIG_LIVEUPDATE_RS_TEST`): one `u64` crosses a
//! live update through the subsystem callbacks, so the tests can prove
//! the subsystem API without a real driver.
//!
//! It is driven through debugfs, `liveupdate/test-control`. Writing
//! `register-subsystem` or `unregister-subsystem` (un)registers it and
//! fails with the errno luo-rs gives; `value N` sets what PREPARE returns
//! (FREEZE returns it plus one, so the tests see which step's data was
//! handed over); `fail prepare`, `fail freeze` and `fail none` inject
//! `EIO`. `register-handler` and `unregister-handler` do the same for the
//! test file handler, so the tests can check when luo-rs refuses;
//! `corrupt-handover` (FROZEN only) damages the published handover so the
//! next kernel must refuse it, and `newer-handover` renames its format to
//! the next version, as a later release would write; `kexec-window MS` makes `liveupdate_reboot()`
//! wait that long after committing to the jump, so the tests can race
//! userspace against the committed handover; `release-retrieves` lets
//! go the RETRIEVE_FDs of test files whose payload starts with
//! `stall:retrieve`, which wait for it, so the tests can show that a slow
//! retrieve holds up no other session's. Reading
//! gives `key: value` lines: what is registered, the value, how often
//! each callback ran, the data handed over to this kernel, whether
//! `liveupdate_reboot()` is holding the kexec window open, how many
//! retrieves wait for `release-retrieves`, and the data `finish` was
//! called with.
//!
//! The subsystem is not registered at boot, so live updates that do not
//! ask for it carry no subsystem data; the test handler is.

use crate::luo_subsystem::{self, Subsystem};
use core::fmt;
use kernel::{
    prelude::*,
    str::CStr,
    sync::atomic::{Atomic, Relaxed},
    time::{delay::fsleep, Delta},
    uaccess::UserSliceReader,
};

const COMPATIBLE: &CStr = c"luo-rs,test-subsystem-v1";

/// No fault injected; PREPARE fails; FREEZE fails.
const FAIL_NONE: u32 = 0;
const FAIL_PREPARE: u32 = 1;
const FAIL_FREEZE: u32 = 2;

/// The test subsystem's knobs and counters.
pub(crate) struct TestSubsystem {
    registered: Atomic<u32>,
    handler_registered: Atomic<u32>,
    value: Atomic<u64>,
    fail: Atomic<u32>,
    prepares: Atomic<u64>,
    freezes: Atomic<u64>,
    cancels: Atomic<u64>,
    finishes: Atomic<u64>,
    finished_data: Atomic<u64>,
    kexec_window_ms: Atomic<u32>,
    in_kexec_window: Atomic<u32>,
    retrieves_stalled: Atomic<u32>,
    retrieves_released: Atomic<u32>,
}

/// The one instance.
pub(crate) static TEST_SUBSYSTEM: TestSubsystem = TestSubsystem {
    registered: Atomic::new(0),
    handler_registered: Atomic::new(0),
    value: Atomic::new(0),
    fail: Atomic::new(FAIL_NONE),
    prepares: Atomic::new(0),
    freezes: Atomic::new(0),
    cancels: Atomic::new(0),
    finishes: Atomic::new(0),
    finished_data: Atomic::new(0),
    kexec_window_ms: Atomic::new(0),
    in_kexec_window: Atomic::new(0),
    retrieves_stalled: Atomic::new(0),
    retrieves_released: Atomic::new(0),
};

impl Subsystem for TestSubsystem {
    fn compatible(&self) -> &'static CStr {
        COMPATIBLE
    }

    fn prepare(&self) -> Result<u64> {
        self.prepares.fetch_add(1, Relaxed);
        if self.fail.load(Relaxed) == FAIL_PREPARE {
            return Err(EIO);
        }
        Ok(self.value.load(Relaxed))
    }

    fn freeze(&self, data: u64) -> Result<u64> {
        self.freezes.fetch_add(1, Relaxed);
        if self.fail.load(Relaxed) == FAIL_FREEZE {
            return Err(EIO);
        }
        Ok(data.wrapping_add(1))
    }

    fn cancel(&self, _data: u64) {
        self.cancels.fetch_add(1, Relaxed);
    }

    fn finish(&self, data: u64) {
        self.finishes.fetch_add(1, Relaxed);
        self.finished_data.store(data, Relaxed);
    }
}

/// The debugfs file's data (the state is in [`TEST_SUBSYSTEM`]).
pub(crate) struct Knob;

/// Registers the test file handler (at boot and on `register-handler`).
pub(crate) fn register_handler() -> Result {
    crate::luo_file::register(&crate::handlers::test::HANDLER)?;
    TEST_SUBSYSTEM.handler_registered.store(1, Relaxed);
    Ok(())
}

/// Called by `liveupdate_reboot()` once the kexec is committed, without
/// locks: waits as long as `kexec-window` asked (test kernels only).
pub(crate) fn kexec_window() {
    if !cfg!(CONFIG_LIVEUPDATE_RS_TEST) {
        return;
    }
    let ms = TEST_SUBSYSTEM.kexec_window_ms.load(Relaxed);
    if ms > 0 {
        pr_info!("test: holding the committed kexec for {} ms\n", ms);
        TEST_SUBSYSTEM.in_kexec_window.store(1, Relaxed);
        fsleep(Delta::from_millis(i64::from(ms)));
    }
}

/// Longest a stalled retrieve waits for `release-retrieves`.
const STALL_MAX_MS: u32 = 60_000;

/// Called by the test handler's retrieve() for a `stall:retrieve` payload:
/// waits until `release-retrieves` (then `Ok`), the caller is killed
/// (`EINTR`) or a minute went by (`ETIMEDOUT`).
pub(crate) fn stall_retrieve() -> Result {
    let t = &TEST_SUBSYSTEM;
    t.retrieves_stalled.fetch_add(1, Relaxed);
    let mut waited = 0;
    let result = loop {
        if t.retrieves_released.load(Relaxed) != 0 {
            break Ok(());
        }
        if crate::sched::killed() {
            break Err(EINTR);
        }
        if waited >= STALL_MAX_MS {
            break Err(ETIMEDOUT);
        }
        fsleep(Delta::from_millis(10));
        waited += 10;
    };
    t.retrieves_stalled.fetch_sub(1, Relaxed);
    result
}

/// Whether the test file handler registers at boot: not if the test
/// kernel was booted with `luotest.late_handler` (luo_test_boot.c).
#[cfg(CONFIG_LIVEUPDATE_RS_TEST)]
pub(crate) fn handler_at_boot() -> bool {
    // SAFETY: only reads a flag set while the command line was parsed.
    !unsafe { kernel::bindings::luo_test_late_handler() }
}

/// Without `CONFIG_LIVEUPDATE_RS_TEST` there is no test handler.
#[cfg(not(CONFIG_LIVEUPDATE_RS_TEST))]
pub(crate) fn handler_at_boot() -> bool {
    false
}

/// Reading `test-control`.
pub(crate) fn show(_: &Knob, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let t = &TEST_SUBSYSTEM;
    writeln!(f, "subsystem: {}", t.registered.load(Relaxed))?;
    writeln!(f, "handler: {}", t.handler_registered.load(Relaxed))?;
    writeln!(f, "value: {:#x}", t.value.load(Relaxed))?;
    writeln!(f, "prepares: {}", t.prepares.load(Relaxed))?;
    writeln!(f, "freezes: {}", t.freezes.load(Relaxed))?;
    writeln!(f, "cancels: {}", t.cancels.load(Relaxed))?;
    match luo_subsystem::incoming_data(COMPATIBLE) {
        Some(data) => writeln!(f, "incoming: {data:#x}")?,
        None => writeln!(f, "incoming: none")?,
    }
    writeln!(f, "kexec-window: {}", t.in_kexec_window.load(Relaxed))?;
    writeln!(
        f,
        "retrieves-stalled: {}",
        t.retrieves_stalled.load(Relaxed)
    )?;
    writeln!(f, "finishes: {}", t.finishes.load(Relaxed))?;
    writeln!(f, "finished: {:#x}", t.finished_data.load(Relaxed))
}

/// Writing `test-control`: one command.
pub(crate) fn command(_: &Knob, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 64];
    let n = reader.len();
    if n > buf.len() {
        return Err(EINVAL);
    }
    reader.read_slice(&mut buf[..n])?;
    let cmd = core::str::from_utf8(&buf[..n]).map_err(|_| EINVAL)?.trim();
    let t = &TEST_SUBSYSTEM;
    if let Some(ms) = cmd.strip_prefix("kexec-window ") {
        let ms: u32 = ms.trim().parse().map_err(|_| EINVAL)?;
        t.kexec_window_ms.store(ms.min(10_000), Relaxed);
        return Ok(());
    }
    match cmd {
        "register-subsystem" => {
            luo_subsystem::register(t)?;
            t.registered.store(1, Relaxed);
        }
        "unregister-subsystem" => {
            luo_subsystem::unregister(t)?;
            t.registered.store(0, Relaxed);
        }
        "register-handler" => register_handler()?,
        "release-retrieves" => t.retrieves_released.store(1, Relaxed),
        "unregister-handler" => {
            crate::luo_file::unregister(&crate::handlers::test::HANDLER)?;
            t.handler_registered.store(0, Relaxed);
        }
        "corrupt-handover" => crate::damage_handover(crate::Damage::Corrupt)?,
        "newer-handover" => crate::damage_handover(crate::Damage::Newer)?,
        "fail prepare" => t.fail.store(FAIL_PREPARE, Relaxed),
        "fail freeze" => t.fail.store(FAIL_FREEZE, Relaxed),
        "fail none" => t.fail.store(FAIL_NONE, Relaxed),
        _ => {
            let value = cmd.strip_prefix("value ").ok_or(EINVAL)?.trim();
            let value = match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => value.parse(),
            };
            t.value.store(value.map_err(|_| EINVAL)?, Relaxed);
        }
    }
    Ok(())
}
