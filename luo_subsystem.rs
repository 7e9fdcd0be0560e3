// SPDX-License-Identifier: GPL-2.0

//! Subsystems: state that crosses a live update without being a file
//! (an IOMMU driver's tables, a device's firmware state).
//!
//! A subsystem registers a [`Subsystem`] with a compatible string. In the
//! outgoing kernel its PREPARE returns one `u64` of handover data
//! (typically the physical address of memory it preserved with KHO),
//! FREEZE may replace it, CANCEL undoes both. The handover carries the
//! final value under the subsystem's compatible string.
//!
//! In the new kernel, the subsystem asks for that value with
//! [`incoming_data`] once it registered, and its `finish` is called when
//! the update is over: when the last incoming session is finished, or at
//! the global FINISH. Data that arrived for a subsystem keeps the system
//! UPDATED until then, so a subsystem that registers late still gets it.
//!
//! Registration is refused (`EBUSY`) while PREPARED or FROZEN: a new
//! subsystem would miss PREPARE, a leaving one would break the handover.

use crate::luo_handover::{SubsystemRecord, COMPATIBLE_MAX};
use crate::luo_state::State;
use crate::luo_uapi::Name;
use kernel::{prelude::*, str::CStr};

/// A piece of global state that crosses a live update.
///
/// Callbacks run in process context with luo-rs's core lock held, in
/// registration order (CANCEL in reverse), and may sleep; none may call
/// back into luo-rs.
pub(crate) trait Subsystem: Sync {
    /// Names the subsystem in the handover; at most 63 bytes.
    fn compatible(&self) -> &'static CStr;
    /// PREPARE: do the heavy work; returns the handover data.
    fn prepare(&self) -> Result<u64>;
    /// FREEZE: `data` is what `prepare` returned; returns the final data.
    /// What it points to, the subsystem updates in place.
    fn freeze(&self, data: u64) -> Result<u64>;
    /// CANCEL (or a failed PREPARE/FREEZE): undo `prepare` and `freeze`;
    /// `data` is the last value they returned.
    fn cancel(&self, data: u64);
    /// In the new kernel: the update is over; `data` is what the previous
    /// kernel handed over.
    fn finish(&self, data: u64);
}

/// A registered subsystem.
struct Registered {
    subsystem: &'static dyn Subsystem,
    /// Its handover data once PREPARE ran; `None` again after CANCEL.
    data: Option<u64>,
}

/// Handover data the previous kernel left for a subsystem.
struct Incoming {
    compatible: Name,
    data: u64,
}

struct Subsystems {
    registered: KVec<Registered>,
    incoming: KVec<Incoming>,
}

kernel::sync::global_lock! {
    // SAFETY: initialised in module init, before the handover is read.
    //
    // Locking: taken after CORE. The callbacks run under it, and so does
    // PREPARE's and FREEZE's copy of the record (`with_records`), which
    // takes SESSIONS and each session's lock inside it: never take this
    // with those held.
    unsafe(uninit) static SUBSYSTEMS: Mutex<Subsystems> = Subsystems {
        registered: KVec::new(),
        incoming: KVec::new(),
    };
}

/// Initialises the registry; called once from module init.
pub(crate) fn init() {
    // SAFETY: called once, before anything can take the lock.
    unsafe { SUBSYSTEMS.init() };
}

/// Makes `subsystem` part of every live update from now on: `EEXIST` if
/// one of the same compatible is registered, `EBUSY` while PREPARED or
/// FROZEN.
pub(crate) fn register(subsystem: &'static dyn Subsystem) -> Result {
    let compatible = subsystem.compatible().to_bytes();
    if compatible.is_empty() || compatible.len() > COMPATIBLE_MAX {
        return Err(EINVAL);
    }
    let core = crate::core();
    if matches!(core.state(), State::Prepared | State::Frozen) {
        return Err(EBUSY);
    }
    let mut s = SUBSYSTEMS.lock();
    if s.registered
        .iter()
        .any(|r| r.subsystem.compatible().to_bytes() == compatible)
    {
        return Err(EEXIST);
    }
    s.registered.push(
        Registered {
            subsystem,
            data: None,
        },
        GFP_KERNEL,
    )?;
    Ok(())
}

/// Withdraws `subsystem`: `EBUSY` while PREPARED or FROZEN, `ENOENT` if it
/// is not registered. Data handed over to it stays until FINISH (and is
/// then finished by whoever registers under its compatible).
pub(crate) fn unregister(subsystem: &'static dyn Subsystem) -> Result {
    let compatible = subsystem.compatible().to_bytes();
    let core = crate::core();
    if matches!(core.state(), State::Prepared | State::Frozen) {
        return Err(EBUSY);
    }
    let mut s = SUBSYSTEMS.lock();
    let i = s
        .registered
        .iter()
        .position(|r| r.subsystem.compatible().to_bytes() == compatible)
        .ok_or(ENOENT)?;
    s.registered.remove(i).map_err(|_| ENOENT)?;
    Ok(())
}

