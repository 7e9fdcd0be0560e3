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
//! starting with `stall:retrieve` makes retrieve() wait for the test
//! control's `release-retrieves` (`test_control`).

use crate::anon_file;
use crate::kho::{IncomingBlob, OutgoingBlob};
use crate::luo_file::{FileHandler, Preserved};
use kernel::{
    bindings,
    ffi::{c_char, c_int},
    fs::{File, Kiocb},
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    str::CStr,
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
/// Payload prefix that makes retrieve() wait for the test control.
const STALL_RETRIEVE: &[u8] = b"stall:retrieve";

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
    fn prepare(&mut self) -> Result<u64> {
        self.injected(FAIL_PREPARE)?;
        self.page = Some(OutgoingBlob::new(PAGE)?);
        self.copy()
    }

    fn freeze(&mut self) -> Result<u64> {
        self.injected(FAIL_FREEZE)?;
        self.copy()
    }

    fn cancel(&mut self) {
        // Dropping the page unpreserves and frees it.
        self.page = None;
    }
}

/// # Safety
///
/// `file` is a retrieved test file made by [`TestHandler::retrieve`].
unsafe extern "C" fn retrieved_read(
    file: *mut bindings::file,
    buf: *mut c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: `private_data` is the `KBox<KVec<u8>>` set at creation, freed
    // only at release.
    let payload = unsafe { <KBox<KVec<u8>> as ForeignOwnable>::borrow((*file).private_data) };
    // SAFETY: `buf`/`count` come from read(2); `ppos` is the file position;
    // the payload is valid for its length.
    unsafe {
        bindings::simple_read_from_buffer(
            buf.cast(),
            count,
            ppos,
            payload.as_ptr().cast(),
            payload.len(),
        )
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
    read: Some(retrieved_read),
    release: Some(retrieved_release),
    ..pin_init::zeroed()
};

/// The test file handler.
pub(crate) struct TestHandler;

/// The one instance, listed in `luo_file`.
pub(crate) static HANDLER: TestHandler = TestHandler;

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

    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>> {
        Ok(KBox::new(
            PreservedTest { file, page: None },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    fn retrieve(&self, data: u64, _depends: &[ARef<File>]) -> Result<ARef<File>> {
        // The page is freed when `page` goes out of scope.
        let page = IncomingBlob::restore(data, PAGE)?;
        let payload = payload_of(&page)?;
        if payload.starts_with(STALL_RETRIEVE) {
            crate::test_control::stall_retrieve()?;
        }
        const FOPS: &bindings::file_operations = &RETRIEVED_FOPS;
        anon_file::new(c"[liveupdate-test]", FOPS, KBox::new(payload, GFP_KERNEL)?)
    }

    fn finish(&self, data: u64, retrieved: bool) {
        if retrieved {
            // retrieve() restored the page and freed it.
            return;
        }
        // A failed retrieve() freed the page already (the test handler
        // keeps nothing for another attempt): then there is nothing left.
        drop(IncomingBlob::restore(data, PAGE));
    }
}
