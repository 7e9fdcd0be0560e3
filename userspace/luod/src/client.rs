// SPDX-License-Identifier: GPL-2.0

//! A client of luod, for VMMs: ask for a session, answer Quiesce.
//!
//! ```no_run
//! use luod::client::Client;
//! use luod::protocol::Message;
//!
//! let mut luod = Client::connect("/run/luod.sock".as_ref())?;
//! let (session, incoming) = luod.session("vm-a")?;
//! if incoming {
//!     let guest_memory = session.retrieve(1)?;
//! }
//! // Later, from the VMM's event loop:
//! let second = std::time::Duration::from_secs(1);
//! if let Some(Message::Quiesce { update }) = luod.next(Some(second))? {
//!     // pause the VM, then:
//!     luod.ready(update)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::protocol::{self, Message, Request};
use crate::transport;
use liveupdate::Session;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// The default socket.
pub const SOCKET: &str = "/run/luod.sock";

/// What luod answered instead.
#[derive(Debug)]
pub enum ClientError {
    /// The socket failed.
    Io(io::Error),
    /// luod refused, with an errno and why.
    Refused {
        /// The errno.
        errno: i32,
        /// luod's words.
        message: String,
    },
    /// The update asked for did not happen.
    UpdateFailed {
        /// The errno.
        errno: i32,
        /// luod's words.
        message: String,
        /// Whether it had started (clients quiesced, events sent).
        started: bool,
        /// Whether the system is back to NORMAL.
        normal: bool,
    },
    /// luod answered something this client did not expect.
    Unexpected(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "luod: {e}"),
            ClientError::Refused { errno, message } => {
                write!(f, "luod refused: {message} (errno {errno})")
            }
            ClientError::UpdateFailed { message, .. } => write!(f, "the update failed: {message}"),
            ClientError::Unexpected(m) => write!(f, "luod answered {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// A connection to luod.
#[derive(Debug)]
pub struct Client {
    fd: OwnedFd,
    /// Quiesce and Resume that came while waiting for an answer: for
    /// [`Client::next`].
    pending: VecDeque<Message>,
}

impl Client {
    /// Connects to luod at `path` ([`SOCKET`] by default). The other end
    /// must be root's (or the caller's own): anyone else could hand over a
    /// session of theirs, or pause the VM.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let fd = transport::connect(path)?;
        let server = transport::peer(fd.as_fd())?;
        let me = rustix::process::geteuid().as_raw();
        if server.uid != 0 && server.uid != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is served by uid {}, not root",
                    path.display(),
                    server.uid
                ),
            ));
        }
        Ok(Self {
            fd,
            pending: VecDeque::new(),
        })
    }

    fn send(&self, request: &Request) -> io::Result<()> {
        transport::send(
            self.fd.as_fd(),
            &protocol::encode(request),
            None,
            transport::Wait::Yes,
        )
    }

    /// The next message and its fd; an error if luod closed.
    fn recv(&self) -> Result<(Message, Option<OwnedFd>), ClientError> {
        let (bytes, fd) = transport::recv(self.fd.as_fd())?
            .ok_or_else(|| ClientError::Unexpected("nothing: it closed".into()))?;
        let message =
            protocol::decode(&bytes).map_err(|e| ClientError::Unexpected(e.to_string()))?;
        Ok((message, fd))
    }

    /// The session `name`, and whether it came from the previous kernel.
    pub fn session(&mut self, name: &str) -> Result<(Session, bool), ClientError> {
        if let Err(e) = self.send(&Request::Session { name: name.into() }) {
            // luod may have said why before it closed (a user it does not
            // serve): that, rather than the closed socket.
            return match self.recv() {
                Ok((Message::Error { errno, message }, _)) => {
                    Err(ClientError::Refused { errno, message })
                }
                _ => Err(e.into()),
            };
        }
        loop {
            match self.recv()? {
                (Message::Session { incoming, .. }, Some(fd)) => {
                    return Ok((Session::from_fd(fd), incoming))
                }
                (Message::Error { errno, message }, _) => {
                    return Err(ClientError::Refused { errno, message })
                }
                // An update's messages may come first: next() has them.
                (m @ (Message::Quiesce { .. } | Message::Resume { .. }), _) => {
                    self.pending.push_back(m)
                }
                (other, _) => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    /// The next message from luod within `timeout` (`None`: wait), if any.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Message>, ClientError> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(Some(m));
        }
        if !transport::readable(self.fd.as_fd(), timeout)? {
            return Ok(None);
        }
        Ok(Some(self.recv()?.0))
    }

    /// Tells luod this client is quiesced for `update`.
    pub fn ready(&self, update: u64) -> io::Result<()> {
        self.send(&Request::Ready { update })
    }

    /// Asks luod to run the update (uid 0): `progress` sees each phase.
    /// Returns only if the update did not happen: the error says whether it
    /// had started and whether the system is back to normal.
    pub fn update(
        &mut self,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<Infallible, ClientError> {
        self.send(&Request::Update)?;
        loop {
            match self.recv()? {
                (Message::Progress { phase, ms }, _) => progress(&phase, ms),
                (
                    Message::UpdateFailed {
                        errno,
                        message,
                        started,
                        normal,
                    },
                    _,
                ) => {
                    return Err(ClientError::UpdateFailed {
                        errno,
                        message,
                        started,
                        normal,
                    })
                }
                (Message::Error { errno, message }, _) => {
                    return Err(ClientError::Refused { errno, message })
                }
                (other, _) => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }
}

impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
