// SPDX-License-Identifier: GPL-2.0

//! File handlers: how one kind of file crosses a live update.
//!
//! A handler is found by [`FileHandler::can_preserve`] at PRESERVE_FD and
//! by its compatible string in the new kernel. PRESERVE_FD takes the file
//! ([`FileHandler::preserve`]: checks, and charges what the update will
//! pin, so that a caller past its limits is refused then and there, not
//! the whole update later), and may do the heavy work right away, while
//! workloads run; PREPARE does what is left and serializes
//! ([`Preserved::prepare`], workloads still running), FREEZE catches what
//! changed since ([`Preserved::freeze`]), and CANCEL undoes what those two
//! did ([`Preserved::cancel`]). Dropping a [`Preserved`] unpreserves the
//! file and everything done for it. Each callback returns or takes the
//! handler's one `u64` of handover data (typically the physical address of
//! memory it preserved with KHO), and a handler with little to say can
//! keep it in the handover itself ([`Preserved::state`], at most
//! [`crate::luo_handover::STATE_MAX`] bytes) instead of in memory of its
//! own. A kexec waits for the PRESERVE_FDs on their way before it commits
//! the handover ([`stop_preserving`]).
//!
//! In the new kernel, [`FileHandler::retrieve`] rebuilds the file from that
//! data and state ([`HandedOver`]) on the first RETRIEVE_FD of its token,
//! and [`FileHandler::finish`] lets go of what the handover kept, for
//! retrieved files and for files nobody retrieved.
//!
//! A file may need other files of its session in the new kernel (a
//! guest_memfd its VM, an iommufd the memfds it maps): its state names
//! them ([`Preserved::dependencies`]), PREPARE and FREEZE check that each
//! is preserved in the same session and record the edges in the
//! handover, and [`FileHandler::retrieve`] gets them already rebuilt,
//! whatever order user space retrieves in.
//!
//! Handlers register and unregister at any time ([`register`],
//! [`unregister`]); unregistering is refused while files of the handler
//! are preserved or handed over and not finished.
//!
//! Every callback runs in process context and may sleep; none may call
//! back into luo-rs. `preserve` runs with no luo-rs lock held (it may wait
//! for the file, as long as it is killable and bounded), `retrieve` under
//! its session's restore lock only (sessions are restored in parallel),
//! the others with luo-rs's core lock held. `can_preserve` runs under the
//! handler registry's lock and must not sleep for long.

use kernel::{fs::File, prelude::*, str::CStr, sync::aref::ARef};

/// A file a preserved file needs in the new kernel: another file of its
/// session, named as its handler knows it.
#[derive(Clone, Copy)]
pub(crate) struct Dependency {
    /// The compatible string of the handler that preserves it.
    pub(crate) handler: &'static CStr,
    /// What that file's state says it is ([`Preserved::object`]).
    pub(crate) object: usize,
}

impl Dependency {
    /// The preserved file `file`, of a handler that keeps the default
    /// [`Preserved::object`]. The caller holds a reference to `file` for
    /// as long as it names it, so that its address is not reused.
    pub(crate) fn on_file(handler: &'static CStr, file: &File) -> Self {
        Self {
            handler,
            object: core::ptr::from_ref(file) as usize,
        }
    }
}

