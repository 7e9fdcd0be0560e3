// SPDX-License-Identifier: GPL-2.0

//! The test file handler (`CONFIG_LIVEUPDATE_RS_TEST`): small files whose
//! payload crosses a live update through the handler callbacks, so the
//! core is proven before real handlers.
//!
//! A test file is an open() of /dev/liveupdate-test: write() replaces its
//! payload (at most [`PAYLOAD_MAX`] bytes, `EFBIG` beyond), read() returns
//! it. PREPARE copies the payload into a page preserved with KHO, FREEZE
//! copies it again (so writes in between are kept), CANCEL frees the page.
//! In the new kernel, retrieve() reads and frees the page and returns a
//! read-only file with the payload (such a file cannot be preserved
//! again); finish() frees the page of a file nobody retrieved.
//!
//! A payload starting with `fail:prepare` or `fail:freeze` makes that step
//! fail with `EIO`, so the tests can check that luo-rs rolls back; one
//! starting with `fail:retrieve` makes retrieve() in the new kernel fail
//! with `EIO` (the page freed: every later attempt gets `EINVAL`); one
//! starting with `stall:retrieve` makes retrieve() wait for the test
//! control's `release-retrieves` (`test_control`).
//!
//! A payload `needs:<fd>[,<fd>...]` makes the file depend on the files
//! behind those fds of the caller of PRESERVE_FD (test files, memfds):
//! the dependency API on real files. In the new kernel the retrieved
//! file's content is its payload followed, for each file it depends on,
//! by a line `dep ino=<inode number> <its first bytes>`, read from the
//! file retrieve() was given.

use crate::anon_file;
use crate::kho::{IncomingBlob, OutgoingBlob};
use crate::luo_file::{Dependency, FileHandler, HandedOver, Preserved};
use kernel::{
    bindings,
    ffi::c_int,
    fs::{File, Kiocb, LocalFile},
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    str::{CStr, CString},
    sync::{aref::ARef, Mutex, SetOnce},
    types::ForeignOwnable,
};

/// Page preserved per file: a header, then the payload.
const PAGE: usize = 4096;
const HEADER: usize = 8;
/// Largest payload.
pub(crate) const PAYLOAD_MAX: usize = PAGE - HEADER;
/// "LUOT", little-endian, at the start of the page.
const MAGIC: u32 = 0x544f_554c;
/// Payload prefixes that make prepare() or freeze() fail with `EIO`, so
/// the tests can check rollback.
const FAIL_PREPARE: &[u8] = b"fail:prepare";
const FAIL_FREEZE: &[u8] = b"fail:freeze";
/// Payload prefix that makes retrieve() fail with `EIO`.
const FAIL_RETRIEVE: &[u8] = b"fail:retrieve";
/// Payload prefix that makes retrieve() wait for the test control.
const STALL_RETRIEVE: &[u8] = b"stall:retrieve";
/// Payload prefix of a file that depends on others, by fd.
const NEEDS: &[u8] = b"needs:";
/// Most files a test file depends on.
const MAX_NEEDS: usize = 4;
/// Bytes of each dependency the retrieved file shows.
const DEP_SHOWN: usize = 16;

/// One open of /dev/liveupdate-test.
#[pin_data]
pub(crate) struct TestFile {
    #[pin]
    payload: Mutex<KVec<u8>>,
}

#[vtable]
impl MiscDevice for TestFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        KBox::try_pin_init(
            try_pin_init!(TestFile {
                payload <- new_mutex!(KVec::new()),
            }),
            GFP_KERNEL,
        )
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let me = kiocb.file();
        let payload = me.payload.lock();
        iov.simple_read_from_buffer(kiocb.ki_pos_mut(), &payload)
    }

    fn write_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        if iov.len() > PAYLOAD_MAX {
            return Err(EFBIG);
        }
        let me = kiocb.file();
        let mut payload = me.payload.lock();
        payload.clear();
        let len = iov.copy_from_iter_vec(&mut payload, GFP_KERNEL)?;
        *kiocb.ki_pos_mut() = 0;
        Ok(len)
    }
}

/// The `file_operations` of /dev/liveupdate-test, to recognise its files.
static DEVICE_FOPS: SetOnce<usize> = SetOnce::new();

/// Registers /dev/liveupdate-test.
pub(crate) fn register_device() -> Result<Pin<KBox<MiscDeviceRegistration<TestFile>>>> {
    let reg = KBox::pin_init(
        MiscDeviceRegistration::register(MiscDeviceOptions {
            name: c"liveupdate-test",
        }),
        GFP_KERNEL,
    )?;
    // SAFETY: the registration holds a valid, registered `struct miscdevice`.
    let fops = unsafe { (*reg.as_raw()).fops };
    DEVICE_FOPS.populate(fops as usize);
    Ok(reg)
}

