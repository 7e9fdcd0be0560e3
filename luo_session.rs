// SPDX-License-Identifier: GPL-2.0

//! Sessions: what a VMM preserves its files in.
//!
//! Outgoing sessions are made in this kernel for the next one: every
//! open() of /dev/liveupdate is one, and CREATE_SESSION makes more, each
//! with its own fd. An outgoing session lives as long as its file: when
//! the last reference is closed, everything it holds is released
//! ("auto-closing"). Opening is not exclusive.
//!
//! Incoming sessions were handed over by the previous kernel. They belong
//! to no file until RETRIEVE_SESSION claims one; closing that fd gives up
//! the claim (the session can be retrieved again), FINISH ends it.
//!
//! Every session is in the registry [`SESSIONS`] until it ends; named
//! ones are found by name in O(log n), and a preserved file is found in
//! [`PRESERVED_FILES`] the same way, so a host with ten thousand sessions
//! and a hundred thousand files does not slow down.
//!
//! A session belongs to the user who created it (its euid, [`Owner`]),
//! and the owner goes across the kexec with it: only that user, or
//! `CAP_SYS_ADMIN`, may claim it in the new kernel, and only they may
//! rename it (an fd passed to another user is for its files, not for
//! moving them under another name). Names are per owner
//! and per direction: unique among one user's outgoing sessions and among
//! one user's incoming sessions, so another user cannot take a name first
//! and a client can prepare its next update under the name it is
//! retrieving (unnamed sessions never collide).
//!
//! An outgoing session holds its preserved files ([`OutgoingFile`], each
//! with its handler's typed state); an incoming one the files the previous
//! kernel handed over ([`IncomingFile`]), until each is retrieved and the
//! session finished.

use crate::capable::{self, Admin};
use crate::file_deps::{self, OrderError, Visit};
use crate::key_set::{KeySet, Tally, TallyRoom};
use crate::luo_file::{Dependency, FileHandler, HandedOver, Preserved};
use crate::luo_handover;
use crate::luo_handover::{Depends, FileRecord};
use crate::luo_state::Origin;
use crate::luo_uapi::Name;
use kernel::{
    bindings,
    fs::File,
    new_mutex,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    task::Kuid,
};

/// Who a session belongs to: the euid of its creator, as a uid of the
/// initial user namespace (the value the handover carries).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Owner(u32);

impl Owner {
    /// The caller's effective uid.
    pub(crate) fn current() -> Self {
        Self::of(Kuid::current_euid())
    }

    /// The user `kuid`.
    fn of(kuid: Kuid) -> Self {
        Owner(kuid.into_raw().val)
    }

    /// The owner a handover names.
    pub(crate) fn from_handover(uid: u32) -> Self {
        Owner(uid)
    }

    /// The value the handover carries.
    pub(crate) fn to_handover(self) -> u32 {
        self.0
    }
}

/// A file preserved in an outgoing session.
pub(crate) struct OutgoingFile {
    /// Whose session it was preserved in: it counts against that user's
    /// limit while it lives.
    owner: Owner,
    token: u64,
    handler: &'static dyn FileHandler,
    /// Our reference: the file stays alive while preserved.
    file: ARef<File>,
    state: KBox<dyn Preserved>,
    /// The handover data, once PREPARE ran (`None` again after CANCEL).
    data: Option<u64>,
    /// The tokens of the files of its session it depends on, as PREPARE
    /// or FREEZE last found them ([`link_files`]).
    depends: KVec<u64>,
    /// The room it takes in the handover, at most, counted in its
    /// session's `files_room` while it is there.
    room: usize,
    /// The most its handler's state may take, as counted in `room`.
    max_state: usize,
}

impl OutgoingFile {
    /// Whether the file is preserved by the handler `compatible`.
    pub(crate) fn uses(&self, compatible: &[u8]) -> bool {
        self.handler.compatible().to_bytes() == compatible
    }

    /// Undoes PREPARE/FREEZE if they ran.
    fn cancel(&mut self) {
        if self.data.take().is_some() {
            self.state.cancel();
        }
    }

    /// The file's key in [`PRESERVED_FILES`].
    fn key(file: &File) -> usize {
        core::ptr::from_ref(file) as usize
    }

    /// What the file is to the files that depend on it.
    fn object(&self) -> usize {
        self.state.object().unwrap_or(Self::key(&self.file))
    }

    /// Whether the file is the one `d` names.
    fn is(&self, d: &Dependency) -> bool {
        self.object() == d.object && self.handler.compatible() == d.handler
    }

    /// Refuses a handler's state larger than the room counted for it at
    /// PRESERVE_FD: the handover could not be written (`EINVAL`, naming
    /// the culprit, rather than a failure to write the record later).
    fn check_state(&self) -> Result {
        let (len, max) = (self.state.state().len(), self.max_state);
        if len <= max {
            return Ok(());
        }
        pr_err!(
            "handler {:?} gave file {:#x} {} bytes of state, more than its {}\n",
            self.handler.compatible(),
            self.token,
            len,
            max
        );
        Err(EINVAL)
    }

    /// The room a file of `handler` whose state takes up to `max_state`
    /// bytes takes in the handover, at most.
    fn room(handler: &dyn FileHandler, max_state: usize) -> usize {
        luo_handover::file_room(
            handler.compatible().to_bytes(),
            handler.max_dependencies(),
            max_state,
        )
    }
}

impl Drop for OutgoingFile {
    fn drop(&mut self) {
        let mut preserved = PRESERVED_FILES.lock();
        preserved.files.remove(&Self::key(&self.file));
        preserved.per_owner.sub(&self.owner);
    }
}

/// One file as the debugfs view shows it.
pub(crate) struct FileView<'a> {
    pub(crate) token: u64,
    /// The handler's compatible string.
    pub(crate) compatible: &'a [u8],
    /// "preserved", "prepared", "incoming" or "retrieved".
    pub(crate) status: &'static str,
}

