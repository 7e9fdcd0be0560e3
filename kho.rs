// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers of the Kexec HandOver (KHO) calls luo-rs uses.
//!
//! [`OutgoingBlob`] is memory preserved for the next kernel and registered
//! as a named KHO subtree; [`IncomingBlob`] is such a subtree found at boot,
//! restored from KHO and owned by this kernel until dropped. For handlers:
//! [`PreservedRuns`] / [`RestoredFolio`] carry folios across, whole;
//! [`PreservedWords`] / [`RestoredWords`] an array of any length. This is
//! the only module that calls the KHO C API.

use crate::handlers::memfd_format::{Run, Runs};
use crate::shmem::PinnedFolio;
use core::ptr::NonNull;
use kernel::{alloc::VVec, bindings, error::from_err_ptr, page::PAGE_SIZE, prelude::*, str::CStr};

/// Whether KHO is on for this boot (`kho=` on the command line, or
/// `CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT`). Without it nothing can be
/// handed over.
pub(crate) fn enabled() -> bool {
    // SAFETY: `kho_is_enabled` only reads a boot-time flag.
    unsafe { bindings::kho_is_enabled() }
}

/// Memory preserved across kexec with `kho_alloc_preserve()`, optionally
/// registered as a KHO subtree.
///
/// Invariant: `ptr` points to `len` bytes returned by `kho_alloc_preserve()`
/// and still preserved; `published` says whether `kho_add_subtree()`
/// succeeded on it.
pub(crate) struct OutgoingBlob {
    ptr: NonNull<u8>,
    len: usize,
    published: bool,
}

// SAFETY: the blob is plain memory owned by this object; KHO calls on it are
// serialised by KHO's own lock.
unsafe impl Send for OutgoingBlob {}
// SAFETY: `&OutgoingBlob` only reads the immutable pointer and length.
unsafe impl Sync for OutgoingBlob {}

impl OutgoingBlob {
    /// Allocates `len` zeroed bytes that KHO will preserve across kexec.
    pub(crate) fn new(len: usize) -> Result<Self> {
        // SAFETY: `kho_alloc_preserve` has no preconditions; it returns a
        // valid pointer or an ERR_PTR.
        let raw = from_err_ptr(unsafe { bindings::kho_alloc_preserve(len) })?;
        let ptr = NonNull::new(raw.cast::<u8>()).ok_or(ENOMEM)?;
        Ok(Self {
            ptr,
            len,
            published: false,
        })
    }

    /// The blob's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of memory the blob keeps preserved: the folio
    /// `kho_alloc_preserve` took for it (a power of two of pages).
    pub(crate) fn preserved_bytes(&self) -> usize {
        self.len.div_ceil(PAGE_SIZE).next_power_of_two() * PAGE_SIZE
    }

    /// The physical address the next kernel finds the blob at.
    pub(crate) fn phys(&self) -> u64 {
        // SAFETY: `ptr` is a direct-map address of memory we own.
        let phys = unsafe { bindings::luo_virt_to_phys(self.ptr.as_ptr().cast()) };
        phys as u64
    }

    /// The blob's bytes, to be written before it is published.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: by the type invariant `ptr` is valid for `len` bytes and
        // `&mut self` gives exclusive access.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Registers the blob as the KHO subtree `name` for the next kernel.
    pub(crate) fn publish(&mut self, name: &CStr) -> Result {
        if self.published {
            return Ok(());
        }
        // SAFETY: `name` is a valid C string; by the type invariant the blob
        // is preserved memory of `len` bytes.
        kernel::error::to_result(unsafe {
            bindings::kho_add_subtree(name.as_char_ptr(), self.ptr.as_ptr().cast(), self.len)
        })?;
        self.published = true;
        Ok(())
    }
}

impl Drop for OutgoingBlob {
    fn drop(&mut self) {
        if self.published {
            // SAFETY: the blob was registered with `kho_add_subtree`.
            unsafe { bindings::kho_remove_subtree(self.ptr.as_ptr().cast()) };
        }
        // SAFETY: by the type invariant the memory came from
        // `kho_alloc_preserve` and is not used after this.
        unsafe { bindings::kho_unpreserve_free(self.ptr.as_ptr().cast()) };
    }
}

/// A KHO subtree handed over by the previous kernel, restored as a folio
/// owned by this kernel.
///
/// Invariant: `folio` is a restored folio of at least `len` bytes whose
/// reference this object holds; `data` is its address.
pub(crate) struct IncomingBlob {
    folio: NonNull<bindings::folio>,
    data: NonNull<u8>,
    len: usize,
}

