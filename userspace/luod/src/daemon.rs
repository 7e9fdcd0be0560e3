// SPDX-License-Identifier: GPL-2.0

//! The daemon: a thread per client connection, one shared state.
//!
//! - A client asks for a session by name. If the policy gives it that
//!   name, luod retrieves the session (`luod/NAME` in the kernel) if the
//!   previous kernel handed one of luod's own over, or creates it, and
//!   passes the session fd. luod keeps no session fd of its own: the
//!   session lives in its client, and luod holds no state the kernel does
//!   not also hold. A client holding a session from a luod before this
//!   one shows it with Hold and the session fd, and is its holder again.
//! - An update (asked by a uid-0 client, from NORMAL) first sends Quiesce to
//!   every connected client holding a session (but the one asking), and
//!   waits, up to the quiesce timeout, for each one's Ready to that very
//!   update; no session is handed out meanwhile, and a session of luod's
//!   whose holder is not connected (luod restarted since, and the holder did
//!   not come back with a Hold) stops the update, since nobody could quiesce
//!   it. Then PREPARE, FREEZE and the kexec. Any failure cancels what was
//!   done and, once the system is NORMAL again, sends Resume.
//! - After an update, the incoming sessions of luod's that its policy names
//!   and no client claimed within the claim timeout are finished (freed);
//!   asking for one after that is refused (`ESTALE`), never answered with a
//!   new, empty session. Sessions of other users, and root's that are not
//!   luod's (systemd's "systemd", say), are never touched.

use crate::policy::{self, Peer, Policy};
use crate::protocol::{self, Message, Request};
use crate::transport::{self, Wait};
use liveupdate::{kexec, status, Event, LiveUpdate, State};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Connections served at once (a thread each): in all, per uid, and of
/// users no rule of the policy covers (who are only told so).
const MAX_CLIENTS: usize = 1024;
const MAX_CLIENTS_PER_UID: usize = 64;
const MAX_UNCOVERED: usize = 16;

/// How long luod waits for room in the queue of a client that does not
/// read before it sends Quiesce or Resume.
const BROADCAST_WAIT: Duration = Duration::from_millis(500);

/// How luod runs.
pub struct Config {
    /// Who may have which session.
    pub policy: Policy,
    /// How long clients have to answer Quiesce.
    pub quiesce_timeout: Duration,
    /// How long after an update clients have to claim their sessions.
    pub claim_timeout: Duration,
    /// luo-rs's status view: whose incoming sessions there are, and which
    /// of luod's sessions exist.
    pub status_view: PathBuf,
}

/// One client connection.
struct Conn {
    fd: Arc<OwnedFd>,
    peer: Peer,
    /// The sessions (client names) luod handed to it.
    holds: Vec<String>,
}

/// The update being prepared.
struct Update {
    number: u64,
    /// The connections that must say Ready, and whether they did.
    waiting: HashMap<u64, bool>,
}

/// Locking: `inner` is held for short steps only, never across a kernel
/// call or a send; the update thread waits on `ready` with it. `claims`
/// orders a client's claim of an incoming session against the expiry of
/// the same session: held across the retrieval (a kernel call), and
/// taken before `inner`, never after it.
struct Shared {
    lu: LiveUpdate,
    config: Config,
    euid: u32,
    inner: Mutex<Inner>,
    ready: Condvar,
    claims: Mutex<Claims>,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    update: Option<Update>,
    next_update: u64,
}

/// Incoming sessions (client names) claimed by a client, and expired.
#[derive(Default)]
struct Claims {
    claimed: HashSet<String>,
    expired: HashSet<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking thread leaves plain data behind: go on with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

fn log(what: std::fmt::Arguments<'_>) {
    // Logging must not take luod down (stderr gone, say).
    let _ = writeln!(std::io::stderr(), "luod: {what}");
}

/// A name as it may appear in a log line: a client chose it.
fn shown(name: &str) -> String {
    let mut s: String = name.chars().take(policy::MAX_NAME).collect();
    if s.len() < name.len() {
        s.push_str("...");
    }
    format!("{s:?}")
}

fn error(errno: i32, message: impl Into<String>) -> Message {
    Message::Error {
        errno,
        message: message.into(),
    }
}

/// Answers the client's own request.
fn reply(conn: &OwnedFd, message: &Message, fd: Option<&OwnedFd>) {
    let bytes = protocol::encode(message);
    if let Err(e) = transport::send(conn.as_fd(), &bytes, fd.map(|f| f.as_fd()), Wait::Yes) {
        log(format_args!("cannot answer a client: {e}"));
    }
}

/// Removes its connection when a client's thread ends, however it ends.
struct ConnGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.shared.inner().conns.remove(&self.id);
        // An update waiting for this client hears that it is gone.
        self.shared.ready.notify_all();
    }
}