/// The per-file state of a preserved file in the outgoing kernel.
pub(crate) trait Preserved: Send {
    /// What the file is to files that depend on it
    /// ([`Dependency::object`]): `None` (the default) for the address of
    /// its `struct file`. A handler whose dependents know the object
    /// behind the file instead (a VM's `struct kvm`) says so here; no two
    /// of its files in a session may say the same.
    fn object(&self) -> Option<usize> {
        None
    }
    /// The files this one needs in the new kernel, in the order
    /// [`FileHandler::retrieve`] gets them; asked at PRESERVE_FD (each
    /// must be preserved in the same session already: `ENOLINK`
    /// otherwise), UNPRESERVE_FD (a file still needed stays: `EBUSY`),
    /// and at PREPARE and FREEZE, after [`Preserved::prepare`] and
    /// [`Preserved::freeze`], for a handler whose needs change meanwhile
    /// (`ENOLINK` if one is not in the session, `ELOOP` if files need
    /// each other in a cycle). At most the handler's
    /// [`FileHandler::max_dependencies`]. Runs under luo-rs's locks: it
    /// must not sleep or call back into luo-rs.
    fn dependencies(&self) -> &[Dependency] {
        &[]
    }
    /// PREPARE: do the heavy work left (what changed since PRESERVE_FD);
    /// returns the handover data.
    fn prepare(&mut self) -> Result<u64>;
    /// FREEZE: take in what changed since `prepare`; returns the final
    /// handover data. Only that `u64` and [`Preserved::state`] are in
    /// luo-rs's record (written again only if they or the sessions
    /// changed): what it points to, the handler updates in place.
    fn freeze(&mut self) -> Result<u64>;
    /// The state the file keeps in the handover itself, as the last
    /// `prepare` or `freeze` left it: at most [`Preserved::max_state`]
    /// bytes (PREPARE and FREEZE fail with `EINVAL` otherwise); none (the
    /// default) for a handler that keeps everything in memory of its own.
    /// Runs under luo-rs's locks: it must not sleep.
    fn state(&self) -> &[u8] {
        &[]
    }
    /// Most bytes [`Preserved::state`] will ever take for this file: the
    /// room it takes in the handover is counted at PRESERVE_FD. At most
    /// [`crate::luo_handover::STATE_MAX`], and the same for as long as the
    /// file is preserved. Asked once, after [`FileHandler::preserve`].
    fn max_state(&self) -> usize {
        0
    }
    /// Bytes of memory of its own the file's record keeps preserved for
    /// the next kernel beside its node in the handover (a memfd's header
    /// page and folio list), as the last `prepare` or `freeze` left it;
    /// none (the default) for a record that is all in the node. Only
    /// counted, for the debugfs status (`handover_bytes`).
    fn record_bytes(&self) -> usize {
        0
    }
    /// CANCEL (or a failed PREPARE/FREEZE): undo what `prepare` and
    /// `freeze` changed for the update (the file is as after PRESERVE_FD
    /// again: what PRESERVE_FD did stays until the drop). Called only
    /// after a successful `prepare`.
    fn cancel(&mut self);
}

