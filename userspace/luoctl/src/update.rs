// SPDX-License-Identifier: GPL-2.0

//! `luoctl update`: from NORMAL, PREPARE, FREEZE and the kexec in one
//! step. Each phase is shown with how long it took on a terminal. A PREPARE or FREEZE that
//! fails is rolled back by the kernel itself; a kexec that fails (its own
//! checks, or the jump) is cancelled here: either way the system ends up
//! normal again, or the exit code says it did not.

use crate::{Exit, Outcome};
use liveupdate::{kexec, Event, LiveUpdate, State};
use luod::client::{Client, ClientError};
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Runs `f` as the phase `name`, showing it on a terminal.
fn phase<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let tty = std::io::stderr().is_terminal();
    if tty {
        eprint!("{name} ...");
        let _ = std::io::stderr().flush();
    }
    let t0 = Instant::now();
    let out = f();
    if tty {
        eprintln!(" {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    }
    out
}

/// Cancels after a failure at `what`, and says how it ended.
fn cancel(lu: &LiveUpdate, what: liveupdate::Error) -> (Exit, String) {
    match phase("cancel", || lu.event(Event::Cancel)) {
        Ok(()) => (Exit::Cancelled, format!("{what}; cancelled")),
        Err(e) => (Exit::CancelFailed, format!("{what}; and {e}")),
    }
}

pub(crate) fn run(lu: &LiveUpdate) -> Outcome {
    let refused = |e: liveupdate::Error| (Exit::Refused, e.to_string());
    // Nothing happens unless a kernel is there to jump into.
    if !kexec::loaded().map_err(refused)? {
        return Err((
            Exit::Refused,
            "no kernel is loaded: `luoctl load KERNEL` first".into(),
        ));
    }
    // Someone else's update (luod's, say) is not ours to finish or cancel.
    let state = lu.state().map_err(refused)?;
    if state != State::Normal {
        return Err((
            Exit::Refused,
            format!("the state is {state}, not normal: another update is under way or unfinished"),
        ));
    }
    // Before the blackout: a stuck file system must not hold it open.
    phase("sync", kexec::sync);
    // A failed PREPARE or FREEZE is rolled back to normal by the kernel.
    phase("prepare", || lu.event(Event::Prepare))
        .map_err(|e| (Exit::Cancelled, format!("{e}; nothing is left prepared")))?;
    phase("freeze", || lu.event(Event::Freeze))
        .map_err(|e| (Exit::Cancelled, format!("{e}; rolled back to normal")))?;
    let failed = phase("kexec", kexec::jump);
    Err(cancel(lu, failed))
}

/// `luoctl update --luod SOCKET`: luod quiesces its clients and runs the
/// update; its answer says whether anything had started.
pub(crate) fn through_luod(socket: &std::path::Path) -> Outcome {
    let mut luod = Client::connect(socket)
        .map_err(|e| (Exit::Refused, format!("{}: {e}", socket.display())))?;
    let tty = std::io::stderr().is_terminal();
    let failed = match luod.update(|phase, ms| {
        if tty {
            eprintln!("{phase} ... {ms} ms");
        }
    }) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    Err(match failed {
        ClientError::UpdateFailed {
            message,
            started: false,
            ..
        } => (Exit::Refused, format!("luod refused the update: {message}")),
        ClientError::UpdateFailed {
            message,
            normal: true,
            ..
        } => (
            Exit::Cancelled,
            format!("luod stopped the update: {message}"),
        ),
        ClientError::UpdateFailed { message, .. } => (
            Exit::CancelFailed,
            format!("luod stopped the update and could not cancel it: {message}"),
        ),
        // luod went away mid-update (or never answered): state unknown.
        other => (Exit::CancelFailed, other.to_string()),
    })
}