/// Serves clients on `listener` until it fails. Refuses to start while an
/// update is under way (PREPARED or FROZEN): one luod left it, and the
/// clients it paused cannot be told to resume by this one.
pub fn serve(lu: LiveUpdate, config: Config, listener: OwnedFd) -> std::io::Result<()> {
    let state = lu.state().map_err(std::io::Error::from)?;
    if matches!(state, State::Prepared | State::Frozen) {
        return Err(std::io::Error::other(format!(
            "the state is {state}: an update is under way (luoctl cancel, first)"
        )));
    }
    let shared = Arc::new(Shared {
        lu,
        config,
        euid: rustix::process::geteuid().as_raw(),
        inner: Mutex::new(Inner::default()),
        ready: Condvar::new(),
        claims: Mutex::new(Claims::default()),
    });
    if state == State::Updated {
        let s = shared.clone();
        if let Err(e) = std::thread::Builder::new().spawn(move || expire_unclaimed(&s)) {
            log(format_args!("no expiry of unclaimed sessions: {e}"));
        }
    }
    loop {
        let conn = match transport::accept(listener.as_fd()) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                // Out of fds or memory for a moment: not luod's end.
                log(format_args!("accept: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        accept(&shared, conn);
    }
}

/// Takes a new connection, within the limits: a user no rule covers gets
/// few (each request answered `EACCES`), and never holds an update up.
fn accept(shared: &Arc<Shared>, conn: Arc<OwnedFd>) {
    let peer = match transport::peer(conn.as_fd()) {
        Ok(p) => p,
        Err(e) => return log(format_args!("a client without credentials: {e}")),
    };
    let covered = |p: &Peer| p.uid == 0 || shared.config.policy.covers(p);
    let id = {
        let mut inner = shared.inner();
        let mine = inner
            .conns
            .values()
            .filter(|c| c.peer.uid == peer.uid)
            .count();
        let uncovered = inner.conns.values().filter(|c| !covered(&c.peer)).count();
        if inner.conns.len() >= MAX_CLIENTS
            || mine >= MAX_CLIENTS_PER_UID
            || (!covered(&peer) && uncovered >= MAX_UNCOVERED)
        {
            drop(inner);
            // Closed with nothing read: the client sees the reset.
            return log(format_args!("uid {}: too many connections", peer.uid));
        }
        let id = inner.next_conn;
        inner.next_conn += 1;
        inner.conns.insert(
            id,
            Conn {
                fd: conn.clone(),
                peer: peer.clone(),
                holds: Vec::new(),
            },
        );
        id
    };
    let s = shared.clone();
    let spawned = std::thread::Builder::new().spawn(move || {
        let _guard = ConnGuard { shared: &s, id };
        serve_client(&s, &conn, &peer, id);
    });
    if let Err(e) = spawned {
        log(format_args!("no thread for a client: {e}"));
        shared.inner().conns.remove(&id);
    }
}

fn serve_client(shared: &Shared, conn: &OwnedFd, peer: &Peer, id: u64) {
    loop {
        let (bytes, fd) = match transport::recv(conn.as_fd()) {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                reply(conn, &error(libc::EINVAL, e.to_string()), None);
                continue;
            }
            Err(e) => return log(format_args!("a client's socket: {e}")),
        };
        match (protocol::decode::<Request>(&bytes), fd) {
            (Ok(Request::Hold { name }), Some(fd)) => hold(shared, conn, peer, id, &name, fd),
            (Ok(Request::Hold { .. }), None) => reply(
                conn,
                &error(libc::EINVAL, "hold: the session fd is missing"),
                None,
            ),
            // Dropped here: luod keeps no fd a client sends.
            (_, Some(_fd)) => reply(conn, &error(libc::EINVAL, "only hold takes an fd"), None),
            (Ok(Request::Session { name }), None) => session(shared, conn, peer, id, &name),
            (Ok(Request::Ready { update }), None) => ready(shared, id, update),
            (Ok(Request::Update), None) => update(shared, conn, peer, id),
            (Err(e), None) => reply(conn, &error(libc::EINVAL, e.to_string()), None),
        }
    }
}

/// A client's Ready: counts only for the update being prepared.
fn ready(shared: &Shared, id: u64, number: u64) {
    let mut inner = shared.inner();
    if let Some(u) = inner.update.as_mut().filter(|u| u.number == number) {
        if let Some(r) = u.waiting.get_mut(&id) {
            *r = true;
            shared.ready.notify_all();
        }
    }
}

/// Whether luod's user has an incoming session `kernel_name`: the kernel
/// gives a CAP_SYS_ADMIN caller another user's session of that name when
/// its own has none, which luod must never hand to a client.
fn own_incoming(shared: &Shared, kernel_name: &str) -> Result<bool, Message> {
    let view = status::read(&shared.config.status_view).map_err(|e| {
        error(
            libc::EIO,
            format!("cannot tell whose incoming session this is ({e}): luod needs debugfs"),
        )
    })?;
    Ok(view
        .sessions
        .iter()
        .any(|s| s.incoming && s.owner == shared.euid && s.name == kernel_name))
}

/// Whether the policy gives `name` to `peer`: `EACCES` if not.
fn allowed(shared: &Shared, peer: &Peer, name: &str) -> Result<(), Message> {
    if !shared.config.policy.covers(peer) {
        let msg = format!("the policy names no session for uid {}", peer.uid);
        return Err(error(libc::EACCES, msg));
    }
    if !shared.config.policy.allows(peer, name) {
        log(format_args!(
            "uid {} gid {} asked for {}: not in the policy",
            peer.uid,
            peer.gid,
            shown(name)
        ));
        let msg = format!(
            "the policy does not give {} to uid {}",
            shown(name),
            peer.uid
        );
        return Err(error(libc::EACCES, msg));
    }
    Ok(())
}

fn update_under_way() -> Message {
    error(libc::EBUSY, "an update is under way: ask again after it")
}

fn session(shared: &Shared, conn: &OwnedFd, peer: &Peer, id: u64, name: &str) {
    if let Err(refused) = allowed(shared, peer, name) {
        return reply(conn, &refused, None);
    }
    if shared.inner().update.is_some() {
        return reply(conn, &update_under_way(), None);
    }
    match claim_or_create(shared, peer, name) {
        Ok((session, incoming)) => {
            {
                // As in hold(): an update that started meanwhile did not
                // count this client, so it must not get the session.
                let mut inner = shared.inner();
                if inner.update.is_some() {
                    drop(inner);
                    if incoming {
                        lock(&shared.claims).claimed.remove(name);
                    }
                    // Dropped: a new session ends, an incoming one can be
                    // claimed again.
                    drop(session);
                    return reply(conn, &update_under_way(), None);
                }
                if let Some(c) = inner.conns.get_mut(&id) {
                    c.holds.push(name.to_string());
                }
            }
            log(format_args!(
                "{} to uid {} ({})",
                shown(name),
                peer.uid,
                if incoming { "incoming" } else { "new" }
            ));
            let fd: OwnedFd = session.into();
            let answer = Message::Session {
                name: name.to_string(),
                incoming,
            };
            // luod keeps no copy: the session is the client's.
            reply(conn, &answer, Some(&fd));
        }
        Err(message) => reply(conn, &message, None),
    }
}

/// A client that still holds the session `name`, which a luod before
/// this one handed out, shows it by passing the session fd: from then on
/// it is the session's holder, quiesced for an update like any other.
///
/// The fd proves that the client holds a session called `luod/NAME`, not
/// whose session that is (a client may call one of its own so); but the
/// policy gives the client NAME either way, so a false Hold could only
/// misstate its own VM's readiness, which a holder can always do by
/// answering Ready without pausing. luod keeps no copy of the fd. An
/// incoming session held so is left alone by the expiry of unclaimed
/// sessions because it is held (the kernel refuses to hand it to luod),
/// not because of what the client said.
fn hold(shared: &Shared, conn: &OwnedFd, peer: &Peer, id: u64, name: &str, fd: OwnedFd) {
    if let Err(refused) = allowed(shared, peer, name) {
        return reply(conn, &refused, None);
    }
    let kernel_name = policy::kernel_name(name);
    let checked = liveupdate::Session::try_from_fd(fd)
        .and_then(|session| Ok((session.name()?, session.status()?.state)));
    let state = match checked {
        Ok((held, state)) if held == kernel_name => state,
        Ok((held, _)) => {
            let msg = format!(
                "that session is {}, not {}",
                shown(&held),
                shown(&kernel_name)
            );
            return reply(conn, &error(libc::EINVAL, msg), None);
        }
        Err(e) => return reply(conn, &error(e.errno(), e.to_string()), None),
    };
    {
        // With the update check, under one lock: an update counts this
        // client among those to quiesce, or the Hold is refused.
        let mut inner = shared.inner();
        if inner.update.is_some() {
            drop(inner);
            return reply(conn, &update_under_way(), None);
        }
        if let Some(c) = inner.conns.get_mut(&id) {
            if !c.holds.iter().any(|h| h == name) {
                c.holds.push(name.to_string());
            }
        }
    }
    log(format_args!(
        "{} held by uid {} ({state})",
        shown(name),
        peer.uid
    ));
    let answer = Message::Held {
        name: name.to_string(),
    };
    reply(conn, &answer, None);
}

/// The session `name`: luod's incoming one if there is one, else a new one.
fn claim_or_create(
    shared: &Shared,
    peer: &Peer,
    name: &str,
) -> Result<(liveupdate::Session, bool), Message> {
    let kernel_name = policy::kernel_name(name);
    let kernel_error = |e: liveupdate::Error| error(e.errno(), e.to_string());
    // Also orders creations, so that two cannot both find the last room.
    let mut claims = lock(&shared.claims);
    if shared.lu.state().map_err(kernel_error)? == State::Updated {
        if claims.expired.contains(name) {
            return Err(error(
                libc::ESTALE,
                "nobody claimed it within the claim timeout: it was finished",
            ));
        }
        if own_incoming(shared, &kernel_name)? {
            let session = shared
                .lu
                .retrieve_session(&kernel_name)
                .map_err(kernel_error)?;
            claims.claimed.insert(name.to_string());
            return Ok((session, true));
        }
    }
    if shared.config.policy.bounded(peer, name) {
        let existing = outgoing_sessions(shared).map_err(|m| error(libc::EIO, m))?;
        let names = existing
            .iter()
            .filter_map(|n| n.strip_prefix(policy::KERNEL_PREFIX));
        // One that exists already: the kernel answers EEXIST.
        let exists = existing.contains(&kernel_name);
        if !exists && !shared.config.policy.has_room(peer, name, names) {
            return Err(error(
                libc::EDQUOT,
                format!("the policy's max_sessions for {} is reached", shown(name)),
            ));
        }
    }
    let session = shared
        .lu
        .create_session(&kernel_name)
        .map_err(kernel_error)?;
    Ok((session, false))
}

/// The kernel names of luod's outgoing sessions, from the status view
/// (`EIO` without it).
fn outgoing_sessions(shared: &Shared) -> Result<Vec<String>, String> {
    let view = status::read(&shared.config.status_view)
        .map_err(|e| format!("cannot list luod's sessions ({e}): luod needs debugfs"))?;
    Ok(view
        .sessions
        .into_iter()
        .filter(|s| !s.incoming && s.owner == shared.euid)
        .filter(|s| s.name.starts_with(policy::KERNEL_PREFIX))
        .map(|s| s.name)
        .collect())
}

fn progress(conn: &OwnedFd, phase: &str, since: Instant) {
    let ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
    log(format_args!("{phase}: {ms} ms"));
    let message = Message::Progress {
        phase: phase.into(),
        ms,
    };
    reply(conn, &message, None);
}

/// Why an update did not happen.
struct Failed {
    errno: i32,
    message: String,
    started: bool,
    normal: bool,
}

impl Failed {
    fn refused(errno: i32, message: impl Into<String>) -> Self {
        Failed {
            errno,
            message: message.into(),
            started: false,
            normal: true,
        }
    }

    fn rolled_back(e: liveupdate::Error) -> Self {
        Failed {
            errno: e.errno(),
            message: e.to_string(),
            started: true,
            normal: true,
        }
    }
}

/// Clears the update slot however the update ends.
struct UpdateGuard<'a>(&'a Shared);