/// A file an incoming session brought.
pub(crate) struct IncomingFile {
    /// Names it among every incoming file of this boot
    /// ([`HandedOver::key`]).
    key: u64,
    token: u64,
    /// Its handler's compatible string; the handler is looked up when it
    /// is needed, so one registered late still finds its files.
    compatible: Name,
    data: u64,
    /// Its handler's state in the handover (empty if it has none); taken
    /// out while its handler works on it ([`IncomingFile::handed_over`]).
    state: KVec<u8>,
    /// The files of its session it depends on: their tokens as decoded,
    /// then, once [`IncomingFile::link`] checked them, their positions in
    /// the session's list (each before this file).
    depends: KVec<u64>,
    /// The file the first successful RETRIEVE_FD made, given again to
    /// later ones. A failed one decides nothing: the handler keeps what it
    /// built for the next attempt, and finish() frees it.
    retrieved: Option<ARef<File>>,
    /// Marks the file while [`Session::needed_by`] collects files to
    /// rebuild; false otherwise.
    queued: bool,
}

impl IncomingFile {
    /// A file of an incoming record.
    pub(crate) fn new(record: &FileRecord<'_>) -> Result<Self> {
        let mut depends = KVec::with_capacity(record.depends.len(), GFP_KERNEL)?;
        for token in record.depends.tokens() {
            depends.push(token, GFP_KERNEL)?;
        }
        let mut state = KVec::with_capacity(record.state.len(), GFP_KERNEL)?;
        state.extend_from_slice(record.state, GFP_KERNEL)?;
        Ok(Self {
            key: NEXT_INCOMING_KEY.fetch_add(1, Relaxed),
            token: record.token,
            compatible: Name::from_bytes(record.compatible).map_err(|_| EINVAL)?,
            data: record.data,
            state,
            depends,
            retrieved: None,
            queued: false,
        })
    }

    /// Checks that the file, at `position` in its session, depends only
    /// on files before it, and turns its dependencies' tokens into their
    /// positions; `tokens` are the session's (token, position) pairs,
    /// sorted by token. False if it does not.
    pub(crate) fn link(&mut self, tokens: &[(u64, u32)], position: u32) -> bool {
        for dep in self.depends.iter_mut() {
            match luo_handover::dependency_position(tokens, position, *dep) {
                Some(p) => *dep = u64::from(p),
                None => return false,
            }
        }
        true
    }

    /// The registered handler of this file, if any.
    fn handler(&self) -> Option<&'static dyn FileHandler> {
        crate::luo_file::handler_named(self.compatible.as_bytes())
    }

    /// The token userspace preserved the file with.
    pub(crate) fn token(&self) -> u64 {
        self.token
    }

    /// Whether retrieve() succeeded: then the file owns what the handover
    /// kept, and finish() only lets go of the rest.
    fn retrieve_ran(&self) -> bool {
        self.retrieved.is_some()
    }

    /// What its handler handed over.
    fn handed_over(&self) -> HandedOver<'_> {
        HandedOver {
            key: self.key,
            data: self.data,
            state: &self.state,
        }
    }
}

/// The key of the next incoming file; keys are never reused within a boot.
static NEXT_INCOMING_KEY: Atomic<u64> = Atomic::new(1);

/// Id of the next session; ids are never reused within a boot.
static NEXT_ID: Atomic<u64> = Atomic::new(1);

kernel::sync::global_lock! {
    // SAFETY: initialised in module init, before the device is registered.
    //
    // Locking: taken after CORE (luo_core.rs) and before any session's
    // `restoring` and `inner`. Never held across a call that may take CORE.
    unsafe(uninit) static SESSIONS: Mutex<Registry> = Registry {
        all: KVec::new(),
        named: None,
        outgoing_named: Tally::new(),
    };
}

kernel::sync::global_lock! {
    // SAFETY: initialised in module init, before the device is registered.
    //
    // Locking: a leaf. Every `OutgoingFile` adds itself and takes itself
    // out when it goes.
    unsafe(uninit) static PRESERVED_FILES: Mutex<PreservedFiles> = PreservedFiles {
        files: KeySet::new(),
        per_owner: Tally::new(),
    };
}

/// The files outgoing sessions hold (or held, closed while FROZEN).
struct PreservedFiles {
    /// Their addresses: a file is preserved once.
    files: KeySet<usize>,
    /// How many each user has.
    per_owner: Tally<Owner>,
}

/// Refuses one more session or file of a user who has `count` and may
/// have `limit`: `EDQUOT`, unless the caller has `CAP_SYS_RESOURCE`.
fn within_limit(count: usize, limit: u32) -> Result {
    if count < limit as usize || capable::sys_resource() {
        Ok(())
    } else {
        Err(EDQUOT)
    }
}

/// The per-user limits, as the admin set them
/// (/sys/kernel/liveupdate/max_*_per_user).
fn max_sessions_per_user() -> u32 {
    // SAFETY: the C side only reads an integer.
    unsafe { bindings::luo_max_sessions_per_user() }
}

fn max_files_per_user() -> u32 {
    // SAFETY: the C side only reads an integer.
    unsafe { bindings::luo_max_files_per_user() }
}

/// Initialises the registry; called once from module init.
pub(crate) fn init() {
    // SAFETY: called once, before any session can be created.
    unsafe { SESSIONS.init() };
    // SAFETY: as above, before any file can be preserved.
    unsafe { PRESERVED_FILES.init() };
}

/// Every live session.
struct Registry {
    /// In creation order.
    all: KVec<Arc<Session>>,
    /// The named ones, by their unique key; made on first use (a static's
    /// initial value must be constant).
    named: Option<RBTree<NameKey, Arc<Session>>>,
    /// How many named outgoing sessions each user has: the ones the limit
    /// counts (an unnamed one, of an `open()`, holds no file).
    outgoing_named: Tally<Owner>,
}

/// Room to file a session under a name, allocated beforehand.
struct NameRoom {
    node: RBTreeNodeReservation<NameKey, Arc<Session>>,
    count: TallyRoom<Owner>,
}

impl NameRoom {
    fn new() -> Result<Self> {
        Ok(Self {
            node: RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?,
            count: Tally::room()?,
        })
    }
}