/// A kind of file that can be preserved.
pub(crate) trait FileHandler: Sync {
    /// Names the handler in the handover; at most 63 bytes.
    fn compatible(&self) -> &'static CStr;
    /// Whether this handler preserves `file`.
    fn can_preserve(&self, file: &File) -> bool;
    /// Most dependencies a file of this handler has
    /// ([`Preserved::dependencies`]; at most
    /// [`crate::luo_handover::MAX_DEPENDS`]): the room it takes in the
    /// handover is counted at PRESERVE_FD.
    fn max_dependencies(&self) -> usize {
        0
    }
    /// Takes `file` for preservation (PRESERVE_FD), deciding what the
    /// caller may be refused (limits, charges). Runs with no luo-rs lock
    /// held, while the workload runs: it may do the heavy work right away
    /// (the memfd handler pins and preserves the memfd's pages), so that
    /// PREPARE and FREEZE only take in what changed.
    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>>;
    /// In the new kernel: rebuilds the file from what it handed over;
    /// `depends` are the files it depends on, retrieved (by user space or
    /// for this call), in the order [`Preserved::dependencies`] named
    /// them. They may be in user space's hands already, and a damaged
    /// record can name any earlier file of the session: check each one's
    /// kind (its `f_op`) before using what is behind it. On failure what the handover kept is still the handler's:
    /// retrieve() may be called again (after a failure for want of memory
    /// it should go on from where it stopped), and finish() must free it.
    fn retrieve(&self, file: &HandedOver<'_>, depends: &[ARef<File>]) -> Result<ARef<File>>;
    /// Whether the file may be finished now (`EBUSY` for SESSION_FINISH
    /// otherwise); `retrieved` as for `finish`.
    fn can_finish(&self, _file: &HandedOver<'_>, _retrieved: bool) -> bool {
        true
    }
    /// The update is over for this file: free what the handover kept.
    /// `retrieved` says whether `retrieve` succeeded, in which case the
    /// file took what it needed and `finish` frees only what is left; if
    /// not, `finish` frees everything, including what failed attempts
    /// built.
    fn finish(&self, file: &HandedOver<'_>, retrieved: bool);
}

/// A file of an incoming session, as its handler handed it over.
pub(crate) struct HandedOver<'a> {
    /// Names the file among every file handed over to this kernel: what
    /// a handler keeps for it between calls (a failed attempt's work) is
    /// found by it. Never the same for two files, whatever the record
    /// says (the core numbers incoming files as it reads them).
    pub(crate) key: u64,
    /// The handler's handover data, as [`Preserved::freeze`] returned it.
    pub(crate) data: u64,
    /// The handler's state, as [`Preserved::state`] gave it (checked only
    /// for its length: the handler checks the rest).
    pub(crate) state: &'a [u8],
}

impl HandedOver<'_> {
    /// The data of a file whose handler keeps no state: `EINVAL` if the
    /// record gives it one all the same (it is not what the handler
    /// wrote).
    pub(crate) fn data_alone(&self) -> Result<u64> {
        if self.state.is_empty() {
            Ok(self.data)
        } else {
            Err(EINVAL)
        }
    }
}

/// The registered handlers.
struct Registry {
    handlers: KVec<&'static dyn FileHandler>,
    /// [`PreservingWith`]s alive: PRESERVE_FDs between finding their
    /// handler and adding the file to a session (or giving up).
    preserving: usize,
    /// A kexec is about to commit the handover: no PRESERVE_FD may start
    /// (what its handler preserved would cross with no record of it).
    stopped: bool,
}

kernel::sync::global_lock! {
    // SAFETY: initialised in module init, before any handler registers.
    //
    // Locking: a leaf, taken last (after CORE, SESSIONS and a session's
    // `inner`); `can_preserve` runs under it.
    unsafe(uninit) static HANDLERS: Mutex<Registry> = Registry {
        handlers: KVec::new(),
        preserving: 0,
        stopped: false,
    };
}

/// Initialises the registry; called once from module init.
pub(crate) fn init() {
    // SAFETY: called once, before any handler registers.
    unsafe { HANDLERS.init() };
}

/// Makes `handler` available, at any time: `EEXIST` if a handler of the
/// same compatible is registered. A handler registered while an update
/// is received can retrieve the incoming files it names.
pub(crate) fn register(handler: &'static dyn FileHandler) -> Result {
    let compatible = handler.compatible().to_bytes();
    if compatible.is_empty()
        || compatible.len() > crate::luo_handover::COMPATIBLE_MAX
        || handler.max_dependencies() > crate::luo_handover::MAX_DEPENDS
    {
        return Err(EINVAL);
    }
    let mut registry = HANDLERS.lock();
    if registry
        .handlers
        .iter()
        .any(|h| h.compatible().to_bytes() == compatible)
    {
        return Err(EEXIST);
    }
    registry.handlers.push(handler, GFP_KERNEL)?;
    Ok(())
}

