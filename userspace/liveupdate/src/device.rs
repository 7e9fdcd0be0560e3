// SPDX-License-Identifier: GPL-2.0

//! `/dev/liveupdate`: the global state machine and the sessions.

use crate::error::{Error, Op, Result};
use crate::session::Session;
use crate::sys::{self, ioctl};
use crate::{name, uapi};
use std::fs::OpenOptions;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// The device node.
pub const DEVICE: &str = "/dev/liveupdate";

/// The global state of the live update state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// No update in progress: files can be preserved.
    Normal,
    /// PREPARE ran: preserved state is serialized while workloads run.
    Prepared,
    /// FREEZE ran: the update is committed; the kexec comes next.
    Frozen,
    /// This kernel was booted by a live update and holds incoming sessions
    /// until they are finished.
    Updated,
    /// A state this crate does not know (a newer kernel).
    Unknown(u32),
}

impl State {
    fn from_raw(raw: u32) -> Self {
        match raw {
            uapi::LIVEUPDATE_STATE_NORMAL => State::Normal,
            uapi::LIVEUPDATE_STATE_PREPARED => State::Prepared,
            uapi::LIVEUPDATE_STATE_FROZEN => State::Frozen,
            uapi::LIVEUPDATE_STATE_UPDATED => State::Updated,
            other => State::Unknown(other),
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Normal => f.write_str("normal"),
            State::Prepared => f.write_str("prepared"),
            State::Frozen => f.write_str("frozen"),
            State::Updated => f.write_str("updated"),
            State::Unknown(n) => write!(f, "unknown ({n})"),
        }
    }
}

/// An event that moves the global state machine (needs `CAP_SYS_ADMIN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// NORMAL to PREPARED: the heavy work, while workloads still run.
    Prepare,
    /// PREPARED to FROZEN: only what changed since PREPARE.
    Freeze,
    /// PREPARED or FROZEN back to NORMAL, undone completely.
    Cancel,
    /// UPDATED to NORMAL: frees every incoming session nobody retrieved.
    Finish,
}

impl Event {
    fn raw(self) -> u32 {
        match self {
            Event::Prepare => uapi::LIVEUPDATE_EVENT_PREPARE,
            Event::Freeze => uapi::LIVEUPDATE_EVENT_FREEZE,
            Event::Cancel => uapi::LIVEUPDATE_EVENT_CANCEL,
            Event::Finish => uapi::LIVEUPDATE_EVENT_FINISH,
        }
    }

    fn op(self) -> Op {
        match self {
            Event::Prepare => Op::Prepare,
            Event::Freeze => Op::Freeze,
            Event::Cancel => Op::Cancel,
            Event::Finish => Op::Finish,
        }
    }
}

/// An open `/dev/liveupdate`: the global state, and named sessions, each
/// of which lives as long as its own fd.
///
/// ```no_run
/// use liveupdate::{LiveUpdate, State};
///
/// let lu = LiveUpdate::open()?;
/// if lu.state()? == State::Updated {
///     let session = lu.retrieve_session("vmm")?;
///     let memfd = session.retrieve(1)?;
///     // ... use the guest memory, then:
///     session.finish()?;
/// }
/// # Ok::<(), liveupdate::Error>(())
/// ```
#[derive(Debug)]
pub struct LiveUpdate {
    fd: OwnedFd,
}

impl LiveUpdate {
    /// Opens [`DEVICE`].
    pub fn open() -> Result<Self> {
        Self::open_path(DEVICE)
    }

    /// Opens the device at `path`.
    pub fn open_path(path: impl AsRef<Path>) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::new(Op::Open, e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(Self { fd: file.into() })
    }

    /// The global state.
    pub fn state(&self) -> Result<State> {
        let mut arg = uapi::liveupdate_ioctl_get_state {
            size: size_of::<uapi::liveupdate_ioctl_get_state>() as u32,
            state: 0,
        };
        ioctl(self.fd.as_fd(), uapi::IOCTL_GET_STATE, &mut arg)
            .map_err(|e| Error::new(Op::GetState, e))?;
        Ok(State::from_raw(arg.state))
    }