/// A named session's unique key: names are unique per direction and
/// owner. Ordered so that one name's sessions of every owner are
/// neighbours.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct NameKey {
    origin: Origin,
    name: Name,
    owner: Owner,
}

impl Registry {
    /// The session filed under `key`.
    fn find(&self, key: &NameKey) -> Option<&Arc<Session>> {
        self.named.as_ref()?.get(key)
    }

    /// Whether `name` is taken for sessions of `origin` and `owner`; the
    /// empty name (unnamed) never is.
    fn taken(&self, origin: Origin, owner: Owner, name: &Name) -> bool {
        !name.is_empty()
            && self
                .find(&NameKey {
                    origin,
                    name: *name,
                    owner,
                })
                .is_some()
    }

    /// Refuses a new named outgoing session of `owner` beyond the limit.
    fn may_name(&self, origin: Origin, owner: Owner) -> Result {
        if origin == Origin::Incoming {
            return Ok(());
        }
        within_limit(self.outgoing_named.get(&owner), max_sessions_per_user())
    }

    /// Files `session` under `name` (not empty), in `room`.
    fn file_name(&mut self, session: &Arc<Session>, name: Name, room: NameRoom) {
        let key = NameKey {
            origin: session.origin,
            name,
            owner: session.owner,
        };
        self.named
            .get_or_insert_with(RBTree::new)
            .insert(room.node.into_node(key, session.clone()));
        if session.origin == Origin::Outgoing {
            self.outgoing_named.add(session.owner, room.count);
        }
    }

    /// Takes `session`'s filing under `name` out, if it is there.
    fn unfile_name(&mut self, session: &Session, name: Name) {
        let key = NameKey {
            origin: session.origin,
            name,
            owner: session.owner,
        };
        let Some(named) = &mut self.named else {
            return;
        };
        if named.get(&key).is_some_and(|s| s.id == session.id) {
            named.remove(&key);
            if session.origin == Origin::Outgoing {
                self.outgoing_named.sub(&session.owner);
            }
        }
    }
}

/// The mutable part of a session.
struct Inner {
    /// Changed only with [`SESSIONS`] held too, so uniqueness checks see a
    /// stable set of names.
    name: Name,
    /// Incoming only: a retrieved fd holds the session.
    claimed: bool,
    /// Incoming only: finished; nothing is left in it.
    finished: bool,
    /// Outgoing only: the preserved files, in PRESERVE_FD order (every
    /// file after those it needs, which PRESERVE_FD requires; PREPARE and
    /// FREEZE restore that order if what a file needs changed since).
    files: KVec<OutgoingFile>,
    /// Bytes `files` take in the handover, at most: a session must fit
    /// in one blob.
    files_room: usize,
    /// Incoming only: the files handed over, in the record's order (every
    /// file after those it needs).
    incoming: KVec<IncomingFile>,
    /// Incoming only: their tokens and positions in `incoming`, sorted by
    /// token, so that RETRIEVE_FD finds a file in O(log n).
    incoming_by_token: KVec<(u64, usize)>,
}

/// One session.
#[pin_data]
pub(crate) struct Session {
    id: u64,
    origin: Origin,
    owner: Owner,
    /// Incoming only: held across a handler's retrieve() and while the
    /// session's files are finished, so that no file is finished while it
    /// is being rebuilt, and one file is rebuilt by one caller at a time.
    /// Retrieves in other sessions go on meanwhile: a VMM per VM restores
    /// at the same time as the others.
    ///
    /// Locking: taken after CORE and [`SESSIONS`] (FINISH), or with no
    /// other luo-rs lock (RETRIEVE_FD); before `inner`.
    #[pin]
    restoring: Mutex<()>,
    #[pin]
    inner: Mutex<Inner>,
}

impl Session {
    fn new(
        origin: Origin,
        owner: Owner,
        name: Name,
        incoming: KVec<IncomingFile>,
        sessions: &mut Registry,
    ) -> Result<Arc<Session>> {
        if sessions.taken(origin, owner, &name) {
            return Err(EEXIST);
        }
        // Room first: nothing fails once the session exists.
        let room = if name.is_empty() {
            None
        } else {
            sessions.may_name(origin, owner)?;
            Some(NameRoom::new()?)
        };
        sessions.all.reserve(1, GFP_KERNEL)?;
        let mut incoming_by_token = KVec::with_capacity(incoming.len(), GFP_KERNEL)?;
        for (i, f) in incoming.iter().enumerate() {
            incoming_by_token.push((f.token, i), GFP_KERNEL)?;
        }
        incoming_by_token.sort_unstable();
        let session = Arc::pin_init(
            try_pin_init!(Session {
                id: NEXT_ID.fetch_add(1, Relaxed),
                origin,
                owner,
                restoring <- new_mutex!(()),
                inner <- new_mutex!(Inner {
                    name,
                    claimed: false,
                    finished: false,
                    files: KVec::new(),
                    files_room: 0,
                    incoming,
                    incoming_by_token,
                }),
            }),
            // The caller's, in its memory cgroup (at boot: nobody's).
            GFP_KERNEL_ACCOUNT,
        )?;
        sessions
            .all
            .push_within_capacity(session.clone())
            .map_err(|_| ENOMEM)?;
        if let Some(room) = room {
            sessions.file_name(&session, name, room);
        }
        Ok(session)
    }

    /// Creates an outgoing session of the caller and registers it;
    /// `EEXIST` if the caller has an outgoing session named `name`.
    pub(crate) fn create(name: Name) -> Result<Arc<Session>> {
        let owner = Owner::current();
        Self::new(
            Origin::Outgoing,
            owner,
            name,
            KVec::new(),
            &mut SESSIONS.lock(),
        )
    }

    /// Registers a session handed over by the previous kernel.
    pub(crate) fn create_incoming(
        name: Name,
        owner: Owner,
        files: KVec<IncomingFile>,
    ) -> Result<Arc<Session>> {
        Self::new(Origin::Incoming, owner, name, files, &mut SESSIONS.lock())
    }

