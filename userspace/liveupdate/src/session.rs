// SPDX-License-Identifier: GPL-2.0

//! A session: the files one user hands over, under one name.

use crate::error::{Error, Op, Result};
use crate::sys::{self, ioctl};
use crate::{name, uapi};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionState {
    /// Outgoing: files can be added and removed.
    Open,
    /// Outgoing, and the system is PREPARED.
    Prepared,
    /// Outgoing, and the system is FROZEN: it goes to the next kernel.
    Frozen,
    /// Handed over by the previous kernel: its files can be retrieved.
    Incoming,
    /// Incoming and finished: nothing is left in it.
    Finished,
    /// A state this crate does not know (a newer kernel).
    Unknown(u32),
}

impl SessionState {
    fn from_raw(raw: u32) -> Self {
        match raw {
            uapi::LIVEUPDATE_SESSION_STATE_OPEN => SessionState::Open,
            uapi::LIVEUPDATE_SESSION_STATE_PREPARED => SessionState::Prepared,
            uapi::LIVEUPDATE_SESSION_STATE_FROZEN => SessionState::Frozen,
            uapi::LIVEUPDATE_SESSION_STATE_INCOMING => SessionState::Incoming,
            uapi::LIVEUPDATE_SESSION_STATE_FINISHED => SessionState::Finished,
            other => SessionState::Unknown(other),
        }
    }
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionState::Open => f.write_str("open"),
            SessionState::Prepared => f.write_str("prepared"),
            SessionState::Frozen => f.write_str("frozen"),
            SessionState::Incoming => f.write_str("incoming"),
            SessionState::Finished => f.write_str("finished"),
            SessionState::Unknown(n) => write!(f, "unknown ({n})"),
        }
    }
}

/// How `/proc/self/fd` shows a session fd, before its name.
const SESSION_LINK: &[u8] = b"anon_inode:[luo_session] ";

/// What [`Session::status`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    /// Where the session stands.
    pub state: SessionState,
    /// Files preserved in it (outgoing) or left in it (incoming).
    pub files: u32,
}

/// A session fd: from [`LiveUpdate::create_session`],
/// [`LiveUpdate::retrieve_session`], or received from another process
/// ([`Session::from_fd`]).
///
/// Closing an outgoing session's fd ends it (its files are not handed
/// over); closing an incoming one gives the claim up, and it can be
/// retrieved again until it is finished.
///
/// ```no_run
/// use liveupdate::LiveUpdate;
/// use std::fs::File;
///
/// let lu = LiveUpdate::open()?;
/// let session = lu.create_session("vmm")?;
/// let guest_memory = File::open("/proc/self/fd/3")?; // a memfd, say
/// session.preserve(&guest_memory, 1)?;
/// // ... the orchestrator sends PREPARE and FREEZE and kexecs.
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`LiveUpdate::create_session`]: crate::LiveUpdate::create_session
/// [`LiveUpdate::retrieve_session`]: crate::LiveUpdate::retrieve_session
#[derive(Debug)]
pub struct Session {
    fd: OwnedFd,
}

