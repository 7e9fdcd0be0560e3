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

/// A connection to the luod that replaced the one that closed: it may
/// take a moment to listen.
fn reconnect(socket: &str) -> std::io::Result<Client> {
    let mut tries = 0;
    loop {
        match Client::connect(socket.as_ref()) {
            Err(_) if tries < 300 => tries += 1,
            other => return other,
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Holds `session` at a luod that may be finishing an update it stopped.
fn hold(luod: &mut Client, name: &str, session: &Session) -> Result<(), ClientError> {
    let mut tries = 0;
    loop {
        match luod.hold(name, session) {
            Err(ClientError::Refused { errno, .. }) if errno == libc::EBUSY && tries < 300 => {
                tries += 1
            }
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
            std::io::stdout().flush()?;
            // The update this VMM quiesced for: only its Resume resumes.
            let mut quiesced = None;
            loop {
                let next = match luod.next(Some(std::time::Duration::from_secs(1))) {
                    Err(ClientError::Closed) if mode == "keep" => {
                        luod = reconnect(socket)?;
                        hold(&mut luod, name, &session)?;
                        println!("held {name}");
                        // No update is under way at a luod that took the
                        // Hold: if luod closed on a quiesced VMM (it could
                        // not take the Resume), it resumes once its
                        // session is open again.
                        if quiesced.is_some() && session.status()?.state == SessionState::Open {
                            quiesced = None;
                            println!("resume after luod closed");
                        }
                        None
                    }
                    // Keeps its session, and tells nobody.
                    Err(ClientError::Closed) => loop {
                        std::thread::sleep(std::time::Duration::from_secs(3600));
                    },
                    other => other?,
                };
                match next {
                    Some(Message::Quiesce { update }) if mode == "keep" => {
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
                std::io::stdout().flush()?;
            }
        }
        "check" => {
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
