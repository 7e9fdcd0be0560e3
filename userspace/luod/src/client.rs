// SPDX-License-Identifier: GPL-2.0

//! A client of luod, for VMMs: ask for a session, answer Quiesce.
//!
//! ```no_run
//! use luod::client::{Client, ClientError};
//! use luod::protocol::Message;
//!
//! let mut luod = Client::connect("/run/luod.sock".as_ref())?;
//! let (session, incoming) = luod.session("vm-a")?;
//! if incoming {
//!     let guest_memory = session.retrieve(1)?;
//! }
//! // Later, from the VMM's event loop:
//! let second = std::time::Duration::from_secs(1);
//! match luod.next(Some(second)) {
//!     Ok(Some(Message::Quiesce { update })) => {
//!         // pause the VM, then:
//!         luod.ready(update)?;
//!     }
//!     Err(ClientError::Closed) => {
//!         // luod restarted: show the new one that this VMM holds its
//!         // session, so that it is quiesced before the next update.
//!         luod = Client::connect("/run/luod.sock".as_ref())?;
//!         luod.hold("vm-a", &session)?;
//!     }
//!     _ => {}
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
    /// luod closed the connection (it stopped or restarted).
    Closed,
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
            ClientError::Closed => f.write_str("luod closed the connection"),
            ClientError::Unexpected(m) => write!(f, "luod answered {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A socket error, as [`ClientError::Closed`] when it says that luod went
/// away (a luod that dies with messages unread resets the connection).
fn closed(e: io::Error) -> ClientError {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => ClientError::Closed,
        _ => ClientError::Io(e),
    }
}

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
        self.send_with(request, None)
    }

    fn send_with(&self, request: &Request, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        transport::send(
            self.fd.as_fd(),
            &protocol::encode(request),
            fd,
            transport::Wait::Yes,
        )
    }

    /// The next message and its fd; an error if luod closed.
    fn recv(&self) -> Result<(Message, Option<OwnedFd>), ClientError> {
        let (bytes, fd) = transport::recv(self.fd.as_fd())
            .map_err(closed)?
            .ok_or(ClientError::Closed)?;
        let message =
            protocol::decode(&bytes).map_err(|e| ClientError::Unexpected(e.to_string()))?;
        Ok((message, fd))
    }

    /// Sends `request`; if that fails, what luod said before it closed
    /// (a user it does not serve), rather than the closed socket.
    fn ask(&mut self, request: &Request, fd: Option<BorrowedFd<'_>>) -> Result<(), ClientError> {
        if let Err(e) = self.send_with(request, fd) {
            // luod may have said why before it closed (a user it does not
            // serve): that, rather than the closed socket.
            return match self.recv() {
                Ok((Message::Error { errno, message }, _)) => {
                    Err(ClientError::Refused { errno, message })
                }
                _ => Err(closed(e)),
            };
        }
        Ok(())
    }

    /// The answer to a request, or the error luod answered; Quiesce and
    /// Resume that come first are kept for [`Client::next`].
    fn answer(&mut self) -> Result<(Message, Option<OwnedFd>), ClientError> {
        loop {
            match self.recv()? {
                (Message::Error { errno, message }, _) => {
                    return Err(ClientError::Refused { errno, message })
                }
                (m @ (Message::Quiesce { .. } | Message::Resume { .. }), _) => {
                    self.pending.push_back(m)
                }
                other => return Ok(other),
            }
        }
    }

    /// The session `name`, and whether it came from the previous kernel.
    pub fn session(&mut self, name: &str) -> Result<(Session, bool), ClientError> {
        self.ask(&Request::Session { name: name.into() }, None)?;
        match self.answer()? {
            (Message::Session { incoming, .. }, Some(fd)) => {
                let session = Session::try_from_fd(fd)
                    .map_err(|e| ClientError::Unexpected(format!("a file: {e}")))?;
                Ok((session, incoming))
            }
            (other, _) => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Tells a luod that started after this client got `session` (named
    /// `name`) that the client holds it, passing the session fd as proof:
    /// luod then quiesces this client before an update. Until every
    /// holder of a session of luod's has done so, luod refuses updates.
    ///
    /// [`ClientError::Closed`] here may mean that the connection reached
    /// the luod that was going away (a dying process's listening socket
    /// takes connections until it is closed, after its others): connect
    /// again and hold again.
    pub fn hold(&mut self, name: &str, session: &Session) -> Result<(), ClientError> {
        let request = Request::Hold { name: name.into() };
        self.ask(&request, Some(session.as_fd()))?;
        match self.answer()? {
            (Message::Held { .. }, _) => Ok(()),
            (other, _) => Err(ClientError::Unexpected(format!("{other:?}"))),
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
            match self.answer()? {
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
