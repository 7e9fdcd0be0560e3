// SPDX-License-Identifier: GPL-2.0

//! Prints the live update state, and a session's if one is named:
//! `cargo run --example status [SESSION]` (root, on a luo-rs kernel).

use liveupdate::{LiveUpdate, State};

fn main() -> Result<(), liveupdate::Error> {
    let lu = LiveUpdate::open()?;
    let state = lu.state()?;
    println!("state: {state}");
    if let Some(name) = std::env::args().nth(1) {
        let session = match state {
            State::Updated => lu.retrieve_session(&name)?,
            _ => lu.create_session(&name)?,
        };
        let status = session.status()?;
        println!(
            "session {}: {}, {} files",
            session.name()?,
            status.state,
            status.files
        );
    }
    Ok(())
}