    /// Claims the incoming session `name` for a new fd, on behalf of the
    /// user `caller`; `admin` tells, when asked, whether it has
    /// `CAP_SYS_ADMIN`.
    ///
    /// The caller's own session of that name comes first. Failing that, an
    /// admin gets the one session of that name; `ENOTUNIQ` if several users
    /// have one. `ENOENT` if there is none, `EACCES` if it is another
    /// user's (and the caller is no admin), `EINVAL` if an fd already
    /// holds it (as upstream answers).
    pub(crate) fn claim(
        name: &Name,
        caller: Kuid,
        admin: impl FnOnce() -> Admin,
    ) -> Result<Arc<Session>> {
        let sessions = SESSIONS.lock();
        let key = |owner| NameKey {
            origin: Origin::Incoming,
            name: *name,
            owner,
        };
        let session = match sessions.find(&key(Owner::of(caller))) {
            Some(own) => own.clone(),
            None => {
                // The sessions of that name, of any owner, are neighbours.
                let cursor = sessions
                    .named
                    .as_ref()
                    .and_then(|n| n.cursor_lower_bound(&key(Owner(0))))
                    .filter(|c| {
                        let (k, _) = c.current();
                        k.origin == Origin::Incoming && k.name == *name
                    })
                    .ok_or(ENOENT)?;
                if admin() == Admin::No {
                    return Err(EACCES);
                }
                let next_same = cursor
                    .peek_next()
                    .is_some_and(|(k, _)| k.origin == Origin::Incoming && k.name == *name);
                if next_same {
                    return Err(ENOTUNIQ);
                }
                cursor.current().1.clone()
            }
        };
        let mut inner = session.inner.lock();
        if inner.claimed {
            return Err(EINVAL);
        }
        inner.claimed = true;
        drop(inner);
        Ok(session)
    }

    /// The fd holding this incoming session is being released: it can be
    /// claimed again.
    pub(crate) fn unclaim(&self) {
        self.inner.lock().claimed = false;
    }

    /// Ends an outgoing session whose last fd was closed. Its files are
    /// unpreserved, after undoing PREPARE/FREEZE if `cancel`; if `keep`,
    /// they are handed to the caller instead (the update is committed).
    pub(crate) fn close(&self, cancel: bool, keep: bool) -> KVec<OutgoingFile> {
        self.unregister();
        let mut inner = self.inner.lock();
        inner.files_room = 0;
        let mut files = core::mem::take(&mut inner.files);
        drop(inner);
        if keep {
            return files;
        }
        if cancel {
            for f in files.iter_mut().rev() {
                f.cancel();
            }
        }
        KVec::new()
    }

    /// Whether this session may take a file under `token`: `EINVAL` if
    /// it is unnamed, `EEXIST` if the token is taken. Asked before the
    /// handler takes the file, and again when it is added.
    pub(crate) fn may_preserve(&self, token: u64) -> Result {
        let inner = self.inner.lock();
        if inner.name.is_empty() {
            // Only named sessions are handed over.
            return Err(EINVAL);
        }
        if inner.files.iter().any(|f| f.token == token) {
            return Err(EEXIST);
        }
        Ok(())
    }

    /// What PRESERVE_FD of `file` with `handler` would be refused for
    /// beyond [`Session::may_preserve`]: `EBUSY` if the file is preserved
    /// already, `EDQUOT` past the owner's limit of files, `E2BIG` if the
    /// session would not fit in a handover blob. Checked before the
    /// handler's work, so that nothing heavy is done for a file that will
    /// be refused, and again when the file is added.
    pub(crate) fn may_add(&self, file: &File, handler: &dyn FileHandler) -> Result {
        let has = {
            let preserved = PRESERVED_FILES.lock();
            if preserved.files.contains(&OutgoingFile::key(file)) {
                return Err(EBUSY);
            }
            preserved.per_owner.get(&self.owner)
        };
        within_limit(has, max_files_per_user())?;
        // The least a file of the handler takes; preserve() checks again
        // with what the handler's state may take.
        let room = OutgoingFile::room(handler, 0);
        if self.inner.lock().files_room + room > luo_handover::MAX_FILES_ROOM {
            return Err(E2BIG);
        }
        Ok(())
    }

    /// PRESERVE_FD: adds `file` under `token`, preserved by `handler` as
    /// `state`, which it takes. If the file is refused, `state` is left to
    /// the caller, to drop with no luo-rs lock held (undoing the handler's
    /// work may take long). The caller checked the state.
    pub(crate) fn preserve(
        &self,
        token: u64,
        file: ARef<File>,
        handler: &'static dyn FileHandler,
        state: &mut Option<KBox<dyn Preserved>>,
    ) -> Result {
        // Serialises PRESERVE_FDs: what is checked stays true until the
        // file is added.
        let _sessions = SESSIONS.lock();
        self.may_preserve(token)?;
        self.may_add(&file, handler)?;
        let max_state = state.as_ref().ok_or(EINVAL)?.max_state();
        if max_state > luo_handover::STATE_MAX {
            return Err(EINVAL);
        }
        let room = OutgoingFile::room(handler, max_state);
        let key = OutgoingFile::key(&file);
        let node = KeySet::node(key)?;
        let count = Tally::room()?;
        {
            let mut inner = self.inner.lock();
            // What the file needs is in the session already.
            let needs = state.as_ref().ok_or(EINVAL)?.dependencies();
            if needs.len() > handler.max_dependencies() {
                return Err(EINVAL);
            }
            if !needs.iter().all(|d| inner.files.iter().any(|f| f.is(d))) {
                return Err(ENOLINK);
            }
            if inner.files_room + room > luo_handover::MAX_FILES_ROOM {
                return Err(E2BIG);
            }
            inner.files.reserve(1, GFP_KERNEL_ACCOUNT)?;
        }
        let state = state.take().ok_or(EINVAL)?;
        // From here nothing fails. Its drop takes the file out again.
        let mut preserved = PRESERVED_FILES.lock();
        preserved.files.insert(node);
        preserved.per_owner.add(self.owner, count);
        drop(preserved);
        let mut inner = self.inner.lock();
        let added = inner.files.push_within_capacity(OutgoingFile {
            owner: self.owner,
            token,
            handler,
            file,
            state,
            data: None,
            depends: KVec::new(),
            room,
            max_state,
        });
        if added.is_ok() {
            inner.files_room += room;
        }
        added.map_err(|_| ENOMEM)
    }