impl Drop for UpdateGuard<'_> {
    fn drop(&mut self) {
        self.0.inner().update = None;
    }
}

fn update(shared: &Shared, conn: &OwnedFd, peer: &Peer, asker: u64) {
    if peer.uid != 0 {
        let answer = Failed::refused(libc::EPERM, "an update needs uid 0");
        return answer_failed(shared, conn, None, answer);
    }
    let number = {
        let mut inner = shared.inner();
        if inner.update.is_some() {
            drop(inner);
            let answer = Failed::refused(libc::EBUSY, "an update is under way");
            return answer_failed(shared, conn, None, answer);
        }
        inner.next_update += 1;
        let number = inner.next_update;
        // Those that hold a session now: no session is handed out until
        // the update is over.
        let waiting = inner
            .conns
            .iter()
            .filter(|(id, c)| **id != asker && !c.holds.is_empty())
            .map(|(id, _)| (*id, false))
            .collect();
        inner.update = Some(Update { number, waiting });
        number
    };
    let _slot = UpdateGuard(shared);
    if let Err(failed) = run_update(shared, conn, number) {
        answer_failed(shared, conn, Some(number), failed);
    }
}

/// Tells the clients (if the system is normal again) and the asker.
fn answer_failed(shared: &Shared, conn: &OwnedFd, number: Option<u64>, failed: Failed) {
    if let Some(number) = number {
        log(format_args!("update {number} stopped: {}", failed.message));
        if failed.normal && failed.started {
            broadcast_waiting(
                shared,
                &Message::Resume {
                    update: number,
                    reason: failed.message.clone(),
                },
            );
        }
    }
    let answer = Message::UpdateFailed {
        errno: failed.errno,
        message: failed.message,
        started: failed.started,
        normal: failed.normal,
    };
    reply(conn, &answer, None);
}

