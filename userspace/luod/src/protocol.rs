// SPDX-License-Identifier: GPL-2.0

//! luod's protocol: one JSON object per `SOCK_SEQPACKET` message (so a
//! message is never split or merged), at most [`MAX_MESSAGE`] bytes; a
//! session fd travels with its [`Message::Session`] as `SCM_RIGHTS`.
//!
//! A client asks for its session ([`Request::Session`]) and gets it, or an
//! [`Message::Error`] with the errno and why. Before an update luod sends
//! every client [`Message::Quiesce`]: the client stops changing its session
//! (pauses its VM) and answers [`Request::Ready`] with the update's number;
//! if the update does not happen, [`Message::Resume`] follows with the same
//! number (a client matches it: a Resume of another update is not for the
//! one it quiesced for). A client with uid 0 may ask for the update itself
//! ([`Request::Update`]), and hears its [`Message::Progress`] and how it
//! ended. A client that still holds a session from a luod that has since
//! restarted says so with [`Request::Hold`], passing the session fd back
//! as proof: the new luod then quiesces it for an update. Only a Hold may
//! carry an fd (a session fd); any other message with fds is refused.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest message, in bytes.
pub const MAX_MESSAGE: usize = 4096;

/// From a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The session `name`: created before an update, reclaimed after one.
    Session {
        /// The session's name.
        name: String,
    },
    /// The client has quiesced for update `update`.
    Ready {
        /// The number [`Message::Quiesce`] gave.
        update: u64,
    },
    /// The client holds the session `name` (luod restarted since it handed
    /// it out): its fd comes with this message, and goes back with
    /// [`Message::Held`].
    Hold {
        /// The session's name.
        name: String,
    },
    /// Run an update now (uid 0 only): quiesce every client holding a
    /// session, PREPARE, FREEZE, kexec into the loaded kernel. Answered by
    /// [`Message::Progress`] for each phase and, if the update does not
    /// happen, [`Message::UpdateFailed`].
    Update,
}

/// From luod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// The session asked for; its fd comes with this message.
    Session {
        /// Its name.
        name: String,
        /// Whether it came from the previous kernel (false: made now).
        incoming: bool,
    },
    /// luod counts the client as the holder of `name` again (answers
    /// [`Request::Hold`]).
    Held {
        /// The session's name.
        name: String,
    },
    /// A request failed.
    Error {
        /// The errno that says what kind of failure.
        errno: i32,
        /// What happened, for people.
        message: String,
    },
    /// Stop changing your session and answer [`Request::Ready`].
    Quiesce {
        /// This update's number.
        update: u64,
    },
    /// The update did not happen: go on.
    Resume {
        /// The number [`Message::Quiesce`] gave.
        update: u64,
        /// Why.
        reason: String,
    },
    /// The update the client asked for did not happen.
    UpdateFailed {
        /// The errno that says what kind of failure.
        errno: i32,
        /// What happened, for people.
        message: String,
        /// Whether it had started (clients quiesced, events sent).
        started: bool,
        /// Whether the system is back to NORMAL and the clients resumed;
        /// if it started and this is false, see `luoctl status`.
        normal: bool,
    },
    /// A phase of the update the client asked for.
    Progress {
        /// `quiesce`, `prepare`, `freeze` or `kexec`.
        phase: String,
        /// How long it took, in milliseconds.
        ms: u64,
    },
}

/// A message that cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad message: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// The bytes of a message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Strings and numbers only: serializing cannot fail.
    serde_json::to_vec(message).unwrap_or_default()
}

/// A message from its bytes.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ProtocolError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ProtocolError(format!("{} bytes", bytes.len())));
    }
    serde_json::from_slice(bytes).map_err(|e| ProtocolError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Session {
                name: "vm-a".into(),
            },
            Request::Ready { update: 7 },
            Request::Hold {
                name: "vm-a".into(),
            },
            Request::Update,
        ] {
            assert_eq!(decode::<Request>(&encode(&r)).unwrap(), r);
        }
    }

    #[test]
    fn messages_round_trip() {
        for m in [
            Message::Session {
                name: "vm-a".into(),
                incoming: true,
            },
            Message::Error {
                errno: 13,
                message: "no".into(),
            },
            Message::Quiesce { update: 1 },
            Message::Held {
                name: "vm-a".into(),
            },
            Message::Resume {
                update: 1,
                reason: "x".into(),
            },
            Message::Progress {
                phase: "prepare".into(),
                ms: 3,
            },
            Message::UpdateFailed {
                errno: 110,
                message: "late".into(),
                started: true,
                normal: true,
            },
        ] {
            assert_eq!(decode::<Message>(&encode(&m)).unwrap(), m);
        }
    }

    #[test]
    fn the_wire_form_is_tagged_json() {
        let bytes = encode(&Request::Session { name: "vm".into() });
        assert_eq!(bytes, br#"{"op":"session","name":"vm"}"#);
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"op":"session"}"#,
            br#"{"op":"session","name":"a","uid":0}"#,
            br#"{"op":"reboot"}"#,
            br#"{"op":"hold"}"#,
            br#"{"op":"ready","update":-1}"#,
            b"\xff\xfe",
        ] {
            assert!(decode::<Request>(bad).is_err(), "{bad:?}");
        }
        let big = vec![b' '; MAX_MESSAGE + 1];
        assert!(decode::<Request>(&big).is_err());
    }
}
