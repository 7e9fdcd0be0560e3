// SPDX-License-Identifier: GPL-2.0

//! Scheduler calls the kernel crate has no wrapper for, for the long loops
//! over a memfd's folios (PREPARE, FREEZE, RETRIEVE, FINISH).

use kernel::bindings;

/// Lets other tasks run if this one has run long (`cond_resched()`).
/// Process context only, with no spinlock held.
pub(crate) fn cond_resched() {
    // SAFETY: `cond_resched` may sleep; callers are in process context and
    // hold only mutexes.
    unsafe { bindings::luo_cond_resched() }
}

/// Whether the current task was killed (`fatal_signal_pending()`): a long
/// operation it asked for should stop and undo what it did.
pub(crate) fn killed() -> bool {
    // SAFETY: reads the current task's signal state.
    unsafe { bindings::luo_fatal_signal_pending() }
}
