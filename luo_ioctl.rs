// SPDX-License-Identifier: GPL-2.0

//! The /dev/liveupdate character device, session files, and their ioctls.
//!
//! Every open() of /dev/liveupdate creates a [`Session`]; CREATE_SESSION
//! creates one more as a new fd (see `session_file`). Both kinds of file
//! hold a [`LuoFile`] and share [`LuoFile::dispatch`]: session commands
//! work on both, device commands (GET_STATE, SET_EVENT, CREATE_SESSION)
//! only on /dev/liveupdate fds, `ENOTTY` elsewhere.
//!
//! Each ioctl checks the caller's privilege first (SET_EVENT needs
//! `CAP_SYS_ADMIN`: `EPERM`), reads its struct with `user_struct::read`
//! (size, padding and trailing bytes checked there), checks the state with
//! `luo_state::check_op`, acts, and writes the answer back.

use crate::capable;
use crate::luo_session::{Owner, Session};
use crate::luo_state::{self, Event, Op, Origin, Refusal};
use crate::luo_uapi::{Name, NameError};
use crate::session_file;
use crate::user_struct::{
    self, CreateSession, FdAnswer, GetName, GetState, PreserveFd, RetrieveFd, RetrieveSession,
    SessionFinish, SessionGetState, SetEvent, SetName, UnpreserveFd, UserStruct,
};
use kernel::{
    bindings,
    fs::{
        file::{FileDescriptorReservation, LocalFile},
        File,
    },
    ioctl::_IO,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    sync::{aref::ARef, Arc},
    task::Kuid,
    uapi,
};

const fn cmd(nr: u32) -> u32 {
    _IO(uapi::LIVEUPDATE_IOCTL_TYPE, nr)
}

const CREATE_SESSION: u32 = cmd(uapi::LIVEUPDATE_CMD_CREATE_SESSION);
const RETRIEVE_SESSION: u32 = cmd(uapi::LIVEUPDATE_CMD_RETRIEVE_SESSION);
const SESSION_FINISH: u32 = cmd(uapi::LIVEUPDATE_CMD_SESSION_FINISH);
const SESSION_PRESERVE_FD: u32 = cmd(uapi::LIVEUPDATE_CMD_SESSION_PRESERVE_FD);
const SESSION_UNPRESERVE_FD: u32 = cmd(uapi::LIVEUPDATE_CMD_SESSION_UNPRESERVE_FD);
const SESSION_RETRIEVE_FD: u32 = cmd(uapi::LIVEUPDATE_CMD_SESSION_RETRIEVE_FD);
const GET_STATE: u32 = cmd(uapi::LIVEUPDATE_CMD_GET_STATE);
const SET_EVENT: u32 = cmd(uapi::LIVEUPDATE_CMD_SET_EVENT);
const SESSION_GET_NAME: u32 = cmd(uapi::LIVEUPDATE_CMD_SESSION_GET_NAME);
const SESSION_SET_NAME: u32 = cmd(uapi::LIVEUPDATE_CMD_SESSION_SET_NAME);
const SESSION_GET_STATE: u32 = cmd(uapi::LIVEUPDATE_CMD_SESSION_GET_STATE);

/// What one open file (of /dev/liveupdate, or a session file) holds.
pub(crate) struct LuoFile {
    session: Arc<Session>,
    /// Whether this is a /dev/liveupdate fd (device commands allowed).
    device: bool,
}

impl Drop for LuoFile {
    /// The last reference to the file is gone (or it was never installed):
    /// an outgoing session ends, an incoming one is no longer claimed.
    /// Never runs with the core lock held (see `install`).
    fn drop(&mut self) {
        match self.session.origin() {
            Origin::Outgoing => crate::close_outgoing(&self.session),
            Origin::Incoming => self.session.unclaim(),
        }
        pr_debug!("session {} released\n", self.session.id());
    }
}

fn name_error(_: NameError) -> Error {
    EINVAL
}

