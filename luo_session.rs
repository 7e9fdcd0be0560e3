// SPDX-License-Identifier: GPL-2.0

//! Sessions: what a VMM preserves its files in.
//!
//! Every open() of /dev/liveupdate is a session of its own, which lives as
//! long as its file: when the last reference is closed, everything the
//! session holds is released ("auto-closing"). Opening is not exclusive;
//! any number of sessions may be open at once.
//!
//! A session holds no files yet; the core (state machine, preserved files,
//! names) builds on this type.

use kernel::sync::atomic::{Atomic, Relaxed};

/// Sessions alive now.
static LIVE_SESSIONS: Atomic<u64> = Atomic::new(0);
/// Id of the next session; ids are never reused within a boot.
static NEXT_ID: Atomic<u64> = Atomic::new(1);

/// One session, owned by the file of one open() of /dev/liveupdate.
pub(crate) struct Session {
    id: u64,
}

impl Session {
    /// Creates a session for a new open().
    pub(crate) fn new() -> Self {
        LIVE_SESSIONS.fetch_add(1, Relaxed);
        Self {
            id: NEXT_ID.fetch_add(1, Relaxed),
        }
    }

    /// The session's id, unique within this boot.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        LIVE_SESSIONS.fetch_sub(1, Relaxed);
    }
}

/// Number of sessions alive now.
pub(crate) fn live_sessions() -> u64 {
    LIVE_SESSIONS.load(Relaxed)
}