/// Sends `message` to every client the update waits for: to each at once
/// if its queue has room, then to the others within one shared wait of
/// [`BROADCAST_WAIT`], so that clients that do not read cannot add up to
/// a long stall for the others.
fn broadcast_waiting(shared: &Shared, message: &Message) {
    let fds: Vec<_> = {
        let inner = shared.inner();
        let Some(u) = inner.update.as_ref() else {
            return;
        };
        u.waiting
            .keys()
            .filter_map(|id| inner.conns.get(id).map(|c| c.fd.clone()))
            .collect()
    };
    let bytes = protocol::encode(message);
    let send = |fd: &OwnedFd, wait| transport::send(fd.as_fd(), &bytes, None, Wait::UpTo(wait));
    let full = |e: &std::io::Error| e.kind() == std::io::ErrorKind::WouldBlock;
    let mut late = Vec::new();
    for fd in fds {
        match send(&fd, Duration::ZERO) {
            Err(e) if full(&e) => late.push(fd),
            Err(e) => disconnect(&fd, message, &e),
            Ok(()) => {}
        }
    }
    let deadline = Instant::now() + BROADCAST_WAIT;
    for fd in late {
        if let Err(e) = send(&fd, deadline.saturating_duration_since(Instant::now())) {
            disconnect(&fd, message, &e);
        }
    }
}