/// In the new kernel: the data the previous kernel handed over for
/// `compatible`, until the update is finished.
pub(crate) fn incoming_data(compatible: &CStr) -> Option<u64> {
    SUBSYSTEMS
        .lock()
        .incoming
        .iter()
        .find(|i| i.compatible.as_bytes() == compatible.to_bytes())
        .map(|i| i.data)
}

/// Runs one step on every registered subsystem, in order: `step` gets
/// the subsystem and its data so far and returns its new data, or `None`
/// to skip it. On failure every prepared subsystem is cancelled.
fn run(step: impl Fn(&dyn Subsystem, Option<u64>) -> Option<Result<u64>>) -> Result {
    let mut s = SUBSYSTEMS.lock();
    let mut result = Ok(());
    for r in s.registered.iter_mut() {
        match step(r.subsystem, r.data) {
            Some(Ok(data)) => r.data = Some(data),
            Some(Err(e)) => {
                result = Err(e);
                break;
            }
            None => {}
        }
    }
    if result.is_err() {
        cancel(&mut s);
    }
    result
}

/// PREPARE of every subsystem; on failure those already prepared are
/// cancelled, in reverse order.
pub(crate) fn prepare_all() -> Result {
    run(|s, _| Some(s.prepare()))
}

/// FREEZE of every prepared subsystem; on failure all are cancelled.
pub(crate) fn freeze_all() -> Result {
    run(|s, data| data.map(|data| s.freeze(data)))
}

fn cancel(s: &mut Subsystems) {
    for r in s.registered.iter_mut().rev() {
        if let Some(data) = r.data.take() {
            r.subsystem.cancel(data);
        }
    }
}

/// CANCEL of every prepared subsystem, in reverse order.
pub(crate) fn cancel_all() {
    cancel(&mut SUBSYSTEMS.lock());
}

/// Calls `f` with the handover records of the prepared subsystems.
pub(crate) fn with_records<R>(f: impl FnOnce(&[SubsystemRecord<'_>]) -> Result<R>) -> Result<R> {
    let s = SUBSYSTEMS.lock();
    let mut records = KVec::with_capacity(s.registered.len(), GFP_KERNEL)?;
    for r in s.registered.iter() {
        if let Some(data) = r.data {
            records.push(
                SubsystemRecord {
                    compatible: r.subsystem.compatible().to_bytes(),
                    data,
                },
                GFP_KERNEL,
            )?;
        }
    }
    f(&records)
}

/// At boot: records data the previous kernel handed to the subsystem
/// `compatible` (the decoder saw each compatible once).
pub(crate) fn add_incoming(compatible: Name, data: u64) -> Result {
    SUBSYSTEMS
        .lock()
        .incoming
        .push(Incoming { compatible, data }, GFP_KERNEL)?;
    Ok(())
}

/// Number of subsystems with handover data not finished yet.
pub(crate) fn incoming_left() -> usize {
    SUBSYSTEMS.lock().incoming.len()
}

/// The last incoming session was finished: every registered subsystem
/// with handover data finishes it. Returns how much data is left, for
/// subsystems that have not registered (yet): it waits for them, or for
/// the global FINISH.
pub(crate) fn finish_registered() -> usize {
    let mut s = SUBSYSTEMS.lock();
    let s = &mut *s;
    let registered = &s.registered;
    s.incoming.retain(|i| {
        let owner = registered
            .iter()
            .find(|r| r.subsystem.compatible().to_bytes() == i.compatible.as_bytes());
        match owner {
            Some(r) => {
                r.subsystem.finish(i.data);
                false
            }
            None => true,
        }
    });
    s.incoming.len()
}

/// The global FINISH: every subsystem with handover data finishes it.
/// Data whose subsystem never registered is dropped with a warning.
pub(crate) fn finish_incoming() {
    let mut s = SUBSYSTEMS.lock();
    let s = &mut *s;
    for i in s.incoming.iter() {
        let owner = s
            .registered
            .iter()
            .find(|r| r.subsystem.compatible().to_bytes() == i.compatible.as_bytes());
        match owner {
            Some(r) => r.subsystem.finish(i.data),
            None => pr_warn!("no subsystem took its handover data: dropped\n"),
        }
    }
    s.incoming.clear();
}

/// Calls `f` on every registered subsystem's compatible and data, then on
/// every incoming one's, for the debugfs view.
pub(crate) fn for_each(mut f: impl FnMut(&[u8], Option<u64>, bool)) {
    let s = SUBSYSTEMS.lock();
    for r in s.registered.iter() {
        f(r.subsystem.compatible().to_bytes(), r.data, false);
    }
    for i in s.incoming.iter() {
        f(i.compatible.as_bytes(), Some(i.data), true);
    }
}