/// A preserved test file.
struct PreservedTest {
    file: ARef<File>,
    page: Option<OutgoingBlob>,
    /// The files its payload said it needs, held so that their addresses,
    /// which `depends` names them by, stay theirs.
    _needs: KVec<ARef<File>>,
    depends: KVec<Dependency>,
}

/// The state behind a file of /dev/liveupdate-test.
fn test_file(file: &File) -> Pin<&TestFile> {
    // SAFETY: `can_preserve` accepted only files of /dev/liveupdate-test,
    // whose `private_data` is the `Pin<KBox<TestFile>>` its open() made; it
    // is freed at release, which cannot run while the caller holds `file`.
    unsafe { <Pin<KBox<TestFile>> as ForeignOwnable>::borrow((*file.as_ptr()).private_data) }
}

impl PreservedTest {
    /// Copies the file's current payload into the preserved page.
    fn copy(&mut self) -> Result<u64> {
        let page = self.page.as_mut().ok_or(EINVAL)?;
        let payload = test_file(&self.file).get_ref().payload.lock();
        let out = page.as_mut_slice();
        out[..4].copy_from_slice(&MAGIC.to_le_bytes());
        out[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        out[HEADER..HEADER + payload.len()].copy_from_slice(&payload);
        Ok(page.phys())
    }
}

impl PreservedTest {
    /// Fault injection for the tests: a payload starting with `prefix`
    /// makes the step fail with `EIO`.
    fn injected(&self, prefix: &[u8]) -> Result {
        if test_file(&self.file).payload.lock().starts_with(prefix) {
            return Err(EIO);
        }
        Ok(())
    }
}

impl Preserved for PreservedTest {
    fn dependencies(&self) -> &[Dependency] {
        &self.depends
    }

    fn prepare(&mut self) -> Result<u64> {
        self.injected(FAIL_PREPARE)?;
        self.page = Some(OutgoingBlob::new(PAGE)?);
        self.copy()
    }

    fn freeze(&mut self) -> Result<u64> {
        self.injected(FAIL_FREEZE)?;
        self.copy()
    }

    fn record_bytes(&self) -> usize {
        self.page.as_ref().map_or(0, OutgoingBlob::preserved_bytes)
    }

