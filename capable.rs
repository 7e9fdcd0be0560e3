// SPDX-License-Identifier: GPL-2.0

//! Capability checks (the kernel crate has no wrapper for `capable()`).

use kernel::bindings;

/// Whether the current task has `CAP_SYS_ADMIN` in the initial user
/// namespace; required to move the global state machine.
pub(crate) fn sys_admin() -> bool {
    // SAFETY: `capable` may be called from any process context; it checks
    // (and audits) the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