    /// UNPRESERVE_FD: removes the file preserved under `token`; `EBUSY`
    /// while another file of the session needs it.
    pub(crate) fn unpreserve(&self, token: u64) -> Result {
        let mut inner = self.inner.lock();
        let i = inner
            .files
            .iter()
            .position(|f| f.token == token)
            .ok_or(ENOENT)?;
        let needed = inner.files.get(i).is_some_and(|f| {
            inner
                .files
                .iter()
                .any(|g| g.token != token && g.state.dependencies().iter().any(|d| f.is(d)))
        });
        if needed {
            return Err(EBUSY);
        }
        let mut f = inner.files.remove(i).map_err(|_| ENOENT)?;
        inner.files_room = inner.files_room.saturating_sub(f.room);
        f.cancel();
        Ok(())
    }

    /// RETRIEVE_FD: the file handed over under `token`, rebuilt by its
    /// handler on first success; later calls get the same file. The files
    /// it depends on are retrieved first, if user space has not yet. Called
    /// with no luo-rs lock held: the rebuilds run under this session's
    /// `restoring` lock only.
    pub(crate) fn retrieve(&self, token: u64) -> Result<ARef<File>> {
        let _restoring = self.restoring.lock();
        let (wanted, needs_others) = {
            let inner = self.inner.lock();
            let by_token = &inner.incoming_by_token;
            let i = by_token
                .binary_search_by_key(&token, |&(t, _)| t)
                .ok()
                .and_then(|k| by_token.get(k))
                .map(|&(_, i)| i)
                .ok_or(ENOENT)?;
            let f = inner.incoming.get(i).ok_or(ENOENT)?;
            if let Some(file) = &f.retrieved {
                return Ok(file.clone());
            }
            (i, !f.depends.is_empty())
        };
        if needs_others {
            // Front to back: every file's dependencies are before it.
            for i in self.needed_by(wanted)? {
                if crate::sched::killed() {
                    return Err(EINTR);
                }
                self.rebuild(i)?;
            }
        }
        self.rebuild(wanted)
    }

    /// The positions of the files not retrieved yet that the incoming file
    /// at `wanted` needs, directly or not, in ascending order (`wanted`
    /// not included). A retrieved file's own needs were retrieved before
    /// it: the walk stops there.
    fn needed_by(&self, wanted: usize) -> Result<KVec<usize>> {
        let mut inner = self.inner.lock();
        let mut needed = KVec::new();
        let mut walk = KVec::new();
        walk.push(wanted, GFP_KERNEL)?;
        let result = (|| -> Result {
            while let Some(i) = walk.pop() {
                let n = inner.incoming.get(i).map_or(0, |f| f.depends.len());
                for k in 0..n {
                    let dep = inner
                        .incoming
                        .get(i)
                        .and_then(|f| f.depends.get(k))
                        .and_then(|&d| usize::try_from(d).ok())
                        .ok_or(EINVAL)?;
                    let f = inner.incoming.get_mut(dep).ok_or(EINVAL)?;
                    if f.queued || f.retrieved.is_some() {
                        continue;
                    }
                    f.queued = true;
                    needed.push(dep, GFP_KERNEL)?;
                    walk.push(dep, GFP_KERNEL)?;
                }
            }
            Ok(())
        })();
        for &i in needed.iter() {
            if let Some(f) = inner.incoming.get_mut(i) {
                f.queued = false;
            }
        }
        result?;
        needed.sort_unstable();
        Ok(needed)
    }

    /// Rebuilds the incoming file at `i` if it is not yet, with the files
    /// it depends on, which must be.
    fn rebuild(&self, i: usize) -> Result<ARef<File>> {
        let (handler, key, data, state, depends) = {
            let mut inner = self.inner.lock();
            let f = inner.incoming.get(i).ok_or(ENOENT)?;
            if let Some(file) = &f.retrieved {
                return Ok(file.clone());
            }
            // Without a handler nothing is decided: one may register later
            // (a module), and then its files are waiting for it.
            let handler = f.handler().ok_or(EOPNOTSUPP)?;
            let mut depends = KVec::with_capacity(f.depends.len(), GFP_KERNEL)?;
            for &dep in f.depends.iter() {
                let dep = usize::try_from(dep).map_err(|_| EINVAL)?;
                let file = inner.incoming.get(dep).and_then(|d| d.retrieved.clone());
                depends.push(file.ok_or(EINVAL)?, GFP_KERNEL)?;
            }
            let f = inner.incoming.get_mut(i).ok_or(ENOENT)?;
            // Out of the list while the handler reads it, back after.
            let state = core::mem::take(&mut f.state);
            (handler, f.key, f.data, state, depends)
        };
        // The file stays incoming while `restoring` is held (FINISH takes
        // it too), so its handler cannot be unregistered meanwhile.
        let handed_over = HandedOver {
            key,
            data,
            state: &state,
        };
        let result = handler.retrieve(&handed_over, &depends);
        let mut inner = self.inner.lock();
        let f = inner.incoming.get_mut(i).ok_or(ENOENT)?;
        f.state = state;
        let file = result?;
        f.retrieved = Some(file.clone());
        Ok(file)
    }

    /// Finishes every incoming file; unless `force`, first checks that
    /// each handler agrees (`EBUSY` otherwise, nothing changed).
    pub(crate) fn finish_files(&self, force: bool) -> Result {
        // Waits for a rebuild in progress in this session.
        let _restoring = self.restoring.lock();
        let mut inner = self.inner.lock();
        if !force {
            let busy = inner.incoming.iter().any(|f| {
                f.handler()
                    .is_some_and(|h| !h.can_finish(&f.handed_over(), f.retrieve_ran()))
            });
            if busy {
                return Err(EBUSY);
            }
        }
        // Back to front: a file is finished before the files it depends on
        // (an iommufd's page tables go before the memory they map).
        inner.incoming_by_token.clear();
        while let Some(f) = inner.incoming.pop() {
            match f.handler() {
                Some(h) => h.finish(&f.handed_over(), f.retrieve_ran()),
                None => pr_warn!("no handler finishes an incoming file: its memory stays\n"),
            }
        }
        inner.finished = true;
        Ok(())
    }