impl Session {
    /// A session fd, for instance one received over a Unix socket. The
    /// kernel answers `ENOTTY` to every call if it is not one; from a
    /// sender that is not trusted, use [`Session::try_from_fd`].
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// The session fd `fd`, checked to be one: the kernel names every
    /// session file `[luo_session] NAME`, which `/proc` shows and no other
    /// kind of file can be called (a memfd shows as `/memfd:NAME`, an
    /// anonymous inode only with the name its kernel code gives it).
    /// `ENOTTY` if it is not a session.
    ///
    /// ```no_run
    /// use liveupdate::Session;
    /// use std::os::fd::OwnedFd;
    ///
    /// let received: OwnedFd = std::fs::File::open("/dev/null")?.into();
    /// let refused = Session::try_from_fd(received).unwrap_err();
    /// assert_eq!(refused.errno(), libc::ENOTTY);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_from_fd(fd: OwnedFd) -> Result<Self> {
        use std::os::unix::ffi::OsStrExt;

        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|e| Error::new(Op::Identify, e.raw_os_error().unwrap_or(libc::EIO)))?;
        if link.as_os_str().as_bytes().starts_with(SESSION_LINK) {
            Ok(Self { fd })
        } else {
            Err(Error::new(Op::Identify, libc::ENOTTY))
        }
    }

    /// Preserves the file `file` under `token` (any value, unique in the
    /// session). The session keeps its own reference to the file: the
    /// caller may close its fd.
    pub fn preserve(&self, file: impl AsFd, token: u64) -> Result<()> {
        let mut arg = uapi::liveupdate_session_preserve_fd {
            size: size_of::<uapi::liveupdate_session_preserve_fd>() as u32,
            fd: file.as_fd().as_raw_fd(),
            token,
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_PRESERVE_FD, &mut arg)
            .map_err(|e| Error::new(Op::Preserve, e))
    }

    /// Removes the file preserved under `token` from the session.
    pub fn unpreserve(&self, token: u64) -> Result<()> {
        let mut arg = uapi::liveupdate_session_unpreserve_fd {
            size: size_of::<uapi::liveupdate_session_unpreserve_fd>() as u32,
            reserved: 0,
            token,
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_UNPRESERVE_FD, &mut arg)
            .map_err(|e| Error::new(Op::Unpreserve, e))
    }

    /// The file preserved under `token`, in an incoming session: a new fd
    /// (close-on-exec) each time, for the same file. A failure loses
    /// nothing; a retry may succeed.
    pub fn retrieve(&self, token: u64) -> Result<OwnedFd> {
        let mut arg = uapi::liveupdate_session_retrieve_fd {
            size: size_of::<uapi::liveupdate_session_retrieve_fd>() as u32,
            fd: -1,
            token,
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_RETRIEVE_FD, &mut arg)
            .and_then(|()| sys::take_fd(arg.fd))
            .map_err(|e| Error::new(Op::Retrieve, e))
    }

    /// Ends an incoming session: what was not retrieved is freed, and the
    /// name is free again. Finishing again does nothing.
    pub fn finish(&self) -> Result<()> {
        let mut arg = uapi::liveupdate_session_finish {
            size: size_of::<uapi::liveupdate_session_finish>() as u32,
            reserved: 0,
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_FINISH, &mut arg)
            .map_err(|e| Error::new(Op::FinishSession, e))
    }

    /// The session's name (empty if it was never named).
    pub fn name(&self) -> Result<String> {
        let mut arg = uapi::liveupdate_session_get_name {
            size: size_of::<uapi::liveupdate_session_get_name>() as u32,
            reserved: 0,
            name: [0; uapi::LIVEUPDATE_SESSION_NAME_LENGTH as usize],
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_GET_NAME, &mut arg)
            .map_err(|e| Error::new(Op::GetName, e))?;
        Ok(name::decode(&arg.name))
    }

    /// Names (or renames) an outgoing session.
    pub fn set_name(&self, name: &str) -> Result<()> {
        let raw = name::encode(name).ok_or(Error::new(Op::SetName, libc::EINVAL))?;
        let mut arg = uapi::liveupdate_session_set_name {
            size: size_of::<uapi::liveupdate_session_set_name>() as u32,
            reserved: 0,
            name: raw,
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_SET_NAME, &mut arg)
            .map_err(|e| Error::new(Op::SetName, e))
    }

    /// Where the session stands, and how many files it holds.
    pub fn status(&self) -> Result<SessionStatus> {
        let mut arg = uapi::liveupdate_session_get_state {
            size: size_of::<uapi::liveupdate_session_get_state>() as u32,
            state: 0,
            nr_files: 0,
            reserved: 0,
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_GET_STATE, &mut arg)
            .map_err(|e| Error::new(Op::SessionState, e))?;
        Ok(SessionStatus {
            state: SessionState::from_raw(arg.state),
            files: arg.nr_files,
        })
    }
}

impl AsFd for Session {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Session> for OwnedFd {
    fn from(session: Session) -> Self {
        session.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_states_from_the_header() {
        let incoming = uapi::LIVEUPDATE_SESSION_STATE_INCOMING;
        assert_eq!(SessionState::from_raw(incoming), SessionState::Incoming);
        assert_eq!(SessionState::from_raw(77), SessionState::Unknown(77));
        assert_eq!(SessionState::Frozen.to_string(), "frozen");
    }

    #[test]
    fn a_file_that_is_no_session_answers_enotty() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let session = Session::from_fd(file.into());
        let e = session.status().unwrap_err();
        assert_eq!(e.errno(), libc::ENOTTY);
        assert_eq!(e.op(), Op::SessionState);
        assert!(e
            .to_string()
            .contains("not a /dev/liveupdate or session fd"));
    }

    #[test]
    fn only_a_session_fd_passes_the_check() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let e = Session::try_from_fd(null.into()).unwrap_err();
        assert_eq!((e.op(), e.errno()), (Op::Identify, libc::ENOTTY));
        // A file may be named like one, but /proc shows its path.
        let path =
            std::env::temp_dir().join(format!("anon_inode:[luo_session] {}", std::process::id()));
        let named = std::fs::File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let e = Session::try_from_fd(named.into()).unwrap_err();
        assert_eq!(e.errno(), libc::ENOTTY);
    }
}
