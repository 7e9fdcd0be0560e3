// SPDX-License-Identifier: GPL-2.0

//! The daemon: a thread per client connection, one shared state.
//!
//! - A client asks for a session by name. If the policy gives it that
//!   name, luod retrieves the session if the previous kernel handed one
//!   over (UPDATED), or creates it, and passes the session fd. luod keeps
//!   no session fd of its own: the session lives in its client, so a luod
//!   restart loses nothing, and luod holds no state the kernel does not.
//! - An update (asked by a uid-0 client) first sends every other client
//!   Quiesce and waits, up to the quiesce timeout, for each one's Ready;
//!   then PREPARE, FREEZE and the kexec. Any failure (a client that does
//!   not answer, a refused event, a failed kexec) cancels what was done and
//!   sends Resume.
//! - After an update, the incoming sessions the policy names and no client
//!   claimed within the claim timeout are finished (freed). Sessions the
//!   policy does not name are never touched: other users of
//!   /dev/liveupdate (systemd's "systemd" session, say) keep theirs.

use crate::policy::{Client, Policy};
use crate::protocol::{self, Message, Request};
use crate::transport::{self, Wait};
use liveupdate::{kexec, Event, LiveUpdate, State};
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Connections served at once (a thread each).
const MAX_CLIENTS: usize = 1024;

/// How luod runs.
pub struct Config {
    /// Who may have which session.
    pub policy: Policy,
    /// How long clients have to answer Quiesce.
    pub quiesce_timeout: Duration,
    /// How long after an update clients have to claim their sessions.
    pub claim_timeout: Duration,
    /// luo-rs's status view, to find incoming sessions nobody claimed.
    pub status_view: String,
}

struct Conn {
    fd: Arc<OwnedFd>,
    client: Client,
    /// The update this client said Ready to.
    ready: Option<u64>,
}

/// Locking: `inner` is taken for short steps only, never across a kernel
/// call or a blocking send; `ready` waits on it.
struct Shared {
    lu: LiveUpdate,
    config: Config,
    inner: Mutex<Inner>,
    ready: Condvar,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    /// The update being prepared, if one is.
    update: Option<u64>,
    next_update: u64,
    /// Incoming sessions handed to a client (by name).
    claimed: Vec<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking thread leaves plain data behind: go on with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn log(what: std::fmt::Arguments<'_>) {
    eprintln!("luod: {what}");
}

fn error(errno: i32, message: impl Into<String>) -> Message {
    Message::Error {
        errno,
        message: message.into(),
    }
}

fn send(conn: &OwnedFd, message: &Message, fd: Option<&OwnedFd>, wait: Wait) {
    let bytes = protocol::encode(message);
    if let Err(e) = transport::send(conn.as_fd(), &bytes, fd.map(|f| f.as_fd()), wait) {
        log(format_args!("cannot send to a client: {e}"));
    }
}

/// Answers the client's own request.
fn reply(conn: &OwnedFd, message: &Message, fd: Option<&OwnedFd>) {
    send(conn, message, fd, Wait::Yes);
}

/// Serves clients on `listener` until it fails.
pub fn serve(lu: LiveUpdate, config: Config, listener: OwnedFd) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        lu,
        config,
        inner: Mutex::new(Inner::default()),
        ready: Condvar::new(),
    });
    if shared.lu.state().ok() == Some(State::Updated) {
        let s = shared.clone();
        std::thread::spawn(move || expire_unclaimed(&s));
    }
    loop {
        let conn = Arc::new(transport::accept(listener.as_fd())?);
        if shared.lock().conns.len() >= MAX_CLIENTS {
            log(format_args!(
                "{MAX_CLIENTS} clients connected: one more refused"
            ));
            reply(&conn, &error(libc::EMFILE, "too many clients"), None);
            continue;
        }
        let client = match transport::peer(conn.as_fd()) {
            Ok(c) => c,
            Err(e) => {
                log(format_args!("a client without credentials: {e}"));
                continue;
            }
        };
        let id = {
            let mut inner = shared.lock();
            let id = inner.next_conn;
            inner.next_conn += 1;
            inner.conns.insert(
                id,
                Conn {
                    fd: conn.clone(),
                    client: client.clone(),
                    ready: None,
                },
            );
            id
        };
        let s = shared.clone();
        std::thread::spawn(move || {
            serve_client(&s, &conn, &client, id);
            s.lock().conns.remove(&id);
            // An update waiting for this client waits no more.
            s.ready.notify_all();
        });
    }
}