// SAFETY: the restored folio is owned by this object alone.
unsafe impl Send for IncomingBlob {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for IncomingBlob {}

impl IncomingBlob {
    /// Finds and restores the subtree `name`. `Ok(None)` when this boot
    /// carries no such subtree (a cold boot, or no handover).
    pub(crate) fn take(name: &CStr) -> Result<Option<Self>> {
        let mut phys: bindings::phys_addr_t = 0;
        let mut len: usize = 0;
        // SAFETY: `name` is a valid C string and both out-pointers are valid.
        let ret =
            unsafe { bindings::kho_retrieve_subtree(name.as_char_ptr(), &mut phys, &mut len) };
        if ret == -(bindings::ENOENT as i32) || ret == -(bindings::EOPNOTSUPP as i32) {
            return Ok(None);
        }
        kernel::error::to_result(ret)?;
        let folio = restore_folio(phys as u64)?;
        Self::from_folio(folio, len).map(Some)
    }

    /// Restores memory the previous kernel preserved with
    /// [`OutgoingBlob::new`] and handed over by its physical address
    /// (in a handler's handover data). `EINVAL` if KHO did not preserve a
    /// folio there or it is smaller than `len`.
    pub(crate) fn restore(phys: u64, len: usize) -> Result<Self> {
        Self::from_folio(restore_folio(phys)?, len)
    }

    /// Restores, whole, memory the previous kernel preserved with
    /// [`OutgoingBlob::new`] (its length rounded up to the folio's). `EINVAL`
    /// if KHO did not preserve a folio there.
    pub(crate) fn restore_whole(phys: u64) -> Result<Self> {
        let folio = restore_folio(phys)?;
        // SAFETY: `folio` is a valid folio we hold a reference to.
        let size = unsafe { bindings::luo_folio_size(folio.as_ptr()) };
        Self::from_folio(folio, size)
    }

    /// Takes over a restored `folio`, checking it holds `len` bytes.
    fn from_folio(folio: NonNull<bindings::folio>, len: usize) -> Result<Self> {
        // SAFETY: `folio` is a valid folio we hold a reference to.
        let size = unsafe { bindings::luo_folio_size(folio.as_ptr()) };
        // SAFETY: as above; a restored folio is in the direct map.
        let data = NonNull::new(unsafe { bindings::luo_folio_address(folio.as_ptr()) });
        match data {
            Some(data) if len <= size => Ok(Self {
                folio,
                data: data.cast(),
                len,
            }),
            _ => {
                // SAFETY: we hold the reference the restore gave us.
                unsafe { bindings::luo_folio_put(folio.as_ptr()) };
                Err(EINVAL)
            }
        }
    }

