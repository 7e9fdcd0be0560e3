// SPDX-License-Identifier: GPL-2.0

//! luod, the live update agent: it owns `/dev/liveupdate` sessions for
//! the clients its policy names, hands each its session fd over a Unix
//! socket, quiesces them before an update, and gives each its session back
//! after the kexec. The daemon is `src/main.rs`; this library has its
//! parts, and the [`client`] a VMM uses.

pub mod client;
pub mod daemon;
pub mod policy;
pub mod protocol;
pub mod transport;