/// Rather than let a client miss Quiesce or Resume, luod closes its
/// connection: a client quiesced then resumes once its session is open
/// again, and a missed Quiesce stops the update (the holder went away).
fn disconnect(fd: &OwnedFd, message: &Message, e: &std::io::Error) {
    log(format_args!(
        "a client cannot take {message:?}: {e}; disconnected"
    ));
    let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
}

/// luod's sessions the kernel has whose holders are not connected (luod
/// restarted since it handed them out): nobody could quiesce them.
fn unheld_sessions(shared: &Shared) -> Result<Vec<String>, Failed> {
    let existing = outgoing_sessions(shared).map_err(|m| Failed::refused(libc::EIO, m))?;
    let inner = shared.inner();
    let held: HashSet<String> = inner
        .conns
        .values()
        .flat_map(|c| c.holds.iter().map(|n| policy::kernel_name(n)))
        .collect();
    Ok(existing.into_iter().filter(|n| !held.contains(n)).collect())
}

/// Waits until every client the update waits for said Ready.
fn wait_ready(shared: &Shared, deadline: Instant) -> Result<(), String> {
    let mut inner = shared.inner();
    loop {
        let Some(u) = inner.update.as_ref() else {
            return Ok(());
        };
        if u.waiting.keys().any(|id| !inner.conns.contains_key(id)) {
            // It may still run its VM, with its session: no update.
            return Err("a client holding a session went away".into());
        }
        let late: Vec<u32> = u
            .waiting
            .iter()
            .filter(|(_, ready)| !**ready)
            .filter_map(|(id, _)| inner.conns.get(id).map(|c| c.peer.uid))
            .collect();
        if late.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "client(s) of uid {late:?} did not say Ready in time"
            ));
        }
        inner = shared
            .ready
            .wait_timeout(inner, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Quiesce, PREPARE, FREEZE, kexec: returns only on failure.
fn run_update(shared: &Shared, conn: &OwnedFd, number: u64) -> Result<(), Failed> {
    let lu = &shared.lu;
    let state = lu
        .state()
        .map_err(|e| Failed::refused(e.errno(), e.to_string()))?;
    if state != State::Normal {
        return Err(Failed::refused(
            libc::EBUSY,
            format!("the state is {state}, not normal: finish the last update first"),
        ));
    }
    if !kexec::loaded().unwrap_or(false) {
        return Err(Failed::refused(
            libc::ENOEXEC,
            "no kernel is loaded (luoctl load)",
        ));
    }
    let unheld = unheld_sessions(shared)?;
    if !unheld.is_empty() {
        return Err(Failed::refused(
            libc::EBUSY,
            format!("nobody connected holds {unheld:?}: their clients cannot be quiesced"),
        ));
    }
    // Before the blackout: a stuck file system must not hold paused VMs.
    kexec::sync();

    let t = Instant::now();
    broadcast_waiting(shared, &Message::Quiesce { update: number });
    // From when the last client got it.
    let sent = Instant::now();
    let deadline = sent
        .checked_add(shared.config.quiesce_timeout)
        .unwrap_or(sent + Duration::from_secs(3600));
    wait_ready(shared, deadline).map_err(|message| Failed {
        errno: libc::ETIMEDOUT,
        message,
        started: true,
        normal: true,
    })?;
    progress(conn, "quiesce", t);

    let t = Instant::now();
    // The kernel rolls a failed PREPARE or FREEZE back to NORMAL itself.
    lu.event(Event::Prepare).map_err(Failed::rolled_back)?;
    progress(conn, "prepare", t);
    let t = Instant::now();
    lu.event(Event::Freeze).map_err(Failed::rolled_back)?;
    progress(conn, "freeze", t);
    progress(conn, "kexec", Instant::now());
    let failed = kexec::jump();
    Err(match lu.event(Event::Cancel) {
        Ok(()) => Failed {
            errno: failed.errno(),
            message: format!("{failed}; cancelled"),
            started: true,
            normal: true,
        },
        Err(e) => Failed {
            errno: failed.errno(),
            message: format!("{failed}; and {e}"),
            started: true,
            normal: false,
        },
    })
}

/// After an update: once the claim timeout is over, finishes the incoming
/// sessions of luod's user, under luod's prefix, that its policy names and
/// no client claimed.
fn expire_unclaimed(shared: &Shared) {
    std::thread::sleep(shared.config.claim_timeout);
    let view = match status::read(&shared.config.status_view) {
        Ok(v) => v,
        Err(e) => {
            return log(format_args!(
                "cannot list unclaimed sessions ({e}): left for the global FINISH"
            ))
        }
    };
    let (mut finished, mut held) = (0, 0);
    for s in view
        .sessions
        .iter()
        .filter(|s| s.incoming && s.owner == shared.euid)
    {
        let Some(name) = s.name.strip_prefix(policy::KERNEL_PREFIX) else {
            continue;
        };
        if !shared.config.policy.names(name) {
            continue;
        }
        let mut claims = lock(&shared.claims);
        if claims.claimed.contains(name) {
            continue;
        }
        match shared
            .lu
            .retrieve_session(&s.name)
            .and_then(|session| session.finish())
        {
            Ok(()) => {
                claims.expired.insert(name.to_string());
                finished += 1;
                log(format_args!("{}: nobody claimed it, finished", shown(name)));
            }
            // An fd holds it: a client of a luod before this one (or this
            // one's, by Hold) has it.
            Err(e) if e.errno() == libc::EINVAL => held += 1,
            Err(e) => log(format_args!(
                "{}: unclaimed, cannot finish: {e}",
                shown(name)
            )),
        }
    }
    log(format_args!(
        "claim timeout over: {finished} unclaimed session(s) finished, {held} held by clients"
    ));
}