    /// The bytes the previous kernel wrote.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: by the type invariant `data` is valid for `len` bytes for
        // as long as we hold the folio.
        unsafe { core::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl Drop for IncomingBlob {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold one reference to the folio.
        unsafe { bindings::luo_folio_put(self.folio.as_ptr()) };
    }
}

kernel::sync::global_lock! {
    // SAFETY: initialised by `init`, first thing in luo-rs's init.
    //
    // Locking: a leaf, held from checking that an address can be restored
    // to restoring it. Sessions are restored in parallel, and a damaged
    // handover may name one address twice: the second restore must find
    // the first done, never race it (KHO clears its mark unlocked).
    unsafe(uninit) static RESTORING: Mutex<()> = ();
}

/// Initialises the module; called once, before anything is restored.
pub(crate) fn init() {
    // SAFETY: called once, before any restore.
    unsafe { RESTORING.init() };
}

/// [`RESTORING`], held: a loop restoring many folios takes it once per
/// batch ([`RestoredFolio::restore_with`]), not once per folio. The
/// folios restored with it are counted as their zones' managed memory
/// when it is dropped, at once: KHO recomputes every zone's reserves each
/// time it counts.
///
/// # Invariants
///
/// `batch` holds the folios restored under this guard and not counted yet.
pub(crate) struct Restoring {
    batch: bindings::kho_restore_batch,
    _guard: kernel::sync::lock::GlobalGuard<RESTORING>,
}

/// Takes [`RESTORING`]; no other luo-rs lock may be taken while it is held.
pub(crate) fn restoring() -> Restoring {
    // INVARIANT: nothing restored yet.
    Restoring {
        batch: bindings::kho_restore_batch {
            zone: core::ptr::null_mut(),
            nr_pages: 0,
        },
        _guard: RESTORING.lock(),
    }
}

impl Drop for Restoring {
    fn drop(&mut self) {
        // SAFETY: `batch` holds folios restored into it and not counted
        // (type invariant); this counts them, before the lock goes.
        unsafe { bindings::kho_restore_batch_end(&mut self.batch) };
    }
}

/// Restores the folio the previous kernel preserved at `phys`, which a
/// handover names: `EINVAL`, without KHO's warning, if none was preserved
/// there or it was restored already.
fn restore_folio(phys: u64) -> Result<NonNull<bindings::folio>> {
    restore_folio_with(phys, &mut restoring())
}

/// [`restore_folio`] with [`RESTORING`] held by the caller, its pages
/// counted when `held` is dropped.
fn restore_folio_with(phys: u64, held: &mut Restoring) -> Result<NonNull<bindings::folio>> {
    // KHO exists only on 64-bit architectures: no truncation.
    let phys = phys as bindings::phys_addr_t;
    // SAFETY: `kho_restorable_order` only reads the page's KHO metadata.
    if unsafe { bindings::kho_restorable_order(phys) } < 0 {
        return Err(EINVAL);
    }
    // The batch is `held`'s, which counts its pages when dropped.
    let batch = &mut held.batch;
    // SAFETY: `phys` heads preserved memory not restored yet (checked
    // above, under `RESTORING`, held by every restore); KHO checks again.
    let folio = unsafe { bindings::kho_restore_folio_batched(phys, batch) };
    NonNull::new(folio).ok_or(EINVAL)
}

/// Folios of a file preserved for the next kernel, whole (large folios
/// stay large), held as [`Run`]s: a few words for a large memfd written in
/// order, instead of one object per folio. Dropping it unpreserves every
/// folio, then drops its pin.
///
/// # Invariants
///
/// Every folio of every run in `runs` (kept encoded, 16 bytes a run) was
/// pinned by `luo_memfd_pin` and preserved by `kho_preserve_folio`, and
/// this object owns that pin and that preservation. The runs are in index
/// order, and `pages` is the sum of their pages.
pub(crate) struct PreservedRuns {
    runs: KVVec<[u64; 2]>,
    pages: u64,
    /// The runs the handler's format has.
    kind: Runs,
}

impl PreservedRuns {
    /// None yet; runs will be of `kind`.
    pub(crate) fn new(kind: Runs) -> Self {
        // INVARIANT: no run.
        Self {
            runs: KVVec::new(),
            pages: 0,
            kind,
        }
    }

    /// The runs, in index order, as they are handed over.
    pub(crate) fn encoded(&self) -> &[[u64; 2]] {
        &self.runs
    }

    /// The runs, in index order.
    pub(crate) fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        self.runs.iter().map(|w| Run::unpack(*w))
    }

    /// Pages the folios span.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    /// Preserves the pinned `pin` with KHO and takes it over; its index
    /// must lie past every folio held.
    pub(crate) fn push(&mut self, pin: PinnedFolio) -> Result {
        let (phys, index) = (pin.phys(), pin.index());
        let order = pin.nr_pages().trailing_zeros();
        // The run it continues, if any; else room for a new one first:
        // nothing may fail once the folio is preserved. (Called once per
        // folio of a VM's memory: the common case allocates nothing.)
        let mut extended = None;
        if let Some(&words) = self.runs.last() {
            let mut run = Run::unpack(words);
            if run.end() > index {
                return Err(EINVAL);
            }
            if run.extend(phys, index, order, self.kind) {
                extended = Some(run);
            }
        }
        if extended.is_none() {
            self.runs.reserve(1, GFP_KERNEL_ACCOUNT)?;
        }
        // SAFETY: the folio is pinned, so it stays allocated and in place
        // while preserved; the pin is released only after unpreserving.
        kernel::error::to_result(unsafe { bindings::kho_preserve_folio(pin.as_ptr()) })?;
        // INVARIANT: pinned and preserved; the pin is ours from now on,
        // named by the run that covers it (in index order, checked above).
        pin.keep();
        self.pages += 1 << order;
        match (extended, self.runs.last_mut()) {
            (Some(run), Some(words)) => *words = run.encode(),
            // Cannot fail: room was made above.
            _ => {
                let _ = self
                    .runs
                    .push_within_capacity(Run::one(phys, index, order).encode());
            }
        }
        Ok(())
    }

