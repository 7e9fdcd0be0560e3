// SPDX-License-Identifier: GPL-2.0

//! Sessions: what a VMM preserves its files in.
//!
//! Every open() of /dev/liveupdate is a session of its own, and
//! CREATE_SESSION makes more, each with its own fd. A session lives as long
//! as its file: when the last reference is closed, everything it holds is
//! released ("auto-closing"). Opening is not exclusive.
//!
//! Every live session is in the registry [`SESSIONS`], where names are
//! unique (unnamed sessions do not collide). A session holds no files
//! yet; preserved files and the incoming sessions of an update build on
//! this type.

use crate::luo_state::Origin;
use crate::luo_uapi::Name;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
};

/// Id of the next session; ids are never reused within a boot.
static NEXT_ID: Atomic<u64> = Atomic::new(1);

kernel::sync::global_lock! {
    // SAFETY: initialised in module init, before the device is registered.
    //
    // Locking: taken after CORE (luo_core.rs) and before any session's
    // `name`. Never held across a call that may take CORE.
    unsafe(uninit) static SESSIONS: Mutex<KVec<Arc<Session>>> = KVec::new();
}

/// Initialises the registry; called once from module init.
pub(crate) fn init() {
    // SAFETY: called once, before any session can be created.
    unsafe { SESSIONS.init() };
}

/// One session.
#[pin_data]
pub(crate) struct Session {
    id: u64,
    origin: Origin,
    /// Changed only with [`SESSIONS`] held, so uniqueness checks see a
    /// stable set of names.
    #[pin]
    name: Mutex<Name>,
}

impl Session {
    /// Creates a session and registers it; `EEXIST` if `name` is taken.
    pub(crate) fn create(name: Name) -> Result<Arc<Session>> {
        let mut sessions = SESSIONS.lock();
        if !name.is_empty() && taken(&sessions, &name, None) {
            return Err(EEXIST);
        }
        let session = Arc::pin_init(
            try_pin_init!(Session {
                id: NEXT_ID.fetch_add(1, Relaxed),
                origin: Origin::Outgoing,
                name <- new_mutex!(name),
            }),
            GFP_KERNEL,
        )?;
        sessions.push(session.clone(), GFP_KERNEL)?;
        Ok(session)
    }

    /// Removes the session from the registry (its file is being released).
    pub(crate) fn unregister(&self) {
        let mut sessions = SESSIONS.lock();
        sessions.retain(|s| s.id != self.id);
    }

    /// The session's id, unique within this boot.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Whether the session is outgoing or incoming.
    pub(crate) fn origin(&self) -> Origin {
        self.origin
    }

    /// The session's name (empty if unnamed).
    pub(crate) fn name(&self) -> Name {
        *self.name.lock()
    }

    /// Renames the session; `EEXIST` if another session has `name`.
    pub(crate) fn set_name(&self, name: Name) -> Result {
        let sessions = SESSIONS.lock();
        if taken(&sessions, &name, Some(self.id)) {
            return Err(EEXIST);
        }
        *self.name.lock() = name;
        Ok(())
    }
}

/// Whether a session other than `except` is named `name`.
fn taken(sessions: &KVec<Arc<Session>>, name: &Name, except: Option<u64>) -> bool {
    sessions
        .iter()
        .any(|s| Some(s.id) != except && *s.name.lock() == *name)
}

/// Calls `f` on every live session, in creation order.
pub(crate) fn for_each(mut f: impl FnMut(&Session)) {
    for s in SESSIONS.lock().iter() {
        f(s);
    }
}

/// Number of sessions alive now.
pub(crate) fn live_sessions() -> usize {
    SESSIONS.lock().len()
}