fn serve_client(shared: &Shared, conn: &OwnedFd, client: &Client, id: u64) {
    loop {
        let bytes = match transport::recv(conn.as_fd()) {
            Ok(Some((bytes, _fd))) => bytes,
            Ok(None) => return,
            Err(e) => {
                reply(conn, &error(libc::EINVAL, e.to_string()), None);
                continue;
            }
        };
        match protocol::decode::<Request>(&bytes) {
            Ok(Request::Session { name }) => session(shared, conn, client, &name),
            Ok(Request::Ready { update }) => {
                if let Some(c) = shared.lock().conns.get_mut(&id) {
                    c.ready = Some(update);
                }
                shared.ready.notify_all();
            }
            Ok(Request::Update) => {
                if client.uid != 0 {
                    reply(conn, &error(libc::EPERM, "an update needs uid 0"), None);
                } else {
                    update(shared, conn, id);
                }
            }
            Err(e) => reply(conn, &error(libc::EINVAL, e.to_string()), None),
        }
    }
}

fn session(shared: &Shared, conn: &OwnedFd, client: &Client, name: &str) {
    if !shared.config.policy.allows(client, name) {
        log(format_args!(
            "uid {} gid {} asked for {name:?}: not in the policy",
            client.uid, client.gid
        ));
        let msg = format!("the policy does not give {name:?} to uid {}", client.uid);
        return reply(conn, &error(libc::EACCES, msg), None);
    }
    let incoming = match shared.lu.state() {
        Ok(State::Updated) => match shared.lu.retrieve_session(name) {
            Ok(s) => Some(s),
            Err(e) if e.errno() == libc::ENOENT => None,
            Err(e) => return reply(conn, &error(e.errno(), e.to_string()), None),
        },
        Ok(_) => None,
        Err(e) => return reply(conn, &error(e.errno(), e.to_string()), None),
    };
    let (session, is_incoming) = match incoming {
        Some(s) => {
            shared.lock().claimed.push(name.to_string());
            (s, true)
        }
        None => match shared.lu.create_session(name) {
            Ok(s) => (s, false),
            Err(e) => return reply(conn, &error(e.errno(), e.to_string()), None),
        },
    };
    log(format_args!(
        "{name:?} to uid {} ({})",
        client.uid,
        if is_incoming { "incoming" } else { "new" }
    ));
    let fd: OwnedFd = session.into();
    reply(
        conn,
        &Message::Session {
            name: name.to_string(),
            incoming: is_incoming,
        },
        Some(&fd),
    );
    // luod keeps no copy: the session is the client's.
}

/// Sends `message` to every client but `except`.
fn broadcast(shared: &Shared, except: u64, message: &Message) {
    let fds: Vec<_> = shared
        .lock()
        .conns
        .iter()
        .filter(|(id, _)| **id != except)
        .map(|(_, c)| c.fd.clone())
        .collect();
    for fd in fds {
        // A client that does not read misses it (and is not Ready).
        send(&fd, message, None, Wait::No);
    }
}

fn progress(conn: &OwnedFd, phase: &str, since: Instant) {
    let ms = since.elapsed().as_millis() as u64;
    log(format_args!("{phase}: {ms} ms"));
    reply(
        conn,
        &Message::Progress {
            phase: phase.into(),
            ms,
        },
        None,
    );
}

