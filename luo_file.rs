// SPDX-License-Identifier: GPL-2.0

//! File handlers: how one kind of file crosses a live update.
//!
//! A handler is found by [`FileHandler::can_preserve`] at PRESERVE_FD and
//! by its compatible string in the new kernel. PRESERVE_FD only takes the
//! file ([`FileHandler::preserve`]); the heavy work waits for PREPARE
//! ([`Preserved::prepare`], workloads still running), FREEZE catches what
//! changed since ([`Preserved::freeze`]), and CANCEL undoes both
//! ([`Preserved::cancel`]). Dropping a [`Preserved`] unpreserves the file.
//! Each callback returns or takes the handler's one `u64` of handover data
//! (typically the physical address of memory it preserved with KHO).
//!
//! In the new kernel, [`FileHandler::retrieve`] rebuilds the file from that
//! data on the first RETRIEVE_FD of its token, and [`FileHandler::finish`]
//! lets go of what the handover kept, for retrieved files and for files
//! nobody retrieved.
//!
//! Every callback runs in process context with luo-rs's core lock held and
//! may sleep; none may call back into luo-rs.

use kernel::{fs::File, prelude::*, str::CStr, sync::aref::ARef};

/// The per-file state of a preserved file in the outgoing kernel.
pub(crate) trait Preserved: Send {
    /// PREPARE: do the heavy work; returns the handover data.
    fn prepare(&mut self) -> Result<u64>;
    /// FREEZE: take in what changed since `prepare`; returns the final
    /// handover data.
    fn freeze(&mut self) -> Result<u64>;
    /// CANCEL (or a failed PREPARE/FREEZE): undo `prepare` and `freeze`
    /// completely. Called only after a successful `prepare`.
    fn cancel(&mut self);
}

/// A kind of file that can be preserved.
pub(crate) trait FileHandler: Sync {
    /// Names the handler in the handover; at most 63 bytes.
    fn compatible(&self) -> &'static CStr;
    /// Whether this handler preserves `file`.
    fn can_preserve(&self, file: &File) -> bool;
    /// Takes `file` for preservation (PRESERVE_FD). Cheap: the work waits
    /// for PREPARE.
    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>>;
    /// In the new kernel: rebuilds the file from its handover `data`.
    fn retrieve(&self, data: u64) -> Result<ARef<File>>;
    /// Whether the file may be finished now (`EBUSY` for SESSION_FINISH
    /// otherwise).
    fn can_finish(&self, _data: u64, _retrieved: bool) -> bool {
        true
    }
    /// The update is over for this file: free what the handover kept.
    fn finish(&self, data: u64, retrieved: bool);
}

/// Every handler built into this kernel.
fn handlers() -> impl Iterator<Item = &'static dyn FileHandler> {
    let test: Option<&'static dyn FileHandler> = if cfg!(CONFIG_LIVEUPDATE_RS_TEST) {
        Some(&crate::handlers::test::HANDLER)
    } else {
        None
    };
    test.into_iter()
}

/// The handler that preserves `file`, if any.
pub(crate) fn handler_for(file: &File) -> Option<&'static dyn FileHandler> {
    handlers().find(|h| h.can_preserve(file))
}

/// The handler named `compatible` in a handover, if this kernel has it.
pub(crate) fn handler_named(compatible: &[u8]) -> Option<&'static dyn FileHandler> {
    handlers().find(|h| h.compatible().to_bytes() == compatible)
}