/// Withdraws `handler`: `EBUSY` while a file preserved with it or an
/// incoming file it must finish exists (unpreserve or finish those
/// first), or a PRESERVE_FD is on its way, `ENOENT` if it is not
/// registered.
pub(crate) fn unregister(handler: &'static dyn FileHandler) -> Result {
    let compatible = handler.compatible().to_bytes();
    // Steady state: no transition or FINISH meanwhile, and a PRESERVE_FD
    // adds its file to a session under this lock.
    let core = crate::core();
    if core.holds_files_of(compatible) || crate::luo_session::uses_handler(compatible) {
        return Err(EBUSY);
    }
    let mut registry = HANDLERS.lock();
    if registry.preserving != 0 {
        return Err(EBUSY);
    }
    let i = registry
        .handlers
        .iter()
        .position(|h| h.compatible().to_bytes() == compatible)
        .ok_or(ENOENT)?;
    registry.handlers.remove(i).map_err(|_| ENOENT)?;
    Ok(())
}

/// The handler a PRESERVE_FD found for its file. PRESERVE_FD runs the
/// handler's [`FileHandler::preserve`] with no luo-rs lock held (it may
/// wait for the file); meanwhile the handler cannot be unregistered.
///
/// # Invariants
///
/// The handler is registered, and counted in `preserving`, while this
/// lives.
pub(crate) struct PreservingWith(&'static dyn FileHandler);

impl PreservingWith {
    /// The handler.
    pub(crate) fn handler(&self) -> &'static dyn FileHandler {
        self.0
    }
}

impl Drop for PreservingWith {
    fn drop(&mut self) {
        HANDLERS.lock().preserving -= 1;
    }
}

/// The handler that preserves `file`, held for a PRESERVE_FD: `ENOENT` if
/// none does, `EBUSY` while a kexec is starting ([`stop_preserving`]).
pub(crate) fn handler_for(file: &File) -> Result<PreservingWith> {
    let mut registry = HANDLERS.lock();
    let handler = registry
        .handlers
        .iter()
        .copied()
        .find(|h| h.can_preserve(file))
        .ok_or(ENOENT)?;
    if registry.stopped {
        return Err(EBUSY);
    }
    registry.preserving += 1;
    // INVARIANT: found registered, and counted.
    Ok(PreservingWith(handler))
}

/// How long a kexec waits for the PRESERVE_FDs on their way.
const PRESERVING_WAIT_MS: u32 = 10_000;

/// Holds new PRESERVE_FDs off while a kexec commits the handover; they may
/// start again when this goes (the kexec failed).
pub(crate) struct PreservingStopped(());

impl PreservingStopped {
    /// The kexec is committed: PRESERVE_FDs stay refused until it jumps.
    pub(crate) fn for_good(self) {
        core::mem::forget(self);
    }
}

impl Drop for PreservingStopped {
    fn drop(&mut self) {
        HANDLERS.lock().stopped = false;
    }
}

/// Called by the kexec hook before it takes the core lock: refuses new
/// PRESERVE_FDs from now on and waits (up to 10 s) until those on their way
/// have added their file or given up, so that nothing a handler preserved
/// crosses without a record. `EBUSY` if some are still on their way.
pub(crate) fn stop_preserving() -> Result<PreservingStopped> {
    HANDLERS.lock().stopped = true;
    let stopped = PreservingStopped(());
    let mut waited = 0;
    while HANDLERS.lock().preserving != 0 {
        if waited >= PRESERVING_WAIT_MS {
            return Err(EBUSY);
        }
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(10));
        waited += 10;
    }
    Ok(stopped)
}

/// The compatible string of the handler that would preserve `file`, if
/// any: for a handler naming a dependency it does not preserve itself.
pub(crate) fn compatible_of(file: &File) -> Option<&'static CStr> {
    HANDLERS
        .lock()
        .handlers
        .iter()
        .find(|h| h.can_preserve(file))
        .map(|h| h.compatible())
}

/// The handler named `compatible` in a handover, if one is registered.
pub(crate) fn handler_named(compatible: &[u8]) -> Option<&'static dyn FileHandler> {
    HANDLERS
        .lock()
        .handlers
        .iter()
        .copied()
        .find(|h| h.compatible().to_bytes() == compatible)
}