/// Waits until every client but `asker` is Ready for `update`; the uids
/// of those that are not, at the timeout.
fn wait_ready(shared: &Shared, asker: u64, update: u64) -> Result<(), Vec<u32>> {
    let deadline = Instant::now() + shared.config.quiesce_timeout;
    let mut inner = shared.lock();
    loop {
        let late: Vec<u32> = inner
            .conns
            .iter()
            .filter(|(id, c)| **id != asker && c.ready != Some(update))
            .map(|(_, c)| c.client.uid)
            .collect();
        if late.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(late);
        }
        inner = shared
            .ready
            .wait_timeout(inner, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn update(shared: &Shared, conn: &OwnedFd, asker: u64) {
    if !kexec::loaded().unwrap_or(false) {
        return reply(
            conn,
            &error(libc::ENOEXEC, "no kernel is loaded (luoctl load)"),
            None,
        );
    }
    let number = {
        let mut inner = shared.lock();
        if inner.update.is_some() {
            drop(inner);
            return reply(conn, &error(libc::EBUSY, "an update is under way"), None);
        }
        inner.next_update += 1;
        inner.update = Some(inner.next_update);
        inner.next_update
    };
    let outcome = run_update(shared, conn, asker, number);
    shared.lock().update = None;
    if let Err((errno, why)) = outcome {
        log(format_args!("update {number} stopped: {why}"));
        broadcast(
            shared,
            asker,
            &Message::Resume {
                update: number,
                reason: why.clone(),
            },
        );
        reply(conn, &error(errno, why), None);
    }
}

/// Quiesce, PREPARE, FREEZE, kexec: returns only on failure, cancelled.
fn run_update(
    shared: &Shared,
    conn: &OwnedFd,
    asker: u64,
    number: u64,
) -> Result<(), (i32, String)> {
    let t = Instant::now();
    broadcast(shared, asker, &Message::Quiesce { update: number });
    wait_ready(shared, asker, number).map_err(|late| {
        (
            libc::ETIMEDOUT,
            format!("client(s) of uid {late:?} did not say Ready in time"),
        )
    })?;
    progress(conn, "quiesce", t);

    let lu = &shared.lu;
    let t = Instant::now();
    // The kernel rolls a failed PREPARE or FREEZE back to NORMAL itself.
    lu.event(Event::Prepare)
        .map_err(|e| (e.errno(), e.to_string()))?;
    progress(conn, "prepare", t);
    let t = Instant::now();
    lu.event(Event::Freeze)
        .map_err(|e| (e.errno(), e.to_string()))?;
    progress(conn, "freeze", t);
    progress(conn, "kexec", Instant::now());
    let failed = kexec::jump();
    let cancelled = match lu.event(Event::Cancel) {
        Ok(()) => "cancelled".to_string(),
        Err(e) => format!("and {e}"),
    };
    Err((failed.errno(), format!("{failed}; {cancelled}")))
}

/// After an update: once the claim timeout is over, finishes the incoming
/// sessions the policy names that no client claimed.
fn expire_unclaimed(shared: &Shared) {
    std::thread::sleep(shared.config.claim_timeout);
    let view = match liveupdate::status::read(&shared.config.status_view) {
        Ok(v) => v,
        Err(e) => {
            return log(format_args!(
                "cannot list unclaimed sessions ({e}): left for the global FINISH"
            ))
        }
    };
    let claimed = shared.lock().claimed.clone();
    for s in view.sessions.iter().filter(|s| s.incoming) {
        if !shared.config.policy.names(&s.name) || claimed.contains(&s.name) {
            continue;
        }
        match shared
            .lu
            .retrieve_session(&s.name)
            .and_then(|session| session.finish())
        {
            Ok(()) => log(format_args!("{:?}: nobody claimed it, finished", s.name)),
            Err(e) => log(format_args!("{:?}: unclaimed, cannot finish: {e}", s.name)),
        }
    }
}