    /// Whether the session was finished, and how many files it holds
    /// (preserved, or handed over and not finished).
    pub(crate) fn status(&self) -> (bool, usize) {
        let inner = self.inner.lock();
        (inner.finished, inner.files.len() + inner.incoming.len())
    }

    /// Calls `f` on each of the session's files, for the debugfs view.
    pub(crate) fn for_each_file(&self, mut f: impl FnMut(FileView<'_>)) {
        let inner = self.inner.lock();
        for file in inner.files.iter() {
            f(FileView {
                token: file.token,
                compatible: file.handler.compatible().to_bytes(),
                status: if file.data.is_some() {
                    "prepared"
                } else {
                    "preserved"
                },
            });
        }
        for file in inner.incoming.iter() {
            f(FileView {
                token: file.token,
                compatible: file.compatible.as_bytes(),
                status: if file.retrieved.is_some() {
                    "retrieved"
                } else {
                    "incoming"
                },
            });
        }
    }

    /// Whether the session has a name.
    pub(crate) fn is_named(&self) -> bool {
        !self.inner.lock().name.is_empty()
    }

    /// Ends the session: it leaves the registry and its name is free.
    pub(crate) fn unregister(&self) {
        let mut sessions = SESSIONS.lock();
        sessions.all.retain(|s| s.id != self.id);
        let name = self.inner.lock().name;
        if !name.is_empty() {
            sessions.unfile_name(self, name);
        }
    }

    /// The session's id, unique within this boot.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The user the session belongs to.
    pub(crate) fn owner(&self) -> Owner {
        self.owner
    }

    /// Whether the session is outgoing or incoming.
    pub(crate) fn origin(&self) -> Origin {
        self.origin
    }

    /// The session's name (empty if unnamed).
    pub(crate) fn name(&self) -> Name {
        self.inner.lock().name
    }

    /// Renames the session; `EEXIST` if another session of its owner and
    /// direction has `name`. Only its owner, or an admin, may: the name
    /// says whose files the next kernel hands to which claimant, and a
    /// session fd passed to another user (by an agent that hands out
    /// sessions, say) must not let that user move them under another name
    /// (`EPERM`).
    pub(crate) fn set_name(
        &self,
        name: Name,
        caller: Owner,
        admin: impl FnOnce() -> Admin,
    ) -> Result {
        if caller != self.owner && admin() == Admin::No {
            return Err(EPERM);
        }
        let mut sessions = SESSIONS.lock();
        let old = self.inner.lock().name;
        if old == name {
            return Ok(());
        }
        if sessions.taken(self.origin, self.owner, &name) {
            return Err(EEXIST);
        }
        if old.is_empty() {
            // Named now: it counts against the limit from here.
            sessions.may_name(self.origin, self.owner)?;
        }
        let room = NameRoom::new()?;
        let this = sessions
            .all
            .iter()
            .find(|s| s.id == self.id)
            .cloned()
            .ok_or(ENOENT)?;
        if !old.is_empty() {
            sessions.unfile_name(self, old);
        }
        if !name.is_empty() {
            sessions.file_name(&this, name, room);
        }
        self.inner.lock().name = name;
        Ok(())
    }
}

/// Calls `f` on every live session, in creation order.
pub(crate) fn for_each(mut f: impl FnMut(&Session)) {
    for s in SESSIONS.lock().all.iter() {
        f(s);
    }
}

/// One outgoing session's part of the handover.
pub(crate) struct Snapshot<'a> {
    pub(crate) name: Name,
    pub(crate) owner: Owner,
    pub(crate) files: KVec<FileRecord<'a>>,
}

/// Calls `f` on every outgoing session that goes into the handover: the
/// named ones (an unnamed session could not be retrieved).
fn each_handed_over(mut f: impl FnMut(&Session, &mut Inner) -> Result) -> Result {
    let sessions = SESSIONS.lock();
    for s in sessions.all.iter().filter(|s| s.origin == Origin::Outgoing) {
        let mut inner = s.inner.lock();
        if !inner.name.is_empty() {
            f(s, &mut inner)?;
        }
    }
    Ok(())
}

/// The sessions' part of the handover record, copied out of the sessions
/// by [`SessionsRecord::read`]: what [`SessionsRecord::snapshot`] lends to
/// the encoder, and what FREEZE holds the sessions against
/// ([`SessionsRecord::matches`]) to write nothing if nothing changed.
pub(crate) struct SessionsRecord {
    /// Every session that goes into the handover, in order.
    sessions: KVVec<SessionFixed>,
    /// Their files, one session after the other.
    files: KVVec<FileFixed>,
    /// The files' dependencies, as the `depends` properties carry them,
    /// one file after the other.
    depends: KVVec<u8>,
    /// The files' handlers' states ([`Preserved::state`]), one file after
    /// the other.
    states: KVVec<u8>,
}

/// A session of a [`SessionsRecord`].
struct SessionFixed {
    name: Name,
    owner: Owner,
    files: usize,
}

/// A file of a [`SessionsRecord`]; its dependencies and state are the
/// next `depends` tokens and `state` bytes of the record.
struct FileFixed {
    compatible: &'static CStr,
    token: u64,
    data: u64,
    depends: usize,
    state: usize,
}

impl FileFixed {
    fn of(f: &OutgoingFile) -> Result<Self> {
        Ok(Self {
            compatible: f.handler.compatible(),
            token: f.token,
            data: f.data.ok_or(EINVAL)?,
            depends: f.depends.len(),
            state: f.state.state().len(),
        })
    }
}