    /// Sends `event`; returns once its work is done. A PREPARE or FREEZE
    /// that fails is rolled back to NORMAL.
    pub fn event(&self, event: Event) -> Result<()> {
        let mut arg = uapi::liveupdate_ioctl_set_event {
            size: size_of::<uapi::liveupdate_ioctl_set_event>() as u32,
            event: event.raw(),
        };
        ioctl(self.fd.as_fd(), uapi::IOCTL_SET_EVENT, &mut arg)
            .map_err(|e| Error::new(event.op(), e))
    }

    /// [`Event::Prepare`].
    pub fn prepare(&self) -> Result<()> {
        self.event(Event::Prepare)
    }

    /// [`Event::Freeze`].
    pub fn freeze(&self) -> Result<()> {
        self.event(Event::Freeze)
    }

    /// [`Event::Cancel`].
    pub fn cancel(&self) -> Result<()> {
        self.event(Event::Cancel)
    }

    /// [`Event::Finish`].
    pub fn finish(&self) -> Result<()> {
        self.event(Event::Finish)
    }

    /// Creates an outgoing session named `name` (1 to 63 bytes), owned
    /// by the caller's euid.
    pub fn create_session(&self, name: &str) -> Result<Session> {
        let raw = name::encode(name).ok_or(Error::new(Op::CreateSession, libc::EINVAL))?;
        let mut arg = uapi::liveupdate_ioctl_create_session {
            size: size_of::<uapi::liveupdate_ioctl_create_session>() as u32,
            fd: -1,
            name: raw,
        };
        ioctl(self.fd.as_fd(), uapi::IOCTL_CREATE_SESSION, &mut arg)
            .and_then(|()| sys::take_fd(arg.fd))
            .map(Session::from_fd)
            .map_err(|e| Error::new(Op::CreateSession, e))
    }

    /// Claims the incoming session the previous kernel handed over as
    /// `name`: the caller's own, or with `CAP_SYS_ADMIN` the one of that
    /// name of any user. Closing it gives the claim up without ending the
    /// session.
    pub fn retrieve_session(&self, name: &str) -> Result<Session> {
        let raw = name::encode(name).ok_or(Error::new(Op::RetrieveSession, libc::EINVAL))?;
        let mut arg = uapi::liveupdate_ioctl_retrieve_session {
            size: size_of::<uapi::liveupdate_ioctl_retrieve_session>() as u32,
            fd: -1,
            name: raw,
        };
        ioctl(self.fd.as_fd(), uapi::IOCTL_RETRIEVE_SESSION, &mut arg)
            .and_then(|()| sys::take_fd(arg.fd))
            .map(Session::from_fd)
            .map_err(|e| Error::new(Op::RetrieveSession, e))
    }
}

impl AsFd for LiveUpdate {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_from_the_header() {
        assert_eq!(
            State::from_raw(uapi::LIVEUPDATE_STATE_NORMAL),
            State::Normal
        );
        assert_eq!(
            State::from_raw(uapi::LIVEUPDATE_STATE_UPDATED),
            State::Updated
        );
        assert_eq!(State::from_raw(99), State::Unknown(99));
        assert_eq!(State::Prepared.to_string(), "prepared");
    }

    #[test]
    fn a_bad_name_is_refused_before_the_kernel() {
        let e = name::encode("").ok_or(Error::new(Op::CreateSession, libc::EINVAL));
        assert_eq!(e.unwrap_err().errno(), libc::EINVAL);
    }

    #[test]
    fn opening_a_missing_device_says_so() {
        let e = LiveUpdate::open_path("/nonexistent/liveupdate").unwrap_err();
        assert_eq!(e.op(), Op::Open);
        assert_eq!(e.errno(), libc::ENOENT);
        assert!(e.to_string().contains("no live update orchestrator"));
    }
}