impl LuoFile {
    /// Runs one ioctl on either kind of file.
    pub(crate) fn dispatch(me: &LuoFile, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            GET_STATE if me.device => Self::get_state(arg),
            SET_EVENT if me.device => Self::set_event(arg),
            CREATE_SESSION if me.device => Self::create_session(arg),
            RETRIEVE_SESSION if me.device => Self::retrieve_session(arg),
            SESSION_FINISH => me.finish(arg),
            SESSION_PRESERVE_FD => me.preserve_fd(arg),
            SESSION_UNPRESERVE_FD => me.unpreserve_fd(arg),
            SESSION_RETRIEVE_FD => me.retrieve_fd(arg),
            SESSION_GET_NAME => me.get_name(arg),
            SESSION_SET_NAME => me.set_name(arg),
            SESSION_GET_STATE => me.session_get_state(arg),
            _ => Err(ENOTTY),
        }
    }

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

    /// Installs `file` as a new fd and writes the fd into the struct at
    /// `arg`. If the answer cannot be written, dropping the file gives
    /// everything back, and so does dropping the reservation.
    fn install<T: UserStruct + FdAnswer>(
        arg: usize,
        req: &user_struct::Incoming<T>,
        reservation: FileDescriptorReservation,
        file: ARef<File>,
    ) -> Result<isize> {
        let answer = req.value.with_fd(reservation.reserved_fd() as i32);
        user_struct::write(arg, req, &answer)?;
        reservation.fd_install(file);
        Ok(0)
    }

    /// A session file for `session`. Called without the core lock: if it
    /// fails, dropping the `LuoFile` releases the session, which takes it.
    fn session_file(session: Arc<Session>) -> Result<ARef<File>> {
        let name = session.name();
        session_file::new(
            KBox::new(
                LuoFile {
                    session,
                    device: false,
                },
                GFP_KERNEL_ACCOUNT,
            )?,
            name,
        )
    }

    fn create_session(arg: usize) -> Result<isize> {
        let req = user_struct::read::<CreateSession>(arg)?;
        let name = Name::parse(&req.value.0.name).map_err(name_error)?;
        let reservation = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
        let session = {
            // Hold the state steady: no PREPARE while the session is made.
            let core = crate::core();
            luo_state::check_op(core.state(), Op::CreateSession, None)?;
            Session::create(name)?
        };
        Self::install(arg, &req, reservation, Self::session_file(session)?)
    }

    fn retrieve_session(arg: usize) -> Result<isize> {
        let req = user_struct::read::<RetrieveSession>(arg)?;
        let name = match Name::parse(&req.value.0.name) {
            Ok(name) => name,
            // No unnamed session is handed over: as upstream, ENOENT.
            Err(NameError::Empty) => return Err(ENOENT),
            Err(e) => return Err(name_error(e)),
        };
        let reservation = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
        let session = {
            let core = crate::core();
            // Outside UPDATED there is no incoming session to find.
            luo_state::check_op(core.state(), Op::RetrieveSession, None).map_err(|_| ENOENT)?;
            Session::claim(&name, Kuid::current_euid(), capable::admin)?
        };
        Self::install(arg, &req, reservation, Self::session_file(session)?)
    }

    fn preserve_fd(&self, arg: usize) -> Result<isize> {
        let req = user_struct::read::<PreserveFd>(arg)?;
        let fd = u32::try_from(req.value.0.fd).map_err(|_| EBADF)?;
        let file = LocalFile::fget(fd).map_err(|_| EBADF)?;
        // SAFETY: luo-rs never calls fdget_pos() on preserved files.
        let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
        let token = req.value.0.token;
        let origin = Some(self.session.origin());
        let with = {
            // What would be refused is refused first, before any work.
            let core = crate::core();
            luo_state::check_op(core.state(), Op::PreserveFd, origin)?;
            self.session.may_preserve(token)?;
            let with = crate::luo_file::handler_for(&file)?;
            self.session.may_add(&file, with.handler())?;
            with
        };
        // With no luo-rs lock held: the handler may wait for the file (a
        // memfd's writer) and pin much memory, and nobody else's call must
        // wait with it.
        let mut state = Some(with.handler().preserve(file.clone())?);
        let added = {
            // Checked again: the state may have moved meanwhile.
            let core = crate::core();
            luo_state::check_op(core.state(), Op::PreserveFd, origin)
                .map_err(Error::from)
                .and_then(|()| {
                    self.session
                        .preserve(token, file, with.handler(), &mut state)
                })
        };
        // A refused file's state goes here, with no lock held.
        drop(state);
        added?;
        Ok(0)
    }

    fn unpreserve_fd(&self, arg: usize) -> Result<isize> {
        let req = user_struct::read::<UnpreserveFd>(arg)?;
        if req.value.0.reserved != 0 {
            return Err(EINVAL);
        }
        let core = crate::core();
        luo_state::check_op(core.state(), Op::UnpreserveFd, Some(self.session.origin()))?;
        self.session.unpreserve(req.value.0.token)?;
        Ok(0)
    }

    fn retrieve_fd(&self, arg: usize) -> Result<isize> {
        let req = user_struct::read::<RetrieveFd>(arg)?;
        let reservation = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
        let origin = self.session.origin();
        {
            let core = crate::core();
            luo_state::check_op(core.state(), Op::RetrieveFd, Some(origin)).map_err(|r| {
                match (origin, r) {
                    // Outside UPDATED an incoming session was finished (a
                    // global FINISH ends them all): its files are gone.
                    (Origin::Incoming, Refusal::Busy) => ENOENT,
                    (_, r) => Error::from(r),
                }
            })?;
        }
        // Without the core lock: a large restore in one session holds up
        // no other session's. A FINISH meanwhile leaves nothing to
        // retrieve (ENOENT, as above).
        let file = self.session.retrieve(req.value.0.token)?;
        Self::install(arg, &req, reservation, file)
    }

    fn finish(&self, arg: usize) -> Result<isize> {
        let req = user_struct::read::<SessionFinish>(arg)?;
        if req.value.0.reserved != 0 {
            return Err(EINVAL);
        }
        crate::finish_session(&self.session)?;
        Ok(0)
    }

    fn session_get_state(&self, arg: usize) -> Result<isize> {
        let req = user_struct::read::<SessionGetState>(arg)?;
        let (state, nr_files) = crate::session_state(&self.session);
        let answer = SessionGetState(uapi::liveupdate_session_get_state {
            size: req.value.0.size,
            state,
            nr_files,
            reserved: 0,
        });
        user_struct::write(arg, &req, &answer)?;
        Ok(0)
    }

    fn get_name(&self, arg: usize) -> Result<isize> {
        let req = user_struct::read::<GetName>(arg)?;
        if req.value.0.reserved != 0 {
            return Err(EINVAL);
        }
        let mut answer = req.value.0;
        answer.name = self.session.name().to_field();
        user_struct::write(arg, &req, &GetName(answer))?;
        Ok(0)
    }

    fn set_name(&self, arg: usize) -> Result<isize> {
        let req = user_struct::read::<SetName>(arg)?;
        if req.value.0.reserved != 0 {
            return Err(EINVAL);
        }
        let name = Name::parse(&req.value.0.name).map_err(name_error)?;
        let core = crate::core();
        luo_state::check_op(core.state(), Op::SetName, Some(self.session.origin()))?;
        self.session
            .set_name(name, Owner::current(), capable::admin)?;
        Ok(0)
    }
}

#[vtable]
impl MiscDevice for LuoFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(
            LuoFile {
                session: Session::create(Name::NONE)?,
                device: true,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    fn release(me: KBox<Self>, _file: &File) {
        drop(me);
    }

    fn ioctl(me: &LuoFile, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        Self::dispatch(me, file, cmd, arg)
    }
}
