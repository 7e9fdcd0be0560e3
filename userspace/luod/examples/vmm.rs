// SPDX-License-Identifier: GPL-2.0

//! A stand-in VMM for luod's tests, and an example of a luod client:
//!
//! - `vmm SOCKET NAME keep SEED`: gets its session, preserves a 1 MiB
//!   memfd filled from SEED under token 1, prints `ready`, then answers
//!   each Quiesce with Ready until killed; if luod restarts, it connects
//!   to the new one, shows it holds the session (Hold) and prints `held`;
//! - `vmm SOCKET NAME mute SEED`: the same, but never answers Quiesce and
//!   does not come back after a luod restart;
//! - `vmm SOCKET NAME forge OTHER...`: gets its session, then tries to
//!   pass luod a memfd as its session, and its session as each OTHER;
//! - `vmm SOCKET NAME check SEED`: gets its session back after the
//!   update, checks the memfd's bytes, finishes the session;
//! - `vmm SOCKET NAME claim SEED`: the same, but then keeps the session
//!   as `keep` does, without finishing it;
//! - `vmm SOCKET NAME ask`: asks for the session and prints what luod said.
//!
//! It prints one line per outcome (`ok ...` or `refused ...`) and exits
//! 0 when the outcome is the one its mode expects.

use liveupdate::{Session, SessionState};
use luod::client::{Client, ClientError};
use luod::protocol::Message;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;

const MEM: usize = 1 << 20;

fn pattern(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..MEM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A connection to the luod that replaced the one that closed, which
/// holds `session` again. Tries until one does: giving up would end the
/// session with the process.
fn hold_again(socket: &str, name: &str, session: &Session) -> Result<Client, ClientError> {
    loop {
        if let Ok(mut luod) = Client::connect(socket.as_ref()) {
            match hold(&mut luod, name, session) {
                Ok(()) => return Ok(luod),
                // It reached the luod that was going away: the next one.
                Err(ClientError::Closed) => {}
                Err(e) => return Err(e),
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// What a VMM holding its session answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Ready to each Quiesce; after a luod restart, Hold to the new luod.
    Quiesce,
    /// Nothing, ever: it keeps its session and does not come back.
    Nothing,
}

/// Holds `session` until killed, answering luod as `answer` says.
fn serve(
    mut luod: Client,
    socket: &str,
    name: &str,
    session: &Session,
    answer: Answer,
) -> Result<(), Box<dyn std::error::Error>> {
    // The update this VMM quiesced for: only its Resume resumes.
    let mut quiesced = None;
    loop {
        std::io::stdout().flush()?;
        let next = match luod.next(Some(std::time::Duration::from_secs(1))) {
            Err(ClientError::Closed) if answer == Answer::Quiesce => {
                luod = hold_again(socket, name, session)?;
                println!("held {name}");
                // No update is under way at a luod that took the Hold: if
                // luod closed on a quiesced VMM (it could not take the
                // Resume), it resumes once its session is open again.
                if quiesced.is_some() && session.status()?.state == SessionState::Open {
                    quiesced = None;
                    println!("resume after luod closed");
                }
                None
            }
            Err(ClientError::Closed) => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            other => other?,
        };
        match next {
            Some(Message::Quiesce { update }) if answer == Answer::Quiesce => {
                println!("quiesce {update}");
                quiesced = Some(update);
                luod.ready(update)?;
            }
            Some(Message::Resume { update, reason }) if quiesced == Some(update) => {
                quiesced = None;
                println!("resume {update}: {reason}")
            }
            _ => {}
        }
    }
}

/// Holds `session` at a luod that may be finishing an update it stopped
/// (`EBUSY` until then, which may take its quiesce timeout).
fn hold(luod: &mut Client, name: &str, session: &Session) -> Result<(), ClientError> {
    loop {
        match luod.hold(name, session) {
            Err(ClientError::Refused { errno, .. }) if errno == libc::EBUSY => {}
            other => return other,
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [socket, name, mode, rest @ ..] = args else {
        return Err("usage: vmm SOCKET NAME keep|mute|check|ask|forge [SEED|OTHER]".into());
    };
    let seed: u64 = match mode.as_str() {
        "forge" => 1,
        _ => rest.first().map(|s| s.parse()).transpose()?.unwrap_or(1),
    };
    let mut luod = Client::connect(socket.as_ref())?;
    let (session, incoming) = match luod.session(name) {
        Ok(s) => s,
        Err(e) if mode == "ask" => {
            println!("refused {e}");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "ok session {name} {}",
        if incoming { "incoming" } else { "new" }
    );
    match mode.as_str() {
        "ask" => Ok(()),
        "keep" | "mute" => {
            let fd = rustix::fs::memfd_create(name.as_str(), rustix::fs::MemfdFlags::CLOEXEC)?;
            let mut file = std::fs::File::from(fd);
            file.write_all(&pattern(seed))?;
            session.preserve(&file, 1)?;
            println!("ready");
            let answer = if mode == "keep" {
                Answer::Quiesce
            } else {
                Answer::Nothing
            };
            serve(luod, socket, name, &session, answer)
        }
        "check" | "claim" => {
            if !incoming {
                return Err("the session is new: it did not come back".into());
            }
            let mut file = std::fs::File::from(session.retrieve(1)?);
            let mut got = Vec::new();
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut got)?;
            if got != pattern(seed) {
                return Err("the memfd's bytes changed".into());
            }
            if mode == "claim" {
                println!("ok bytes {name}");
                return serve(luod, socket, name, &session, Answer::Quiesce);
            }
            session.finish()?;
            println!("ok bytes {name}");
            Ok(())
        }
        "forge" => {
            let memfd = rustix::fs::memfd_create(name.as_str(), rustix::fs::MemfdFlags::CLOEXEC)?;
            let fake = Session::from_fd(memfd);
            match luod.hold(name, &fake) {
                Err(e) => println!("refused memfd: {e}"),
                Ok(()) => println!("held a memfd"),
            }
            for other in rest {
                match luod.hold(other, &session) {
                    Err(e) => println!("refused {other}: {e}"),
                    Ok(()) => println!("held {other}"),
                }
            }
            Ok(())
        }
        other => Err(format!("unknown mode {other}").into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("error {e}");
            ExitCode::from(1)
        }
    }
}