    fn cancel(&mut self) {
        // Dropping the page unpreserves and frees it.
        self.page = None;
    }
}

/// A read of a retrieved test file (a `read_iter`, so that the kernel can
/// read it too: a file that needs it shows its bytes).
///
/// # Safety
///
/// `iocb` is a valid read of a retrieved test file made by
/// [`TestHandler::retrieve`], into the valid destination `to`.
unsafe extern "C" fn retrieved_read_iter(
    iocb: *mut bindings::kiocb,
    to: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: the file's `private_data` is the `KBox<KVec<u8>>` set at
    // creation, freed only at release, which cannot run during a read.
    let payload =
        unsafe { <KBox<KVec<u8>> as ForeignOwnable>::borrow((*(*iocb).ki_filp).private_data) };
    // SAFETY: `to` is this read's destination, valid for the call.
    let to = unsafe { IovIterDest::from_raw(to) };
    // SAFETY: `ki_pos` is this read's position, the call's to move.
    let pos = unsafe { &mut (*iocb).ki_pos };
    match to.simple_read_from_buffer(pos, payload) {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// `file` is a retrieved test file being released.
unsafe extern "C" fn retrieved_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: release owns `private_data`, set at creation.
    drop(unsafe { <KBox<KVec<u8>> as ForeignOwnable>::from_foreign((*file).private_data) });
    0
}

const RETRIEVED_FOPS: bindings::file_operations = bindings::file_operations {
    read_iter: Some(retrieved_read_iter),
    release: Some(retrieved_release),
    ..pin_init::zeroed()
};

/// The test file handler.
pub(crate) struct TestHandler;

/// The one instance, listed in `luo_file`.
pub(crate) static HANDLER: TestHandler = TestHandler;

/// The files a payload `needs:<fd>,...` names, in the caller's fd table,
/// and how the handlers that preserve them know them; none for another
/// payload. `EBADF` for a bad fd, `EINVAL` for a malformed list or a file
/// no handler preserves, `E2BIG` beyond [`MAX_NEEDS`].
fn needs_of(payload: &[u8]) -> Result<(KVec<ARef<File>>, KVec<Dependency>)> {
    let (mut needs, mut depends) = (KVec::new(), KVec::new());
    let Some(list) = payload.strip_prefix(NEEDS) else {
        return Ok((needs, depends));
    };
    let list = core::str::from_utf8(list).map_err(|_| EINVAL)?;
    for fd in list.trim_end().split(',') {
        if needs.len() == MAX_NEEDS {
            return Err(E2BIG);
        }
        let fd: u32 = fd.parse().map_err(|_| EINVAL)?;
        let file = LocalFile::fget(fd).map_err(|_| EBADF)?;
        // SAFETY: the file is only held (as `ARef<File>`) and read with
        // kernel_read(), never used with fdget_pos().
        let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
        let handler = crate::luo_file::compatible_of(&file).ok_or(EINVAL)?;
        depends.push(Dependency::on_file(handler, &file), GFP_KERNEL)?;
        needs.push(file, GFP_KERNEL)?;
    }
    Ok((needs, depends))
}

/// Appends to `out` the line a retrieved file shows for the file `dep` it
/// depends on: its inode number and first bytes.
fn show_dependency(out: &mut KVec<u8>, dep: &File) -> Result {
    // SAFETY: `dep` is a valid file, whose inode lives as long as it.
    let ino = unsafe { (*(*dep.as_ptr()).f_inode).i_ino };
    let line = CString::try_from_fmt(fmt!("\ndep ino={} ", ino))?;
    out.extend_from_slice(line.to_bytes(), GFP_KERNEL)?;
    let mut bytes = [0u8; DEP_SHOWN];
    let mut pos: bindings::loff_t = 0;
    // SAFETY: `dep` is a valid file, `bytes` is writable for its length,
    // `pos` is a valid position for the call.
    let read = unsafe {
        bindings::kernel_read(
            dep.as_ptr(),
            bytes.as_mut_ptr().cast(),
            bytes.len(),
            &mut pos,
        )
    };
    let read = usize::try_from(read)
        .map_err(|_| Error::from_errno(i32::try_from(read).unwrap_or(EIO.to_errno())))?;
    out.extend_from_slice(bytes.get(..read).ok_or(EIO)?, GFP_KERNEL)?;
    Ok(())
}

/// Reads the payload out of a restored page.
fn payload_of(page: &IncomingBlob) -> Result<KVec<u8>> {
    let bytes = page.as_slice();
    let magic = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if magic != MAGIC || len > PAYLOAD_MAX {
        return Err(EINVAL);
    }
    let mut payload = KVec::with_capacity(len, GFP_KERNEL)?;
    payload.extend_from_slice(&bytes[HEADER..HEADER + len], GFP_KERNEL)?;
    Ok(payload)
}

impl FileHandler for TestHandler {
    fn compatible(&self) -> &'static CStr {
        c"luo-rs,test-v1"
    }

    fn can_preserve(&self, file: &File) -> bool {
        // SAFETY: `file` is a valid file; `f_op` is set for its lifetime.
        let fops = unsafe { (*file.as_ptr()).f_op } as usize;
        DEVICE_FOPS.as_ref() == Some(&fops)
    }

    fn max_dependencies(&self) -> usize {
        MAX_NEEDS
    }

    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>> {
        // A copy: the payload lock stays a leaf.
        let payload = {
            let test = test_file(&file);
            let payload = test.payload.lock();
            let mut copy = KVec::new();
            if payload.starts_with(NEEDS) {
                copy.extend_from_slice(&payload, GFP_KERNEL)?;
            }
            copy
        };
        let (needs, depends) = needs_of(&payload)?;
        Ok(KBox::new(
            PreservedTest {
                file,
                page: None,
                _needs: needs,
                depends,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    fn retrieve(&self, file: &HandedOver<'_>, depends: &[ARef<File>]) -> Result<ARef<File>> {
        // The page is freed when `page` goes out of scope.
        let page = IncomingBlob::restore(file.data_alone()?, PAGE)?;
        let mut payload = payload_of(&page)?;
        if payload.starts_with(FAIL_RETRIEVE) {
            return Err(EIO);
        }
        if payload.starts_with(STALL_RETRIEVE) {
            crate::test_control::stall_retrieve()?;
        }
        for dep in depends {
            show_dependency(&mut payload, dep)?;
        }
        const FOPS: &bindings::file_operations = &RETRIEVED_FOPS;
        anon_file::new(c"[liveupdate-test]", FOPS, KBox::new(payload, GFP_KERNEL)?)
    }

    fn finish(&self, file: &HandedOver<'_>, retrieved: bool) {
        if retrieved {
            // retrieve() restored the page and freed it.
            return;
        }
        // A failed retrieve() freed the page already (the test handler
        // keeps nothing for another attempt): then there is nothing left.
        if let Ok(data) = file.data_alone() {
            drop(IncomingBlob::restore(data, PAGE));
        }
    }
}
