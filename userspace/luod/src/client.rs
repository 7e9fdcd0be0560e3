// SPDX-License-Identifier: GPL-2.0

//! A client of luod, for VMMs: ask for a session, answer Quiesce.
//!
//! ```no_run
//! use luod::client::Client;
//! use luod::protocol::Message;
//!
//! let luod = Client::connect("/run/luod.sock".as_ref())?;
//! let (session, incoming) = luod.session("vm-a")?;
//! if incoming {
//!     let guest_memory = session.retrieve(1)?;
//! }
//! // Later, from the VMM's event loop:
//! if let Some(Message::Quiesce { update }) = luod.next(1000)? {
//!     // pause the VM, then:
//!     luod.ready(update)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::protocol::{self, Message, Request};
use crate::transport;
use liveupdate::Session;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

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
}

impl Client {
    /// Connects to luod at `path` ([`SOCKET`] by default).
    pub fn connect(path: &Path) -> io::Result<Self> {
        Ok(Self {
            fd: transport::connect(path)?,
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
    pub fn session(&self, name: &str) -> Result<(Session, bool), ClientError> {
        self.send(&Request::Session { name: name.into() })?;
        loop {
            match self.recv()? {
                (Message::Session { incoming, .. }, Some(fd)) => {
                    return Ok((Session::from_fd(fd), incoming))
                }
                (Message::Error { errno, message }, _) => {
                    return Err(ClientError::Refused { errno, message })
                }
                // An update's messages may come first: they wait for next().
                (Message::Quiesce { .. } | Message::Resume { .. }, _) => continue,
                (other, _) => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    /// The next message from luod within `timeout_ms`, if any.
    pub fn next(&self, timeout_ms: i32) -> Result<Option<Message>, ClientError> {
        if !transport::readable(self.fd.as_fd(), timeout_ms)? {
            return Ok(None);
        }
        Ok(Some(self.recv()?.0))
    }

    /// Tells luod this client is quiesced for `update`.
    pub fn ready(&self, update: u64) -> io::Result<()> {
        self.send(&Request::Ready { update })
    }

    /// Asks luod to run the update (uid 0): `progress` sees each phase.
    /// Returns only if the update did not happen.
    pub fn update(&self, mut progress: impl FnMut(&str, u64)) -> ClientError {
        if let Err(e) = self.send(&Request::Update) {
            return e.into();
        }
        loop {
            match self.recv() {
                Ok((Message::Progress { phase, ms }, _)) => progress(&phase, ms),
                Ok((Message::Error { errno, message }, _)) => {
                    return ClientError::Refused { errno, message }
                }
                Ok((other, _)) => return ClientError::Unexpected(format!("{other:?}")),
                Err(e) => return e,
            }
        }
    }
}

impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
