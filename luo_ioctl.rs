// SPDX-License-Identifier: GPL-2.0

//! The /dev/liveupdate character device and its ioctls.
//!
//! open() creates a [`Session`]; release() drops it. Each ioctl checks the
//! caller's privilege first (SET_EVENT needs `CAP_SYS_ADMIN`: `EPERM`),
//! reads its struct with `user_struct::read` (size, padding and trailing
//! bytes checked there), acts, and writes the answer back. Unknown
//! commands get `ENOTTY`.

use crate::capable;
use crate::luo_session::Session;
use crate::luo_state::Event;
use crate::user_struct::{self, GetState, SetEvent};
use kernel::{
    fs::File,
    ioctl::_IO,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    uapi,
};

const GET_STATE: u32 = _IO(uapi::LIVEUPDATE_IOCTL_TYPE, uapi::LIVEUPDATE_CMD_GET_STATE);
const SET_EVENT: u32 = _IO(uapi::LIVEUPDATE_IOCTL_TYPE, uapi::LIVEUPDATE_CMD_SET_EVENT);

/// The state behind one open file of /dev/liveupdate.
pub(crate) struct LuoFile {
    session: Session,
}

impl LuoFile {
    fn get_state(arg: usize) -> Result<isize> {
        let req = user_struct::read::<GetState>(arg)?;
        let answer = GetState(uapi::liveupdate_ioctl_get_state {
            size: req.value.0.size,
            state: crate::global_state() as u32,
        });
        user_struct::write(arg, &req, &answer)?;
        Ok(0)
    }

    fn set_event(arg: usize) -> Result<isize> {
        if !capable::sys_admin() {
            return Err(EPERM);
        }
        let req = user_struct::read::<SetEvent>(arg)?;
        let event = Event::from_uapi(req.value.0.event).ok_or(EOPNOTSUPP)?;
        crate::set_event(event)?;
        Ok(0)
    }
}

#[vtable]
impl MiscDevice for LuoFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(
            LuoFile {
                session: Session::new(),
            },
            GFP_KERNEL,
        )?)
    }

    fn release(me: KBox<Self>, _file: &File) {
        pr_debug!("session {} closed\n", me.session.id());
    }

    fn ioctl(_me: &LuoFile, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            GET_STATE => Self::get_state(arg),
            SET_EVENT => Self::set_event(arg),
            _ => Err(ENOTTY),
        }
    }
}
