// SPDX-License-Identifier: GPL-2.0

//! Typed access to `/dev/liveupdate`, the Live Update Orchestrator of
//! luo-rs (and of Linux's own `CONFIG_LIVEUPDATE`, whose commands are a
//! subset).
//!
//! A live update hands files (memfds with guest memory, iommufds, vfio
//! devices, KVM VMs) from a running kernel to the next one across a
//! kexec. A VMM puts them in a named [`Session`]; an orchestrator moves
//! the global state machine ([`LiveUpdate::prepare`],
//! [`LiveUpdate::freeze`], then the kexec); in the new kernel the VMM
//! retrieves its session by name and its files by token, and finishes it.
//!
//! Everything comes from the project's uAPI header through bindgen at
//! build time (its values and struct layouts are checked against the
//! header as it compiles). Files go in by reference ([`AsFd`]) and come
//! out as [`OwnedFd`]s. Every error says which operation failed, with its
//! errno and what the errno means there ([`Error`]).
//!
//! ```no_run
//! use liveupdate::{LiveUpdate, State};
//!
//! let lu = LiveUpdate::open()?;
//! println!("live update state: {}", lu.state()?);
//! # Ok::<(), liveupdate::Error>(())
//! ```
//!
//! [`AsFd`]: std::os::fd::AsFd
//! [`OwnedFd`]: std::os::fd::OwnedFd

mod device;
mod error;
pub mod kexec;
pub mod name;
mod session;
pub mod status;
mod sys;
mod uapi;

pub use device::{Event, LiveUpdate, State, DEVICE};
pub use error::{Error, Op, Result};
pub use session::{Session, SessionState, SessionStatus};
