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

/// Whether the caller has `CAP_SYS_ADMIN`, for decisions that depend on it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admin {
    /// It has: it may act on any user's session.
    Yes,
    /// It has not: only on its own.
    No,
}

/// [`sys_admin`] as an [`Admin`]. Checked only where it decides something,
/// since `capable()` audits and marks the task as having used privilege.
pub(crate) fn admin() -> Admin {
    if sys_admin() {
        Admin::Yes
    } else {
        Admin::No
    }
}

/// Whether the caller may go past the per-user limits on sessions and
/// preserved files (`CAP_SYS_RESOURCE`). Asked only when a limit is
/// reached, and without an audit record: a user at its limit is refused
/// with `EDQUOT`, not denied a privilege it asked for.
pub(crate) fn sys_resource() -> bool {
    // SAFETY: `init_user_ns` is a static that lives for ever;
    // `ns_capable_noaudit` may be called from any process context.
    unsafe {
        bindings::ns_capable_noaudit(
            &raw mut bindings::init_user_ns,
            bindings::CAP_SYS_RESOURCE as i32,
        )
    }
}
