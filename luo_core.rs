// SPDX-License-Identifier: GPL-2.0

//! luo-rs: the Live Update Orchestrator, in Rust.
//!
//! A live update replaces the running kernel with kexec while selected
//! state (VM memory in memfds, iommufd, KVM) stays in RAM. Userspace
//! preserves files into sessions on /dev/liveupdate; at the kexec, luo-rs
//! writes what the next kernel needs into one FDT blob that Kexec HandOver
//! (KHO) carries across; the next kernel finds the blob at boot and hands
//! the state back.
//!
//! This file is the crate root: it initialises the subsystem (reads the
//! incoming handover, registers the device and its debugfs view) and
//! provides `liveupdate_reboot()`, which `kernel_kexec()` calls before it
//! jumps and which can abort the kexec by failing.

mod kho;
mod kho_ser;
mod luo_handover;
mod luo_ioctl;
mod luo_session;
mod luo_uapi;
mod user_struct;

use core::fmt;
use kernel::{
    bindings,
    debugfs::{Dir, File},
    ffi::c_int,
    miscdevice::{MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    sync::SetOnce,
    uapi,
};
use kho::{IncomingBlob, OutgoingBlob};
use luo_handover::Handover;

module! {
    type: LiveUpdate,
    name: "luo_rs",
    authors: ["luo-rs developers"],
    description: "Live Update Orchestrator in Rust",
    license: "GPL",
}

/// What this boot knows about itself, fixed at init.
struct Boot {
    /// Random id of this kernel, handed to the next one.
    boot_id: u64,
    /// The record the previous kernel handed over, if it did.
    incoming: Option<Handover>,
}

static BOOT: SetOnce<Boot> = SetOnce::new();

/// The global live update state (`enum liveupdate_state`).
pub(crate) fn global_state() -> u32 {
    uapi::liveupdate_state_LIVEUPDATE_STATE_NORMAL
}

/// Reads and validates the record the previous kernel left in KHO. A bad
/// record is refused with a log line and freed: this kernel then starts
/// as if cold-booted.
fn take_incoming() -> Option<Handover> {
    let blob = match IncomingBlob::take(luo_handover::KHO_NAME) {
        Ok(Some(blob)) => blob,
        Ok(None) => return None,
        Err(e) => {
            pr_err!("cannot restore the incoming handover: {:?}\n", e);
            return None;
        }
    };
    match Handover::decode(blob.as_slice()) {
        Ok(h) => {
            pr_info!(
                "handover received: generation {}, from kernel {:#018x}\n",
                h.generation,
                h.boot_id
            );
            Some(h)
        }
        Err(e) => {
            pr_err!("refusing the incoming handover ({:?}): starting fresh\n", e);
            None
        }
    }
}

/// Writes this kernel's record for the next one and registers it with KHO.
fn publish_handover(out: &mut Option<OutgoingBlob>) -> Result {
    let boot = BOOT.as_ref().ok_or(ENODEV)?;
    if out.is_none() {
        *out = Some(OutgoingBlob::new(luo_handover::MAX_SIZE)?);
    }
    let blob = out.as_mut().ok_or(ENOMEM)?;
    let record = Handover {
        generation: boot.incoming.map_or(0, |h| h.generation) + 1,
        boot_id: boot.boot_id,
    };
    record.encode(blob.as_mut_slice()).map_err(|e| {
        pr_err!("cannot encode the handover: {:?}\n", e);
        EINVAL
    })?;
    blob.publish(luo_handover::KHO_NAME)
}

kernel::sync::global_lock! {
    // SAFETY: initialised first thing in `LiveUpdate::init`.
    unsafe(uninit) static OUTGOING: Mutex<Option<OutgoingBlob>> = None;
}

/// Called by `kernel_kexec()` right before the jump; an error aborts the
/// kexec.
#[no_mangle]
pub extern "C" fn liveupdate_reboot() -> c_int {
    if BOOT.as_ref().is_none() {
        // luo-rs failed to initialise: there is nothing to hand over.
        return 0;
    }
    let mut out = OUTGOING.lock();
    match publish_handover(&mut out) {
        Ok(()) => {
            pr_info!("handover published for the next kernel\n");
            0
        }
        Err(e) => {
            pr_err!("aborting kexec: handover failed: {:?}\n", e);
            e.to_errno()
        }
    }
}

/// The debugfs view: `/sys/kernel/debug/liveupdate/status`.
struct Status;

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(boot) = BOOT.as_ref() else {
            return writeln!(f, "state: uninitialised");
        };
        writeln!(f, "state: normal")?;
        writeln!(f, "boot_id: {:#018x}", boot.boot_id)?;
        writeln!(f, "sessions: {}", luo_session::live_sessions())?;
        match boot.incoming {
            Some(h) => {
                writeln!(f, "incoming: yes")?;
                writeln!(f, "incoming_generation: {}", h.generation)?;
                writeln!(f, "incoming_boot_id: {:#018x}", h.boot_id)
            }
            None => writeln!(f, "incoming: no"),
        }
    }
}

#[pin_data]
struct LiveUpdate {
    #[pin]
    _status: File<Status>,
    _debugfs: Dir,
    #[pin]
    _device: MiscDeviceRegistration<luo_ioctl::LuoFile>,
}

impl kernel::InPlaceModule for LiveUpdate {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: called once, before anything can take the lock.
        unsafe { OUTGOING.init() };

        // SAFETY: `get_random_u64` may be called at any time after boot.
        let boot_id = unsafe { bindings::get_random_u64() };
        let incoming = take_incoming();
        BOOT.populate(Boot { boot_id, incoming });

        let debugfs = Dir::new(c"liveupdate");
        try_pin_init!(Self {
            _status <- debugfs.read_only_file(c"status", Status),
            _debugfs: debugfs,
            _device <- MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"liveupdate",
            }),
        })
    }
}