impl SessionsRecord {
    /// Copies the record out of every session that goes into the
    /// handover. Call after [`link_files`], with the core lock held.
    pub(crate) fn read() -> Result<Self> {
        // Everything sized first: no copy grows (and moves) meanwhile.
        let (mut sessions, mut files, mut depends, mut states) = (0, 0, 0, 0);
        each_handed_over(|_, inner| {
            sessions += 1;
            files += inner.files.len();
            for f in inner.files.iter() {
                depends += 8 * f.depends.len();
                states += f.state.state().len();
            }
            Ok(())
        })?;
        let mut out = Self {
            sessions: KVVec::with_capacity(sessions, GFP_KERNEL)?,
            files: KVVec::with_capacity(files, GFP_KERNEL)?,
            depends: KVVec::with_capacity(depends, GFP_KERNEL)?,
            states: KVVec::with_capacity(states, GFP_KERNEL)?,
        };
        each_handed_over(|s, inner| {
            out.sessions.push(
                SessionFixed {
                    name: inner.name,
                    owner: s.owner,
                    files: inner.files.len(),
                },
                GFP_KERNEL,
            )?;
            for f in inner.files.iter() {
                out.files.push(FileFixed::of(f)?, GFP_KERNEL)?;
                for token in f.depends.iter() {
                    out.depends
                        .extend_from_slice(&token.to_be_bytes(), GFP_KERNEL)?;
                }
                out.states.extend_from_slice(f.state.state(), GFP_KERNEL)?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Whether the sessions would read as this record now, word for word;
    /// allocates nothing. Call after [`link_files`], with the core lock
    /// held.
    pub(crate) fn matches(&self) -> bool {
        let mut sessions = self.sessions.iter();
        let mut files = self.files.iter();
        let (mut depends, mut states) = (&self.depends[..], &self.states[..]);
        let same = each_handed_over(|s, inner| {
            let kept = sessions.next().ok_or(ESTALE)?;
            if (kept.name, kept.owner, kept.files) != (inner.name, s.owner, inner.files.len()) {
                return Err(ESTALE);
            }
            for f in inner.files.iter() {
                let kept = files.next().ok_or(ESTALE)?;
                let now = FileFixed::of(f)?;
                let (kept_depends, rest) =
                    depends.split_at_checked(8 * kept.depends).ok_or(ESTALE)?;
                depends = rest;
                let (kept_state, rest) = states.split_at_checked(kept.state).ok_or(ESTALE)?;
                states = rest;
                let same_depends = now.depends == kept.depends
                    && f.depends
                        .iter()
                        .zip(kept_depends.chunks_exact(8))
                        .all(|(token, kept)| token.to_be_bytes() == kept);
                if now.compatible != kept.compatible
                    || (now.token, now.data) != (kept.token, kept.data)
                    || !same_depends
                    || f.state.state() != kept_state
                {
                    return Err(ESTALE);
                }
            }
            Ok(())
        });
        same.is_ok() && sessions.next().is_none() && files.next().is_none()
    }

    /// The record as the encoder takes it.
    pub(crate) fn snapshot(&self) -> Result<KVec<Snapshot<'_>>> {
        let mut out = KVec::with_capacity(self.sessions.len(), GFP_KERNEL)?;
        let mut files = self.files.iter();
        let (mut depends, mut states) = (&self.depends[..], &self.states[..]);
        for s in self.sessions.iter() {
            let mut records = KVec::with_capacity(s.files, GFP_KERNEL)?;
            for f in files.by_ref().take(s.files) {
                let (mine, rest) = depends.split_at_checked(8 * f.depends).ok_or(EINVAL)?;
                depends = rest;
                let (state, rest) = states.split_at_checked(f.state).ok_or(EINVAL)?;
                states = rest;
                records.push(
                    FileRecord {
                        compatible: f.compatible.to_bytes(),
                        token: f.token,
                        data: f.data,
                        depends: Depends::from_bytes(mine).ok_or(EINVAL)?,
                        state,
                    },
                    GFP_KERNEL,
                )?;
            }
            if records.len() != s.files {
                return Err(EINVAL);
            }
            out.push(
                Snapshot {
                    name: s.name,
                    owner: s.owner,
                    files: records,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(out)
    }
}

/// Memory the records of the files that go into the handover keep
/// preserved beside their nodes ([`Preserved::record_bytes`]), in all.
pub(crate) fn record_bytes() -> usize {
    let mut bytes = 0usize;
    // Cannot fail: the closure does not.
    let _ = each_handed_over(|_, inner| {
        for f in inner.files.iter() {
            bytes = bytes.saturating_add(f.state.record_bytes());
        }
        Ok(())
    });
    bytes
}

/// Resolves the dependencies of every file that goes into the handover
/// to tokens of its session, and orders each session's files so that
/// every file comes after those it depends on (`file_deps`). `ENOLINK` if
/// a dependency is not preserved in the same session, `ELOOP` if files
/// depend on each other in a cycle. Called by PREPARE and FREEZE once the
/// files are prepared or frozen, with the core lock held (no file comes
/// or goes meanwhile).
pub(crate) fn link_files() -> Result {
    each_handed_over(|s, inner| link_session(s.owner, &mut inner.files))
}

/// [`link_files`] for the files of one session, of `owner`.
fn link_session(owner: Owner, files: &mut [OutgoingFile]) -> Result {
    if files.iter().all(|f| f.state.dependencies().is_empty()) {
        for f in files.iter_mut() {
            f.depends.clear();
        }
        return Ok(());
    }
    let n = files.len();
    // What each file is, sorted, to find dependencies in O(log n).
    let mut objects = KVec::with_capacity(n, GFP_KERNEL)?;
    for (i, f) in files.iter().enumerate() {
        objects.push((f.object(), i), GFP_KERNEL)?;
    }
    objects.sort_unstable();
    // Each file's dependencies as positions: `edges[starts[i]..starts[i + 1]]`.
    let mut starts = KVec::with_capacity(n + 1, GFP_KERNEL)?;
    let mut edges = KVec::new();
    for f in files.iter() {
        starts.push(edges.len(), GFP_KERNEL)?;
        let deps = f.state.dependencies();
        if deps.len() > f.handler.max_dependencies() {
            pr_err!("a file depends on more files than its handler said\n");
            return Err(EINVAL);
        }
        for d in deps {
            let first = objects.partition_point(|&(o, _)| o < d.object);
            let found = objects
                .get(first..)
                .unwrap_or(&[])
                .iter()
                .take_while(|&&(o, _)| o == d.object)
                .map(|&(_, i)| i)
                .find(|&i| files.get(i).is_some_and(|g| g.is(d)));
            let Some(i) = found else {
                pr_warn!(
                    "a session of uid {}: file {} needs a file of {} the session does not hold\n",
                    owner.to_handover(),
                    f.token,
                    d.handler.to_str().unwrap_or("?")
                );
                return Err(ENOLINK);
            };
            edges.push(i, GFP_KERNEL)?;
        }
    }
    starts.push(edges.len(), GFP_KERNEL)?;
    let depends = |i: usize| -> &[usize] {
        match (starts.get(i), starts.get(i + 1)) {
            (Some(&a), Some(&b)) => edges.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    };
    let mut order = KVec::from_elem(0usize, n, GFP_KERNEL)?;
    let mut visits = KVec::from_elem(Visit::New, n, GFP_KERNEL)?;
    let mut stack = KVec::from_elem((0usize, 0usize), n, GFP_KERNEL)?;
    match file_deps::order(depends, &mut order, &mut visits, &mut stack) {
        Ok(()) => {}
        Err(OrderError::Cycle(i)) => {
            let token = files.get(i).map_or(0, |f| f.token);
            pr_warn!(
                "a session of uid {}: file {} is in a cycle of dependencies\n",
                owner.to_handover(),
                token
            );
            return Err(ELOOP);
        }
        Err(OrderError::Bad) => return Err(EINVAL),
    }
    // Room first: from here nothing fails but a broken order.
    for (i, f) in files.iter_mut().enumerate() {
        f.depends.clear();
        f.depends.reserve(depends(i).len(), GFP_KERNEL)?;
    }
    for i in 0..n {
        for &dep in depends(i) {
            let token = files.get(dep).map(|g| g.token).ok_or(EINVAL)?;
            if let Some(f) = files.get_mut(i) {
                f.depends.push_within_capacity(token).map_err(|_| ENOMEM)?;
            }
        }
    }
    file_deps::permute(files, &mut order).map_err(|_| EINVAL)
}

/// Calls `f` on every preserved file of every outgoing session, in order.
fn each_outgoing_file(mut f: impl FnMut(&mut OutgoingFile) -> Result) -> Result {
    let sessions = SESSIONS.lock();
    for s in sessions.all.iter().filter(|s| s.origin == Origin::Outgoing) {
        for file in s.inner.lock().files.iter_mut() {
            f(file)?;
        }
    }
    Ok(())
}

/// PREPARE of every preserved file. On failure the files already
/// prepared are cancelled (see [`cancel_files`]) before returning.
pub(crate) fn prepare_files() -> Result {
    let result = each_outgoing_file(|f| {
        f.data = Some(f.state.prepare()?);
        f.check_state()
    });
    if result.is_err() {
        cancel_files();
    }
    result
}

/// FREEZE of every preserved file. On failure everything is cancelled.
pub(crate) fn freeze_files() -> Result {
    let result = each_outgoing_file(|f| {
        if f.data.is_some() {
            f.data = Some(f.state.freeze()?);
            f.check_state()?;
        }
        Ok(())
    });
    if result.is_err() {
        cancel_files();
    }
    result
}

/// CANCEL of every preserved file that was prepared, in reverse order.
pub(crate) fn cancel_files() {
    let sessions = SESSIONS.lock();
    for s in sessions
        .all
        .iter()
        .rev()
        .filter(|s| s.origin == Origin::Outgoing)
    {
        for f in s.inner.lock().files.iter_mut().rev() {
            f.cancel();
        }
    }
}

/// Cancels files kept from sessions closed while FROZEN.
pub(crate) fn cancel_kept(files: &mut KVec<OutgoingFile>) {
    for f in files.iter_mut().rev() {
        f.cancel();
    }
    files.clear();
}

/// Shows `f` what was handed over for each incoming file of the handler
/// `compatible` not retrieved yet: at boot, what the handler must keep for
/// its retriever until then.
#[cfg_attr(not(CONFIG_LIVEUPDATE_RS_VFIO), expect(dead_code))]
pub(crate) fn each_incoming_of(compatible: &CStr, mut f: impl FnMut(&HandedOver<'_>)) {
    let sessions = SESSIONS.lock();
    for s in sessions.all.iter().filter(|s| s.origin == Origin::Incoming) {
        let inner = s.inner.lock();
        for file in inner.incoming.iter() {
            if file.compatible.as_bytes() == compatible.to_bytes() && !file.retrieve_ran() {
                f(&file.handed_over());
            }
        }
    }
}

/// Whether a session holds a file of the handler `compatible`: preserved,
/// or handed over and not finished.
pub(crate) fn uses_handler(compatible: &[u8]) -> bool {
    SESSIONS.lock().all.iter().any(|s| {
        let inner = s.inner.lock();
        inner.files.iter().any(|f| f.uses(compatible))
            || inner
                .incoming
                .iter()
                .any(|f| f.compatible.as_bytes() == compatible)
    })
}

/// Number of incoming sessions not finished yet.
pub(crate) fn incoming_left() -> usize {
    SESSIONS
        .lock()
        .all
        .iter()
        .filter(|s| s.origin == Origin::Incoming)
        .count()
}

/// Ends every incoming session (global FINISH), finishing all their files
/// whatever the handlers say; fds that hold one keep an ended session
/// that can only be finished again.
pub(crate) fn finish_all_incoming() {
    let mut sessions = SESSIONS.lock();
    for s in sessions.all.iter().filter(|s| s.origin == Origin::Incoming) {
        // Cannot fail when forced.
        let _ = s.finish_files(true);
    }
    sessions.all.retain(|s| s.origin != Origin::Incoming);
    if let Some(named) = &mut sessions.named {
        // Incoming keys sort after every outgoing one.
        while let Some(cursor) = named.cursor_back_mut() {
            if cursor.current().0.origin != Origin::Incoming {
                break;
            }
            drop(cursor.remove_current());
        }
    }
}

/// Number of sessions alive now.
pub(crate) fn live_sessions() -> usize {
    SESSIONS.lock().all.len()
}