    /// Takes over the folios of `other`, none of which overlaps one held,
    /// keeping index order. On failure `self` is as it was and `other`'s
    /// folios are released (unpreserved and unpinned).
    pub(crate) fn merge(&mut self, mut other: PreservedRuns) -> Result {
        let mut merged =
            KVVec::with_capacity(self.runs.len() + other.runs.len(), GFP_KERNEL_ACCOUNT)?;
        let (mut a, mut b) = (self.runs.iter().peekable(), other.runs.iter().peekable());
        let index = |w: &&[u64; 2]| Run::unpack(**w).index;
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if index(x) < index(y) => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            if let Some(&run) = next {
                // Cannot fail: room was made for every run.
                let _ = merged.push_within_capacity(run);
            }
        }
        // INVARIANT: every run of both is in `merged` once, in order; the
        // pins and preservations move with them, none stays with `other`.
        self.runs = merged;
        self.pages += other.pages;
        other.runs.clear();
        other.pages = 0;
        Ok(())
    }
}

impl Drop for PreservedRuns {
    fn drop(&mut self) {
        let mut released: u32 = 0;
        for run in self.runs() {
            for (phys, _) in run.folios() {
                // SAFETY: by the type invariant the folio at `phys` is
                // preserved and pinned, both ours, and no other run names it.
                unsafe { bindings::luo_kho_release_pinned(phys as bindings::phys_addr_t) };
                released = released.wrapping_add(1);
                if released % 64 == 0 {
                    crate::sched::cond_resched();
                }
            }
        }
    }
}

/// A folio the previous kernel preserved, restored by this one.
///
/// Invariant: `self.0` is a folio KHO restored (`restore_folio_with`), whose
/// reference this object holds.
pub(crate) struct RestoredFolio(NonNull<bindings::folio>);

// SAFETY: the restored folio is owned by this object alone.
unsafe impl Send for RestoredFolio {}

impl RestoredFolio {
    /// Restores the folio preserved at `phys`, in a batch that holds
    /// [`RESTORING`]: `EINVAL` if KHO did not preserve one there.
    pub(crate) fn restore_with(phys: u64, held: &mut Restoring) -> Result<Self> {
        restore_folio_with(phys, held).map(Self)
    }

    /// Pages it spans.
    pub(crate) fn nr_pages(&self) -> u64 {
        // SAFETY: we hold a reference to the folio.
        unsafe { bindings::luo_folio_nr_pages(self.0.as_ptr()) as u64 }
    }

    /// The folio, for a callee that may consume the reference (then
    /// [`RestoredFolio::consumed`]) or leave it.
    pub(crate) fn as_ptr(&self) -> *mut bindings::folio {
        self.0.as_ptr()
    }

    /// A callee took over the reference.
    pub(crate) fn consumed(self) {
        core::mem::forget(self);
    }
}

impl Drop for RestoredFolio {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold one reference.
        unsafe { bindings::luo_folio_put(self.0.as_ptr()) };
    }
}

/// Bytes of a KHO vmalloc descriptor, as stored in a handler's header.
pub(crate) const VMALLOC_DESC_LEN: usize = core::mem::size_of::<bindings::kho_vmalloc>();

/// An array of `u64` in vmalloc memory preserved for the next kernel,
/// which finds it through [`PreservedWords::descriptor`].
pub(crate) struct PreservedWords {
    desc: bindings::kho_vmalloc,
    words: VVec<u64>,
}

// SAFETY: the array and descriptor are owned by this object alone.
unsafe impl Send for PreservedWords {}
// SAFETY: shared access only reads the descriptor.
unsafe impl Sync for PreservedWords {}

impl PreservedWords {
    /// Preserves `words` (non-empty) with KHO.
    pub(crate) fn new(mut words: VVec<u64>) -> Result<Self> {
        if words.is_empty() {
            return Err(EINVAL);
        }
        // SAFETY: all-zero is a valid `kho_vmalloc` (plain integers and a
        // serialized pointer).
        let mut desc: bindings::kho_vmalloc = unsafe { core::mem::zeroed() };
        // SAFETY: `words` is a live vmalloc allocation (`VVec`), kept
        // unchanged and alive until the preservation is dropped.
        kernel::error::to_result(unsafe {
            bindings::kho_preserve_vmalloc(words.as_mut_ptr().cast(), &mut desc)
        })?;
        Ok(Self { desc, words })
    }

    /// Bytes of memory the array keeps preserved: its pages and the
    /// pages of the chunks that list them (`kho_vmalloc_chunk`).
    pub(crate) fn preserved_bytes(&self) -> usize {
        use core::mem::size_of;
        let per_chunk = (size_of::<bindings::kho_vmalloc_chunk>()
            - size_of::<bindings::kho_vmalloc_hdr>())
            / size_of::<u64>();
        let pages = (self.words.capacity() * size_of::<u64>()).div_ceil(PAGE_SIZE);
        (pages + pages.div_ceil(per_chunk)) * PAGE_SIZE
    }

    /// The descriptor the next kernel restores the array with.
    pub(crate) fn descriptor(&self) -> [u8; VMALLOC_DESC_LEN] {
        // SAFETY: `kho_vmalloc` is plain old data of that size.
        unsafe { core::mem::transmute_copy(&self.desc) }
    }
}

impl Drop for PreservedWords {
    fn drop(&mut self) {
        // SAFETY: `desc` describes the preservation made by `new`.
        unsafe { bindings::kho_unpreserve_vmalloc(&mut self.desc) };
    }
}

/// An array of `u64` the previous kernel preserved with
/// [`PreservedWords`], restored by this one in place (its pages, not a
/// mapping) and freed when dropped. Restoring allocates nothing, so a
/// caller short of memory can always restore, read and free it.
///
/// # Invariants
///
/// Every chunk and block of `desc` is restored (`luo_kho_words_restore`
/// succeeded) and owned by this object; they hold at least `len` words.
pub(crate) struct RestoredWords {
    desc: bindings::kho_vmalloc,
    len: usize,
}

// SAFETY: the restored pages are owned by this object alone; they may be
// freed from any thread (a parked memfd rebuild is dropped by whoever
// finishes it).
unsafe impl Send for RestoredWords {}

impl RestoredWords {
    /// Restores the array of `desc`; `EINVAL` if it is not a valid
    /// preservation or holds fewer than `len` words.
    pub(crate) fn restore(desc: &[u8; VMALLOC_DESC_LEN], len: usize) -> Result<Self> {
        // SAFETY: any bytes are a valid `kho_vmalloc` value.
        let desc: bindings::kho_vmalloc = unsafe { core::mem::transmute_copy(desc) };
        let bytes = len.checked_mul(8).ok_or(EINVAL)?;
        if (desc.total_pages as usize).saturating_mul(PAGE_SIZE) < bytes {
            return Err(EINVAL);
        }
        let restoring = RESTORING.lock();
        // SAFETY: the helper checks every chunk and block of `desc` was
        // preserved and not yet restored before it reads or restores it,
        // under `RESTORING`, as every restore.
        kernel::error::to_result(unsafe { bindings::luo_kho_words_restore(&desc) })?;
        drop(restoring);
        // INVARIANT: restored above; `total_pages` covers `len` words.
        Ok(Self { desc, len })
    }

    /// The words, in pairs (`len` is even for every user of pairs).
    pub(crate) fn pairs(&self) -> Pairs<'_> {
        // SAFETY: all-zero is a valid cursor (no chunk).
        let mut cursor: bindings::luo_kho_words_cursor = unsafe { core::mem::zeroed() };
        // SAFETY: `desc` is restored (type invariant) and outlives `Pairs`.
        unsafe { bindings::luo_kho_words_start(&self.desc, &mut cursor) };
        Pairs {
            words: self,
            cursor,
            block: &[],
            left: self.len / 2,
        }
    }
}

impl Drop for RestoredWords {
    fn drop(&mut self) {
        // SAFETY: by the type invariant every page of `desc` is restored
        // and ours; no `Pairs` outlives `self`.
        unsafe { bindings::luo_kho_words_free(&self.desc) };
    }
}

/// The pairs of a [`RestoredWords`], in order.
pub(crate) struct Pairs<'a> {
    words: &'a RestoredWords,
    cursor: bindings::luo_kho_words_cursor,
    /// What is left of the block being read.
    block: &'a [u64],
    /// Pairs still to yield.
    left: usize,
}

impl Iterator for Pairs<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        if self.left == 0 {
            return None;
        }
        if self.block.len() < 2 {
            // SAFETY: the cursor walks the restored array `words` borrows.
            let words = unsafe { bindings::luo_kho_words_next(&mut self.cursor) };
            if words.is_null() {
                return None;
            }
            let len = (PAGE_SIZE << self.words.desc.order) / 8;
            // SAFETY: a block is `PAGE_SIZE << order` bytes of restored
            // pages in the direct map, alive while `words` is.
            self.block = unsafe { core::slice::from_raw_parts(words, len) };
        }
        let (pair, rest) = self.block.split_first_chunk::<2>()?;
        self.block = rest;
        self.left -= 1;
        Some((pair[0], pair[1]))
    }
}
